/* engine.h - batched generation: many sequences decoded together, continuous batching, one
 * prefill per prompt shared by its samples, seeded sampling, stop strings, per-token log-probs.
 *
 * Guarantees:
 *  - Sample i of a request uses the seed `settings.seed + i`. Its tokens depend only on (model,
 *    prompt, settings, that seed): never on the other sequences in the batch (the CPU linear
 *    kernel is batch-invariant up to 64 rows, attention is per sequence, and a prompt's KV is
 *    computed by the same prefill whether it is shared or recomputed).
 *  - logprobs[t] is log softmax(model logits)[token t]: the model's distribution before
 *    temperature, top-k and top-p (what GRPO's ratio needs).
 *  - finish_reason "stop" when an EOS token was sampled (kept in ids and logprobs, not in text) or
 *    a stop string appeared in the text (text cut before it; ids keep the token that completed
 *    it); "length" when max_tokens were generated.
 *
 * Memory: a pool of KV slots, each one sequence of up to cap = max(prompt + max_tokens) tokens:
 *   slot bytes = 2 (K and V) * layers * cap * kv_heads * head_dim * (4 for f32, 2 for f16)
 *   live sequences = min(max_batch, floor(kv_budget_bytes / slot bytes))  (at least 1, or an error)
 * Samples wait for a free slot; they never fail for lack of one. The engine also holds (f32) the
 * KV of the longest prompt while it is prefilled: 2 * layers * prompt * kv_heads * head_dim * 4
 * bytes more. With an f16 pool (kv_dtype), decode attends over f16-rounded keys and values (relative
 * error <= 2^-11 per element); the prefill and the first token's logits stay f32.
 */
#ifndef DSM_ENGINE_H
#define DSM_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/model.h"

struct dsm_tokenizer;
struct dsm_engine;

struct dsm_gen_settings {
    float temperature;        /* 0 = greedy */
    int top_k;                /* 0 = off */
    float top_p;              /* in (0, 1]; 1 = off */
    int max_tokens;           /* new tokens at most, >= 1 */
    uint64_t seed;            /* sample i uses seed + i */
    const char *const *stop;  /* stop strings (borrowed), n_stop of them; need a tokenizer */
    int n_stop;
    int ignore_eos;           /* 1: EOS is an ordinary token */
};

struct dsm_gen_request {
    const int32_t *prompt;    /* borrowed until dsm_engine_run returns */
    int n_prompt;             /* >= 1 */
    int n;                    /* samples, >= 1 */
    struct dsm_gen_settings s;
};

struct dsm_completion {
    int request, sample;      /* indices into the run's requests, and 0..n-1 */
    uint64_t seed;            /* the sample's seed */
    const int32_t *ids;       /* generated ids (borrowed for the callback) */
    const float *logprobs;    /* one per id */
    int n_ids;
    const char *text;         /* decoded text (NUL-terminated), NULL without a tokenizer */
    size_t text_len;
    const char *finish_reason; /* "stop" or "length" */
};

/* Called once per finished completion, from the thread running dsm_engine_run, in finishing
 * order. Return 0 to go on; non-zero stops the run (dsm_engine_run then returns DSM_EINVAL with
 * "stopped by the caller"). */
typedef int (*dsm_completion_fn)(void *user, const struct dsm_completion *c);

struct dsm_engine_opts {
    int max_batch;            /* live sequences at most; 0 = 64 (also capped by the model's max_tokens) */
    size_t kv_budget_bytes;   /* 0 = 1 GiB */
    enum dsm_dtype kv_dtype;  /* the KV pool's: DSM_DT_F32 (the default, 0) or DSM_DT_F16 (half the
                               * bytes decode reads; each sample's rows rounded to f16) */
};

struct dsm_engine_stats {
    long prompt_tokens;       /* prefilled (a shared prefill counts once) */
    long prefills;            /* prompts prefilled */
    long kv_shared;           /* samples that read a sibling's prefilled prompt KV instead */
    long generated_tokens;
    long steps;               /* batched decode steps */
    int slots;                /* live-sequence capacity of the last run */
    int peak_live;
    size_t kv_bytes;          /* KV pool of the last run */
    double seconds;
};

/* "f32" or "f16" (a KV pool dtype) into *out; anything else is an error naming it. */
int dsm_kv_dtype_parse(const char *name, enum dsm_dtype *out, struct dsm_err *err);

/* Create an engine over m (borrowed) and tok (borrowed, may be NULL: then no text and no stop
 * strings). opts may be NULL. */
int dsm_engine_create(struct dsm_model *m, const struct dsm_tokenizer *tok,
                      const struct dsm_engine_opts *opts, struct dsm_engine **out,
                      struct dsm_err *err);
void dsm_engine_destroy(struct dsm_engine *e);

/* Generate every sample of every request; completions go to fn as they finish. Validates all
 * requests first (n, temperature, top_p, top_k, max_tokens, prompt length against the context,
 * stop strings without a tokenizer): on a bad request nothing runs and the error names it. */
int dsm_engine_run(struct dsm_engine *e, const struct dsm_gen_request *reqs, int nreq,
                   dsm_completion_fn fn, void *user, struct dsm_err *err);

/* Counters of the last run. */
const struct dsm_engine_stats *dsm_engine_stats(const struct dsm_engine *e);

#endif
