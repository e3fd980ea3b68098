/* lm.h - the language-model interface the roles talk to: "sample n completions of these chat
 * prompts with these settings" -> texts, finish reasons, token log-probs. Roles never know which
 * implementation they hold:
 *   native:DIR   our engine (common/engine.h) on a Hugging Face model directory: the chat format
 *                renders the messages, the tokenizer encodes them, the batched engine samples;
 *   http:URL     an OpenAI-compatible server (vLLM, SGLang, llama.cpp server, a hosted API):
 *                POST URL/v1/chat/completions with n, temperature, top_p, max_tokens, seed,
 *                logprobs, stop; timeouts, retries with exponential backoff on 429/5xx and
 *                transport errors, a limit on requests in flight, an API key from the environment.
 *
 * One call takes many requests (each its own messages and settings) so that a service can batch
 * the jobs it claimed: the native engine decodes them together, the http client sends them
 * concurrently. Each request succeeds or fails on its own (its status and message in its
 * result); the call itself fails only for a bad argument.
 *
 * Thread safety: lm_sample may be called from several threads on one handle. The http client
 * then shares the in-flight limit among them; the native engine runs one call at a time (callers
 * wait). The API key is read once when the handle is opened and never logged or put in an error.
 */
#ifndef DSM_LM_H
#define DSM_LM_H

#include <stddef.h>
#include <stdint.h>

#include "common/chat.h"
#include "common/err.h"

struct dsm_lm;

/* Sampling settings of one request. */
struct lm_settings {
    int n;                   /* completions, >= 1 */
    float temperature;       /* >= 0; 0 = greedy */
    float top_p;             /* (0, 1]; 1 = off */
    int top_k;               /* 0 = off (http: sent as "top_k" only when > 0, a vLLM/SGLang extension) */
    int max_tokens;          /* new tokens at most, >= 1 */
    uint64_t seed;           /* native: completion i uses seed + i; http: sent as "seed" */
    int logprobs;            /* 1: return per-token log-probs */
    const char *const *stop; /* stop strings (borrowed), n_stop of them */
    int n_stop;
};

/* Fill s with the defaults: n 1, temperature 1, top_p 1, top_k 0, max_tokens 1024, seed 0, no
 * log-probs, no stop strings. */
void lm_settings_default(struct lm_settings *s);

struct lm_request {
    const struct chat_msg *msgs; /* borrowed for the call */
    size_t n_msgs;               /* >= 1 */
    struct lm_settings s;
};

enum lm_finish { LM_FINISH_STOP = 0, LM_FINISH_LENGTH, LM_FINISH_OTHER };

/* "stop", "length", "other". */
const char *lm_finish_name(enum lm_finish f);

struct lm_completion {
    char *text;              /* owned by the result; NUL-terminated */
    size_t text_len;
    enum lm_finish finish;   /* only LM_FINISH_STOP outputs may be scored */
    char finish_raw[24];     /* the server's or engine's word, e.g. "content_filter" */
    float *logprobs;         /* n_tokens of them when asked for and available, else NULL */
    int32_t *ids;            /* native only: the generated ids; NULL for http */
    int n_tokens;            /* tokens generated (-1 when unknown) */
    uint64_t seed;           /* the seed this completion was sampled with (http: the request's) */
};

struct lm_result {
    int status;              /* DSM_OK, or why this request failed */
    char error[512];         /* the message when status != DSM_OK */
    struct lm_completion *c; /* n completions (s.n of the request) when status == DSM_OK */
    int n;
    long prompt_tokens;      /* as counted by the engine or reported by the server; -1 unknown */
    long completion_tokens;
    int attempts;            /* http: requests sent for it (retries included); native: 1 */
    int cancelled;           /* 1 when lm_set_cancel's flag cut this request short */
    double seconds;          /* wall time from the first send to the last byte */
};

/* Free what a result owns and zero it; NULL is fine. */
void lm_result_free(struct lm_result *r);

/* Sample every request of reqs[0..nreq) into results[0..nreq) (the caller's array; each is
 * overwritten and must later be released with lm_result_free). Errors: DSM_EINVAL for a bad
 * argument (naming the request and the setting) -- then nothing was sent and every results[i]
 * is zeroed. Otherwise DSM_OK, with per-request status. */
int lm_sample(struct dsm_lm *lm, const struct lm_request *reqs, int nreq, struct lm_result *results,
              struct dsm_err *err);

/* Cancellation for a clean shutdown (a service's SIGTERM): once *flag is non-zero, http
 * transfers in progress are aborted, nothing is retried or sent any more, and native runs stop
 * at the next finished completion (the engine has no finer hook). Requests cut short fail with
 * status DSM_EIO, `cancelled` set and the message "cancelled". flag is borrowed (a
 * `volatile sig_atomic_t` a signal handler sets is typical); NULL turns it off. Set it before
 * calling lm_sample, not during. */
void lm_set_cancel(struct dsm_lm *lm, const volatile int *flag);

/* The sampling provenance of one request as a new JSON object, for a row's `sampling` column:
 * {"backend", "model", "prompt" (template_id, may be NULL), "n", "temperature", "top_p", "top_k",
 * "max_tokens", "seed", "stop"}; temperature and top_p as the doubles of their shortest decimals,
 * so that a dump with JSON_REAL_PRECISION(15) writes 0.7 (jansson's default 17 digits would
 * write 0.69999999999999996). NULL when out of memory. */
struct json_t;
struct json_t *lm_provenance_json(const struct dsm_lm *lm, const struct lm_settings *s, const char *template_id);

/* ---- opening ----------------------------------------------------------------------------- */

struct lm_open_opts {
    /* native */
    const char *device;       /* "auto" (default), "cpu", "cuda", "ref" */
    int threads;              /* CPU threads; 0 = all cores */
    const char *chat_format;  /* override the model's chat format (chat.h names); NULL = detect */
    int max_context;          /* prompt + new tokens at most per sequence; 0 = 4096 */
    int max_batch;            /* sequences decoded together; 0 = 64 */
    size_t kv_budget_bytes;   /* 0 = 1 GiB */
    const char *kv_dtype;     /* KV cache: "f32" (NULL, the default) or "f16" (half the memory) */
    /* http */
    const char *model;        /* the "model" field; NULL = ask the server (GET /v1/models, first id) */
    const char *api_key_env;  /* environment variable holding the API key; NULL = "DSM_API_KEY";
                               * unset or empty = no Authorization header */
    int concurrency;          /* requests in flight per handle; 0 = 8 */
    double connect_timeout_s; /* 0 = 10 */
    double timeout_s;         /* one request, start to end; 0 = 600 */
    int max_retries;          /* on 429, 5xx and transport errors; 0 = 5, -1 = none */
    double backoff_s;         /* first retry delay, doubled each time, jittered, capped; 0 = 1 */
    double backoff_max_s;     /* 0 = 60 */
};

/* Open a backend named by spec: "native:DIR" or "http:URL" (or the URL alone; URL = http[s]://host[:port][/path];
 * "/v1/chat/completions" is appended unless the path already ends with "/chat/completions", and
 * "/chat/completions" alone when it ends with "/v1"). opts may be NULL. Errors: DSM_EINVAL for a
 * bad spec or option, the native loader's errors (missing model, bad tokenizer), DSM_ENET when the
 * http server cannot be asked for its model name. The caller destroys *out. */
int lm_open(const char *spec, const struct lm_open_opts *opts, struct dsm_lm **out, struct dsm_err *err);

/* The same, one implementation each (what lm_open dispatches to). */
int lm_open_native(const char *dir, const struct lm_open_opts *opts, struct dsm_lm **out, struct dsm_err *err);
int lm_open_http(const char *url, const struct lm_open_opts *opts, struct dsm_lm **out, struct dsm_err *err);

void lm_destroy(struct dsm_lm *lm);

/* "native" or "http". */
const char *lm_kind(const struct dsm_lm *lm);

/* What produced the samples, for provenance: the model directory (native) or the server's model
 * name (http). Borrowed, lives as long as lm. */
const char *lm_model_name(const struct dsm_lm *lm);

/* ---- implementation table (lm.c dispatches through it) ------------------------------------ */

struct lm_vtable {
    const char *kind;
    int (*sample)(struct dsm_lm *lm, const struct lm_request *reqs, int nreq, struct lm_result *results,
                  struct dsm_err *err);
    void (*destroy)(struct dsm_lm *lm);
    const char *(*model_name)(const struct dsm_lm *lm);
};

/* Every implementation's handle starts with this. */
struct dsm_lm {
    const struct lm_vtable *vt;
    const volatile int *cancel; /* lm_set_cancel; NULL = never */
};

#endif
