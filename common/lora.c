/* lora.c - LoRA adapters in PEFT layout; see lora.h. */
#include "common/lora.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/model_impl.h"
#include "common/safetensors.h"
#include "common/util.h"

struct dsm_lora {
    struct dsm_model *m;
    struct dsm_lora_cfg cfg;
    float scale;
    void *slab;
    float **ab; /* (L * DSM_P_COUNT * 2): A then B of (layer, p) */
};

static const unsigned ALL_TARGETS = (1u << DSM_P_Q) | (1u << DSM_P_K) | (1u << DSM_P_V) | (1u << DSM_P_O) |
                                    (1u << DSM_P_GATE) | (1u << DSM_P_UP) | (1u << DSM_P_DOWN);

static int module_param(const char *name, size_t len) {
    for (int p = 0; p < DSM_P_COUNT; p++) {
        const char *mod = dsm_param_table[p].module;
        if (mod && strlen(mod) == len && !strncmp(mod, name, len)) return p;
    }
    return -1;
}

int dsm_lora_parse(const char *spec, struct dsm_lora_cfg *cfg, struct dsm_err *err) {
    *cfg = (struct dsm_lora_cfg){.r = 16, .alpha = -1, .dropout = 0.0, .targets = ALL_TARGETS};
    const char *s = spec;
    while (*s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        if (!eq) return dsm_errf(err, DSM_EINVAL, "LoRA spec '%s': '%.*s' is not key=value", spec, (int)len, s);
        size_t kl = (size_t)(eq - s);
        const char *v = eq + 1;
        size_t vl = len - kl - 1;
        char val[256];
        snprintf(val, sizeof val, "%.*s", (int)vl, v);
        char *e = NULL;
        if (kl == 1 && *s == 'r') {
            long r = strtol(val, &e, 10);
            if (*e || e == val || r < 1 || r > 4096) return dsm_errf(err, DSM_EINVAL, "LoRA r must be an integer in [1, 4096], got '%s'", val);
            cfg->r = (int)r;
        } else if (kl == 5 && !strncmp(s, "alpha", 5)) {
            cfg->alpha = strtod(val, &e);
            if (*e || e == val || !(cfg->alpha > 0)) return dsm_errf(err, DSM_EINVAL, "LoRA alpha must be > 0, got '%s'", val);
        } else if (kl == 7 && !strncmp(s, "dropout", 7)) {
            cfg->dropout = strtod(val, &e);
            if (*e || e == val || cfg->dropout < 0 || cfg->dropout >= 1)
                return dsm_errf(err, DSM_EINVAL, "LoRA dropout must be in [0, 1), got '%s'", val);
        } else if (kl == 7 && !strncmp(s, "targets", 7)) {
            cfg->targets = 0;
            if (!strcmp(val, "all")) cfg->targets = ALL_TARGETS;
            for (const char *t = val; *t && strcmp(val, "all");) {
                size_t tl = strcspn(t, "+:");
                int p = module_param(t, tl);
                if (p < 0)
                    return dsm_errf(err, DSM_EINVAL, "LoRA target '%.*s' is not a module (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)",
                                    (int)tl, t);
                cfg->targets |= 1u << p;
                t += tl;
                if (*t) t++;
            }
            if (!cfg->targets) return dsm_errf(err, DSM_EINVAL, "LoRA targets list is empty");
        } else {
            return dsm_errf(err, DSM_EINVAL, "LoRA spec: unknown key '%.*s' (r, alpha, dropout, targets)", (int)kl, s);
        }
        s = end ? end + 1 : s + len;
    }
    if (cfg->alpha < 0) cfg->alpha = 2.0 * cfg->r;
    return DSM_OK;
}

void dsm_lora_targets_str(unsigned targets, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = 0;
    for (int p = 0; p < DSM_P_COUNT && o < cap; p++)
        if (targets & (1u << p)) o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? "+" : "", dsm_param_table[p].module);
}

static float **slot(const struct dsm_lora *lo, enum dsm_param p, int layer, int which) {
    return &lo->ab[((size_t)layer * DSM_P_COUNT + p) * 2 + which];
}

/* Rows and columns of p's weight: N (out) and K (in). */
static void dims(const struct dsm_model_config *c, enum dsm_param p, int *N, int *K) {
    int nd;
    int64_t sh[2];
    dsm_param_shape(c, p, &nd, sh);
    *N = (int)sh[0];
    *K = (int)sh[1];
}

static int alloc_adapter(struct dsm_model *m, const struct dsm_lora_cfg *cfg, struct dsm_lora **out, struct dsm_err *err) {
    *out = NULL;
    const struct dsm_model_config *c = &m->cfg;
    for (int p = 0; p < DSM_P_COUNT; p++)
        if ((cfg->targets & (1u << p)) && !dsm_param_table[p].module)
            return dsm_errf(err, DSM_EINVAL, "LoRA target bit %d is not a projection", p);
    struct dsm_lora *lo = dsm_calloc(1, sizeof *lo, err);
    if (!lo) return DSM_ENOMEM;
    lo->m = m;
    lo->cfg = *cfg;
    lo->scale = (float)(cfg->alpha / cfg->r);
    lo->ab = dsm_calloc((size_t)c->n_layers * DSM_P_COUNT * 2, sizeof *lo->ab, err);
    if (!lo->ab) {
        free(lo);
        return DSM_ENOMEM;
    }
    size_t total = 0;
    for (int p = 0; p < DSM_P_COUNT; p++)
        if (cfg->targets & (1u << p)) {
            int N, K;
            dims(c, (enum dsm_param)p, &N, &K);
            total += (size_t)c->n_layers * ((((size_t)cfg->r * K * 4 + 63) & ~(size_t)63) + (((size_t)N * cfg->r * 4 + 63) & ~(size_t)63));
        }
    lo->slab = m->be->alloc(m->be, total ? total : 64);
    if (!lo->slab) {
        dsm_lora_destroy(lo);
        return dsm_errf(err, DSM_ENOMEM, "cannot allocate %zu bytes for the LoRA adapter", total);
    }
    char *q = lo->slab;
    for (int l = 0; l < c->n_layers; l++)
        for (int p = 0; p < DSM_P_COUNT; p++)
            if (cfg->targets & (1u << p)) {
                int N, K;
                dims(c, (enum dsm_param)p, &N, &K);
                *slot(lo, (enum dsm_param)p, l, 0) = (float *)q;
                q += ((size_t)cfg->r * K * 4 + 63) & ~(size_t)63;
                *slot(lo, (enum dsm_param)p, l, 1) = (float *)q;
                q += ((size_t)N * cfg->r * 4 + 63) & ~(size_t)63;
            }
    *out = lo;
    return DSM_OK;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int dsm_lora_create(struct dsm_model *m, const struct dsm_lora_cfg *cfg, uint64_t seed, struct dsm_lora **out,
                    struct dsm_err *err) {
    int rc = alloc_adapter(m, cfg, out, err);
    if (rc) return rc;
    struct dsm_lora *lo = *out;
    const struct dsm_model_config *c = &m->cfg;
    uint64_t st = seed ^ 0x10AA5EEDull;
    for (int l = 0; l < c->n_layers; l++)
        for (int p = 0; p < DSM_P_COUNT; p++) {
            if (!(cfg->targets & (1u << p))) continue;
            int N, K;
            dims(c, (enum dsm_param)p, &N, &K);
            size_t na = (size_t)cfg->r * K, nb = (size_t)N * cfg->r;
            float *h = malloc(sizeof(float) * (na > nb ? na : nb));
            if (!h) {
                dsm_lora_destroy(lo);
                *out = NULL;
                return dsm_errf(err, DSM_ENOMEM, "out of memory initialising LoRA");
            }
            float bound = 1.0f / sqrtf((float)K);
            for (size_t i = 0; i < na; i++) h[i] = bound * (float)((double)(splitmix(&st) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
            m->be->upload(m->be, *slot(lo, (enum dsm_param)p, l, 0), h, sizeof(float) * na);
            m->be->zero(m->be, *slot(lo, (enum dsm_param)p, l, 1), sizeof(float) * nb);
            free(h);
        }
    return DSM_OK;
}

void dsm_lora_name(enum dsm_param p, int layer, int which, char *buf, size_t cap) {
    char hf[160];
    dsm_param_name(p, layer, hf, sizeof hf);
    size_t n = strlen(hf);
    if (n > 7 && !strcmp(hf + n - 7, ".weight")) hf[n - 7] = 0;
    snprintf(buf, cap, "base_model.model.%s.lora_%c.weight", hf, which ? 'B' : 'A');
}

int dsm_lora_save(const struct dsm_lora *lo, const char *dir, const char *base, struct dsm_err *err) {
    const struct dsm_model_config *c = &lo->m->cfg;
    struct dsm_backend *be = lo->m->be;
    char path[4200];
    if (strlen(dir) > 4000) return dsm_errf(err, DSM_EINVAL, "adapter path too long");
    int rc = dsm_mkdir_p(dir, err);
    if (rc) return rc;
    json_t *tm = json_array();
    for (int p = 0; p < DSM_P_COUNT; p++)
        if (lo->cfg.targets & (1u << p)) json_array_append_new(tm, json_string(dsm_param_table[p].module));
    json_t *j = json_pack("{s:s, s:s, s:i, s:f, s:f, s:o, s:s, s:b, s:b, s:b, s:s, s:n, s:n}", "peft_type", "LORA",
                          "task_type", "CAUSAL_LM", "r", lo->cfg.r, "lora_alpha", lo->cfg.alpha, "lora_dropout",
                          lo->cfg.dropout, "target_modules", tm, "bias", "none", "fan_in_fan_out", 0, "inference_mode", 1,
                          "use_rslora", 0, "base_model_name_or_path", base ? base : "", "modules_to_save",
                          "layers_to_transform");
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (!text) return dsm_errf(err, DSM_ENOMEM, "out of memory writing adapter_config.json");
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    rc = dsm_file_write_atomic(path, text, strlen(text), err);
    free(text);
    if (rc) return rc;
    /* tensors */
    int count = 0;
    size_t total = 0;
    for (int l = 0; l < c->n_layers; l++)
        for (int p = 0; p < DSM_P_COUNT; p++)
            if (lo->cfg.targets & (1u << p)) {
                int N, K;
                dims(c, (enum dsm_param)p, &N, &K);
                total += (size_t)lo->cfg.r * (size_t)(K + N);
                count += 2;
            }
    float *host = malloc(sizeof(float) * (total ? total : 1));
    char *names = malloc((size_t)(count ? count : 1) * 200);
    struct st_writer *w = NULL;
    if (!host || !names) {
        rc = dsm_errf(err, DSM_ENOMEM, "out of memory writing the adapter");
        goto done;
    }
    if ((rc = st_writer_create(&w, err))) goto done;
    size_t off = 0;
    int k = 0;
    for (int l = 0; l < c->n_layers; l++)
        for (int p = 0; p < DSM_P_COUNT; p++) {
            if (!(lo->cfg.targets & (1u << p))) continue;
            int N, K;
            dims(c, (enum dsm_param)p, &N, &K);
            for (int which = 0; which < 2; which++) {
                int64_t sh[2] = {which ? N : lo->cfg.r, which ? lo->cfg.r : K};
                size_t n = (size_t)sh[0] * (size_t)sh[1];
                char *name = names + (size_t)k++ * 200;
                dsm_lora_name((enum dsm_param)p, l, which, name, 200);
                be->download(be, host + off, *slot(lo, (enum dsm_param)p, l, which), sizeof(float) * n);
                if ((rc = st_writer_add(w, name, DSM_DT_F32, 2, sh, host + off, err))) goto done;
                off += n;
            }
        }
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    rc = st_writer_write(w, path, err);
done:
    st_writer_destroy(w);
    free(host);
    free(names);
    return rc;
}

int dsm_lora_load(struct dsm_model *m, const char *dir, struct dsm_lora **out, struct dsm_err *err) {
    *out = NULL;
    char path[4200];
    if (strlen(dir) > 4000) return dsm_errf(err, DSM_EINVAL, "adapter path too long");
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) return dsm_errf(err, DSM_ENOTFOUND, "%s: %s", path, je.text);
    struct dsm_lora_cfg cfg = {0};
    const char *type = json_string_value(json_object_get(j, "peft_type"));
    json_t *r = json_object_get(j, "r"), *alpha = json_object_get(j, "lora_alpha"), *tm = json_object_get(j, "target_modules");
    int rc = DSM_OK;
    if (!type || strcmp(type, "LORA") || !json_is_integer(r) || !json_is_number(alpha) || !json_is_array(tm)) {
        rc = dsm_errf(err, DSM_EINVAL, "%s: not a LoRA adapter config (needs peft_type \"LORA\", integer r, lora_alpha, target_modules list)", path);
        goto out;
    }
    if (json_is_true(json_object_get(j, "use_rslora")) || json_is_true(json_object_get(j, "use_dora"))) {
        rc = dsm_errf(err, DSM_EUNSUPPORTED, "%s: rsLoRA/DoRA adapters are not supported", path);
        goto out;
    }
    cfg.r = (int)json_integer_value(r);
    cfg.alpha = json_number_value(alpha);
    cfg.dropout = json_number_value(json_object_get(j, "lora_dropout"));
    for (size_t i = 0; i < json_array_size(tm); i++) {
        const char *name = json_string_value(json_array_get(tm, i));
        int p = name ? module_param(name, strlen(name)) : -1;
        if (p < 0) {
            rc = dsm_errf(err, DSM_EUNSUPPORTED, "%s: target module '%s' is not one we adapt", path, name ? name : "?");
            goto out;
        }
        cfg.targets |= 1u << p;
    }
    if (cfg.r < 1 || !(cfg.alpha > 0) || !cfg.targets) {
        rc = dsm_errf(err, DSM_EINVAL, "%s: r, lora_alpha must be positive and target_modules non-empty", path);
        goto out;
    }
    if ((rc = alloc_adapter(m, &cfg, out, err))) goto out;
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    struct st_file *f = NULL;
    if ((rc = st_open(path, &f, err))) goto out;
    const struct dsm_model_config *c = &m->cfg;
    char name[200];
    for (int l = 0; l < c->n_layers && !rc; l++)
        for (int p = 0; p < DSM_P_COUNT && !rc; p++) {
            if (!(cfg.targets & (1u << p))) continue;
            int N, K;
            dims(c, (enum dsm_param)p, &N, &K);
            for (int which = 0; which < 2 && !rc; which++) {
                int64_t r0 = which ? N : cfg.r, c0 = which ? cfg.r : K;
                dsm_lora_name((enum dsm_param)p, l, which, name, sizeof name);
                const struct st_tensor *t = st_find(f, name);
                if (!t) {
                    rc = dsm_errf(err, DSM_EINVAL, "%s: tensor '%s' is missing (adapter for another model?)", path, name);
                } else if (!t->dtype_ok || t->ndim != 2 || t->shape[0] != r0 || t->shape[1] != c0) {
                    rc = dsm_errf(err, DSM_EINVAL, "%s: tensor '%s' has shape [%lld, %lld] but the model needs [%lld, %lld]: adapter for another model?",
                                  path, name, (long long)t->shape[0], (long long)(t->ndim > 1 ? t->shape[1] : 0), (long long)r0,
                                  (long long)c0);
                } else {
                    size_t n = (size_t)r0 * (size_t)c0;
                    float *h = malloc(sizeof(float) * n);
                    if (!h) {
                        rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
                        break;
                    }
                    for (size_t i = 0; i < n; i++) {
                        uint16_t u;
                        switch (t->dtype) {
                        case DSM_DT_F32: memcpy(&h[i], (const char *)t->data + 4 * i, 4); break;
                        case DSM_DT_BF16: memcpy(&u, (const char *)t->data + 2 * i, 2); h[i] = dsm_bf16_to_f32(u); break;
                        default: memcpy(&u, (const char *)t->data + 2 * i, 2); h[i] = dsm_f16_to_f32(u); break;
                        }
                    }
                    m->be->upload(m->be, *slot(*out, (enum dsm_param)p, l, which), h, sizeof(float) * n);
                    free(h);
                }
            }
        }
    st_close(f);
out:
    json_decref(j);
    if (rc && *out) {
        dsm_lora_destroy(*out);
        *out = NULL;
    }
    return rc;
}

int dsm_lora_merge(struct dsm_lora *lo, struct dsm_err *err) {
    struct dsm_model *m = lo->m;
    if (m->wdt != DSM_DT_F32) return dsm_errf(err, DSM_EINVAL, "merging needs float32 base weights");
    const struct dsm_model_config *c = &m->cfg;
    for (int l = 0; l < c->n_layers; l++)
        for (int p = 0; p < DSM_P_COUNT; p++) {
            if (!(lo->cfg.targets & (1u << p))) continue;
            int N, K, r = lo->cfg.r;
            dims(c, (enum dsm_param)p, &N, &K);
            /* on the host, once: W[n][k] += s Σ_j B[n][j] A[j][k] */
            float *A = malloc(sizeof(float) * (size_t)r * K), *B = malloc(sizeof(float) * (size_t)N * r),
                  *W = malloc(sizeof(float) * (size_t)N * K);
            if (!A || !B || !W) {
                free(A), free(B), free(W);
                return dsm_errf(err, DSM_ENOMEM, "out of memory merging LoRA");
            }
            float *wdev = *dsm_model_wslot(m, (enum dsm_param)p, l);
            m->be->download(m->be, A, *slot(lo, (enum dsm_param)p, l, 0), sizeof(float) * (size_t)r * K);
            m->be->download(m->be, B, *slot(lo, (enum dsm_param)p, l, 1), sizeof(float) * (size_t)N * r);
            m->be->download(m->be, W, wdev, sizeof(float) * (size_t)N * K);
            for (int n = 0; n < N; n++)
                for (int k = 0; k < K; k++) {
                    double acc = 0.0;
                    for (int j = 0; j < r; j++) acc += (double)B[(size_t)n * r + j] * A[(size_t)j * K + k];
                    W[(size_t)n * K + k] += (float)(lo->scale * acc);
                }
            m->be->upload(m->be, wdev, W, sizeof(float) * (size_t)N * K);
            free(A), free(B), free(W);
        }
    return m->be->sync(m->be, err);
}

void dsm_lora_destroy(struct dsm_lora *lo) {
    if (!lo) return;
    if (lo->m) lo->m->be->free(lo->m->be, lo->slab);
    free(lo->ab);
    free(lo);
}

const struct dsm_lora_cfg *dsm_lora_config(const struct dsm_lora *lo) { return &lo->cfg; }
void dsm_lora_set_dropout(struct dsm_lora *lo, double p) { lo->cfg.dropout = p; }
float dsm_lora_scale(const struct dsm_lora *lo) { return lo->scale; }

float *dsm_lora_a(const struct dsm_lora *lo, enum dsm_param p, int layer) {
    return (lo->cfg.targets & (1u << p)) ? *slot(lo, p, layer, 0) : NULL;
}
float *dsm_lora_b(const struct dsm_lora *lo, enum dsm_param p, int layer) {
    return (lo->cfg.targets & (1u << p)) ? *slot(lo, p, layer, 1) : NULL;
}
