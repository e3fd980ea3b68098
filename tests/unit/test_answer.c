/* test_answer.c - golden cases for answer extraction, normalisation and equivalence.
 * The table tests/fixtures/answer/cases.tsv holds gold / pred / expected pairs; the extraction and
 * normalisation cases are here. Every case is also checked with gold and pred swapped where the
 * relation is symmetric (all of ours are, except choice letters with trailing text). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/answer.h"
#include "common/mathexpr.h"
#include "common/util.h"
#include "test.h"

static struct ans_checker *checker;

static int judge(const char *gold, const char *pred, struct ans_verdict *v) {
    struct dsm_err err = {0};
    int rc = ans_checker_compare(checker, gold, pred, v, &err);
    if (rc) fprintf(stderr, "  error: %s\n", err.msg);
    return rc;
}

static void test_table(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/answer/cases.tsv", DSM_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    if (!f) return;
    char line[4096];
    int n = 0, lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        char *cols[4] = {0};
        char *p = line;
        for (int k = 0; k < 4 && p; k++) {
            cols[k] = p;
            p = strchr(p, '\t');
            if (p) *p++ = 0;
        }
        CHECK_MSG(cols[3] != NULL, "line %d: expected 4 tab-separated columns", lineno);
        if (!cols[3]) continue;
        int want = !strcmp(cols[0], "equal");
        CHECK_MSG(want || !strcmp(cols[0], "different"), "line %d: bad expectation '%s'", lineno,
                  cols[0]);
        struct ans_verdict v;
        CHECK(judge(cols[1], cols[2], &v) == DSM_OK);
        CHECK_MSG(v.equal == want, "line %d (%s): gold '%s' pred '%s' judged %s by %s", lineno,
                  cols[3], cols[1], cols[2], v.equal ? "equal" : "different",
                  ans_reason_name(v.reason));
        /* symmetry: swapping sides gives the same verdict (choice answers with text excepted) */
        if (!strstr(cols[3], "choice with")) {
            struct ans_verdict w;
            CHECK(judge(cols[2], cols[1], &w) == DSM_OK || !cols[2][0]);
            CHECK_MSG(w.equal == want, "line %d swapped (%s): gold '%s' pred '%s' judged %s by %s",
                      lineno, cols[3], cols[2], cols[1], w.equal ? "equal" : "different",
                      ans_reason_name(w.reason));
        }
        n++;
    }
    fclose(f);
    CHECK_MSG(n >= 150, "only %d cases in the table", n);
    fprintf(stderr, "golden table: %d cases\n", n);
}

struct extract_case {
    const char *text;
    unsigned flags;
    enum ans_found found;
    const char *answer;
};

static const struct extract_case extract_cases[] = {
    {"so the answer is $\\boxed{5}$.", 0, ANS_FOUND_BOXED, "5"},
    {"\\boxed{1} then \\boxed{2}", 0, ANS_FOUND_BOXED, "2"},
    {"\\boxed{\\frac{1}{2}}", 0, ANS_FOUND_BOXED, "\\frac{1}{2}"},
    {"\\boxed{\\{1,2\\}}", 0, ANS_FOUND_BOXED, "\\{1,2\\}"},
    {"\\fbox{7}", 0, ANS_FOUND_BOXED, "7"},
    {"\\boxed 5$ done", 0, ANS_FOUND_BOXED, "5"},
    {"\\boxed{3} and an empty \\boxed{ }", 0, ANS_FOUND_BOXED, "3"},
    {"<think>maybe \\boxed{4}</think> the answer is \\boxed{6}", 0, ANS_FOUND_BOXED, "6"},
    {"<think>\\boxed{4}</think> no box here", 0, ANS_FOUND_NONE, ""},
    {"\\boxed{3} but then \\boxed{\\frac{1}{2}", 0, ANS_FOUND_NONE, ""},
    {"Janet sells 9 eggs.\n#### 18", 0, ANS_FOUND_HASH, "18"},
    {"#### 1,000\n", 0, ANS_FOUND_HASH, "1,000"},
    {"So the answer is 42.", 0, ANS_FOUND_PHRASE, "42"},
    {"The final answer is $\\frac{3}{4}$. I hope", 0, ANS_FOUND_PHRASE, "$\\frac{3}{4}$"},
    {"Final Answer: 3.5\nmore text", 0, ANS_FOUND_PHRASE, "3.5"},
    {"we get 12 and then 15 apples", 0, ANS_FOUND_NONE, ""},
    {"we get 12 and then 15 apples", ANS_EXTRACT_LAST_NUMBER, ANS_FOUND_LAST_NUMBER, "15"},
    {"total 1,234.5 dollars", ANS_EXTRACT_LAST_NUMBER, ANS_FOUND_LAST_NUMBER, "1,234.5"},
    {"it is -7.", ANS_EXTRACT_LAST_NUMBER, ANS_FOUND_LAST_NUMBER, "-7"},
    {"no numbers at all", ANS_EXTRACT_LAST_NUMBER, ANS_FOUND_NONE, ""},
    {"", ANS_EXTRACT_LAST_NUMBER, ANS_FOUND_NONE, ""},
    {"\\boxed{a \\\\ b}", 0, ANS_FOUND_BOXED, "a \\\\ b"},
    {"\\boxedfoo{3}", 0, ANS_FOUND_NONE, ""},
};

static void test_extract(void) {
    for (size_t i = 0; i < DSM_ARRAY_LEN(extract_cases); i++) {
        const struct extract_case *c = &extract_cases[i];
        char out[256];
        enum ans_found found;
        struct dsm_err err = {0};
        CHECK_OK(ans_extract(c->text, strlen(c->text), c->flags, out, sizeof out, &found, &err), &err);
        CHECK_MSG(found == c->found && !strcmp(out, c->answer),
                  "extract case %zu: got %s '%s', want %s '%s'", i, ans_found_name(found), out,
                  ans_found_name(c->found), c->answer);
    }
    /* too small a buffer is an error, not a truncation */
    char small[3];
    enum ans_found found;
    struct dsm_err err = {0};
    CHECK(ans_extract("\\boxed{12345}", 13, 0, small, sizeof small, &found, &err) == DSM_EINVAL);
}

struct norm_case {
    const char *in, *out;
};

static const struct norm_case norm_cases[] = {
    {"$\\dfrac{1}{2}$", "\\frac{1}{2}"},
    {"\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"},
    {"10,\\!080", "10080"},
    {"1{,}000", "1000"},
    {"58,500", "58500"},
    {"(2,125)", "(2,125)"},
    {"1,2,3", "1,2,3"},
    {"106^\\circ", "106"},
    {"90^{\\circ}", "90"},
    {"5.4 \\text{ cents}", "5.4"},
    {"15\\mbox{ cm}^2", "15"},
    {"5.", "5"},
    {"\\text{Evelyn}", "\\text{Evelyn}"},
    {"\\$18.90", "18.90"},
    {"204_5", "204"},
    {"x_5", "x_5"},
    {"\xe2\x88\x92" "3", "-3"},
    {"3 and 5", "3,5"},
    {"{5}", "5"},
    {"\\pi r^2", "\\pi r^2"},
};

static void test_normalize(void) {
    for (size_t i = 0; i < DSM_ARRAY_LEN(norm_cases); i++) {
        char out[256];
        struct dsm_err err = {0};
        CHECK_OK(ans_normalize(norm_cases[i].in, strlen(norm_cases[i].in), out, sizeof out, &err), &err);
        CHECK_MSG(!strcmp(out, norm_cases[i].out), "normalize '%s': got '%s', want '%s'",
                  norm_cases[i].in, out, norm_cases[i].out);
    }
}

static void test_errors_and_grade(void) {
    struct ans_verdict v;
    struct dsm_err err = {0};
    CHECK(ans_checker_compare(checker, "", "5", &v, &err) == DSM_EINVAL);
    CHECK(strstr(err.msg, "empty") != NULL);
    CHECK(ans_checker_compare(checker, "$ $", "5", &v, &err) == DSM_EINVAL);
    CHECK_OK(ans_checker_compare(checker, "5", "", &v, &err), &err);
    CHECK(!v.equal && v.reason == ANS_R_EMPTY);
    /* a prediction longer than the limit is different, not an error */
    char *big = malloc(ANS_MAX_LEN + 100);
    memset(big, '1', ANS_MAX_LEN + 99);
    big[ANS_MAX_LEN + 99] = 0;
    CHECK_OK(ans_checker_compare(checker, "5", big, &v, &err), &err);
    CHECK(!v.equal);
    CHECK(ans_checker_compare(checker, big, "5", &v, &err) == DSM_EINVAL);
    free(big);
    const char *out = "Let me think. <think>\\boxed{3}</think> So $x = \\boxed{\\dfrac{14}{3}}$.";
    CHECK_OK(ans_checker_grade(checker, "4\\frac{2}{3}", out, strlen(out), 0, &v, &err), &err);
    CHECK(v.equal);
    CHECK_OK(ans_checker_grade(checker, "18", "#### 18", 7, 0, &v, &err), &err);
    CHECK(v.equal);
    CHECK_OK(ans_checker_grade(checker, "18", "I got 18", 8, 0, &v, &err), &err);
    CHECK(!v.equal && v.reason == ANS_R_EMPTY);
    CHECK_OK(ans_checker_grade(checker, "18", "I got 18", 8, ANS_EXTRACT_LAST_NUMBER, &v, &err), &err);
    CHECK(v.equal);
    CHECK(ans_checker_grade(checker, "", "I got 18", 8, 0, &v, &err) == DSM_EINVAL);
    /* one-shot helper and options */
    struct ans_opts o;
    ans_opts_default(&o);
    CHECK_OK(ans_equal("\\frac{20000}{\\pi}", "6366.2", &o, &v, &err), &err);
    CHECK(!v.equal);
    o.rel_tol = 1e-4;
    CHECK_OK(ans_equal("\\frac{20000}{\\pi}", "6366.2", &o, &v, &err), &err);
    CHECK(v.equal && v.reason == ANS_R_FLOAT);
    o.rel_tol = 2;
    struct ans_checker *bad = NULL;
    CHECK(ans_checker_create(&o, &bad, &err) == DSM_EINVAL && bad == NULL);
    ans_checker_destroy(NULL);
}

static void test_limits(void) {
    /* a tiny step budget: verdict "different" by limit, never a hang */
    struct ans_opts o;
    ans_opts_default(&o);
    o.max_steps = 50;
    struct ans_checker *c = NULL;
    struct dsm_err err = {0};
    CHECK_OK(ans_checker_create(&o, &c, &err), &err);
    struct ans_verdict v;
    CHECK_OK(ans_checker_compare(c, "(x+1)^{10}", "(1+x)^{10}+0", &v, &err), &err);
    CHECK(!v.equal && v.reason == ANS_R_LIMIT);
    ans_checker_destroy(c);
    /* deep nesting and huge exponents */
    char deep[2200];
    size_t k = 0;
    for (int i = 0; i < 1000; i++) deep[k++] = '(';
    deep[k++] = '1';
    for (int i = 0; i < 1000; i++) deep[k++] = ')';
    deep[k] = 0;
    double t0 = dsm_now();
    CHECK_OK(ans_checker_compare(checker, "1", deep, &v, &err), &err);
    CHECK(!v.equal);
    CHECK_OK(ans_checker_compare(checker, "2^{2^{2^{2^{2^{2}}}}}", "3^{3^{3^{3^{3}}}}", &v, &err), &err);
    CHECK_OK(ans_checker_compare(checker, "10^{10^{10}}", "10^{10^{10}}+1", &v, &err), &err);
    CHECK(!v.equal); /* both overflow: undecidable, falls back to text */
    CHECK_OK(ans_checker_compare(checker, "1000000!", "1000001!", &v, &err), &err);
    CHECK(!v.equal);
    CHECK_OK(ans_checker_compare(checker, "\\frac{1}{0}", "\\frac{1}{0}", &v, &err), &err);
    CHECK(v.equal); /* identical strings */
    /* inputs the fuzzer found or that once looked dangerous: a verdict, no crash */
    static const char *const hostile[] = {
        "\\{}", "\\{", "\\}", "(", ")", "(]", "\\begin{pmatrix}", "\\begin{pmatrix}\\end{pmatrix}",
        "\\begin{array}{", "\\frac{", "\\frac", "\\sqrt[", "^", "_", "x_{", "\\left(", "\\text{",
        "\\pm", "\\pm\\pm\\pm\\pm", ",,,,", "=", "x=", "=5", "<", "\\in", "\\cup", "\\cup\\cup",
        "|", "||", "\\lfloor", "0^{-1}", "0^0", "(-8)^{1/3}", "\\sqrt[0]{2}", "\\log_1 5", "1/0",
        "\\binom{-3}{2}", "(-1)!", "0.5!", "\\sin^{-1}", "9999999999999999999^{99999}", "1e999999",
        "\\infty-\\infty", "\\frac{0}{0}", "\\boxed{", "\\", "\\\\", "$", "\\$", "%", "\\%",
    };
    for (size_t i = 0; i < DSM_ARRAY_LEN(hostile); i++) {
        for (size_t j = 0; j < DSM_ARRAY_LEN(hostile); j += 7) {
            int rc = ans_checker_compare(checker, hostile[i], hostile[j], &v, &err);
            CHECK(rc == DSM_OK || rc == DSM_EINVAL);
            rc = ans_checker_compare(checker, "5", hostile[i], &v, &err);
            CHECK(rc == DSM_OK && !v.equal);
        }
    }
    CHECK(dsm_now() - t0 < 5.0);
}

static void test_mathexpr_direct(void) {
    struct mx_ctx *ctx = NULL;
    struct dsm_err err = {0};
    CHECK_OK(mx_ctx_create(256, 100000, 0, &ctx, &err), &err);
    int a, b;
    CHECK_OK(mx_parse(ctx, "x^2-1", 5, &a, &err), &err);
    CHECK_OK(mx_parse(ctx, "(x-1)(x+1)", 10, &b, &err), &err);
    enum mx_verdict verdict;
    CHECK_OK(mx_compare(ctx, a, b, 0, 1e-9, &verdict, NULL, &err), &err);
    CHECK(verdict == MX_EQUAL);
    CHECK(mx_has_vars(ctx, a) && !mx_is_constant(ctx, a));
    CHECK(mx_parse(ctx, "(1+", 3, &a, &err) == DSM_EINVAL);
    CHECK(strstr(err.msg, "offset") != NULL);
    CHECK(mx_parse(ctx, "\\frac{1}", 8, &a, &err) == DSM_EINVAL);
    CHECK(mx_parse(ctx, "", 0, &a, &err) == DSM_EINVAL);
    /* the node pool fills: an error, not a crash */
    char big[4000];
    size_t k = 0;
    for (int i = 0; i < 500; i++) big[k++] = 'x', big[k++] = '+';
    big[k++] = '1';
    CHECK(mx_parse(ctx, big, k, &a, &err) == DSM_EINVAL);
    CHECK(mx_ctx_limit_hit(ctx));
    mx_ctx_reset(ctx);
    CHECK(!mx_ctx_limit_hit(ctx));
    CHECK(mx_ctx_create(1, 1, 0, &(struct mx_ctx *){NULL}, &err) == DSM_EINVAL);
    mx_ctx_destroy(ctx);
    /* a loop-built chain deeper than the evaluators recurse: unknown, not a stack overflow */
    CHECK_OK(mx_ctx_create(100000, 10000000, 0, &ctx, &err), &err);
    size_t terms = 20000, n = 0;
    char *chain = malloc(2 * terms + 1);
    for (size_t i = 0; i < terms; i++) chain[n++] = 'x', chain[n++] = '+';
    chain[--n] = 0;
    CHECK_OK(mx_parse(ctx, chain, n, &a, &err), &err);
    CHECK_OK(mx_parse(ctx, "20000x", 6, &b, &err), &err);
    CHECK(mx_has_vars(ctx, a) && mx_has_vars(ctx, b) && !mx_is_constant(ctx, a));
    CHECK_OK(mx_compare(ctx, a, b, 0, 1e-9, &verdict, NULL, &err), &err);
    CHECK(verdict == MX_UNKNOWN);
    free(chain);
    mx_ctx_destroy(ctx);
}

int main(void) {
    struct dsm_err err = {0};
    CHECK_OK(ans_checker_create(NULL, &checker, &err), &err);
    if (!checker) return test_main_end();
    test_extract();
    test_normalize();
    test_table();
    test_errors_and_grade();
    test_limits();
    test_mathexpr_direct();
    ans_checker_destroy(checker);
    return test_main_end();
}
