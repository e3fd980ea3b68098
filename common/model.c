/* model.c - the LLaMA/Qwen2 decoder on a backend: loading, KV cache, forward; see model.h.
 *
 * Dimension legend: V vocab, C hidden, F intermediate, L layers, Hq/Hkv heads, D head dim,
 * Q = Hq*D, KV = Hkv*D, T tokens this call (<= Tmax), S KV capacity (<= P rope positions).
 *
 * Memory: one backend slab holds every weight (offsets from the parameter table); one slab holds
 * the activations for Tmax tokens; each KV cache is one slab (L, S, KV) for keys and one for values.
 * Weight matrices are kept in opts.wdtype; norms and biases in float32.
 */
#include "common/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/model_impl.h"
#include "common/params.h"
#include "common/safetensors.h"
#include "common/util.h"

void **dsm_model_wslot(struct dsm_model *m, enum dsm_param p, int layer) {
    int row = dsm_param_table[p].per_layer ? layer + 1 : 0;
    return &m->w[(size_t)row * DSM_P_COUNT + p];
}

static enum dsm_dtype param_dtype(const struct dsm_model *m, enum dsm_param p) {
    return dsm_param_is_matrix(p) ? m->wdt : DSM_DT_F32;
}

/* Walk every present (param, layer) pair; fn returns non-zero to stop. */
#define FOR_EACH_PARAM(cfg, p, l)                                                          \
    for (int p = 0; p < DSM_P_COUNT; p++)                                                  \
        for (int l = 0; l < (dsm_param_table[p].per_layer ? (cfg)->n_layers : 1); l++)     \
            if (dsm_param_present((cfg), (enum dsm_param)p))

/* Convert n elements of src (dtype sdt) into dst (dtype ddt) on the host. */
static void convert(void *dst, enum dsm_dtype ddt, const void *src, enum dsm_dtype sdt, size_t n) {
    if (ddt == sdt) {
        memcpy(dst, src, n * dsm_dtype_size(sdt));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        float f;
        switch (sdt) {
        case DSM_DT_F32: memcpy(&f, (const char *)src + 4 * i, 4); break;
        case DSM_DT_BF16: memcpy(&h, (const char *)src + 2 * i, 2); f = dsm_bf16_to_f32(h); break;
        default: memcpy(&h, (const char *)src + 2 * i, 2); f = dsm_f16_to_f32(h); break;
        }
        switch (ddt) {
        case DSM_DT_F32: ((float *)dst)[i] = f; break;
        case DSM_DT_BF16: ((uint16_t *)dst)[i] = dsm_f32_to_bf16(f); break;
        default: ((uint16_t *)dst)[i] = dsm_f32_to_f16(f); break;
        }
    }
}

static int check_tensor(const char *dir, const struct st_tensor *t, const char *name,
                        const struct dsm_model_config *cfg, enum dsm_param p, struct dsm_err *err) {
    if (!t) return dsm_errf(err, DSM_EINVAL, "%s: tensor '%s' is missing from the weights (config.json requires it)", dir, name);
    if (!t->dtype_ok)
        return dsm_errf(err, DSM_EUNSUPPORTED, "%s: tensor '%s' has dtype %s (supported: F32, F16, BF16)", dir, name, t->dtype_name);
    int nd;
    int64_t sh[2];
    dsm_param_shape(cfg, p, &nd, sh);
    if (t->ndim != nd || t->shape[0] != sh[0] || (nd == 2 && t->shape[1] != sh[1])) {
        char got[96] = "", want[64];
        size_t o = 0;
        for (int d = 0; d < t->ndim && o < sizeof got - 24; d++)
            o += (size_t)snprintf(got + o, sizeof got - o, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        if (nd == 1) snprintf(want, sizeof want, "%lld", (long long)sh[0]);
        else snprintf(want, sizeof want, "%lld, %lld", (long long)sh[0], (long long)sh[1]);
        return dsm_errf(err, DSM_EINVAL, "%s: tensor '%s' has shape [%s] but config.json implies [%s]", dir, name, got, want);
    }
    return DSM_OK;
}

/* Warn about tensors in the files that no parameter uses (a sign of a config/weights mismatch). */
static void report_unused(const char *dir, const struct st_model *st, const struct dsm_model_config *cfg) {
    int unused = 0;
    const char *first = NULL;
    char name[256];
    for (int i = 0; i < st_model_count(st); i++) {
        const char *tn = st_model_at(st, i)->name;
        int used = 0;
        FOR_EACH_PARAM(cfg, p, l) {
            dsm_param_name((enum dsm_param)p, l, name, sizeof name);
            if (!strcmp(name, tn)) used = 1;
        }
        if (!used && !strstr(tn, "rotary_emb.inv_freq") && strcmp(tn, "lm_head.weight") != 0) {
            unused++;
            if (!first) first = tn;
        }
    }
    if (unused) LOG_WARN("%s: %d tensor(s) in the weights are not used by this config (first: '%s')", dir, unused, first);
}

static int load_weights(struct dsm_model *m, const char *dir, struct dsm_err *err) {
    const struct dsm_model_config *cfg = &m->cfg;
    struct st_model *st = NULL;
    int rc = st_model_open(dir, &st, err);
    if (rc) return rc;
    size_t total = 0, biggest = 0;
    char name[256];
    /* pass 1: validate every tensor and size the slab */
    FOR_EACH_PARAM(cfg, p, l) {
        dsm_param_name((enum dsm_param)p, l, name, sizeof name);
        const struct st_tensor *t = st_model_find(st, name);
        if ((rc = check_tensor(dir, t, name, cfg, (enum dsm_param)p, err))) goto done;
        size_t bytes = dsm_param_numel(cfg, (enum dsm_param)p) * dsm_dtype_size(param_dtype(m, (enum dsm_param)p));
        total += (bytes + 63) & ~(size_t)63;
        if (bytes > biggest) biggest = bytes;
    }
    report_unused(dir, st, cfg);
    m->wslab = m->be->alloc(m->be, total);
    void *staging = malloc(biggest ? biggest : 1);
    if (!m->wslab || !staging) {
        free(staging);
        rc = dsm_errf(err, DSM_ENOMEM, "%s: cannot allocate %zu bytes for weights", dir, total);
        goto done;
    }
    /* pass 2: convert into the model's dtypes and upload */
    size_t off = 0;
    FOR_EACH_PARAM(cfg, p, l) {
        dsm_param_name((enum dsm_param)p, l, name, sizeof name);
        const struct st_tensor *t = st_model_find(st, name);
        enum dsm_dtype dt = param_dtype(m, (enum dsm_param)p);
        size_t n = dsm_param_numel(cfg, (enum dsm_param)p);
        void *dst = (char *)m->wslab + off;
        convert(staging, dt, t->data, t->dtype, n);
        m->be->upload(m->be, dst, staging, n * dsm_dtype_size(dt));
        *dsm_model_wslot(m, (enum dsm_param)p, l) = dst;
        off += (n * dsm_dtype_size(dt) + 63) & ~(size_t)63;
    }
    free(staging);
    rc = m->be->sync(m->be, err);
done:
    st_model_close(st);
    return rc;
}

/* cos/sin tables (P, D/2) in double, then rounded: position p, frequency i has angle
 * (p / factor) * theta^(-2i/D) (factor = 1 without linear scaling). */
static int build_rope(struct dsm_model *m, struct dsm_err *err) {
    int half = m->cfg.head_dim / 2;
    size_t n = (size_t)m->P * half;
    float *c = malloc(sizeof(float) * n), *s = malloc(sizeof(float) * n);
    m->rope_cos = m->be->alloc(m->be, sizeof(float) * n);
    m->rope_sin = m->be->alloc(m->be, sizeof(float) * n);
    if (!c || !s || !m->rope_cos || !m->rope_sin) {
        free(c);
        free(s);
        return dsm_errf(err, DSM_ENOMEM, "cannot allocate rotary tables for %d positions", m->P);
    }
    double factor = m->cfg.rope_scaling == DSM_ROPE_LINEAR ? m->cfg.rope_factor : 1.0;
    for (int i = 0; i < half; i++) {
        double inv_freq = pow(m->cfg.rope_theta, -2.0 * i / m->cfg.head_dim);
        for (int p = 0; p < m->P; p++) {
            double a = (p / factor) * inv_freq;
            c[(size_t)p * half + i] = (float)cos(a);
            s[(size_t)p * half + i] = (float)sin(a);
        }
    }
    m->be->upload(m->be, m->rope_cos, c, sizeof(float) * n);
    m->be->upload(m->be, m->rope_sin, s, sizeof(float) * n);
    free(c);
    free(s);
    return DSM_OK;
}

static int alloc_activations(struct dsm_model *m, struct dsm_err *err) {
    const struct dsm_model_config *c = &m->cfg;
    size_t T = (size_t)m->Tmax, C = (size_t)c->hidden_size, F = (size_t)c->intermediate_size;
    size_t Q = (size_t)c->n_heads * c->head_dim;
    size_t sizes[] = {T * C, T * C, T * Q, T * Q, T * F, T * F, (size_t)LOGIT_ROWS * c->vocab_size,
                      m->be->attention_scratch(m->be, m->Tmax, m->P, c->n_heads), T, T};
    size_t total = 0;
    for (size_t i = 0; i < DSM_ARRAY_LEN(sizes); i++) total += (sizes[i] * 4 + 63) & ~(size_t)63;
    m->aslab = m->be->alloc(m->be, total);
    if (!m->aslab) return dsm_errf(err, DSM_ENOMEM, "cannot allocate %zu bytes of activations", total);
    char *p = m->aslab;
    void **slots[] = {(void **)&m->x, (void **)&m->h, (void **)&m->q, (void **)&m->att, (void **)&m->ffg,
                      (void **)&m->ffu, (void **)&m->logits, (void **)&m->attn_scratch, (void **)&m->ids_dev,
                      (void **)&m->pos_dev};
    for (size_t i = 0; i < DSM_ARRAY_LEN(sizes); i++) {
        *slots[i] = p;
        p += (sizes[i] * 4 + 63) & ~(size_t)63;
    }
    return DSM_OK;
}

int dsm_model_load(const char *dir, struct dsm_backend *be, const struct dsm_model_opts *opts,
                   struct dsm_model **out, struct dsm_err *err) {
    *out = NULL;
    struct dsm_model *m = dsm_calloc(1, sizeof *m, err);
    if (!m) return DSM_ENOMEM;
    int rc = dsm_config_load(dir, &m->cfg, err);
    if (rc) goto fail;
    m->be = be;
    m->wdt = opts ? opts->wdtype : DSM_DT_F32;
    m->Tmax = opts && opts->max_tokens > 0 ? opts->max_tokens : 512;
    m->P = opts && opts->max_seq > 0 ? opts->max_seq : 4096;
    if (m->P > m->cfg.max_position_embeddings) m->P = m->cfg.max_position_embeddings;
    if (m->Tmax > m->P) m->Tmax = m->P;
    m->w = dsm_calloc((size_t)(m->cfg.n_layers + 1) * DSM_P_COUNT, sizeof *m->w, err);
    if (!m->w) {
        rc = DSM_ENOMEM;
        goto fail;
    }
    if ((rc = load_weights(m, dir, err)) || (rc = build_rope(m, err)) || (rc = alloc_activations(m, err))) goto fail;
    if (m->cfg.tie_word_embeddings) *dsm_model_wslot(m, DSM_P_LM_HEAD, 0) = *dsm_model_wslot(m, DSM_P_EMBED, 0);
    LOG_DEBUG("%s: %s, %lld parameters, weights %s on %s", dir, dsm_arch_name(m->cfg.arch),
              dsm_config_n_params(&m->cfg), dsm_dtype_name(m->wdt), be->name);
    *out = m;
    return DSM_OK;
fail:
    dsm_model_destroy(m);
    return rc;
}

void dsm_model_destroy(struct dsm_model *m) {
    if (!m) return;
    if (m->be) {
        m->be->free(m->be, m->wslab);
        m->be->free(m->be, m->aslab);
        m->be->free(m->be, m->rope_cos);
        m->be->free(m->be, m->rope_sin);
    }
    free(m->w);
    free(m);
}

const struct dsm_model_config *dsm_model_config(const struct dsm_model *m) { return &m->cfg; }

int dsm_kv_create(struct dsm_model *m, int capacity, struct dsm_kv **out, struct dsm_err *err) {
    *out = NULL;
    if (capacity < 1 || capacity > m->P)
        return dsm_errf(err, DSM_EINVAL, "KV capacity %d is outside [1, %d] (the model's max_seq)", capacity, m->P);
    struct dsm_kv *kv = dsm_calloc(1, sizeof *kv, err);
    if (!kv) return DSM_ENOMEM;
    size_t n = (size_t)m->cfg.n_layers * capacity * m->cfg.n_kv_heads * m->cfg.head_dim;
    kv->k = m->be->alloc(m->be, n * sizeof(float));
    kv->v = m->be->alloc(m->be, n * sizeof(float));
    kv->m = m;
    kv->cap = capacity;
    kv->owned = 1;
    if (!kv->k || !kv->v) {
        dsm_kv_destroy(kv);
        return dsm_errf(err, DSM_ENOMEM, "cannot allocate a KV cache of %d tokens (%zu bytes)", capacity, 2 * n * sizeof(float));
    }
    *out = kv;
    return DSM_OK;
}

void dsm_kv_destroy(struct dsm_kv *kv) {
    if (!kv || !kv->owned) return;
    kv->m->be->free(kv->m->be, kv->k);
    kv->m->be->free(kv->m->be, kv->v);
    free(kv);
}

void dsm_kv_reset(struct dsm_kv *kv) { kv->len = 0; }
int dsm_kv_len(const struct dsm_kv *kv) { return kv->len; }

#define W(p, l) (*dsm_model_wslot(m, (p), (l)))

void dsm_model_mlp_block(struct dsm_model *m, int l, int T) {
    struct dsm_backend *be = m->be;
    const struct dsm_model_config *c = &m->cfg;
    int C = c->hidden_size, F = c->intermediate_size;
    be->rmsnorm(be, m->h, m->x, W(DSM_P_MLP_NORM, l), T, C, c->rms_norm_eps);
    be->linear(be, m->ffg, m->h, W(DSM_P_GATE, l), m->wdt, NULL, T, F, C);
    be->linear(be, m->ffu, m->h, W(DSM_P_UP, l), m->wdt, NULL, T, F, C);
    be->swiglu(be, m->ffg, m->ffg, m->ffu, (size_t)T * F);
    be->linear(be, m->h, m->ffg, W(DSM_P_DOWN, l), m->wdt, NULL, T, C, F);
    be->add(be, m->x, m->x, m->h, (size_t)T * C);
}

/* One chunk of T <= Tmax tokens at positions kv->len.. ; leaves the final hidden states
 * (normalised) in m->x. */
static void forward_chunk(struct dsm_model *m, struct dsm_kv *kv, const int32_t *ids, int T) {
    struct dsm_backend *be = m->be;
    const struct dsm_model_config *c = &m->cfg;
    int C = c->hidden_size, D = c->head_dim;
    int Q = c->n_heads * D, KV = c->n_kv_heads * D, pos0 = kv->len;
    float scale = 1.0f / sqrtf((float)D);
    int32_t pos[512];
    be->upload(be, m->ids_dev, ids, sizeof(int32_t) * (size_t)T);
    for (int t0 = 0; t0 < T; t0 += 512) {
        int n = T - t0 < 512 ? T - t0 : 512;
        for (int i = 0; i < n; i++) pos[i] = pos0 + t0 + i;
        be->upload(be, m->pos_dev + t0, pos, sizeof(int32_t) * (size_t)n);
    }
    be->embedding(be, m->x, m->ids_dev, W(DSM_P_EMBED, 0), m->wdt, T, C);
    for (int l = 0; l < c->n_layers; l++) {
        float *kc = kv->k + (size_t)l * kv->cap * KV, *vc = kv->v + (size_t)l * kv->cap * KV;
        float *kslot = kc + (size_t)pos0 * KV, *vslot = vc + (size_t)pos0 * KV; /* (T, KV) */
        /* attention block */
        be->rmsnorm(be, m->h, m->x, W(DSM_P_ATTN_NORM, l), T, C, c->rms_norm_eps);
        be->linear(be, m->q, m->h, W(DSM_P_Q, l), m->wdt, W(DSM_P_Q_BIAS, l), T, Q, C);
        be->linear(be, kslot, m->h, W(DSM_P_K, l), m->wdt, W(DSM_P_K_BIAS, l), T, KV, C);
        be->linear(be, vslot, m->h, W(DSM_P_V, l), m->wdt, W(DSM_P_V_BIAS, l), T, KV, C);
        be->rope(be, m->q, m->pos_dev, m->rope_cos, m->rope_sin, T, c->n_heads, D, Q);
        be->rope(be, kslot, m->pos_dev, m->rope_cos, m->rope_sin, T, c->n_kv_heads, D, KV);
        be->attention(be, m->att, m->q, kc, vc, m->attn_scratch, T, pos0, c->n_heads, c->n_kv_heads, D, scale);
        be->linear(be, m->h, m->att, W(DSM_P_O, l), m->wdt, W(DSM_P_O_BIAS, l), T, C, Q);
        be->add(be, m->x, m->x, m->h, (size_t)T * C);
        dsm_model_mlp_block(m, l, T);
    }
    be->rmsnorm(be, m->x, m->x, W(DSM_P_NORM, 0), T, C, c->rms_norm_eps);
    kv->len += T;
}

void dsm_model_lm_head(struct dsm_model *m, float *out, int r0, int r1) {
    struct dsm_backend *be = m->be;
    int C = m->cfg.hidden_size, V = m->cfg.vocab_size;
    for (int r = r0; r < r1; r += LOGIT_ROWS) {
        int n = r1 - r < LOGIT_ROWS ? r1 - r : LOGIT_ROWS;
        be->linear(be, m->logits, m->x + (size_t)r * C, W(DSM_P_LM_HEAD, 0), m->wdt, NULL, n, V, C);
        be->download(be, out + (size_t)(r - r0) * V, m->logits, sizeof(float) * (size_t)n * V);
    }
}

int dsm_model_forward(struct dsm_model *m, struct dsm_kv *kv, const int32_t *ids, int n,
                      float *logits, int all_positions, struct dsm_err *err) {
    if (n < 1) return dsm_errf(err, DSM_EINVAL, "forward needs at least one token");
    if (kv->m != m) return dsm_errf(err, DSM_EINVAL, "KV cache belongs to another model");
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size)
            return dsm_errf(err, DSM_EINVAL, "token %d (id %d) is out of range for vocab_size %d", i, ids[i], m->cfg.vocab_size);
    if (n > kv->cap - kv->len)
        return dsm_errf(err, DSM_EINVAL, "%d more tokens do not fit: the KV cache holds %d of %d", n, kv->len, kv->cap);
    int V = m->cfg.vocab_size;
    int start = kv->len;
    for (int t0 = 0; t0 < n; t0 += m->Tmax) {
        int T = n - t0 < m->Tmax ? n - t0 : m->Tmax;
        forward_chunk(m, kv, ids + t0, T);
        if (all_positions) dsm_model_lm_head(m, logits + (size_t)t0 * V, 0, T);
        else if (t0 + T == n) dsm_model_lm_head(m, logits, T - 1, T);
    }
    int rc = m->be->sync(m->be, err);
    if (rc) kv->len = start;
    return rc;
}

int dsm_model_logits(struct dsm_model *m, const int32_t *ids, int n, float *logits, struct dsm_err *err) {
    struct dsm_kv *kv = NULL;
    if (n < 1) return dsm_errf(err, DSM_EINVAL, "forward needs at least one token");
    if (n > m->P) return dsm_errf(err, DSM_EINVAL, "%d tokens exceed the model's max_seq %d", n, m->P);
    int rc = dsm_kv_create(m, n, &kv, err);
    if (rc) return rc;
    rc = dsm_model_forward(m, kv, ids, n, logits, 1, err);
    dsm_kv_destroy(kv);
    return rc;
}
