/* train_ckpt.h - training checkpoints in Hugging Face layout, written atomically.
 *
 * A checkpoint directory holds:
 *   config.json, tokenizer and generation files   copied from the model directory trained
 *   model.safetensors                             every parameter, float32, HF names (a tied
 *                                                 model has no lm_head.weight, as save_pretrained)
 *     or, with LoRA, adapter_config.json + adapter_model.safetensors (PEFT layout, lora.h)
 *   optimizer.safetensors                         AdamW moments "exp_avg.<name>", "exp_avg_sq.<name>"
 *                                                 of every trained tensor (absent for SGD)
 *   trainer_state.json                            step, data position, seed and run settings
 * So the directory loads anywhere a Hugging Face model does, and a run resumes from it.
 *
 * Atomicity: dsm_ckpt_save writes everything into a hidden temporary sibling directory, fsyncs
 * each file, renames the directory into place and fsyncs the parent. A crash (even kill -9) at any
 * point leaves either the old checkpoint or the new one complete, never a mix; a leftover
 * temporary directory is ignored; the leftovers of dead processes are removed by the next save or
 * `--resume auto`.
 */
#ifndef DSM_TRAIN_CKPT_H
#define DSM_TRAIN_CKPT_H

#include "common/err.h"

struct dsm_backend;
struct dsm_train;
struct dsm_optim;

struct dsm_ckpt_state {
    long step;          /* optimizer steps done */
    long epoch;         /* data epoch of the next batch */
    long cursor;        /* index in that epoch's order of the next example */
    unsigned long long seed;
    long tokens;        /* tokens trained on so far */
    double elapsed_s;   /* training seconds so far */
};

/* Write a checkpoint of t's model (and o's moments when o is not NULL) to dir, replacing an
 * existing one atomically. src_dir is the model directory whose config, tokenizer and generation
 * files are copied. state is stored in trainer_state.json. Errors: DSM_EIO naming the file. */
int dsm_ckpt_save(const char *dir, const char *src_dir, struct dsm_train *t, struct dsm_optim *o,
                  const struct dsm_ckpt_state *state, struct dsm_err *err);

/* Write t's model weights (model.safetensors) and the copied config/tokenizer files of src_dir
 * into the existing or new directory dir, each file atomically (no optimizer, no state): the
 * final model of a run. Errors: DSM_EIO naming the file. */
int dsm_ckpt_write_model(const char *dir, const char *src_dir, struct dsm_train *t, struct dsm_err *err);

/* Write model m's weights (model.safetensors, float32) and the config/tokenizer/generation files
 * of src_dir into dir (created; each file atomic): a plain HF model directory, e.g. after
 * dsm_lora_merge. */
struct dsm_model;
int dsm_ckpt_write_weights(const char *dir, const char *src_dir, struct dsm_model *m, struct dsm_err *err);

/* Restore o's moments from dir/optimizer.safetensors (o may be NULL or SGD: nothing to do) onto
 * be and read dir/trainer_state.json into *state. The weights come from loading dir as the model
 * (or its adapter with dsm_lora_load). Errors name
 * the file and tensor: missing file, wrong shape, malformed state. */
int dsm_ckpt_load_state(const char *dir, struct dsm_backend *be, struct dsm_optim *o,
                        struct dsm_ckpt_state *state, struct dsm_err *err);

/* Path of the checkpoint-N directory with the largest N under out_dir into buf; DSM_ENOTFOUND
 * when there is none. */
int dsm_ckpt_latest(const char *out_dir, char *buf, size_t cap, struct dsm_err *err);

#endif
