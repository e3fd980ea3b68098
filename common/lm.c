/* lm.c - the lm interface: argument checks, results, and dispatch to native or http; see lm.h. */
#include "common/lm.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lm_settings_default(struct lm_settings *s) {
    memset(s, 0, sizeof *s);
    s->n = 1;
    s->temperature = 1.0f;
    s->top_p = 1.0f;
    s->max_tokens = 1024;
}

const char *lm_finish_name(enum lm_finish f) {
    switch (f) {
    case LM_FINISH_STOP: return "stop";
    case LM_FINISH_LENGTH: return "length";
    default: return "other";
    }
}

void lm_result_free(struct lm_result *r) {
    if (!r) return;
    for (int i = 0; r->c && i < r->n; i++) {
        free(r->c[i].text);
        free(r->c[i].logprobs);
        free(r->c[i].ids);
    }
    free(r->c);
    memset(r, 0, sizeof *r);
}

static int check_request(const struct lm_request *q, int i, struct dsm_err *err) {
    const struct lm_settings *s = &q->s;
    if (!q->msgs || q->n_msgs < 1) return dsm_errf(err, DSM_EINVAL, "lm request %d: no messages", i);
    for (size_t m = 0; m < q->n_msgs; m++)
        if (!q->msgs[m].role || !q->msgs[m].content)
            return dsm_errf(err, DSM_EINVAL, "lm request %d: message %zu has no role or content", i, m);
    if (s->n < 1 || s->n > 65536) return dsm_errf(err, DSM_EINVAL, "lm request %d: n = %d (1..65536)", i, s->n);
    if (!(s->temperature >= 0)) return dsm_errf(err, DSM_EINVAL, "lm request %d: temperature %g < 0", i, s->temperature);
    if (!(s->top_p > 0 && s->top_p <= 1)) return dsm_errf(err, DSM_EINVAL, "lm request %d: top_p %g not in (0, 1]", i, s->top_p);
    if (s->top_k < 0) return dsm_errf(err, DSM_EINVAL, "lm request %d: top_k %d < 0", i, s->top_k);
    if (s->max_tokens < 1) return dsm_errf(err, DSM_EINVAL, "lm request %d: max_tokens %d < 1", i, s->max_tokens);
    if (s->n_stop < 0 || (s->n_stop > 0 && !s->stop)) return dsm_errf(err, DSM_EINVAL, "lm request %d: bad stop list", i);
    for (int k = 0; k < s->n_stop; k++)
        if (!s->stop[k] || !s->stop[k][0]) return dsm_errf(err, DSM_EINVAL, "lm request %d: stop string %d is empty", i, k);
    return DSM_OK;
}

int lm_sample(struct dsm_lm *lm, const struct lm_request *reqs, int nreq, struct lm_result *results,
              struct dsm_err *err) {
    if (nreq < 0 || (nreq > 0 && (!reqs || !results)) || !lm)
        return dsm_errf(err, DSM_EINVAL, "lm_sample: bad arguments");
    memset(results, 0, sizeof *results * (size_t)nreq);
    for (int i = 0; i < nreq; i++) {
        int rc = check_request(&reqs[i], i, err);
        if (rc) return rc;
    }
    if (nreq == 0) return DSM_OK;
    return lm->vt->sample(lm, reqs, nreq, results, err);
}

int lm_open(const char *spec, const struct lm_open_opts *opts, struct dsm_lm **out, struct dsm_err *err) {
    *out = NULL;
    if (!spec) return dsm_errf(err, DSM_EINVAL, "lm backend: none given (use native:DIR or http:URL)");
    if (!strncmp(spec, "native:", 7) && spec[7]) return lm_open_native(spec + 7, opts, out, err);
    if (!strncmp(spec, "http://", 7) || !strncmp(spec, "https://", 8)) return lm_open_http(spec, opts, out, err);
    if (!strncmp(spec, "http:", 5) && spec[5]) return lm_open_http(spec + 5, opts, out, err);
    return dsm_errf(err, DSM_EINVAL, "lm backend '%s': expected native:DIR or http:URL (e.g. http:http://localhost:8000)",
                    spec);
}

void lm_destroy(struct dsm_lm *lm) {
    if (lm) lm->vt->destroy(lm);
}

const char *lm_kind(const struct dsm_lm *lm) { return lm->vt->kind; }

const char *lm_model_name(const struct dsm_lm *lm) { return lm->vt->model_name(lm); }

void lm_set_cancel(struct dsm_lm *lm, const volatile int *flag) { lm->cancel = flag; }

/* A float setting as the double of its shortest decimal form (0.7f -> 0.7, not 0.699999988). */
static double setting(float f) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)f);
    return strtod(buf, NULL);
}

json_t *lm_provenance_json(const struct dsm_lm *lm, const struct lm_settings *s, const char *template_id) {
    json_t *stop = json_array();
    for (int i = 0; stop && i < s->n_stop; i++) json_array_append_new(stop, json_string(s->stop[i]));
    return json_pack("{s:s, s:s, s:o, s:i, s:f, s:f, s:i, s:i, s:I, s:o}", "backend", lm_kind(lm), "model",
                     lm_model_name(lm), "prompt", template_id ? json_string(template_id) : json_null(), "n", s->n,
                     "temperature", setting(s->temperature), "top_p", setting(s->top_p), "top_k", s->top_k, "max_tokens",
                     s->max_tokens, "seed", (json_int_t)s->seed, "stop", stop ? stop : json_null());
}
