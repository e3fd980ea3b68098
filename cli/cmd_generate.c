/* cmd_generate.c - `dsm generate`: one sequence, greedy or seeded sampling, streamed to stdout.
 * (The batched engine with shared prefixes is a later step; this is the single-stream path.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/model.h"
#include "common/sampler.h"
#include "common/tokenizer.h"
#include "common/util.h"

int cmd_generate(int argc, char **argv) {
    const char *dir = NULL, *prompt = NULL, *prompt_ids = NULL, *device = "auto";
    int max_tokens = 64, top_k = 0, threads = 0, no_bos = 0;
    long seed = 0;
    double temperature = 1.0, top_p = 1.0;
    const struct cli_opt opts[] = {
        {"--model", CLI_STR, &dir, "DIR", "model directory (required)"},
        {"--prompt", CLI_STR, &prompt, "TEXT", "prompt text (encoded with the model's tokenizer)"},
        {"--prompt-ids", CLI_STR, &prompt_ids, "1,2,3", "prompt as token ids"},
        {"--max-tokens", CLI_INT, &max_tokens, "N", "new tokens at most (default 64)"},
        {"--temperature", CLI_DOUBLE, &temperature, "T", "0 = greedy (default 1)"},
        {"--top-k", CLI_INT, &top_k, "K", "keep the K most likely tokens (0 = off)"},
        {"--top-p", CLI_DOUBLE, &top_p, "P", "nucleus mass (1 = off)"},
        {"--seed", CLI_LONG, &seed, "N", "sampling seed (default 0)"},
        {"--no-bos", CLI_FLAG, &no_bos, NULL, "do not prepend the BOS token to a text prompt"},
        {"--device", CLI_STR, &device, "NAME", "auto (default), cpu, cuda or ref"},
        {"--threads", CLI_INT, &threads, "N", "CPU threads (default: all cores)"},
    };
    const struct cli_cmd_spec spec = {"generate", "--model DIR (--prompt TEXT | --prompt-ids IDS) [options]",
                                      "Sample one completion and stream its text to stdout; the finish reason\n"
                                      "(stop|length) and token counts go to stderr.",
                                      opts, DSM_ARRAY_LEN(opts), 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (!dir) return cli_usage_error(spec.name, "--model DIR is required");
    if (!prompt == !prompt_ids) return cli_usage_error(spec.name, "give exactly one of --prompt and --prompt-ids");
    if (max_tokens < 1) return cli_usage_error(spec.name, "--max-tokens must be >= 1");
    if (temperature < 0 || top_p <= 0 || top_p > 1 || top_k < 0)
        return cli_usage_error(spec.name, "need --temperature >= 0, 0 < --top-p <= 1, --top-k >= 0");

    struct dsm_err err = {0};
    struct dsm_tokenizer *tok = NULL;
    struct dsm_backend *be = NULL;
    struct dsm_model *m = NULL;
    struct dsm_kv *kv = NULL;
    struct tok_stream *ts = NULL;
    int32_t *ids = NULL, *idx = NULL;
    float *logits = NULL, *p = NULL;
    size_t n = 0;
    rc = tok_load_dir(dir, &tok, &err);
    if (rc) goto done;
    if (prompt_ids) {
        int *tmp = NULL, cnt = 0;
        if ((rc = cli_parse_ids(prompt_ids, &tmp, &cnt, &err))) goto done;
        ids = (int32_t *)tmp;
        n = (size_t)cnt;
    } else {
        int32_t *enc = NULL;
        size_t ne = 0;
        if ((rc = tok_encode_alloc(tok, prompt, strlen(prompt), &enc, &ne, &err))) goto done;
        int bos = no_bos ? -1 : tok_bos_id(tok);
        ids = malloc(sizeof *ids * (ne + 1));
        if (!ids) {
            free(enc);
            rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
            goto done;
        }
        if (bos >= 0) ids[n++] = bos;
        memcpy(ids + n, enc, sizeof *ids * ne);
        n += ne;
        free(enc);
    }
    if (n == 0) {
        rc = dsm_errf(&err, DSM_EINVAL, "the prompt encodes to no tokens");
        goto done;
    }
    struct dsm_model_opts mo = {.max_seq = (int)n + max_tokens};
    if ((rc = dsm_backend_open(device, threads, &be, &err)) || (rc = dsm_model_load(dir, be, &mo, &m, &err)) ||
        (rc = dsm_kv_create(m, (int)n + max_tokens, &kv, &err)) || (rc = tok_stream_create(tok, TOK_DECODE_SKIP_SPECIAL, &ts, &err)))
        goto done;
    const struct dsm_model_config *cfg = dsm_model_config(m);
    int V = cfg->vocab_size;
    logits = malloc(sizeof(float) * V);
    p = malloc(sizeof(float) * V);
    idx = malloc(sizeof(int32_t) * V);
    if (!logits || !p || !idx) {
        rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
        goto done;
    }
    struct dsm_sampling smp = {(float)temperature, top_k, (float)top_p};
    struct dsm_rng rng;
    dsm_rng_seed(&rng, (uint64_t)seed);
    if ((rc = dsm_model_forward(m, kv, ids, (int)n, logits, 0, &err))) goto done;
    const char *reason = "length";
    int produced = 0;
    double t0 = dsm_now();
    while (produced < max_tokens) {
        int32_t next = dsm_sample(logits, V, &smp, &rng, p, idx, NULL);
        produced++;
        int is_eos = next == tok_eos_id(tok);
        for (int e = 0; e < cfg->n_eos; e++) is_eos |= next == cfg->eos_token_ids[e];
        if (is_eos) {
            reason = "stop";
            break;
        }
        const char *piece;
        size_t plen;
        if ((rc = tok_stream_push(ts, next, &piece, &plen, &err))) goto done;
        fwrite(piece, 1, plen, stdout);
        fflush(stdout);
        if (produced == max_tokens) break;
        if ((rc = dsm_model_forward(m, kv, &next, 1, logits, 0, &err))) goto done;
    }
    const char *rest;
    size_t rlen;
    tok_stream_finish(ts, &rest, &rlen);
    fwrite(rest, 1, rlen, stdout);
    printf("\n");
    double dt = dsm_now() - t0;
    fprintf(stderr, "dsm generate: finish_reason=%s prompt_tokens=%zu completion_tokens=%d (%.1f tok/s)\n", reason, n,
            produced, dt > 0 ? produced / dt : 0.0);
done:
    free(logits), free(p), free(idx), free(ids);
    tok_stream_destroy(ts);
    dsm_kv_destroy(kv);
    dsm_model_destroy(m);
    dsm_backend_destroy(be);
    tok_destroy(tok);
    return rc ? cli_fail(spec.name, &err) : 0;
}
