/* test_roles_fuzz.c - random mutations of the golden role outputs (tests/fixtures/roles) through the
 * three parsers, for a bounded time (DSM_FUZZ_SECONDS, default 3 s; at least 3000 rounds), under
 * the sanitizer build. Invariants checked on every input:
 *   - the score is 0, 0.5, 1 or ROLE_NO_SCORE, and set exactly when the output is well formed;
 *   - every span lies inside the input;
 *   - parsing is deterministic;
 *   - a closed code block appended after a blank line changes nothing (the whole-text marker search
 *     used when there is no fence and the line-by-line search agree);
 *   - a truncated output is never scored.
 * The seed is fixed (DSM_FUZZ_SEED to change it) so a failure can be replayed. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/role.h"
#include "common/util.h"
#include "generator/generator.h"
#include "metaverifier/metaverifier.h"
#include "test.h"
#include "verifier/verifier.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static const char *const pieces[] = {
    "\\boxed{", "}", "{", "\\boxed{1}", "\\boxed{0.5}", "\\boxed{}", "</think>", "<think>", "```\n", "~~~\n", "\n",
    "## Solution\n", "## Self Evaluation\n", "**Solution**\n", VER_MARKER_BEGIN, VER_MARKER_SCORE, VER_MARKER_SCORE_ALT,
    MVER_MARKER_BEGIN, MVER_MARKER_SCORE, "\\", "\\{", "0", "1", ".", "**", "\r\n", "\\fbox{0}", "\\boxed 1 ",
};

struct corpus {
    char *text[128];
    size_t len[128];
    int n;
};

static void load_dir(struct corpus *c, const char *dir) { /* dir shorter than 4096 bytes */
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) && c->n < 128) {
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 4, ".txt")) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct dsm_err err = {0};
        if (dsm_file_read(path, &c->text[c->n], &c->len[c->n], &err) == DSM_OK) c->n++;
    }
    closedir(d);
}

/* A mutated copy of src: pieces inserted, bytes deleted, a cut, a duplicated range. */
static char *mutate(const char *src, size_t n, size_t *out_n) {
    size_t cap = n * 2 + 4096;
    char *b = malloc(cap);
    if (!b) return NULL;
    memcpy(b, src, n);
    size_t len = n;
    int ops = 1 + (int)(next() % 6);
    for (int k = 0; k < ops; k++) {
        size_t at = len ? next() % (len + 1) : 0;
        switch (next() % 5) {
        case 0:
        case 1: {
            const char *p = pieces[next() % DSM_ARRAY_LEN(pieces)];
            size_t m = strlen(p);
            if (len + m >= cap) break;
            memmove(b + at + m, b + at, len - at);
            memcpy(b + at, p, m);
            len += m;
            break;
        }
        case 2: { /* delete a few bytes */
            size_t m = next() % 16;
            if (at + m > len) m = len - at;
            memmove(b + at, b + at + m, len - at - m);
            len -= m;
            break;
        }
        case 3: /* cut */
            len = at;
            break;
        default: { /* duplicate a range */
            size_t m = len ? next() % (len < 200 ? len + 1 : 200) : 0;
            size_t from = len > m ? next() % (len - m + 1) : 0;
            if (len + m >= cap) break;
            memmove(b + at + m, b + at, len - at);
            memmove(b + at, b + (from >= at ? from + m : from), m);
            len += m;
            break;
        }
        }
    }
    *out_n = len;
    return b;
}

static int span_in(struct role_span s, const char *t, size_t n) {
    return !s.p || (s.p >= t && s.p + s.n <= t + n);
}

static int score_ok(double s, enum role_fail f) {
    int valid = s == 0.0 || s == 0.5 || s == 1.0;
    return (f == ROLE_OK) ? valid : s == ROLE_NO_SCORE;
}

struct outcome {
    int fail;
    double score;
};

static struct outcome run_all(const char *t, size_t n, int truncated, int check, int role) {
    struct outcome o = {0, 0};
    if (role == 0) {
        struct gen_parsed g;
        gen_parse(t, n, truncated, &g);
        if (check) {
            CHECK(score_ok(g.self_score, g.fail));
            CHECK(span_in(g.proof, t, n) && span_in(g.self_evaluation, t, n) && span_in(g.analysis, t, n));
        }
        o.fail = g.fail;
        o.score = g.self_score;
    } else if (role == 1) {
        struct ver_parsed v;
        ver_parse(t, n, truncated, &v);
        if (check) CHECK(score_ok(v.score, v.fail) && span_in(v.analysis, t, n));
        o.fail = v.fail;
        o.score = v.score;
    } else {
        struct mver_parsed m;
        mver_parse(t, n, truncated, &m);
        if (check) CHECK(score_ok(m.score, m.fail) && span_in(m.analysis, t, n));
        o.fail = m.fail;
        o.score = m.score;
    }
    return o;
}

int main(void) {
    const char *s = getenv("DSM_FUZZ_SEED");
    if (s) rng = strtoull(s, NULL, 0) | 1;
    double seconds = getenv("DSM_FUZZ_SECONDS") ? atof(getenv("DSM_FUZZ_SECONDS")) : 3.0;
    struct corpus c = {0};
    static const char *const dirs[] = {"generator", "verifier", "metaverifier"};
    for (int i = 0; i < 3; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tests/fixtures/roles/%s", DSM_SOURCE_DIR, dirs[i]);
        load_dir(&c, path);
    }
    CHECK_MSG(c.n >= 45, "only %d golden outputs found", c.n);
    if (c.n == 0) return test_main_end();
    double t0 = dsm_now();
    long rounds = 0, well_formed = 0;
    static const char tail[] = "\n\n```\nHere is my evaluation of the solution:\n## Solution\n```\n";
    while (rounds < 3000 || dsm_now() - t0 < seconds) {
        int k = (int)(next() % (uint64_t)c.n);
        size_t n;
        char *t = mutate(c.text[k], c.len[k], &n);
        if (!t) break;
        int role = (int)(next() % 3);
        struct outcome a = run_all(t, n, 0, 1, role), b = run_all(t, n, 0, 0, role);
        CHECK(a.fail == b.fail && a.score == b.score);
        well_formed += a.fail == ROLE_OK;
        struct outcome tr = run_all(t, n, 1, 1, role);
        CHECK(tr.fail == ROLE_FAIL_TRUNCATED && tr.score == ROLE_NO_SCORE);
        /* a closed code block appended to a text with no fence of its own changes nothing (an
         * empty output stops being empty, so those are left out) */
        if (a.fail != ROLE_FAIL_EMPTY && !memmem(t, n, "```", 3) && !memmem(t, n, "~~~", 3)) {
            char *u = malloc(n + sizeof tail);
            if (u) {
                memcpy(u, t, n);
                memcpy(u + n, tail, sizeof tail);
                struct outcome d = run_all(u, n + sizeof tail - 1, 0, 1, role);
                /* the tail adds no box, and its marker and heading are inside code */
                CHECK_MSG(d.fail == a.fail && d.score == a.score, "role %d input %d: %s/%g vs %s/%g with a code block",
                          role, k, role_fail_name(a.fail), a.score, role_fail_name(d.fail), d.score);
                free(u);
            }
        }
        free(t);
        rounds++;
        if (test_failures > 20) break;
    }
    fprintf(stderr, "%ld mutated outputs (%ld well formed) in %.1f s\n", rounds, well_formed, dsm_now() - t0);
    for (int i = 0; i < c.n; i++) free(c.text[i]);
    return test_main_end();
}
