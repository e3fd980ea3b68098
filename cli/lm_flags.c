/* lm_flags.c - shared model-backend flags; see lm_flags.h. */
#include "cli/lm_flags.h"

int cli_lm_open(const char *cmd, const struct cli_lm_flags *f, struct dsm_lm **out) {
    *out = NULL;
    if (!f->backend) return cli_usage_error(cmd, "--backend SPEC is required (native:DIR or http:URL)");
    if (f->timeout < 0 || f->retries < -1 || f->max_context < 0 || f->threads < 0 || f->max_batch < 0 ||
        f->concurrency < 0)
        return cli_usage_error(cmd, "--timeout, --concurrency, --max-context, --max-batch, --threads must be >= 0 "
                                    "and --retries >= -1");
    struct lm_open_opts o = {.device = f->device, .threads = f->threads, .chat_format = f->chat,
                             .max_context = f->max_context, .max_batch = f->max_batch, .kv_dtype = f->kv_dtype, .model = f->model,
                             .api_key_env = f->key_env, .concurrency = f->concurrency, .timeout_s = f->timeout,
                             .max_retries = f->retries};
    struct dsm_err err = {0};
    if (lm_open(f->backend, &o, out, &err)) return cli_fail(cmd, &err);
    return 0;
}
