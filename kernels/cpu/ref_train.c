/* ref_train.c - naive reference training ops (the oracle); see ref_train.h. Sums accumulate in
 * double, and outputs that several terms add into are gathered in double before one rounding. */
#include "kernels/cpu/ref_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "kernels/cpu/ref.h"

static double *dzeros(size_t n) {
    double *p = calloc(n ? n : 1, sizeof(double));
    DSM_ASSERT(p != NULL);
    return p;
}

void ref_linear_backward(float *dx, float *dw, float *db, const float *dout, const float *x,
                         const void *w, enum dsm_dtype wdt, int M, int N, int K, int accumulate_dx) {
    if (dx)
        for (int m = 0; m < M; m++)
            for (int k = 0; k < K; k++) {
                double acc = accumulate_dx ? dx[(size_t)m * K + k] : 0.0;
                for (int n = 0; n < N; n++)
                    acc += (double)dout[(size_t)m * N + n] * ref_load(w, wdt, (size_t)n * K + k);
                dx[(size_t)m * K + k] = (float)acc;
            }
    if (dw)
        for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++) {
                double acc = dw[(size_t)n * K + k];
                for (int m = 0; m < M; m++) acc += (double)dout[(size_t)m * N + n] * x[(size_t)m * K + k];
                dw[(size_t)n * K + k] = (float)acc;
            }
    if (db)
        for (int n = 0; n < N; n++) {
            double acc = db[n];
            for (int m = 0; m < M; m++) acc += dout[(size_t)m * N + n];
            db[n] = (float)acc;
        }
}

void ref_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int T, int C) {
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++) dtable[(size_t)ids[t] * C + c] += dout[(size_t)t * C + c];
}

void ref_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                          int T, int C, float eps) {
    double *dwa = dzeros((size_t)C);
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * C, *dr = dout + (size_t)t * C;
        double ss = 0.0, dot = 0.0;
        for (int c = 0; c < C; c++) {
            ss += (double)xr[c] * xr[c];
            dot += (double)dr[c] * w[c] * xr[c];
        }
        double r = 1.0 / sqrt(ss / C + eps);
        for (int c = 0; c < C; c++) {
            double g = r * dr[c] * w[c] - xr[c] * r * r * r * dot / C;
            dx[(size_t)t * C + c] = (float)(dx[(size_t)t * C + c] + g);
            dwa[c] += (double)dr[c] * xr[c] * r;
        }
    }
    if (dw)
        for (int c = 0; c < C; c++) dw[c] = (float)(dw[c] + dwa[c]);
    free(dwa);
}

void ref_rope_backward(float *g, const int32_t *pos, const float *cos, const float *sin, int T,
                       int H, int D, int stride) {
    int half = D / 2;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            float *v = g + (size_t)t * stride + (size_t)h * D;
            const float *c = cos + (size_t)pos[t] * half, *s = sin + (size_t)pos[t] * half;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] + b * s[i];
                v[i + half] = b * c[i] - a * s[i];
            }
        }
}

void ref_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                            const float *k, const float *v, int T, int Hq, int Hkv, int D,
                            float scale) {
    int group = Hq / Hkv, Q = Hq * D, KV = Hkv * D;
    double *gq = dzeros((size_t)T * Q), *gk = dzeros((size_t)T * KV), *gv = dzeros((size_t)T * KV);
    double *p = dzeros((size_t)T), *dp = dzeros((size_t)T);
    for (int h = 0; h < Hq; h++) {
        int kh = h / group;
        for (int t = 0; t < T; t++) {
            const float *qv = q + (size_t)t * Q + (size_t)h * D, *go = dout + (size_t)t * Q + (size_t)h * D;
            double mx = -INFINITY, sum = 0.0, rowdot = 0.0;
            for (int s = 0; s <= t; s++) {
                double d = 0.0;
                for (int i = 0; i < D; i++) d += (double)qv[i] * k[(size_t)s * KV + (size_t)kh * D + i];
                p[s] = d * scale;
                if (p[s] > mx) mx = p[s];
            }
            for (int s = 0; s <= t; s++) sum += (p[s] = exp(p[s] - mx));
            for (int s = 0; s <= t; s++) {
                p[s] /= sum;
                double d = 0.0;
                for (int i = 0; i < D; i++) d += (double)go[i] * v[(size_t)s * KV + (size_t)kh * D + i];
                dp[s] = d;
                rowdot += p[s] * d;
            }
            for (int s = 0; s <= t; s++) {
                double ds = p[s] * (dp[s] - rowdot) * scale;
                for (int i = 0; i < D; i++) {
                    gq[(size_t)t * Q + (size_t)h * D + i] += ds * k[(size_t)s * KV + (size_t)kh * D + i];
                    gk[(size_t)s * KV + (size_t)kh * D + i] += ds * qv[i];
                    gv[(size_t)s * KV + (size_t)kh * D + i] += p[s] * go[i];
                }
            }
        }
    }
    for (size_t i = 0; i < (size_t)T * Q; i++) dq[i] = (float)gq[i];
    for (size_t i = 0; i < (size_t)T * KV; i++) {
        dk[i] = (float)gk[i];
        dv[i] = (float)gv[i];
    }
    free(gq), free(gk), free(gv), free(p), free(dp);
}

void ref_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                         const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double g = gate[i], u = up[i], d = dout[i];
        double s = 1.0 / (1.0 + exp(-g));
        dup[i] = (float)(d * g * s);
        dgate[i] = (float)(d * u * s * (1.0 + g * (1.0 - s)));
    }
}

void ref_cross_entropy(float *logp, float *dlogits, const float *logits, const int32_t *targets,
                       int R, int V, float grad_scale) {
    for (int r = 0; r < R; r++) {
        const float *x = logits + (size_t)r * V;
        int tg = targets[r];
        double mx = -INFINITY, sum = 0.0;
        for (int c = 0; c < V; c++)
            if (x[c] > mx) mx = x[c];
        for (int c = 0; c < V; c++) sum += exp((double)x[c] - mx);
        double lse = mx + log(sum);
        logp[r] = tg >= 0 ? (float)((double)x[tg] - lse) : 0.0f;
        if (!dlogits) continue;
        float *d = dlogits + (size_t)r * V;
        for (int c = 0; c < V; c++)
            d[c] = tg >= 0 ? (float)(grad_scale * (exp((double)x[c] - lse) - (c == tg))) : 0.0f;
    }
}

void ref_sumsq(float *out, const float *x, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    out[0] = (float)s;
}

void ref_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2,
               float eps, float wd, float bc1, float bc2, float gscale) {
    for (size_t i = 0; i < n; i++) {
        double gi = (double)g[i] * gscale;
        double mi = b1 * (double)m[i] + (1.0 - b1) * gi;
        double vi = b2 * (double)v[i] + (1.0 - b2) * gi * gi;
        m[i] = (float)mi;
        v[i] = (float)vi;
        double upd = wd * (double)p[i] + (mi / bc1) / (sqrt(vi / bc2) + eps);
        p[i] = (float)(p[i] - lr * upd);
    }
}

void ref_scale(float *x, size_t n, float alpha) {
    for (size_t i = 0; i < n; i++) x[i] *= alpha;
}

void ref_dropout(float *out, const float *x, size_t n, float p, uint64_t seed) {
    for (size_t i = 0; i < n; i++) out[i] = dsm_dropout_keep(seed, i, p) ? (float)(x[i] / (1.0 - p)) : 0.0f;
}

void ref_sgd(float *p, const float *g, size_t n, float lr, float wd, float gscale) {
    for (size_t i = 0; i < n; i++) p[i] = (float)(p[i] - (double)lr * ((double)gscale * g[i] + (double)wd * p[i]));
}

/* ---- backend wrappers ---- */

static void rb_linear_backward(struct dsm_backend *be, float *dx, float *dw, float *db,
                               const float *dout, const float *x, const void *w, enum dsm_dtype wdt,
                               int M, int N, int K, int accumulate_dx) {
    (void)be;
    ref_linear_backward(dx, dw, db, dout, x, w, wdt, M, N, K, accumulate_dx);
}
static void rb_embedding_backward(struct dsm_backend *be, float *dtable, const float *dout,
                                  const int32_t *ids, int T, int C) {
    (void)be;
    ref_embedding_backward(dtable, dout, ids, T, C);
}
static void rb_rmsnorm_backward(struct dsm_backend *be, float *dx, float *dw, const float *dout,
                                const float *x, const float *w, int T, int C, float eps) {
    (void)be;
    ref_rmsnorm_backward(dx, dw, dout, x, w, T, C, eps);
}
static void rb_rope_backward(struct dsm_backend *be, float *g, const int32_t *pos, const float *cos,
                             const float *sin, int T, int H, int D, int stride) {
    (void)be;
    ref_rope_backward(g, pos, cos, sin, T, H, D, stride);
}
static void rb_attention_backward(struct dsm_backend *be, float *dq, float *dk, float *dv,
                                  const float *dout, const float *q, const float *k, const float *v,
                                  int T, int Hq, int Hkv, int D, float scale) {
    (void)be;
    ref_attention_backward(dq, dk, dv, dout, q, k, v, T, Hq, Hkv, D, scale);
}
static void rb_swiglu_backward(struct dsm_backend *be, float *dgate, float *dup, const float *dout,
                               const float *gate, const float *up, size_t n) {
    (void)be;
    ref_swiglu_backward(dgate, dup, dout, gate, up, n);
}
static void rb_cross_entropy(struct dsm_backend *be, float *logp, float *dlogits, const float *logits,
                             const int32_t *targets, int R, int V, float grad_scale) {
    (void)be;
    ref_cross_entropy(logp, dlogits, logits, targets, R, V, grad_scale);
}
static void rb_sumsq(struct dsm_backend *be, float *out, const float *x, size_t n) {
    (void)be;
    ref_sumsq(out, x, n);
}
static void rb_adamw(struct dsm_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                     float lr, float b1, float b2, float eps, float wd, float bc1, float bc2,
                     float gscale) {
    (void)be;
    ref_adamw(p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2, gscale);
}
static void rb_scale(struct dsm_backend *be, float *x, size_t n, float alpha) {
    (void)be;
    ref_scale(x, n, alpha);
}
static void rb_dropout(struct dsm_backend *be, float *out, const float *x, size_t n, float p, uint64_t seed) {
    (void)be;
    ref_dropout(out, x, n, p, seed);
}
static void rb_sgd(struct dsm_backend *be, float *p, const float *g, size_t n, float lr, float wd,
                   float gscale) {
    (void)be;
    ref_sgd(p, g, n, lr, wd, gscale);
}

void ref_train_fill(struct dsm_backend *be) {
    be->linear_backward = rb_linear_backward;
    be->embedding_backward = rb_embedding_backward;
    be->rmsnorm_backward = rb_rmsnorm_backward;
    be->rope_backward = rb_rope_backward;
    be->attention_backward = rb_attention_backward;
    be->swiglu_backward = rb_swiglu_backward;
    be->cross_entropy = rb_cross_entropy;
    be->sumsq = rb_sumsq;
    be->adamw = rb_adamw;
    be->sgd = rb_sgd;
    be->scale = rb_scale;
    be->dropout = rb_dropout;
}
