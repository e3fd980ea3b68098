/* answer_norm.c - answer string normalisation (see answer.h, docs/answer-checking.md).
 *
 * A fixed sequence of passes, each a linear scan from one buffer into another:
 *   1. tokens: drop $ \( \) \[ \] \$, \left \right \big.., spacing commands (\, \! \; \: \quad ~);
 *      \dfrac \tfrac \cfrac -> \frac, \dbinom \tbinom -> \binom, \leq -> \le, \geq -> \ge;
 *      \textbf \mathbf \boxed \fbox -> their group; \mbox \textrm \mathrm -> \text; a few Unicode
 *      signs (−, ×, ·, π, ∞, √, ≤, ≥, ±, °, non-breaking space) -> LaTeX;
 *   2. degrees: ^{\circ}, ^\circ, \circ removed;
 *   3. numbers: {,} between digits removed, thousands commas (1,234,567 outside brackets) and
 *      single-space groups (10 080) removed, base subscripts of numerals (204_5, 4210_{5})
 *      removed;
 *   4. words: "\text{ and }", " and ", "\text{ or }" -> ","; trailing units (\text{...} with an
 *      optional ^n, or plain words of two or more letters) removed when a digit remains;
 *   5. trim (also before 3): white space, a trailing period / comma / "\\", braces around the
 *      whole answer;
 *   6. spaces: removed except between two letters or digits.
 */
#include <ctype.h>
#include <string.h>

#include "common/answer.h"

struct sb {
    char *p;
    size_t n, cap;
    int overflow;
};

static void sb_putn(struct sb *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->overflow = 1;
        return;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_puts(struct sb *b, const char *s) { sb_putn(b, s, strlen(s)); }
static void sb_putc(struct sb *b, char c) { sb_putn(b, &c, 1); }

static int starts(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

/* Command name length at s ('\' + letters, or '\' + one char). */
static size_t cmd_len_at(const char *s) {
    if (s[0] != '\\' || !s[1]) return s[0] == '\\' ? 1 : 0;
    if (!isalpha((unsigned char)s[1])) return 2;
    size_t k = 1;
    while (isalpha((unsigned char)s[k])) k++;
    return k;
}

static int cmd_eq(const char *s, size_t n, const char *name) {
    return n == strlen(name) + 1 && !memcmp(s + 1, name, n - 1);
}

struct rewrite {
    const char *from; /* command name without the backslash */
    const char *to;   /* replacement text ("" = drop) */
};

static const struct rewrite cmd_rewrites[] = {
    {"left", ""}, {"right", ""}, {"bigl", ""}, {"bigr", ""}, {"Bigl", ""}, {"Bigr", ""},
    {"biggl", ""}, {"biggr", ""}, {"Biggl", ""}, {"Biggr", ""}, {"big", ""}, {"Big", ""},
    {"bigg", ""}, {"Bigg", ""}, {"middle", ""},
    {"displaystyle", " "}, {"textstyle", " "}, {"quad", " "}, {"qquad", " "}, {"limits", ""},
    {"dfrac", "\\frac"}, {"tfrac", "\\frac"}, {"cfrac", "\\frac"}, {"dbinom", "\\binom"},
    {"tbinom", "\\binom"}, {"leq", "\\le"}, {"geq", "\\ge"}, {"neq", "\\ne"}, {"leqslant", "\\le"},
    {"geqslant", "\\ge"}, {"lt", "<"}, {"gt", ">"}, {"textbf", ""}, {"mathbf", ""},
    {"boxed", ""}, {"fbox", ""}, {"bm", ""}, {"boldsymbol", ""}, {"mathit", ""},
    {"mbox", "\\text"}, {"textrm", "\\text"}, {"mathrm", "\\text"}, {"textnormal", "\\text"},
    {"textup", "\\text"}, {"hbox", "\\text"}, {"mathsf", "\\text"}, {"textsf", "\\text"},
    {"textit", "\\text"}, {"emph", "\\text"}, {"dots", "\\dots"}, {"ldots", "\\dots"},
    {"cdots", "\\dots"}, {"infin", "\\infty"}, {"degree", "\\circ"}, {"tfrac", "\\frac"},
};

static const struct rewrite utf8_rewrites[] = {
    {"\xe2\x88\x92", "-"},      {"\xe2\x80\x93", "-"},       {"\xc3\x97", "\\times "},
    {"\xc2\xb7", "\\cdot "},    {"\xe2\x8b\x85", "\\cdot "}, {"\xcf\x80", "\\pi "},
    {"\xe2\x88\x9e", "\\infty "}, {"\xe2\x88\x9a", "\\sqrt"}, {"\xe2\x89\xa4", "\\le "},
    {"\xe2\x89\xa5", "\\ge "},  {"\xc2\xb1", "\\pm "},       {"\xc2\xb0", "\\circ "},
    {"\xc2\xa0", " "},          {"\xe2\x80\xaf", " "},       {"\xe2\x80\x89", " "},
};

/* Pass 1. */
static void pass_tokens(const char *s, struct sb *o) {
    while (*s) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x80) {
            int hit = 0;
            for (size_t i = 0; i < sizeof utf8_rewrites / sizeof utf8_rewrites[0] && !hit; i++)
                if (starts(s, utf8_rewrites[i].from)) {
                    sb_puts(o, utf8_rewrites[i].to);
                    s += strlen(utf8_rewrites[i].from);
                    hit = 1;
                }
            if (!hit) sb_putc(o, *s++);
            continue;
        }
        if (c == '$') {
            s++;
            continue;
        }
        if (c == '~' || c == '\t' || c == '\n' || c == '\r') {
            sb_putc(o, ' ');
            s++;
            continue;
        }
        if (c != '\\') {
            sb_putc(o, *s++);
            continue;
        }
        size_t n = cmd_len_at(s);
        if (n == 2) {
            char d = s[1];
            if (d == '$' || d == '(' || d == ')' || d == '[' || d == ']') {
                s += 2;
                continue;
            }
            if (d == '!' || (d == ',' && o->n && isdigit((unsigned char)o->p[o->n - 1]) &&
                             isdigit((unsigned char)s[2]))) {
                /* negative space; a thin space between digits is a thousands separator; after
                 * "10,\!" the spaces before the next digit group go too */
                s += 2;
                if (o->n && o->p[o->n - 1] == ',')
                    while (*s == ' ') s++;
                continue;
            }
            if (d == ',' || d == ';' || d == ':' || d == ' ') {
                sb_putc(o, ' ');
                s += 2;
                continue;
            }
            if (d == '%') {
                sb_putc(o, '%');
                s += 2;
                continue;
            }
            sb_putn(o, s, 2);
            s += 2;
            continue;
        }
        if (n < 2) {
            sb_putc(o, *s++);
            continue;
        }
        int hit = 0;
        for (size_t i = 0; i < sizeof cmd_rewrites / sizeof cmd_rewrites[0] && !hit; i++) {
            if (!cmd_eq(s, n, cmd_rewrites[i].from)) continue;
            hit = 1;
            int lr = !strcmp(cmd_rewrites[i].from, "left") || !strcmp(cmd_rewrites[i].from, "right");
            sb_puts(o, cmd_rewrites[i].to);
            s += n;
            if (lr && *s == '.') s++; /* \left. is an invisible delimiter */
            /* keep "\frac" apart from a following letter: \dfrac12 -> \frac12 is fine, but a
             * replacement command followed by a letter needs a space */
            if (cmd_rewrites[i].to[0] == '\\' && isalpha((unsigned char)*s)) sb_putc(o, ' ');
        }
        if (!hit) {
            sb_putn(o, s, n);
            s += n;
        }
    }
}

/* Pass 2: degree marks. */
static void pass_degrees(const char *s, struct sb *o) {
    while (*s) {
        if (s[0] == '^') {
            const char *t = s + 1;
            int brace = 0;
            while (*t == ' ') t++;
            if (*t == '{') brace = 1, t++;
            while (*t == ' ') t++;
            if (starts(t, "\\circ") && !isalpha((unsigned char)t[5])) {
                t += 5;
                while (*t == ' ') t++;
                if (!brace || *t == '}') {
                    s = t + brace;
                    continue;
                }
            }
        }
        if (starts(s, "\\circ") && !isalpha((unsigned char)s[5])) {
            s += 5;
            continue;
        }
        sb_putc(o, *s++);
    }
}

/* Pass 3: separators and base subscripts of numerals. */
static void pass_numbers(const char *s, struct sb *o) {
    int depth = 0;
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        char c = s[i];
        /* brackets, not braces: \boxed{1,000} is a number, (2,125) a pair */
        if (c == '(' || c == '[') depth++;
        if ((c == ')' || c == ']') && depth > 0) depth--;
        /* {,} between digits */
        if (c == '{' && s[i + 1] == ',' && s[i + 2] == '}' && i > 0 &&
            isdigit((unsigned char)s[i - 1]) && isdigit((unsigned char)s[i + 3])) {
            i += 3;
            continue;
        }
        /* a numeral starting here: 1-3 digits then groups ",ddd" (no spaces) */
        if (isdigit((unsigned char)c) && (i == 0 || (!isalnum((unsigned char)s[i - 1]) &&
                                                     s[i - 1] != '.' && s[i - 1] != ',' &&
                                                     s[i - 1] != '_'))) {
            size_t j = i;
            while (j < len && isdigit((unsigned char)s[j])) j++;
            size_t lead = j - i, groups = 0, k = j;
            char sep = s[j] == ' ' ? ' ' : ',';
            while (k + 3 < len + 1 && s[k] == sep && isdigit((unsigned char)s[k + 1]) &&
                   isdigit((unsigned char)s[k + 2]) && isdigit((unsigned char)s[k + 3]) &&
                   !isdigit((unsigned char)s[k + 4]))
                k += 4, groups++;
            if (depth == 0 && lead <= 3 && groups > 0 && !(s[k] == '.' && isdigit((unsigned char)s[k + 1])) &&
                s[k] != ',' && !(sep == ' ' && (s[k] == '^' || s[k] == '.'))) {
                for (size_t t = i; t < k; t++)
                    if (s[t] != sep) sb_putc(o, s[t]);
                i = k;
                continue;
            }
            /* base subscript: 204_5, 4210_{5} (numeral not part of a name) */
            sb_putn(o, s + i, j - i);
            i = j;
            if (s[i] == '.' && isdigit((unsigned char)s[i + 1])) continue;
            if (s[i] == '_') {
                size_t t = i + 1;
                if (s[t] == '{') {
                    size_t u = t + 1;
                    while (isdigit((unsigned char)s[u])) u++;
                    if (u > t + 1 && s[u] == '}') i = u + 1;
                } else if (isdigit((unsigned char)s[t])) {
                    while (isdigit((unsigned char)s[t])) t++;
                    i = t;
                }
            }
            continue;
        }
        sb_putc(o, c);
        i++;
    }
}

static int has_digit(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (isdigit((unsigned char)s[i])) return 1;
    return 0;
}

/* Length of s without a trailing unit, or n when there is none. */
static size_t strip_unit(const char *s, size_t n) {
    size_t e = n;
    while (e && s[e - 1] == ' ') e--;
    /* optional ^2, ^3, ^{2} after the unit */
    size_t u = e;
    if (u >= 2 && isdigit((unsigned char)s[u - 1]) && s[u - 2] == '^') u -= 2;
    else if (u >= 4 && s[u - 1] == '}' && isdigit((unsigned char)s[u - 2]) && s[u - 3] == '{' &&
             s[u - 4] == '^')
        u -= 4;
    while (u && s[u - 1] == ' ') u--;
    if (u && s[u - 1] == '}') { /* \text{...} */
        int depth = 0;
        size_t k = u;
        while (k-- > 0) {
            if (s[k] == '}') depth++;
            else if (s[k] == '{' && --depth == 0) break;
        }
        if (depth == 0 && k >= 5 && !memcmp(s + k - 5, "\\text", 5) && has_digit(s, k - 5))
            return k - 5;
        return n;
    }
    size_t w = u;
    while (w && isalpha((unsigned char)s[w - 1])) w--;
    if (u - w >= 2 && w && s[w - 1] == ' ' && has_digit(s, w)) {
        /* not a command's name (\pi r would stop at the space anyway) */
        return w;
    }
    return n;
}

/* Pass 4: conjunctions and units. */
static void pass_words(const char *s, struct sb *o) {
    static const char *const conj[] = {"\\text{ and }", "\\text{and}", "\\text{ or }",
                                       "\\text{or}", " and ", " or "};
    while (*s) {
        int hit = 0;
        for (size_t i = 0; i < sizeof conj / sizeof conj[0] && !hit; i++)
            if (starts(s, conj[i])) {
                size_t k = o->n;
                while (k && o->p[k - 1] == ' ') k--;
                if (!k || o->p[k - 1] != ',') sb_putc(o, ','); /* "a, and b" has one comma */
                s += strlen(conj[i]);
                hit = 1;
            }
        if (!hit) sb_putc(o, *s++);
    }
    size_t n = o->n;
    for (int round = 0; round < 4; round++) {
        size_t m = strip_unit(o->p, n);
        if (m == n) break;
        n = m;
    }
    o->n = n;
    if (o->cap) o->p[n] = 0;
}

/* 1 when s[0..n) is wrapped in one matching pair of braces. */
static int wrapped_in_braces(const char *s, size_t n) {
    if (n < 2 || s[0] != '{' || s[n - 1] != '}') return 0;
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            i++;
            continue;
        }
        if (s[i] == '{') depth++;
        else if (s[i] == '}' && --depth == 0 && i != n - 1) return 0;
    }
    return depth == 0;
}

/* Pass 5, in place: outer white space, a trailing period / comma / "\\", braces around all. */
static void pass_trim(struct sb *o) {
    char *s = o->p;
    size_t a = 0, n = o->n;
    for (int changed = 1; changed;) {
        changed = 0;
        while (a < n && s[a] == ' ') a++, changed = 1;
        while (n > a && s[n - 1] == ' ') n--, changed = 1;
        if (n > a && (s[n - 1] == '.' || s[n - 1] == ',' || s[n - 1] == ';')) {
            /* a trailing period, not a decimal point like "5." (still dropped: 5. = 5) */
            n--, changed = 1;
        }
        if (n >= a + 2 && s[n - 1] == '\\' && s[n - 2] == '\\') n -= 2, changed = 1;
        if (wrapped_in_braces(s + a, n - a)) a++, n--, changed = 1;
    }
    memmove(s, s + a, n - a);
    o->n = n - a;
    if (o->cap) s[o->n] = 0;
}

/* Pass 6, in place: spaces removed except between two letters or digits. */
static void pass_spaces(struct sb *o) {
    char *s = o->p;
    size_t a = 0, n = o->n, w = 0;
    for (size_t i = a; i < n; i++) {
        if (s[i] == ' ') {
            char prev = w ? s[w - 1] : 0, next = i + 1 < n ? s[i + 1] : 0;
            if (isalnum((unsigned char)prev) && isalnum((unsigned char)next) && s[w - 1] != ' ')
                s[w++] = ' ';
            continue;
        }
        s[w++] = s[i];
    }
    o->n = w;
    if (o->cap) s[w] = 0;
}

int ans_normalize(const char *s, size_t len, char *out, size_t cap, struct dsm_err *err) {
    if (len > ANS_MAX_LEN)
        return dsm_errf(err, DSM_EINVAL, "answer: %zu bytes is longer than the %d-byte limit",
                        len, ANS_MAX_LEN);
    if (cap < 1) return dsm_errf(err, DSM_EINVAL, "answer: output buffer of size 0");
    /* two scratch buffers; passes may grow text (\times for x), so 3x plus slack */
    char a[3 * ANS_MAX_LEN + 64], b[3 * ANS_MAX_LEN + 64];
    memcpy(a, s, len);
    a[len] = 0;
    if (strlen(a) != len) a[strlen(a)] = 0; /* embedded NUL: stop there */
    struct sb x = {b, 0, sizeof b, 0}, y = {a, 0, sizeof a, 0};
    b[0] = 0;
    pass_tokens(a, &x);
    y.n = 0;
    y.p[0] = 0;
    pass_degrees(b, &y);
    pass_trim(&y);
    x.n = 0;
    x.p[0] = 0;
    pass_numbers(a, &x);
    y.n = 0;
    y.p[0] = 0;
    pass_words(b, &y);
    pass_trim(&y);
    pass_spaces(&y);
    if (x.overflow || y.overflow)
        return dsm_errf(err, DSM_EINVAL, "answer: normalised text outgrew its buffer");
    if (y.n + 1 > cap)
        return dsm_errf(err, DSM_EINVAL, "answer: normalised answer (%zu bytes) does not fit in "
                        "%zu bytes", y.n, cap);
    memcpy(out, a, y.n + 1);
    return DSM_OK;
}
