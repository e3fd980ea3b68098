/* answer.c - structured comparison of two answers (see answer.h, docs/answer-checking.md).
 *
 * An answer string is normalised (answer_norm.c), then read into a small value tree:
 *   list     bare comma-separated answers "3, 5, 7" (and \pm expansions): unordered
 *   set      \{a, b\}: unordered
 *   tuple    (a, b, ...) or [a, b) ...: ordered; with two elements the brackets are an interval's
 *            and must match
 *   union    parts joined by \cup: unordered
 *   matrix   \begin{pmatrix|bmatrix|matrix|array...}: rows and columns
 *   eq       lhs = rhs (when lhs is not a plain name): equal when lhs - rhs are proportional
 *   rel      a < b, a \le b, a \ne b (one relation, oriented so that > and \ge become < and \le)
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

#include "common/mathexpr.h"
#include "common/util.h"

#define AV_MAX 2048          /* value nodes per comparison */
#define AV_MAX_DEPTH 8       /* nesting of lists/tuples/matrices */
#define AV_MAX_KIDS 256      /* elements of one list, tuple, set or matrix */
#define AV_SCRATCH (64 * 1024)
#define NORM_CAP (3 * ANS_MAX_LEN + 64)

enum av_kind { AV_EXPR, AV_TEXT, AV_LIST, AV_SET, AV_TUPLE, AV_UNION, AV_MATRIX, AV_EQ, AV_REL };

struct aval {
    uint8_t kind;
    char open, close; /* tuple brackets */
    char rel;         /* '<', 'L' (\le), 'N' (\ne) */
    uint8_t percent;
    int kid, next;    /* first child, next sibling (-1 = none) */
    int nkids, rows, cols;
    int expr, lhs, rhs;
    const char *s; /* source text (normalised), for text comparison */
    size_t len;
    const char *label;
    size_t label_len;
};

struct ans_checker {
    struct ans_opts opts;
    struct mx_ctx *mx;
    struct aval vals[AV_MAX];
    int nvals;
    char scratch[AV_SCRATCH];
    size_t scratch_used;
    char gold[NORM_CAP], pred[NORM_CAP];
    char extract[ANS_MAX_LEN + 1];
    enum ans_reason reason;
    int limit;
};

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

/* ---- text helpers ----------------------------------------------------------------------- */

static void trim(const char **s, size_t *n) {
    while (*n && isspace((unsigned char)**s)) (*s)++, (*n)--;
    while (*n && isspace((unsigned char)(*s)[*n - 1])) (*n)--;
}

static int opener_at(const char *s, size_t n, size_t i, size_t *w) {
    if (s[i] == '(' || s[i] == '[' || s[i] == '{') return *w = 1, 1;
    if (s[i] == '\\' && i + 1 < n && s[i + 1] == '{') return *w = 2, 1;
    return 0;
}

static int closer_at(const char *s, size_t n, size_t i, size_t *w) {
    if (s[i] == ')' || s[i] == ']' || s[i] == '}') return *w = 1, 1;
    if (s[i] == '\\' && i + 1 < n && s[i + 1] == '}') return *w = 2, 1;
    return 0;
}

/* Does s[i..] start with the separator sep at top level? Command separators must end there. */
static int sep_at(const char *s, size_t n, size_t i, const char *sep) {
    size_t m = strlen(sep);
    if (i + m > n || memcmp(s + i, sep, m)) return 0;
    if (sep[0] == '\\' && isalpha((unsigned char)sep[1]) && i + m < n && isalpha((unsigned char)s[i + m]))
        return 0;
    return 1;
}

/* Top-level positions of sep in s[0..n) (at most max); returns the count. */
static int split_top(const char *s, size_t n, const char *sep, size_t *pos, int max) {
    int depth = 0, k = 0;
    for (size_t i = 0; i < n;) {
        size_t w;
        if (depth == 0 && sep_at(s, n, i, sep)) {
            if (k < max) pos[k] = i;
            k++;
            i += strlen(sep);
            continue;
        }
        if (s[i] == '\\' && i + 1 < n && s[i + 1] == '\\') { /* a row break, not an escape */
            i += 2;
            continue;
        }
        if (opener_at(s, n, i, &w)) depth++, i += w;
        else if (closer_at(s, n, i, &w)) depth -= depth > 0, i += w;
        else if (s[i] == '\\' && i + 1 < n && !isalpha((unsigned char)s[i + 1])) i += 2;
        else i++;
    }
    return k;
}

/* 1 when s[0..n) is one bracket pair: ( [ or \{ at 0 closing at the very end. */
static int enclosed(const char *s, size_t n, char *open, char *close) {
    size_t w;
    if (n < 2 || !opener_at(s, n, 0, &w) || s[0] == '{') return 0;
    int depth = 0;
    for (size_t i = 0; i < n;) {
        size_t ww;
        if (opener_at(s, n, i, &ww)) depth++, i += ww;
        else if (closer_at(s, n, i, &ww)) {
            if (--depth == 0) {
                if (i + ww != n) return 0;
                *open = w == 2 ? '{' : s[0];
                *close = ww == 2 ? '}' : s[i];
                /* \{ must close with \} (same width), ( and [ with ) or ] */
                if (w != ww || (*open == '{') != (*close == '}') || n < 2 * w) return 0;
                return 1;
            }
            i += ww;
        } else if (s[i] == '\\' && i + 1 < n && !isalpha((unsigned char)s[i + 1])) i += 2;
        else i++;
    }
    return 0;
}

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

/* A plain name usable as a label: x, k, m_{\max}, x_1', \theta, f(x), \angle ABC, AB. */
static int is_label(const char *s, size_t n) {
    trim(&s, &n);
    if (!n) return 0;
    if (n >= 6 && !memcmp(s, "\\angle", 6)) return 1;
    size_t i = 0;
    if (s[0] == '\\') {
        i = 1;
        while (i < n && isalpha((unsigned char)s[i])) i++;
        if (i == 1) return 0;
        static const char *const not_names[] = {"\\frac", "\\sqrt", "\\sin", "\\cos", "\\tan",
                                                "\\log", "\\ln", "\\pi", "\\binom", "\\infty"};
        for (size_t k = 0; k < DSM_ARRAY_LEN(not_names); k++)
            if (i == strlen(not_names[k]) && !memcmp(s, not_names[k], i)) return 0;
    } else {
        while (i < n && i < 2 && isalpha((unsigned char)s[i])) i++;
        if (i == 0) return 0;
    }
    if (i < n && s[i] == '_') {
        i++;
        if (i < n && s[i] == '{') {
            int depth = 0;
            for (; i < n; i++) {
                if (s[i] == '{') depth++;
                else if (s[i] == '}' && --depth == 0) break;
            }
            if (i >= n) return 0;
            i++;
        } else if (i < n) {
            i++;
        }
    }
    while (i < n && s[i] == '\'') i++;
    if (i < n && s[i] == '(' && s[n - 1] == ')') return 1; /* f(x) */
    return i == n;
}

/* ---- value tree ------------------------------------------------------------------------- */

static int val_new(struct ans_checker *c, enum av_kind kind, const char *s, size_t n) {
    if (c->nvals >= AV_MAX) {
        c->limit = 1;
        return -1;
    }
    struct aval *v = &c->vals[c->nvals];
    memset(v, 0, sizeof *v);
    v->kind = (uint8_t)kind;
    v->kid = v->next = -1;
    v->expr = v->lhs = v->rhs = -1;
    v->s = s;
    v->len = n;
    return c->nvals++;
}

static void add_kid(struct ans_checker *c, int parent, int kid, int *last) {
    if (*last < 0) c->vals[parent].kid = kid;
    else c->vals[*last].next = kid;
    *last = kid;
    c->vals[parent].nkids++;
}

static const char *scratch_copy(struct ans_checker *c, const char *parts[], const size_t lens[],
                                int k, size_t *n) {
    size_t total = 0;
    for (int i = 0; i < k; i++) total += lens[i];
    if (c->scratch_used + total + 1 > AV_SCRATCH) return NULL;
    char *o = c->scratch + c->scratch_used;
    size_t w = 0;
    for (int i = 0; i < k; i++) memcpy(o + w, parts[i], lens[i]), w += lens[i];
    o[w] = 0;
    c->scratch_used += w + 1;
    *n = w;
    return o;
}

static int vparse(struct ans_checker *c, const char *s, size_t n, int depth);

/* Parse the pieces of s between the separator positions as children of a new node. */
static int vparse_split(struct ans_checker *c, enum av_kind kind, const char *s, size_t n,
                        const size_t *pos, int npos, size_t seplen, int depth) {
    int v = val_new(c, kind, s, n), last = -1;
    if (v < 0) return -1;
    for (int i = 0; i <= npos; i++) {
        size_t a = i ? pos[i - 1] + seplen : 0, b = i < npos ? pos[i] : n;
        const char *es = s + a;
        size_t en = b - a;
        trim(&es, &en);
        if (!en && (kind == AV_LIST || (kind == AV_SET && npos == 0))) continue; /* "1, 2,", \{\} */
        int k = vparse(c, es, en, depth + 1);
        if (k < 0) return -1;
        /* a list element that is itself a bare list (a \pm expansion) is flattened */
        if ((kind == AV_LIST || kind == AV_SET) && c->vals[k].kind == AV_LIST) {
            for (int e = c->vals[k].kid; e >= 0;) {
                int nx = c->vals[e].next;
                c->vals[e].next = -1;
                add_kid(c, v, e, &last);
                e = nx;
            }
            continue;
        }
        add_kid(c, v, k, &last);
    }
    return v;
}

static int vparse_matrix(struct ans_checker *c, const char *s, size_t n, int depth) {
    /* \begin{env}[{colspec}] body \end{env} */
    const char *p = s + 7, *end = s + n;
    const char *name_end = memchr(p, '}', (size_t)(end - p));
    if (!name_end) return -2;
    size_t name_len = (size_t)(name_end - p);
    const char *body = name_end + 1;
    if (name_len == 5 && !memcmp(p, "array", 5)) {
        while (body < end && *body == ' ') body++;
        if (body < end && *body == '{') {
            const char *q = memchr(body, '}', (size_t)(end - body));
            if (!q) return -2;
            body = q + 1;
        }
    }
    /* the last \end{ closes it */
    const char *e = NULL;
    for (const char *q = body; q + 5 <= end; q++)
        if (!memcmp(q, "\\end{", 5)) e = q;
    if (!e) return -2;
    const char *tail = e + 5 + name_len;
    if (tail >= end || memcmp(e + 5, p, name_len) || *tail != '}') return -2;
    for (const char *q = tail + 1; q < end; q++)
        if (*q != ' ') return -2;
    size_t bn = (size_t)(e - body);
    size_t rows[AV_MAX_KIDS], cols[AV_MAX_KIDS];
    int nr = split_top(body, bn, "\\\\", rows, AV_MAX_KIDS);
    if (nr >= AV_MAX_KIDS) return -2;
    int v = val_new(c, AV_MATRIX, s, n), last = -1, ncols = -1, nrows = 0;
    if (v < 0) return -1;
    for (int r = 0; r <= nr; r++) {
        size_t a = r ? rows[r - 1] + 2 : 0, b = r < nr ? rows[r] : bn;
        const char *rs = body + a;
        size_t rn = b - a;
        trim(&rs, &rn);
        if (!rn && r == nr) break; /* a trailing \\ */
        int nc = split_top(rs, rn, "&", cols, AV_MAX_KIDS);
        if (nc >= AV_MAX_KIDS || (ncols >= 0 && nc + 1 != ncols)) return -2;
        ncols = nc + 1;
        for (int k = 0; k <= nc; k++) {
            size_t ca = k ? cols[k - 1] + 1 : 0, cb = k < nc ? cols[k] : rn;
            int e2 = vparse(c, rs + ca, cb - ca, depth + 1);
            if (e2 < 0) return -1;
            add_kid(c, v, e2, &last);
        }
        nrows++;
    }
    if (nrows == 0) return -2;
    c->vals[v].rows = nrows;
    c->vals[v].cols = ncols;
    return v;
}

struct relop {
    const char *text;
    char rel;
    int swap;
};

static const struct relop relops[] = {
    {"\\le", 'L', 0}, {"\\ge", 'L', 1}, {"\\ne", 'N', 0}, {"\\in", 'I', 0},
    {"<", '<', 0},    {">", '<', 1},    {"=", '=', 0},
};

static int vparse_expr(struct ans_checker *c, const char *s, size_t n) {
    int percent = 0;
    if (n && s[n - 1] == '%') percent = 1, n--;
    trim(&s, &n);
    struct dsm_err e = {0};
    int root;
    if (mx_parse(c->mx, s, n, &root, &e) != DSM_OK) {
        if (mx_ctx_limit_hit(c->mx)) c->limit = 1;
        return val_new(c, AV_TEXT, s, n);
    }
    int v = val_new(c, AV_EXPR, s, n);
    if (v >= 0) {
        c->vals[v].expr = root;
        c->vals[v].percent = (uint8_t)percent;
    }
    return v;
}

/* An endpoint of an interval made from an inequality. */
static int endpoint(struct ans_checker *c, const char *s, size_t n) {
    int k = vparse_expr(c, s, n);
    return k >= 0 && c->vals[k].kind != AV_EXPR ? -2 : k;
}

/* x < 5, x \ge -2, 2 < x \le 5, 5 > x: an interval over the named variable, so that it equals
 * (-\infty, 5), [-2, \infty), (2, 5] ... Returns -2 when s is not such an inequality. */
static int vparse_inequality(struct ans_checker *c, const char *s, size_t n) {
    struct {
        size_t at, len;
        int less, strict;
    } ops[3];
    int k = 0, depth = 0;
    for (size_t i = 0; i < n && k <= 2;) {
        size_t w = 0, bw;
        int less = 0, strict = 0;
        if (opener_at(s, n, i, &bw)) {
            depth++, i += bw;
            continue;
        }
        if (closer_at(s, n, i, &bw)) {
            depth -= depth > 0, i += bw;
            continue;
        }
        if (depth > 0) {
            i++;
            continue;
        }
        if (s[i] == '<') w = 1, less = 1, strict = 1;
        else if (s[i] == '>') w = 1, less = 0, strict = 1;
        else if (sep_at(s, n, i, "\\le")) w = 3, less = 1;
        else if (sep_at(s, n, i, "\\ge")) w = 3, less = 0;
        if (w) {
            if (k < 3) ops[k].at = i, ops[k].len = w, ops[k].less = less, ops[k].strict = strict;
            k++;
            i += w;
            continue;
        }
        if (s[i] == '=' || s[i] == ',') return -2;
        i += s[i] == '\\' && i + 1 < n && !isalpha((unsigned char)s[i + 1]) ? 2 : 1;
    }
    if (k < 1 || k > 2) return -2;
    const char *seg[3];
    size_t segn[3];
    for (int i = 0; i <= k; i++) {
        size_t a = i ? ops[i - 1].at + ops[i - 1].len : 0, b = i < k ? ops[i].at : n;
        seg[i] = s + a;
        segn[i] = b - a;
        trim(&seg[i], &segn[i]);
        if (!segn[i]) return -2;
    }
    /* lo and hi endpoints as (text, closed); NULL text = infinite */
    const char *lo = NULL, *hi = NULL;
    size_t lon = 0, hin = 0;
    int lo_closed = 0, hi_closed = 0;
    const char *var;
    size_t varn;
    if (k == 1) {
        int var_left = is_label(seg[0], segn[0]), var_right = is_label(seg[1], segn[1]);
        if (var_left == var_right) return -2;
        int bound = var_left ? 1 : 0;
        /* x < b  or  b > x : b is an upper bound */
        int upper = var_left ? ops[0].less : !ops[0].less;
        var = seg[1 - bound];
        varn = segn[1 - bound];
        if (upper) hi = seg[bound], hin = segn[bound], hi_closed = !ops[0].strict;
        else lo = seg[bound], lon = segn[bound], lo_closed = !ops[0].strict;
    } else {
        if (!is_label(seg[1], segn[1]) || ops[0].less != ops[1].less) return -2;
        var = seg[1];
        varn = segn[1];
        int a = ops[0].less ? 0 : 2, b = 2 - a;
        lo = seg[a], lon = segn[a], lo_closed = !ops[a ? 1 : 0].strict;
        hi = seg[b], hin = segn[b], hi_closed = !ops[b ? 1 : 0].strict;
    }
    int v = val_new(c, AV_TUPLE, s, n), last = -1;
    if (v < 0) return -1;
    int e1 = lo ? endpoint(c, lo, lon) : endpoint(c, "-\\infty", 7);
    int e2 = e1 >= 0 ? (hi ? endpoint(c, hi, hin) : endpoint(c, "\\infty", 6)) : e1;
    if (e1 < 0 || e2 < 0) {
        if (e1 == -1 || e2 == -1) return -1;
        c->vals[v].kind = AV_TEXT;
        return v;
    }
    add_kid(c, v, e1, &last);
    add_kid(c, v, e2, &last);
    c->vals[v].open = lo_closed ? '[' : '(';
    c->vals[v].close = hi_closed ? ']' : ')';
    c->vals[v].label = var;
    c->vals[v].label_len = varn;
    return v;
}

static int vparse(struct ans_checker *c, const char *s, size_t n, int depth) {
    size_t pos[AV_MAX_KIDS];
    trim(&s, &n);
    while (n >= 2 && s[0] == '{') { /* braces around the whole */
        int d = 0;
        size_t i = 0;
        for (; i < n; i++) {
            if (s[i] == '{') d++;
            else if (s[i] == '}' && --d == 0) break;
        }
        if (i != n - 1) break;
        s++, n -= 2;
        trim(&s, &n);
    }
    if (!n || depth > AV_MAX_DEPTH) return val_new(c, AV_TEXT, s, n);
    if ((n == 9 && !memcmp(s, "\\emptyset", 9)) || (n == 11 && !memcmp(s, "\\varnothing", 11)))
        return val_new(c, AV_SET, s, n); /* no elements */
    if (n > 7 && !memcmp(s, "\\begin{", 7)) {
        int v = vparse_matrix(c, s, n, depth);
        if (v != -2) return v;
        return val_new(c, AV_TEXT, s, n);
    }
    int k = split_top(s, n, "\\cup", pos, AV_MAX_KIDS);
    if (k > 0 && k < AV_MAX_KIDS) return vparse_split(c, AV_UNION, s, n, pos, k, 4, depth);
    char open, close;
    if (enclosed(s, n, &open, &close)) {
        size_t w = open == '{' ? 2 : 1;
        const char *in = s + w;
        size_t inn = n - 2 * w;
        k = split_top(in, inn, ",", pos, AV_MAX_KIDS);
        if (k >= AV_MAX_KIDS) return val_new(c, AV_TEXT, s, n);
        if (open == '{' || k > 0) {
            int v = vparse_split(c, open == '{' ? AV_SET : AV_TUPLE, in, inn, pos, k, 1, depth);
            if (v >= 0) {
                c->vals[v].open = open;
                c->vals[v].close = close;
                c->vals[v].s = s;
                c->vals[v].len = n;
            }
            return v;
        }
    }
    k = split_top(s, n, ",", pos, AV_MAX_KIDS);
    if (k >= AV_MAX_KIDS) return val_new(c, AV_TEXT, s, n);
    if (k > 0) return vparse_split(c, AV_LIST, s, n, pos, k, 1, depth);
    int iv = vparse_inequality(c, s, n);
    if (iv != -2) return iv;
    /* relations: the first top-level one decides */
    size_t best = n, best_len = 0;
    const struct relop *rop = NULL;
    for (size_t r = 0; r < DSM_ARRAY_LEN(relops); r++) {
        int m = split_top(s, n, relops[r].text, pos, 1);
        if (m > 0 && pos[0] < best) best = pos[0], best_len = strlen(relops[r].text), rop = &relops[r];
    }
    if (rop) {
        const char *l = s, *r = s + best + best_len;
        size_t ln = best, rn = n - best - best_len;
        if (rop->rel == '=' || rop->rel == 'I') {
            if (is_label(l, ln)) {
                /* x = y = 5: the last part is the value */
                int m = split_top(r, rn, "=", pos, AV_MAX_KIDS);
                if (m > 0 && m < AV_MAX_KIDS) r += pos[m - 1] + 1, rn -= pos[m - 1] + 1;
                int v = vparse(c, r, rn, depth + 1);
                if (v >= 0) {
                    trim(&l, &ln);
                    c->vals[v].label = l;
                    c->vals[v].label_len = ln;
                }
                return v;
            }
            if (rop->rel == 'I' || split_top(r, rn, "=", pos, 1) > 0) return val_new(c, AV_TEXT, s, n);
        }
        int v = val_new(c, rop->rel == '=' ? AV_EQ : AV_REL, s, n);
        if (v < 0) return -1;
        int a = vparse_expr(c, rop->swap ? r : l, rop->swap ? rn : ln);
        int b = vparse_expr(c, rop->swap ? l : r, rop->swap ? ln : rn);
        if (a < 0 || b < 0) return -1;
        if (c->vals[a].kind != AV_EXPR || c->vals[b].kind != AV_EXPR) {
            c->vals[v].kind = AV_TEXT;
            return v;
        }
        c->vals[v].rel = rop->rel;
        c->vals[v].lhs = c->vals[a].expr;
        c->vals[v].rhs = c->vals[b].expr;
        return v;
    }
    /* \pm / \mp: two answers */
    for (size_t i = 0; i + 3 <= n; i++) {
        if (s[i] != '\\' || (memcmp(s + i, "\\pm", 3) && memcmp(s + i, "\\mp", 3)) ||
            (i + 3 < n && isalpha((unsigned char)s[i + 3])))
            continue;
        const char *parts[3] = {s, "+", s + i + 3};
        size_t lens[3] = {i, 1, n - i - 3}, n1, n2;
        const char *s1 = scratch_copy(c, parts, lens, 3, &n1);
        parts[1] = "-";
        const char *s2 = scratch_copy(c, parts, lens, 3, &n2);
        if (!s1 || !s2) return val_new(c, AV_TEXT, s, n);
        int v = val_new(c, AV_LIST, s, n), last = -1;
        if (v < 0) return -1;
        int a = vparse(c, s1, n1, depth + 1), b = vparse(c, s2, n2, depth + 1);
        if (a < 0 || b < 0) return -1;
        add_kid(c, v, a, &last);
        add_kid(c, v, b, &last);
        return v;
    }
    if (n > 6 && !memcmp(s, "\\text{", 6) && s[n - 1] == '}') {
        int d = 0;
        size_t i = 5;
        for (; i < n; i++) {
            if (s[i] == '{') d++;
            else if (s[i] == '}' && --d == 0) break;
        }
        if (i == n - 1) return val_new(c, AV_TEXT, s, n);
    }
    return vparse_expr(c, s, n);
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
    int g = vparse(c, c->gold, strlen(c->gold), 0);
    int p = g >= 0 ? vparse(c, c->pred, strlen(c->pred), 0) : -1;
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
