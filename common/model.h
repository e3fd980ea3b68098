/* model.h - the decoder-only transformer (LLaMA / Qwen2 family) on a compute backend.
 *
 * Dimension legend: V vocab, C hidden size, F intermediate size, L layers, Hq query heads,
 * Hkv key/value heads, D head dim, T tokens in a forward call, S KV-cache capacity.
 *
 * A model is loaded from a Hugging Face directory (config.json + safetensors, single or sharded)
 * onto a backend; weights live in backend memory. A KV cache (struct dsm_kv) holds one sequence's
 * keys and values; forward calls append tokens to it. Not thread-safe: one forward at a time per
 * model (activations live in the model's scratch).
 */
#ifndef DSM_MODEL_H
#define DSM_MODEL_H

#include <stdint.h>

#include "common/config.h"
#include "common/err.h"
#include "kernels/backend.h"

struct dsm_model;
struct dsm_kv;

struct dsm_model_opts {
    int max_tokens;       /* largest T per forward step (prefill chunk); 0 = 512 */
    int max_seq;          /* largest KV capacity (rope table size); 0 = 4096; capped at
                           * max_position_embeddings */
    enum dsm_dtype wdtype; /* dtype weights are kept in on the backend; DSM_DT_F32 default */
};

/* Load the model in dir onto be (borrowed: must outlive the model). opts may be NULL.
 * Errors name the file, tensor or key: missing/truncated files, bad headers, dtype or shape
 * mismatch with the config, unsupported architecture or config keys. Caller destroys *out. */
int dsm_model_load(const char *dir, struct dsm_backend *be, const struct dsm_model_opts *opts,
                   struct dsm_model **out, struct dsm_err *err);

/* Free the model and its backend memory; NULL is a no-op. */
void dsm_model_destroy(struct dsm_model *m);

/* The model's configuration (borrowed, lives as long as m). */
const struct dsm_model_config *dsm_model_config(const struct dsm_model *m);

/* A KV cache for one sequence of up to capacity tokens (capacity <= max_position_embeddings). */
int dsm_kv_create(struct dsm_model *m, int capacity, struct dsm_kv **out, struct dsm_err *err);
void dsm_kv_destroy(struct dsm_kv *kv);
/* Forget all tokens (length 0). */
void dsm_kv_reset(struct dsm_kv *kv);
/* Tokens currently in the cache. */
int dsm_kv_len(const struct dsm_kv *kv);

/* Append ids (n tokens, any n >= 1; processed in chunks of opts.max_tokens) to kv and compute
 * logits. logits (host memory): when all_positions, (n, V) for every new token; otherwise (V) for
 * the last one. Errors: token id out of range (names the index and id), cache full. On error kv is
 * unchanged. */
int dsm_model_forward(struct dsm_model *m, struct dsm_kv *kv, const int32_t *ids, int n,
                      float *logits, int all_positions, struct dsm_err *err);

/* Convenience: logits (n, V) of a fresh sequence ids (n), using a temporary KV cache. */
int dsm_model_logits(struct dsm_model *m, const int32_t *ids, int n, float *logits,
                     struct dsm_err *err);

#endif
