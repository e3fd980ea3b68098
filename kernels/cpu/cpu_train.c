/* cpu_train.c - the fast CPU training ops: backward passes, cross-entropy, reductions and optimizer
 * steps. Each op has its naive twin in ref_train.c; tests/unit/test_backward_ops.c holds the two
 * together.
 *
 * Threads follow cpu.c's rule: one pool (ours). OpenBLAS is single-threaded and called from inside
 * our OpenMP regions, each thread owning a disjoint block of the output (columns of dx, rows of dw,
 * kv heads of the attention gradients), so no two threads ever write the same float and results do
 * not depend on scheduling: a run with the same thread count is bit-reproducible.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "common/util.h"
#include "kernels/backend.h"
#include "kernels/cpu/attn.h"
#include "kernels/cpu/cpu_impl.h"

/* Work (multiply-adds or elements) below which an op runs on one thread. */
#define PAR_MIN_ELEMS ((size_t)1 << 15)
#define PAR_MIN_FLOPS ((size_t)1 << 19)

/* [lo, hi) of thread tid of nt over n items in blocks of `align`. */
static void split(int n, int align, int tid, int nt, int *lo, int *hi) {
    int blocks = (n + align - 1) / align;
    int b0 = (int)((long)blocks * tid / nt), b1 = (int)((long)blocks * (tid + 1) / nt);
    *lo = b0 * align < n ? b0 * align : n;
    *hi = b1 * align < n ? b1 * align : n;
}

/* A float32 copy of w (N, K) when it is bf16/f16, else w itself; *owned says whether to free. */
static const float *weights_f32(const void *w, enum dsm_dtype wdt, size_t n, int nt, int *owned) {
    *owned = 0;
    if (wdt == DSM_DT_F32) return w;
    float *f = malloc(sizeof(float) * n);
    DSM_ASSERT(f != NULL);
    const uint16_t *h = w;
#pragma omp parallel for schedule(static) num_threads(nt) if (n >= PAR_MIN_ELEMS)
    for (size_t i = 0; i < n; i++) f[i] = wdt == DSM_DT_BF16 ? dsm_bf16_to_f32(h[i]) : dsm_f16_to_f32(h[i]);
    *owned = 1;
    return f;
}

static void cpu_linear_backward(struct dsm_backend *be, float *dx, float *dw, float *db,
                                const float *dout, const float *x, const void *w, enum dsm_dtype wdt,
                                int M, int N, int K, int accumulate_dx) {
    struct cpu_impl *ci = IMPL(be);
    const struct blas_api *blas = ci->blas;
    int nt = ci->n_threads, owned = 0;
    const float *wf = dx ? weights_f32(w, wdt, (size_t)N * K, nt, &owned) : NULL;
#pragma omp parallel num_threads(nt) if ((size_t)M * N * K >= PAR_MIN_FLOPS)
    {
        int tid = omp_get_thread_num(), n_t = omp_get_num_threads(), lo, hi;
        if (dx) { /* dx[:, lo:hi] (=|+=) dout · w[:, lo:hi] */
            split(K, 16, tid, n_t, &lo, &hi);
            if (hi > lo)
                blas->sgemm(BLAS_ROW_MAJOR, BLAS_NO_TRANS, BLAS_NO_TRANS, M, hi - lo, N, 1.0f, dout, N, wf + lo, K,
                            accumulate_dx ? 1.0f : 0.0f, dx + lo, K);
        }
        split(N, 16, tid, n_t, &lo, &hi);
        if (dw && hi > lo) /* dw[lo:hi, :] += dout[:, lo:hi]ᵀ · x */
            blas->sgemm(BLAS_ROW_MAJOR, BLAS_TRANS, BLAS_NO_TRANS, hi - lo, K, M, 1.0f, dout + lo, N, x, K, 1.0f,
                        dw + (size_t)lo * K, K);
        if (db)
            for (int m = 0; m < M; m++) {
                const float *d = dout + (size_t)m * N;
#pragma omp simd
                for (int n = lo; n < hi; n++) db[n] += d[n];
            }
    }
    if (owned) free((void *)wf);
}

static void cpu_embedding_backward(struct dsm_backend *be, float *dtable, const float *dout,
                                   const int32_t *ids, int T, int C) {
    int nt = IMPL(be)->n_threads;
#pragma omp parallel num_threads(nt) if ((size_t)T * C >= PAR_MIN_ELEMS)
    {
        int lo, hi;
        split(C, 16, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        for (int t = 0; t < T; t++) {
            float *o = dtable + (size_t)ids[t] * C;
            const float *d = dout + (size_t)t * C;
#pragma omp simd
            for (int c = lo; c < hi; c++) o[c] += d[c];
        }
    }
}

static void cpu_rmsnorm_backward(struct dsm_backend *be, float *dx, float *dw, const float *dout,
                                 const float *x, const float *w, int T, int C, float eps) {
    int nt = IMPL(be)->n_threads;
    if ((size_t)T * C < PAR_MIN_ELEMS) nt = 1;
    float *part = calloc((size_t)nt * C, sizeof(float)); /* per-thread dw partial sums */
    DSM_ASSERT(part != NULL);
#pragma omp parallel num_threads(nt)
    {
        int tid = omp_get_thread_num(), lo, hi;
        split(T, 1, tid, omp_get_num_threads(), &lo, &hi);
        float *pw = part + (size_t)tid * C;
        for (int t = lo; t < hi; t++) {
            const float *xr = x + (size_t)t * C, *dr = dout + (size_t)t * C;
            float *o = dx + (size_t)t * C;
            float ss = 0.0f, dot = 0.0f;
#pragma omp simd reduction(+ : ss, dot)
            for (int c = 0; c < C; c++) {
                ss += xr[c] * xr[c];
                dot += dr[c] * w[c] * xr[c];
            }
            float r = 1.0f / sqrtf(ss / (float)C + eps);
            float k = r * r * r * dot / (float)C;
#pragma omp simd
            for (int c = 0; c < C; c++) {
                o[c] += r * dr[c] * w[c] - xr[c] * k;
                pw[c] += dr[c] * xr[c] * r;
            }
        }
    }
    if (dw)
        for (int i = 0; i < nt; i++)
            for (int c = 0; c < C; c++) dw[c] += part[(size_t)i * C + c];
    free(part);
}

static void cpu_rope_backward(struct dsm_backend *be, float *g, const int32_t *pos, const float *cos,
                              const float *sin, int T, int H, int D, int stride) {
    int nt = IMPL(be)->n_threads, half = D / 2;
#pragma omp parallel for schedule(static) num_threads(nt) if ((size_t)T * H * D >= PAR_MIN_ELEMS)
    for (int t = 0; t < T; t++) {
        const float *c = cos + (size_t)pos[t] * half, *s = sin + (size_t)pos[t] * half;
        for (int h = 0; h < H; h++) {
            float *v = g + (size_t)t * stride + (size_t)h * D;
#pragma omp simd
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] + b * s[i];
                v[i + half] = b * c[i] - a * s[i];
            }
        }
    }
}

/* Per kv head (one thread each, so dk/dv of a group are written by one thread): for each query
 * head h of the group, P = softmax(scale Q_h K_hᵀ) (causal), dP = dO_h V_hᵀ, dV += Pᵀ dO_h,
 * dS = P ∘ (dP - rowsum(P ∘ dP)) * scale, dQ_h = dS K_h, dK += dSᵀ Q_h: six sgemms over strided
 * views; the masked upper triangle is computed as zeros (cheaper than a loop at these sizes). */
static void cpu_attention_backward(struct dsm_backend *be, float *dq, float *dk, float *dv,
                                   const float *dout, const float *q, const float *k, const float *v,
                                   int T, int Hq, int Hkv, int D, float scale) {
    struct cpu_impl *ci = IMPL(be);
    const struct blas_api *blas = ci->blas;
    int group = Hq / Hkv, Q = Hq * D, KV = Hkv * D;
    int nt = ci->n_threads < Hkv ? ci->n_threads : Hkv;
    float *scratch = malloc(sizeof(float) * 2 * (size_t)T * T * (size_t)nt);
    DSM_ASSERT(scratch != NULL);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if ((size_t)T * T * D * Hq >= PAR_MIN_FLOPS)
    for (int kh = 0; kh < Hkv; kh++) {
        float *P = scratch + (size_t)omp_get_thread_num() * 2 * T * T, *dP = P + (size_t)T * T; /* (T, T) each */
        const float *kk = k + (size_t)kh * D, *vv = v + (size_t)kh * D;
        for (int j = 0; j < group; j++) {
            int h = kh * group + j;
            const float *qh = q + (size_t)h * D, *doh = dout + (size_t)h * D;
            float beta = j ? 1.0f : 0.0f;
            blas->sgemm(BLAS_ROW_MAJOR, BLAS_NO_TRANS, BLAS_TRANS, T, T, D, scale, qh, Q, kk, KV, 0.0f, P, T);
            blas->sgemm(BLAS_ROW_MAJOR, BLAS_NO_TRANS, BLAS_TRANS, T, T, D, 1.0f, doh, Q, vv, KV, 0.0f, dP, T);
            for (int t = 0; t < T; t++) {
                float *p = P + (size_t)t * T, *dp = dP + (size_t)t * T;
                int n = t + 1;
                float rowdot = 0.0f, inv = 1.0f;
                if (ci->avx512) { /* as the forward (cpu.c softmax_inplace) */
                    attn_softmax_avx512(p, n);
                } else {
                    float mx = -INFINITY, sum = 0.0f;
                    for (int s = 0; s < n; s++) mx = p[s] > mx ? p[s] : mx;
                    for (int s = 0; s < n; s++) sum += (p[s] = expf(p[s] - mx));
                    inv = 1.0f / sum;
                }
#pragma omp simd reduction(+ : rowdot)
                for (int s = 0; s < n; s++) {
                    p[s] *= inv;
                    rowdot += p[s] * dp[s];
                }
#pragma omp simd
                for (int s = 0; s < n; s++) dp[s] = p[s] * (dp[s] - rowdot) * scale;
                for (int s = n; s < T; s++) p[s] = dp[s] = 0.0f;
            }
            blas->sgemm(BLAS_ROW_MAJOR, BLAS_TRANS, BLAS_NO_TRANS, T, D, T, 1.0f, P, T, doh, Q, beta, dv + (size_t)kh * D, KV);
            blas->sgemm(BLAS_ROW_MAJOR, BLAS_NO_TRANS, BLAS_NO_TRANS, T, D, T, 1.0f, dP, T, kk, KV, 0.0f, dq + (size_t)h * D, Q);
            blas->sgemm(BLAS_ROW_MAJOR, BLAS_TRANS, BLAS_NO_TRANS, T, D, T, 1.0f, dP, T, qh, Q, beta, dk + (size_t)kh * D, KV);
        }
    }
    free(scratch);
}

static void cpu_swiglu_backward(struct dsm_backend *be, float *dgate, float *dup, const float *dout,
                                const float *gate, const float *up, size_t n) {
    int nt = IMPL(be)->n_threads;
#pragma omp parallel for simd schedule(static) num_threads(nt) if (n >= PAR_MIN_ELEMS)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i], u = up[i], d = dout[i];
        float s = 1.0f / (1.0f + expf(-g));
        dup[i] = d * g * s;
        dgate[i] = d * u * s * (1.0f + g * (1.0f - s));
    }
}

static void cpu_cross_entropy(struct dsm_backend *be, float *logp, float *dlogits, const float *logits,
                              const int32_t *targets, int R, int V, float grad_scale) {
    int nt = IMPL(be)->n_threads, fast = IMPL(be)->avx512;
#pragma omp parallel for schedule(static) num_threads(nt) if (R > 1 && (size_t)R * V >= PAR_MIN_ELEMS)
    for (int r = 0; r < R; r++) {
        const float *x = logits + (size_t)r * V;
        int tg = targets[r];
        float mx = -INFINITY, sum = 0.0f;
        if (fast) {
            mx = vec_max_avx512(x, V);
            sum = vec_exp_sum_avx512(NULL, x, V, mx, 1.0f);
        } else {
            for (int c = 0; c < V; c++) mx = x[c] > mx ? x[c] : mx;
#pragma omp simd reduction(+ : sum)
            for (int c = 0; c < V; c++) sum += expf(x[c] - mx);
        }
        float lse = mx + logf(sum);
        logp[r] = tg >= 0 ? x[tg] - lse : 0.0f;
        if (!dlogits) continue;
        float *d = dlogits + (size_t)r * V; /* may alias x: x[c] is read before d[c] is written */
        if (tg < 0) {
            memset(d, 0, sizeof(float) * (size_t)V);
            continue;
        }
        if (fast) {
            vec_exp_sum_avx512(d, x, V, lse, grad_scale);
        } else {
#pragma omp simd
            for (int c = 0; c < V; c++) d[c] = grad_scale * expf(x[c] - lse);
        }
        d[tg] -= grad_scale;
    }
}

static void cpu_sumsq(struct dsm_backend *be, float *out, const float *x, size_t n) {
    int nt = IMPL(be)->n_threads;
    if (n < PAR_MIN_ELEMS) nt = 1;
    double part[256] = {0};
    if (nt > 256) nt = 256;
#pragma omp parallel num_threads(nt)
    {
        int tid = omp_get_thread_num(), n_t = omp_get_num_threads();
        size_t lo = n * (size_t)tid / (size_t)n_t, hi = n * (size_t)(tid + 1) / (size_t)n_t;
        double s = 0.0;
        for (size_t i = lo; i < hi; i++) s += (double)x[i] * x[i];
        part[tid] = s;
    }
    double s = 0.0;
    for (int i = 0; i < nt; i++) s += part[i];
    out[0] = (float)s;
}

static void cpu_adamw(struct dsm_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                      float lr, float b1, float b2, float eps, float wd, float bc1, float bc2,
                      float gscale) {
    int nt = IMPL(be)->n_threads;
    float ib1 = 1.0f / bc1, isb2 = 1.0f / sqrtf(bc2);
#pragma omp parallel for simd schedule(static) num_threads(nt) if (n >= PAR_MIN_ELEMS)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * gscale;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr * (wd * p[i] + (mi * ib1) / (sqrtf(vi) * isb2 + eps));
    }
}

static void cpu_sgd(struct dsm_backend *be, float *p, const float *g, size_t n, float lr, float wd,
                    float gscale) {
    int nt = IMPL(be)->n_threads;
#pragma omp parallel for simd schedule(static) num_threads(nt) if (n >= PAR_MIN_ELEMS)
    for (size_t i = 0; i < n; i++) p[i] -= lr * (gscale * g[i] + wd * p[i]);
}

static void cpu_scale(struct dsm_backend *be, float *x, size_t n, float alpha) {
    int nt = IMPL(be)->n_threads;
#pragma omp parallel for simd schedule(static) num_threads(nt) if (n >= PAR_MIN_ELEMS)
    for (size_t i = 0; i < n; i++) x[i] *= alpha;
}

static void cpu_dropout(struct dsm_backend *be, float *out, const float *x, size_t n, float p, uint64_t seed) {
    int nt = IMPL(be)->n_threads;
    float k = (float)(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static) num_threads(nt) if (n >= PAR_MIN_ELEMS)
    for (size_t i = 0; i < n; i++) out[i] = dsm_dropout_keep(seed, i, p) ? x[i] * k : 0.0f;
}

void cpu_train_fill(struct dsm_backend *be) {
    be->linear_backward = cpu_linear_backward;
    be->embedding_backward = cpu_embedding_backward;
    be->rmsnorm_backward = cpu_rmsnorm_backward;
    be->rope_backward = cpu_rope_backward;
    be->attention_backward = cpu_attention_backward;
    be->swiglu_backward = cpu_swiglu_backward;
    be->cross_entropy = cpu_cross_entropy;
    be->sumsq = cpu_sumsq;
    be->adamw = cpu_adamw;
    be->sgd = cpu_sgd;
    be->scale = cpu_scale;
    be->dropout = cpu_dropout;
}
