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

AVX512 void attn_accum_avx512(float *o, const float *p, const float *v1, int n1, const float *v2, int n2, int stride,
                              int D) {
    __m512 acc[ATTN_MAX_D / 16];
    int nv = D / 16;
    for (int j = 0; j < nv; j++) acc[j] = _mm512_setzero_ps();
    for (int part = 0; part < 2; part++) {
        const float *v = part ? v2 : v1;
        const float *pp = part ? p + n1 : p;
        int n = part ? n2 : n1;
        for (int s = 0; s < n; s++) {
            __m512 ps = _mm512_set1_ps(pp[s]);
            const float *vr = v + (size_t)s * stride;
            for (int j = 0; j < nv; j++) acc[j] = _mm512_fmadd_ps(ps, _mm512_loadu_ps(vr + 16 * j), acc[j]);
        }
    }
    for (int j = 0; j < nv; j++) _mm512_storeu_ps(o + 16 * j, acc[j]);
}
