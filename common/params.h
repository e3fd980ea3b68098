/* params.h - the one parameter table of the decoder.
 *
 * Every weight of a LLaMA/Qwen2 decoder is one row of dsm_param_table: its Hugging Face name,
 * whether it repeats per layer, its shape in symbolic dimensions, when it is present, and its
 * LoRA module name. Allocation, loading, saving, random initialisation and LoRA targeting all walk
 * this table; there is no other list of parameters.
 */
#ifndef DSM_PARAMS_H
#define DSM_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

enum dsm_param {
    /* global */
    DSM_P_EMBED,     /* model.embed_tokens.weight (V, C) */
    DSM_P_NORM,      /* model.norm.weight (C) */
    DSM_P_LM_HEAD,   /* lm_head.weight (V, C), absent when tied */
    /* per layer */
    DSM_P_ATTN_NORM, /* input_layernorm (C) */
    DSM_P_Q, DSM_P_Q_BIAS, DSM_P_K, DSM_P_K_BIAS, DSM_P_V, DSM_P_V_BIAS, DSM_P_O, DSM_P_O_BIAS,
    DSM_P_MLP_NORM,  /* post_attention_layernorm (C) */
    DSM_P_GATE, DSM_P_UP, DSM_P_DOWN,
    DSM_P_COUNT
};

#define DSM_P_FIRST_LAYER DSM_P_ATTN_NORM

/* Symbolic dimensions resolved against a config. */
enum dsm_dim { DSM_DIM_NONE, DSM_DIM_V, DSM_DIM_C, DSM_DIM_F, DSM_DIM_Q, DSM_DIM_KV };

/* When a parameter exists. */
enum dsm_presence { DSM_ALWAYS, DSM_IF_QKV_BIAS, DSM_IF_O_BIAS, DSM_IF_UNTIED };

/* What a random initialisation draws. */
enum dsm_init { DSM_INIT_NORMAL, DSM_INIT_ONES, DSM_INIT_ZEROS };

struct dsm_param_spec {
    const char *hf_name;        /* printf pattern with one %d for the layer when per_layer */
    int per_layer;
    enum dsm_dim rows, cols;    /* rows = DSM_DIM_NONE for vectors */
    enum dsm_presence presence;
    enum dsm_init init;
    const char *module;         /* LoRA target name ("q_proj", ...) or NULL */
};

extern const struct dsm_param_spec dsm_param_table[DSM_P_COUNT];

/* 1 when parameter p exists for cfg. */
int dsm_param_present(const struct dsm_model_config *cfg, enum dsm_param p);

/* Shape of p under cfg: *ndim (1 or 2) and shape[0..ndim). */
void dsm_param_shape(const struct dsm_model_config *cfg, enum dsm_param p, int *ndim, int64_t shape[2]);

/* Number of elements of p under cfg. */
size_t dsm_param_numel(const struct dsm_model_config *cfg, enum dsm_param p);

/* 1 for weight matrices (kept in the model's weight dtype); 0 for norms and biases (float32). */
int dsm_param_is_matrix(enum dsm_param p);

/* The Hugging Face tensor name of p in layer (ignored for globals) into buf. */
void dsm_param_name(enum dsm_param p, int layer, char *buf, size_t cap);

#endif
