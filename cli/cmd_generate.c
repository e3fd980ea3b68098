/* cmd_generate.c - `dsm generate`: batched sampling through the generation engine
 * (common/engine.h). Prompts from --prompt, --prompt-ids or a JSONL file; n samples each. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/chat.h"
#include "common/engine.h"
#include "common/model.h"
#include "common/tokenizer.h"
#include "common/util.h"

struct prompt {
    int32_t *ids;
    int n;
};

struct gen_ctx {
    const char *dir;
    const char *chat;        /* --chat-format or NULL */
    int no_bos;
    struct dsm_tokenizer *tok;
    const struct chat_format *fmt;
};

struct out_ctx {
    int json, total, done, terminal;
    long tokens;
    double t0;
};

/* Encode text (as a one-message user chat when a format is chosen) or msgs (always a chat) into p. */
static int encode_text(struct gen_ctx *g, const char *text, const struct chat_msg *msgs, size_t nmsg,
                       struct prompt *p, struct dsm_err *err) {
    struct chat_msg one = {"user", text};
    int rc;
    if ((msgs || g->chat) && !g->fmt && (rc = chat_format_select(g->chat, g->tok, g->dir, &g->fmt, err))) return rc;
    size_t n = 0;
    rc = chat_encode(msgs || g->chat ? g->fmt : NULL, g->tok, msgs ? msgs : &one, msgs ? nmsg : 1, !g->no_bos, &p->ids,
                     &n, err);
    p->n = (int)n;
    return rc;
}

/* One JSONL record: {"prompt": text} | {"messages": [{role, content}...]} | {"prompt_ids": [...]}. */
static int parse_record(struct gen_ctx *g, json_t *o, const char *where, struct prompt *p, struct dsm_err *err) {
    json_t *v;
    if (!json_is_object(o)) return dsm_errf(err, DSM_EINVAL, "%s: a record must be a JSON object", where);
    if ((v = json_object_get(o, "prompt_ids"))) {
        if (!json_is_array(v) || json_array_size(v) == 0)
            return dsm_errf(err, DSM_EINVAL, "%s: \"prompt_ids\" must be a non-empty list of token ids", where);
        p->n = (int)json_array_size(v);
        p->ids = malloc(sizeof(int32_t) * (size_t)p->n);
        if (!p->ids) return dsm_errf(err, DSM_ENOMEM, "out of memory");
        for (int i = 0; i < p->n; i++) {
            json_t *x = json_array_get(v, (size_t)i);
            if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX)
                return dsm_errf(err, DSM_EINVAL, "%s: prompt_ids[%d] is not a token id", where, i);
            p->ids[i] = (int32_t)json_integer_value(x);
        }
        return DSM_OK;
    }
    if ((v = json_object_get(o, "prompt"))) {
        if (!json_is_string(v)) return dsm_errf(err, DSM_EINVAL, "%s: \"prompt\" must be a string", where);
        return encode_text(g, json_string_value(v), NULL, 0, p, err);
    }
    if ((v = json_object_get(o, "messages"))) {
        size_t n = json_is_array(v) ? json_array_size(v) : 0;
        if (n == 0) return dsm_errf(err, DSM_EINVAL, "%s: \"messages\" must be a non-empty list", where);
        struct chat_msg *msgs = calloc(n, sizeof *msgs);
        if (!msgs) return dsm_errf(err, DSM_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            json_t *m = json_array_get(v, i);
            json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
            if (!json_is_string(role) || !json_is_string(content)) {
                free(msgs);
                return dsm_errf(err, DSM_EINVAL, "%s: messages[%zu] needs string \"role\" and \"content\"", where, i);
            }
            msgs[i].role = json_string_value(role);
            msgs[i].content = json_string_value(content);
        }
        int rc = encode_text(g, NULL, msgs, n, p, err);
        free(msgs);
        return rc;
    }
    return dsm_errf(err, DSM_EINVAL, "%s: a record needs \"prompt\", \"messages\" or \"prompt_ids\"", where);
}

static int read_prompts(struct gen_ctx *g, const char *path, struct prompt **out, int *n, struct dsm_err *err) {
    char *text = NULL;
    size_t len = 0;
    int rc = dsm_file_read(path, &text, &len, err);
    if (rc) return rc;
    int cap = 16, count = 0, line = 0;
    struct prompt *ps = calloc((size_t)cap, sizeof *ps);
    char *save = NULL;
    if (!ps) rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
    for (char *l = text; rc == DSM_OK && l && l < text + len; l = save) {
        char *nl = strchr(l, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl) *nl = '\0';
        line++;
        if (strspn(l, " \t\r") == strlen(l)) continue;
        char where[4200];
        snprintf(where, sizeof where, "%s:%d", path, line);
        json_error_t je;
        json_t *o = json_loads(l, 0, &je);
        if (!o) {
            rc = dsm_errf(err, DSM_EINVAL, "%s: invalid JSON at column %d: %s", where, je.column, je.text);
            break;
        }
        if (count == cap) {
            struct prompt *np = realloc(ps, sizeof *ps * (size_t)(cap *= 2));
            if (!np) {
                json_decref(o);
                rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
                break;
            }
            ps = np;
        }
        memset(&ps[count], 0, sizeof ps[count]);
        rc = parse_record(g, o, where, &ps[count], err);
        count++;
        json_decref(o);
    }
    free(text);
    if (rc == DSM_OK && count == 0) rc = dsm_errf(err, DSM_EINVAL, "%s: no prompts", path);
    *out = ps;
    *n = count;
    return rc;
}

static int on_completion(void *user, const struct dsm_completion *c) {
    struct out_ctx *o = user;
    o->done++;
    o->tokens += c->n_ids;
    if (o->json) {
        json_t *ids = json_array(), *lps = json_array();
        for (int i = 0; i < c->n_ids; i++) {
            json_array_append_new(ids, json_integer(c->ids[i]));
            json_array_append_new(lps, json_real(c->logprobs[i]));
        }
        json_t *rec = json_pack("{s:i, s:i, s:I, s:s%, s:o, s:s, s:o}", "request", c->request, "sample", c->sample,
                                "seed", (json_int_t)c->seed, "text", c->text ? c->text : "", c->text ? c->text_len : 0,
                                "ids", ids, "finish_reason", c->finish_reason, "logprobs", lps);
        char *line = rec ? json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7)) : NULL;
        if (line) printf("%s\n", line);
        free(line);
        json_decref(rec);
    } else {
        if (o->total > 1) printf("--- request %d sample %d (%s)\n", c->request, c->sample, c->finish_reason);
        fwrite(c->text ? c->text : "", 1, c->text ? c->text_len : 0, stdout);
        printf("\n");
    }
    fflush(stdout);
    if (o->terminal) {
        double dt = dsm_now() - o->t0;
        fprintf(stderr, "\r[generate] %d/%d completions, %ld tokens, %.0f tok/s ", o->done, o->total, o->tokens,
                dt > 0 ? o->tokens / dt : 0.0);
        if (o->done == o->total) fputc('\n', stderr);
    }
    return 0;
}

int cmd_generate(int argc, char **argv) {
    const char *dir = NULL, *prompt = NULL, *prompt_ids = NULL, *prompts_file = NULL, *device = "auto", *chat = NULL;
    const char *kv_dtype = "f32";
    int n = 1, max_tokens = 256, top_k = 0, threads = 0, no_bos = 0, json = 0, max_batch = 64, ignore_eos = 0;
    long seed = 0, kv_mb = 1024;
    double temperature = 1.0, top_p = 1.0;
    struct cli_str_list stop = {{0}, 0};
    const struct cli_opt opts[] = {
        {"--model", CLI_STR, &dir, "DIR", "model directory (required)"},
        {"--prompt", CLI_STR, &prompt, "TEXT", "prompt text (encoded with the model's tokenizer)"},
        {"--prompt-ids", CLI_STR, &prompt_ids, "1,2,3", "prompt as token ids"},
        {"--prompts", CLI_STR, &prompts_file, "FILE.jsonl", "one prompt per line: {\"prompt\"}, {\"messages\"} or {\"prompt_ids\"}"},
        {"-n", CLI_INT, &n, "N", "samples per prompt (default 1; sample i uses seed + i)"},
        {"--max-tokens", CLI_INT, &max_tokens, "N", "new tokens at most (default 256)"},
        {"--temperature", CLI_DOUBLE, &temperature, "T", "0 = greedy (default 1)"},
        {"--top-k", CLI_INT, &top_k, "K", "keep the K most likely tokens (0 = off)"},
        {"--top-p", CLI_DOUBLE, &top_p, "P", "nucleus mass in (0, 1] (1 = off)"},
        {"--seed", CLI_LONG, &seed, "N", "sampling seed (default 0)"},
        {"--stop", CLI_STR_LIST, &stop, "S", "stop string (repeatable); the text ends before it"},
        {"--ignore-eos", CLI_FLAG, &ignore_eos, NULL, "keep generating past EOS"},
        {"--chat-format", CLI_STR, &chat, "NAME", "wrap text prompts in a chat format (deepseek-math, qwen, deepseek-r1, deepseek-v3, byte)"},
        {"--no-bos", CLI_FLAG, &no_bos, NULL, "do not prepend BOS to a plain text prompt"},
        {"--json", CLI_FLAG, &json, NULL, "one JSON object per completion: text, ids, finish_reason, logprobs"},
        {"--max-batch", CLI_INT, &max_batch, "N", "sequences decoded together at most (default 64)"},
        {"--kv-budget-mb", CLI_LONG, &kv_mb, "MB", "memory for the KV cache (default 1024)"},
        {"--kv-dtype", CLI_STR, &kv_dtype, "f32|f16", "KV cache dtype (default f32; f16 halves its memory and decode's reads)"},
        {"--device", CLI_STR, &device, "NAME", "auto (default), cpu, cuda or ref"},
        {"--threads", CLI_INT, &threads, "N", "CPU threads (default: all cores)"},
    };
    const struct cli_cmd_spec spec = {"generate", "--model DIR (--prompt TEXT | --prompt-ids IDS | --prompts FILE) [options]",
                                      "Sample completions with the batched engine. Text goes to stdout (one JSON\n"
                                      "object per completion with --json); progress and totals to stderr.",
                                      opts, DSM_ARRAY_LEN(opts), 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (!dir) return cli_usage_error(spec.name, "--model DIR is required");
    if ((prompt != NULL) + (prompt_ids != NULL) + (prompts_file != NULL) != 1)
        return cli_usage_error(spec.name, "give exactly one of --prompt, --prompt-ids and --prompts");
    if (n < 1) return cli_usage_error(spec.name, "-n must be at least 1 (got %d)", n);
    if (max_tokens < 1) return cli_usage_error(spec.name, "--max-tokens must be at least 1");
    if (temperature < 0) return cli_usage_error(spec.name, "--temperature must be >= 0 (got %g)", temperature);
    if (!(top_p > 0 && top_p <= 1)) return cli_usage_error(spec.name, "--top-p must be in (0, 1] (got %g)", top_p);
    if (top_k < 0) return cli_usage_error(spec.name, "--top-k must be >= 0");
    if (max_batch < 1 || kv_mb < 1) return cli_usage_error(spec.name, "--max-batch and --kv-budget-mb must be positive");
    for (int i = 0; i < stop.n; i++)
        if (!stop.v[i][0]) return cli_usage_error(spec.name, "--stop needs a non-empty string");
    enum dsm_dtype kvdt;
    struct dsm_err kerr = {0};
    if (dsm_kv_dtype_parse(kv_dtype, &kvdt, &kerr)) return cli_usage_error(spec.name, "--kv-dtype: %s", kerr.msg);

    struct dsm_err err = {0};
    struct gen_ctx g = {.dir = dir, .chat = chat, .no_bos = no_bos};
    struct prompt *ps = NULL;
    int np = 0;
    struct dsm_backend *be = NULL;
    struct dsm_model *m = NULL;
    struct dsm_engine *eng = NULL;
    struct dsm_gen_request *reqs = NULL;
    if ((rc = tok_load_dir(dir, &g.tok, &err))) goto done;
    if (chat && (rc = chat_format_select(chat, g.tok, dir, &g.fmt, &err))) goto done;
    if (prompts_file) {
        if ((rc = read_prompts(&g, prompts_file, &ps, &np, &err))) goto done;
    } else {
        ps = calloc(1, sizeof *ps);
        np = 1;
        if (!ps) {
            rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
            goto done;
        }
        if (prompt_ids) {
            int *tmp = NULL;
            if ((rc = cli_parse_ids(prompt_ids, &tmp, &ps[0].n, &err))) goto done;
            ps[0].ids = (int32_t *)tmp;
        } else if ((rc = encode_text(&g, prompt, NULL, 0, &ps[0], &err))) {
            goto done;
        }
    }
    int longest = 0;
    for (int i = 0; i < np; i++) longest = ps[i].n > longest ? ps[i].n : longest;
    struct dsm_model_opts mo = {.max_seq = longest + max_tokens, .max_tokens = 512};
    if ((rc = dsm_backend_open(device, threads, &be, &err)) || (rc = dsm_model_load(dir, be, &mo, &m, &err))) goto done;
    struct dsm_engine_opts eo = {.max_batch = max_batch, .kv_budget_bytes = (size_t)kv_mb << 20, .kv_dtype = kvdt};
    if ((rc = dsm_engine_create(m, g.tok, &eo, &eng, &err))) goto done;
    reqs = calloc((size_t)np, sizeof *reqs);
    if (!reqs) {
        rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < np; i++) {
        reqs[i].prompt = ps[i].ids;
        reqs[i].n_prompt = ps[i].n;
        reqs[i].n = n;
        reqs[i].s = (struct dsm_gen_settings){(float)temperature, top_k, (float)top_p, max_tokens, (uint64_t)seed,
                                              stop.v, stop.n, ignore_eos};
    }
    struct out_ctx oc = {.json = json, .total = np * n, .terminal = isatty(2), .t0 = dsm_now()};
    if ((rc = dsm_engine_run(eng, reqs, np, on_completion, &oc, &err))) goto done;
    const struct dsm_engine_stats *st = dsm_engine_stats(eng);
    fprintf(stderr, "dsm generate: %d completions, %ld new tokens in %.2f s (%.1f tok/s); %ld prompt tokens in %ld prefills, "
                    "%ld sharing a prefilled prompt; %ld steps, up to %d live of %d slots, KV pool %.1f MB\n",
            np * n, st->generated_tokens, st->seconds, st->seconds > 0 ? st->generated_tokens / st->seconds : 0.0,
            st->prompt_tokens, st->prefills, st->kv_shared, st->steps, st->peak_live, st->slots, st->kv_bytes / 1048576.0);
done:
    for (int i = 0; ps && i < np; i++) free(ps[i].ids);
    free(ps);
    free(reqs);
    dsm_engine_destroy(eng);
    dsm_model_destroy(m);
    dsm_backend_destroy(be);
    tok_destroy(g.tok);
    return rc ? cli_fail(spec.name, &err) : 0;
}
