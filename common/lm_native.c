/* lm_native.c - the lm interface on our own engine: chat format -> tokenizer -> batched engine
 * (common/engine.h). One engine per handle; calls are serialised by a mutex. See lm.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/chat.h"
#include "common/config.h"
#include "common/engine.h"
#include "common/lm.h"
#include "common/model.h"
#include "common/tokenizer.h"
#include "common/util.h"
#include "kernels/backend.h"

struct lm_native {
    struct dsm_lm base;
    char *dir;
    struct dsm_backend *be;
    struct dsm_model *m;
    struct dsm_tokenizer *tok;
    const struct chat_format *fmt;
    struct dsm_engine *eng;
    int context; /* prompt + new tokens at most */
    pthread_mutex_t mu;
};

/* Where the engine's completions go: request index in the run -> result index. */
struct collect {
    struct lm_result *results;
    const struct lm_request *reqs;
    const int *map;
    const volatile int *cancel;
    int failed;    /* out of memory while copying */
    int cancelled; /* stopped by the cancel flag */
};

static int on_completion(void *user, const struct dsm_completion *c) {
    struct collect *k = user;
    if (k->cancel && *k->cancel) {
        k->cancelled = 1;
        return 1;
    }
    int i = k->map[c->request];
    struct lm_result *r = &k->results[i];
    struct lm_completion *o = &r->c[c->sample];
    o->text = malloc(c->text_len + 1);
    o->ids = malloc(sizeof *o->ids * (size_t)(c->n_ids ? c->n_ids : 1));
    if (k->reqs[i].s.logprobs) o->logprobs = malloc(sizeof *o->logprobs * (size_t)(c->n_ids ? c->n_ids : 1));
    if (!o->text || !o->ids || (k->reqs[i].s.logprobs && !o->logprobs)) {
        k->failed = 1;
        return 1;
    }
    memcpy(o->text, c->text ? c->text : "", c->text_len);
    o->text[c->text_len] = 0;
    o->text_len = c->text_len;
    memcpy(o->ids, c->ids, sizeof *o->ids * (size_t)c->n_ids);
    if (o->logprobs) memcpy(o->logprobs, c->logprobs, sizeof *o->logprobs * (size_t)c->n_ids);
    o->n_tokens = c->n_ids;
    o->seed = c->seed;
    o->finish = !strcmp(c->finish_reason, "stop") ? LM_FINISH_STOP
              : !strcmp(c->finish_reason, "length") ? LM_FINISH_LENGTH : LM_FINISH_OTHER;
    snprintf(o->finish_raw, sizeof o->finish_raw, "%s", c->finish_reason);
    r->completion_tokens += c->n_ids;
    return 0;
}

static void fail_result(struct lm_result *r, int status, const char *msg) {
    lm_result_free(r);
    r->status = status;
    snprintf(r->error, sizeof r->error, "%s", msg);
}

static int native_sample(struct dsm_lm *base, const struct lm_request *reqs, int nreq, struct lm_result *results,
                         struct dsm_err *err) {
    struct lm_native *lm = (struct lm_native *)base;
    struct dsm_gen_request *gr = calloc((size_t)nreq, sizeof *gr);
    int32_t **ids = calloc((size_t)nreq, sizeof *ids);
    const char ***stops = calloc((size_t)nreq, sizeof *stops);
    int *map = calloc((size_t)nreq, sizeof *map);
    int ng = 0, rc = DSM_OK;
    if (!gr || !ids || !stops || !map) {
        rc = dsm_errf(err, DSM_ENOMEM, "lm native: out of memory");
        goto done;
    }
    for (int i = 0; i < nreq; i++) {
        const struct lm_request *q = &reqs[i];
        struct lm_result *r = &results[i];
        struct dsm_err e = {0};
        size_t nids = 0;
        r->attempts = 1;
        r->prompt_tokens = -1;
        int st = chat_encode(lm->fmt, lm->tok, q->msgs, q->n_msgs, 0, &ids[i], &nids, &e);
        if (!st && (long)nids + q->s.max_tokens > lm->context)
            st = dsm_errf(&e, DSM_EINVAL, "prompt of %zu tokens + max_tokens %d exceeds the context of %d tokens", nids,
                          q->s.max_tokens, lm->context);
        if (!st && nids == 0) st = dsm_errf(&e, DSM_EINVAL, "the prompt encodes to no tokens");
        const char *fstop = lm->fmt->stop && lm->fmt->stop[0] ? lm->fmt->stop : NULL;
        if (!st && !(stops[i] = calloc((size_t)q->s.n_stop + 1, sizeof *stops[i])))
            st = dsm_errf(&e, DSM_ENOMEM, "out of memory");
        if (!st && !(r->c = calloc((size_t)q->s.n, sizeof *r->c))) st = dsm_errf(&e, DSM_ENOMEM, "out of memory");
        if (st) {
            fail_result(r, st, e.msg);
            continue;
        }
        int ns = 0;
        for (int k = 0; k < q->s.n_stop; k++) stops[i][ns++] = q->s.stop[k];
        if (fstop) stops[i][ns++] = fstop;
        r->n = q->s.n;
        r->prompt_tokens = (long)nids;
        gr[ng] = (struct dsm_gen_request){ids[i], (int)nids, q->s.n,
                                          {q->s.temperature, q->s.top_k, q->s.top_p, q->s.max_tokens, q->s.seed,
                                           stops[i], ns, 0}};
        map[ng++] = i;
    }
    if (ng > 0) {
        struct collect k = {results, reqs, map, base->cancel, 0, 0};
        struct dsm_err e = {0};
        double t0 = dsm_now();
        pthread_mutex_lock(&lm->mu);
        int st = base->cancel && *base->cancel ? DSM_EIO : DSM_OK;
        if (st) k.cancelled = 1;
        else st = dsm_engine_run(lm->eng, gr, ng, on_completion, &k, &e);
        pthread_mutex_unlock(&lm->mu);
        double dt = dsm_now() - t0;
        if (k.failed) st = dsm_errf(&e, DSM_ENOMEM, "out of memory copying completions");
        if (k.cancelled) st = dsm_errf(&e, DSM_EIO, "cancelled");
        for (int g = 0; g < ng; g++) {
            struct lm_result *r = &results[map[g]];
            if (st) fail_result(r, st, e.msg);
            else r->seconds = dt;
            r->cancelled = k.cancelled;
        }
    }
done:
    for (int i = 0; ids && i < nreq; i++) free(ids[i]);
    for (int i = 0; stops && i < nreq; i++) free(stops[i]);
    free(ids);
    free(stops);
    free(gr);
    free(map);
    return rc;
}

static void native_destroy(struct dsm_lm *base) {
    struct lm_native *lm = (struct lm_native *)base;
    dsm_engine_destroy(lm->eng);
    dsm_model_destroy(lm->m);
    dsm_backend_destroy(lm->be);
    tok_destroy(lm->tok);
    pthread_mutex_destroy(&lm->mu);
    free(lm->dir);
    free(lm);
}

static const char *native_model_name(const struct dsm_lm *base) { return ((const struct lm_native *)base)->dir; }

static const struct lm_vtable native_vt = {
    .kind = "native", .sample = native_sample, .destroy = native_destroy, .model_name = native_model_name};

int lm_open_native(const char *dir, const struct lm_open_opts *opts, struct dsm_lm **out, struct dsm_err *err) {
    static const struct lm_open_opts defaults = {0};
    if (!opts) opts = &defaults;
    *out = NULL;
    if (opts->max_context < 0 || opts->max_batch < 0 || opts->threads < 0)
        return dsm_errf(err, DSM_EINVAL, "lm native: max_context, max_batch and threads must be >= 0");
    struct lm_native *lm = calloc(1, sizeof *lm);
    if (!lm || !(lm->dir = strdup(dir))) {
        free(lm);
        return dsm_errf(err, DSM_ENOMEM, "lm native: out of memory");
    }
    lm->base.vt = &native_vt;
    pthread_mutex_init(&lm->mu, NULL);
    int rc;
    if ((rc = tok_load_dir(dir, &lm->tok, err))) goto fail;
    if ((rc = chat_format_select(opts->chat_format, lm->tok, dir, &lm->fmt, err))) goto fail;
    struct dsm_model_opts mo = {.max_seq = opts->max_context ? opts->max_context : 4096};
    if ((rc = dsm_backend_open(opts->device ? opts->device : "auto", opts->threads, &lm->be, err))) goto fail;
    if ((rc = dsm_model_load(dir, lm->be, &mo, &lm->m, err))) goto fail;
    int maxpos = dsm_model_config(lm->m)->max_position_embeddings;
    lm->context = maxpos > 0 && maxpos < mo.max_seq ? maxpos : mo.max_seq;
    struct dsm_engine_opts eo = {.max_batch = opts->max_batch, .kv_budget_bytes = opts->kv_budget_bytes};
    if (opts->kv_dtype && (rc = dsm_kv_dtype_parse(opts->kv_dtype, &eo.kv_dtype, err))) goto fail;
    if ((rc = dsm_engine_create(lm->m, lm->tok, &eo, &lm->eng, err))) goto fail;
    *out = &lm->base;
    return DSM_OK;
fail:
    dsm_err_prefix(err, rc, "lm native:%s", dir);
    native_destroy(&lm->base);
    return rc;
}
