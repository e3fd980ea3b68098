/* test_cuda.c - the CUDA backend against the CPU backend: every op, forward and training, on the same inputs,
 * whole-model logits of the committed fixtures, and the engine's greedy tokens. Exits 77
 * (skipped) where the CUDA module or a device is missing, which is every machine without a GPU.
 *
 * Tolerances, and why (err = max |gpu - cpu| / max |cpu|, or elementwise relative where noted):
 *  - exact (bit for bit): embedding, kv_scatter, kv_store (copies and round-to-nearest-even f16);
 *  - 1e-5: linear with f32 weights (cuBLAS in pedantic f32 sums in another order than the CPU's
 *    tiles: a few ulp of the largest partial sum), rmsnorm, rope, attention, attention_decode,
 *    softmax, log_softmax, swiglu, add (other summation orders or libm versions of expf);
 *  - 2e-2 (bf16) and 2e-3 (f16): linear with 16-bit weights, whose input rows the GPU rounds to
 *    the weights' dtype (bf16 keeps 8 significant bits: 2^-9 relative per element);
 *  - logits of the f32 fixtures 1e-4 (the errors above through a few layers), of the 16-bit
 *    fixtures 5e-2 (rounded activations at every product);
 *  - greedy tokens of the f32 fixtures equal for 16 steps (their logit margins are far above 1e-4);
 *  - training ops: 1e-5 (backward passes, cross-entropy: summation order), 1e-6 (sumsq in double,
 *    adamw, sgd, scale: elementwise); dropout: the same counter-based mask exactly, scale 1e-6.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/engine.h"
#include "common/model.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "test.h"

static struct dsm_backend *gpu, *cpu;

/* max |a - b| / max |b| over n. */
static double rel_err(const float *a, const float *b, size_t n) {
    double e = 0, m = 1e-30;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return e / m;
}

/* A device copy of n bytes of host data. */
static void *dev(const void *host, size_t bytes) {
    void *d = gpu->alloc(gpu, bytes);
    if (d) gpu->upload(gpu, d, host, bytes);
    return d;
}

/* Host copy of n bytes of device data (the caller frees it), after a sync that must succeed. */
static void *host(const void *d, size_t bytes, const char *op) {
    struct dsm_err err = {0};
    void *h = malloc(bytes ? bytes : 1);
    gpu->download(gpu, h, d, bytes);
    int rc = gpu->sync(gpu, &err);
    CHECK_MSG(rc == 0, "%s: %s", op, err.msg);
    return h;
}

static void *as16(const float *x, size_t n, enum dsm_dtype dt) {
    uint16_t *p = malloc(2 * n);
    for (size_t i = 0; i < n; i++) p[i] = dt == DSM_DT_F16 ? dsm_f32_to_f16(x[i]) : dsm_f32_to_bf16(x[i]);
    return p;
}

static void test_linear(void) {
    static const enum dsm_dtype dts[] = {DSM_DT_F32, DSM_DT_BF16, DSM_DT_F16};
    static const double tol[] = {1e-5, 2e-2, 2e-3};
    int M = 37, N = 301, K = 200;
    float *x = test_rand_vec((size_t)M * K), *w32 = test_rand_vec((size_t)N * K), *b = test_rand_vec((size_t)N);
    for (int i = 0; i < 3; i++) {
        void *w = dts[i] == DSM_DT_F32 ? w32 : as16(w32, (size_t)N * K, dts[i]);
        size_t wb = (size_t)N * K * dsm_dtype_size(dts[i]);
        float *o1 = malloc(sizeof(float) * M * N);
        cpu->linear(cpu, o1, x, w, dts[i], b, M, N, K);
        float *dx = dev(x, sizeof(float) * M * K), *db = dev(b, sizeof(float) * N), *dout = gpu->alloc(gpu, sizeof(float) * M * N);
        void *dw = dev(w, wb);
        gpu->linear(gpu, dout, dx, dw, dts[i], db, M, N, K);
        float *o2 = host(dout, sizeof(float) * M * N, "linear");
        double e = rel_err(o2, o1, (size_t)M * N);
        fprintf(stderr, "linear %s: err %.3g\n", dsm_dtype_name(dts[i]), e);
        CHECK_MSG(e <= tol[i], "linear %s: err %g > %g", dsm_dtype_name(dts[i]), e, tol[i]);
        gpu->free(gpu, dx), gpu->free(gpu, db), gpu->free(gpu, dout), gpu->free(gpu, dw);
        free(o1), free(o2);
        if (w != w32) free(w);
    }
    free(x), free(w32), free(b);
}

static void test_rows(void) {
    int T = 9, C = 300, V = 50;
    /* embedding, f32 and bf16 tables: exact */
    float *table = test_rand_vec((size_t)V * C);
    int32_t ids[9] = {0, 49, 3, 3, 17, 8, 0, 21, 40};
    int32_t *dids = dev(ids, sizeof ids);
    for (int bf = 0; bf < 2; bf++) {
        enum dsm_dtype dt = bf ? DSM_DT_BF16 : DSM_DT_F32;
        void *tb = bf ? as16(table, (size_t)V * C, dt) : table;
        float *o1 = malloc(sizeof(float) * T * C);
        cpu->embedding(cpu, o1, ids, tb, dt, T, C);
        void *dt_ = dev(tb, (size_t)V * C * dsm_dtype_size(dt));
        float *dout = gpu->alloc(gpu, sizeof(float) * T * C);
        gpu->embedding(gpu, dout, dids, dt_, dt, T, C);
        float *o2 = host(dout, sizeof(float) * T * C, "embedding");
        CHECK_MSG(memcmp(o1, o2, sizeof(float) * T * C) == 0, "embedding %s differs", dsm_dtype_name(dt));
        gpu->free(gpu, dt_), gpu->free(gpu, dout);
        free(o1), free(o2);
        if (bf) free(tb);
    }
    /* rmsnorm (in place on the GPU), swiglu, add, softmax, log_softmax */
    float *x = test_rand_vec((size_t)T * C), *w = test_rand_vec((size_t)C), *y = test_rand_vec((size_t)T * C);
    float *o1 = malloc(sizeof(float) * T * C);
    float *dx = dev(x, sizeof(float) * T * C), *dw = dev(w, sizeof(float) * C), *dy = dev(y, sizeof(float) * T * C);
    float *dout = gpu->alloc(gpu, sizeof(float) * T * C);
    struct {
        const char *name;
        int op;
    } ops[] = {{"rmsnorm", 0}, {"swiglu", 1}, {"add", 2}, {"softmax", 3}, {"log_softmax", 4}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        size_t n = (size_t)T * C;
        gpu->copy(gpu, dout, dx, sizeof(float) * n);
        switch (ops[i].op) {
        case 0: cpu->rmsnorm(cpu, o1, x, w, T, C, 1e-5f), gpu->rmsnorm(gpu, dout, dout, dw, T, C, 1e-5f); break;
        case 1: cpu->swiglu(cpu, o1, x, y, n), gpu->swiglu(gpu, dout, dout, dy, n); break;
        case 2: cpu->add(cpu, o1, x, y, n), gpu->add(gpu, dout, dout, dy, n); break;
        case 3: cpu->softmax(cpu, o1, x, T, C), gpu->softmax(gpu, dout, dout, T, C); break;
        default: cpu->log_softmax(cpu, o1, x, T, C), gpu->log_softmax(gpu, dout, dout, T, C); break;
        }
        float *o2 = host(dout, sizeof(float) * n, ops[i].name);
        double e = rel_err(o2, o1, n);
        CHECK_MSG(e <= 1e-5, "%s: err %g", ops[i].name, e);
        free(o2);
    }
    /* rope on a strided view (2 heads of 16 inside rows of 40 floats) */
    int H = 2, D = 16, stride = 40, P = 64;
    float *cs = test_rand_vec((size_t)P * D / 2), *sn = test_rand_vec((size_t)P * D / 2);
    int32_t pos[9] = {0, 5, 63, 1, 2, 2, 30, 9, 11};
    float *r1 = test_rand_vec((size_t)T * stride);
    float *dr = dev(r1, sizeof(float) * T * stride), *dcs = dev(cs, sizeof(float) * P * D / 2), *dsn = dev(sn, sizeof(float) * P * D / 2);
    int32_t *dpos = dev(pos, sizeof pos);
    cpu->rope(cpu, r1, pos, cs, sn, T, H, D, stride);
    gpu->rope(gpu, dr, dpos, dcs, dsn, T, H, D, stride);
    float *r2 = host(dr, sizeof(float) * T * stride, "rope");
    CHECK_MSG(rel_err(r2, r1, (size_t)T * stride) <= 1e-5, "rope: err %g", rel_err(r2, r1, (size_t)T * stride));
    gpu->free(gpu, dx), gpu->free(gpu, dw), gpu->free(gpu, dy), gpu->free(gpu, dout), gpu->free(gpu, dids);
    gpu->free(gpu, dr), gpu->free(gpu, dcs), gpu->free(gpu, dsn), gpu->free(gpu, dpos);
    free(table), free(x), free(w), free(y), free(o1), free(cs), free(sn), free(r1), free(r2);
}

static void test_attention(void) {
    int T = 7, pos0 = 5, Hq = 4, Hkv = 2, D = 32, S = pos0 + T, KV = Hkv * D;
    float *q = test_rand_vec((size_t)T * Hq * D), *k = test_rand_vec((size_t)S * KV), *v = test_rand_vec((size_t)S * KV);
    float *o1 = malloc(sizeof(float) * T * Hq * D);
    float *sc1 = malloc(sizeof(float) * cpu->attention_scratch(cpu, T, S, Hq));
    cpu->attention(cpu, o1, q, k, v, sc1, T, pos0, Hq, Hkv, D, 0.17f);
    float *dq = dev(q, sizeof(float) * T * Hq * D), *dk = dev(k, sizeof(float) * S * KV), *dv = dev(v, sizeof(float) * S * KV);
    float *dout = gpu->alloc(gpu, sizeof(float) * T * Hq * D);
    float *dsc = gpu->alloc(gpu, sizeof(float) * gpu->attention_scratch(gpu, T, S, Hq));
    gpu->attention(gpu, dout, dq, dk, dv, dsc, T, pos0, Hq, Hkv, D, 0.17f);
    float *o2 = host(dout, sizeof(float) * T * Hq * D, "attention");
    double e = rel_err(o2, o1, (size_t)T * Hq * D);
    CHECK_MSG(e <= 1e-5, "attention: err %g", e);
    gpu->free(gpu, dq), gpu->free(gpu, dk), gpu->free(gpu, dv), gpu->free(gpu, dout), gpu->free(gpu, dsc);
    free(q), free(k), free(v), free(o1), free(o2), free(sc1);
}

/* The decode pool (head-major slots, a shared prefix) as test_kernels builds it, f32 and f16. */
static void test_decode(void) {
    int Hq = 6, Hkv = 2, D = 16, cap = 40, nslots = 5, B = 4, KV = Hkv * D;
    size_t stride = (size_t)3 * cap * KV;
    int32_t slot[] = {4, 0, 2, 1}, len[] = {1, 17, 40, 14}, pslot[] = {4, 3, 2, 3}, plen[] = {0, 12, 25, 12};
    int32_t pos[] = {0, 39, 7, 7};
    for (int h16 = 0; h16 < 2; h16++) {
        enum dsm_dtype dt = h16 ? DSM_DT_F16 : DSM_DT_F32;
        size_t es = dsm_dtype_size(dt), n = stride * nslots;
        float *kf = test_rand_vec(n), *vf = test_rand_vec(n);
        void *k = h16 ? as16(kf, n, dt) : kf, *v = h16 ? as16(vf, n, dt) : vf;
        float *q = test_rand_vec((size_t)B * Hq * D), *o1 = malloc(sizeof(float) * B * Hq * D);
        float *sc = malloc(sizeof(float) * B * Hq * cap);
        cpu->attention_decode(cpu, o1, q, k, v, dt, slot, len, pslot, plen, stride, cap, sc, B, Hq, Hkv, D, 0.25f);
        void *dk = dev(k, es * n), *dvv = dev(v, es * n);
        float *dq = dev(q, sizeof(float) * B * Hq * D), *dout = gpu->alloc(gpu, sizeof(float) * B * Hq * D);
        float *dsc = gpu->alloc(gpu, sizeof(float) * B * Hq * cap);
        int32_t *ds = dev(slot, sizeof slot), *dl = dev(len, sizeof len), *dps = dev(pslot, sizeof pslot);
        int32_t *dpl = dev(plen, sizeof plen), *dpos = dev(pos, sizeof pos);
        gpu->attention_decode(gpu, dout, dq, dk, dvv, dt, ds, dl, dps, dpl, stride, cap, dsc, B, Hq, Hkv, D, 0.25f);
        float *o2 = host(dout, sizeof(float) * B * Hq * D, "attention_decode");
        double e = rel_err(o2, o1, (size_t)B * Hq * D);
        CHECK_MSG(e <= 1e-5, "attention_decode %s: err %g", dsm_dtype_name(dt), e);
        /* kv_scatter and kv_store into copies of the pool: the same bytes as the CPU's */
        float *src = test_rand_vec((size_t)23 * KV);
        float *dsrc = dev(src, sizeof(float) * 23 * KV);
        cpu->kv_scatter(cpu, k, dt, src, slot, pos, stride, cap, B, Hkv, D);
        gpu->kv_scatter(gpu, dk, dt, dsrc, ds, dpos, stride, cap, B, Hkv, D);
        cpu->kv_store(cpu, v, dt, src, 23, cap, Hkv, D);
        gpu->kv_store(gpu, dvv, dt, dsrc, 23, cap, Hkv, D);
        void *k2 = host(dk, es * n, "kv_scatter"), *v2 = host(dvv, es * n, "kv_store");
        CHECK_MSG(memcmp(k, k2, es * n) == 0, "kv_scatter %s differs", dsm_dtype_name(dt));
        CHECK_MSG(memcmp(v, v2, es * n) == 0, "kv_store %s differs", dsm_dtype_name(dt));
        gpu->free(gpu, dk), gpu->free(gpu, dvv), gpu->free(gpu, dq), gpu->free(gpu, dout), gpu->free(gpu, dsc);
        gpu->free(gpu, ds), gpu->free(gpu, dl), gpu->free(gpu, dps), gpu->free(gpu, dpl), gpu->free(gpu, dpos), gpu->free(gpu, dsrc);
        if (h16) free(k), free(v);
        free(kf), free(vf), free(q), free(o1), free(o2), free(sc), free(src), free(k2), free(v2);
    }
}

/* A device copy of host floats, the op run on both, the results compared (rel_err <= tol). */
static float *dcopy(const float *h, size_t n) { return dev(h, sizeof(float) * n); }

static void expect_close(const char *op, float *d, const float *h, size_t n, double tol) {
    float *g = host(d, sizeof(float) * n, op);
    double e = rel_err(g, h, n);
    CHECK_MSG(e <= tol, "%s: err %g > %g", op, e, tol);
    free(g);
}

/* The training ops on the same inputs as the CPU's; "+=" outputs start from the same nonzero
 * values on both sides so that accumulation is checked too. */
static void test_training_ops(void) {
    int M = 19, N = 70, K = 48;
    float *dout = test_rand_vec((size_t)M * N), *x = test_rand_vec((size_t)M * K), *w = test_rand_vec((size_t)N * K);
    float *dx = test_rand_vec((size_t)M * K), *dw = test_rand_vec((size_t)N * K), *db = test_rand_vec((size_t)N);
    for (int bf = 0; bf < 2; bf++) {
        enum dsm_dtype dt = bf ? DSM_DT_BF16 : DSM_DT_F32;
        void *wt = bf ? as16(w, (size_t)N * K, dt) : w;
        float *gdx = dcopy(dx, (size_t)M * K), *gdw = dcopy(dw, (size_t)N * K), *gdb = dcopy(db, (size_t)N);
        float *gdo = dcopy(dout, (size_t)M * N), *gx = dcopy(x, (size_t)M * K);
        void *gw = dev(wt, (size_t)N * K * dsm_dtype_size(dt));
        float *cdx = malloc(sizeof(float) * M * K), *cdw = malloc(sizeof(float) * N * K), *cdb = malloc(sizeof(float) * N);
        memcpy(cdx, dx, sizeof(float) * M * K), memcpy(cdw, dw, sizeof(float) * N * K), memcpy(cdb, db, sizeof(float) * N);
        cpu->linear_backward(cpu, cdx, cdw, cdb, dout, x, wt, dt, M, N, K, 1);
        gpu->linear_backward(gpu, gdx, gdw, gdb, gdo, gx, gw, dt, M, N, K, 1);
        expect_close("linear_backward dx", gdx, cdx, (size_t)M * K, 1e-5);
        expect_close("linear_backward dw", gdw, cdw, (size_t)N * K, 1e-5);
        expect_close("linear_backward db", gdb, cdb, (size_t)N, 1e-5);
        gpu->free(gpu, gdx), gpu->free(gpu, gdw), gpu->free(gpu, gdb), gpu->free(gpu, gdo), gpu->free(gpu, gx), gpu->free(gpu, gw);
        free(cdx), free(cdw), free(cdb);
        if (bf) free(wt);
    }
    /* embedding (repeated ids add up), rmsnorm, rope, swiglu backward */
    int T = 9, C = 130, V = 20;
    int32_t ids[9] = {3, 3, 0, 19, 7, 3, 1, 0, 12};
    float *tab = test_rand_vec((size_t)V * C), *g = test_rand_vec((size_t)T * C), *xr = test_rand_vec((size_t)T * C);
    float *wr = test_rand_vec((size_t)C), *acc = test_rand_vec((size_t)T * C), *dwr = test_rand_vec((size_t)C);
    int32_t *gids = dev(ids, sizeof ids);
    float *gtab = dcopy(tab, (size_t)V * C), *gg = dcopy(g, (size_t)T * C), *gxr = dcopy(xr, (size_t)T * C);
    float *gwr = dcopy(wr, (size_t)C), *gacc = dcopy(acc, (size_t)T * C), *gdwr = dcopy(dwr, (size_t)C);
    cpu->embedding_backward(cpu, tab, g, ids, T, C);
    gpu->embedding_backward(gpu, gtab, gg, gids, T, C);
    expect_close("embedding_backward", gtab, tab, (size_t)V * C, 1e-6);
    cpu->rmsnorm_backward(cpu, acc, dwr, g, xr, wr, T, C, 1e-5f);
    gpu->rmsnorm_backward(gpu, gacc, gdwr, gg, gxr, gwr, T, C, 1e-5f);
    expect_close("rmsnorm_backward dx", gacc, acc, (size_t)T * C, 1e-5);
    expect_close("rmsnorm_backward dw", gdwr, dwr, (size_t)C, 1e-5);
    float *gate = test_rand_vec((size_t)T * C), *up = test_rand_vec((size_t)T * C);
    float *c1 = malloc(sizeof(float) * T * C), *c2 = malloc(sizeof(float) * T * C);
    float *ggate = dcopy(gate, (size_t)T * C), *gup = dcopy(up, (size_t)T * C);
    float *o1 = gpu->alloc(gpu, sizeof(float) * T * C), *o2 = gpu->alloc(gpu, sizeof(float) * T * C);
    cpu->swiglu_backward(cpu, c1, c2, g, gate, up, (size_t)T * C);
    gpu->swiglu_backward(gpu, o1, o2, gg, ggate, gup, (size_t)T * C);
    expect_close("swiglu_backward dgate", o1, c1, (size_t)T * C, 1e-5);
    expect_close("swiglu_backward dup", o2, c2, (size_t)T * C, 1e-5);
    int H = 2, D = 16, stride = 40, P = 32;
    float *cs = test_rand_vec((size_t)P * D / 2), *sn = test_rand_vec((size_t)P * D / 2), *rg = test_rand_vec((size_t)T * stride);
    int32_t pos[9] = {0, 5, 31, 1, 2, 2, 30, 9, 11};
    float *grg = dcopy(rg, (size_t)T * stride), *gcs = dcopy(cs, (size_t)P * D / 2), *gsn = dcopy(sn, (size_t)P * D / 2);
    int32_t *gpos = dev(pos, sizeof pos);
    cpu->rope_backward(cpu, rg, pos, cs, sn, T, H, D, stride);
    gpu->rope_backward(gpu, grg, gpos, gcs, gsn, T, H, D, stride);
    expect_close("rope_backward", grg, rg, (size_t)T * stride, 1e-5);
    /* attention backward, GQA */
    int At = 11, Hq = 4, Hkv = 2, Ad = 16, Q = Hq * Ad, KV = Hkv * Ad;
    float *aq = test_rand_vec((size_t)At * Q), *ak = test_rand_vec((size_t)At * KV), *av = test_rand_vec((size_t)At * KV);
    float *ado = test_rand_vec((size_t)At * Q);
    float *cq = malloc(sizeof(float) * At * Q), *ck = malloc(sizeof(float) * At * KV), *cv = malloc(sizeof(float) * At * KV);
    cpu->attention_backward(cpu, cq, ck, cv, ado, aq, ak, av, At, Hq, Hkv, Ad, 0.25f);
    float *gq = dcopy(aq, (size_t)At * Q), *gk = dcopy(ak, (size_t)At * KV), *gv = dcopy(av, (size_t)At * KV), *gdo = dcopy(ado, (size_t)At * Q);
    float *gdq = gpu->alloc(gpu, sizeof(float) * At * Q), *gdk = gpu->alloc(gpu, sizeof(float) * At * KV), *gdv = gpu->alloc(gpu, sizeof(float) * At * KV);
    gpu->attention_backward(gpu, gdq, gdk, gdv, gdo, gq, gk, gv, At, Hq, Hkv, Ad, 0.25f);
    expect_close("attention_backward dq", gdq, cq, (size_t)At * Q, 1e-5);
    expect_close("attention_backward dk", gdk, ck, (size_t)At * KV, 1e-5);
    expect_close("attention_backward dv", gdv, cv, (size_t)At * KV, 1e-5);
    /* cross-entropy with a masked row, dlogits written over the logits */
    int R = 5, Vc = 300;
    float *lg = test_rand_vec((size_t)R * Vc);
    int32_t tg[5] = {7, -1, 299, 0, 150};
    float clp[5], *cd = malloc(sizeof(float) * R * Vc);
    cpu->cross_entropy(cpu, clp, cd, lg, tg, R, Vc, 0.5f);
    float *glg = dcopy(lg, (size_t)R * Vc), *glp = gpu->alloc(gpu, sizeof(float) * R);
    int32_t *gtg = dev(tg, sizeof tg);
    gpu->cross_entropy(gpu, glp, glg, glg, gtg, R, Vc, 0.5f);
    expect_close("cross_entropy logp", glp, clp, (size_t)R, 1e-5);
    expect_close("cross_entropy dlogits", glg, cd, (size_t)R * Vc, 1e-5);
    /* sumsq, adamw, sgd, scale, dropout */
    size_t n = 100003;
    float *pa = test_rand_vec(n), *ga = test_rand_vec(n), *ma = test_rand_vec(n), *va = test_rand_vec(n);
    for (size_t i = 0; i < n; i++) va[i] = fabsf(va[i]);
    float *gpa = dcopy(pa, n), *gga = dcopy(ga, n), *gma = dcopy(ma, n), *gva = dcopy(va, n), *gs = gpu->alloc(gpu, sizeof(float));
    float cs1;
    cpu->sumsq(cpu, &cs1, ga, n);
    gpu->sumsq(gpu, gs, gga, n);
    expect_close("sumsq", gs, &cs1, 1, 1e-6);
    cpu->adamw(cpu, pa, ga, ma, va, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.1f, 0.05f, 0.7f);
    gpu->adamw(gpu, gpa, gga, gma, gva, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.1f, 0.05f, 0.7f);
    expect_close("adamw p", gpa, pa, n, 1e-6);
    expect_close("adamw m", gma, ma, n, 1e-6);
    expect_close("adamw v", gva, va, n, 1e-6);
    cpu->sgd(cpu, pa, ga, n, 0.01f, 0.1f, 0.5f);
    gpu->sgd(gpu, gpa, gga, n, 0.01f, 0.1f, 0.5f);
    cpu->scale(cpu, pa, n, 1.5f);
    gpu->scale(gpu, gpa, n, 1.5f);
    expect_close("sgd, scale", gpa, pa, n, 1e-6);
    cpu->dropout(cpu, ma, ga, n, 0.3f, 12345);
    gpu->dropout(gpu, gma, gga, n, 0.3f, 12345);
    float *dm = host(gma, sizeof(float) * n, "dropout");
    size_t other = 0;
    for (size_t i = 0; i < n; i++) other += (dm[i] == 0.0f) != (ma[i] == 0.0f);
    CHECK_MSG(other == 0, "dropout: %zu of %zu elements masked differently from the CPU", other, n);
    CHECK_MSG(rel_err(dm, ma, n) <= 1e-6, "dropout: scale err %g", rel_err(dm, ma, n));
    free(dm);
    void *devs[] = {gids, gtab, gg, gxr, gwr, gacc, gdwr, ggate, gup, o1, o2, grg, gcs, gsn, gpos, gq, gk, gv, gdo, gdq,
                    gdk, gdv, glg, glp, gtg, gpa, gga, gma, gva, gs};
    for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++) gpu->free(gpu, devs[i]);
    free(dout), free(x), free(w), free(dx), free(dw), free(db), free(tab), free(g), free(xr), free(wr), free(acc), free(dwr);
    free(gate), free(up), free(c1), free(c2), free(cs), free(sn), free(rg), free(aq), free(ak), free(av), free(ado);
    free(cq), free(ck), free(cv), free(lg), free(cd), free(pa), free(ga), free(ma), free(va);
}

struct greedy {
    int32_t ids[16];
    int n;
};

static int keep_ids(void *user, const struct dsm_completion *c) {
    struct greedy *g = user;
    g->n = c->n_ids < 16 ? c->n_ids : 16;
    memcpy(g->ids, c->ids, sizeof(int32_t) * (size_t)g->n);
    return 0;
}

/* Whole-model logits of each fixture on both backends, and greedy decoding through the engine. */
static void test_models(void) {
    static const struct {
        const char *dir;
        double tol;
    } fx[] = {{"tests/fixtures/models/llama_mha_f32", 1e-4},
              {"tests/fixtures/models/qwen2_gqa_f32", 1e-4},
              {"tests/fixtures/models/llama_gqa_tied_bias_f32", 1e-4},
              {"tests/fixtures/models/qwen2_tied_bf16", 5e-2},
              {"tests/fixtures/models/llama_f16", 5e-2}};
    for (size_t i = 0; i < sizeof fx / sizeof fx[0]; i++) {
        struct dsm_err err = {0};
        struct dsm_model *mc = NULL, *mg = NULL;
        CHECK_OK(dsm_model_load(fx[i].dir, cpu, NULL, &mc, &err), &err);
        CHECK_OK(dsm_model_load(fx[i].dir, gpu, NULL, &mg, &err), &err);
        if (!mc || !mg) {
            dsm_model_destroy(mc), dsm_model_destroy(mg);
            continue;
        }
        int V = dsm_model_config(mc)->vocab_size, n = 12;
        int32_t ids[12];
        for (int t = 0; t < n; t++) ids[t] = (t * 37 + 5) % V;
        float *l1 = malloc(sizeof(float) * n * V), *l2 = malloc(sizeof(float) * n * V);
        CHECK_OK(dsm_model_logits(mc, ids, n, l1, &err), &err);
        CHECK_OK(dsm_model_logits(mg, ids, n, l2, &err), &err);
        double e = rel_err(l2, l1, (size_t)n * V);
        fprintf(stderr, "%s: logits err %.3g\n", fx[i].dir, e);
        CHECK_MSG(e <= fx[i].tol, "%s: logits err %g > %g", fx[i].dir, e, fx[i].tol);
        if (fx[i].tol < 1e-3) {
            struct dsm_engine *ec = NULL, *eg = NULL;
            CHECK_OK(dsm_engine_create(mc, NULL, NULL, &ec, &err), &err);
            CHECK_OK(dsm_engine_create(mg, NULL, NULL, &eg, &err), &err);
            struct dsm_gen_request r = {ids, 4, 1, {0.0f, 0, 1.0f, 16, 0, NULL, 0, 1}};
            struct greedy g[2] = {{{0}, 0}, {{0}, 0}};
            struct dsm_engine *es[2] = {ec, eg};
            for (int b = 0; b < 2 && ec && eg; b++) CHECK_OK(dsm_engine_run(es[b], &r, 1, keep_ids, &g[b], &err), &err);
            CHECK_MSG(g[0].n == 16, "%s: the CPU engine gave %d greedy tokens, not 16", fx[i].dir, g[0].n);
            CHECK_MSG(g[0].n == g[1].n && memcmp(g[0].ids, g[1].ids, sizeof(int32_t) * (size_t)g[0].n) == 0,
                      "%s: greedy tokens differ between cpu (%d) and cuda (%d)", fx[i].dir, g[0].n, g[1].n);
            dsm_engine_destroy(ec), dsm_engine_destroy(eg);
        }
        free(l1), free(l2);
        dsm_model_destroy(mc), dsm_model_destroy(mg);
    }
}

int main(void) {
    struct dsm_err err = {0};
    setenv("DSM_CUDA_UNVERIFIED", "1", 1); /* this test is what verifies them */
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 32);
    if (n > 0 && !getenv("DSM_CUDA_MODULE")) { /* the module is built beside dsm, one level up */
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) strcpy(slash, "/../libdsm_cuda.so"), setenv("DSM_CUDA_MODULE", exe, 1);
    }
    /* DSM_TEST_CUDA_BACKEND=ref runs the same checks with the reference backend in the GPU's place:
     * how this test itself was exercised on machines without a GPU */
    const char *name = getenv("DSM_TEST_CUDA_BACKEND") ? getenv("DSM_TEST_CUDA_BACKEND") : "cuda";
    if (dsm_backend_open(name, 0, &gpu, &err) != DSM_OK) TEST_SKIP(err.msg);
    CHECK_OK(dsm_backend_open("cpu", 2, &cpu, &err), &err);
    if (!cpu) return test_main_end();
    fprintf(stderr, "%s\n", gpu->desc);
    test_linear();
    test_rows();
    test_attention();
    test_decode();
    test_training_ops();
    test_models();
    dsm_backend_destroy(gpu);
    dsm_backend_destroy(cpu);
    return test_main_end();
}
