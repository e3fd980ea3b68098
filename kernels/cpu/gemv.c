/* gemv.c - y (M, N) = x (M, K) · w (N, K)ᵀ + b for M up to GEMV_MAX_BATCH (decode), where
 * reading the weights dominates.
 *
 * One sequence reads every weight once per step, so its speed is bytes of weights per second;
 * many sequences reuse each weight, so theirs is FMAs per second. Each thread takes one contiguous
 * share of the output rows and walks it in blocks of weight rows that fit in L2; within a block,
 * register tiles of (rows of x) x (rows of w) accumulators (1 x 8, 2 x 8, 8 x 3 or 4 x 6 by M,
 * see TILE_CASES) load each weight once for all rows of the tile. Every output is one
 * accumulator over k in the same order whatever the tile, M or thread count (batch-invariant).
 * bf16 and f16 weights are widened to f32 in registers (bf16 halves the bytes read). An AVX-512
 * version is chosen at run time when the CPU has it; the portable version is plain C the
 * compiler may vectorise.
 */
#include "kernels/cpu/gemv.h"

#include <immintrin.h>
#include <string.h>

#include "common/util.h"

/* Weights (elements) below which one thread does the product: a fork/join costs a few
 * microseconds, about what streaming 256K elements from cache costs. */
#define GEMV_PARALLEL_MIN ((size_t)1 << 18)

/* ---- portable version ---- */

static float load_scalar(const void *w, enum dsm_dtype dt, size_t i) {
    switch (dt) {
    case DSM_DT_F32: return ((const float *)w)[i];
    case DSM_DT_BF16: return dsm_bf16_to_f32(((const uint16_t *)w)[i]);
    case DSM_DT_F16: return dsm_f16_to_f32(((const uint16_t *)w)[i]);
    }
    return 0.0f;
}

static void gemv_rows_portable(float *out, const float *x, const void *w, enum dsm_dtype wdt,
                               const float *bias, int M, int N, int K, int n0, int n1) {
    for (int n = n0; n < n1; n++)
        for (int m = 0; m < M; m++) {
            const float *xr = x + (size_t)m * K;
            float acc = 0.0f;
            if (wdt == DSM_DT_F32) {
                const float *wr = (const float *)w + (size_t)n * K;
#pragma omp simd reduction(+ : acc)
                for (int k = 0; k < K; k++) acc += xr[k] * wr[k];
            } else {
                for (int k = 0; k < K; k++) acc += xr[k] * load_scalar(w, wdt, (size_t)n * K + k);
            }
            out[(size_t)m * N + n] = acc + (bias ? bias[n] : 0.0f);
        }
}

/* ---- AVX-512 version ---- */

/* How far ahead of the current load each weight row is prefetched. */
#define PREFETCH_BYTES 1024

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

AVX512_TARGET static inline __m512 load16(const void *w, enum dsm_dtype dt, size_t i, __mmask16 mk) {
    switch (dt) {
    case DSM_DT_BF16: {
        __m256i h = _mm256_maskz_loadu_epi16(mk, (const uint16_t *)w + i);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    case DSM_DT_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, (const uint16_t *)w + i));
    case DSM_DT_F32: break;
    }
    return _mm512_maskz_loadu_ps(mk, (const float *)w + i);
}

/* One step of 16 k for a tile: MM x NR accumulators += x rows · w rows. */
AVX512_TARGET __attribute__((always_inline)) static inline void
tile_step(__m512 acc[8][8], const float *x, const void *w, enum dsm_dtype dt, int K, int n, int k,
          __mmask16 mk, const int MM, const int NR) {
    __m512 wv[8];
#pragma GCC unroll 8
    for (int j = 0; j < NR; j++) {
        _mm_prefetch((const char *)w + ((size_t)(n + j) * K + k) * (dt == DSM_DT_F32 ? 4 : 2) + PREFETCH_BYTES, _MM_HINT_T0);
        wv[j] = load16(w, dt, (size_t)(n + j) * K + k, mk);
    }
#pragma GCC unroll 8
    for (int m = 0; m < MM; m++) {
        __m512 xv = _mm512_maskz_loadu_ps(mk, x + (size_t)m * K + k);
#pragma GCC unroll 8
        for (int j = 0; j < NR; j++) acc[m][j] = _mm512_fmadd_ps(xv, wv[j], acc[m][j]);
    }
}

/* One tile: rows n..n+NR-1 of w against MM rows of x. MM and NR are compile-time constants at
 * every call site, so the accumulator array lives in registers. */
AVX512_TARGET __attribute__((always_inline)) static inline void
tile512(float *out, const float *x, const void *w, enum dsm_dtype dt, const float *bias, int N,
        int K, int n, const int MM, const int NR) {
    __m512 acc[8][8];
#pragma GCC unroll 8
    for (int m = 0; m < MM; m++)
#pragma GCC unroll 8
        for (int j = 0; j < NR; j++) acc[m][j] = _mm512_setzero_ps();
    /* whole vectors, then the tail masked: a masked-off lane adds 0 * 0, so every element's chain
     * is the same whatever the tile shape */
    int k = 0;
    for (; k + 16 <= K; k += 16) tile_step(acc, x, w, dt, K, n, k, 0xffff, MM, NR);
    if (k < K) tile_step(acc, x, w, dt, K, n, k, (__mmask16)((1u << (K - k)) - 1), MM, NR);
#pragma GCC unroll 8
    for (int m = 0; m < MM; m++)
#pragma GCC unroll 8
        for (int j = 0; j < NR; j++)
            out[(size_t)m * N + n + j] = _mm512_reduce_add_ps(acc[m][j]) + (bias ? bias[n + j] : 0.0f);
}

/* Tiles: 8 x 3 (24 accumulators, 11 loads per 24 FMAs) reads a block of weights once for 8 rows
 * of x, 4 x 6 (10 loads per 24 FMAs) twice; measured on an Intel Xeon (AMX generation), M = 64,
 * N = 2048, K = 768: 177 GFLOP/s with 8 x 3 tiles, 193 with 4 x 6, equal within noise below
 * M = 32. gemv_small_m picks 4 x 6 from M = 32. */
#define TILE_CASES(DT)                                                                          \
    if (M == 8) {                                                                               \
        for (; n + 3 <= n1; n += 3) tile512(out, x, w, DT, bias, N, K, n, 8, 3);                \
        for (; n < n1; n++) tile512(out, x, w, DT, bias, N, K, n, 8, 1);                        \
    }                                                                                           \
    if (M == 4)                                                                                 \
        for (; n + 6 <= n1; n += 6) tile512(out, x, w, DT, bias, N, K, n, 4, 6);                \
    if (M <= 2)                                                                                 \
        for (; n + 8 <= n1; n += 8) {                                                           \
            if (M == 1) tile512(out, x, w, DT, bias, N, K, n, 1, 8);                            \
            else tile512(out, x, w, DT, bias, N, K, n, 2, 8);                                   \
        }                                                                                       \
    for (; n + 4 <= n1; n += 4) switch (M) {                                                    \
        case 1: tile512(out, x, w, DT, bias, N, K, n, 1, 4); break;                             \
        case 2: tile512(out, x, w, DT, bias, N, K, n, 2, 4); break;                             \
        case 3: tile512(out, x, w, DT, bias, N, K, n, 3, 4); break;                             \
        default: tile512(out, x, w, DT, bias, N, K, n, 4, 4); break;                            \
        }                                                                                       \
    for (; n < n1; n++) switch (M) {                                                            \
        case 1: tile512(out, x, w, DT, bias, N, K, n, 1, 1); break;                             \
        case 2: tile512(out, x, w, DT, bias, N, K, n, 2, 1); break;                             \
        case 3: tile512(out, x, w, DT, bias, N, K, n, 3, 1); break;                             \
        default: tile512(out, x, w, DT, bias, N, K, n, 4, 1); break;                            \
        }

AVX512_TARGET static void gemv_rows_avx512(float *out, const float *x, const void *w,
                                           enum dsm_dtype wdt, const float *bias, int M, int N,
                                           int K, int n0, int n1) {
    int n = n0;
    switch (wdt) {
    case DSM_DT_F32: TILE_CASES(DSM_DT_F32) break;
    case DSM_DT_BF16: TILE_CASES(DSM_DT_BF16) break;
    case DSM_DT_F16: TILE_CASES(DSM_DT_F16) break;
    }
}

int gemv_have_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

void gemv_small_m(float *out, const float *x, const void *w, enum dsm_dtype wdt, const float *bias,
                  int M, int N, int K, int n_threads, int use_avx512) {
    /* Each thread takes one contiguous share of the output rows, equal up to one tile (a static
     * schedule over L2-sized blocks left one thread idle for a block in every call: N = 768 in
     * 60-row blocks is 13 blocks on 2 threads), and walks it in blocks of `rows` weight rows sized
     * to stay in L2 (~256 KB) while every tile of x passes over them. Each output element is one
     * accumulator over k in the same order whatever M, the tile or the thread count, so results
     * are batch-invariant. */
    size_t row_bytes = (size_t)K * dsm_dtype_size(wdt);
    int rows = (int)((256u << 10) / (row_bytes ? row_bytes : 1));
    rows = rows < 8 ? 8 : rows > 64 ? 64 : rows & ~7;
    int unit = 8;
    if (use_avx512 && M >= 4) rows = rows / 6 * 6, unit = 6; /* whole 8 x 3 and 4 x 6 tiles */
    int wide = use_avx512 && M < 32 ? 8 : GEMV_MAX_M; /* rows of x per pass over a block */
    int units = (N + unit - 1) / unit;
    int nt = units > 1 && (size_t)M * N * K >= GEMV_PARALLEL_MIN ? n_threads : 1;
    if (nt > units) nt = units;
#pragma omp parallel for schedule(static, 1) num_threads(nt) if (nt > 1)
    for (int t = 0; t < nt; t++) {
        int r0 = (int)((long)units * t / nt) * unit, r1 = (int)((long)units * (t + 1) / nt) * unit;
        if (r1 > N) r1 = N;
        for (int n0 = r0; n0 < r1; n0 += rows) {
            int n1 = n0 + rows < r1 ? n0 + rows : r1;
            for (int m0 = 0, mm; m0 < M; m0 += mm) {
                mm = M - m0 >= wide ? wide : M - m0 < GEMV_MAX_M ? M - m0 : GEMV_MAX_M;
                float *o = out + (size_t)m0 * N;
                const float *xr = x + (size_t)m0 * K;
                if (use_avx512) gemv_rows_avx512(o, xr, w, wdt, bias, mm, N, K, n0, n1);
                else gemv_rows_portable(o, xr, w, wdt, bias, mm, N, K, n0, n1);
            }
        }
    }
}
