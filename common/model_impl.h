/* model_impl.h - the inside of struct dsm_model and struct dsm_kv, for code in common/ that
 * extends the decoder (training, batched generation). Everything else uses model.h.
 *
 * Dimension legend as in model.c. Invariants: w[] points into wslab (or, for a tied lm_head, at the
 * embedding); activations hold Tmax rows; a KV cache holds rows [0, len) of (L, cap, KV).
 */
#ifndef DSM_MODEL_IMPL_H
#define DSM_MODEL_IMPL_H

#include "common/model.h"
#include "common/params.h"

/* Rows of logits computed per lm_head call when all positions are wanted. */
#define LOGIT_ROWS 64

struct dsm_model {
    struct dsm_model_config cfg;
    struct dsm_backend *be;          /* borrowed */
    enum dsm_dtype wdt;
    int Tmax;                        /* largest chunk per forward step */
    int P;                           /* positions in the rope tables (max KV capacity) */
    void *wslab;                     /* all weights */
    void **w;                        /* (L + 1) * DSM_P_COUNT pointers into wslab, NULL if absent */
    float *rope_cos, *rope_sin;      /* (P, D/2) */
    /* activations, (Tmax, ·) each */
    void *aslab;
    float *x, *h, *q, *att, *ffg, *ffu, *logits; /* (T,C) (T,C) (T,Q) (T,Q) (T,F) (T,F) (LOGIT_ROWS,V) */
    float *attn_scratch;
    int32_t *ids_dev, *pos_dev;      /* (Tmax) */
};

struct dsm_kv {
    struct dsm_model *m;
    int cap, len;
    int owned;                       /* 0 for a view into memory someone else frees (engine slots) */
    float *k, *v;                    /* (L, S, KV) */
};

/* Pointer slot of parameter p in layer (ignored for globals); *slot is NULL when p is absent. */
void **dsm_model_wslot(struct dsm_model *m, enum dsm_param p, int layer);

/* The MLP half of layer l on m->x (T rows): x += down(silu(gate(norm(x))) * up(norm(x))). */
void dsm_model_mlp_block(struct dsm_model *m, int l, int T);

/* Logits (host, rows r1 - r0 of V) of rows [r0, r1) of the final hidden states in m->x. */
void dsm_model_lm_head(struct dsm_model *m, float *out, int r0, int r1);

#endif
