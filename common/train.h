/* train.h - gradients of the decoder: a training forward that keeps activations, the backward
 * pass, masked cross-entropy and per-token log-probabilities.
 *
 * Dimension legend as in model.h; B sequences of T tokens each are one batch of N = B*T rows.
 *
 * Conventions (Hugging Face causal-LM): labels are aligned with input_ids, and the loss at row t of
 * a sequence predicts labels[t+1] from logits[t] (the shift happens here); a label < 0 (HF uses
 * -100) is ignored, and so is the last row of every sequence. Sequences in a batch are independent
 * (each attends only to itself), so shorter sequences are padded at the end with any id and label
 * -100.
 *
 * Gradients are float32 in one backend slab laid out by the parameter table (common/params.h);
 * a tied lm_head has no gradient of its own: both uses add into the embedding's. Calls accumulate
 * into the gradients until dsm_train_zero_grad (gradient accumulation). The model's weights must be
 * float32 (they are the master weights the optimizer updates in place).
 *
 * Activation recomputation (opts.recompute): only each layer's input is kept; the backward pass
 * re-runs a layer's forward just before its backward. Memory per token drops from about
 * (5C + 2Q + 2KV + 3F) floats per layer to C, for one extra forward pass of the layers.
 *
 * Not thread-safe: one call at a time per struct dsm_train (and per model).
 */
#ifndef DSM_TRAIN_H
#define DSM_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/model.h"
#include "common/params.h"

struct dsm_train;
struct dsm_lora;
struct dsm_optim_tensor;

struct dsm_train_opts {
    int max_rows;  /* largest B*T per call (activations are sized for it) */
    int max_seq;   /* largest T (<= the model's rope table, opts.max_seq at load) */
    int recompute; /* 1: keep only layer inputs and recompute in backward */
    struct dsm_lora *lora; /* NULL: full fine-tuning. Else (borrowed, for the same model) the base
                            * weights are frozen (no gradients kept for them) and only the
                            * adapter's A and B get gradients; the forward includes the adapter. */
};

/* Gradient buffers and training activations for m (borrowed: must outlive the result).
 * Errors: DSM_EINVAL when m's weights are not float32 or sizes are out of range, DSM_EUNSUPPORTED
 * when the backend has no training ops, DSM_ENOMEM. Caller destroys *out. */
int dsm_train_create(struct dsm_model *m, const struct dsm_train_opts *opts, struct dsm_train **out,
                     struct dsm_err *err);

/* Free; NULL is a no-op. */
void dsm_train_destroy(struct dsm_train *t);

/* Set every gradient to zero. */
void dsm_train_zero_grad(struct dsm_train *t);

/* Forward (and, when backward, backward) of a batch ids (B, T) with labels (B, T) (host arrays).
 * The loss whose gradient is added to the gradients is grad_scale * Σ (−log p(target)) over the
 * unmasked targets; *nll_sum receives that sum unscaled and *n_valid the count (either may be
 * NULL). Mean loss over a batch = grad_scale 1/n_valid. Errors: an id or label out of range (names
 * sequence and position), sizes beyond the opts, a backend failure. */
int dsm_train_batch(struct dsm_train *t, const int32_t *ids, const int32_t *labels, int B, int T,
                    float grad_scale, int backward, double *nll_sum, int *n_valid,
                    struct dsm_err *err);

/* d loss / d logp for rows[0..n) of the current batch (row r = b*T + i predicts the label at
 * position i+1 of sequence b), given their live log-probabilities logp[0..n): write g[0..n).
 * Called once per chunk of rows, in row order; g of a row without a label is ignored. */
typedef void (*dsm_train_row_grad_fn)(void *ctx, const int *rows, const float *logp, int n, float *g);

/* Forward and backward of any loss that is a function of the per-token log-probabilities of the
 * labels (policy gradients: GRPO): the gradient added is Σ_r g_r · d logp_r / d params, with g_r
 * from fn (evaluated on the same forward). Labels as in dsm_train_batch (< 0 = no loss). */
int dsm_train_batch_rowgrad(struct dsm_train *t, const int32_t *ids, const int32_t *labels, int B, int T,
                            dsm_train_row_grad_fn fn, void *ctx, struct dsm_err *err);

/* Per-token log-probabilities of given tokens: logp (B, T-1) host, logp[b][t] =
 * log p(ids[b][t+1] | ids[b][0..t]). Gradients are untouched. */
int dsm_train_token_logp(struct dsm_train *t, const int32_t *ids, int B, int T, float *logp,
                         struct dsm_err *err);

/* Device pointer of the gradient of parameter p in layer (ignored for globals), float32 with
 * dsm_param_numel elements; NULL when p is absent or frozen (LoRA); a tied lm_head gives the
 * embedding's. */
float *dsm_train_grad(struct dsm_train *t, enum dsm_param p, int layer);

/* Every trainable gradient in one contiguous device array of *n_floats floats (alignment gaps
 * included, zeroed with the rest): what data parallelism all-reduces in one call. */
float *dsm_train_grad_slab(struct dsm_train *t, size_t *n_floats);

/* The sizes the trainer was created with. */
void dsm_train_sizes(const struct dsm_train *t, int *max_rows, int *max_seq);

/* The trainable tensors with their gradients, for the optimizer and checkpoints: every present
 * model parameter (HF names; decay on weight matrices), or with LoRA every A and B (PEFT names,
 * decay on). *out is a new array of *n entries the caller frees. */
int dsm_train_params(struct dsm_train *t, struct dsm_optim_tensor **out, int *n, struct dsm_err *err);

/* Seed of the LoRA dropout masks of the following batches (masks also depend on layer and
 * module). Callers set it per micro-batch from the run's seed and position, so that a resumed run
 * draws the same masks. Dropout is active only in batches with backward. */
void dsm_train_set_seed(struct dsm_train *t, uint64_t seed);

/* The adapter trained, or NULL for full fine-tuning. */
struct dsm_lora *dsm_train_lora(struct dsm_train *t);

/* on = 0: following forwards leave the adapter out, so they compute the frozen base model (the
 * reference policy of GRPO with LoRA: no second copy of the weights); on = 1 (the default): the
 * adapter is in. Only for dsm_train_token_logp: a batch with backward needs the adapter on. */
void dsm_train_lora_enable(struct dsm_train *t, int on);

/* The model trained. */
struct dsm_model *dsm_train_model(struct dsm_train *t);

/* Bytes of backend memory held for activations and for gradients. */
void dsm_train_memory(const struct dsm_train *t, size_t *activations, size_t *gradients);

#endif
