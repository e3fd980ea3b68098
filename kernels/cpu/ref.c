/* ref.c - naive reference ops (the oracle); see ref.h. Sums accumulate in double so that the
 * reference is more accurate than anything it judges. */
#include "kernels/cpu/ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

float ref_load(const void *w, enum dsm_dtype dt, size_t i) {
    switch (dt) {
    case DSM_DT_F32: return ((const float *)w)[i];
    case DSM_DT_BF16: return dsm_bf16_to_f32(((const uint16_t *)w)[i]);
    case DSM_DT_F16: return dsm_f16_to_f32(((const uint16_t *)w)[i]);
    }
    return 0.0f;
}

void ref_linear(float *out, const float *x, const void *w, enum dsm_dtype wdt, const float *bias,
                int M, int N, int K) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double acc = bias ? bias[n] : 0.0;
            for (int k = 0; k < K; k++)
                acc += (double)x[(size_t)m * K + k] * ref_load(w, wdt, (size_t)n * K + k);
            out[(size_t)m * N + n] = (float)acc;
        }
}

void ref_embedding(float *out, const int32_t *ids, const void *table, enum dsm_dtype dt, int T,
                   int C) {
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++) out[(size_t)t * C + c] = ref_load(table, dt, (size_t)ids[t] * C + c);
}

void ref_rmsnorm(float *out, const float *x, const float *w, int T, int C, float eps) {
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * C;
        double ss = 0.0;
        for (int c = 0; c < C; c++) ss += (double)xr[c] * xr[c];
        double inv = 1.0 / sqrt(ss / C + eps);
        for (int c = 0; c < C; c++) out[(size_t)t * C + c] = (float)(xr[c] * inv) * w[c];
    }
}

void ref_rope(float *x, const int32_t *pos, const float *cos, const float *sin, int T, int H,
              int D, int stride) {
    int half = D / 2;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            float *v = x + (size_t)t * stride + (size_t)h * D;
            const float *c = cos + (size_t)pos[t] * half;
            const float *s = sin + (size_t)pos[t] * half;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        }
}

void ref_attention(float *out, const float *q, const float *k, const float *v, int T, int pos0,
                   int Hq, int Hkv, int D, float scale) {
    int group = Hq / Hkv;
    int S = pos0 + T;
    double *p = malloc(sizeof(double) * (size_t)S);
    DSM_ASSERT(p != NULL);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < Hq; h++) {
            const float *qv = q + ((size_t)t * Hq + h) * D;
            int kh = h / group;
            int last = pos0 + t;
            double mx = -INFINITY;
            for (int s = 0; s <= last; s++) {
                const float *kv = k + ((size_t)s * Hkv + kh) * D;
                double d = 0.0;
                for (int i = 0; i < D; i++) d += (double)qv[i] * kv[i];
                p[s] = d * scale;
                if (p[s] > mx) mx = p[s];
            }
            double sum = 0.0;
            for (int s = 0; s <= last; s++) {
                p[s] = exp(p[s] - mx);
                sum += p[s];
            }
            float *o = out + ((size_t)t * Hq + h) * D;
            for (int i = 0; i < D; i++) {
                double acc = 0.0;
                for (int s = 0; s <= last; s++) acc += p[s] * v[((size_t)s * Hkv + kh) * D + i];
                o[i] = (float)(acc / sum);
            }
        }
    free(p);
}

/* Element i of f32 or f16 (dt) storage, and the store back. */
static float kv_get(const void *p, size_t i, enum dsm_dtype dt) {
    return dt == DSM_DT_F16 ? dsm_f16_to_f32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}
static void kv_put(void *p, size_t i, enum dsm_dtype dt, float x) {
    if (dt == DSM_DT_F16) ((uint16_t *)p)[i] = dsm_f32_to_f16(x);
    else ((float *)p)[i] = x;
}

void ref_attention_decode(float *out, const float *q, const void *k, const void *v, enum dsm_dtype kvdt,
                          const int32_t *slot, const int32_t *len, const int32_t *pslot,
                          const int32_t *plen, size_t slot_stride, int cap, int B, int Hq, int Hkv, int D,
                          float scale) {
    /* each sequence is a one-query causal attention at position len-1 over its keys, gathered
     * (widened to f32) into one contiguous (len, Hkv*D) copy: the shared prefix from pslot, the
     * rest from its own slot */
    size_t row = (size_t)Hkv * D;
    for (int b = 0; b < B; b++) {
        float *kc = malloc(sizeof(float) * row * (size_t)len[b]), *vc = malloc(sizeof(float) * row * (size_t)len[b]);
        if (!kc || !vc) abort();
        for (int s = 0; s < len[b]; s++)
            for (int h = 0; h < Hkv; h++) {
                size_t src = (size_t)(s < plen[b] ? pslot[b] : slot[b]) * slot_stride + ((size_t)h * cap + s) * D;
                for (int i = 0; i < D; i++) {
                    kc[(size_t)s * row + (size_t)h * D + i] = kv_get(k, src + i, kvdt);
                    vc[(size_t)s * row + (size_t)h * D + i] = kv_get(v, src + i, kvdt);
                }
            }
        ref_attention(out + (size_t)b * Hq * D, q + (size_t)b * Hq * D, kc, vc, 1, len[b] - 1, Hq, Hkv, D, scale);
        free(kc), free(vc);
    }
}

void ref_kv_scatter(void *pool, enum dsm_dtype kvdt, const float *src, const int32_t *slot, const int32_t *pos,
                    size_t slot_stride, int cap, int B, int Hkv, int D) {
    for (int b = 0; b < B; b++)
        for (int h = 0; h < Hkv; h++)
            for (int i = 0; i < D; i++)
                kv_put(pool, (size_t)slot[b] * slot_stride + ((size_t)h * cap + pos[b]) * D + i, kvdt,
                       src[((size_t)b * Hkv + h) * D + i]);
}

void ref_kv_store(void *dst, enum dsm_dtype dt, const float *src, int n, int cap, int Hkv, int D) {
    for (int t = 0; t < n; t++)
        for (int h = 0; h < Hkv; h++)
            for (int i = 0; i < D; i++)
                kv_put(dst, ((size_t)h * cap + t) * D + i, dt, src[((size_t)t * Hkv + h) * D + i]);
}

void ref_swiglu(float *out, const float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double g = gate[i];
        out[i] = (float)(g / (1.0 + exp(-g)) * up[i]);
    }
}

void ref_add(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

static void ref_softmax_row(float *out, const float *x, int C, int take_log) {
    double mx = -INFINITY;
    for (int c = 0; c < C; c++)
        if (x[c] > mx) mx = x[c];
    double sum = 0.0;
    for (int c = 0; c < C; c++) sum += exp((double)x[c] - mx);
    double lse = mx + log(sum);
    for (int c = 0; c < C; c++)
        out[c] = take_log ? (float)((double)x[c] - lse) : (float)exp((double)x[c] - lse);
}

void ref_softmax(float *out, const float *x, int R, int C) {
    for (int r = 0; r < R; r++) ref_softmax_row(out + (size_t)r * C, x + (size_t)r * C, C, 0);
}

void ref_log_softmax(float *out, const float *x, int R, int C) {
    for (int r = 0; r < R; r++) ref_softmax_row(out + (size_t)r * C, x + (size_t)r * C, C, 1);
}
