/* sampler.c - next-token choice; see sampler.h. */
#include "common/sampler.h"

#include <math.h>
#include <stdlib.h>

void dsm_rng_seed(struct dsm_rng *r, uint64_t seed) { r->s = seed ^ 0x5DEECE66Dull; }

double dsm_rng_uniform(struct dsm_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static const float *g_sort_p; /* qsort has no context argument; set only inside dsm_sample's sort */

static int by_prob_desc(const void *a, const void *b) {
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    float pi = g_sort_p[i], pj = g_sort_p[j];
    if (pi != pj) return pi > pj ? -1 : 1;
    return i < j ? -1 : i > j;
}

int32_t dsm_sample(const float *logits, int V, const struct dsm_sampling *s, struct dsm_rng *rng,
                   float *p, int32_t *idx, float *logprob) {
    int32_t best = 0;
    double mx = logits[0];
    for (int i = 1; i < V; i++)
        if (logits[i] > mx) mx = logits[i], best = i;
    double sum = 0.0;
    for (int i = 0; i < V; i++) sum += exp(logits[i] - mx);
    double lse = mx + log(sum);
    int32_t pick = best;
    if (s->temperature > 0.0f) {
        double tsum = 0.0;
        for (int i = 0; i < V; i++) {
            p[i] = (float)exp((logits[i] - mx) / s->temperature);
            tsum += p[i];
            idx[i] = i;
        }
        int n = V;
        if ((s->top_k > 0 && s->top_k < V) || (s->top_p > 0.0f && s->top_p < 1.0f)) {
            g_sort_p = p;
            qsort(idx, (size_t)V, sizeof *idx, by_prob_desc);
            g_sort_p = NULL;
            if (s->top_k > 0 && s->top_k < n) n = s->top_k;
            if (s->top_p > 0.0f && s->top_p < 1.0f) {
                double acc = 0.0;
                int keep = n;
                for (int i = 0; i < n; i++) {
                    acc += p[idx[i]] / tsum;
                    if (acc >= s->top_p) {
                        keep = i + 1;
                        break;
                    }
                }
                n = keep;
            }
        }
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
    if (logprob) *logprob = (float)(logits[pick] - lse);
    return pick;
}
