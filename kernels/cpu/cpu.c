/* cpu.c - the fast CPU backend: OpenBLAS sgemm for large products, our GEMV kernels for decode,
 * OpenMP loops for the element-wise and row-wise ops. Each op here has its naive twin in ref.c and
 * tests/unit/test_kernels.c holds the two together.
 *
 * Threads: n_threads OpenMP threads do everything; OpenBLAS is set to one thread and called from
 * inside our parallel regions, each thread multiplying its own block of columns (or heads).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "common/log.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "kernels/cpu/attn.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/gemv.h"
#include "kernels/cpu/host_mem.h"

#include "kernels/cpu/cpu_impl.h" /* struct cpu_impl, IMPL(); training ops in cpu_train.c */

/* Elements below which an element-wise or row-wise op runs on one thread: a fork/join costs a
 * few microseconds, about what these loops take on 32K elements. */
#define PARALLEL_MIN ((size_t)1 << 15)

/* Rows of weights converted to f32 per sgemm call when weights are bf16/f16 and M is large. */
#define CONVERT_ROWS 256

static void convert_rows(float *dst, const void *w, enum dsm_dtype dt, size_t n, int nt) {
    const uint16_t *h = w;
#pragma omp parallel for schedule(static) num_threads(nt) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        dst[i] = dt == DSM_DT_BF16 ? dsm_bf16_to_f32(h[i]) : dsm_f16_to_f32(h[i]);
}

/* Columns [n0, n1) of thread `tid` of nt when N is split in blocks of 16 (SIMD-friendly). */
static void thread_cols(int N, int tid, int nt, int *n0, int *n1) {
    int blocks = (N + 15) / 16;
    int b0 = (int)((long)blocks * tid / nt), b1 = (int)((long)blocks * (tid + 1) / nt);
    *n0 = b0 * 16 < N ? b0 * 16 : N;
    *n1 = b1 * 16 < N ? b1 * 16 : N;
}

/* One thread's share of a large product: out[:, n0:n1] = x · w[n0:n1]ᵀ (+ bias), with OpenBLAS
 * single-threaded in the caller. bf16/f16 weights are widened CONVERT_ROWS rows at a time. */
static void linear_cols(const struct blas_api *blas, float *out, const float *x, const void *w,
                        enum dsm_dtype wdt, const float *bias, int M, int N, int K, int n0, int n1) {
    if (n1 <= n0) return;
    float beta = 0.0f;
    if (bias) {
        for (int m = 0; m < M; m++) memcpy(out + (size_t)m * N + n0, bias + n0, sizeof(float) * (size_t)(n1 - n0));
        beta = 1.0f;
    }
    if (wdt == DSM_DT_F32) {
        blas->sgemm(BLAS_ROW_MAJOR, BLAS_NO_TRANS, BLAS_TRANS, M, n1 - n0, K, 1.0f, x, K,
                    (const float *)w + (size_t)n0 * K, K, beta, out + n0, N);
        return;
    }
    float *tmp = malloc(sizeof(float) * (size_t)CONVERT_ROWS * (size_t)K);
    DSM_ASSERT(tmp != NULL);
    for (int c0 = n0; c0 < n1; c0 += CONVERT_ROWS) {
        int nb = n1 - c0 < CONVERT_ROWS ? n1 - c0 : CONVERT_ROWS;
        convert_rows(tmp, (const uint16_t *)w + (size_t)c0 * K, wdt, (size_t)nb * K, 1);
        blas->sgemm(BLAS_ROW_MAJOR, BLAS_NO_TRANS, BLAS_TRANS, M, nb, K, 1.0f, x, K, tmp, K, beta, out + c0, N);
    }
    free(tmp);
}

static void cpu_linear(struct dsm_backend *be, float *out, const float *x, const void *w,
                       enum dsm_dtype wdt, const float *bias, int M, int N, int K) {
    struct cpu_impl *ci = IMPL(be);
    if (M <= ci->gemv_max_m) {
        gemv_small_m(out, x, w, wdt, bias, M, N, K, ci->n_threads, ci->avx512);
        return;
    }
    int nt = ci->n_threads;
#pragma omp parallel num_threads(nt) if ((size_t)M * N * K >= ((size_t)PARALLEL_MIN << 4))
    {
        int n0, n1;
        thread_cols(N, omp_get_thread_num(), omp_get_num_threads(), &n0, &n1);
        linear_cols(ci->blas, out, x, w, wdt, bias, M, N, K, n0, n1);
    }
}

static void cpu_embedding(struct dsm_backend *be, float *out, const int32_t *ids, const void *table,
                          enum dsm_dtype dt, int T, int C) {
    int nt = IMPL(be)->n_threads;
#pragma omp parallel for schedule(static) num_threads(nt) if (T > 8)
    for (int t = 0; t < T; t++) {
        float *o = out + (size_t)t * C;
        size_t base = (size_t)ids[t] * C;
        if (dt == DSM_DT_F32) memcpy(o, (const float *)table + base, sizeof(float) * (size_t)C);
        else convert_rows(o, (const uint16_t *)table + base, dt, (size_t)C, 1);
    }
}

static void cpu_rmsnorm(struct dsm_backend *be, float *out, const float *x, const float *w, int T,
                        int C, float eps) {
    int nt = IMPL(be)->n_threads;
#pragma omp parallel for schedule(static) num_threads(nt) if ((size_t)T * C >= PARALLEL_MIN)
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * C;
        float *o = out + (size_t)t * C;
        float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
        for (int c = 0; c < C; c++) ss += xr[c] * xr[c];
        float inv = 1.0f / sqrtf(ss / (float)C + eps);
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = (xr[c] * inv) * w[c];
    }
}

static void cpu_rope(struct dsm_backend *be, float *x, const int32_t *pos, const float *cos,
                     const float *sin, int T, int H, int D, int stride) {
    int nt = IMPL(be)->n_threads;
    int half = D / 2;
#pragma omp parallel for schedule(static) num_threads(nt) if ((size_t)T * H * D >= PARALLEL_MIN)
    for (int t = 0; t < T; t++) {
        const float *c = cos + (size_t)pos[t] * half;
        const float *s = sin + (size_t)pos[t] * half;
        for (int h = 0; h < H; h++) {
            float *v = x + (size_t)t * stride + (size_t)h * D;
#pragma omp simd
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        }
    }
}

/* Softmax in place over p[0..n) with scores already scaled; entries beyond n are untouched.
 * fast: the AVX-512 version (vectorised exp); every caller that must agree with another (a
 * sequence decoded alone or in a group) passes the same flag. */
static void softmax_inplace(float *p, int n, int fast) {
    if (fast) {
        attn_softmax_avx512(p, n);
        return;
    }
    float mx = -INFINITY;
    for (int s = 0; s < n; s++) mx = p[s] > mx ? p[s] : mx;
    float sum = 0.0f;
    for (int s = 0; s < n; s++) {
        p[s] = expf(p[s] - mx);
        sum += p[s];
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int s = 0; s < n; s++) p[s] *= inv;
}

/* Element i of a row of f32 (h = 0) or f16 (h = 1) values. */
static inline float kv_elem(const void *row, size_t i, int h) {
    return h ? dsm_f16_to_f32(((const uint16_t *)row)[i]) : ((const float *)row)[i];
}

/* base + off elements of f32 (h = 0) or f16 (h = 1). */
static inline const void *kv_at(const void *base, size_t off, int h) {
    return (const char *)base + off * (h ? 2 : 4);
}

/* One query head over n1 + n2 keys: o (D) = softmax(scale * q·K) · V, with p (n1 + n2) as
 * scratch. Keys and values 0..n1-1 are rows of k1/v1, the next n2 rows of k2/v2 (a shared
 * prompt prefix and a sequence's own rows); rows are `stride` elements apart, f32 or (h) f16.
 * The arithmetic is the same as over one contiguous run of rows. */
static void head_attend(float *o, float *p, const float *q, const void *k1, const void *v1, int n1,
                        const void *k2, const void *v2, int n2, int h, int stride, int D, float scale,
                        int fast) {
    int n = n1 + n2;
    if (fast) {
        attn_scores_avx512(p, q, k1, h, n1, stride, D, scale);
        if (n2) attn_scores_avx512(p + n1, q, k2, h, n2, stride, D, scale);
        softmax_inplace(p, n, 1);
        attn_accum_avx512(o, p, v1, h, n1, stride, D, 0);
        if (n2) attn_accum_avx512(o, p + n1, v2, h, n2, stride, D, 1);
        return;
    }
    for (int s = 0; s < n; s++) {
        const void *kv = s < n1 ? kv_at(k1, (size_t)s * stride, h) : kv_at(k2, (size_t)(s - n1) * stride, h);
        float d = 0.0f;
        if (h)
            for (int i = 0; i < D; i++) d += q[i] * kv_elem(kv, (size_t)i, 1);
        else
#pragma omp simd reduction(+ : d)
            for (int i = 0; i < D; i++) d += q[i] * ((const float *)kv)[i];
        p[s] = d * scale;
    }
    softmax_inplace(p, n, 0);
    for (int i = 0; i < D; i++) o[i] = 0.0f;
    for (int s = 0; s < n; s++) {
        const void *vv = s < n1 ? kv_at(v1, (size_t)s * stride, h) : kv_at(v2, (size_t)(s - n1) * stride, h);
        float ps = p[s];
        if (h)
            for (int i = 0; i < D; i++) o[i] += ps * kv_elem(vv, (size_t)i, 1);
        else
#pragma omp simd
            for (int i = 0; i < D; i++) o[i] += ps * ((const float *)vv)[i];
    }
}

/* Few queries (decode): one (t, h) pair per iteration, dot products over the cache. */
static void attention_loop(struct cpu_impl *ci, float *out, const float *q, const float *k,
                           const float *v, float *scratch, int T, int pos0, int Hq, int Hkv, int D,
                           float scale) {
    int group = Hq / Hkv, fast = ci->avx512 && attn_avx512_ok(D);
    int S = pos0 + T;
#pragma omp parallel for schedule(dynamic, 1) num_threads(ci->n_threads) \
    if (T * Hq > 1 && (size_t)T * Hq * S * D >= PARALLEL_MIN)
    for (int th = 0; th < T * Hq; th++) {
        int t = th / Hq, h = th % Hq, kh = h / group;
        int n = pos0 + t + 1;
        const float *qv = q + ((size_t)t * Hq + h) * D;
        float *p = scratch + (size_t)th * S;
        float *o = out + ((size_t)t * Hq + h) * D;
        head_attend(o, p, qv, k + (size_t)kh * D, v + (size_t)kh * D, n, NULL, NULL, 0, 0, Hkv * D, D, scale, fast);
    }
}

/* One query per sequence over its slot and a shared prefix slot. Sequences reading the same
 * prefix are grouped ATTN_MULTI at a time so that each prefix key and value row is loaded once for
 * the group (attn_*_multi_avx512); then each continues over its own rows. Every output element
 * is computed by the same chain of operations as head_attend's (tested bit for bit), so grouping
 * changes nothing and results do not depend on the batch. Work items (head, group) run head by
 * head so that a prefix's rows stay in cache. */
static void cpu_attention_decode(struct dsm_backend *be, float *out, const float *q, const void *k,
                                 const void *v, enum dsm_dtype kvdt, const int32_t *slot, const int32_t *len,
                                 const int32_t *pslot, const int32_t *plen, size_t slot_stride, int cap,
                                 float *scratch, int B, int Hq, int Hkv, int D, float scale) {
    struct cpu_impl *ci = IMPL(be);
    int group = Hq / Hkv, Smax = 0, fast = ci->avx512 && attn_avx512_ok(D);
    int multi = ci->avx512 && attn_multi_ok(D) ? ATTN_MULTI : 1, h = kvdt == DSM_DT_F16;
    DSM_ASSERT(kvdt == DSM_DT_F32 || kvdt == DSM_DT_F16);
    size_t work = 0;
    for (int b = 0; b < B; b++) {
        Smax = len[b] > Smax ? len[b] : Smax;
        work += (size_t)len[b];
    }
    /* groups: runs of up to `multi` sequences with the same (pslot, plen), in batch order */
    int ord[512], gstart[513], ng = 0, used[512] = {0};
    DSM_ASSERT(B <= 512);
    for (int b = 0, n = 0; b < B; b++) {
        if (used[b]) continue;
        gstart[ng++] = n;
        int in = 0;
        for (int c = b; c < B && in < multi; c++)
            if (!used[c] && pslot[c] == pslot[b] && plen[c] == plen[b]) used[c] = 1, ord[n++] = c, in++;
        gstart[ng] = n;
    }
#pragma omp parallel for schedule(dynamic, 2) num_threads(ci->n_threads) if (work * Hq * D >= PARALLEL_MIN)
    for (int i = 0; i < ng * Hq; i++) {
        int hd = i / ng, g = i % ng, kh = hd / group, g0 = gstart[g], gn = gstart[g + 1] - g0;
        size_t off = (size_t)kh * cap * D; /* this head's block in a slot */
        int b0 = ord[g0], n1 = plen[b0];
        if (gn == 1) {
            int b = b0;
            size_t bh = (size_t)b * Hq + hd, own = (size_t)slot[b] * slot_stride + off + (size_t)n1 * D;
            size_t pre = (size_t)pslot[b] * slot_stride + off;
            head_attend(out + bh * D, scratch + bh * Smax, q + bh * D, kv_at(k, pre, h), kv_at(v, pre, h), n1,
                        kv_at(k, own, h), kv_at(v, own, h), len[b] - n1, h, D, D, scale, fast);
            continue;
        }
        float *pp[ATTN_MULTI], *oo[ATTN_MULTI];
        const float *qq[ATTN_MULTI], *cp[ATTN_MULTI];
        for (int j = 0; j < gn; j++) {
            size_t bh = (size_t)ord[g0 + j] * Hq + hd;
            pp[j] = scratch + bh * Smax, oo[j] = out + bh * D, qq[j] = q + bh * D, cp[j] = pp[j];
        }
        size_t pre = (size_t)pslot[b0] * slot_stride + off;
        attn_scores_multi_avx512(pp, qq, gn, kv_at(k, pre, h), h, n1, D, D, scale);
        for (int j = 0; j < gn; j++) {
            int b = ord[g0 + j];
            size_t own = (size_t)slot[b] * slot_stride + off + (size_t)n1 * D;
            if (len[b] > n1) attn_scores_avx512(pp[j] + n1, qq[j], kv_at(k, own, h), h, len[b] - n1, D, D, scale);
            softmax_inplace(pp[j], len[b], 1);
        }
        attn_accum_multi_avx512(oo, cp, gn, kv_at(v, pre, h), h, n1, D, D);
        for (int j = 0; j < gn; j++) {
            int b = ord[g0 + j];
            size_t own = (size_t)slot[b] * slot_stride + off + (size_t)n1 * D;
            attn_accum_avx512(oo[j], pp[j] + n1, kv_at(v, own, h), h, len[b] - n1, D, D, 1);
        }
    }
}

/* dst (n) of dtype dt <- src (n) f32. */
static void store_row(struct cpu_impl *ci, void *dst, enum dsm_dtype dt, const float *src, size_t n) {
    DSM_ASSERT(dt == DSM_DT_F32 || dt == DSM_DT_F16);
    if (dt == DSM_DT_F32) {
        memcpy(dst, src, sizeof(float) * n);
    } else if (ci->avx512) {
        attn_store_f16_avx512(dst, src, (int)n);
    } else {
        for (size_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = dsm_f32_to_f16(src[i]);
    }
}

static void cpu_kv_scatter(struct dsm_backend *be, void *pool, enum dsm_dtype kvdt, const float *src,
                           const int32_t *slot, const int32_t *pos, size_t slot_stride, int cap, int B, int Hkv,
                           int D) {
    int h = kvdt == DSM_DT_F16;
    for (int b = 0; b < B; b++)
        for (int kh = 0; kh < Hkv; kh++)
            store_row(IMPL(be), (void *)kv_at(pool, (size_t)slot[b] * slot_stride + ((size_t)kh * cap + pos[b]) * D, h),
                      kvdt, src + ((size_t)b * Hkv + kh) * D, (size_t)D);
}

static void cpu_kv_store(struct dsm_backend *be, void *dst, enum dsm_dtype dt, const float *src, int n, int cap,
                         int Hkv, int D) {
    int h = dt == DSM_DT_F16;
    for (int kh = 0; kh < Hkv; kh++)
        for (int t = 0; t < n; t++)
            store_row(IMPL(be), (void *)kv_at(dst, ((size_t)kh * cap + t) * D, h), dt,
                      src + ((size_t)t * Hkv + kh) * D, (size_t)D);
}

/* Many queries (prefill): per head, scores = Q_h K_hᵀ and out_h = P V_h as two single-threaded
 * sgemms over strided views (no copies), heads spread over the threads, each with its own (T, S)
 * block of scratch; the masked upper triangle is computed and discarded, which costs less than the
 * per-pair loop at these sizes. */
static void attention_gemm(struct cpu_impl *ci, float *out, const float *q, const float *k,
                           const float *v, float *scratch, int T, int pos0, int Hq, int Hkv, int D,
                           float scale) {
    int group = Hq / Hkv;
    int S = pos0 + T;
#pragma omp parallel for schedule(dynamic, 1) num_threads(ci->n_threads)
    for (int h = 0; h < Hq; h++) {
        int kh = h / group;
        float *sc = scratch + (size_t)omp_get_thread_num() * T * S; /* (T, S) */
        ci->blas->sgemm(BLAS_ROW_MAJOR, BLAS_NO_TRANS, BLAS_TRANS, T, S, D, scale, q + (size_t)h * D,
                        Hq * D, k + (size_t)kh * D, Hkv * D, 0.0f, sc, S);
        for (int t = 0; t < T; t++) {
            float *p = sc + (size_t)t * S;
            int n = pos0 + t + 1;
            softmax_inplace(p, n, ci->avx512);
            for (int s2 = n; s2 < S; s2++) p[s2] = 0.0f;
        }
        ci->blas->sgemm(BLAS_ROW_MAJOR, BLAS_NO_TRANS, BLAS_NO_TRANS, T, D, S, 1.0f, sc, S,
                        v + (size_t)kh * D, Hkv * D, 0.0f, out + (size_t)h * D, Hq * D);
    }
}

static void cpu_attention(struct dsm_backend *be, float *out, const float *q, const float *k,
                          const float *v, float *scratch, int T, int pos0, int Hq, int Hkv, int D,
                          float scale) {
    struct cpu_impl *ci = IMPL(be);
    if (T >= 16) attention_gemm(ci, out, q, k, v, scratch, T, pos0, Hq, Hkv, D, scale);
    else attention_loop(ci, out, q, k, v, scratch, T, pos0, Hq, Hkv, D, scale);
}

/* Prefill needs one (T, S) block per thread; decode needs (T*Hq, S) for parallel pairs. */
static size_t cpu_attention_scratch(struct dsm_backend *be, int T, int S, int Hq) {
    size_t loop = (size_t)(T < 16 ? T : 15) * (size_t)Hq * (size_t)S;
    size_t gemm = T >= 16 ? (size_t)IMPL(be)->n_threads * (size_t)T * (size_t)S : 0;
    return loop > gemm ? loop : gemm;
}

static void cpu_swiglu(struct dsm_backend *be, float *out, const float *gate, const float *up,
                       size_t n) {
    int nt = IMPL(be)->n_threads;
#pragma omp parallel for simd schedule(static) num_threads(nt) if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

static void cpu_add(struct dsm_backend *be, float *out, const float *a, const float *b, size_t n) {
    int nt = IMPL(be)->n_threads;
#pragma omp parallel for simd schedule(static) num_threads(nt) if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

static void softmax_rows(struct cpu_impl *ci, float *out, const float *x, int R, int C, int take_log) {
#pragma omp parallel for schedule(static) num_threads(ci->n_threads) if (R > 1 && (size_t)R * C >= PARALLEL_MIN)
    for (int r = 0; r < R; r++) {
        const float *xr = x + (size_t)r * C;
        float *o = out + (size_t)r * C;
        float mx = -INFINITY;
        for (int c = 0; c < C; c++) mx = xr[c] > mx ? xr[c] : mx;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int c = 0; c < C; c++) sum += expf(xr[c] - mx);
        float lse = mx + logf(sum);
        if (take_log) {
#pragma omp simd
            for (int c = 0; c < C; c++) o[c] = xr[c] - lse;
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) o[c] = expf(xr[c] - lse);
        }
    }
}

static void cpu_softmax(struct dsm_backend *be, float *out, const float *x, int R, int C) {
    softmax_rows(IMPL(be), out, x, R, C, 0);
}

static void cpu_log_softmax(struct dsm_backend *be, float *out, const float *x, int R, int C) {
    softmax_rows(IMPL(be), out, x, R, C, 1);
}

static void cpu_destroy(struct dsm_backend *be) {
    if (!be) return;
    free(be->impl);
    free(be);
}

int dsm_backend_cpu_create(int n_threads, struct dsm_backend **out, struct dsm_err *err) {
    *out = NULL;
    const struct blas_api *blas = blas_get(err);
    if (!blas) return DSM_EBACKEND;
    struct dsm_backend *be = dsm_calloc(1, sizeof *be, err);
    struct cpu_impl *ci = dsm_calloc(1, sizeof *ci, err);
    if (!be || !ci) {
        free(be);
        free(ci);
        return DSM_ENOMEM;
    }
    ci->blas = blas;
    ci->n_threads = n_threads > 0 ? n_threads : omp_get_num_procs();
    ci->avx512 = gemv_have_avx512() && !getenv("DSM_NO_AVX512");
    ci->gemv_max_m = GEMV_MAX_BATCH;
    /* One pool of threads: ours. OpenBLAS runs single-threaded inside our OpenMP regions, so
     * its spinning pool never competes with our OpenMP team for the cores. */
    blas->set_num_threads(1);
    *be = (struct dsm_backend){
        .name = "cpu",
        .impl = ci,
        .abi = DSM_BACKEND_ABI,
        .host_threads = ci->n_threads,
        .destroy = cpu_destroy,
        .linear = cpu_linear,
        .embedding = cpu_embedding,
        .rmsnorm = cpu_rmsnorm,
        .rope = cpu_rope,
        .attention = cpu_attention,
        .attention_scratch = cpu_attention_scratch,
        .attention_decode = cpu_attention_decode,
        .kv_scatter = cpu_kv_scatter,
        .kv_store = cpu_kv_store,
        .swiglu = cpu_swiglu,
        .add = cpu_add,
        .softmax = cpu_softmax,
        .log_softmax = cpu_log_softmax,
    };
    cpu_train_fill(be);
    host_mem_fill(be);
    snprintf(be->desc, sizeof be->desc, "CPU, %d threads, OpenBLAS core %s, GEMV kernel %s",
             ci->n_threads, blas->get_corename ? blas->get_corename() : "?",
             ci->avx512 ? "AVX-512" : "portable");
    *out = be;
    return DSM_OK;
}
