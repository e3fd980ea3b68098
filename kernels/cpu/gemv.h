/* gemv.h - matrix-vector products for decode (few rows of x), any weight dtype. */
#ifndef DSM_KERNELS_GEMV_H
#define DSM_KERNELS_GEMV_H

#include "kernels/backend.h"

/* Rows of x per register tile. */
#define GEMV_MAX_M 4

/* Largest M the CPU backend sends here (above it: sgemm). Up to this size linear is
 * batch-invariant: a row's result does not depend on M or on the other rows. */
#define GEMV_MAX_BATCH 64

/* 1 when the CPU supports the AVX-512 subset the fast kernel uses (F, BW, VL, DQ). */
int gemv_have_avx512(void);

/* out (M, N) = x (M, K) · w (N, K)ᵀ [+ bias (N)], parallel over N with n_threads OpenMP threads.
 * use_avx512 selects the AVX-512 kernel (only when gemv_have_avx512()). */
void gemv_small_m(float *out, const float *x, const void *w, enum dsm_dtype wdt, const float *bias,
                  int M, int N, int K, int n_threads, int use_avx512);

#endif
