/* attn.c - AVX-512 inner loops of attention; see attn.h. The query (scores) or the output
 * accumulators (weighted sum) stay in registers for the whole walk over the keys. */
#include "kernels/cpu/attn.h"

#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

int attn_avx512_ok(int D) {
    __builtin_cpu_init();
    return D % 16 == 0 && D <= ATTN_MAX_D && __builtin_cpu_supports("avx512f");
}

AVX512 void attn_scores_avx512(float *p, const float *q, const float *k, int n, int stride, int D, float scale) {
    __m512 qv[ATTN_MAX_D / 16];
    int nv = D / 16;
    for (int j = 0; j < nv; j++) qv[j] = _mm512_loadu_ps(q + 16 * j);
    int s = 0;
    for (; s + 2 <= n; s += 2) { /* two keys at a time: independent FMA chains */
        const float *k0 = k + (size_t)s * stride, *k1 = k0 + stride;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (int j = 0; j < nv; j++) {
            a0 = _mm512_fmadd_ps(qv[j], _mm512_loadu_ps(k0 + 16 * j), a0);
            a1 = _mm512_fmadd_ps(qv[j], _mm512_loadu_ps(k1 + 16 * j), a1);
        }
        p[s] = scale * _mm512_reduce_add_ps(a0);
        p[s + 1] = scale * _mm512_reduce_add_ps(a1);
    }
    for (; s < n; s++) {
        const float *k0 = k + (size_t)s * stride;
        __m512 a0 = _mm512_setzero_ps();
        for (int j = 0; j < nv; j++) a0 = _mm512_fmadd_ps(qv[j], _mm512_loadu_ps(k0 + 16 * j), a0);
        p[s] = scale * _mm512_reduce_add_ps(a0);
    }
}

AVX512 void attn_accum_avx512(float *o, const float *p, const float *v, int n, int stride, int D, int from_o) {
    __m512 acc[ATTN_MAX_D / 16];
    int nv = D / 16;
    for (int j = 0; j < nv; j++) acc[j] = from_o ? _mm512_loadu_ps(o + 16 * j) : _mm512_setzero_ps();
    for (int s = 0; s < n; s++) {
        __m512 ps = _mm512_set1_ps(p[s]);
        const float *vr = v + (size_t)s * stride;
        for (int j = 0; j < nv; j++) acc[j] = _mm512_fmadd_ps(ps, _mm512_loadu_ps(vr + 16 * j), acc[j]);
    }
    for (int j = 0; j < nv; j++) _mm512_storeu_ps(o + 16 * j, acc[j]);
}

/* The multi-query kernels handle D <= 64 (at most 4 vectors per query) so that 4 queries' state
 * stays in registers: NV is a compile-time constant in each instance. Callers check
 * attn_multi_ok(D). */
int attn_multi_ok(int D) { return attn_avx512_ok(D) && D <= 64; }

AVX512 __attribute__((always_inline)) static inline void
scores_multi(float *const *p, const float *const *q, int nq, const float *k, int n, int stride, float scale,
             const int NV) {
    __m512 qv[ATTN_MULTI][4];
#pragma GCC unroll 4
    for (int i = 0; i < ATTN_MULTI; i++)
#pragma GCC unroll 4
        for (int j = 0; j < NV; j++) qv[i][j] = i < nq ? _mm512_loadu_ps(q[i] + 16 * j) : _mm512_setzero_ps();
    for (int s = 0; s < n; s++) {
        const float *k0 = k + (size_t)s * stride;
        __m512 kv[4];
#pragma GCC unroll 4
        for (int j = 0; j < NV; j++) kv[j] = _mm512_loadu_ps(k0 + 16 * j);
#pragma GCC unroll 4
        for (int i = 0; i < ATTN_MULTI; i++) {
            if (i >= nq) break;
            __m512 a = _mm512_setzero_ps();
#pragma GCC unroll 4
            for (int j = 0; j < NV; j++) a = _mm512_fmadd_ps(qv[i][j], kv[j], a);
            p[i][s] = scale * _mm512_reduce_add_ps(a);
        }
    }
}

AVX512 void attn_scores_multi_avx512(float *const *p, const float *const *q, int nq, const float *k, int n, int stride,
                                     int D, float scale) {
    switch (D / 16) {
    case 1: scores_multi(p, q, nq, k, n, stride, scale, 1); break;
    case 2: scores_multi(p, q, nq, k, n, stride, scale, 2); break;
    case 3: scores_multi(p, q, nq, k, n, stride, scale, 3); break;
    default: scores_multi(p, q, nq, k, n, stride, scale, 4); break;
    }
}

AVX512 __attribute__((always_inline)) static inline void
accum_multi(float *const *o, const float *const *p, int nq, const float *v, int n, int stride, const int NV) {
    __m512 acc[ATTN_MULTI][4];
#pragma GCC unroll 4
    for (int i = 0; i < ATTN_MULTI; i++)
#pragma GCC unroll 4
        for (int j = 0; j < NV; j++) acc[i][j] = _mm512_setzero_ps();
    for (int s = 0; s < n; s++) {
        const float *vr = v + (size_t)s * stride;
        __m512 vv[4];
#pragma GCC unroll 4
        for (int j = 0; j < NV; j++) vv[j] = _mm512_loadu_ps(vr + 16 * j);
#pragma GCC unroll 4
        for (int i = 0; i < ATTN_MULTI; i++) {
            if (i >= nq) break;
            __m512 ps = _mm512_set1_ps(p[i][s]);
#pragma GCC unroll 4
            for (int j = 0; j < NV; j++) acc[i][j] = _mm512_fmadd_ps(ps, vv[j], acc[i][j]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < ATTN_MULTI; i++)
        if (i < nq)
#pragma GCC unroll 4
            for (int j = 0; j < NV; j++) _mm512_storeu_ps(o[i] + 16 * j, acc[i][j]);
}

AVX512 void attn_accum_multi_avx512(float *const *o, const float *const *p, int nq, const float *v, int n, int stride,
                                    int D) {
    switch (D / 16) {
    case 1: accum_multi(o, p, nq, v, n, stride, 1); break;
    case 2: accum_multi(o, p, nq, v, n, stride, 2); break;
    case 3: accum_multi(o, p, nq, v, n, stride, 3); break;
    default: accum_multi(o, p, nq, v, n, stride, 4); break;
    }
}
