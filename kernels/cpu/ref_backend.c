/* ref_backend.c - the "ref" backend: the naive reference ops behind the backend interface, so a
 * whole model can run on the oracle (slow; for tests and debugging). */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "common/util.h"
#include "kernels/backend.h"
#include "kernels/cpu/host_mem.h"
#include "kernels/cpu/ref.h"
#include "kernels/cpu/ref_train.h"

static void rb_linear(struct dsm_backend *be, float *out, const float *x, const void *w,
                      enum dsm_dtype wdt, const float *bias, int M, int N, int K) {
    (void)be;
    ref_linear(out, x, w, wdt, bias, M, N, K);
}
static void rb_embedding(struct dsm_backend *be, float *out, const int32_t *ids, const void *table,
                         enum dsm_dtype dt, int T, int C) {
    (void)be;
    ref_embedding(out, ids, table, dt, T, C);
}
static void rb_rmsnorm(struct dsm_backend *be, float *out, const float *x, const float *w, int T,
                       int C, float eps) {
    (void)be;
    ref_rmsnorm(out, x, w, T, C, eps);
}
static void rb_rope(struct dsm_backend *be, float *x, const int32_t *pos, const float *cos,
                    const float *sin, int T, int H, int D, int stride) {
    (void)be;
    ref_rope(x, pos, cos, sin, T, H, D, stride);
}
static void rb_attention(struct dsm_backend *be, float *out, const float *q, const float *k,
                         const float *v, float *scratch, int T, int pos0, int Hq, int Hkv, int D,
                         float scale) {
    (void)be;
    (void)scratch;
    ref_attention(out, q, k, v, T, pos0, Hq, Hkv, D, scale);
}
static void rb_attention_decode(struct dsm_backend *be, float *out, const float *q, const void *k,
                                const void *v, enum dsm_dtype kvdt, const int32_t *slot, const int32_t *len,
                                const int32_t *pslot, const int32_t *plen, size_t slot_stride, int cap,
                                float *scratch, int B, int Hq, int Hkv, int D, float scale) {
    (void)be, (void)scratch;
    ref_attention_decode(out, q, k, v, kvdt, slot, len, pslot, plen, slot_stride, cap, B, Hq, Hkv, D, scale);
}
static void rb_kv_scatter(struct dsm_backend *be, void *pool, enum dsm_dtype kvdt, const float *src,
                          const int32_t *slot, const int32_t *pos, size_t slot_stride, int cap, int B, int Hkv,
                          int D) {
    (void)be;
    ref_kv_scatter(pool, kvdt, src, slot, pos, slot_stride, cap, B, Hkv, D);
}
static void rb_kv_store(struct dsm_backend *be, void *dst, enum dsm_dtype dt, const float *src, int n, int cap,
                        int Hkv, int D) {
    (void)be;
    ref_kv_store(dst, dt, src, n, cap, Hkv, D);
}
static size_t rb_attention_scratch(struct dsm_backend *be, int T, int S, int Hq) {
    (void)be, (void)T, (void)S, (void)Hq;
    return 1; /* the reference allocates its own */
}
static void rb_swiglu(struct dsm_backend *be, float *out, const float *gate, const float *up,
                      size_t n) {
    (void)be;
    ref_swiglu(out, gate, up, n);
}
static void rb_add(struct dsm_backend *be, float *out, const float *a, const float *b, size_t n) {
    (void)be;
    ref_add(out, a, b, n);
}
static void rb_softmax(struct dsm_backend *be, float *out, const float *x, int R, int C) {
    (void)be;
    ref_softmax(out, x, R, C);
}
static void rb_log_softmax(struct dsm_backend *be, float *out, const float *x, int R, int C) {
    (void)be;
    ref_log_softmax(out, x, R, C);
}
static void rb_destroy(struct dsm_backend *be) { free(be); }

int dsm_backend_ref_create(struct dsm_backend **out, struct dsm_err *err) {
    struct dsm_backend *be = dsm_calloc(1, sizeof *be, err);
    if (!be) return DSM_ENOMEM;
    *be = (struct dsm_backend){
        .name = "ref",
        .abi = DSM_BACKEND_ABI,
        .destroy = rb_destroy,
        .linear = rb_linear,
        .embedding = rb_embedding,
        .rmsnorm = rb_rmsnorm,
        .rope = rb_rope,
        .attention = rb_attention,
        .attention_scratch = rb_attention_scratch,
        .attention_decode = rb_attention_decode,
        .kv_scatter = rb_kv_scatter,
        .kv_store = rb_kv_store,
        .swiglu = rb_swiglu,
        .add = rb_add,
        .softmax = rb_softmax,
        .log_softmax = rb_log_softmax,
    };
    ref_train_fill(be);
    snprintf(be->desc, sizeof be->desc, "naive reference ops, 1 thread");
    host_mem_fill(be);
    *out = be;
    return DSM_OK;
}
