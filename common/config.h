/* config.h - Hugging Face config.json <-> struct dsm_model_config.
 *
 * Supported: "LlamaForCausalLM" and "Qwen2ForCausalLM" (also model_type "llama" / "qwen2").
 * Every key that changes the computation is either honoured or refused with an error naming the
 * key (rope_scaling types other than "linear", hidden_act other than silu, mlp_bias, sliding
 * windows in use, ...). Keys that do not change the forward pass are ignored.
 */
#ifndef DSM_CONFIG_H
#define DSM_CONFIG_H

#include "common/err.h"
#include "kernels/backend.h"

enum dsm_arch { DSM_ARCH_LLAMA = 0, DSM_ARCH_QWEN2 = 1 };
enum dsm_rope_scaling { DSM_ROPE_NONE = 0, DSM_ROPE_LINEAR = 1 };

#define DSM_MAX_EOS 8

struct dsm_model_config {
    enum dsm_arch arch;
    int vocab_size;
    int hidden_size;          /* C */
    int intermediate_size;    /* F */
    int n_layers;             /* L */
    int n_heads;              /* Hq */
    int n_kv_heads;           /* Hkv (= Hq for MHA) */
    int head_dim;             /* D (hidden_size / n_heads unless config says head_dim) */
    float rms_norm_eps;
    double rope_theta;
    enum dsm_rope_scaling rope_scaling;
    double rope_factor;       /* linear: positions are divided by it */
    int max_position_embeddings;
    int tie_word_embeddings;  /* lm_head shares embed_tokens */
    int qkv_bias;             /* q/k/v projections have biases (Qwen2 always; LLaMA attention_bias) */
    int o_bias;               /* o_proj has a bias (LLaMA attention_bias) */
    int bos_token_id;         /* -1 when absent */
    int eos_token_ids[DSM_MAX_EOS];
    int n_eos;
    enum dsm_dtype torch_dtype; /* dtype the weights are stored in (informational) */
};

/* Parse config.json text. `where` names the file in messages. Fills cfg; on error cfg is
 * unspecified. Errors: DSM_EINVAL (malformed JSON, missing or bad key, inconsistent sizes),
 * DSM_EUNSUPPORTED (architecture or feature we do not implement; the message names the key). */
int dsm_config_parse(const char *json_text, const char *where, struct dsm_model_config *cfg,
                     struct dsm_err *err);

/* Read and parse <dir>/config.json. */
int dsm_config_load(const char *dir, struct dsm_model_config *cfg, struct dsm_err *err);

/* Write cfg as a Hugging Face config.json (atomically) at path. */
int dsm_config_write(const struct dsm_model_config *cfg, const char *path, struct dsm_err *err);

/* Total number of parameters cfg implies. */
long long dsm_config_n_params(const struct dsm_model_config *cfg);

/* "llama" or "qwen2". */
const char *dsm_arch_name(enum dsm_arch arch);

#endif
