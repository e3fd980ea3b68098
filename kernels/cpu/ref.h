/* ref.h - naive reference implementations of every backend op, on host memory.
 *
 * These are the oracle the fast CPU ops and the CUDA ops are tested against: one obvious loop
 * nest per op, double accumulation where a sum is long, never optimised. Arguments and shapes
 * are those of the matching member of struct dsm_backend (kernels/backend.h).
 */
#ifndef DSM_KERNELS_REF_H
#define DSM_KERNELS_REF_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"

/* Element i of a weight array of dtype dt, as float. */
float ref_load(const void *w, enum dsm_dtype dt, size_t i);

void ref_linear(float *out, const float *x, const void *w, enum dsm_dtype wdt, const float *bias,
                int M, int N, int K);
void ref_embedding(float *out, const int32_t *ids, const void *table, enum dsm_dtype dt, int T,
                   int C);
void ref_rmsnorm(float *out, const float *x, const float *w, int T, int C, float eps);
void ref_rope(float *x, const int32_t *pos, const float *cos, const float *sin, int T, int H,
              int D, int stride);
void ref_attention(float *out, const float *q, const float *k, const float *v, int T, int pos0,
                   int Hq, int Hkv, int D, float scale);
/* k, v, pool: f32 or f16 (kvdt), the head-major slot layout of backend.h; offsets in elements. */
void ref_attention_decode(float *out, const float *q, const void *k, const void *v, enum dsm_dtype kvdt,
                          const int32_t *slot, const int32_t *len, const int32_t *pslot,
                          const int32_t *plen, size_t slot_stride, int cap, int B, int Hq, int Hkv, int D,
                          float scale);
void ref_kv_scatter(void *pool, enum dsm_dtype kvdt, const float *src, const int32_t *slot, const int32_t *pos,
                    size_t slot_stride, int cap, int B, int Hkv, int D);
void ref_kv_store(void *dst, enum dsm_dtype dt, const float *src, int n, int cap, int Hkv, int D);
void ref_swiglu(float *out, const float *gate, const float *up, size_t n);
void ref_add(float *out, const float *a, const float *b, size_t n);
void ref_softmax(float *out, const float *x, int R, int C);
void ref_log_softmax(float *out, const float *x, int R, int C);

#endif
