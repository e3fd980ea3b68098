/* attn.h - the inner loops of attention for one query head: scores over the keys and the
 * probability-weighted sum of the values, AVX-512 versions chosen at run time (cpu.c is built for
 * baseline x86-64, where these loops would run 128 bits wide). */
#ifndef DSM_KERNELS_ATTN_H
#define DSM_KERNELS_ATTN_H

/* 1 when attn_*_avx512 handle head dimension D (a multiple of 16, at most ATTN_MAX_D). */
#define ATTN_MAX_D 256
int attn_avx512_ok(int D);

/* p[s] = scale * dot(q (D), k row s) for s < n; key rows are `stride` floats apart. */
void attn_scores_avx512(float *p, const float *q, const float *k, int n, int stride, int D, float scale);

/* o (D) = sum_s p[s] * v1 row s for s < n1, then + p[n1 + s] * v2 row s for s < n2, in that
 * order (one accumulator chain, so splitting the rows over two places changes no bit); value
 * rows are `stride` floats apart. */
void attn_accum_avx512(float *o, const float *p, const float *v1, int n1, const float *v2, int n2, int stride, int D);

#endif
