/* test_cuda.c - the CUDA backend against the CPU backend: every forward op on the same inputs,
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
 *  - greedy tokens of the f32 fixture equal for 16 steps (its logit margins are far above 1e-4).
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
    if (dsm_backend_open("cuda", 0, &gpu, &err) != DSM_OK) TEST_SKIP(err.msg);
    CHECK_OK(dsm_backend_open("cpu", 2, &cpu, &err), &err);
    if (!cpu) return test_main_end();
    fprintf(stderr, "%s\n", gpu->desc);
    test_linear();
    test_rows();
    test_attention();
    test_decode();
    test_models();
    dsm_backend_destroy(gpu);
    dsm_backend_destroy(cpu);
    return test_main_end();
}
