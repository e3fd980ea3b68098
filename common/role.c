/* role.c - output reading and prompt templates shared by the V2 roles; see role.h and
 * docs/roles.md. */
#include "common/role.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/answer.h"
#include "common/util.h"

static const char *const fail_names[ROLE_FAIL_COUNT] = {
    [ROLE_OK] = "ok",
    [ROLE_FAIL_TRUNCATED] = "truncated",
    [ROLE_FAIL_EMPTY] = "empty",
    [ROLE_FAIL_THINK_UNCLOSED] = "think-unclosed",
    [ROLE_FAIL_NO_BEGIN_MARKER] = "no-analysis-marker",
    [ROLE_FAIL_NO_SCORE_MARKER] = "no-score-marker",
    [ROLE_FAIL_MARKER_ORDER] = "marker-order",
    [ROLE_FAIL_EMPTY_ANALYSIS] = "empty-analysis",
    [ROLE_FAIL_NO_SOLUTION] = "no-solution-heading",
    [ROLE_FAIL_NO_SELF_EVAL] = "no-self-evaluation-heading",
    [ROLE_FAIL_EMPTY_PROOF] = "empty-proof",
    [ROLE_FAIL_NO_BOX] = "no-score-box",
    [ROLE_FAIL_BAD_SCORE] = "bad-score",
};

const char *role_fail_name(enum role_fail f) {
    return (f >= 0 && f < ROLE_FAIL_COUNT && fail_names[f]) ? fail_names[f] : "unknown";
}

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

struct role_span role_trim(struct role_span s) {
    if (!s.p) return s;
    while (s.n && is_blank(s.p[0])) s.p++, s.n--;
    while (s.n && is_blank(s.p[s.n - 1])) s.n--;
    return s;
}

/* Last occurrence of needle (m bytes) in s[0..n), or NULL. */
static const char *mem_last(const char *s, size_t n, const char *needle, size_t m) {
    const char *found = NULL;
    for (const char *p = s; n >= m;) {
        const char *q = memmem(p, n, needle, m);
        if (!q) break;
        found = q;
        n -= (size_t)(q + 1 - p);
        p = q + 1;
    }
    return found;
}

enum role_fail role_after_think(const char *text, size_t len, struct role_span *out) {
    static const char close_tag[] = "</think>", open_tag[] = "<think>";
    const char *s = text ? text : "";
    size_t n = text ? len : 0;
    const char *c = mem_last(s, n, close_tag, sizeof close_tag - 1);
    if (c) {
        n -= (size_t)(c + sizeof close_tag - 1 - s);
        s = c + sizeof close_tag - 1;
    }
    *out = role_trim((struct role_span){s, n});
    if (memmem(s, n, open_tag, sizeof open_tag - 1)) return ROLE_FAIL_THINK_UNCLOSED;
    return out->n ? ROLE_OK : ROLE_FAIL_EMPTY;
}

/* ---- lines and fences ---------------------------------------------------------------------- */

/* The fence character ('`' or '~') when line[0..n) opens or closes a fenced code block: at most
 * three leading spaces, then three or more of the same character. 0 otherwise. */
static char fence_char(const char *line, size_t n) {
    size_t i = 0;
    while (i < n && i < 3 && line[i] == ' ') i++;
    if (i + 3 > n) return 0;
    char c = line[i];
    if ((c != '`' && c != '~') || line[i + 1] != c || line[i + 2] != c) return 0;
    return c;
}

/* Iterates the lines of a span, telling which lie inside a closed fenced code block. A fence
 * opener with no closer of the same character after it is an ordinary line (and then no later
 * line with that character can close anything, which keeps the look-ahead linear overall). */
struct line_iter {
    const char *p, *end;
    char open;        /* fence character of the block we are in, 0 outside */
    int no_closer[2]; /* look-ahead found no more '`' / '~' fence lines */
};

static int fence_slot(char c) { return c == '~'; }

/* 1 when a line with fence character c starts somewhere in [p, end). */
static int fence_ahead(const char *p, const char *end, char c) {
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (fence_char(p, (size_t)(le - p)) == c) return 1;
        p = nl ? nl + 1 : end;
    }
    return 0;
}

/* Next line (without its '\n'); *code is 1 when it is inside a fenced block or is a fence line.
 * Returns 0 at the end. */
static int line_next(struct line_iter *it, const char **line, size_t *n, int *code) {
    if (it->p >= it->end) return 0;
    const char *nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
    const char *le = nl ? nl : it->end;
    *line = it->p;
    *n = (size_t)(le - it->p);
    it->p = nl ? nl + 1 : it->end;
    char c = fence_char(*line, *n);
    if (it->open) {
        *code = 1;
        if (c == it->open) it->open = 0;
        return 1;
    }
    if (c && !it->no_closer[fence_slot(c)]) {
        if (fence_ahead(it->p, it->end, c)) {
            it->open = c;
            *code = 1;
            return 1;
        }
        it->no_closer[fence_slot(c)] = 1;
    }
    *code = 0;
    return 1;
}

void role_find_markers(struct role_span s, const char *const *const *needles, int nm,
                       struct role_span *first, struct role_span *last) {
    DSM_ASSERT(nm >= 0 && nm <= 4);
    for (int i = 0; i < nm; i++) {
        if (first) first[i] = (struct role_span){NULL, 0};
        if (last) last[i] = (struct role_span){NULL, 0};
    }
    if (!s.p) return;
    if (!memmem(s.p, s.n, "```", 3) && !memmem(s.p, s.n, "~~~", 3)) { /* no code blocks: whole-text search */
        for (int i = 0; i < nm; i++)
            for (const char *const *sp = needles[i]; *sp; sp++) {
                size_t m = strlen(*sp);
                const char *q = memmem(s.p, s.n, *sp, m);
                if (!q) continue;
                if (first && (!first[i].p || q < first[i].p)) first[i] = (struct role_span){q, m};
                const char *l = mem_last(q, s.n - (size_t)(q - s.p), *sp, m);
                if (last && (!last[i].p || l > last[i].p)) last[i] = (struct role_span){l, m};
            }
        return;
    }
    struct line_iter it = {s.p, s.p + s.n, 0, {0, 0}};
    const char *line;
    size_t n;
    int code;
    while (line_next(&it, &line, &n, &code)) {
        if (code) continue;
        for (int i = 0; i < nm; i++) {
            for (const char *const *sp = needles[i]; *sp; sp++) {
                size_t m = strlen(*sp);
                const char *q = memmem(line, n, *sp, m);
                if (!q) continue;
                if (first && (!first[i].p || q < first[i].p)) first[i] = (struct role_span){q, m};
                const char *l = mem_last(q, n - (size_t)(q - line), *sp, m);
                if (last && (!last[i].p || l > last[i].p)) last[i] = (struct role_span){l, m};
            }
        }
    }
}

/* 1 when line[0..n) is a heading for title: "## title" or stars around it, blanks allowed around
 * the whole and inside the stars. */
static int heading_is(const char *line, size_t n, const char *title) {
    struct role_span t = role_trim((struct role_span){line, n});
    size_t m = strlen(title);
    if (t.n >= 3 && t.p[0] == '#' && t.p[1] == '#' && t.p[2] == ' ') {
        struct role_span r = role_trim((struct role_span){t.p + 3, t.n - 3});
        return r.n == m && !memcmp(r.p, title, m);
    }
    size_t a = 0, b = t.n;
    while (a < t.n && t.p[a] == '*') a++;
    while (b > a && t.p[b - 1] == '*') b--;
    if (a == 0 || b == t.n) return 0;
    struct role_span r = role_trim((struct role_span){t.p + a, b - a});
    return r.n == m && !memcmp(r.p, title, m);
}

void role_find_sections(struct role_span s, struct role_span *solution, struct role_span *self_eval) {
    *solution = (struct role_span){NULL, 0};
    *self_eval = (struct role_span){NULL, 0};
    if (!s.p) return;
    struct line_iter it = {s.p, s.p + s.n, 0, {0, 0}};
    const char *line;
    size_t n;
    int code;
    while (line_next(&it, &line, &n, &code)) {
        if (code || n > 64) continue;
        if (!solution->p) {
            if (heading_is(line, n, "Solution")) *solution = (struct role_span){line, n};
        } else if (heading_is(line, n, "Self Evaluation")) {
            *self_eval = (struct role_span){line, n};
            return;
        }
    }
}

/* ---- scores -------------------------------------------------------------------------------- */

int role_score_parse(const char *s, size_t n, double *score) {
    struct role_span t = role_trim((struct role_span){s, n});
    if (!t.p || t.n == 0 || (t.p[0] != '0' && t.p[0] != '1')) return -1;
    int whole = t.p[0] - '0';
    int half = 0, nonzero_after = 0;
    if (t.n > 1) {
        if (t.p[1] != '.' || t.n == 2) return -1;
        for (size_t i = 2; i < t.n; i++) {
            char c = t.p[i];
            if (c < '0' || c > '9') return -1;
            if (i == 2 && c == '5') half = 1;
            else if (c != '0') nonzero_after = 1;
        }
    }
    if (nonzero_after || (half && whole == 1)) return -1;
    *score = whole + (half ? 0.5 : 0.0);
    return 0;
}

enum role_fail role_score_box(struct role_span s, double *score, char *box, size_t box_cap) {
    char tmp[ANS_MAX_LEN + 1];
    enum ans_found found = ANS_FOUND_NONE;
    *score = ROLE_NO_SCORE;
    if (box && box_cap) box[0] = 0;
    if (!s.p || s.n == 0) return ROLE_FAIL_NO_BOX;
    int rc = ans_extract(s.p, s.n, 0, tmp, sizeof tmp, &found, NULL);
    if (rc != DSM_OK) { /* the box is longer than any answer: certainly not a score */
        if (box && box_cap >= 4) memcpy(box, "...", 4);
        return ROLE_FAIL_BAD_SCORE;
    }
    if (found != ANS_FOUND_BOXED) return ROLE_FAIL_NO_BOX;
    size_t m = strlen(tmp);
    if (box && box_cap) {
        if (m < box_cap) {
            memcpy(box, tmp, m + 1);
        } else if (box_cap >= 8) {
            memcpy(box, tmp, box_cap - 4);
            memcpy(box + box_cap - 4, "...", 4);
        }
    }
    return role_score_parse(tmp, m, score) == 0 ? ROLE_OK : ROLE_FAIL_BAD_SCORE;
}

struct role_span role_between(struct role_span marker, const char *end, int end_is_marker) {
    const char *a = marker.p + marker.n;
    while (marker.n && a < end && *a == '*') a++; /* the closing ** of a bold marker */
    const char *z = end;
    while (z > a && is_blank(z[-1])) z--;
    while (end_is_marker && z > a && z[-1] == '*') z--; /* the opening ** of a bold marker at end */
    return role_trim((struct role_span){a, (size_t)(z - a)});
}

enum role_fail role_parse_analysis(struct role_span s, const char *const *begin,
                                   const char *const *score_markers, struct role_span *analysis,
                                   double *score, char *box, size_t box_cap) {
    const char *const *needles[2] = {begin, score_markers};
    struct role_span first[2], last[2];
    *score = ROLE_NO_SCORE;
    if (box && box_cap) box[0] = 0;
    *analysis = role_trim(s);
    role_find_markers(s, needles, 2, first, last);
    const char *end = s.p ? s.p + s.n : NULL;
    struct role_span b = first[0], m = last[1];
    if (b.p) *analysis = role_between(b, end, 0);
    if (!b.p) return ROLE_FAIL_NO_BEGIN_MARKER;
    if (!m.p) return ROLE_FAIL_NO_SCORE_MARKER;
    if (m.p < b.p + b.n) return ROLE_FAIL_MARKER_ORDER;
    *analysis = role_between(b, m.p, 1);
    if (analysis->n == 0) return ROLE_FAIL_EMPTY_ANALYSIS;
    return role_score_box((struct role_span){m.p + m.n, (size_t)(end - (m.p + m.n))}, score, box, box_cap);
}

/* ---- templates ------------------------------------------------------------------------------ */

void role_template_builtin(struct role_template *t, const char *name, const char *version,
                           const char *text, const char *sha12) {
    memset(t, 0, sizeof *t);
    t->name = name;
    t->text = text;
    snprintf(t->id, sizeof t->id, "%s.%s@%s", name, version, sha12);
}

/* Check that every "{{" has a "}}" with a plausible key between. */
static int template_check(const char *text, const char *what, struct dsm_err *err) {
    for (const char *p = strstr(text, "{{"); p; p = strstr(p + 2, "{{")) {
        const char *e = strstr(p + 2, "}}");
        if (!e || e - p > 66)
            return dsm_errf(err, DSM_EINVAL, "%s: \"{{\" at byte %zu has no \"}}\" closing a placeholder name",
                            what, (size_t)(p - text));
        p = e;
    }
    return DSM_OK;
}

int role_template_load(const char *path, struct role_template *t, struct dsm_err *err) {
    memset(t, 0, sizeof *t);
    char *text = NULL;
    size_t len = 0;
    int rc = dsm_file_read(path, &text, &len, err);
    if (rc) return rc;
    if (len == 0 || strlen(text) != len) {
        free(text);
        return dsm_errf(err, DSM_EINVAL, "prompt template %s: %s", path,
                        len ? "contains a NUL byte" : "is empty");
    }
    if ((rc = template_check(text, path, err))) {
        free(text);
        return rc;
    }
    uint64_t h = 1469598103934665603ull; /* FNV-1a 64 */
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)text[i]) * 1099511628211ull;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    t->name = "file";
    t->text = text;
    t->owned = text;
    snprintf(t->id, sizeof t->id, "file:%.100s@%012llx", base, (unsigned long long)(h >> 16));
    return DSM_OK;
}

void role_template_free(struct role_template *t) {
    if (!t) return;
    free(t->owned);
    t->owned = NULL;
    t->text = NULL;
}

struct sbuf {
    char *p;
    size_t n, cap;
};

static int sbuf_put(struct sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return DSM_ENOMEM;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return DSM_OK;
}

int role_template_render(const struct role_template *t, const char *const *keys,
                         const char *const *vals, int n, char **out, size_t *len,
                         struct dsm_err *err) {
    *out = NULL;
    if (len) *len = 0;
    if (!t || !t->text) return dsm_errf(err, DSM_EINVAL, "prompt template: none given");
    DSM_ASSERT(n >= 0 && n <= 16);
    int used[16] = {0};
    struct sbuf b = {0};
    const char *p = t->text;
    int rc = DSM_OK;
    for (;;) {
        const char *o = strstr(p, "{{");
        const char *e = o ? strstr(o + 2, "}}") : NULL;
        if (!o || !e) {
            rc = sbuf_put(&b, p, strlen(p));
            break;
        }
        if ((rc = sbuf_put(&b, p, (size_t)(o - p)))) break;
        size_t kl = (size_t)(e - o - 2);
        int k = -1;
        for (int i = 0; i < n; i++)
            if (strlen(keys[i]) == kl && !memcmp(keys[i], o + 2, kl)) k = i;
        if (k < 0) {
            rc = dsm_errf(err, DSM_EINVAL, "prompt template %s: no value for placeholder {{%.*s}}", t->id,
                          (int)(kl > 64 ? 64 : kl), o + 2);
            goto fail;
        }
        if (!vals[k]) {
            rc = dsm_errf(err, DSM_EINVAL, "prompt template %s: the value of {{%s}} is NULL", t->id, keys[k]);
            goto fail;
        }
        used[k] = 1;
        if ((rc = sbuf_put(&b, vals[k], strlen(vals[k])))) break;
        p = e + 2;
    }
    if (rc) {
        rc = dsm_errf(err, DSM_ENOMEM, "prompt template %s: out of memory", t->id);
        goto fail;
    }
    for (int i = 0; i < n; i++)
        if (!used[i]) {
            rc = dsm_errf(err, DSM_EINVAL, "prompt template %s has no {{%s}} placeholder", t->id, keys[i]);
            goto fail;
        }
    *out = b.p;
    if (len) *len = b.n;
    return DSM_OK;
fail:
    free(b.p);
    return rc;
}
