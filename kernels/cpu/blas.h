/* blas.h - OpenBLAS, loaded at run time.
 *
 * OpenBLAS picks its kernels from OPENBLAS_CORETYPE when the library is loaded. Debian's build
 * (0.3.21) does not recognise recent AMD cores and this environment pins "Haswell" (AVX2), which
 * halves sgemm speed on AVX-512 machines (../shared/BENCHMARKS.md: 211 vs 391 GFLOP/s at 2048³).
 * So we load the library ourselves with dlopen after choosing the core type from the CPU's
 * features: SKYLAKEX when the CPU has AVX-512 F/DQ/BW/VL, else whatever the environment says.
 * DSM_OPENBLAS_CORETYPE overrides the choice (e.g. "Haswell" to compare).
 */
#ifndef DSM_KERNELS_BLAS_H
#define DSM_KERNELS_BLAS_H

#include "common/err.h"

struct blas_api {
    /* cblas_sgemm with CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112 */
    void (*sgemm)(int order, int transa, int transb, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
    void (*set_num_threads)(int n);
    char *(*get_corename)(void);
};

enum { BLAS_ROW_MAJOR = 101, BLAS_NO_TRANS = 111, BLAS_TRANS = 112 };

/* Load OpenBLAS once per process (thread-safe); returns the shared table or NULL with err set. */
const struct blas_api *blas_get(struct dsm_err *err);

#endif
