/* lm_http.c - the lm interface on an OpenAI-compatible server through libcurl; see lm.h.
 *
 * Easy handles are pooled per lm handle (up to `concurrency` idle ones), so connections are kept
 * alive and reused across requests and calls (no new TCP/TLS handshake each time).
 * Each request of a call is one POST to .../chat/completions (more when the server returns fewer
 * choices than asked: the rest is asked for again with the seed moved on by the count received).
 * A call runs min(concurrency, requests) worker threads; a per-handle counter caps the requests
 * in flight across all calls. Retries: HTTP 429 and 5xx, and transport failures (refused, reset,
 * timed out), up to max_retries times, waiting Retry-After when the server says so, else
 * backoff * 2^attempt with jitter, capped. Other statuses fail at once with the server's message.
 * The API key lives only in the Authorization header list and is wiped when the handle is freed.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/lm.h"
#include "common/log.h"
#include "common/util.h"

#define MAX_RESPONSE_BYTES ((size_t)256 << 20)

struct lm_http {
    struct dsm_lm base;
    char *url;        /* .../chat/completions */
    char *models_url; /* .../models */
    char *model;
    char *auth;       /* "Authorization: Bearer KEY" or NULL (secret: never logged) */
    int concurrency, max_retries;
    long connect_timeout_ms, timeout_ms;
    double backoff_s, backoff_max_s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int in_flight;
    CURL **pool; /* idle easy handles (their connections stay open for reuse), under mu */
    int n_pool;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- one HTTP exchange ---------------------------------------------------------------------- */

struct body {
    char *p;
    size_t n, cap;
    int too_big;
};

static size_t on_write(char *data, size_t size, size_t nmemb, void *user) {
    struct body *b = user;
    size_t n = size * nmemb;
    if (b->n + n + 1 > MAX_RESPONSE_BYTES) {
        b->too_big = 1;
        return 0;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return 0;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = 0;
    return n;
}

/* Retry-After in seconds (the delta form; an HTTP date is ignored). */
static size_t on_header(char *data, size_t size, size_t nmemb, void *user) {
    size_t n = size * nmemb;
    double *retry_after = user;
    if (n > 12 && !strncasecmp(data, "Retry-After:", 12)) {
        char tmp[64];
        size_t m = n - 12 < sizeof tmp - 1 ? n - 12 : sizeof tmp - 1;
        memcpy(tmp, data + 12, m);
        tmp[m] = 0;
        char *end = NULL;
        double v = strtod(tmp, &end);
        if (end != tmp && v >= 0) *retry_after = v;
    }
    return n;
}

static int cancelled(const struct lm_http *h) { return h->base.cancel && *h->base.cancel; }

/* Progress callback: a non-zero return aborts the transfer (CURLE_ABORTED_BY_CALLBACK). */
static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    return cancelled(user);
}

static void slot_take(struct lm_http *h) {
    pthread_mutex_lock(&h->mu);
    while (h->in_flight >= h->concurrency) pthread_cond_wait(&h->cv, &h->mu);
    h->in_flight++;
    pthread_mutex_unlock(&h->mu);
}

static void slot_give(struct lm_http *h) {
    pthread_mutex_lock(&h->mu);
    h->in_flight--;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* An easy handle from the pool (keeping its open connection), or a new one; NULL when out of memory. */
static CURL *handle_get(struct lm_http *h) {
    CURL *c = NULL;
    pthread_mutex_lock(&h->mu);
    if (h->n_pool > 0) c = h->pool[--h->n_pool];
    pthread_mutex_unlock(&h->mu);
    return c ? c : curl_easy_init();
}

static void handle_put(struct lm_http *h, CURL *c) {
    pthread_mutex_lock(&h->mu);
    if (h->n_pool < h->concurrency) {
        h->pool[h->n_pool++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&h->mu);
    if (c) curl_easy_cleanup(c);
}

static void sleep_s(double s) {
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

/* Per-thread jitter in [0.5, 1). */
static double jitter(unsigned *state) {
    *state = *state * 1103515245u + 12345u;
    return 0.5 + 0.5 * ((*state >> 8) & 0xffff) / 65536.0;
}

/* The server's error message from a JSON body ({"error": {"message": ...}} or {"error": "..."}
 * or {"message": ...}), else the start of the body. */
static void server_message(const char *body, size_t n, char *out, size_t cap) {
    out[0] = 0;
    if (!body || !n) return;
    json_error_t je;
    json_t *j = json_loadb(body, n, 0, &je);
    const json_t *e = j ? json_object_get(j, "error") : NULL;
    const json_t *m = json_is_object(e) ? json_object_get(e, "message") : json_is_string(e) ? e : NULL;
    if (!m && j) m = json_object_get(j, "message");
    if (json_is_string(m)) snprintf(out, cap, "%.300s", json_string_value(m));
    else snprintf(out, cap, "%.200s", body);
    json_decref(j);
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

/* POST body (or GET when body is NULL) to url with retries. On DSM_OK *resp holds the 2xx body
 * (caller frees). Counts attempts in *attempts. */
static int http_exchange(struct lm_http *h, const char *url, const char *body, unsigned *rng, char **resp,
                         int *attempts, struct dsm_err *err) {
    *resp = NULL;
    CURL *c = handle_get(h);
    if (!c) return dsm_errf(err, DSM_ENOMEM, "cannot create a curl handle");
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    if (hdr && h->auth) {
        struct curl_slist *t = curl_slist_append(hdr, h->auth);
        if (!t) curl_slist_free_all(hdr);
        hdr = t;
    }
    if (!hdr) {
        handle_put(h, c);
        return dsm_errf(err, DSM_ENOMEM, "out of memory building the request headers");
    }
    int rc = DSM_ENET;
    for (int attempt = 0;; attempt++) {
        struct body b = {0};
        double retry_after = -1;
        char cerr[CURL_ERROR_SIZE] = {0};
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        if (body) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        }
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &retry_after);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms);
        curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        if (cancelled(h)) {
            rc = dsm_errf(err, DSM_EIO, "cancelled");
            break;
        }
        slot_take(h);
        CURLcode cc = curl_easy_perform(c);
        slot_give(h);
        (*attempts)++;
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        int retry = 0;
        if (cc == CURLE_OK && status >= 200 && status < 300) {
            *resp = b.p ? b.p : strdup("");
            rc = *resp ? DSM_OK : dsm_errf(err, DSM_ENOMEM, "out of memory");
            break;
        }
        if (cc == CURLE_ABORTED_BY_CALLBACK || cancelled(h)) {
            free(b.p);
            rc = dsm_errf(err, DSM_EIO, "cancelled");
            break;
        }
        if (cc != CURLE_OK) {
            if (b.too_big) {
                free(b.p);
                rc = dsm_errf(err, DSM_ENET, "%s: the response is larger than %zu MB", url, MAX_RESPONSE_BYTES >> 20);
                break;
            }
            retry = cc != CURLE_UNSUPPORTED_PROTOCOL && cc != CURLE_URL_MALFORMAT && cc != CURLE_OUT_OF_MEMORY;
            rc = dsm_errf(err, DSM_ENET, "%s: %s", url, cerr[0] ? cerr : curl_easy_strerror(cc));
        } else {
            char msg[400];
            server_message(b.p, b.n, msg, sizeof msg);
            retry = status == 429 || status >= 500;
            rc = dsm_errf(err, status == 400 || status == 404 || status == 422 ? DSM_EINVAL : DSM_ENET,
                          "%s: HTTP %ld%s%s", url, status, msg[0] ? ": " : "", msg);
        }
        free(b.p);
        if (!retry || attempt >= h->max_retries) {
            if (retry) dsm_err_prefix(err, rc, "gave up after %d attempts", attempt + 1);
            break;
        }
        double wait = retry_after >= 0 ? retry_after : h->backoff_s * pow(2.0, attempt) * jitter(rng);
        if (wait > h->backoff_max_s) wait = h->backoff_max_s;
        LOG_DEBUG("retry %d in %.2f s: %s", attempt + 1, wait, err ? err->msg : "");
        for (double slept = 0; slept < wait && !cancelled(h); slept += 0.05) sleep_s(wait - slept < 0.05 ? wait - slept : 0.05);
    }
    curl_easy_reset(c); /* drop pointers to this call's buffers; the connection stays open */
    curl_slist_free_all(hdr);
    handle_put(h, c);
    return rc;
}

/* ---- chat completions ------------------------------------------------------------------------ */

static char *request_body(const struct lm_http *h, const struct lm_request *q, int n, uint64_t seed) {
    json_t *msgs = json_array();
    for (size_t i = 0; msgs && i < q->n_msgs; i++)
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", q->msgs[i].role, "content", q->msgs[i].content));
    json_t *o = json_pack("{s:s, s:o, s:i, s:f, s:f, s:i, s:I, s:b}", "model", h->model, "messages", msgs, "n", n,
                          "temperature", (double)q->s.temperature, "top_p", (double)q->s.top_p, "max_tokens",
                          q->s.max_tokens, "seed", (json_int_t)(seed & 0x7fffffffffffffffull), "logprobs",
                          q->s.logprobs);
    if (!o) return NULL;
    if (q->s.top_k > 0) json_object_set_new(o, "top_k", json_integer(q->s.top_k));
    if (q->s.n_stop > 0) {
        json_t *st = json_array();
        for (int k = 0; k < q->s.n_stop; k++) json_array_append_new(st, json_string(q->s.stop[k]));
        json_object_set_new(o, "stop", st);
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(7)); /* float settings: 0.7, not 0.699999988 */
    json_decref(o);
    return s;
}

/* The text of a choice: content, with the server's separated reasoning (reasoning_content or
 * reasoning) put back in front as <think>...</think> so that the raw output keeps it. */
static char *choice_text(const json_t *msg, size_t *len) {
    const json_t *content = json_object_get(msg, "content");
    const json_t *reason = json_object_get(msg, "reasoning_content");
    if (!json_is_string(reason)) reason = json_object_get(msg, "reasoning");
    const char *cs = json_is_string(content) ? json_string_value(content) : "";
    size_t cl = json_is_string(content) ? json_string_length(content) : 0;
    size_t rl = json_is_string(reason) ? json_string_length(reason) : 0;
    size_t n = cl + (rl ? rl + 18 : 0);
    char *t = malloc(n + 1);
    if (!t) return NULL;
    size_t k = 0;
    if (rl) {
        memcpy(t, "<think>\n", 8);
        memcpy(t + 8, json_string_value(reason), rl);
        memcpy(t + 8 + rl, "\n</think>\n", 10);
        k = rl + 18;
    }
    memcpy(t + k, cs, cl);
    t[n] = 0;
    *len = n;
    return t;
}

/* Append the choices of one response to r (at most want - r->n of them). */
static int take_choices(const char *url, const char *resp, const struct lm_request *q, struct lm_result *r, int want,
                        uint64_t seed, struct dsm_err *err) {
    json_error_t je;
    json_t *j = json_loads(resp, 0, &je);
    int rc = DSM_OK;
    const json_t *choices = json_is_object(j) ? json_object_get(j, "choices") : NULL;
    if (!json_is_array(choices) || json_array_size(choices) == 0) {
        rc = dsm_errf(err, DSM_ENET, "%s: malformed response (%s): %.120s", url,
                      !j ? "not JSON" : !json_is_array(choices) ? "no \"choices\" list" : "no choices", resp);
        goto done;
    }
    for (size_t i = 0; i < json_array_size(choices) && r->n < want; i++) {
        const json_t *ch = json_array_get(choices, i), *msg = json_object_get(ch, "message");
        if (!json_is_object(msg)) {
            rc = dsm_errf(err, DSM_ENET, "%s: malformed response: choice %zu has no \"message\" object", url, i);
            goto done;
        }
        struct lm_completion *o = &r->c[r->n];
        memset(o, 0, sizeof *o);
        if (!(o->text = choice_text(msg, &o->text_len))) {
            rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
            goto done;
        }
        r->n++;
        const json_t *fr = json_object_get(ch, "finish_reason");
        const char *f = json_is_string(fr) ? json_string_value(fr) : "null";
        snprintf(o->finish_raw, sizeof o->finish_raw, "%s", f);
        o->finish = !strcmp(f, "stop") ? LM_FINISH_STOP : !strcmp(f, "length") ? LM_FINISH_LENGTH : LM_FINISH_OTHER;
        o->seed = seed;
        o->n_tokens = -1;
        const json_t *lp = json_object_get(json_object_get(ch, "logprobs"), "content");
        if (q->s.logprobs && json_is_array(lp)) {
            size_t nt = json_array_size(lp);
            o->logprobs = malloc(sizeof *o->logprobs * (nt ? nt : 1));
            if (!o->logprobs) {
                rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
                goto done;
            }
            for (size_t t = 0; t < nt; t++) {
                const json_t *v = json_object_get(json_array_get(lp, t), "logprob");
                if (!json_is_number(v)) {
                    rc = dsm_errf(err, DSM_ENET, "%s: malformed response: choice %zu, token %zu has no logprob", url,
                                  i, t);
                    goto done;
                }
                o->logprobs[t] = (float)json_number_value(v);
            }
            o->n_tokens = (int)nt;
        }
    }
    const json_t *usage = json_object_get(j, "usage");
    const json_t *pt = json_object_get(usage, "prompt_tokens"), *ct = json_object_get(usage, "completion_tokens");
    if (json_is_integer(pt)) r->prompt_tokens = (long)json_integer_value(pt);
    if (json_is_integer(ct)) r->completion_tokens += (long)json_integer_value(ct);
done:
    json_decref(j);
    return rc;
}

static void run_one(struct lm_http *h, const struct lm_request *q, struct lm_result *r, unsigned *rng) {
    struct dsm_err e = {0};
    double t0 = dsm_now();
    int rc = DSM_OK;
    r->prompt_tokens = -1;
    if (!(r->c = calloc((size_t)q->s.n, sizeof *r->c))) {
        rc = dsm_errf(&e, DSM_ENOMEM, "out of memory");
        goto done;
    }
    while (r->n < q->s.n) {
        int before = r->n;
        uint64_t seed = q->s.seed + (uint64_t)r->n;
        char *body = request_body(h, q, q->s.n - r->n, seed), *resp = NULL;
        if (!body) {
            rc = dsm_errf(&e, DSM_ENOMEM, "out of memory building the request");
            break;
        }
        rc = http_exchange(h, h->url, body, rng, &resp, &r->attempts, &e);
        free(body);
        if (!rc) rc = take_choices(h->url, resp, q, r, q->s.n, seed, &e);
        free(resp);
        if (rc) break;
        if (r->n == before) {
            rc = dsm_errf(&e, DSM_ENET, "%s returned no choices", h->url);
            break;
        }
    }
done:
    r->seconds = dsm_now() - t0;
    if (rc) {
        int attempts = r->attempts;
        lm_result_free(r);
        r->status = rc;
        r->attempts = attempts;
        r->cancelled = cancelled(h);
        snprintf(r->error, sizeof r->error, "%s", e.msg);
    }
}

struct call {
    struct lm_http *h;
    const struct lm_request *reqs;
    struct lm_result *results;
    int nreq, next;
    pthread_mutex_t mu;
};

static void *worker(void *arg) {
    struct call *k = arg;
    unsigned rng = (unsigned)(uintptr_t)&rng ^ (unsigned)time(NULL);
    for (;;) {
        pthread_mutex_lock(&k->mu);
        int i = k->next < k->nreq ? k->next++ : -1;
        pthread_mutex_unlock(&k->mu);
        if (i < 0) break;
        run_one(k->h, &k->reqs[i], &k->results[i], &rng);
    }
    return NULL;
}

static int http_sample(struct dsm_lm *base, const struct lm_request *reqs, int nreq, struct lm_result *results,
                       struct dsm_err *err) {
    struct lm_http *h = (struct lm_http *)base;
    struct call k = {h, reqs, results, nreq, 0, PTHREAD_MUTEX_INITIALIZER};
    int nt = nreq < h->concurrency ? nreq : h->concurrency;
    pthread_t tid[64];
    if (nt > (int)DSM_ARRAY_LEN(tid)) nt = (int)DSM_ARRAY_LEN(tid);
    int started = 0;
    for (int t = 1; t < nt; t++) {
        if (pthread_create(&tid[started], NULL, worker, &k)) break;
        started++;
    }
    worker(&k); /* the calling thread works too */
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    pthread_mutex_destroy(&k.mu);
    (void)err;
    return DSM_OK;
}

/* ---- handle ---------------------------------------------------------------------------------- */

static void http_destroy(struct dsm_lm *base) {
    struct lm_http *h = (struct lm_http *)base;
    if (h->auth) {
        explicit_bzero(h->auth, strlen(h->auth));
        free(h->auth);
    }
    for (int i = 0; i < h->n_pool; i++) curl_easy_cleanup(h->pool[i]);
    free(h->pool);
    free(h->url);
    free(h->models_url);
    free(h->model);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}

static const char *http_model_name(const struct dsm_lm *base) { return ((const struct lm_http *)base)->model; }

static const struct lm_vtable http_vt = {
    .kind = "http", .sample = http_sample, .destroy = http_destroy, .model_name = http_model_name};

/* url + suffix into a new string. */
static char *join(const char *a, size_t alen, const char *b) {
    size_t bl = strlen(b);
    char *s = malloc(alen + bl + 1);
    if (!s) return NULL;
    memcpy(s, a, alen);
    memcpy(s + alen, b, bl + 1);
    return s;
}

static int ends_with(const char *s, size_t n, const char *suf) {
    size_t m = strlen(suf);
    return n >= m && !memcmp(s + n - m, suf, m);
}

/* The chat-completions and models endpoints for a base URL (see lm_open). */
static int endpoints(const char *url, char **chat, char **models) {
    size_t n = strlen(url);
    while (n && url[n - 1] == '/') n--;
    if (ends_with(url, n, "/chat/completions")) {
        size_t b = n - strlen("/chat/completions");
        *chat = join(url, n, "");
        *models = join(url, b, "/models");
    } else if (ends_with(url, n, "/v1")) {
        *chat = join(url, n, "/chat/completions");
        *models = join(url, n, "/models");
    } else {
        *chat = join(url, n, "/v1/chat/completions");
        *models = join(url, n, "/v1/models");
    }
    return *chat && *models ? DSM_OK : DSM_ENOMEM;
}

static int ask_model(struct lm_http *h, struct dsm_err *err) {
    char *resp = NULL;
    int attempts = 0;
    unsigned rng = 1;
    int rc = http_exchange(h, h->models_url, NULL, &rng, &resp, &attempts, err);
    if (rc) return dsm_err_prefix(err, rc, "asking the server for its model name (or give it: --model-name)");
    json_error_t je;
    json_t *j = json_loads(resp, 0, &je);
    const json_t *id = json_object_get(json_array_get(json_object_get(j, "data"), 0), "id");
    if (json_is_string(id)) h->model = strdup(json_string_value(id));
    else rc = dsm_errf(err, DSM_ENET, "%s: no model id in the answer (give the model name)", h->models_url);
    if (!rc && !h->model) rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
    json_decref(j);
    free(resp);
    return rc;
}

int lm_open_http(const char *url, const struct lm_open_opts *opts, struct dsm_lm **out, struct dsm_err *err) {
    static const struct lm_open_opts defaults = {0};
    if (!opts) opts = &defaults;
    *out = NULL;
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
        return dsm_errf(err, DSM_EINVAL, "lm http: '%s' is not an http:// or https:// URL", url);
    if (opts->concurrency < 0 || opts->max_retries < -1 || opts->timeout_s < 0 || opts->connect_timeout_s < 0 ||
        opts->backoff_s < 0 || opts->backoff_max_s < 0)
        return dsm_errf(err, DSM_EINVAL, "lm http: concurrency, timeouts and backoff must be >= 0 (max_retries >= -1)");
    pthread_once(&curl_once, curl_init_once);
    struct lm_http *h = calloc(1, sizeof *h);
    if (!h) return dsm_errf(err, DSM_ENOMEM, "out of memory");
    h->base.vt = &http_vt;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->concurrency = opts->concurrency ? opts->concurrency : 8;
    h->max_retries = opts->max_retries == 0 ? 5 : opts->max_retries < 0 ? 0 : opts->max_retries;
    h->connect_timeout_ms = (long)((opts->connect_timeout_s ? opts->connect_timeout_s : 10) * 1000);
    h->timeout_ms = (long)((opts->timeout_s ? opts->timeout_s : 600) * 1000);
    h->backoff_s = opts->backoff_s ? opts->backoff_s : 1.0;
    h->backoff_max_s = opts->backoff_max_s ? opts->backoff_max_s : 60.0;
    int rc = DSM_OK;
    if (!(h->pool = calloc((size_t)h->concurrency, sizeof *h->pool)) || endpoints(url, &h->url, &h->models_url)) {
        rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
        goto fail;
    }
    const char *env = opts->api_key_env ? opts->api_key_env : "DSM_API_KEY";
    const char *key = getenv(env);
    if (key && key[0]) {
        if (strpbrk(key, "\r\n")) {
            rc = dsm_errf(err, DSM_EINVAL, "lm http: the API key in $%s contains a line break", env);
            goto fail;
        }
        if (!(h->auth = join("Authorization: Bearer ", 22, key))) {
            rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
            goto fail;
        }
    }
    if (opts->model) {
        if (!(h->model = strdup(opts->model))) {
            rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
            goto fail;
        }
    } else if ((rc = ask_model(h, err))) {
        goto fail;
    }
    *out = &h->base;
    return DSM_OK;
fail:
    http_destroy(&h->base);
    return rc;
}
