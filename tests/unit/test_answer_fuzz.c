/* test_answer_fuzz.c - random and mutated inputs for extraction, normalisation, the expression
 * parser and the comparison, for a bounded time (DSM_FUZZ_SECONDS, default 4 s; at least 2000
 * rounds). Run under ASan/UBSan in the test build, so any out-of-bounds access, overflow or leak
 * fails it. Also checks that every comparison ends within its time limit and is deterministic.
 * The seed is fixed (DSM_FUZZ_SEED to change it) so a failure can be replayed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/answer.h"
#include "common/mathexpr.h"
#include "common/util.h"
#include "test.h"

static uint64_t rng = 0x1234567887654321ull;

static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static const char *const pieces[] = {
    "\\frac", "\\dfrac", "{", "}", "(", ")", "[", "]", "\\{", "\\}", "^", "_", "!", "%", "\\%",
    "$", "\\$", ",", ",\\!", "{,}", "=", "<", "\\le", "\\ge", "\\ne", "\\in", "\\pm", "\\mp",
    "\\sqrt", "\\sqrt[3]", "\\pi", "e", "i", "x", "y", "n", "\\infty", "-", "+", "*", "/", "\\cdot",
    "\\times", "\\div", "0", "1", "2", "3", "7", "9", "10", ".5", "1e5", "1e-300", "999999999999",
    "12345678901234567890", "\\left(", "\\right)", "\\left.", "\\right|", "|", "\\lfloor",
    "\\rfloor", "\\lceil", "\\rceil", "\\sin", "\\cos^2", "\\tan^{-1}", "\\log_2", "\\ln", "\\exp",
    "\\binom", "\\begin{pmatrix}", "\\end{pmatrix}", "\\begin{array}{cc}", "\\end{array}", "&",
    "\\\\", "\\cup", "\\text{", "\\text{ cm}", "\\mbox{ and }", "^\\circ", "\\boxed{", "\\fbox",
    "</think>", "#### ", "the answer is ", " ", "\\", "\xe2\x88\x92", "\xcf\x80", "\xff", "\\alpha",
    "\\theta_1", "f(x)", "4\\frac{2}{3}", "\\textbf{(C)}", "(A)", "'", "~", "\\,", "\\!", "\n",
};

static size_t random_text(char *out, size_t cap) {
    size_t n = 0, k = 1 + next() % 40;
    for (size_t i = 0; i < k; i++) {
        const char *p = pieces[next() % DSM_ARRAY_LEN(pieces)];
        size_t m = strlen(p);
        if (n + m + 1 >= cap) break;
        memcpy(out + n, p, m);
        n += m;
    }
    out[n] = 0;
    return n;
}

static size_t mutate(char *s, size_t n, size_t cap) {
    int rounds = 1 + (int)(next() % 4);
    for (int r = 0; r < rounds; r++) {
        size_t at = n ? next() % (n + 1) : 0;
        switch (next() % 4) {
        case 0: /* delete a byte */
            if (n && at < n) memmove(s + at, s + at + 1, n - at), n--;
            break;
        case 1: /* insert a random byte (not NUL) */
            if (n + 2 < cap) {
                memmove(s + at + 1, s + at, n - at + 1);
                s[at] = (char)(1 + next() % 255);
                n++;
            }
            break;
        case 2: /* insert a piece */
        {
            const char *p = pieces[next() % DSM_ARRAY_LEN(pieces)];
            size_t m = strlen(p);
            if (n + m + 1 < cap) {
                memmove(s + at + m, s + at, n - at + 1);
                memcpy(s + at, p, m);
                n += m;
            }
            break;
        }
        default: /* replace a byte */
            if (n && at < n) s[at] = (char)(1 + next() % 255);
        }
    }
    s[n] = 0;
    return n;
}

/* Golden pairs are the mutation seeds. */
static char **load_seeds(int *count) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/answer/cases.tsv", DSM_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    *count = 0;
    if (!f) return NULL;
    char **seeds = calloc(1024, sizeof *seeds);
    char line[4096];
    while (seeds && fgets(line, sizeof line, f) && *count < 1020) {
        if (line[0] == '#' || line[0] == '\n') continue;
        line[strcspn(line, "\n")] = 0;
        char *a = strchr(line, '\t');
        char *b = a ? strchr(a + 1, '\t') : NULL;
        char *c = b ? strchr(b + 1, '\t') : NULL;
        if (!c) continue;
        *b = 0;
        *c = 0;
        seeds[(*count)++] = strdup(a + 1);
        seeds[(*count)++] = strdup(b + 1);
    }
    fclose(f);
    return seeds;
}

int main(void) {
    const char *env = getenv("DSM_FUZZ_SECONDS");
    double budget = env ? atof(env) : 4.0;
    if (getenv("DSM_FUZZ_SEED")) rng = strtoull(getenv("DSM_FUZZ_SEED"), NULL, 0) | 1;
    struct ans_opts o;
    ans_opts_default(&o);
    o.time_limit_s = 0.5;
    struct ans_checker *c = NULL;
    struct dsm_err err = {0};
    CHECK_OK(ans_checker_create(&o, &c, &err), &err);
    struct mx_ctx *mx = NULL;
    CHECK_OK(mx_ctx_create(4096, 200000, 0.5, &mx, &err), &err);
    if (!c || !mx) return test_main_end();
    int nseeds = 0;
    char **seeds = load_seeds(&nseeds);
    CHECK(nseeds > 100);
    static char a[8192], b[8192], out[8192];
    double t0 = dsm_now(), worst = 0;
    long rounds = 0, equal = 0, errors = 0;
    while (rounds < 2000 || dsm_now() - t0 < budget) {
        if (rounds > 2000000) break;
        size_t an;
        if (nseeds && next() % 2) {
            snprintf(a, sizeof a, "%s", seeds[next() % (uint64_t)nseeds]);
            an = mutate(a, strlen(a), 4096);
            snprintf(b, sizeof b, "%s", next() % 2 ? a : seeds[next() % (uint64_t)nseeds]);
            mutate(b, strlen(b), 4096);
        } else {
            an = random_text(a, 4096);
            random_text(b, 4096);
        }
        enum ans_found found;
        ans_extract(a, an, ANS_EXTRACT_LAST_NUMBER, out, sizeof out, &found, NULL);
        CHECK(strlen(out) <= an);
        ans_normalize(a, an, out, sizeof out, NULL);
        mx_ctx_reset(mx);
        int root;
        if (mx_parse(mx, a, an, &root, &err) == DSM_OK) {
            enum mx_verdict verdict;
            mx_compare(mx, root, root, 0, 1e-8, &verdict, NULL, &err);
        } else {
            CHECK(err.msg[0] != 0);
        }
        struct ans_verdict v1, v2;
        double s = dsm_now();
        int rc1 = ans_checker_compare(c, a, b, &v1, &err);
        double dt = dsm_now() - s;
        if (dt > worst) worst = dt;
        CHECK_MSG(dt < 2.0, "comparison took %.2f s: '%s' vs '%s'", dt, a, b);
        int rc2 = ans_checker_compare(c, a, b, &v2, &err);
        CHECK_MSG(rc1 == rc2 && (rc1 || v1.equal == v2.equal || v1.reason == ANS_R_LIMIT ||
                                 v2.reason == ANS_R_LIMIT),
                  "not deterministic: '%s' vs '%s'", a, b);
        if (rc1) errors++;
        else equal += v1.equal;
        rounds++;
    }
    fprintf(stderr, "fuzz: %ld rounds in %.1f s, %ld equal, %ld gold errors, slowest %.3f s\n",
            rounds, dsm_now() - t0, equal, errors, worst);
    for (int i = 0; i < nseeds; i++) free(seeds[i]);
    free(seeds);
    mx_ctx_destroy(mx);
    ans_checker_destroy(c);
    return test_main_end();
}
