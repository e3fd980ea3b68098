/* test_backward_ops.c - the training ops of the backends.
 *
 * 1. The naive reference (ref_train.c) against finite differences of the naive forward ops
 *    (ref.c): for a scalar loss L = Σ r ∘ f(x) with fixed random r, the analytic gradient of a few
 *    coordinates must match the central difference (L(x+h) - L(x-h)) / 2h. The forward runs in
 *    float32 storage, so with h = 1e-2 the difference carries ~1e-5 rounding noise and O(h²)
 *    truncation; we accept 2e-3 relative to (1 + |gradient|), while a wrong formula (a missing
 *    term, a sign, a transposed index) is O(1) off.
 * 2. The fast cpu ops against the reference on random inputs and several shapes (GQA, MQA,
 *    tails, bf16 weights, masked rows, aliasing): the fast ops accumulate in float32, the
 *    reference in double; we bound the difference by 1e-5 * (1 + Σ|terms|)-style margins as in
 *    test_kernels.c, far below the effect of an indexing mistake.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "kernels/backend.h"
#include "kernels/cpu/ref.h"
#include "kernels/cpu/ref_train.h"
#include "test.h"

static float *dup_vec(const float *x, size_t n) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    memcpy(v, x, sizeof(float) * n);
    return v;
}
/* Max |a-b| / (1 + |b|). NaN counts as a failure. */
static double max_rel(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (1.0 + fabs((double)b[i]));
        if (!(d <= m)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}
static double dotr(const float *r, const float *y, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)r[i] * y[i];
    return s;
}

#define FD_H 1e-2f
#define FD_TOL 2e-3

/* ---- finite-difference checks of the reference ---------------------------------------------- */

/* Loss through one forward op; x is the tensor being perturbed. */
typedef double (*loss_fn)(void *ctx);

/* Check analytic grad[idx] of the loss against a central difference by perturbing x[idx]. */
static void fd_check(const char *what, loss_fn f, void *ctx, float *x, const float *grad, size_t n) {
    for (int trial = 0; trial < 6; trial++) {
        size_t i = (size_t)(trial * 7919u) % n;
        float keep = x[i];
        x[i] = keep + FD_H;
        double lp = f(ctx);
        x[i] = keep - FD_H;
        double lm = f(ctx);
        x[i] = keep;
        double fd = (lp - lm) / (2.0 * FD_H);
        double e = fabs(fd - grad[i]) / (1.0 + fabs(grad[i]));
        CHECK_MSG(e <= FD_TOL, "%s: d/dx[%zu] analytic %.6g vs finite difference %.6g", what, i, grad[i], fd);
    }
}

struct lin_ctx { float *x, *w, *b, *r, *y; int M, N, K; };
static double lin_loss(void *c_) {
    struct lin_ctx *c = c_;
    ref_linear(c->y, c->x, c->w, DSM_DT_F32, c->b, c->M, c->N, c->K);
    return dotr(c->r, c->y, (size_t)c->M * c->N);
}

struct norm_ctx { float *x, *w, *r, *y; int T, C; };
static double norm_loss(void *c_) {
    struct norm_ctx *c = c_;
    ref_rmsnorm(c->y, c->x, c->w, c->T, c->C, 1e-5f);
    return dotr(c->r, c->y, (size_t)c->T * c->C);
}

struct att_ctx { float *q, *k, *v, *r, *y, *qr, *kr, *cs, *sn; int32_t *pos; int T, Hq, Hkv, D; };
/* rope on copies of q and k, then attention: the loss of the whole attention block */
static double att_loss(void *c_) {
    struct att_ctx *c = c_;
    int Q = c->Hq * c->D, KV = c->Hkv * c->D;
    memcpy(c->qr, c->q, sizeof(float) * (size_t)c->T * Q);
    memcpy(c->kr, c->k, sizeof(float) * (size_t)c->T * KV);
    ref_rope(c->qr, c->pos, c->cs, c->sn, c->T, c->Hq, c->D, Q);
    ref_rope(c->kr, c->pos, c->cs, c->sn, c->T, c->Hkv, c->D, KV);
    ref_attention(c->y, c->qr, c->kr, c->v, c->T, 0, c->Hq, c->Hkv, c->D, 1.0f / sqrtf((float)c->D));
    return dotr(c->r, c->y, (size_t)c->T * Q);
}

struct sw_ctx { float *g, *u, *r, *y; size_t n; };
static double sw_loss(void *c_) {
    struct sw_ctx *c = c_;
    ref_swiglu(c->y, c->g, c->u, c->n);
    return dotr(c->r, c->y, c->n);
}

struct ce_ctx { float *x, *lp, *tmp; int32_t *tg; int R, V; };
static double ce_loss(void *c_) {
    struct ce_ctx *c = c_;
    ref_cross_entropy(c->lp, NULL, c->x, c->tg, c->R, c->V, 1.0f);
    double s = 0.0;
    for (int r = 0; r < c->R; r++) s -= c->lp[r];
    return s;
}

static void test_reference_fd(void) {
    { /* linear */
        int M = 3, N = 5, K = 7;
        struct lin_ctx c = {test_rand_vec((size_t)M * K), test_rand_vec((size_t)N * K), test_rand_vec(N), test_rand_vec((size_t)M * N),
                            malloc(sizeof(float) * M * N), M, N, K};
        float *dx = malloc(sizeof(float) * M * K), *dw = calloc((size_t)N * K, 4), *db = calloc(N, 4);
        ref_linear_backward(dx, dw, db, c.r, c.x, c.w, DSM_DT_F32, M, N, K, 0);
        fd_check("linear dx", lin_loss, &c, c.x, dx, (size_t)M * K);
        fd_check("linear dw", lin_loss, &c, c.w, dw, (size_t)N * K);
        fd_check("linear db", lin_loss, &c, c.b, db, (size_t)N);
        free(c.x), free(c.w), free(c.b), free(c.r), free(c.y), free(dx), free(dw), free(db);
    }
    { /* rmsnorm */
        int T = 3, C = 9;
        struct norm_ctx c = {test_rand_vec((size_t)T * C), test_rand_vec(C), test_rand_vec((size_t)T * C), malloc(sizeof(float) * T * C), T, C};
        float *dx = calloc((size_t)T * C, 4), *dw = calloc(C, 4);
        ref_rmsnorm_backward(dx, dw, c.r, c.x, c.w, T, C, 1e-5f);
        fd_check("rmsnorm dx", norm_loss, &c, c.x, dx, (size_t)T * C);
        fd_check("rmsnorm dw", norm_loss, &c, c.w, dw, (size_t)C);
        free(c.x), free(c.w), free(c.r), free(c.y), free(dx), free(dw);
    }
    { /* rope + attention (GQA) */
        int T = 5, Hq = 4, Hkv = 2, D = 6, Q = Hq * D, KV = Hkv * D;
        struct att_ctx c = {test_rand_vec((size_t)T * Q), test_rand_vec((size_t)T * KV), test_rand_vec((size_t)T * KV),
                            test_rand_vec((size_t)T * Q), malloc(sizeof(float) * T * Q), malloc(sizeof(float) * T * Q),
                            malloc(sizeof(float) * T * KV), test_rand_vec((size_t)T * D / 2), test_rand_vec((size_t)T * D / 2),
                            malloc(sizeof(int32_t) * T), T, Hq, Hkv, D};
        for (int t = 0; t < T; t++) c.pos[t] = t;
        att_loss(&c); /* leaves roped q, k in qr, kr */
        float *dq = malloc(sizeof(float) * T * Q), *dk = malloc(sizeof(float) * T * KV), *dv = malloc(sizeof(float) * T * KV);
        ref_attention_backward(dq, dk, dv, c.r, c.qr, c.kr, c.v, T, Hq, Hkv, D, 1.0f / sqrtf((float)D));
        ref_rope_backward(dq, c.pos, c.cs, c.sn, T, Hq, D, Q);
        ref_rope_backward(dk, c.pos, c.cs, c.sn, T, Hkv, D, KV);
        fd_check("attention+rope dq", att_loss, &c, c.q, dq, (size_t)T * Q);
        fd_check("attention+rope dk", att_loss, &c, c.k, dk, (size_t)T * KV);
        fd_check("attention dv", att_loss, &c, c.v, dv, (size_t)T * KV);
        free(c.q), free(c.k), free(c.v), free(c.r), free(c.y), free(c.qr), free(c.kr), free(c.cs), free(c.sn), free(c.pos);
        free(dq), free(dk), free(dv);
    }
    { /* swiglu */
        size_t n = 11;
        struct sw_ctx c = {test_rand_vec(n), test_rand_vec(n), test_rand_vec(n), malloc(sizeof(float) * n), n};
        for (size_t i = 0; i < n; i++) c.g[i] *= 3.0f;
        float *dg = malloc(sizeof(float) * n), *du = malloc(sizeof(float) * n);
        ref_swiglu_backward(dg, du, c.r, c.g, c.u, n);
        fd_check("swiglu dgate", sw_loss, &c, c.g, dg, n);
        fd_check("swiglu dup", sw_loss, &c, c.u, du, n);
        free(c.g), free(c.u), free(c.r), free(c.y), free(dg), free(du);
    }
    { /* cross-entropy with a masked row */
        int R = 3, V = 13;
        int32_t tg[3] = {4, -100, 12};
        struct ce_ctx c = {test_rand_vec((size_t)R * V), malloc(sizeof(float) * R), NULL, tg, R, V};
        float *d = malloc(sizeof(float) * R * V);
        ref_cross_entropy(c.lp, d, c.x, tg, R, V, 1.0f);
        fd_check("cross_entropy dlogits", ce_loss, &c, c.x, d, (size_t)R * V);
        for (int i = 0; i < V; i++) CHECK(d[V + i] == 0.0f);
        CHECK(c.lp[1] == 0.0f && c.lp[0] < 0.0f);
        free(c.x), free(c.lp), free(d);
    }
    { /* embedding backward: repeated ids add up */
        int32_t ids[4] = {2, 0, 2, 1};
        float d[8] = {1, 2, 3, 4, 5, 6, 7, 8}, tab[6] = {0};
        ref_embedding_backward(tab, d, ids, 4, 2);
        CHECK(tab[0] == 3 && tab[1] == 4 && tab[2] == 7 && tab[3] == 8 && tab[4] == 6 && tab[5] == 8);
    }
    { /* adamw: one step by hand (PyTorch's formula), and sgd */
        float p = 1.0f, g = 0.5f, m = 0.0f, v = 0.0f;
        ref_adamw(&p, &g, &m, &v, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.1f, 0.001f, 1.0f);
        double mh = 0.05 / 0.1, vh = 0.00025 / 0.001;
        CHECK_NEAR(p, 1.0 - 0.1 * (0.01 * 1.0 + mh / (sqrt(vh) + 1e-8)), 1e-6);
        float q = 2.0f, gq = 4.0f;
        ref_sgd(&q, &gq, 1, 0.1f, 0.5f, 0.25f);
        CHECK_NEAR(q, 2.0 - 0.1 * (1.0 + 1.0), 1e-6);
        float s;
        float xs[3] = {1, 2, 3};
        ref_sumsq(&s, xs, 3);
        CHECK(s == 14.0f);
    }
}

/* ---- fast cpu ops vs reference -------------------------------------------------------------- */

static void test_linear_backward(struct dsm_backend *be) {
    static const int shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 33, 65}, {64, 96, 48}, {130, 70, 200}};
    static const enum dsm_dtype dts[] = {DSM_DT_F32, DSM_DT_BF16};
    for (size_t si = 0; si < DSM_ARRAY_LEN(shapes); si++)
        for (size_t di = 0; di < DSM_ARRAY_LEN(dts); di++)
            for (int acc = 0; acc < 2; acc++) {
                int M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
                float *x = test_rand_vec((size_t)M * K), *w32 = test_rand_vec((size_t)N * K), *dout = test_rand_vec((size_t)M * N);
                void *w = w32;
                uint16_t *wb = NULL;
                if (dts[di] == DSM_DT_BF16) {
                    wb = malloc(sizeof(uint16_t) * N * K);
                    for (size_t i = 0; i < (size_t)N * K; i++) wb[i] = dsm_f32_to_bf16(w32[i]);
                    w = wb;
                }
                float *dx1 = test_rand_vec((size_t)M * K), *dw1 = test_rand_vec((size_t)N * K), *db1 = test_rand_vec(N);
                float *dx2 = dup_vec(dx1, (size_t)M * K), *dw2 = dup_vec(dw1, (size_t)N * K), *db2 = dup_vec(db1, N);
                be->linear_backward(be, dx1, dw1, db1, dout, x, w, dts[di], M, N, K, acc);
                ref_linear_backward(dx2, dw2, db2, dout, x, w, dts[di], M, N, K, acc);
                double ex = max_rel(dx1, dx2, (size_t)M * K), ew = max_rel(dw1, dw2, (size_t)N * K), eb = max_rel(db1, db2, N);
                CHECK_MSG(ex <= 1e-6 * (N + 1) && ew <= 1e-6 * (M + 1) && eb <= 1e-6 * (M + 1),
                          "linear_backward %s M=%d N=%d K=%d acc=%d: dx %g dw %g db %g", dsm_dtype_name(dts[di]), M, N, K,
                          acc, ex, ew, eb);
                /* NULL outputs are skipped */
                be->linear_backward(be, NULL, dw1, NULL, dout, x, w, dts[di], M, N, K, 0);
                free(x), free(w32), free(wb), free(dout), free(dx1), free(dw1), free(db1), free(dx2), free(dw2), free(db2);
            }
}

static void test_rowwise_backward(struct dsm_backend *be) {
    static const int shapes[][2] = {{1, 8}, {7, 131}, {300, 256}};
    for (size_t si = 0; si < DSM_ARRAY_LEN(shapes); si++) {
        int T = shapes[si][0], C = shapes[si][1];
        size_t n = (size_t)T * C;
        float *x = test_rand_vec(n), *w = test_rand_vec(C), *dout = test_rand_vec(n);
        float *dx1 = test_rand_vec(n), *dw1 = test_rand_vec(C), *dx2 = dup_vec(dx1, n), *dw2 = dup_vec(dw1, C);
        be->rmsnorm_backward(be, dx1, dw1, dout, x, w, T, C, 1e-6f);
        ref_rmsnorm_backward(dx2, dw2, dout, x, w, T, C, 1e-6f);
        CHECK_MSG(max_rel(dx1, dx2, n) <= 1e-5 && max_rel(dw1, dw2, C) <= 1e-6 * (T + 10),
                  "rmsnorm_backward T=%d C=%d: dx %g dw %g", T, C, max_rel(dx1, dx2, n), max_rel(dw1, dw2, C));

        /* swiglu backward, dgate aliasing dout */
        float *g1 = dup_vec(dout, n), *u1 = malloc(sizeof(float) * n), *g2 = malloc(sizeof(float) * n), *u2 = malloc(sizeof(float) * n);
        be->swiglu_backward(be, g1, u1, g1, x, dx1, n);
        ref_swiglu_backward(g2, u2, dout, x, dx1, n);
        CHECK_MSG(max_rel(g1, g2, n) <= 1e-6 && max_rel(u1, u2, n) <= 1e-6, "swiglu_backward n=%zu", n);

        /* embedding backward with repeated ids */
        int V = 11;
        int32_t *ids = malloc(sizeof(int32_t) * T);
        for (int t = 0; t < T; t++) ids[t] = (t * 7) % V;
        float *e1 = test_rand_vec((size_t)V * C), *e2 = dup_vec(e1, (size_t)V * C);
        be->embedding_backward(be, e1, dout, ids, T, C);
        ref_embedding_backward(e2, dout, ids, T, C);
        CHECK_MSG(max_rel(e1, e2, (size_t)V * C) <= 1e-6 * (T + 1), "embedding_backward T=%d", T);

        /* rope backward with a wide stride */
        int H = 2, D = C / H / 2 * 2, stride = C;
        if (D >= 2) {
            float *cs = test_rand_vec((size_t)(T + 3) * D / 2), *sn = test_rand_vec((size_t)(T + 3) * D / 2);
            int32_t *pos = malloc(sizeof(int32_t) * T);
            for (int t = 0; t < T; t++) pos[t] = (t * 5) % (T + 3);
            float *r1 = dup_vec(dout, n), *r2 = dup_vec(dout, n);
            be->rope_backward(be, r1, pos, cs, sn, T, H, D, stride);
            ref_rope_backward(r2, pos, cs, sn, T, H, D, stride);
            CHECK_MSG(max_rel(r1, r2, n) <= 1e-6, "rope_backward T=%d", T);
            free(cs), free(sn), free(pos), free(r1), free(r2);
        }

        /* sumsq */
        float s1, s2;
        be->sumsq(be, &s1, dout, n);
        ref_sumsq(&s2, dout, n);
        CHECK_MSG(fabs(s1 - s2) <= 1e-6 * s2, "sumsq n=%zu: %g vs %g", n, s1, s2);

        /* adamw and sgd */
        float *p1 = dup_vec(x, n), *p2 = dup_vec(x, n), *m1 = test_rand_vec(n), *v1 = test_rand_vec(n);
        for (size_t i = 0; i < n; i++) v1[i] = fabsf(v1[i]);
        float *m2 = dup_vec(m1, n), *v2 = dup_vec(v1, n);
        be->adamw(be, p1, dout, m1, v1, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.271f, 0.1426f, 0.5f);
        ref_adamw(p2, dout, m2, v2, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.271f, 0.1426f, 0.5f);
        CHECK_MSG(max_rel(p1, p2, n) <= 1e-6 && max_rel(m1, m2, n) <= 1e-6 && max_rel(v1, v2, n) <= 1e-6, "adamw n=%zu", n);
        be->sgd(be, p1, dout, n, 1e-2f, 0.1f, 0.5f);
        ref_sgd(p2, dout, n, 1e-2f, 0.1f, 0.5f);
        CHECK_MSG(max_rel(p1, p2, n) <= 1e-6, "sgd n=%zu", n);
        memcpy(p1, p2, sizeof(float) * n);
        be->scale(be, p1, n, -0.37f);
        ref_scale(p2, n, -0.37f);
        CHECK_MSG(max_rel(p1, p2, n) == 0.0, "scale n=%zu", n);
        /* dropout: same mask on both backends, about p dropped, in place works, scaled by 1/(1-p) */
        be->dropout(be, p1, x, n, 0.25f, 77);
        ref_dropout(p2, x, n, 0.25f, 77);
        CHECK_MSG(max_rel(p1, p2, n) <= 1e-7, "dropout n=%zu", n);
        size_t zeros = 0;
        for (size_t i = 0; i < n; i++) zeros += p1[i] == 0.0f;
        if (n > 1000) CHECK_MSG(fabs((double)zeros / n - 0.25) < 0.02, "dropout rate %g", (double)zeros / n);
        memcpy(p2, x, sizeof(float) * n);
        be->dropout(be, p2, p2, n, 0.25f, 77);
        CHECK(!memcmp(p1, p2, sizeof(float) * n));
        CHECK(fabsf(p1[0]) == 0.0f || fabsf(p1[0] - x[0] / 0.75f) < 1e-6f);

        free(x), free(w), free(dout), free(dx1), free(dw1), free(dx2), free(dw2), free(g1), free(u1), free(g2), free(u2);
        free(ids), free(e1), free(e2), free(p1), free(p2), free(m1), free(v1), free(m2), free(v2);
    }
}

static void test_attention_backward(struct dsm_backend *be) {
    /* (T, Hq, Hkv, D): one token, MHA, GQA, MQA, longer sequences */
    static const int cases[][4] = {{1, 2, 2, 8}, {5, 4, 2, 6}, {17, 6, 3, 16}, {40, 4, 1, 32}, {64, 8, 8, 16}};
    for (size_t ci = 0; ci < DSM_ARRAY_LEN(cases); ci++) {
        int T = cases[ci][0], Hq = cases[ci][1], Hkv = cases[ci][2], D = cases[ci][3];
        size_t nq = (size_t)T * Hq * D, nk = (size_t)T * Hkv * D;
        float *q = test_rand_vec(nq), *k = test_rand_vec(nk), *v = test_rand_vec(nk), *dout = test_rand_vec(nq);
        float *dq1 = malloc(4 * nq), *dk1 = malloc(4 * nk), *dv1 = malloc(4 * nk);
        float *dq2 = malloc(4 * nq), *dk2 = malloc(4 * nk), *dv2 = malloc(4 * nk);
        float scale = 1.0f / sqrtf((float)D);
        be->attention_backward(be, dq1, dk1, dv1, dout, q, k, v, T, Hq, Hkv, D, scale);
        ref_attention_backward(dq2, dk2, dv2, dout, q, k, v, T, Hq, Hkv, D, scale);
        double e = fmax(max_rel(dq1, dq2, nq), fmax(max_rel(dk1, dk2, nk), max_rel(dv1, dv2, nk)));
        CHECK_MSG(e <= 2e-5, "attention_backward T=%d Hq=%d Hkv=%d D=%d: err %g", T, Hq, Hkv, D, e);
        free(q), free(k), free(v), free(dout), free(dq1), free(dk1), free(dv1), free(dq2), free(dk2), free(dv2);
    }
}

static void test_cross_entropy(struct dsm_backend *be) {
    static const int shapes[][2] = {{1, 5}, {9, 300}, {70, 3001}};
    for (size_t si = 0; si < DSM_ARRAY_LEN(shapes); si++) {
        int R = shapes[si][0], V = shapes[si][1];
        size_t n = (size_t)R * V;
        float *x = test_rand_vec(n);
        for (size_t i = 0; i < n; i++) x[i] *= 8.0f;
        int32_t *tg = malloc(sizeof(int32_t) * R);
        for (int r = 0; r < R; r++) tg[r] = r % 4 == 3 ? -100 : (r * 31) % V;
        float *lp1 = malloc(4 * R), *lp2 = malloc(4 * R), *d1 = dup_vec(x, n), *d2 = malloc(4 * n);
        be->cross_entropy(be, lp1, d1, d1, tg, R, V, 0.25f); /* in place */
        ref_cross_entropy(lp2, d2, x, tg, R, V, 0.25f);
        CHECK_MSG(max_rel(lp1, lp2, R) <= 1e-5 && max_rel(d1, d2, n) <= 1e-6, "cross_entropy R=%d V=%d: logp %g d %g", R,
                  V, max_rel(lp1, lp2, R), max_rel(d1, d2, n));
        be->cross_entropy(be, lp1, NULL, x, tg, R, V, 1.0f);
        CHECK(max_rel(lp1, lp2, R) <= 1e-5);
        free(x), free(tg), free(lp1), free(lp2), free(d1), free(d2);
    }
}

int main(void) {
    test_rng_state = 0x243F6A8885A308D3ull;
    test_reference_fd();
    struct dsm_err err = {0};
    const char *names[] = {"cpu", "ref"};
    for (size_t i = 0; i < DSM_ARRAY_LEN(names); i++) {
        struct dsm_backend *be = NULL;
        CHECK_OK(dsm_backend_open(names[i], 2, &be, &err), &err);
        if (!be) continue;
        CHECK(be->linear_backward && be->embedding_backward && be->rmsnorm_backward && be->rope_backward &&
              be->attention_backward && be->swiglu_backward && be->cross_entropy && be->sumsq && be->adamw && be->sgd && be->scale && be->dropout);
        test_linear_backward(be);
        test_rowwise_backward(be);
        test_attention_backward(be);
        test_cross_entropy(be);
        dsm_backend_destroy(be);
    }
    return test_main_end();
}
