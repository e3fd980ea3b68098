/* attn.h - the inner loops of attention for one query head: scores over the keys and the
 * probability-weighted sum of the values, AVX-512 versions chosen at run time (cpu.c is built for
 * baseline x86-64, where these loops would run 128 bits wide). */
#ifndef DSM_KERNELS_ATTN_H
#define DSM_KERNELS_ATTN_H

#include <stdint.h>

/* 1 when attn_*_avx512 handle head dimension D (a multiple of 16, at most ATTN_MAX_D). */
#define ATTN_MAX_D 256
int attn_avx512_ok(int D);

/* Key and value rows are f32, or f16 when the f16 argument is 1 (a 16-bit KV cache), widened to
 * f32 in registers; `stride` counts elements. */

/* p[s] = scale * dot(q (D), k row s) for s < n; key rows are `stride` elements apart. */
void attn_scores_avx512(float *p, const float *q, const void *k, int f16, int n, int stride, int D, float scale);

/* o (D) = sum_s p[s] * v row s for s < n; value rows are `stride` elements apart. With from_o the
 * accumulator chain starts from o's values instead of 0: a sum over rows stored in two places
 * (a shared prefix, then a sequence's own rows) continued this way has the same bits as one
 * pass over a contiguous copy. */
void attn_accum_avx512(float *o, const float *p, const void *v, int f16, int n, int stride, int D, int from_o);

/* Several queries (nq <= ATTN_MULTI) over the same n keys, each key row loaded once for all:
 * p[i][s] = scale * dot(q[i], k row s), with exactly attn_scores_avx512's arithmetic. */
#define ATTN_MULTI 4
int attn_multi_ok(int D); /* the multi-query kernels handle D (AVX-512, D % 16 == 0, D <= 64) */
void attn_scores_multi_avx512(float *const *p, const float *const *q, int nq, const void *k, int f16, int n, int stride,
                              int D, float scale);

/* o[i] (D) = sum_s p[i][s] * v row s for s < n, for nq <= ATTN_MULTI queries, each value row
 * loaded once for all; the same accumulator chains as attn_accum_avx512 from 0. */
void attn_accum_multi_avx512(float *const *o, const float *const *p, int nq, const void *v, int f16, int n, int stride,
                             int D);

/* dst (n) = src (n) rounded to f16, to nearest even (dsm_f32_to_f16's bits for finite values). */
void attn_store_f16_avx512(uint16_t *dst, const float *src, int n);

/* Softmax in place over p[0..n) (scores already scaled), vectorised exp (within 2 ulp of expf). */
void attn_softmax_avx512(float *p, int n);

/* max of x[0..n) (n >= 1). */
float vec_max_avx512(const float *x, int n);

/* Σ exp(x[i] − sub) over i < n; when dst is not NULL also dst[i] = mul · exp(x[i] − sub) (dst may
 * be x). For cross-entropy and softmax rows. */
float vec_exp_sum_avx512(float *dst, const float *x, int n, float sub, float mul);

#endif
