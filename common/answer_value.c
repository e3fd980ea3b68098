/* answer_value.c - read a normalised answer string into a value tree (see answer.c for the
 * kinds and docs/answer-checking.md for the rules): lists, sets, tuples and intervals, unions,
 * matrices, labels (x = 5), equations, inequalities (as intervals), \\pm expansions, text, and
 * expressions parsed by mathexpr. Depth is bounded by AV_MAX_DEPTH, sizes by AV_MAX_KIDS and
 * AV_MAX; running out is reported through c->limit, never by overrunning a buffer.
 */
#include <ctype.h>
#include <string.h>

#include "common/answer_impl.h"
#include "common/util.h"

/* ---- text helpers ----------------------------------------------------------------------- */

static void ans_text_trim(const char **s, size_t *n) {
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
static int is_label(const char *s, size_t n) {
    ans_text_trim(&s, &n);
    if (!n) return 0;
    if (n >= 6 && !memcmp(s, "\\angle", 6)) return 1;
    if (n >= 5 && s[0] == '(' && s[n - 1] == ')' && memchr(s, ',', n)) { /* (x, y) = (1, 2) */
        size_t a = 1;
        for (size_t i = 1; i < n; i++) {
            if (s[i] != ',' && i != n - 1) continue;
            if (!is_label(s + a, i - a)) return 0;
            a = i + 1;
        }
        return 1;
    }
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


/* Parse the pieces of s between the separator positions as children of a new node. */
static int vparse_split(struct ans_checker *c, enum av_kind kind, const char *s, size_t n,
                        const size_t *pos, int npos, size_t seplen, int depth) {
    int v = val_new(c, kind, s, n), last = -1;
    if (v < 0) return -1;
    for (int i = 0; i <= npos; i++) {
        size_t a = i ? pos[i - 1] + seplen : 0, b = i < npos ? pos[i] : n;
        const char *es = s + a;
        size_t en = b - a;
        ans_text_trim(&es, &en);
        if (!en && (kind == AV_LIST || (kind == AV_SET && npos == 0))) continue; /* "1, 2,", \{\} */
        int k = ans_value_parse(c, es, en, depth + 1);
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
        ans_text_trim(&rs, &rn);
        if (!rn && r == nr) break; /* a trailing \\ */
        int nc = split_top(rs, rn, "&", cols, AV_MAX_KIDS);
        if (nc >= AV_MAX_KIDS || (ncols >= 0 && nc + 1 != ncols)) return -2;
        ncols = nc + 1;
        for (int k = 0; k <= nc; k++) {
            size_t ca = k ? cols[k - 1] + 1 : 0, cb = k < nc ? cols[k] : rn;
            int e2 = ans_value_parse(c, rs + ca, cb - ca, depth + 1);
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
    ans_text_trim(&s, &n);
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
        ans_text_trim(&seg[i], &segn[i]);
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

int ans_value_parse(struct ans_checker *c, const char *s, size_t n, int depth) {
    size_t pos[AV_MAX_KIDS];
    ans_text_trim(&s, &n);
    while (n >= 2 && s[0] == '{') { /* braces around the whole */
        int d = 0;
        size_t i = 0;
        for (; i < n; i++) {
            if (s[i] == '{') d++;
            else if (s[i] == '}' && --d == 0) break;
        }
        if (i != n - 1) break;
        s++, n -= 2;
        ans_text_trim(&s, &n);
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
                int v = ans_value_parse(c, r, rn, depth + 1);
                if (v >= 0) {
                    ans_text_trim(&l, &ln);
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
        int a = ans_value_parse(c, s1, n1, depth + 1), b = ans_value_parse(c, s2, n2, depth + 1);
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
