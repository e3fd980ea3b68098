/* ref_train.h - naive reference implementations of the training ops of struct dsm_backend
 * (backward ops, cross-entropy, reductions, optimizer steps), on host memory.
 *
 * The oracle the fast CPU training ops (cpu_train.c) and any GPU version are tested against: one
 * obvious loop nest per op, double accumulation, never optimised. Arguments, shapes and
 * accumulate/overwrite rules are those of the matching member of struct dsm_backend.
 */
#ifndef DSM_KERNELS_REF_TRAIN_H
#define DSM_KERNELS_REF_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"

void ref_linear_backward(float *dx, float *dw, float *db, const float *dout, const float *x,
                         const void *w, enum dsm_dtype wdt, int M, int N, int K, int accumulate_dx);
void ref_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int T, int C);
void ref_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                          int T, int C, float eps);
void ref_rope_backward(float *g, const int32_t *pos, const float *cos, const float *sin, int T,
                       int H, int D, int stride);
void ref_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                            const float *k, const float *v, int T, int Hq, int Hkv, int D,
                            float scale);
void ref_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                         const float *up, size_t n);
void ref_cross_entropy(float *logp, float *dlogits, const float *logits, const int32_t *targets,
                       int R, int V, float grad_scale);
void ref_sumsq(float *out, const float *x, size_t n);
void ref_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2,
               float eps, float wd, float bc1, float bc2, float gscale);
void ref_scale(float *x, size_t n, float alpha);
void ref_dropout(float *out, const float *x, size_t n, float p, uint64_t seed);
void ref_sgd(float *p, const float *g, size_t n, float lr, float wd, float gscale);

/* Set the training members of be (a host-memory backend) to thin wrappers of the functions above. */
void ref_train_fill(struct dsm_backend *be);

#endif
