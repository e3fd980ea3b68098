/* config.c - Hugging Face config.json <-> struct dsm_model_config; see config.h.
 *
 * Rule: a key that changes the forward pass is honoured or refused by name; a key that does not
 * (dropout, initializer_range, use_cache, transformers_version, ...) is ignored.
 */
#include "common/config.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

const char *dsm_arch_name(enum dsm_arch arch) {
    return arch == DSM_ARCH_QWEN2 ? "qwen2" : "llama";
}

/* Read an integer key in [lo, hi]; absent -> *out = dflt when has_default, else an error. */
static int get_int(json_t *root, const char *where, const char *key, int lo, int hi, int has_default,
                   int dflt, int *out, struct dsm_err *err) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (has_default) {
            *out = dflt;
            return DSM_OK;
        }
        return dsm_errf(err, DSM_EINVAL, "%s: missing required key '%s'", where, key);
    }
    if (!json_is_integer(v))
        return dsm_errf(err, DSM_EINVAL, "%s: key '%s' must be an integer", where, key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return dsm_errf(err, DSM_EINVAL, "%s: key '%s' = %lld is outside [%d, %d]", where, key,
                        (long long)x, lo, hi);
    *out = (int)x;
    return DSM_OK;
}

static int get_num(json_t *root, const char *where, const char *key, double dflt, double *out,
                   struct dsm_err *err) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return DSM_OK;
    }
    if (!json_is_number(v)) return dsm_errf(err, DSM_EINVAL, "%s: key '%s' must be a number", where, key);
    *out = json_number_value(v);
    if (!isfinite(*out) || *out <= 0)
        return dsm_errf(err, DSM_EINVAL, "%s: key '%s' must be a positive number", where, key);
    return DSM_OK;
}

static int get_bool(json_t *root, const char *where, const char *key, int dflt, int *out,
                    struct dsm_err *err) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return DSM_OK;
    }
    if (!json_is_boolean(v)) return dsm_errf(err, DSM_EINVAL, "%s: key '%s' must be true or false", where, key);
    *out = json_is_true(v);
    return DSM_OK;
}

static int parse_arch(json_t *root, const char *where, enum dsm_arch *arch, struct dsm_err *err) {
    json_t *archs = json_object_get(root, "architectures");
    const char *name = NULL;
    if (archs && !json_is_null(archs)) {
        if (!json_is_array(archs) || json_array_size(archs) < 1 || !json_is_string(json_array_get(archs, 0)))
            return dsm_errf(err, DSM_EINVAL, "%s: 'architectures' must be a non-empty list of strings", where);
        name = json_string_value(json_array_get(archs, 0));
        if (!strcmp(name, "LlamaForCausalLM")) *arch = DSM_ARCH_LLAMA;
        else if (!strcmp(name, "Qwen2ForCausalLM")) *arch = DSM_ARCH_QWEN2;
        else
            return dsm_errf(err, DSM_EUNSUPPORTED,
                            "%s: architecture '%s' is not supported (supported: LlamaForCausalLM, Qwen2ForCausalLM)",
                            where, name);
        return DSM_OK;
    }
    json_t *mt = json_object_get(root, "model_type");
    if (!json_is_string(mt))
        return dsm_errf(err, DSM_EINVAL, "%s: neither 'architectures' nor 'model_type' is given", where);
    name = json_string_value(mt);
    if (!strcmp(name, "llama")) *arch = DSM_ARCH_LLAMA;
    else if (!strcmp(name, "qwen2")) *arch = DSM_ARCH_QWEN2;
    else return dsm_errf(err, DSM_EUNSUPPORTED, "%s: model_type '%s' is not supported (supported: llama, qwen2)", where, name);
    return DSM_OK;
}

static int parse_rope_scaling(json_t *root, const char *where, struct dsm_model_config *cfg,
                              struct dsm_err *err) {
    json_t *rs = json_object_get(root, "rope_scaling");
    cfg->rope_scaling = DSM_ROPE_NONE;
    cfg->rope_factor = 1.0;
    if (!rs || json_is_null(rs)) return DSM_OK;
    if (!json_is_object(rs)) return dsm_errf(err, DSM_EINVAL, "%s: 'rope_scaling' must be an object or null", where);
    json_t *t = json_object_get(rs, "rope_type"); /* newer HF spelling */
    if (!t || json_is_null(t)) t = json_object_get(rs, "type");
    if (!json_is_string(t)) return dsm_errf(err, DSM_EINVAL, "%s: 'rope_scaling' has no string 'type' or 'rope_type'", where);
    const char *type = json_string_value(t);
    if (!strcmp(type, "default")) return DSM_OK;
    if (strcmp(type, "linear") != 0)
        return dsm_errf(err, DSM_EUNSUPPORTED, "%s: rope_scaling type '%s' is not supported (supported: linear)", where, type);
    json_t *f = json_object_get(rs, "factor");
    if (!json_is_number(f) || !(json_number_value(f) > 0) || !isfinite(json_number_value(f)))
        return dsm_errf(err, DSM_EINVAL, "%s: rope_scaling.factor must be a positive number", where);
    cfg->rope_scaling = DSM_ROPE_LINEAR;
    cfg->rope_factor = json_number_value(f);
    return DSM_OK;
}

static int parse_special_ids(json_t *root, const char *where, struct dsm_model_config *cfg,
                             struct dsm_err *err) {
    json_t *b = json_object_get(root, "bos_token_id");
    cfg->bos_token_id = -1;
    if (b && !json_is_null(b)) {
        if (!json_is_integer(b) || json_integer_value(b) < 0)
            return dsm_errf(err, DSM_EINVAL, "%s: 'bos_token_id' must be a non-negative integer", where);
        cfg->bos_token_id = (int)json_integer_value(b);
    }
    json_t *e = json_object_get(root, "eos_token_id");
    cfg->n_eos = 0;
    if (!e || json_is_null(e)) return DSM_OK;
    if (json_is_integer(e)) {
        if (json_integer_value(e) < 0) return dsm_errf(err, DSM_EINVAL, "%s: 'eos_token_id' must be non-negative", where);
        cfg->eos_token_ids[cfg->n_eos++] = (int)json_integer_value(e);
        return DSM_OK;
    }
    if (!json_is_array(e)) return dsm_errf(err, DSM_EINVAL, "%s: 'eos_token_id' must be an integer or a list", where);
    size_t i;
    json_t *x;
    json_array_foreach(e, i, x) {
        if (!json_is_integer(x) || json_integer_value(x) < 0 || cfg->n_eos >= DSM_MAX_EOS)
            return dsm_errf(err, DSM_EINVAL, "%s: 'eos_token_id' must list at most %d non-negative integers", where, DSM_MAX_EOS);
        cfg->eos_token_ids[cfg->n_eos++] = (int)json_integer_value(x);
    }
    return DSM_OK;
}

static int parse_root(json_t *root, const char *where, struct dsm_model_config *cfg, struct dsm_err *err) {
    int rc;
    memset(cfg, 0, sizeof *cfg);
    if ((rc = parse_arch(root, where, &cfg->arch, err))) return rc;
    if ((rc = get_int(root, where, "vocab_size", 1, 16 << 20, 0, 0, &cfg->vocab_size, err)) ||
        (rc = get_int(root, where, "hidden_size", 1, 1 << 17, 0, 0, &cfg->hidden_size, err)) ||
        (rc = get_int(root, where, "intermediate_size", 1, 1 << 20, 0, 0, &cfg->intermediate_size, err)) ||
        (rc = get_int(root, where, "num_hidden_layers", 1, 4096, 0, 0, &cfg->n_layers, err)) ||
        (rc = get_int(root, where, "num_attention_heads", 1, 4096, 0, 0, &cfg->n_heads, err)) ||
        (rc = get_int(root, where, "num_key_value_heads", 1, 4096, 1, cfg->n_heads, &cfg->n_kv_heads, err)) ||
        (rc = get_int(root, where, "max_position_embeddings", 1, 1 << 24, 1, 2048, &cfg->max_position_embeddings, err)))
        return rc;
    json_t *hd = json_object_get(root, "head_dim");
    if (hd && !json_is_null(hd)) {
        if ((rc = get_int(root, where, "head_dim", 2, 4096, 0, 0, &cfg->head_dim, err))) return rc;
    } else {
        if (cfg->hidden_size % cfg->n_heads)
            return dsm_errf(err, DSM_EINVAL, "%s: hidden_size %d is not divisible by num_attention_heads %d",
                            where, cfg->hidden_size, cfg->n_heads);
        cfg->head_dim = cfg->hidden_size / cfg->n_heads;
    }
    if (cfg->head_dim % 2)
        return dsm_errf(err, DSM_EINVAL, "%s: head dimension %d must be even for rotary embeddings", where, cfg->head_dim);
    if (cfg->n_heads % cfg->n_kv_heads)
        return dsm_errf(err, DSM_EINVAL, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                        where, cfg->n_heads, cfg->n_kv_heads);
    double eps, theta;
    if ((rc = get_num(root, where, "rms_norm_eps", 1e-6, &eps, err)) ||
        (rc = get_num(root, where, "rope_theta", 10000.0, &theta, err)))
        return rc;
    cfg->rms_norm_eps = (float)eps;
    cfg->rope_theta = theta;
    if ((rc = parse_rope_scaling(root, where, cfg, err))) return rc;
    if ((rc = get_bool(root, where, "tie_word_embeddings", 0, &cfg->tie_word_embeddings, err))) return rc;

    json_t *act = json_object_get(root, "hidden_act");
    if (act && !json_is_null(act) && (!json_is_string(act) || strcmp(json_string_value(act), "silu")))
        return dsm_errf(err, DSM_EUNSUPPORTED, "%s: hidden_act '%s' is not supported (supported: silu)", where,
                        json_is_string(act) ? json_string_value(act) : "?");
    int flag = 0;
    if (cfg->arch == DSM_ARCH_LLAMA) {
        if ((rc = get_bool(root, where, "attention_bias", 0, &flag, err))) return rc;
        cfg->qkv_bias = cfg->o_bias = flag;
        if ((rc = get_bool(root, where, "mlp_bias", 0, &flag, err))) return rc;
        if (flag) return dsm_errf(err, DSM_EUNSUPPORTED, "%s: mlp_bias = true is not supported", where);
    } else {
        cfg->qkv_bias = 1;
        cfg->o_bias = 0;
        if ((rc = get_bool(root, where, "use_sliding_window", 0, &flag, err))) return rc;
        int window = 0;
        json_t *sw = json_object_get(root, "sliding_window");
        if (json_is_integer(sw)) window = (int)json_integer_value(sw);
        if (flag && window > 0 && window < cfg->max_position_embeddings)
            return dsm_errf(err, DSM_EUNSUPPORTED, "%s: use_sliding_window = true with sliding_window %d is not supported",
                            where, window);
    }
    if ((rc = parse_special_ids(root, where, cfg, err))) return rc;
    cfg->torch_dtype = DSM_DT_F32;
    json_t *dt = json_object_get(root, "torch_dtype");
    if (dt && !json_is_null(dt)) {
        const char *s = json_is_string(dt) ? json_string_value(dt) : "";
        if (!strcmp(s, "float32")) cfg->torch_dtype = DSM_DT_F32;
        else if (!strcmp(s, "bfloat16")) cfg->torch_dtype = DSM_DT_BF16;
        else if (!strcmp(s, "float16")) cfg->torch_dtype = DSM_DT_F16;
        else return dsm_errf(err, DSM_EUNSUPPORTED, "%s: torch_dtype '%s' is not supported (float32, bfloat16, float16)", where, s);
    }
    return DSM_OK;
}

int dsm_config_parse(const char *json_text, const char *where, struct dsm_model_config *cfg,
                     struct dsm_err *err) {
    json_error_t je;
    json_t *root = json_loads(json_text, 0, &je);
    if (!root) return dsm_errf(err, DSM_EINVAL, "%s:%d:%d: invalid JSON: %s", where, je.line, je.column, je.text);
    int rc = json_is_object(root) ? parse_root(root, where, cfg, err)
                                  : dsm_errf(err, DSM_EINVAL, "%s: top level must be a JSON object", where);
    json_decref(root);
    return rc;
}

int dsm_config_load(const char *dir, struct dsm_model_config *cfg, struct dsm_err *err) {
    char path[4096];
    int rc = dsm_path_join(path, sizeof path, dir, "config.json", err);
    if (rc) return rc;
    char *text = NULL;
    if ((rc = dsm_file_read(path, &text, NULL, err))) return rc;
    rc = dsm_config_parse(text, path, cfg, err);
    free(text);
    return rc;
}

int dsm_config_write(const struct dsm_model_config *cfg, const char *path, struct dsm_err *err) {
    json_t *o = json_object();
    int llama = cfg->arch == DSM_ARCH_LLAMA;
    json_object_set_new(o, "architectures", json_pack("[s]", llama ? "LlamaForCausalLM" : "Qwen2ForCausalLM"));
    json_object_set_new(o, "model_type", json_string(dsm_arch_name(cfg->arch)));
    json_object_set_new(o, "vocab_size", json_integer(cfg->vocab_size));
    json_object_set_new(o, "hidden_size", json_integer(cfg->hidden_size));
    json_object_set_new(o, "intermediate_size", json_integer(cfg->intermediate_size));
    json_object_set_new(o, "num_hidden_layers", json_integer(cfg->n_layers));
    json_object_set_new(o, "num_attention_heads", json_integer(cfg->n_heads));
    json_object_set_new(o, "num_key_value_heads", json_integer(cfg->n_kv_heads));
    if (cfg->head_dim * cfg->n_heads != cfg->hidden_size) json_object_set_new(o, "head_dim", json_integer(cfg->head_dim));
    json_object_set_new(o, "hidden_act", json_string("silu"));
    json_object_set_new(o, "max_position_embeddings", json_integer(cfg->max_position_embeddings));
    json_object_set_new(o, "rms_norm_eps", json_real(cfg->rms_norm_eps));
    json_object_set_new(o, "rope_theta", json_real(cfg->rope_theta));
    json_object_set_new(o, "rope_scaling", cfg->rope_scaling == DSM_ROPE_LINEAR
                                               ? json_pack("{s:s, s:f}", "type", "linear", "factor", cfg->rope_factor)
                                               : json_null());
    json_object_set_new(o, "tie_word_embeddings", json_boolean(cfg->tie_word_embeddings));
    if (llama) {
        json_object_set_new(o, "attention_bias", json_boolean(cfg->qkv_bias));
        json_object_set_new(o, "mlp_bias", json_false());
    } else {
        json_object_set_new(o, "use_sliding_window", json_false());
    }
    json_object_set_new(o, "bos_token_id", cfg->bos_token_id >= 0 ? json_integer(cfg->bos_token_id) : json_null());
    if (cfg->n_eos == 1) json_object_set_new(o, "eos_token_id", json_integer(cfg->eos_token_ids[0]));
    else if (cfg->n_eos > 1) {
        json_t *a = json_array();
        for (int i = 0; i < cfg->n_eos; i++) json_array_append_new(a, json_integer(cfg->eos_token_ids[i]));
        json_object_set_new(o, "eos_token_id", a);
    }
    json_object_set_new(o, "torch_dtype", json_string(cfg->torch_dtype == DSM_DT_BF16 ? "bfloat16"
                                                      : cfg->torch_dtype == DSM_DT_F16 ? "float16" : "float32"));
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    if (!text) return dsm_errf(err, DSM_ENOMEM, "cannot serialise config");
    size_t n = strlen(text);
    char *buf = malloc(n + 2);
    if (!buf) {
        free(text);
        return dsm_errf(err, DSM_ENOMEM, "out of memory");
    }
    memcpy(buf, text, n);
    buf[n] = '\n';
    free(text);
    int rc = dsm_file_write_atomic(path, buf, n + 1, err);
    free(buf);
    return rc;
}

long long dsm_config_n_params(const struct dsm_model_config *c) {
    long long C = c->hidden_size, F = c->intermediate_size, V = c->vocab_size;
    long long q = (long long)c->n_heads * c->head_dim, kv = (long long)c->n_kv_heads * c->head_dim;
    long long layer = C /* attn norm */ + C * q + C * kv * 2 + q * C + C /* mlp norm */ + 3 * C * F;
    if (c->qkv_bias) layer += q + 2 * kv;
    if (c->o_bias) layer += C;
    return V * C + c->n_layers * layer + C + (c->tie_word_embeddings ? 0 : V * C);
}
