/* synth_text.c - the text pieces the synthetic domain shares: a weighted pick, a bounded writer
 * and the expression parser ("37 + 48 - 19 = 66"). See synth_impl.h. */
#include <stdio.h>
#include <string.h>

#include "common/synth.h"
#include "common/synth_impl.h"

int synth_rng_pick(struct synth_rng *r, const double *w, int n) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += w[i] > 0 ? w[i] : 0;
    double x = synth_rng_unit(r) * sum;
    int last = 0;
    for (int i = 0; i < n; i++) {
        if (!(w[i] > 0)) continue;
        last = i;
        if (x < w[i]) return i;
        x -= w[i];
    }
    return last;
}

void synth_buf_init(struct synth_buf *b, char *out, size_t cap) {
    b->p = out;
    b->cap = cap;
    b->len = 0;
    b->overflow = cap == 0;
    if (cap) out[0] = 0;
}

void synth_buf_put(struct synth_buf *b, const char *s, size_t n) {
    if (b->overflow) return;
    if (b->len + n + 1 > b->cap) {
        b->overflow = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void synth_buf_str(struct synth_buf *b, const char *s) { synth_buf_put(b, s, strlen(s)); }

void synth_buf_printf(struct synth_buf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->overflow = 1;
        return;
    }
    synth_buf_put(b, tmp, (size_t)n);
}

int synth_buf_end(struct synth_buf *b) {
    if (b->overflow || b->len > (size_t)0x7fffffff) {
        if (b->cap) b->p[0] = 0;
        return -1;
    }
    return (int)b->len;
}

void synth_buf_expr(struct synth_buf *b, long long left, const char *op, const long long *term, int n) {
    synth_buf_printf(b, "%lld", left);
    for (int i = 0; i < n; i++) synth_buf_printf(b, " %c %lld", op[i], term[i]);
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }

static void skip_blanks(const char *s, size_t n, size_t *i) {
    while (*i < n && is_blank(s[*i])) (*i)++;
}

/* A number at s[*i]: optional '-' when sign_ok, 1..SYNTH_MAX_DIGITS digits not followed by a
 * digit. Returns 1 and advances on success. */
static int parse_num(const char *s, size_t n, size_t *i, int sign_ok, long long *out) {
    size_t j = *i;
    int neg = 0;
    if (sign_ok && j < n && s[j] == '-') neg = 1, j++;
    size_t d0 = j;
    long long v = 0;
    while (j < n && s[j] >= '0' && s[j] <= '9') {
        if (j - d0 >= SYNTH_MAX_DIGITS) return 0;
        v = v * 10 + (s[j] - '0');
        j++;
    }
    if (j == d0) return 0;
    *out = neg ? -v : v;
    *i = j;
    return 1;
}

int synth_expr_parse(const char *s, size_t n, size_t *pos, struct synth_expr *e) {
    size_t i = *pos;
    struct synth_expr x = {0};
    skip_blanks(s, n, &i);
    if (!parse_num(s, n, &i, 1, &x.left)) return 0;
    for (;;) {
        skip_blanks(s, n, &i);
        if (i >= n) return 0;
        if (s[i] == '=') break;
        if (s[i] != '+' && s[i] != '-') return 0;
        if (x.n_terms == SYNTH_MAX_OPS) return 0;
        char op = s[i++];
        skip_blanks(s, n, &i);
        if (!parse_num(s, n, &i, 0, &x.term[x.n_terms])) return 0;
        x.op[x.n_terms++] = op;
    }
    i++; /* '=' */
    skip_blanks(s, n, &i);
    if (!parse_num(s, n, &i, 1, &x.result)) return 0;
    *e = x;
    *pos = i;
    return 1;
}

long long synth_expr_value(const struct synth_expr *e) {
    long long v = e->left;
    for (int i = 0; i < e->n_terms; i++) v = e->op[i] == '+' ? v + e->term[i] : v - e->term[i];
    return v;
}
