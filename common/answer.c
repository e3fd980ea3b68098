/* answer.c - structured comparison of two answers (see answer.h, docs/answer-checking.md).
 *
 * An answer string is normalised (answer_norm.c), then read into a small value tree
 * (answer_value.c):
 *   list     bare comma-separated answers "3, 5, 7" (and \pm expansions): unordered
 *   set      \{a, b\}: unordered
 *   tuple    (a, b, ...) or [a, b) ...: ordered; with two elements the brackets are an interval's
 *            and must match
 *   union    parts joined by \cup: unordered
 *   matrix   \begin{pmatrix|bmatrix|matrix|array...}: rows and columns
 *   eq       lhs = rhs (when lhs is not a plain name): equal when lhs - rhs are proportional
 *   rel      a < b, a \le b, a \ne b (one relation, oriented so that > and \ge become < and \le);
 *            an inequality with a bare name on one side (x > 2, 1 < x \le 3) is read as a tuple
 *            with interval brackets instead
 *   expr     a mathexpr tree (mathexpr.h)
 *   text     anything else: compared as lower-cased text without spaces and braces
 * A plain name before '=' or \in (x = 5, f(x) = 2x, k = 1, x \in [2, 3]) is a label and dropped.
 * Each comparison runs under the checker's step and time limits; a limit hit is "different".
 */
#include "common/answer.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/answer_impl.h"
#include "common/mathexpr.h"
#include "common/util.h"

static const char *const reason_names[ANS_R_COUNT] = {
    "string", "numeral", "exact", "float", "points", "choice", "text", "structure", "empty", "limit",
};

const char *ans_reason_name(enum ans_reason r) {
    return (unsigned)r < ANS_R_COUNT ? reason_names[r] : "unknown";
}

void ans_opts_default(struct ans_opts *o) {
    o->rel_tol = 1e-8;
    o->max_steps = 2000000;
    o->time_limit_s = 1.0;
    o->max_nodes = 16384;
    o->flags = 0;
}

int ans_checker_create(const struct ans_opts *opts, struct ans_checker **out, struct dsm_err *err) {
    *out = NULL;
    struct ans_opts o;
    if (opts) o = *opts;
    else ans_opts_default(&o);
    if (!(o.rel_tol >= 0 && o.rel_tol < 1))
        return dsm_errf(err, DSM_EINVAL, "answer: relative tolerance %g is not in [0, 1)", o.rel_tol);
    struct ans_checker *c = dsm_calloc(1, sizeof *c, err);
    if (!c) return DSM_ENOMEM;
    c->opts = o;
    int rc = mx_ctx_create(o.max_nodes, o.max_steps, o.time_limit_s, &c->mx, err);
    if (rc) {
        free(c);
        return dsm_err_prefix(err, rc, "answer checker");
    }
    *out = c;
    return DSM_OK;
}

void ans_checker_destroy(struct ans_checker *c) {
    if (!c) return;
    mx_ctx_destroy(c->mx);
    free(c);
}

/* ---- text comparison helpers ---------------------------------------------------------- */

static int is_numeral(const char *s, size_t n) {
    size_t i = 0, digits = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) i++;
    int dot = 0;
    for (; i < n; i++) {
        if (isdigit((unsigned char)s[i])) digits++;
        else if (s[i] == '.' && !dot) dot = 1;
        else return 0;
    }
    return digits > 0;
}

/* Canonical numeral into out: sign, integer digits without leading zeros, '.', fraction digits
 * without trailing zeros ("-0.50" -> "-.5", "007" -> "7", "-0" -> "0"). */
static void numeral_canon(const char *s, size_t n, char *out, size_t cap) {
    size_t i = 0, o = 0;
    int neg = 0;
    if (s[0] == '-' || s[0] == '+') neg = s[0] == '-', i++;
    size_t dot = n;
    for (size_t k = i; k < n; k++)
        if (s[k] == '.') dot = k;
    size_t a = i, b = dot, fa = dot < n ? dot + 1 : n, fb = n;
    while (a < b && s[a] == '0') a++;
    while (fb > fa && s[fb - 1] == '0') fb--;
    int zero = a == b && fa == fb;
    if (neg && !zero && o + 1 < cap) out[o++] = '-';
    for (size_t k = a; k < b && o + 1 < cap; k++) out[o++] = s[k];
    if (fa < fb && o + 1 < cap) out[o++] = '.';
    for (size_t k = fa; k < fb && o + 1 < cap; k++) out[o++] = s[k];
    if (zero && o + 1 < cap) out[o++] = '0';
    out[o] = 0;
}

/* Lower-cased text without spaces, braces, "\text" and "\ " - for comparing words. */
static size_t text_canon(const char *s, size_t n, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (s[i] == '\\' && i + 5 <= n && !memcmp(s + i, "\\text", 5)) {
            i += 4;
            continue;
        }
        if (s[i] == ' ' || s[i] == '{' || s[i] == '}') continue;
        out[o++] = (char)tolower((unsigned char)s[i]);
    }
    out[o] = 0;
    return o;
}

static int text_equal(const char *a, size_t an, const char *b, size_t bn) {
    char x[512], y[512];
    if (an >= sizeof x || bn >= sizeof y) return an == bn && !memcmp(a, b, an);
    size_t xn = text_canon(a, an, x, sizeof x), yn = text_canon(b, bn, y, sizeof y);
    return xn == yn && !memcmp(x, y, xn) && xn > 0;
}

/* A choice letter A-E written as X, (X), \text{X}, \text{(X)}; with lead = 1 also "(X) words". */
static int choice_letter(const char *s, int lead) {
    char t[64];
    size_t o = 0;
    for (size_t i = 0; s[i] && o + 1 < sizeof t; i++) {
        if (!strncmp(s + i, "\\text", 5)) {
            i += 4;
            continue;
        }
        if (s[i] == '{' || s[i] == '}' || s[i] == ' ') continue;
        t[o++] = s[i];
    }
    t[o] = 0;
    if (o == 1 && t[0] >= 'A' && t[0] <= 'E') return t[0];
    if (o == 3 && t[0] == '(' && t[2] == ')' && t[1] >= 'A' && t[1] <= 'E') return t[1];
    if (lead && o >= 3 && t[0] == '(' && t[2] == ')' && t[1] >= 'A' && t[1] <= 'E') return t[1];
    return 0;
}


/* ---- comparison ------------------------------------------------------------------------- */

static int vcmp(struct ans_checker *c, int g, int p);

static int expr_cmp_nodes(struct ans_checker *c, int a, int b, int proportional) {
    enum mx_verdict verdict;
    enum mx_how how;
    struct dsm_err e = {0};
    if (a < 0 || b < 0) {
        c->limit = 1;
        return 0;
    }
    if (mx_compare(c->mx, a, b, proportional, c->opts.rel_tol, &verdict, &how, &e) != DSM_OK) {
        c->limit = 1;
        return 0;
    }
    if (verdict == MX_UNKNOWN) return -1;
    c->reason = how == MX_HOW_EXACT ? ANS_R_EXACT : how == MX_HOW_FLOAT ? ANS_R_FLOAT : ANS_R_POINTS;
    return verdict == MX_EQUAL;
}

static int expr_cmp(struct ans_checker *c, const struct aval *G, const struct aval *P) {
    size_t gn = G->len, pn = P->len;
    if (G->percent && gn && G->s[gn - 1] == '%') gn--;
    if (P->percent && pn && P->s[pn - 1] == '%') pn--;
    if (is_numeral(G->s, gn) && is_numeral(P->s, pn)) {
        char x[ANS_MAX_LEN + 2], y[ANS_MAX_LEN + 2];
        numeral_canon(G->s, gn, x, sizeof x);
        numeral_canon(P->s, pn, y, sizeof y);
        c->reason = ANS_R_NUMERAL;
        if (!strcmp(x, y)) return 1;
        if (!G->percent && !P->percent) return 0;
    }
    int r = expr_cmp_nodes(c, G->expr, P->expr, 0);
    if (r < 0) {
        c->reason = ANS_R_TEXT;
        r = text_equal(G->s, G->len, P->s, P->len);
    }
    if (r == 0 && !c->limit && (G->percent || P->percent)) {
        /* 50% may be written 50 or 0.5 */
        r = expr_cmp_nodes(c, G->expr, mx_scale(c->mx, P->expr, 100, 1), 0) == 1 ||
            expr_cmp_nodes(c, mx_scale(c->mx, G->expr, 100, 1), P->expr, 0) == 1;
    }
    return r;
}

static int ordered_cmp(struct ans_checker *c, int g, int p) {
    if (c->vals[g].nkids != c->vals[p].nkids) {
        c->reason = ANS_R_STRUCTURE;
        return 0;
    }
    for (int a = c->vals[g].kid, b = c->vals[p].kid; a >= 0 && b >= 0;
         a = c->vals[a].next, b = c->vals[b].next)
        if (!vcmp(c, a, b)) return 0;
    return 1;
}

static int unordered_cmp(struct ans_checker *c, int g, int p) {
    int n = c->vals[g].nkids;
    if (n != c->vals[p].nkids || n > AV_MAX_KIDS) {
        c->reason = ANS_R_STRUCTURE;
        return 0;
    }
    unsigned char used[AV_MAX_KIDS] = {0};
    for (int a = c->vals[g].kid; a >= 0; a = c->vals[a].next) {
        int found = 0, j = 0;
        for (int b = c->vals[p].kid; b >= 0 && !found; b = c->vals[b].next, j++) {
            if (used[j]) continue;
            if (vcmp(c, a, b)) used[j] = 1, found = 1;
            if (c->limit) return 0;
        }
        if (!found) return 0;
    }
    return 1;
}

static int is_setlike(int kind) { return kind == AV_LIST || kind == AV_SET; }

static int vcmp(struct ans_checker *c, int g, int p) {
    if (c->limit) return 0;
    const struct aval *G = &c->vals[g], *P = &c->vals[p];
    if (G->label && P->label &&
        (G->label_len != P->label_len || memcmp(G->label, P->label, G->label_len))) {
        c->reason = ANS_R_STRUCTURE;
        return 0;
    }
    /* a one-element set or list against a single answer */
    if (is_setlike(G->kind) && G->nkids == 1 && !is_setlike(P->kind)) return vcmp(c, G->kid, p);
    if (is_setlike(P->kind) && P->nkids == 1 && !is_setlike(G->kind)) return vcmp(c, g, P->kid);
    if (G->kind == AV_TEXT || P->kind == AV_TEXT) {
        c->reason = ANS_R_TEXT;
        return text_equal(G->s, G->len, P->s, P->len);
    }
    if (is_setlike(G->kind) && is_setlike(P->kind)) return unordered_cmp(c, g, p);
    if (G->kind == AV_TUPLE && P->kind == AV_TUPLE) {
        if (G->nkids == 2 && (G->open != P->open || G->close != P->close)) {
            c->reason = ANS_R_STRUCTURE;
            return 0;
        }
        return ordered_cmp(c, g, p);
    }
    /* a tuple written without its parentheses */
    if ((G->kind == AV_TUPLE && G->open == '(' && G->close == ')' && P->kind == AV_LIST) ||
        (P->kind == AV_TUPLE && P->open == '(' && P->close == ')' && G->kind == AV_LIST))
        return ordered_cmp(c, g, p);
    if (G->kind == AV_UNION && P->kind == AV_UNION) return unordered_cmp(c, g, p);
    if (G->kind == AV_MATRIX && P->kind == AV_MATRIX) {
        if (G->rows != P->rows || G->cols != P->cols) {
            c->reason = ANS_R_STRUCTURE;
            return 0;
        }
        return ordered_cmp(c, g, p);
    }
    if (G->kind == AV_EQ && P->kind == AV_EQ) {
        int r = expr_cmp_nodes(c, mx_sub(c->mx, G->lhs, G->rhs), mx_sub(c->mx, P->lhs, P->rhs), 1);
        if (r < 0) {
            c->reason = ANS_R_TEXT;
            r = text_equal(G->s, G->len, P->s, P->len);
        }
        return r;
    }
    if (G->kind == AV_REL && P->kind == AV_REL) {
        if (G->rel != P->rel) {
            c->reason = ANS_R_STRUCTURE;
            return 0;
        }
        int r1 = expr_cmp_nodes(c, G->lhs, P->lhs, 0);
        int r2 = r1 == 1 ? expr_cmp_nodes(c, G->rhs, P->rhs, 0) : r1;
        if (G->rel == 'N' && r1 != 1) { /* a != b is symmetric */
            r1 = expr_cmp_nodes(c, G->lhs, P->rhs, 0);
            r2 = r1 == 1 ? expr_cmp_nodes(c, G->rhs, P->lhs, 0) : r1;
        }
        if (r1 < 0 || r2 < 0) {
            c->reason = ANS_R_TEXT;
            return text_equal(G->s, G->len, P->s, P->len);
        }
        return r1 == 1 && r2 == 1;
    }
    if (G->kind == AV_EXPR && P->kind == AV_EXPR) return expr_cmp(c, G, P);
    /* y = x^2 (label y, value x^2) against x^2 = y (an equation) */
    if ((G->kind == AV_EQ && P->kind == AV_EXPR && P->label) ||
        (P->kind == AV_EQ && G->kind == AV_EXPR && G->label)) {
        const struct aval *E = G->kind == AV_EQ ? G : P, *L = G->kind == AV_EQ ? P : G;
        int root;
        if (mx_parse(c->mx, L->label, L->label_len, &root, NULL) == DSM_OK) {
            int r = expr_cmp_nodes(c, mx_sub(c->mx, E->lhs, E->rhs), mx_sub(c->mx, root, L->expr), 1);
            if (r >= 0) return r;
        }
    }
    c->reason = ANS_R_STRUCTURE;
    return 0;
}

static void verdict_set(struct ans_checker *c, struct ans_verdict *v, int equal,
                        enum ans_reason reason) {
    v->equal = equal;
    v->reason = reason;
    v->steps = mx_ctx_steps(c->mx);
}

int ans_checker_compare(struct ans_checker *c, const char *gold, const char *pred,
                        struct ans_verdict *v, struct dsm_err *err) {
    mx_ctx_reset(c->mx);
    c->nvals = 0;
    c->scratch_used = 0;
    c->limit = 0;
    c->reason = ANS_R_STRUCTURE;
    verdict_set(c, v, 0, ANS_R_EMPTY);
    size_t gl = strlen(gold), pl = strlen(pred);
    int rc = ans_normalize(gold, gl, c->gold, sizeof c->gold, err);
    if (rc) return dsm_err_prefix(err, rc, "gold answer");
    if (!c->gold[0]) return dsm_errf(err, DSM_EINVAL, "gold answer: empty after normalisation");
    if (pl > ANS_MAX_LEN || ans_normalize(pred, pl, c->pred, sizeof c->pred, NULL) != DSM_OK) {
        verdict_set(c, v, 0, ANS_R_LIMIT);
        return DSM_OK;
    }
    if (!c->pred[0]) return DSM_OK;
    if (!(c->opts.flags & ANS_NO_STRING_SHORTCUT) && !strcmp(c->gold, c->pred)) {
        verdict_set(c, v, 1, ANS_R_STRING);
        return DSM_OK;
    }
    int gc = choice_letter(c->gold, 0);
    if (gc) {
        verdict_set(c, v, choice_letter(c->pred, 1) == gc, ANS_R_CHOICE);
        return DSM_OK;
    }
    int g = ans_value_parse(c, c->gold, strlen(c->gold), 0);
    int p = g >= 0 ? ans_value_parse(c, c->pred, strlen(c->pred), 0) : -1;
    int eq = g >= 0 && p >= 0 && !c->limit ? vcmp(c, g, p) : 0;
    if (c->limit || mx_ctx_limit_hit(c->mx)) verdict_set(c, v, 0, ANS_R_LIMIT);
    else verdict_set(c, v, eq, c->reason);
    return DSM_OK;
}

int ans_checker_grade(struct ans_checker *c, const char *gold, const char *output, size_t len,
                      unsigned flags, struct ans_verdict *v, struct dsm_err *err) {
    enum ans_found found;
    verdict_set(c, v, 0, ANS_R_EMPTY);
    int rc = ans_extract(output, len, flags, c->extract, sizeof c->extract, &found, NULL);
    if (rc || found == ANS_FOUND_NONE) {
        /* still validate the gold so that a bad gold is an error whatever the output */
        if (ans_normalize(gold, strlen(gold), c->gold, sizeof c->gold, err))
            return dsm_err_prefix(err, DSM_EINVAL, "gold answer");
        if (!c->gold[0]) return dsm_errf(err, DSM_EINVAL, "gold answer: empty after normalisation");
        return DSM_OK;
    }
    return ans_checker_compare(c, gold, c->extract, v, err);
}

int ans_equal(const char *gold, const char *pred, const struct ans_opts *opts,
              struct ans_verdict *v, struct dsm_err *err) {
    struct ans_checker *c;
    int rc = ans_checker_create(opts, &c, err);
    if (rc) return rc;
    rc = ans_checker_compare(c, gold, pred, v, err);
    ans_checker_destroy(c);
    return rc;
}
