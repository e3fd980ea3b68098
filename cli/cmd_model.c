/* cmd_model.c - `dsm model init` (random model in HF layout) and `dsm model info`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/model.h"
#include "common/model_init.h"
#include "common/tokenizer.h"
#include "common/util.h"

static int parse_dtype(const char *s, enum dsm_dtype *dt) {
    if (!strcmp(s, "f32") || !strcmp(s, "float32")) *dt = DSM_DT_F32;
    else if (!strcmp(s, "bf16") || !strcmp(s, "bfloat16")) *dt = DSM_DT_BF16;
    else if (!strcmp(s, "f16") || !strcmp(s, "float16")) *dt = DSM_DT_F16;
    else return -1;
    return 0;
}

static int model_init(int argc, char **argv) {
    const char *arch = "llama", *preset = "tiny", *dtype = "f32", *out = NULL;
    long seed = 1;
    int vocab = 0, hidden = 0, layers = 0, heads = 0, kv_heads = 0, ffn = 0, tie = 0, max_pos = 0;
    const struct cli_opt opts[] = {
        {"--arch", CLI_STR, &arch, "llama|qwen2", "architecture (default llama)"},
        {"--preset", CLI_STR, &preset, "NAME", "shape preset: tiny (default), small, 15m, 110m, 1.5b"},
        {"--dtype", CLI_STR, &dtype, "f32|bf16|f16", "stored weight dtype (default f32)"},
        {"--seed", CLI_LONG, &seed, "N", "random seed (default 1)"},
        {"--out", CLI_STR, &out, "DIR", "output directory (required)"},
        {"--vocab", CLI_INT, &vocab, "N", "override vocab_size (>= 264 keeps the byte tokenizer usable)"},
        {"--hidden", CLI_INT, &hidden, "N", "override hidden_size"},
        {"--layers", CLI_INT, &layers, "N", "override num_hidden_layers"},
        {"--heads", CLI_INT, &heads, "N", "override num_attention_heads"},
        {"--kv-heads", CLI_INT, &kv_heads, "N", "override num_key_value_heads"},
        {"--ffn", CLI_INT, &ffn, "N", "override intermediate_size"},
        {"--max-pos", CLI_INT, &max_pos, "N", "override max_position_embeddings"},
        {"--tie", CLI_FLAG, &tie, NULL, "tie lm_head to the embeddings"},
    };
    const struct cli_cmd_spec spec = {"model init", "--out DIR [--arch llama|qwen2] [--preset NAME] [--dtype D]",
                                      "Write a randomly initialised model in Hugging Face layout (config.json,\n"
                                      "generation_config.json, model.safetensors, byte-level tokenizer files).",
                                      opts, DSM_ARRAY_LEN(opts), 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (!out) return cli_usage_error(spec.name, "--out DIR is required");
    enum dsm_arch a;
    if (!strcmp(arch, "llama")) a = DSM_ARCH_LLAMA;
    else if (!strcmp(arch, "qwen2")) a = DSM_ARCH_QWEN2;
    else return cli_usage_error(spec.name, "--arch must be llama or qwen2, not '%s'", arch);
    enum dsm_dtype dt;
    if (parse_dtype(dtype, &dt)) return cli_usage_error(spec.name, "--dtype must be f32, bf16 or f16, not '%s'", dtype);
    struct dsm_err err = {0};
    struct dsm_model_config cfg;
    if (dsm_preset_config(preset, a, &cfg, &err)) return cli_fail(spec.name, &err);
    if (vocab) cfg.vocab_size = vocab;
    if (hidden) cfg.hidden_size = hidden;
    if (layers) cfg.n_layers = layers;
    if (heads) cfg.n_heads = heads;
    if (kv_heads) cfg.n_kv_heads = kv_heads;
    if (ffn) cfg.intermediate_size = ffn;
    if (max_pos) cfg.max_position_embeddings = max_pos;
    if (tie) cfg.tie_word_embeddings = 1;
    if (cfg.vocab_size < 1 || cfg.hidden_size < 2 || cfg.n_layers < 1 || cfg.n_heads < 1 || cfg.n_kv_heads < 1 ||
        cfg.intermediate_size < 1 || cfg.max_position_embeddings < 1)
        return cli_usage_error(spec.name, "sizes must be positive");
    if (cfg.hidden_size % cfg.n_heads || (cfg.hidden_size / cfg.n_heads) % 2 || cfg.n_heads % cfg.n_kv_heads)
        return cli_usage_error(spec.name, "hidden %d / heads %d / kv-heads %d: need hidden = heads * even head_dim and heads a multiple of kv-heads",
                               cfg.hidden_size, cfg.n_heads, cfg.n_kv_heads);
    cfg.head_dim = cfg.hidden_size / cfg.n_heads;
    if (cfg.vocab_size < TOK_BYTE_VOCAB_SIZE) cfg.bos_token_id = -1, cfg.n_eos = 0;
    if (dsm_model_init_random(&cfg, out, dt, (uint64_t)seed, &err)) return cli_fail(spec.name, &err);
    if (cfg.vocab_size >= TOK_BYTE_VOCAB_SIZE && tok_byte_write(out, &err)) return cli_fail(spec.name, &err);
    fprintf(stderr, "dsm model init: wrote %s (%s, %lld parameters, %s)\n", out, dsm_arch_name(a),
            dsm_config_n_params(&cfg), dsm_dtype_name(dt));
    return 0;
}

static int model_info(int argc, char **argv) {
    const char *dir = NULL;
    int check = 0;
    const struct cli_opt opts[] = {
        {"--model", CLI_STR, &dir, "DIR", "model directory (required)"},
        {"--check", CLI_FLAG, &check, NULL, "also load every weight (validates shapes and dtypes)"},
    };
    const struct cli_cmd_spec spec = {"model info", "--model DIR [--check]",
                                      "Print a model's configuration as JSON.", opts, DSM_ARRAY_LEN(opts), 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (!dir) return cli_usage_error(spec.name, "--model DIR is required");
    struct dsm_err err = {0};
    struct dsm_model_config c;
    if (dsm_config_load(dir, &c, &err)) return cli_fail(spec.name, &err);
    if (check) {
        struct dsm_backend *be = NULL;
        struct dsm_model *m = NULL;
        struct dsm_model_opts mo = {.max_tokens = 1, .max_seq = 1};
        if (dsm_backend_open("ref", 1, &be, &err) || dsm_model_load(dir, be, &mo, &m, &err)) {
            dsm_backend_destroy(be);
            return cli_fail(spec.name, &err);
        }
        dsm_model_destroy(m);
        dsm_backend_destroy(be);
    }
    printf("{\"arch\": \"%s\", \"params\": %lld, \"vocab_size\": %d, \"hidden_size\": %d, \"intermediate_size\": %d, "
           "\"layers\": %d, \"heads\": %d, \"kv_heads\": %d, \"head_dim\": %d, \"rope_theta\": %g, \"rope_scaling\": %s, "
           "\"rope_factor\": %g, \"tied\": %s, \"qkv_bias\": %s, \"o_bias\": %s, \"max_position_embeddings\": %d, "
           "\"dtype\": \"%s\", \"weights_checked\": %s}\n",
           dsm_arch_name(c.arch), dsm_config_n_params(&c), c.vocab_size, c.hidden_size, c.intermediate_size, c.n_layers,
           c.n_heads, c.n_kv_heads, c.head_dim, c.rope_theta, c.rope_scaling == DSM_ROPE_LINEAR ? "\"linear\"" : "null",
           c.rope_factor, c.tie_word_embeddings ? "true" : "false", c.qkv_bias ? "true" : "false",
           c.o_bias ? "true" : "false", c.max_position_embeddings, dsm_dtype_name(c.torch_dtype),
           check ? "true" : "false");
    return 0;
}

int cmd_model(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "init")) return model_init(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "info")) return model_info(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "merge-lora")) return cmd_train_merge_lora(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: dsm model init|info|merge-lora [options]\n  init        write a random model directory\n"
               "  info        print a model's configuration\n  merge-lora  merge a LoRA adapter into its base weights\n");
        return 0;
    }
    fprintf(stderr, "dsm model: expected 'init', 'info' or 'merge-lora'%s%s (try 'dsm model --help')\n", argc >= 2 ? ", got " : "",
            argc >= 2 ? argv[1] : "");
    return 2;
}
