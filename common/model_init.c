/* model_init.c - random model directories; see model_init.h. */
#include "common/model_init.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/params.h"
#include "common/safetensors.h"
#include "common/util.h"

static const struct {
    const char *name;
    int vocab, C, L, Hq, Hkv, F;
} presets[] = {
    {"tiny", 264, 128, 4, 4, 2, 352},
    {"small", 264, 256, 6, 8, 4, 704},
    {"15m", 32000, 288, 6, 6, 6, 768},
    {"110m", 32000, 768, 12, 12, 12, 2048},
    {"1.5b", 151936, 1536, 28, 12, 2, 8960}, /* Qwen2-1.5B's shape (use with the qwen2 arch) */
};

const char *dsm_preset_names(void) { return "tiny, small, 15m, 110m, 1.5b"; }

int dsm_preset_config(const char *name, enum dsm_arch arch, struct dsm_model_config *cfg, struct dsm_err *err) {
    for (size_t i = 0; i < DSM_ARRAY_LEN(presets); i++) {
        if (strcmp(presets[i].name, name)) continue;
        memset(cfg, 0, sizeof *cfg);
        cfg->arch = arch;
        cfg->vocab_size = presets[i].vocab;
        cfg->hidden_size = presets[i].C;
        cfg->n_layers = presets[i].L;
        cfg->n_heads = presets[i].Hq;
        cfg->n_kv_heads = presets[i].Hkv;
        cfg->head_dim = presets[i].C / presets[i].Hq;
        cfg->intermediate_size = presets[i].F;
        cfg->rms_norm_eps = 1e-6f;
        cfg->rope_theta = arch == DSM_ARCH_QWEN2 ? 1000000.0 : 10000.0;
        cfg->max_position_embeddings = 4096;
        cfg->qkv_bias = arch == DSM_ARCH_QWEN2;
        cfg->o_bias = 0;
        cfg->tie_word_embeddings = presets[i].vocab == 32000; /* llama2.c shares the classifier */
        cfg->bos_token_id = 256; /* the byte tokenizer's specials (common/tokenizer.h) */
        cfg->eos_token_ids[0] = 257;
        cfg->n_eos = 1;
        cfg->torch_dtype = DSM_DT_F32;
        return DSM_OK;
    }
    return dsm_errf(err, DSM_EINVAL, "unknown preset '%s' (known: %s)", name, dsm_preset_names());
}

/* splitmix64 + Box-Muller: reproducible normals from a seed. */
static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double next_normal(uint64_t *s) {
    double u1 = ((next_u64(s) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (next_u64(s) >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int write_generation_config(const struct dsm_model_config *cfg, const char *dir, struct dsm_err *err) {
    char path[4096], body[256];
    int rc = dsm_path_join(path, sizeof path, dir, "generation_config.json", err);
    if (rc) return rc;
    int n = snprintf(body, sizeof body, "{\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n  \"do_sample\": true,\n"
                     "  \"temperature\": 1.0,\n  \"top_p\": 1.0\n}\n",
                     cfg->bos_token_id, cfg->n_eos ? cfg->eos_token_ids[0] : -1);
    return dsm_file_write_atomic(path, body, (size_t)n, err);
}

int dsm_model_init_random(const struct dsm_model_config *cfg_in, const char *dir, enum dsm_dtype dtype,
                          uint64_t seed, struct dsm_err *err) {
    struct dsm_model_config cfg = *cfg_in;
    cfg.torch_dtype = dtype;
    int rc = dsm_mkdir_p(dir, err);
    if (rc) return rc;
    char path[4096];
    if ((rc = dsm_path_join(path, sizeof path, dir, "config.json", err)) ||
        (rc = dsm_config_write(&cfg, path, err)) || (rc = write_generation_config(&cfg, dir, err)))
        return rc;

    struct st_writer *w = NULL;
    if ((rc = st_writer_create(&w, err))) return rc;
    /* every tensor stays alive until the file is written: keep them in one list */
    int cap = DSM_P_COUNT * (cfg.n_layers + 1), nbuf = 0;
    void **bufs = dsm_calloc((size_t)cap, sizeof *bufs, err);
    char **names = dsm_calloc((size_t)cap, sizeof *names, err);
    if (!bufs || !names) {
        rc = DSM_ENOMEM;
        goto done;
    }
    uint64_t state = seed;
    for (int p = 0; p < DSM_P_COUNT && rc == DSM_OK; p++) {
        if (!dsm_param_present(&cfg, (enum dsm_param)p)) continue;
        int layers = dsm_param_table[p].per_layer ? cfg.n_layers : 1;
        for (int l = 0; l < layers && rc == DSM_OK; l++) {
            size_t n = dsm_param_numel(&cfg, (enum dsm_param)p);
            int nd;
            int64_t shape[2];
            dsm_param_shape(&cfg, (enum dsm_param)p, &nd, shape);
            void *buf = malloc(n * dsm_dtype_size(dtype));
            char *name = malloc(256);
            if (!buf || !name) {
                free(buf);
                free(name);
                rc = dsm_errf(err, DSM_ENOMEM, "out of memory initialising weights");
                break;
            }
            bufs[nbuf] = buf;
            names[nbuf++] = name;
            dsm_param_name((enum dsm_param)p, l, name, 256);
            for (size_t i = 0; i < n; i++) {
                enum dsm_init how = dsm_param_table[p].init;
                float v = how == DSM_INIT_ONES ? 1.0f : how == DSM_INIT_ZEROS ? 0.0f : (float)(0.02 * next_normal(&state));
                if (dtype == DSM_DT_F32) ((float *)buf)[i] = v;
                else ((uint16_t *)buf)[i] = dtype == DSM_DT_BF16 ? dsm_f32_to_bf16(v) : dsm_f32_to_f16(v);
            }
            rc = st_writer_add(w, name, dtype, nd, shape, buf, err);
        }
    }
    if (rc == DSM_OK && (rc = dsm_path_join(path, sizeof path, dir, "model.safetensors", err)) == DSM_OK)
        rc = st_writer_write(w, path, err);
done:
    for (int i = 0; i < nbuf; i++) {
        free(bufs[i]);
        free(names[i]);
    }
    free(bufs);
    free(names);
    st_writer_destroy(w);
    return rc;
}
