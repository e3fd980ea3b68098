/* lora.h - LoRA adapters (Hu et al. 2021) on the decoder's projection matrices, in PEFT's layout.
 *
 * For a targeted linear y = x Wᵀ (W (N, K) frozen) the adapter adds s · (dropout(x) Aᵀ) Bᵀ with
 * A (r, K), B (N, r), s = alpha / r. Targets are module names from the parameter table
 * (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj), in every layer. A starts
 * uniform in ±1/sqrt(K) (PEFT's kaiming_uniform(a=sqrt(5)) default), B at zero, so training
 * starts from the base model exactly.
 *
 * Files (PEFT, so `PeftModel.from_pretrained` reads them):
 *   adapter_config.json        {"peft_type": "LORA", "r", "lora_alpha", "lora_dropout",
 *                               "target_modules", "task_type": "CAUSAL_LM", "bias": "none", ...}
 *   adapter_model.safetensors  "base_model.model.model.layers.<l>.<module path>.lora_A.weight"
 *                              (r, K) and "...lora_B.weight" (N, r), float32
 * Adapter tensors live in the model's backend memory, float32.
 */
#ifndef DSM_LORA_H
#define DSM_LORA_H

#include <stdint.h>

#include "common/err.h"
#include "common/params.h"

struct dsm_model;

struct dsm_lora_cfg {
    int r;
    double alpha;
    double dropout;        /* probability in [0, 1) */
    unsigned targets;      /* bit p set: parameter p (a matrix with a module name) is adapted */
};

/* Parse "r=16,alpha=32,dropout=0.05,targets=q_proj+k_proj+v_proj" (targets separated by '+' or
 * ':'; "all" = the seven projections; defaults r=16, alpha=2r, dropout 0, all). Errors name the
 * bad key or module. */
int dsm_lora_parse(const char *spec, struct dsm_lora_cfg *cfg, struct dsm_err *err);

/* "q_proj+k_proj..." for cfg's targets into buf. */
void dsm_lora_targets_str(unsigned targets, char *buf, size_t cap);

struct dsm_lora;

/* A fresh adapter for m (borrowed; must outlive it): A random from seed, B zero. */
int dsm_lora_create(struct dsm_model *m, const struct dsm_lora_cfg *cfg, uint64_t seed,
                    struct dsm_lora **out, struct dsm_err *err);

/* Load an adapter directory for m. Errors (naming file and tensor): missing files, not a LORA
 * adapter, a target module we do not know, a tensor missing or shaped for another model (e.g.
 * "adapter tensor ... has shape [8, 64] but the model needs [8, 32]: adapter for another model?"). */
int dsm_lora_load(struct dsm_model *m, const char *dir, struct dsm_lora **out, struct dsm_err *err);

/* Write adapter_config.json and adapter_model.safetensors into dir (created), each atomically.
 * base names the base model in the config. */
int dsm_lora_save(const struct dsm_lora *lo, const char *dir, const char *base, struct dsm_err *err);

/* W += s · B A for every adapted matrix of the adapter's model (float32 weights): the merged
 * model computes what base + adapter computed. */
int dsm_lora_merge(struct dsm_lora *lo, struct dsm_err *err);

void dsm_lora_destroy(struct dsm_lora *lo);

const struct dsm_lora_cfg *dsm_lora_config(const struct dsm_lora *lo);
/* Change the dropout probability (e.g. to train a loaded adapter with dropout). */
void dsm_lora_set_dropout(struct dsm_lora *lo, double p);
float dsm_lora_scale(const struct dsm_lora *lo);

/* Device pointers of A (r, K) and B (N, r) of parameter p in layer; NULL when p is not adapted. */
float *dsm_lora_a(const struct dsm_lora *lo, enum dsm_param p, int layer);
float *dsm_lora_b(const struct dsm_lora *lo, enum dsm_param p, int layer);

/* PEFT tensor name of A (which 0) or B (which 1) of p in layer into buf. */
void dsm_lora_name(enum dsm_param p, int layer, int which, char *buf, size_t cap);

#endif
