/* attn.c - AVX-512 inner loops of attention; see attn.h. The query (scores) or the output
 * accumulators (weighted sum) stay in registers for the whole walk over the keys. */
#include "kernels/cpu/attn.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

/* Key and value rows of one head sit Hkv * D elements apart, mostly a page or more for real
 * shapes, which the hardware prefetchers do not follow: decode over a sequence's own rows waited
 * on one miss after another. Rows ATTN_PF ahead are requested explicitly. */
#define ATTN_PF 16

/* Rows are f32 (H = 0) or f16 (H = 1, widened in registers); H is a compile-time constant in
 * every instance below, offsets are in elements. */
AVX512 static inline __m512 ld16(const void *base, size_t off, const int H) {
    if (H) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)base + off)));
    return _mm512_loadu_ps((const float *)base + off);
}

AVX512 static inline void prefetch_row(const void *base, size_t off, int D, const int H) {
    const char *r = (const char *)base + off * (H ? 2 : 4);
    for (int j = 0; j < D * (H ? 2 : 4); j += 64) _mm_prefetch(r + j, _MM_HINT_T0);
}

int attn_avx512_ok(int D) {
    __builtin_cpu_init();
    return D % 16 == 0 && D <= ATTN_MAX_D && __builtin_cpu_supports("avx512f");
}

/* out[i] = the sum of a[i]'s 16 lanes for i < 8, with exactly _mm512_reduce_add_ps's tree
 * (lanes i + i+8, then i + i+4, then i + i+2, then i + i+1), so that a score has the same bits
 * whichever way it was reduced (the multi-query kernels reduce one at a time), eight at once. */
AVX512 static inline void reduce8(float *out, const __m512 *a) {
    __m512 s[4], r[2];
    for (int i = 0; i < 4; i++) /* [a.lo256 + a.hi256 | b.lo256 + b.hi256] */
        s[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xEE),
                             _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44));
    for (int i = 0; i < 2; i++) /* quarter k: accumulator 4i+k's (j + j+4) sums */
        r[i] = _mm512_add_ps(_mm512_shuffle_f32x4(s[2 * i], s[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)),
                             _mm512_shuffle_f32x4(s[2 * i], s[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)));
    __m512 y = _mm512_add_ps(_mm512_shuffle_ps(r[0], r[1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(r[0], r[1], _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 f = _mm512_add_ps(y, _mm512_shuffle_ps(y, y, _MM_SHUFFLE(2, 3, 0, 1)));
    /* quarter k holds accumulator k in lane 0 and accumulator k+4 in lane 2 */
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0, 0, 0);
    _mm256_storeu_ps(out, _mm512_castps512_ps256(_mm512_permutexvar_ps(idx, f)));
}

AVX512 __attribute__((always_inline)) static inline void
scores_one(float *p, const float *q, const void *k, int n, int stride, int D, float scale, const int H) {
    __m512 qv[ATTN_MAX_D / 16];
    int nv = D / 16;
    for (int j = 0; j < nv; j++) qv[j] = _mm512_loadu_ps(q + 16 * j);
    int s = 0;
    for (; s + 8 <= n; s += 8) { /* eight keys at a time: eight independent FMA chains */
        __m512 a[8];
        float t[8];
        for (int i = 0; i < 8; i++) {
            a[i] = _mm512_setzero_ps();
            if (s + ATTN_PF + i < n) prefetch_row(k, (size_t)(s + ATTN_PF + i) * stride, D, H);
        }
        for (int j = 0; j < nv; j++)
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++)
                a[i] = _mm512_fmadd_ps(qv[j], ld16(k, (size_t)(s + i) * stride + 16 * (size_t)j, H), a[i]);
        reduce8(t, a);
        for (int i = 0; i < 8; i++) p[s + i] = scale * t[i];
    }
    for (; s + 2 <= n; s += 2) { /* two keys at a time: independent FMA chains */
        size_t r0 = (size_t)s * stride, r1 = r0 + (size_t)stride;
        if (s + ATTN_PF + 1 < n)
            prefetch_row(k, r0 + (size_t)ATTN_PF * stride, D, H), prefetch_row(k, r1 + (size_t)ATTN_PF * stride, D, H);
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (int j = 0; j < nv; j++) {
            a0 = _mm512_fmadd_ps(qv[j], ld16(k, r0 + 16 * (size_t)j, H), a0);
            a1 = _mm512_fmadd_ps(qv[j], ld16(k, r1 + 16 * (size_t)j, H), a1);
        }
        p[s] = scale * _mm512_reduce_add_ps(a0);
        p[s + 1] = scale * _mm512_reduce_add_ps(a1);
    }
    for (; s < n; s++) {
        size_t r0 = (size_t)s * stride;
        __m512 a0 = _mm512_setzero_ps();
        for (int j = 0; j < nv; j++) a0 = _mm512_fmadd_ps(qv[j], ld16(k, r0 + 16 * (size_t)j, H), a0);
        p[s] = scale * _mm512_reduce_add_ps(a0);
    }
}

AVX512 void attn_scores_avx512(float *p, const float *q, const void *k, int f16, int n, int stride, int D, float scale) {
    if (f16) scores_one(p, q, k, n, stride, D, scale, 1);
    else scores_one(p, q, k, n, stride, D, scale, 0);
}

AVX512 __attribute__((always_inline)) static inline void
accum_one(float *o, const float *p, const void *v, int n, int stride, int D, int from_o, const int H) {
    __m512 acc[ATTN_MAX_D / 16];
    int nv = D / 16;
    for (int j = 0; j < nv; j++) acc[j] = from_o ? _mm512_loadu_ps(o + 16 * j) : _mm512_setzero_ps();
    for (int s = 0; s < n; s++) {
        __m512 ps = _mm512_set1_ps(p[s]);
        size_t r = (size_t)s * stride;
        if (s + ATTN_PF < n) prefetch_row(v, r + (size_t)ATTN_PF * stride, D, H);
        for (int j = 0; j < nv; j++) acc[j] = _mm512_fmadd_ps(ps, ld16(v, r + 16 * (size_t)j, H), acc[j]);
    }
    for (int j = 0; j < nv; j++) _mm512_storeu_ps(o + 16 * j, acc[j]);
}

AVX512 void attn_accum_avx512(float *o, const float *p, const void *v, int f16, int n, int stride, int D, int from_o) {
    if (f16) accum_one(o, p, v, n, stride, D, from_o, 1);
    else accum_one(o, p, v, n, stride, D, from_o, 0);
}

/* The multi-query kernels handle D <= 64 (at most 4 vectors per query) so that 4 queries' state
 * stays in registers: NV is a compile-time constant in each instance. Callers check
 * attn_multi_ok(D). */
int attn_multi_ok(int D) { return attn_avx512_ok(D) && D <= 64; }

AVX512 __attribute__((always_inline)) static inline void
scores_multi(float *const *p, const float *const *q, int nq, const void *k, int n, int stride, float scale,
             const int NV, const int H) {
    __m512 qv[ATTN_MULTI][4];
#pragma GCC unroll 4
    for (int i = 0; i < ATTN_MULTI; i++)
#pragma GCC unroll 4
        for (int j = 0; j < NV; j++) qv[i][j] = i < nq ? _mm512_loadu_ps(q[i] + 16 * j) : _mm512_setzero_ps();
    for (int s = 0; s < n; s++) {
        size_t r = (size_t)s * stride;
        __m512 kv[4];
#pragma GCC unroll 4
        for (int j = 0; j < NV; j++) kv[j] = ld16(k, r + 16 * (size_t)j, H);
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

AVX512 void attn_scores_multi_avx512(float *const *p, const float *const *q, int nq, const void *k, int f16, int n,
                                     int stride, int D, float scale) {
#define SCORES_NV(H)                                                                                                   \
    switch (D / 16) {                                                                                                  \
    case 1: scores_multi(p, q, nq, k, n, stride, scale, 1, H); break;                                                  \
    case 2: scores_multi(p, q, nq, k, n, stride, scale, 2, H); break;                                                  \
    case 3: scores_multi(p, q, nq, k, n, stride, scale, 3, H); break;                                                  \
    default: scores_multi(p, q, nq, k, n, stride, scale, 4, H); break;                                                 \
    }
    if (f16) SCORES_NV(1) else SCORES_NV(0)
#undef SCORES_NV
}

AVX512 __attribute__((always_inline)) static inline void
accum_multi(float *const *o, const float *const *p, int nq, const void *v, int n, int stride, const int NV,
            const int H) {
    __m512 acc[ATTN_MULTI][4];
#pragma GCC unroll 4
    for (int i = 0; i < ATTN_MULTI; i++)
#pragma GCC unroll 4
        for (int j = 0; j < NV; j++) acc[i][j] = _mm512_setzero_ps();
    for (int s = 0; s < n; s++) {
        size_t r = (size_t)s * stride;
        __m512 vv[4];
#pragma GCC unroll 4
        for (int j = 0; j < NV; j++) vv[j] = ld16(v, r + 16 * (size_t)j, H);
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

AVX512 void attn_accum_multi_avx512(float *const *o, const float *const *p, int nq, const void *v, int f16, int n,
                                    int stride, int D) {
#define ACCUM_NV(H)                                                                                                    \
    switch (D / 16) {                                                                                                  \
    case 1: accum_multi(o, p, nq, v, n, stride, 1, H); break;                                                          \
    case 2: accum_multi(o, p, nq, v, n, stride, 2, H); break;                                                          \
    case 3: accum_multi(o, p, nq, v, n, stride, 3, H); break;                                                          \
    default: accum_multi(o, p, nq, v, n, stride, 4, H); break;                                                         \
    }
    if (f16) ACCUM_NV(1) else ACCUM_NV(0)
#undef ACCUM_NV
}

/* dst (n) = src rounded to f16 (to nearest even, as dsm_f32_to_f16 for finite values). */
AVX512 void attn_store_f16_avx512(uint16_t *dst, const float *src, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    if (i < n) {
        __mmask16 mk = (__mmask16)((1u << (n - i)) - 1);
        __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(mk, src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(dst + i, mk, h);
    }
}

/* e^x for x <= 88.7 (below -87.3, where float32 runs out of normal numbers, the result is 0): x = n ln2 + r with |r| <= ln2 / 2, e^r by
 * a degree-6 polynomial (the Cephes single-precision coefficients), times 2^n by scalef. Within 2 ulp
 * of expf on the range softmax and cross-entropy use. */
AVX512 static inline __m512 exp512(__m512 x) {
    __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_NLT_UQ), nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    __m512 x0 = x;
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    x = _mm512_min_ps(x, _mm512_set1_ps(88.7f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_mask_mov_ps(_mm512_maskz_mov_ps(live, _mm512_scalef_ps(p, n)), nan, x0); /* NaN stays NaN */
}

AVX512 float vec_max_avx512(const float *x, int n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
    if (i < n) m = _mm512_mask_max_ps(m, (__mmask16)((1u << (n - i)) - 1), m, _mm512_maskz_loadu_ps((__mmask16)((1u << (n - i)) - 1), x + i));
    return _mm512_reduce_max_ps(m);
}

AVX512 float vec_exp_sum_avx512(float *dst, const float *x, int n, float sub, float mul) {
    __m512 s = _mm512_setzero_ps(), vs = _mm512_set1_ps(sub), vm = _mm512_set1_ps(mul);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vs));
        s = _mm512_add_ps(s, e);
        if (dst) _mm512_storeu_ps(dst + i, _mm512_mul_ps(e, vm));
    }
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 e = _mm512_maskz_mov_ps(k, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vs)));
        s = _mm512_add_ps(s, e);
        if (dst) _mm512_mask_storeu_ps(dst + i, k, _mm512_mul_ps(e, vm));
    }
    return _mm512_reduce_add_ps(s);
}

AVX512 void attn_softmax_avx512(float *p, int n) {
    float mx = vec_max_avx512(p, n);
    float inv = 1.0f / vec_exp_sum_avx512(p, p, n, mx, 1.0f);
    __m512 vi = _mm512_set1_ps(inv);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(p + i, _mm512_mul_ps(_mm512_loadu_ps(p + i), vi));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(p + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + i), vi));
    }
}
