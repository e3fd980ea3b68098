/* cpu_impl.h - the private state of the "cpu" backend, shared by cpu.c (forward ops) and
 * cpu_train.c (training ops). */
#ifndef DSM_KERNELS_CPU_IMPL_H
#define DSM_KERNELS_CPU_IMPL_H

#include "kernels/backend.h"
#include "kernels/cpu/blas.h"

struct cpu_impl {
    const struct blas_api *blas;
    int n_threads;
    int avx512;
    int gemv_max_m; /* GEMV kernel (batch-invariant) for M <= this, sgemm above */
};

#define IMPL(be) ((struct cpu_impl *)(be)->impl)

/* Set the training members of a cpu backend (cpu_train.c). */
void cpu_train_fill(struct dsm_backend *be);

#endif
