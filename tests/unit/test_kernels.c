/* test_kernels.c - every fast CPU op against its naive reference (kernels/cpu/ref.c), on random
 * inputs and on shapes that exercise each code path (GEMV tiles and tails, sgemm, the bf16/f16
 * conversion path, decode and prefill attention, GQA).
 *
 * Tolerances are relative to the size of the result: the fast ops accumulate in float32 (the
 * reference in double), so a dot product of length K has a rounding error of order
 * K * 2^-24 * sum|x_k w_k|; we bound |fast - ref| by 1e-5 * (1 + sum|terms|) per element, far
 * below the effect of any indexing or formula mistake (which is O(1) relative).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "kernels/backend.h"
#include "kernels/cpu/attn.h"
#include "kernels/cpu/ref.h"
#include "test.h"


/* Max of |a-b| / (1 + |b|) over n elements. */
static double max_rel(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (1.0 + fabs((double)b[i]));
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

static void *make_weights(const float *w32, size_t n, enum dsm_dtype dt) {
    if (dt == DSM_DT_F32) {
        float *w = malloc(sizeof(float) * n);
        memcpy(w, w32, sizeof(float) * n);
        return w;
    }
    uint16_t *h = malloc(sizeof(uint16_t) * n);
    for (size_t i = 0; i < n; i++) h[i] = dt == DSM_DT_BF16 ? dsm_f32_to_bf16(w32[i]) : dsm_f32_to_f16(w32[i]);
    return h;
}

static void test_linear(struct dsm_backend *be) {
    static const int Ms[] = {1, 2, 3, 4, 5, 7, 8, 9, 17, 64};
    static const int NKs[][2] = {{1, 1}, {5, 3}, {33, 17}, {64, 48}, {300, 130}, {517, 259}};
    static const enum dsm_dtype dts[] = {DSM_DT_F32, DSM_DT_BF16, DSM_DT_F16};
    for (size_t di = 0; di < DSM_ARRAY_LEN(dts); di++)
        for (size_t mi = 0; mi < DSM_ARRAY_LEN(Ms); mi++)
            for (size_t si = 0; si < DSM_ARRAY_LEN(NKs); si++)
                for (int with_bias = 0; with_bias < 2; with_bias++) {
                    int M = Ms[mi], N = NKs[si][0], K = NKs[si][1];
                    float *x = test_rand_vec((size_t)M * K), *w32 = test_rand_vec((size_t)N * K), *b = test_rand_vec(N);
                    void *w = make_weights(w32, (size_t)N * K, dts[di]);
                    float *o1 = malloc(sizeof(float) * M * N), *o2 = malloc(sizeof(float) * M * N);
                    be->linear(be, o1, x, w, dts[di], with_bias ? b : NULL, M, N, K);
                    ref_linear(o2, x, w, dts[di], with_bias ? b : NULL, M, N, K);
                    /* terms are |x||w| <= 1 each: bound K * 1e-6 relative */
                    double e = max_rel(o1, o2, (size_t)M * N);
                    CHECK_MSG(e <= 1e-6 * (K + 1), "linear %s M=%d N=%d K=%d bias=%d: err %g",
                              dsm_dtype_name(dts[di]), M, N, K, with_bias, e);
                    free(x), free(w32), free(b), free(w), free(o1), free(o2);
                }
}

static void test_rowwise(struct dsm_backend *be) {
    int T = 7, C = 131, V = 50;
    float *x = test_rand_vec((size_t)T * C), *w = test_rand_vec(C);
    float *o1 = malloc(sizeof(float) * T * C), *o2 = malloc(sizeof(float) * T * C);
    be->rmsnorm(be, o1, x, w, T, C, 1e-6f);
    ref_rmsnorm(o2, x, w, T, C, 1e-6f);
    CHECK_MSG(max_rel(o1, o2, (size_t)T * C) <= 1e-5, "rmsnorm err %g", max_rel(o1, o2, (size_t)T * C));

    be->softmax(be, o1, x, T, C);
    ref_softmax(o2, x, T, C);
    CHECK_MSG(max_rel(o1, o2, (size_t)T * C) <= 1e-6, "softmax err %g", max_rel(o1, o2, (size_t)T * C));
    be->log_softmax(be, o1, x, T, C);
    ref_log_softmax(o2, x, T, C);
    CHECK_MSG(max_rel(o1, o2, (size_t)T * C) <= 1e-5, "log_softmax err %g", max_rel(o1, o2, (size_t)T * C));

    be->swiglu(be, o1, x, w, (size_t)C);
    ref_swiglu(o2, x, w, (size_t)C);
    CHECK_MSG(max_rel(o1, o2, (size_t)C) <= 1e-6, "swiglu err %g", max_rel(o1, o2, (size_t)C));
    be->add(be, o1, x, x + C, (size_t)C);
    ref_add(o2, x, x + C, (size_t)C);
    CHECK(max_rel(o1, o2, (size_t)C) == 0.0);

    /* embedding in all dtypes */
    static const enum dsm_dtype dts[] = {DSM_DT_F32, DSM_DT_BF16, DSM_DT_F16};
    int32_t ids[] = {0, 49, 3, 3, 17, 48, 1};
    float *tab32 = test_rand_vec((size_t)V * C);
    for (size_t di = 0; di < DSM_ARRAY_LEN(dts); di++) {
        void *tab = make_weights(tab32, (size_t)V * C, dts[di]);
        be->embedding(be, o1, ids, tab, dts[di], T, C);
        ref_embedding(o2, ids, tab, dts[di], T, C);
        CHECK_MSG(max_rel(o1, o2, (size_t)T * C) == 0.0, "embedding %s", dsm_dtype_name(dts[di]));
        free(tab);
    }
    free(tab32), free(x), free(w), free(o1), free(o2);
}

static void test_rope(struct dsm_backend *be) {
    int T = 6, H = 3, D = 16, P = 40, stride = H * D + 5; /* a row stride wider than H*D */
    float *x1 = test_rand_vec((size_t)T * stride), *x2 = malloc(sizeof(float) * T * stride);
    memcpy(x2, x1, sizeof(float) * T * stride);
    float *c = test_rand_vec((size_t)P * D / 2), *s = test_rand_vec((size_t)P * D / 2);
    int32_t pos[] = {0, 1, 2, 39, 20, 7};
    be->rope(be, x1, pos, c, s, T, H, D, stride);
    ref_rope(x2, pos, c, s, T, H, D, stride);
    CHECK_MSG(max_rel(x1, x2, (size_t)T * stride) <= 1e-6, "rope err %g", max_rel(x1, x2, (size_t)T * stride));
    free(x1), free(x2), free(c), free(s);
}

static void test_attention(struct dsm_backend *be) {
    /* (T, pos0, Hq, Hkv, D): decode, short chunk, long chunk (sgemm path), GQA, MHA */
    static const int cases[][5] = {{1, 0, 4, 4, 8},   {1, 37, 4, 2, 16}, {5, 3, 6, 3, 8},
                                   {20, 0, 4, 1, 16}, {33, 10, 8, 2, 32}, {64, 0, 2, 2, 64}};
    for (size_t ci = 0; ci < DSM_ARRAY_LEN(cases); ci++) {
        int T = cases[ci][0], pos0 = cases[ci][1], Hq = cases[ci][2], Hkv = cases[ci][3], D = cases[ci][4];
        int S = pos0 + T;
        float *q = test_rand_vec((size_t)T * Hq * D), *k = test_rand_vec((size_t)S * Hkv * D), *v = test_rand_vec((size_t)S * Hkv * D);
        float *o1 = malloc(sizeof(float) * T * Hq * D), *o2 = malloc(sizeof(float) * T * Hq * D);
        float *scratch = malloc(sizeof(float) * be->attention_scratch(be, T, S, Hq));
        float scale = 1.0f / sqrtf((float)D);
        be->attention(be, o1, q, k, v, scratch, T, pos0, Hq, Hkv, D, scale);
        ref_attention(o2, q, k, v, T, pos0, Hq, Hkv, D, scale);
        double e = max_rel(o1, o2, (size_t)T * Hq * D);
        CHECK_MSG(e <= 1e-5, "attention T=%d pos0=%d Hq=%d Hkv=%d D=%d: err %g", T, pos0, Hq, Hkv, D, e);
        free(q), free(k), free(v), free(o1), free(o2), free(scratch);
    }
}

/* f32 values as dt (f32 or f16) storage. */
static void *as_dtype(const float *x, size_t n, enum dsm_dtype dt) {
    void *p = malloc(n * dsm_dtype_size(dt));
    for (size_t i = 0; i < n; i++)
        if (dt == DSM_DT_F16) ((uint16_t *)p)[i] = dsm_f32_to_f16(x[i]);
        else ((float *)p)[i] = x[i];
    return p;
}

/* B sequences of different lengths in a pool of slots, one query each; some read a prompt prefix
 * from another slot (shared), and that gives the same bits as holding a copy of it. Pools of f32
 * and of f16 (each against the reference widening the same f16 values). */
static void test_attention_decode(struct dsm_backend *be, enum dsm_dtype dt) {
    int Hq = 6, Hkv = 2, D = 16, cap = 40, nslots = 5, KV = Hkv * D;
    size_t stride = (size_t)3 * cap * KV, es = dsm_dtype_size(dt); /* as if 3 layers per slot: stride > one layer */
    float *kf = test_rand_vec(stride * nslots), *vf = test_rand_vec(stride * nslots);
    void *k = as_dtype(kf, stride * nslots, dt), *v = as_dtype(vf, stride * nslots, dt);
    /* 0: all its own; 1 and 3: 12 prefix rows from slot 3 (read as a group), then 5 and 2 of
     * their own; 2: owner of its prefix */
    int32_t slot[] = {4, 0, 2, 1}, len[] = {1, 17, 40, 14}, pslot[] = {4, 3, 2, 3}, plen[] = {0, 12, 25, 12};
    int32_t zero[] = {0, 0, 0, 0};
    int B = 4;
    size_t no = (size_t)B * Hq * D;
    float *q = test_rand_vec(no), *o1 = malloc(sizeof(float) * no), *o2 = malloc(sizeof(float) * no);
    float *o3 = malloc(sizeof(float) * no);
    float *scratch = malloc(sizeof(float) * B * Hq * cap);
    be->attention_decode(be, o1, q, k, v, dt, slot, len, pslot, plen, stride, cap, scratch, B, Hq, Hkv, D, 0.25f);
    ref_attention_decode(o2, q, k, v, dt, slot, len, pslot, plen, stride, cap, B, Hq, Hkv, D, 0.25f);
    CHECK_MSG(max_rel(o1, o2, no) <= 1e-5, "attention_decode %s err %g", dsm_dtype_name(dt), max_rel(o1, o2, no));
    if (dt == DSM_DT_F16) {
        /* the same keys unrounded: close (f16 keeps 11 significant bits), not equal */
        ref_attention_decode(o3, q, kf, vf, DSM_DT_F32, slot, len, pslot, plen, stride, cap, B, Hq, Hkv, D, 0.25f);
        double e = max_rel(o1, o3, no);
        CHECK_MSG(e > 0 && e < 1e-2, "f16 KV against f32 KV: relative error %g, expected in (0, 1e-2)", e);
    }
    /* copy each shared prefix into the reader's own slot (the first plen rows of each head's
     * block), run without sharing: bit-identical */
    char *kc = malloc(es * stride * nslots), *vc = malloc(es * stride * nslots);
    memcpy(kc, k, es * stride * nslots), memcpy(vc, v, es * stride * nslots);
    for (int b = 0; b < B; b++)
        if (pslot[b] != slot[b])
            for (int h = 0; h < Hkv; h++) {
                size_t to = es * (slot[b] * stride + (size_t)h * cap * D), from = es * (pslot[b] * stride + (size_t)h * cap * D);
                memcpy(kc + to, (char *)k + from, es * (size_t)plen[b] * D);
                memcpy(vc + to, (char *)v + from, es * (size_t)plen[b] * D);
            }
    be->attention_decode(be, o3, q, kc, vc, dt, slot, len, slot, zero, stride, cap, scratch, B, Hq, Hkv, D, 0.25f);
    CHECK_MSG(memcmp(o1, o3, sizeof(float) * no) == 0, "a shared prefix changes the bits of attention_decode (%s)",
              dsm_dtype_name(dt));
    free(kc), free(vc), free(o3);
    /* kv_scatter puts each row exactly where asked and nowhere else, rounded as the reference */
    float *pf = test_rand_vec(stride * nslots), *src = test_rand_vec((size_t)B * KV);
    src[3] = 1e-6f, src[4] = -70000.0f, src[5] = 3.0e-8f; /* f16: subnormal, overflow to -inf, half the smallest */
    void *p1 = as_dtype(pf, stride * nslots, dt), *p2 = as_dtype(pf, stride * nslots, dt);
    int32_t pos[] = {0, 39, 7, 7};
    be->kv_scatter(be, p1, dt, src, slot, pos, stride, cap, B, Hkv, D);
    ref_kv_scatter(p2, dt, src, slot, pos, stride, cap, B, Hkv, D);
    CHECK_MSG(memcmp(p1, p2, es * stride * nslots) == 0, "kv_scatter (%s) differs from the reference", dsm_dtype_name(dt));
    /* kv_store: 23 prompt rows of (Hkv, D) into the head-major blocks of one slot layer */
    be->kv_store(be, p1, dt, pf, 23, cap, Hkv, D);
    ref_kv_store(p2, dt, pf, 23, cap, Hkv, D);
    CHECK_MSG(memcmp(p1, p2, es * stride * nslots) == 0, "kv_store (%s) differs from the reference", dsm_dtype_name(dt));
    free(k), free(v), free(kf), free(vf), free(q), free(o1), free(o2), free(scratch), free(p1), free(p2), free(pf), free(src);
}

/* A row's linear result must not depend on how many other rows share the call (up to 64): the
 * generation engine relies on it so that a sample's tokens never depend on its batch. */
static void test_batch_invariance(struct dsm_backend *be) {
    static const enum dsm_dtype dts[] = {DSM_DT_F32, DSM_DT_BF16};
    int N = 301, K = 200;
    for (size_t di = 0; di < DSM_ARRAY_LEN(dts); di++) {
        float *w32 = test_rand_vec((size_t)N * K), *b = test_rand_vec(N), *x = test_rand_vec((size_t)64 * K);
        void *w = make_weights(w32, (size_t)N * K, dts[di]);
        float *all = malloc(sizeof(float) * 64 * N), *one = malloc(sizeof(float) * N);
        int bad = 0;
        for (int M = 1; M <= 64; M += 7) {
            be->linear(be, all, x, w, dts[di], b, M, N, K);
            for (int r = 0; r < M; r++) {
                be->linear(be, one, x + (size_t)r * K, w, dts[di], b, 1, N, K);
                bad += memcmp(one, all + (size_t)r * N, sizeof(float) * N) != 0;
            }
        }
        CHECK_MSG(bad == 0, "%s: %d rows differ between batched and single linear", dsm_dtype_name(dts[di]), bad);
        free(w32), free(b), free(x), free(w), free(all), free(one);
    }
}

/* The vectorised exp, max and softmax (AVX-512) against libm in double: every element within a
 * few float32 ulps, tails of every length, arguments down to underflow (exactly 0 below ~-87.3). */
static void test_vec_exp(void) {
    if (!attn_avx512_ok(16)) {
        fprintf(stderr, "no AVX-512: vec_exp not tested\n");
        return;
    }
    float x[300], d[300];
    int ns[] = {1, 5, 15, 16, 17, 33, 300};
    double worst = 0;
    for (size_t c = 0; c < DSM_ARRAY_LEN(ns); c++) {
        int n = ns[c];
        for (int i = 0; i < n; i++) x[i] = (float)((test_frand() + 1.0) * 47.5 - 90.0);
        float mx = vec_max_avx512(x, n), want_mx = x[0];
        for (int i = 1; i < n; i++) want_mx = x[i] > want_mx ? x[i] : want_mx;
        CHECK_MSG(mx == want_mx, "vec_max n=%d: %g vs %g", n, mx, want_mx);
        float sum = vec_exp_sum_avx512(d, x, n, 0.5f, 2.0f);
        double want_sum = 0;
        for (int i = 0; i < n; i++) {
            double e = exp((double)(x[i] - 0.5f)); /* the subtraction rounds in float32, as in the kernel */
            want_sum += e;
            double err = e > 1e-37 ? fabs(d[i] - 2 * e) / (2 * e) : fabs(d[i]);
            worst = fmax(worst, e > 1e-37 ? err : 0);
            CHECK_MSG(x[i] - 0.5f < -87.3f ? d[i] == 0.0f : err < 3e-7, "vec_exp n=%d i=%d: exp(%g) %g vs %g", n, i, x[i] - 0.5,
                      d[i] / 2, e);
        }
        CHECK_MSG(fabs(sum - want_sum) <= 1e-6 * want_sum, "vec_exp_sum n=%d: %g vs %g", n, sum, want_sum);
        for (int i = 0; i < n; i++) x[i] = (float)(test_frand() * 10.0);
        memcpy(d, x, sizeof(float) * (size_t)n);
        attn_softmax_avx512(d, n);
        float m = x[0];
        double z = 0;
        for (int i = 1; i < n; i++) m = fmaxf(m, x[i]);
        for (int i = 0; i < n; i++) z += exp((double)(x[i] - m));
        for (int i = 0; i < n; i++)
            CHECK_MSG(fabs(d[i] - exp((double)(x[i] - m)) / z) <= 1e-6 * exp((double)(x[i] - m)) / z, "softmax n=%d i=%d", n, i);
    }
    /* NaN propagates (a broken score must not vanish into a probability of 0) */
    x[0] = 1.0f, x[1] = NAN, x[2] = -100.0f;
    vec_exp_sum_avx512(d, x, 3, 0.0f, 1.0f);
    CHECK(d[0] > 2.7f && d[0] < 2.72f && isnan(d[1]) && d[2] == 0.0f);
    fprintf(stderr, "vec_exp: worst relative error %.2e (float32 ulp 6e-8)\n", worst);
}

int main(void) {
    static const char *names[] = {"cpu", "ref"};
    test_vec_exp();
    for (size_t i = 0; i < DSM_ARRAY_LEN(names); i++) {
        struct dsm_err err = {0};
        struct dsm_backend *be = NULL;
        CHECK_OK(dsm_backend_open(names[i], 2, &be, &err), &err);
        if (!be) continue;
        fprintf(stderr, "backend %s: %s\n", be->name, be->desc);
        test_linear(be);
        test_rowwise(be);
        test_rope(be);
        test_attention(be);
        test_attention_decode(be, DSM_DT_F32);
        test_attention_decode(be, DSM_DT_F16);
        if (!strcmp(be->name, "cpu")) test_batch_invariance(be);
        dsm_backend_destroy(be);
    }
    /* the portable GEMV path must agree too (forced by DSM_NO_AVX512) */
    setenv("DSM_NO_AVX512", "1", 1);
    struct dsm_err err = {0};
    struct dsm_backend *be = NULL;
    CHECK_OK(dsm_backend_open("cpu", 2, &be, &err), &err);
    if (be) {
        test_linear(be);
        test_attention_decode(be, DSM_DT_F32); /* the portable attention path */
        test_attention_decode(be, DSM_DT_F16);
        test_batch_invariance(be);
        dsm_backend_destroy(be);
    }
    /* unknown names and unavailable CUDA are clean errors */
    CHECK(dsm_backend_open("tpu", 1, &be, &err) == DSM_EINVAL && strstr(err.msg, "tpu"));
    CHECK(dsm_backend_open("cuda", 1, &be, &err) == DSM_EBACKEND && be == NULL);
    return test_main_end();
}
