/* params.c - the parameter table; see params.h. */
#include "common/params.h"

#include <stdio.h>

const struct dsm_param_spec dsm_param_table[DSM_P_COUNT] = {
    [DSM_P_EMBED] = {"model.embed_tokens.weight", 0, DSM_DIM_V, DSM_DIM_C, DSM_ALWAYS, DSM_INIT_NORMAL, NULL},
    [DSM_P_NORM] = {"model.norm.weight", 0, DSM_DIM_NONE, DSM_DIM_C, DSM_ALWAYS, DSM_INIT_ONES, NULL},
    [DSM_P_LM_HEAD] = {"lm_head.weight", 0, DSM_DIM_V, DSM_DIM_C, DSM_IF_UNTIED, DSM_INIT_NORMAL, NULL},
    [DSM_P_ATTN_NORM] = {"model.layers.%d.input_layernorm.weight", 1, DSM_DIM_NONE, DSM_DIM_C, DSM_ALWAYS, DSM_INIT_ONES, NULL},
    [DSM_P_Q] = {"model.layers.%d.self_attn.q_proj.weight", 1, DSM_DIM_Q, DSM_DIM_C, DSM_ALWAYS, DSM_INIT_NORMAL, "q_proj"},
    [DSM_P_Q_BIAS] = {"model.layers.%d.self_attn.q_proj.bias", 1, DSM_DIM_NONE, DSM_DIM_Q, DSM_IF_QKV_BIAS, DSM_INIT_ZEROS, NULL},
    [DSM_P_K] = {"model.layers.%d.self_attn.k_proj.weight", 1, DSM_DIM_KV, DSM_DIM_C, DSM_ALWAYS, DSM_INIT_NORMAL, "k_proj"},
    [DSM_P_K_BIAS] = {"model.layers.%d.self_attn.k_proj.bias", 1, DSM_DIM_NONE, DSM_DIM_KV, DSM_IF_QKV_BIAS, DSM_INIT_ZEROS, NULL},
    [DSM_P_V] = {"model.layers.%d.self_attn.v_proj.weight", 1, DSM_DIM_KV, DSM_DIM_C, DSM_ALWAYS, DSM_INIT_NORMAL, "v_proj"},
    [DSM_P_V_BIAS] = {"model.layers.%d.self_attn.v_proj.bias", 1, DSM_DIM_NONE, DSM_DIM_KV, DSM_IF_QKV_BIAS, DSM_INIT_ZEROS, NULL},
    [DSM_P_O] = {"model.layers.%d.self_attn.o_proj.weight", 1, DSM_DIM_C, DSM_DIM_Q, DSM_ALWAYS, DSM_INIT_NORMAL, "o_proj"},
    [DSM_P_O_BIAS] = {"model.layers.%d.self_attn.o_proj.bias", 1, DSM_DIM_NONE, DSM_DIM_C, DSM_IF_O_BIAS, DSM_INIT_ZEROS, NULL},
    [DSM_P_MLP_NORM] = {"model.layers.%d.post_attention_layernorm.weight", 1, DSM_DIM_NONE, DSM_DIM_C, DSM_ALWAYS, DSM_INIT_ONES, NULL},
    [DSM_P_GATE] = {"model.layers.%d.mlp.gate_proj.weight", 1, DSM_DIM_F, DSM_DIM_C, DSM_ALWAYS, DSM_INIT_NORMAL, "gate_proj"},
    [DSM_P_UP] = {"model.layers.%d.mlp.up_proj.weight", 1, DSM_DIM_F, DSM_DIM_C, DSM_ALWAYS, DSM_INIT_NORMAL, "up_proj"},
    [DSM_P_DOWN] = {"model.layers.%d.mlp.down_proj.weight", 1, DSM_DIM_C, DSM_DIM_F, DSM_ALWAYS, DSM_INIT_NORMAL, "down_proj"},
};

static int64_t dim_value(const struct dsm_model_config *cfg, enum dsm_dim d) {
    switch (d) {
    case DSM_DIM_V: return cfg->vocab_size;
    case DSM_DIM_C: return cfg->hidden_size;
    case DSM_DIM_F: return cfg->intermediate_size;
    case DSM_DIM_Q: return (int64_t)cfg->n_heads * cfg->head_dim;
    case DSM_DIM_KV: return (int64_t)cfg->n_kv_heads * cfg->head_dim;
    case DSM_DIM_NONE: break;
    }
    return 1;
}

int dsm_param_present(const struct dsm_model_config *cfg, enum dsm_param p) {
    switch (dsm_param_table[p].presence) {
    case DSM_ALWAYS: return 1;
    case DSM_IF_QKV_BIAS: return cfg->qkv_bias;
    case DSM_IF_O_BIAS: return cfg->o_bias;
    case DSM_IF_UNTIED: return !cfg->tie_word_embeddings;
    }
    return 0;
}

void dsm_param_shape(const struct dsm_model_config *cfg, enum dsm_param p, int *ndim, int64_t shape[2]) {
    const struct dsm_param_spec *s = &dsm_param_table[p];
    if (s->rows == DSM_DIM_NONE) {
        *ndim = 1;
        shape[0] = dim_value(cfg, s->cols);
    } else {
        *ndim = 2;
        shape[0] = dim_value(cfg, s->rows);
        shape[1] = dim_value(cfg, s->cols);
    }
}

size_t dsm_param_numel(const struct dsm_model_config *cfg, enum dsm_param p) {
    int nd;
    int64_t sh[2];
    dsm_param_shape(cfg, p, &nd, sh);
    return nd == 1 ? (size_t)sh[0] : (size_t)sh[0] * (size_t)sh[1];
}

int dsm_param_is_matrix(enum dsm_param p) { return dsm_param_table[p].rows != DSM_DIM_NONE; }

void dsm_param_name(enum dsm_param p, int layer, char *buf, size_t cap) {
    if (dsm_param_table[p].per_layer) snprintf(buf, cap, dsm_param_table[p].hf_name, layer);
    else snprintf(buf, cap, "%s", dsm_param_table[p].hf_name);
}
