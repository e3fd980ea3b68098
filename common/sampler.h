/* sampler.h - choosing the next token from logits: greedy, temperature, top-k, top-p.
 *
 * A sample's randomness comes only from its own RNG state (seeded per sample), so its tokens
 * depend on (logits, settings, seed) and never on what else runs beside it.
 */
#ifndef DSM_SAMPLER_H
#define DSM_SAMPLER_H

#include <stdint.h>

struct dsm_sampling {
    float temperature; /* 0 = greedy (argmax; ties to the lowest id) */
    int top_k;         /* 0 = off */
    float top_p;       /* 1 = off; keep the smallest prefix of the sorted distribution with mass >= top_p */
};

/* splitmix64 state for one sample. */
struct dsm_rng {
    uint64_t s;
};
void dsm_rng_seed(struct dsm_rng *r, uint64_t seed);
/* Uniform double in [0, 1). */
double dsm_rng_uniform(struct dsm_rng *r);

/* Pick a token from logits (V), using scratch (2*V floats' worth: caller provides V floats and V
 * ints). Returns the id; *logprob (may be NULL) receives log softmax(logits)[id] — the model's
 * distribution before temperature and truncation. */
int32_t dsm_sample(const float *logits, int V, const struct dsm_sampling *s, struct dsm_rng *rng,
                   float *scratch_p, int32_t *scratch_idx, float *logprob);

/* The tokens top-k / top-p keep from unnormalised probabilities p (V) summing to tsum: their ids
 * in idx, most probable first (ties: lower id first); returns how many (>= 1). Both off: all V
 * in id order. */
int dsm_sample_keep(const float *p, int V, double tsum, int top_k, float top_p, int32_t *idx);

#endif
