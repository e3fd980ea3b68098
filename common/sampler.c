/* sampler.c - next-token choice; see sampler.h.
 *
 * Every pass over the vocabulary is a loop the compiler vectorises (the exponential is a
 * polynomial here, not a libm call), built once per instruction set and chosen at load time
 * (target_clones). Truncation (top-k, top-p) sorts only the tokens above a probability threshold,
 * lowered until the kept set provably lies inside them, instead of the whole vocabulary.
 */
#include "common/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SAMPLER_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SAMPLER_CLONES
#endif

void dsm_rng_seed(struct dsm_rng *r, uint64_t seed) { r->s = seed ^ 0x5DEECE66Dull; }

double dsm_rng_uniform(struct dsm_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* e^x for x <= 0 in float, 0 below -87 (where float runs out of normal numbers): x = n ln2 + r,
 * e^r by a degree-6 polynomial (Cephes' single-precision coefficients), 2^n built in the exponent
 * bits. Within 2 ulp of expf there; branch-free so that loops over it vectorise. */
static inline float exp_le0(float x) {
    float xc = x < -87.0f ? -87.0f : x;
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float q = 1.9875691500e-4f;
    q = q * r + 1.3981999507e-3f;
    q = q * r + 8.3334519073e-3f;
    q = q * r + 4.1665795894e-2f;
    q = q * r + 1.6666665459e-1f;
    q = q * r + 5.0000001201e-1f;
    q = q * r * r + r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float two_n;
    memcpy(&two_n, &bits, sizeof two_n);
    float y = q * two_n; /* computed whatever x is, so the select below is a blend, not a branch */
    return x < -87.0f ? 0.0f : y;
}

SAMPLER_CLONES static float max_of(const float *x, int n) {
    float m = x[0];
#pragma omp simd reduction(max : m)
    for (int i = 1; i < n; i++) m = m < x[i] ? x[i] : m;
    return m;
}

/* p[i] = e^((x[i] - mx) * inv_t); returns the sum, in float within blocks of 1024 (a float sum
 * vectorises, a double one does not) and in double across them. */
SAMPLER_CLONES static double exp_fill(float *p, const float *x, int n, float mx, float inv_t) {
    double sum = 0.0;
    for (int b = 0; b < n; b += 1024) {
        int e = n - b < 1024 ? n : b + 1024;
        float part = 0.0f;
#pragma omp simd reduction(+ : part)
        for (int i = b; i < e; i++) {
            float y = exp_le0((x[i] - mx) * inv_t);
            p[i] = y;
            part += y;
        }
        sum += part;
    }
    return sum;
}

/* Sum of p[0..n), as exp_fill sums. */
SAMPLER_CLONES static double sum_of(const float *p, int n) {
    double sum = 0.0;
    for (int b = 0; b < n; b += 1024) {
        int e = n - b < 1024 ? n : b + 1024;
        float part = 0.0f;
#pragma omp simd reduction(+ : part)
        for (int i = b; i < e; i++) part += p[i];
        sum += part;
    }
    return sum;
}

static int by_prob_desc(const void *a, const void *b, void *ctx) {
    const float *p = ctx;
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (p[i] != p[j]) return p[i] > p[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

int dsm_sample_keep(const float *p, int V, double tsum, int top_k, float top_p, int32_t *idx) {
    int want_k = top_k > 0 && top_k < V, want_p = top_p > 0.0f && top_p < 1.0f;
    if (!want_k && !want_p) {
        for (int i = 0; i < V; i++) idx[i] = i;
        return V;
    }
    float pmax = max_of(p, V);
    /* Candidates: tokens with p >= t. Every other token is smaller than every candidate, so the
     * sorted candidates are the head of the sorted vocabulary; the kept set lies inside them once
     * they number top_k, or once their running mass reaches top_p. Else lower t and redo. */
    for (float t = pmax * (1.0f / 1024.0f);; t = t > 1e-30f ? t * (1.0f / 64.0f) : 0.0f) {
        int c = 0;
        for (int i = 0; i < V; i++)
            if (p[i] >= t) idx[c++] = i;
        qsort_r(idx, (size_t)c, sizeof *idx, by_prob_desc, (void *)p);
        int n = want_k ? top_k : V, done = c == V || t == 0.0f || (want_k && c >= top_k);
        if (n > c) n = c;
        if (want_p) {
            double acc = 0.0;
            for (int i = 0; i < n; i++) {
                acc += p[idx[i]] / tsum;
                if (acc >= top_p) return i + 1;
            }
        }
        if (done) return n > 0 ? n : (idx[0] = 0, 1);
    }
}

/* Inverse CDF over p[0..n) in blocks: the block holding u by block sums, then the token inside
 * it; a u that rounding carries past a block's last token takes the block's last nonzero one. */
#define PICK_BLOCK 256
static int32_t pick_dense(const float *p, int n, double u) {
    double acc = 0.0;
    int b0 = 0;
    for (; b0 < n; b0 += PICK_BLOCK) {
        int bn = n - b0 < PICK_BLOCK ? n - b0 : PICK_BLOCK;
        double bs = sum_of(p + b0, bn);
        if (u < acc + bs || b0 + bn >= n) break;
        acc += bs;
    }
    int end = b0 + PICK_BLOCK < n ? b0 + PICK_BLOCK : n, last = -1;
    for (int i = b0; i < end; i++) {
        if (p[i] > 0.0f) last = i;
        acc += p[i];
        if (u < acc && p[i] > 0.0f) return i;
    }
    if (last >= 0) return last;
    for (int i = n - 1; i >= 0; i--) /* u past every token (p summed to 0 in a block): any nonzero */
        if (p[i] > 0.0f) return i;
    return 0;
}

int32_t dsm_sample(const float *logits, int V, const struct dsm_sampling *s, struct dsm_rng *rng,
                   float *p, int32_t *idx, float *logprob) {
    float mx = max_of(logits, V);
    int32_t best = 0; /* the first maximum: ties go to the lowest id */
    while (best < V - 1 && !(logits[best] == mx)) best++;
    double sum = exp_fill(p, logits, V, mx, 1.0f);
    double lse = (double)mx + log(sum);
    int32_t pick = best;
    if (s->temperature > 0.0f) {
        double tsum = s->temperature == 1.0f ? sum : exp_fill(p, logits, V, mx, 1.0f / s->temperature);
        int trunc = (s->top_k > 0 && s->top_k < V) || (s->top_p > 0.0f && s->top_p < 1.0f);
        if (!(tsum > 0.0 && tsum < INFINITY)) {
            /* NaN or infinite logits: no distribution to draw from; the argmax stands */
        } else if (!trunc) {
            pick = pick_dense(p, V, dsm_rng_uniform(rng) * tsum);
        } else {
            int n = dsm_sample_keep(p, V, tsum, s->top_k, s->top_p, idx);
            double kept = 0.0;
            for (int i = 0; i < n; i++) kept += p[idx[i]];
            double u = dsm_rng_uniform(rng) * kept, acc = 0.0;
            pick = idx[n - 1];
            for (int i = 0; i < n; i++) {
                acc += p[idx[i]];
                if (u < acc) {
                    pick = idx[i];
                    break;
                }
            }
        }
    }
    if (logprob) *logprob = (float)((double)logits[pick] - lse);
    return pick;
}
