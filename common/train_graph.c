/* train_graph.c - the decoder's training forward and backward pass in backend ops; see train.h.
 *
 * Dimension legend: V vocab, C hidden, F intermediate, L layers, Hq/Hkv heads, D head dim,
 * Q = Hq*D, KV = Hkv*D, B sequences of T tokens, N = B*T rows.
 *
 * Forward of layer l (what model.c's forward_chunk computes, with every intermediate kept):
 *   h1 = rmsnorm(x_l); q,k,v = h1·Wᵀ+b; rope(q,k); att = attention per sequence;
 *   xmid = x_l + att·Woᵀ(+bo); h2 = rmsnorm(xmid); g,u = h2·Wg/uᵀ; act = silu(g)*u;
 *   x_{l+1} = xmid + act·Wdᵀ.
 * Loss: xn = rmsnorm(x_L); logits = xn·W_headᵀ in chunks of LOGIT_CHUNK rows, cross-entropy with
 * the shifted labels; logits are never kept for the whole batch.
 * Backward walks the same ops in reverse; d(residual) flows in dres.
 */
#include "common/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/lora.h"
#include "common/optim.h"
#include "common/model_impl.h"
#include "common/util.h"

/* Rows of logits materialised at once in the loss (LOGIT_CHUNK x V floats). */
#define LOGIT_CHUNK 256

/* What one layer's forward leaves for its backward (all (N, ·)). */
struct layer_acts {
    float *h1, *q, *k, *v, *att, *xmid, *h2, *g, *u, *act;
};

struct dsm_train {
    struct dsm_model *m;
    struct dsm_backend *be;
    int rows, seq, recompute;
    void *gslab;
    size_t gbytes, abytes;
    float **g;               /* (L + 1) * DSM_P_COUNT gradient pointers, as model->w */
    void *aslab;
    float **xres;            /* (L + 1): xres[l] input of layer l, xres[L] final pre-norm */
    struct layer_acts *la;   /* (L); with recompute all alias one set */
    float *xn;               /* (N, C) final normed */
    float *tmp;              /* (N, C) linear outputs before the residual add */
    float *dres, *dh;        /* (N, C) */
    float *datt, *dq;        /* (N, Q) */
    float *dk, *dv;          /* (N, KV) */
    float *dff, *dup;        /* (N, F) */
    float *logits;           /* (LOGIT_CHUNK, V) */
    float *logp;             /* (LOGIT_CHUNK) */
    float *attn_scratch;
    int32_t *ids_dev, *pos_dev, *tgt_dev; /* (N) */
    float *logp_host;        /* (LOGIT_CHUNK) */
    int32_t *tgt_host;       /* (max_rows) the shifted targets of the current batch */
    int32_t *rows_host;      /* (max_rows) rows with a target, when some are masked */
    float *xg, *dxg;         /* (LOGIT_CHUNK, C) gathered rows of xn and their gradient */
    int32_t *tgc_dev;        /* (LOGIT_CHUNK) targets of the gathered rows */
    /* LoRA (NULL when full fine-tuning) */
    struct dsm_lora *lora;
    int r;
    void *lgslab;
    size_t lgbytes;
    float **lg;              /* (L * DSM_P_COUNT * 2) gradients of A, B */
    float **lu;              /* (L * DSM_P_COUNT) saved s·(x Aᵀ), (N, r) each */
    float *ltmp;             /* (N, max(Q, KV, C, F)) adapter output before the add */
    float *ldu;              /* (N, r) */
    float *ldrop, *ldx;      /* (N, max(C, Q, F)): dropped-out adapter input and its gradient */
    double dropout;          /* LoRA dropout probability (0: none) */
    uint64_t seed;           /* dropout masks of the next batch derive from it */
    int training;            /* 1 inside a batch with backward: dropout active */
    int lora_off;            /* 1: the forward leaves the adapter out (the base model's outputs) */
};

#define W(p, l) (*dsm_model_wslot(t->m, (p), (l)))
#define G(p, l) (*grad_slot(t, (p), (l)))

static float **grad_slot(struct dsm_train *t, enum dsm_param p, int layer) {
    int row = dsm_param_table[p].per_layer ? layer + 1 : 0;
    return &t->g[(size_t)row * DSM_P_COUNT + p];
}

static size_t al64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

/* Gradients of A and B of every adapted (layer, module). */
static int alloc_lora_grads(struct dsm_train *t, struct dsm_err *err) {
    const struct dsm_model_config *c = &t->m->cfg;
    size_t total = 0;
    int pass;
    char *q = NULL;
    for (pass = 0; pass < 2; pass++) {
        for (int l = 0; l < c->n_layers; l++)
            for (int p = 0; p < DSM_P_COUNT; p++) {
                if (!dsm_lora_a(t->lora, (enum dsm_param)p, l)) continue;
                int nd;
                int64_t sh[2];
                dsm_param_shape(c, (enum dsm_param)p, &nd, sh);
                size_t na = al64(4 * (size_t)t->r * (size_t)sh[1]), nb = al64(4 * (size_t)sh[0] * (size_t)t->r);
                if (pass) {
                    t->lg[((size_t)l * DSM_P_COUNT + p) * 2] = (float *)q;
                    t->lg[((size_t)l * DSM_P_COUNT + p) * 2 + 1] = (float *)(q + na);
                    q += na + nb;
                } else {
                    total += na + nb;
                }
            }
        if (!pass) {
            t->lgslab = t->be->alloc(t->be, total ? total : 64);
            if (!t->lgslab) return dsm_errf(err, DSM_ENOMEM, "cannot allocate %zu bytes of LoRA gradients", total);
            t->lgbytes = total;
            q = t->lgslab;
        }
    }
    return DSM_OK;
}

static int alloc_grads(struct dsm_train *t, struct dsm_err *err) {
    const struct dsm_model_config *c = &t->m->cfg;
    if (t->lora) return alloc_lora_grads(t, err); /* base weights frozen: no gradients */
    size_t total = 0;
    for (int p = 0; p < DSM_P_COUNT; p++)
        if (dsm_param_present(c, (enum dsm_param)p))
            total += (dsm_param_table[p].per_layer ? (size_t)c->n_layers : 1) * al64(4 * dsm_param_numel(c, (enum dsm_param)p));
    t->gslab = t->be->alloc(t->be, total);
    if (!t->gslab) return dsm_errf(err, DSM_ENOMEM, "cannot allocate %zu bytes of gradients", total);
    t->gbytes = total;
    char *q = t->gslab;
    for (int p = 0; p < DSM_P_COUNT; p++) {
        if (!dsm_param_present(c, (enum dsm_param)p)) continue;
        for (int l = 0; l < (dsm_param_table[p].per_layer ? c->n_layers : 1); l++) {
            *grad_slot(t, (enum dsm_param)p, l) = (float *)q;
            q += al64(4 * dsm_param_numel(c, (enum dsm_param)p));
        }
    }
    if (c->tie_word_embeddings) *grad_slot(t, DSM_P_LM_HEAD, 0) = *grad_slot(t, DSM_P_EMBED, 0);
    return DSM_OK;
}

/* Carve the activation slab: first pass (base NULL) sizes it, second assigns pointers. */
static size_t carve(struct dsm_train *t, char *base) {
    const struct dsm_model_config *c = &t->m->cfg;
    size_t N = (size_t)t->rows, C = (size_t)c->hidden_size, F = (size_t)c->intermediate_size;
    size_t Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim;
    size_t V = (size_t)c->vocab_size, off = 0;
    int L = c->n_layers;
#define TAKE(ptr, nfloats)                                       \
    do {                                                         \
        if (base) (ptr) = (void *)(base + off);                  \
        off += al64(4 * (size_t)(nfloats));                      \
    } while (0)
    for (int l = 0; l <= L; l++) TAKE(t->xres[l], N * C);
    int sets = t->recompute ? 1 : L;
    for (int l = 0; l < sets; l++) {
        struct layer_acts *a = &t->la[l];
        TAKE(a->h1, N * C);
        TAKE(a->q, N * Q);
        TAKE(a->k, N * KV);
        TAKE(a->v, N * KV);
        TAKE(a->att, N * Q);
        TAKE(a->xmid, N * C);
        TAKE(a->h2, N * C);
        TAKE(a->g, N * F);
        TAKE(a->u, N * F);
        TAKE(a->act, N * F);
    }
    if (base && t->recompute)
        for (int l = 1; l < L; l++) t->la[l] = t->la[0];
    TAKE(t->xn, N * C);
    TAKE(t->tmp, N * C);
    TAKE(t->dres, N * C);
    TAKE(t->dh, N * C);
    TAKE(t->datt, N * Q);
    TAKE(t->dq, N * Q);
    TAKE(t->dk, N * KV);
    TAKE(t->dv, N * KV);
    TAKE(t->dff, N * F);
    TAKE(t->dup, N * F);
    TAKE(t->logits, (size_t)LOGIT_CHUNK * V);
    TAKE(t->xg, (size_t)LOGIT_CHUNK * C);
    TAKE(t->dxg, (size_t)LOGIT_CHUNK * C);
    TAKE(t->tgc_dev, LOGIT_CHUNK);
    TAKE(t->logp, LOGIT_CHUNK);
    TAKE(t->attn_scratch, t->be->attention_scratch(t->be, t->seq, t->seq, c->n_heads));
    if (t->lora) {
        size_t widest = C > F ? C : F;
        widest = widest > Q ? widest : Q;
        for (int l = 0; l < L; l++)
            for (int p = 0; p < DSM_P_COUNT; p++)
                if (dsm_lora_a(t->lora, (enum dsm_param)p, l)) TAKE(t->lu[(size_t)l * DSM_P_COUNT + p], N * (size_t)t->r);
        TAKE(t->ltmp, N * widest);
        TAKE(t->ldu, N * (size_t)t->r);
        if (t->dropout > 0) {
            TAKE(t->ldrop, N * widest);
            TAKE(t->ldx, N * widest);
        }
    }
    TAKE(t->ids_dev, N);
    TAKE(t->pos_dev, N);
    TAKE(t->tgt_dev, N);
#undef TAKE
    return off;
}

int dsm_train_create(struct dsm_model *m, const struct dsm_train_opts *opts, struct dsm_train **out,
                     struct dsm_err *err) {
    *out = NULL;
    struct dsm_backend *be = m->be;
    if (m->wdt != DSM_DT_F32 && !opts->lora)
        return dsm_errf(err, DSM_EINVAL, "full fine-tuning needs float32 weights (the model was loaded as %s; LoRA can train on bf16/f16 base weights)",
                        dsm_dtype_name(m->wdt));
    if (!be->linear_backward || !be->embedding_backward || !be->rmsnorm_backward || !be->rope_backward ||
        !be->attention_backward || !be->swiglu_backward || !be->cross_entropy || !be->sumsq || !be->adamw || !be->sgd || !be->scale || !be->dropout)
        return dsm_errf(err, DSM_EUNSUPPORTED, "backend '%s' has no training ops", be->name);
    if (opts->max_seq < 2 || opts->max_seq > m->P || opts->max_rows < opts->max_seq)
        return dsm_errf(err, DSM_EINVAL, "training sizes: max_seq %d must be in [2, %d] and max_rows %d >= max_seq",
                        opts->max_seq, m->P, opts->max_rows);
    struct dsm_train *t = dsm_calloc(1, sizeof *t, err);
    if (!t) return DSM_ENOMEM;
    int L = m->cfg.n_layers;
    t->m = m;
    t->be = be;
    t->rows = opts->max_rows;
    t->seq = opts->max_seq;
    t->recompute = opts->recompute;
    t->lora = opts->lora;
    if (t->lora) {
        t->r = dsm_lora_config(t->lora)->r;
        t->dropout = dsm_lora_config(t->lora)->dropout;
        t->lg = dsm_calloc((size_t)L * DSM_P_COUNT * 2, sizeof *t->lg, err);
        t->lu = dsm_calloc((size_t)L * DSM_P_COUNT, sizeof *t->lu, err);
        if (!t->lg || !t->lu) {
            dsm_train_destroy(t);
            return DSM_ENOMEM;
        }
    }
    t->g = dsm_calloc((size_t)(L + 1) * DSM_P_COUNT, sizeof *t->g, err);
    t->xres = dsm_calloc((size_t)L + 1, sizeof *t->xres, err);
    t->la = dsm_calloc((size_t)L, sizeof *t->la, err);
    t->logp_host = dsm_calloc(LOGIT_CHUNK, sizeof(float), err);
    t->tgt_host = dsm_calloc((size_t)t->rows, sizeof(int32_t), err);
    t->rows_host = dsm_calloc((size_t)t->rows, sizeof(int32_t), err);
    int rc = DSM_ENOMEM;
    if (!t->g || !t->xres || !t->la || !t->logp_host || !t->tgt_host || !t->rows_host) goto fail;
    if ((rc = alloc_grads(t, err))) goto fail;
    t->abytes = carve(t, NULL);
    size_t avail, total;
    if (be->mem_info && be->mem_info(be, &avail, &total) == 0 && t->abytes > avail) {
        rc = dsm_errf(err, DSM_ENOMEM,
                      "training activations for %d rows need %.1f MB, but %s has %.1f MB free of %.1f MB "
                      "(lower --batch-size or --max-len, or use --recompute)",
                      t->rows, t->abytes / 1e6, be->name, avail / 1e6, total / 1e6);
        goto fail;
    }
    t->aslab = be->alloc(be, t->abytes);
    if (!t->aslab) {
        rc = dsm_errf(err, DSM_ENOMEM, "cannot allocate %zu bytes of training activations (%d rows; try --recompute or a smaller batch)",
                      t->abytes, t->rows);
        goto fail;
    }
    carve(t, t->aslab);
    dsm_train_zero_grad(t);
    *out = t;
    return DSM_OK;
fail:
    dsm_train_destroy(t);
    return rc;
}

void dsm_train_destroy(struct dsm_train *t) {
    if (!t) return;
    t->be->free(t->be, t->gslab);
    t->be->free(t->be, t->aslab);
    t->be->free(t->be, t->lgslab);
    free(t->g), free(t->xres), free(t->la), free(t->logp_host), free(t->lg), free(t->lu);
    free(t->tgt_host), free(t->rows_host);
    free(t);
}

void dsm_train_zero_grad(struct dsm_train *t) {
    if (t->gslab) t->be->zero(t->be, t->gslab, t->gbytes);
    if (t->lgslab) t->be->zero(t->be, t->lgslab, t->lgbytes);
}

struct dsm_lora *dsm_train_lora(struct dsm_train *t) { return t->lora; }

float *dsm_train_grad_slab(struct dsm_train *t, size_t *n_floats) {
    void *slab = t->lora ? t->lgslab : t->gslab;
    *n_floats = (t->lora ? t->lgbytes : t->gbytes) / sizeof(float);
    return slab;
}

void dsm_train_lora_enable(struct dsm_train *t, int on) { t->lora_off = !on; }

void dsm_train_set_seed(struct dsm_train *t, uint64_t seed) { t->seed = seed; }

/* Dropout seed of the adapter of p in layer l for the current batch. */
static uint64_t drop_seed(const struct dsm_train *t, enum dsm_param p, int l) {
    uint64_t z = t->seed ^ (0xD1B54A32D192ED03ull * (uint64_t)((size_t)l * DSM_P_COUNT + p + 1));
    z = (z ^ (z >> 31)) * 0x9E3779B97F4A7C15ull;
    return z ^ (z >> 29);
}

int dsm_train_params(struct dsm_train *t, struct dsm_optim_tensor **out, int *n, struct dsm_err *err) {
    const struct dsm_model_config *c = &t->m->cfg;
    int cap = (c->n_layers + 1) * DSM_P_COUNT * 2, k = 0;
    struct dsm_optim_tensor *ts = dsm_calloc((size_t)cap, sizeof *ts, err);
    if (!ts) return DSM_ENOMEM;
    for (int p = 0; p < DSM_P_COUNT; p++)
        for (int l = 0; l < (dsm_param_table[p].per_layer ? c->n_layers : 1); l++) {
            if (!dsm_param_present(c, (enum dsm_param)p)) continue;
            int nd;
            int64_t sh[2];
            dsm_param_shape(c, (enum dsm_param)p, &nd, sh);
            if (!t->lora) {
                struct dsm_optim_tensor *x = &ts[k++];
                x->p = W(p, l);
                x->g = G(p, l);
                x->n = dsm_param_numel(c, (enum dsm_param)p);
                x->ndim = nd;
                x->shape[0] = sh[0], x->shape[1] = sh[1];
                x->decay = dsm_param_is_matrix((enum dsm_param)p);
                dsm_param_name((enum dsm_param)p, l, x->name, sizeof x->name);
            } else if (dsm_lora_a(t->lora, (enum dsm_param)p, l)) {
                for (int which = 0; which < 2; which++) {
                    struct dsm_optim_tensor *x = &ts[k++];
                    x->p = which ? dsm_lora_b(t->lora, (enum dsm_param)p, l) : dsm_lora_a(t->lora, (enum dsm_param)p, l);
                    x->g = t->lg[((size_t)l * DSM_P_COUNT + p) * 2 + which];
                    x->ndim = 2;
                    x->shape[0] = which ? sh[0] : t->r;
                    x->shape[1] = which ? t->r : sh[1];
                    x->n = (size_t)x->shape[0] * (size_t)x->shape[1];
                    x->decay = 1;
                    dsm_lora_name((enum dsm_param)p, l, which, x->name, sizeof x->name);
                }
            }
        }
    *out = ts;
    *n = k;
    return DSM_OK;
}

/* y (M, N) += s · (x Aᵀ) Bᵀ when p is adapted in layer l, keeping s · x Aᵀ for the backward. */
static void lora_forward(struct dsm_train *t, enum dsm_param p, int l, const float *x, float *y, int M, int N, int K) {
    if (!t->lora || t->lora_off) return;
    const float *A = dsm_lora_a(t->lora, p, l), *B = dsm_lora_b(t->lora, p, l);
    if (!A) return;
    struct dsm_backend *be = t->be;
    float *u = t->lu[(size_t)l * DSM_P_COUNT + p];
    if (t->dropout > 0 && t->training) {
        be->dropout(be, t->ldrop, x, (size_t)M * K, (float)t->dropout, drop_seed(t, p, l));
        x = t->ldrop;
    }
    be->linear(be, u, x, A, DSM_DT_F32, NULL, M, t->r, K);
    be->scale(be, u, (size_t)M * t->r, dsm_lora_scale(t->lora));
    be->linear(be, t->ltmp, u, B, DSM_DT_F32, NULL, M, N, t->r);
    be->add(be, y, y, t->ltmp, (size_t)M * N);
}

/* Backward of the adapter of p in layer l: from dy (M, N), dB += dyᵀ u, dA += s (dy B)ᵀ x and
 * dx (M, K) += s (dy B) A. */
static void lora_backward(struct dsm_train *t, enum dsm_param p, int l, const float *dy, const float *x, float *dx,
                          int M, int N, int K) {
    if (!t->lora) return;
    const float *A = dsm_lora_a(t->lora, p, l), *B = dsm_lora_b(t->lora, p, l);
    if (!A) return;
    struct dsm_backend *be = t->be;
    float *dA = t->lg[((size_t)l * DSM_P_COUNT + p) * 2], *dB = t->lg[((size_t)l * DSM_P_COUNT + p) * 2 + 1];
    be->linear_backward(be, t->ldu, dB, NULL, dy, t->lu[(size_t)l * DSM_P_COUNT + p], B, DSM_DT_F32, M, N, t->r, 0);
    be->scale(be, t->ldu, (size_t)M * t->r, dsm_lora_scale(t->lora));
    if (t->dropout > 0 && t->training) { /* the mask again from its seed; d x = dropout(d x_dropped) */
        uint64_t sd = drop_seed(t, p, l);
        be->dropout(be, t->ldrop, x, (size_t)M * K, (float)t->dropout, sd);
        be->linear_backward(be, t->ldx, dA, NULL, t->ldu, t->ldrop, A, DSM_DT_F32, M, t->r, K, 0);
        be->dropout(be, t->ldx, t->ldx, (size_t)M * K, (float)t->dropout, sd);
        be->add(be, dx, dx, t->ldx, (size_t)M * K);
        return;
    }
    be->linear_backward(be, dx, dA, NULL, t->ldu, x, A, DSM_DT_F32, M, t->r, K, 1);
}

float *dsm_train_grad(struct dsm_train *t, enum dsm_param p, int layer) { return *grad_slot(t, p, layer); }

struct dsm_model *dsm_train_model(struct dsm_train *t) { return t->m; }

void dsm_train_memory(const struct dsm_train *t, size_t *activations, size_t *gradients) {
    if (activations) *activations = t->abytes;
    if (gradients) *gradients = t->gbytes;
}

/* Forward of layer l over B sequences of T tokens (N rows): fills la[l] and xres[l+1]. */
static void layer_forward(struct dsm_train *t, int l, int B, int T) {
    struct dsm_backend *be = t->be;
    const struct dsm_model_config *c = &t->m->cfg;
    int N = B * T, C = c->hidden_size, F = c->intermediate_size, D = c->head_dim;
    int Hq = c->n_heads, Hkv = c->n_kv_heads, Q = Hq * D, KV = Hkv * D;
    float eps = c->rms_norm_eps, scale = 1.0f / sqrtf((float)D);
    struct layer_acts *a = &t->la[l];
    be->rmsnorm(be, a->h1, t->xres[l], W(DSM_P_ATTN_NORM, l), N, C, eps);
    be->linear(be, a->q, a->h1, W(DSM_P_Q, l), t->m->wdt, W(DSM_P_Q_BIAS, l), N, Q, C);
    be->linear(be, a->k, a->h1, W(DSM_P_K, l), t->m->wdt, W(DSM_P_K_BIAS, l), N, KV, C);
    be->linear(be, a->v, a->h1, W(DSM_P_V, l), t->m->wdt, W(DSM_P_V_BIAS, l), N, KV, C);
    lora_forward(t, DSM_P_Q, l, a->h1, a->q, N, Q, C);
    lora_forward(t, DSM_P_K, l, a->h1, a->k, N, KV, C);
    lora_forward(t, DSM_P_V, l, a->h1, a->v, N, KV, C);
    be->rope(be, a->q, t->pos_dev, t->m->rope_cos, t->m->rope_sin, N, Hq, D, Q);
    be->rope(be, a->k, t->pos_dev, t->m->rope_cos, t->m->rope_sin, N, Hkv, D, KV);
    for (int b = 0; b < B; b++) {
        size_t r = (size_t)b * T;
        be->attention(be, a->att + r * Q, a->q + r * Q, a->k + r * KV, a->v + r * KV, t->attn_scratch, T, 0, Hq, Hkv,
                      D, scale);
    }
    be->linear(be, t->tmp, a->att, W(DSM_P_O, l), t->m->wdt, W(DSM_P_O_BIAS, l), N, C, Q);
    lora_forward(t, DSM_P_O, l, a->att, t->tmp, N, C, Q);
    be->add(be, a->xmid, t->xres[l], t->tmp, (size_t)N * C);
    be->rmsnorm(be, a->h2, a->xmid, W(DSM_P_MLP_NORM, l), N, C, eps);
    be->linear(be, a->g, a->h2, W(DSM_P_GATE, l), t->m->wdt, NULL, N, F, C);
    be->linear(be, a->u, a->h2, W(DSM_P_UP, l), t->m->wdt, NULL, N, F, C);
    lora_forward(t, DSM_P_GATE, l, a->h2, a->g, N, F, C);
    lora_forward(t, DSM_P_UP, l, a->h2, a->u, N, F, C);
    be->swiglu(be, a->act, a->g, a->u, (size_t)N * F);
    be->linear(be, t->tmp, a->act, W(DSM_P_DOWN, l), t->m->wdt, NULL, N, C, F);
    lora_forward(t, DSM_P_DOWN, l, a->act, t->tmp, N, C, F);
    be->add(be, t->xres[l + 1], a->xmid, t->tmp, (size_t)N * C);
}

/* Backward of layer l: on entry dres = d xres[l+1]; on exit dres = d xres[l]. */
static void layer_backward(struct dsm_train *t, int l, int B, int T) {
    struct dsm_backend *be = t->be;
    const struct dsm_model_config *c = &t->m->cfg;
    int N = B * T, C = c->hidden_size, F = c->intermediate_size, D = c->head_dim;
    int Hq = c->n_heads, Hkv = c->n_kv_heads, Q = Hq * D, KV = Hkv * D;
    float eps = c->rms_norm_eps, scale = 1.0f / sqrtf((float)D);
    struct layer_acts *a = &t->la[l];
    /* MLP: x_{l+1} = xmid + down(silu(g) * u) */
    be->linear_backward(be, t->dff, G(DSM_P_DOWN, l), NULL, t->dres, a->act, W(DSM_P_DOWN, l), t->m->wdt, N, C, F, 0);
    lora_backward(t, DSM_P_DOWN, l, t->dres, a->act, t->dff, N, C, F);
    be->swiglu_backward(be, t->dff, t->dup, t->dff, a->g, a->u, (size_t)N * F);
    be->linear_backward(be, t->dh, G(DSM_P_GATE, l), NULL, t->dff, a->h2, W(DSM_P_GATE, l), t->m->wdt, N, F, C, 0);
    be->linear_backward(be, t->dh, G(DSM_P_UP, l), NULL, t->dup, a->h2, W(DSM_P_UP, l), t->m->wdt, N, F, C, 1);
    lora_backward(t, DSM_P_GATE, l, t->dff, a->h2, t->dh, N, F, C);
    lora_backward(t, DSM_P_UP, l, t->dup, a->h2, t->dh, N, F, C);
    be->rmsnorm_backward(be, t->dres, G(DSM_P_MLP_NORM, l), t->dh, a->xmid, W(DSM_P_MLP_NORM, l), N, C, eps);
    /* attention: xmid = x_l + o(att) */
    be->linear_backward(be, t->datt, G(DSM_P_O, l), G(DSM_P_O_BIAS, l), t->dres, a->att, W(DSM_P_O, l), t->m->wdt, N, C,
                        Q, 0);
    lora_backward(t, DSM_P_O, l, t->dres, a->att, t->datt, N, C, Q);
    for (int b = 0; b < B; b++) {
        size_t r = (size_t)b * T;
        be->attention_backward(be, t->dq + r * Q, t->dk + r * KV, t->dv + r * KV, t->datt + r * Q, a->q + r * Q,
                               a->k + r * KV, a->v + r * KV, T, Hq, Hkv, D, scale);
    }
    be->rope_backward(be, t->dq, t->pos_dev, t->m->rope_cos, t->m->rope_sin, N, Hq, D, Q);
    be->rope_backward(be, t->dk, t->pos_dev, t->m->rope_cos, t->m->rope_sin, N, Hkv, D, KV);
    be->linear_backward(be, t->dh, G(DSM_P_Q, l), G(DSM_P_Q_BIAS, l), t->dq, a->h1, W(DSM_P_Q, l), t->m->wdt, N, Q, C, 0);
    be->linear_backward(be, t->dh, G(DSM_P_K, l), G(DSM_P_K_BIAS, l), t->dk, a->h1, W(DSM_P_K, l), t->m->wdt, N, KV, C, 1);
    be->linear_backward(be, t->dh, G(DSM_P_V, l), G(DSM_P_V_BIAS, l), t->dv, a->h1, W(DSM_P_V, l), t->m->wdt, N, KV, C, 1);
    lora_backward(t, DSM_P_Q, l, t->dq, a->h1, t->dh, N, Q, C);
    lora_backward(t, DSM_P_K, l, t->dk, a->h1, t->dh, N, KV, C);
    lora_backward(t, DSM_P_V, l, t->dv, a->h1, t->dh, N, KV, C);
    be->rmsnorm_backward(be, t->dres, G(DSM_P_ATTN_NORM, l), t->dh, t->xres[l], W(DSM_P_ATTN_NORM, l), N, C, eps);
}

/* Check sizes and ids, upload ids, positions and (when labels) shifted targets. */
static int upload_batch(struct dsm_train *t, const int32_t *ids, const int32_t *labels, int B, int T,
                        struct dsm_err *err) {
    int V = t->m->cfg.vocab_size;
    if (B < 1 || T < 2) return dsm_errf(err, DSM_EINVAL, "a training batch needs B >= 1 sequences of T >= 2 tokens (got %d x %d)", B, T);
    if (T > t->seq || (long)B * T > t->rows)
        return dsm_errf(err, DSM_EINVAL, "batch %d x %d exceeds the trainer's sizes (max_seq %d, max_rows %d)", B, T, t->seq, t->rows);
    size_t N = (size_t)B * T;
    int32_t *host = malloc(sizeof(int32_t) * N * 2);
    if (!host) return dsm_errf(err, DSM_ENOMEM, "out of memory for a batch");
    int32_t *pos = host, *tgt = host + N;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < T; i++) {
            size_t r = (size_t)b * T + i;
            if (ids[r] < 0 || ids[r] >= V) {
                free(host);
                return dsm_errf(err, DSM_EINVAL, "sequence %d position %d: token id %d is out of range for vocab_size %d", b, i, ids[r], V);
            }
            if (labels && labels[r] >= V) {
                free(host);
                return dsm_errf(err, DSM_EINVAL, "sequence %d position %d: label %d is out of range for vocab_size %d", b, i, labels[r], V);
            }
            pos[r] = i;
            tgt[r] = i + 1 < T ? (labels ? (labels[r + 1] < 0 ? -1 : labels[r + 1]) : ids[r + 1]) : -1;
        }
    t->be->upload(t->be, t->ids_dev, ids, sizeof(int32_t) * N);
    t->be->upload(t->be, t->pos_dev, pos, sizeof(int32_t) * N);
    t->be->upload(t->be, t->tgt_dev, tgt, sizeof(int32_t) * N);
    memcpy(t->tgt_host, tgt, sizeof(int32_t) * N);
    free(host);
    return DSM_OK;
}

static void forward_layers(struct dsm_train *t, int B, int T) {
    const struct dsm_model_config *c = &t->m->cfg;
    struct dsm_backend *be = t->be;
    int N = B * T, C = c->hidden_size;
    be->embedding(be, t->xres[0], t->ids_dev, W(DSM_P_EMBED, 0), t->m->wdt, N, C);
    for (int l = 0; l < c->n_layers; l++) layer_forward(t, l, B, T);
    be->rmsnorm(be, t->xn, t->xres[c->n_layers], W(DSM_P_NORM, 0), N, C, c->rms_norm_eps);
}

/* A policy-gradient loss: fn gives d loss / d logp for each row from the rows' live logp. */
struct row_grad {
    dsm_train_row_grad_fn fn;
    void *ctx;
};

/* With backward and a row_grad, dlogits (n rows of the chunk, from cross_entropy with scale 1,
 * i.e. softmax - onehot) becomes g_r * (onehot - softmax) = d loss / d logits of each row. */
static int apply_row_grad(struct dsm_train *t, const struct row_grad *rg, const int *rows, int n,
                          struct dsm_err *err) {
    struct dsm_backend *be = t->be;
    int V = t->m->cfg.vocab_size;
    float g[LOGIT_CHUNK];
    be->download(be, t->logp_host, t->logp, sizeof(float) * (size_t)n);
    int rc = be->sync(be, err);
    if (rc) return rc;
    rg->fn(rg->ctx, rows, t->logp_host, n, g);
    for (int i = 0; i < n; i++) {
        if (t->tgt_host[rows[i]] < 0) continue; /* masked: the gradient is already 0 */
        be->scale(be, t->logits + (size_t)i * V, (size_t)V, -g[i]);
    }
    return DSM_OK;
}

/* Loss over only the rows with a target (prompt rows of SFT batches cost no logits): rows are
 * gathered LOGIT_CHUNK at a time into xg, and their gradient scattered back into t->dh (zero
 * elsewhere). Same per-row arithmetic as the dense path. */
static int loss_gathered(struct dsm_train *t, int N, int kept, float grad_scale, const struct row_grad *rg,
                         int backward, double *nll, struct dsm_err *err) {
    const struct dsm_model_config *c = &t->m->cfg;
    struct dsm_backend *be = t->be;
    int C = c->hidden_size, V = c->vocab_size, rc;
    size_t row = sizeof(float) * (size_t)C;
    int32_t tg[LOGIT_CHUNK];
    if (backward) be->zero(be, t->dh, row * (size_t)N);
    for (int k0 = 0; k0 < kept; k0 += LOGIT_CHUNK) {
        int n = kept - k0 < LOGIT_CHUNK ? kept - k0 : LOGIT_CHUNK;
        for (int i = 0; i < n; i++) {
            int r = t->rows_host[k0 + i];
            be->copy(be, t->xg + (size_t)i * C, t->xn + (size_t)r * C, row);
            tg[i] = t->tgt_host[r];
        }
        be->upload(be, t->tgc_dev, tg, sizeof(int32_t) * (size_t)n);
        be->linear(be, t->logits, t->xg, W(DSM_P_LM_HEAD, 0), t->m->wdt, NULL, n, V, C);
        be->cross_entropy(be, t->logp, backward ? t->logits : NULL, t->logits, t->tgc_dev, n, V, grad_scale);
        if (backward && rg && (rc = apply_row_grad(t, rg, t->rows_host + k0, n, err))) return rc;
        if (backward) {
            be->linear_backward(be, t->dxg, G(DSM_P_LM_HEAD, 0), NULL, t->logits, t->xg, W(DSM_P_LM_HEAD, 0), t->m->wdt, n,
                                V, C, 0);
            for (int i = 0; i < n; i++) be->copy(be, t->dh + (size_t)t->rows_host[k0 + i] * C, t->dxg + (size_t)i * C, row);
        }
        be->download(be, t->logp_host, t->logp, sizeof(float) * (size_t)n);
        for (int i = 0; i < n; i++) *nll -= t->logp_host[i];
    }
    return be->sync(be, err);
}

/* Logits and cross-entropy chunk by chunk; logp of each row goes to out (host, N) when not NULL,
 * else is summed into *nll over kept rows; with backward, d xn is written into t->dh. When at
 * most 3/4 of the rows have a target (and out is NULL), only those rows are computed. */
static int loss_chunks(struct dsm_train *t, int N, float grad_scale, const struct row_grad *rg, int backward,
                       float *out, double *nll, struct dsm_err *err) {
    const struct dsm_model_config *c = &t->m->cfg;
    struct dsm_backend *be = t->be;
    int C = c->hidden_size, V = c->vocab_size, rc;
    if (!out) {
        int kept = 0;
        for (int r = 0; r < N; r++)
            if (t->tgt_host[r] >= 0) t->rows_host[kept++] = r;
        if (4 * kept <= 3 * N) return loss_gathered(t, N, kept, grad_scale, rg, backward, nll, err);
    }
    int rows[LOGIT_CHUNK];
    for (int r0 = 0; r0 < N; r0 += LOGIT_CHUNK) {
        int n = N - r0 < LOGIT_CHUNK ? N - r0 : LOGIT_CHUNK;
        const float *xr = t->xn + (size_t)r0 * C;
        be->linear(be, t->logits, xr, W(DSM_P_LM_HEAD, 0), t->m->wdt, NULL, n, V, C);
        be->cross_entropy(be, t->logp, backward ? t->logits : NULL, t->logits, t->tgt_dev + r0, n, V, grad_scale);
        if (backward && rg) {
            for (int i = 0; i < n; i++) rows[i] = r0 + i;
            if ((rc = apply_row_grad(t, rg, rows, n, err))) return rc;
        }
        if (backward)
            be->linear_backward(be, t->dh + (size_t)r0 * C, G(DSM_P_LM_HEAD, 0), NULL, t->logits, xr, W(DSM_P_LM_HEAD, 0),
                                t->m->wdt, n, V, C, 0);
        be->download(be, out ? out + r0 : t->logp_host, t->logp, sizeof(float) * (size_t)n);
        if (!out)
            for (int i = 0; i < n; i++) *nll -= t->logp_host[i];
    }
    return be->sync(be, err);
}

static int batch_core(struct dsm_train *t, const int32_t *ids, const int32_t *labels, int B, int T,
                      float grad_scale, const struct row_grad *rg, int backward, double *nll_sum, int *n_valid,
                      struct dsm_err *err) {
    if (backward && t->lora_off)
        return dsm_errf(err, DSM_EINVAL, "a training batch with the LoRA adapter switched off (dsm_train_lora_enable)");
    int rc = upload_batch(t, ids, labels, B, T, err);
    if (rc) return rc;
    const struct dsm_model_config *c = &t->m->cfg;
    struct dsm_backend *be = t->be;
    int N = B * T, C = c->hidden_size, L = c->n_layers;
    int kept = 0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i + 1 < T; i++) kept += (labels ? labels[(size_t)b * T + i + 1] : 0) >= 0;
    t->training = backward;
    forward_layers(t, B, T);
    double nll = 0.0;
    if ((rc = loss_chunks(t, N, grad_scale, rg, backward, NULL, &nll, err))) return rc;
    if (nll_sum) *nll_sum = nll;
    if (n_valid) *n_valid = kept;
    if (!backward) return DSM_OK;
    be->zero(be, t->dres, sizeof(float) * (size_t)N * C);
    be->rmsnorm_backward(be, t->dres, G(DSM_P_NORM, 0), t->dh, t->xres[L], W(DSM_P_NORM, 0), N, C, c->rms_norm_eps);
    for (int l = L - 1; l >= 0; l--) {
        if (t->recompute) layer_forward(t, l, B, T);
        layer_backward(t, l, B, T);
    }
    if (G(DSM_P_EMBED, 0)) be->embedding_backward(be, G(DSM_P_EMBED, 0), t->dres, t->ids_dev, N, C);
    return be->sync(be, err);
}

int dsm_train_batch(struct dsm_train *t, const int32_t *ids, const int32_t *labels, int B, int T,
                    float grad_scale, int backward, double *nll_sum, int *n_valid,
                    struct dsm_err *err) {
    return batch_core(t, ids, labels, B, T, grad_scale, NULL, backward, nll_sum, n_valid, err);
}

int dsm_train_batch_rowgrad(struct dsm_train *t, const int32_t *ids, const int32_t *labels, int B, int T,
                            dsm_train_row_grad_fn fn, void *ctx, struct dsm_err *err) {
    if (!fn) return dsm_errf(err, DSM_EINVAL, "dsm_train_batch_rowgrad needs a row-gradient function");
    struct row_grad rg = {fn, ctx};
    return batch_core(t, ids, labels, B, T, 1.0f, &rg, 1, NULL, NULL, err);
}

void dsm_train_sizes(const struct dsm_train *t, int *max_rows, int *max_seq) {
    *max_rows = t->rows;
    *max_seq = t->seq;
}

int dsm_train_token_logp(struct dsm_train *t, const int32_t *ids, int B, int T, float *logp,
                         struct dsm_err *err) {
    int rc = upload_batch(t, ids, NULL, B, T, err);
    if (rc) return rc;
    int N = B * T;
    float *all = malloc(sizeof(float) * (size_t)N);
    if (!all) return dsm_errf(err, DSM_ENOMEM, "out of memory for log-probabilities");
    t->training = 0;
    forward_layers(t, B, T);
    rc = loss_chunks(t, N, 0.0f, NULL, 0, all, NULL, err);
    if (!rc)
        for (int b = 0; b < B; b++) memcpy(logp + (size_t)b * (T - 1), all + (size_t)b * T, sizeof(float) * (size_t)(T - 1));
    free(all);
    return rc;
}
