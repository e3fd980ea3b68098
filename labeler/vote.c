/* vote.c - the SPEC §2 auto-labeling rule and its JSON form; see vote.h. */
#include "labeler/vote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reason_names[LBL_R_COUNT] = {
    [LBL_R_NO_ISSUES] = "no-issues",     [LBL_R_ALL_REJECTED] = "all-issues-rejected",
    [LBL_R_AGREED] = "agreed",           [LBL_R_UNCERTAIN] = "uncertain",
    [LBL_R_NO_ANALYSES] = "no-analyses", [LBL_R_INCOMPLETE] = "incomplete",
};

const char *lbl_reason_name(enum lbl_reason r) {
    return (r >= 0 && r < LBL_R_COUNT) ? reason_names[r] : "unknown";
}

static int score_ok(double s) { return s == 0.0 || s == 0.5 || s == 1.0 || s == LBL_NO_LABEL; }

void lbl_vote_explain(const struct lbl_vote *v, const struct lbl_vote_opts *o, char *buf, size_t cap) {
    switch (v->reason) {
    case LBL_R_NO_ISSUES:
        snprintf(buf, cap, "none of the %d well-formed analyses reports an issue", v->n - v->format_failures);
        break;
    case LBL_R_ALL_REJECTED:
        snprintf(buf, cap, "all %d analyses reporting an issue were rejected by meta-verification", v->issues);
        break;
    case LBL_R_AGREED:
        snprintf(buf, cap, "%d valid analyses give the lowest valid score %g (k = %d)", v->agree, v->lo, o->k);
        break;
    case LBL_R_UNCERTAIN:
        snprintf(buf, cap, "only %d valid analysis(es) give the lowest valid score %g, fewer than k = %d: left for a human",
                 v->agree, v->lo, o->k);
        break;
    case LBL_R_NO_ANALYSES:
        snprintf(buf, cap, "no well-formed analysis among %d", v->n);
        break;
    case LBL_R_INCOMPLETE:
        if (v->incomplete_at >= 0)
            snprintf(buf, cap, "analysis %d reports an issue but has fewer than m = %d meta-verifications",
                     v->incomplete_at, o->m);
        else
            snprintf(buf, cap, "%d analyses given, %d required", v->n, o->n);
        break;
    default: snprintf(buf, cap, "unknown"); break;
    }
}

int lbl_vote_decide(const struct lbl_analysis *a, int na, const struct lbl_vote_opts *o,
                    struct lbl_vote *out, int *valid, struct dsm_err *err) {
    memset(out, 0, sizeof *out);
    out->label = LBL_NO_LABEL;
    out->lo = LBL_NO_LABEL;
    out->incomplete_at = -1;
    out->n = na;
    if (o->k < 1 || o->n < 0 || o->m < 0 || na < 0)
        return dsm_errf(err, DSM_EINVAL, "vote: k must be >= 1 and n, m >= 0 (got n=%d m=%d k=%d)", o->n, o->m, o->k);
    for (int i = 0; i < na; i++) {
        if (!score_ok(a[i].score))
            return dsm_errf(err, DSM_EINVAL, "vote: analysis %d has score %g; scores are 0, 0.5, 1 or null", i,
                            a[i].score);
        if (a[i].n_meta < 0 || (a[i].n_meta > 0 && !a[i].meta))
            return dsm_errf(err, DSM_EINVAL, "vote: analysis %d has a bad meta-verification list", i);
        for (int j = 0; j < a[i].n_meta; j++)
            if (!score_ok(a[i].meta[j]))
                return dsm_errf(err, DSM_EINVAL, "vote: analysis %d, meta-verification %d rates %g; ratings are 0, 0.5, "
                                "1 or null", i, j, a[i].meta[j]);
    }
    for (int i = 0; i < na; i++) {
        int v = 0;
        if (a[i].score == LBL_NO_LABEL) {
            out->format_failures++;
        } else if (a[i].score == 1.0) {
            v = 1;
        } else {
            out->issues++;
            if (o->no_meta) {
                v = 1;
            } else {
                int ones = 0;
                for (int j = 0; j < a[i].n_meta; j++) ones += a[i].meta[j] == 1.0;
                v = 2 * ones > a[i].n_meta;
                if (o->m > 0 && a[i].n_meta < o->m && out->incomplete_at < 0) out->incomplete_at = i;
            }
            if (!v) out->rejected++;
        }
        if (valid) valid[i] = v;
        if (v) {
            out->valid++;
            if (out->lo == LBL_NO_LABEL || a[i].score < out->lo) {
                out->lo = a[i].score;
                out->agree = 1;
            } else if (a[i].score == out->lo) {
                out->agree++;
            }
        }
    }
    if ((o->n > 0 && na < o->n) || out->incomplete_at >= 0) {
        out->reason = LBL_R_INCOMPLETE;
    } else if (na - out->format_failures == 0) {
        out->reason = LBL_R_NO_ANALYSES;
    } else if (out->issues == 0) {
        out->reason = LBL_R_NO_ISSUES;
        out->label = 1.0;
    } else if (out->rejected == out->issues) {
        out->reason = LBL_R_ALL_REJECTED;
        out->label = 1.0;
    } else if (out->agree >= o->k) {
        out->reason = LBL_R_AGREED;
        out->label = out->lo;
    } else {
        out->reason = LBL_R_UNCERTAIN;
    }
    return DSM_OK;
}

/* A score from JSON: a number worth 0, 0.5 or 1, or null. */
static int json_score(const json_t *v, double *s) {
    if (json_is_null(v)) {
        *s = LBL_NO_LABEL;
        return 0;
    }
    if (!json_is_number(v)) return -1;
    double x = json_number_value(v);
    if (x != 0.0 && x != 0.5 && x != 1.0) return -1;
    *s = x;
    return 0;
}

int lbl_vote_input_from_json(const json_t *root, const char *where, struct lbl_analysis **a, int *na,
                             double **meta_store, struct dsm_err *err) {
    *a = NULL;
    *na = 0;
    *meta_store = NULL;
    const json_t *arr = json_is_object(root) ? json_object_get(root, "analyses") : NULL;
    if (!json_is_array(arr))
        return dsm_errf(err, DSM_EINVAL, "%s: expected an object {\"analyses\": [...]}", where);
    size_t n = json_array_size(arr), total = 0;
    if (n > 1000000) return dsm_errf(err, DSM_EINVAL, "%s: %zu analyses is more than the vote takes (1000000)", where, n);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(arr, i), *m = json_is_object(e) ? json_object_get(e, "meta") : NULL;
        if (!json_is_object(e)) return dsm_errf(err, DSM_EINVAL, "%s: analyses[%zu] is not an object", where, i);
        if (!json_object_get(e, "score"))
            return dsm_errf(err, DSM_EINVAL, "%s: analyses[%zu] has no \"score\" (use null for a format failure)", where, i);
        if (m && !json_is_array(m) && !json_is_null(m))
            return dsm_errf(err, DSM_EINVAL, "%s: analyses[%zu].meta must be a list of ratings", where, i);
        total += json_is_array(m) ? json_array_size(m) : 0;
    }
    struct lbl_analysis *out = calloc(n ? n : 1, sizeof *out);
    double *store = calloc(total ? total : 1, sizeof *store);
    if (!out || !store) {
        free(out);
        free(store);
        return dsm_errf(err, DSM_ENOMEM, "%s: out of memory", where);
    }
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(arr, i), *m = json_object_get(e, "meta");
        if (json_score(json_object_get(e, "score"), &out[i].score)) {
            free(out);
            free(store);
            return dsm_errf(err, DSM_EINVAL, "%s: analyses[%zu].score must be 0, 0.5, 1 or null", where, i);
        }
        out[i].meta = store + used;
        out[i].n_meta = json_is_array(m) ? (int)json_array_size(m) : 0;
        for (int j = 0; j < out[i].n_meta; j++)
            if (json_score(json_array_get(m, (size_t)j), &store[used++])) {
                free(out);
                free(store);
                return dsm_errf(err, DSM_EINVAL, "%s: analyses[%zu].meta[%d] must be 0, 0.5, 1 or null", where, i, j);
            }
    }
    *a = out;
    *na = (int)n;
    *meta_store = store;
    return DSM_OK;
}

static json_t *score_json(double s) { return s == LBL_NO_LABEL ? json_null() : json_real(s); }

json_t *lbl_vote_to_json(const struct lbl_vote *v, const struct lbl_vote_opts *o, const struct lbl_analysis *a,
                         int na, const int *valid) {
    char why[256];
    lbl_vote_explain(v, o, why, sizeof why);
    json_t *list = json_array();
    for (int i = 0; list && i < na; i++) {
        json_t *meta = json_array();
        for (int j = 0; meta && j < a[i].n_meta; j++) json_array_append_new(meta, score_json(a[i].meta[j]));
        json_t *e = json_pack("{s:o, s:o, s:b}", "score", score_json(a[i].score), "meta", meta ? meta : json_null(),
                              "valid", valid ? valid[i] : 0);
        if (!e || json_array_append_new(list, e)) {
            json_decref(list);
            return NULL;
        }
    }
    if (!list) return NULL;
    return json_pack("{s:o, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:o, s:i, s:i, s:i, s:i, s:b, s:o}", "label",
                     score_json(v->label), "reason", lbl_reason_name(v->reason), "explanation", why, "n", v->n, "valid",
                     v->valid, "issues", v->issues, "rejected", v->rejected, "format_failures", v->format_failures, "lo",
                     score_json(v->lo), "agree", v->agree, "k", o->k, "m", o->m, "n_required", o->n, "no_meta",
                     o->no_meta, "analyses", list);
}
