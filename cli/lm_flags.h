/* lm_flags.h - the flags every command that talks to a model shares (`dsm role sample`, the role
 * services): which backend, and how to reach it. Put CLI_LM_OPTS(f) in a command's option table
 * and call cli_lm_open(&f, ...) after parsing. Defaults are lm.h's. */
#ifndef DSM_CLI_LM_FLAGS_H
#define DSM_CLI_LM_FLAGS_H

#include "cli/cli.h"
#include "common/lm.h"

struct cli_lm_flags {
    const char *backend;  /* native:DIR | http:URL | http(s)://... (required) */
    const char *model;    /* http: model name (default: the server's first) */
    const char *key_env;  /* http: environment variable with the API key (default DSM_API_KEY) */
    const char *chat;     /* native: chat format override */
    const char *device;   /* native: auto|cpu|cuda|ref */
    const char *kv_dtype; /* native: f32|f16 */
    int threads, max_context, max_batch, concurrency, retries;
    double timeout;
};

#define CLI_LM_OPTS(f)                                                                                           \
    {"--backend", CLI_STR, &(f).backend, "SPEC", "native:DIR or http:URL (an OpenAI-compatible server)"},      \
    {"--model-name", CLI_STR, &(f).model, "NAME", "http: the model to ask for (default: the server's first)"}, \
    {"--api-key-env", CLI_STR, &(f).key_env, "VAR", "http: environment variable holding the API key (default DSM_API_KEY)"}, \
    {"--concurrency", CLI_INT, &(f).concurrency, "N", "http: requests in flight at most (default 8)"},         \
    {"--timeout", CLI_DOUBLE, &(f).timeout, "S", "http: seconds per request (default 600)"},                   \
    {"--retries", CLI_INT, &(f).retries, "N", "http: retries on 429/5xx/transport errors (default 5, -1 none)"}, \
    {"--chat-format", CLI_STR, &(f).chat, "NAME", "native: override the model's chat format"},                 \
    {"--device", CLI_STR, &(f).device, "NAME", "native: auto (default), cpu, cuda, ref"},                      \
    {"--threads", CLI_INT, &(f).threads, "N", "native: CPU threads (default all)"},                             \
    {"--max-context", CLI_INT, &(f).max_context, "N", "native: prompt + new tokens at most (default 4096)"},   \
    {"--max-batch", CLI_INT, &(f).max_batch, "N", "native: sequences decoded together (default 64)"},         \
    {"--kv-dtype", CLI_STR, &(f).kv_dtype, "f32|f16", "native: KV cache dtype (default f32; f16 halves its memory)"}

/* Check the flags (usage errors print and return 2 as cli_usage_error does) and open the backend
 * into *out; a backend failure is reported with cli_fail and its exit code returned. 0 on success. */
int cli_lm_open(const char *cmd, const struct cli_lm_flags *f, struct dsm_lm **out);

#endif
