/* test_roles.c - the V2 role parsers, prompts and rewards (SPEC §2) on hand-written adversarial
 * outputs: every accept/reject decision documented in docs/roles.md is asserted here, plus SPEC's
 * reward table, the prompts' exact markers, and the parse speed on a multi-megabyte output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/role.h"
#include "common/util.h"
#include "generator/generator.h"
#include "metaverifier/metaverifier.h"
#include "test.h"
#include "verifier/verifier.h"

#define VB "Here is my evaluation of the solution:"
#define VS "Based on my evaluation, the final overall score should be:"
#define VS2 "Based on my evaluation, the final overal score should be:"
#define MB "Here is my analysis of the \"solution evaluation\":"
#define MS "Based on my analysis, I will rate the \"solution evaluation\" as:"

static void ver_case(int line, const char *text, int truncated, enum role_fail want, double score) {
    struct ver_parsed p;
    ver_parse(text, strlen(text), truncated, &p);
    CHECK_MSG(p.fail == want && p.score == score, "line %d: got %s score %g, want %s score %g", line,
              role_fail_name(p.fail), p.score, role_fail_name(want), score);
}
#define VER(text, want, score) ver_case(__LINE__, text, 0, want, score)

static void mver_case(int line, const char *text, enum role_fail want, double score) {
    struct mver_parsed p;
    mver_parse(text, strlen(text), 0, &p);
    CHECK_MSG(p.fail == want && p.score == score, "line %d: got %s score %g, want %s score %g", line,
              role_fail_name(p.fail), p.score, role_fail_name(want), score);
}
#define MVER(text, want, score) mver_case(__LINE__, text, want, score)

static struct gen_parsed gen_case(int line, const char *text, int truncated, enum role_fail want, double score) {
    struct gen_parsed p;
    gen_parse(text, strlen(text), truncated, &p);
    CHECK_MSG(p.fail == want && p.self_score == score, "line %d: got %s score %g, want %s score %g", line,
              role_fail_name(p.fail), p.self_score, role_fail_name(want), score);
    return p;
}
#define GEN(text, want, score) gen_case(__LINE__, text, 0, want, score)

static int span_is(struct role_span s, const char *want) {
    return s.p && s.n == strlen(want) && !memcmp(s.p, want, s.n);
}

static void test_score_strings(void) {
    static const struct {
        const char *s;
        double v; /* -1 = rejected */
    } cases[] = {
        {"0", 0}, {"1", 1}, {"0.5", 0.5}, {"1.0", 1}, {"0.50", 0.5}, {"0.0", 0}, {"1.000", 1}, {" 1 ", 1},
        {"0.500000", 0.5}, {"2", -1}, {"1.5", -1}, {".5", -1}, {"1/2", -1}, {"\\frac{1}{2}", -1}, {"-0", -1},
        {"+1", -1}, {"one", -1}, {"1.", -1}, {"", -1}, {"01", -1}, {"0.05", -1}, {"0.55", -1}, {"1 point", -1},
        {"1\\%", -1}, {"$1$", -1}, {"\\text{1}", -1}, {"0,5", -1}, {"1e0", -1}, {"10", -1}, {"0.5 ", 0.5},
    };
    for (size_t i = 0; i < DSM_ARRAY_LEN(cases); i++) {
        double v = -7;
        int rc = role_score_parse(cases[i].s, strlen(cases[i].s), &v);
        if (cases[i].v < 0)
            CHECK_MSG(rc != 0, "score '%s' accepted as %g", cases[i].s, v);
        else
            CHECK_MSG(rc == 0 && v == cases[i].v, "score '%s': rc %d value %g", cases[i].s, rc, v);
    }
}

static void test_verifier(void) {
    VER(VB "\nStep 1 is right.\n" VS "\n\\boxed{1}", ROLE_OK, 1);
    VER(VB "\nStep 1 is right.\n" VS2 " \\boxed{1}", ROLE_OK, 1); /* the released "overal" */
    VER(VB "\nminor gap\n" VS " \\boxed{0.5}", ROLE_OK, 0.5);
    VER(VB "\nwrong\n" VS " \\boxed{0}", ROLE_OK, 0);
    VER(VB "\nx\n" VS " \\boxed{1.0}", ROLE_OK, 1);
    VER(VB "\nx\n" VS " \\boxed{0.50}", ROLE_OK, 0.5);
    VER(VB "\nx\n" VS " \\boxed{\\frac{1}{2}}", ROLE_FAIL_BAD_SCORE, ROLE_NO_SCORE);
    VER(VB "\nx\n" VS " \\boxed{2}", ROLE_FAIL_BAD_SCORE, ROLE_NO_SCORE);
    VER(VB "\nx\n" VS " \\boxed{1/2}", ROLE_FAIL_BAD_SCORE, ROLE_NO_SCORE);
    VER(VB "\nx\n" VS " \\boxed{...}", ROLE_FAIL_BAD_SCORE, ROLE_NO_SCORE);
    /* nested braces are counted; the content is not a score */
    VER(VB "\nx\n" VS " \\boxed{\\text{score {1}}}", ROLE_FAIL_BAD_SCORE, ROLE_NO_SCORE);
    VER(VB "\nx\n" VS " \\boxed{{1}}", ROLE_FAIL_BAD_SCORE, ROLE_NO_SCORE);
    /* unbalanced: a last box that never closes means no score, even with an earlier good one */
    VER(VB "\nx\n" VS " \\boxed{1", ROLE_FAIL_NO_BOX, ROLE_NO_SCORE);
    VER(VB "\nx\n" VS " \\boxed{1} and \\boxed{0", ROLE_FAIL_NO_BOX, ROLE_NO_SCORE);
    VER(VB "\nx\n" VS " \\boxed{1}}", ROLE_OK, 1); /* a stray closing brace after the box is text */
    /* several boxes: the last non-empty one */
    VER(VB "\nx\n" VS " \\boxed{0} no, \\boxed{1}", ROLE_OK, 1);
    VER(VB "\nx\n" VS " \\boxed{0.5} \\boxed{}", ROLE_OK, 0.5);
    VER(VB "\nx\n" VS " \\boxed{0.5} \\boxed{ \n }", ROLE_OK, 0.5);
    VER(VB "\nx\n" VS " \\boxed{}", ROLE_FAIL_NO_BOX, ROLE_NO_SCORE);
    VER(VB "\nx\n" VS " \\boxed{1} then \\boxed{x}", ROLE_FAIL_BAD_SCORE, ROLE_NO_SCORE);
    /* boxes in the analysis do not count as the score */
    VER(VB "\nthe answer \\boxed{1} is right\n" VS " 1", ROLE_FAIL_NO_BOX, ROLE_NO_SCORE);
    VER(VB "\nthe answer \\boxed{0} is wrong\n" VS " \\boxed{1}", ROLE_OK, 1);
    /* text after the box is fine */
    VER(VB "\nx\n" VS " \\boxed{1}. All good.", ROLE_OK, 1);
    /* markers: missing, out of order, case, bold, repeated */
    VER("Step 1 is right.\n" VS " \\boxed{1}", ROLE_FAIL_NO_BEGIN_MARKER, ROLE_NO_SCORE);
    VER(VB "\nStep 1 is right. \\boxed{1}", ROLE_FAIL_NO_SCORE_MARKER, ROLE_NO_SCORE);
    VER(VS " \\boxed{1}\n" VB "\nx", ROLE_FAIL_MARKER_ORDER, ROLE_NO_SCORE);
    VER("here is my evaluation of the solution:\nx\n" VS " \\boxed{1}", ROLE_FAIL_NO_BEGIN_MARKER, ROLE_NO_SCORE);
    VER(VB "\nx\nbased on my evaluation, the final overall score should be: \\boxed{1}", ROLE_FAIL_NO_SCORE_MARKER,
        ROLE_NO_SCORE);
    VER("**" VB "**\nx\n**" VS "** \\boxed{1}", ROLE_OK, 1);
    VER(VB "\n" VS " \\boxed{1}", ROLE_FAIL_EMPTY_ANALYSIS, ROLE_NO_SCORE);
    VER(VB "\nx\n" VS " \\boxed{0}\nOn reflection:\n" VS " \\boxed{0.5}", ROLE_OK, 0.5);
    VER(VB "\nx\n" VS " \\boxed{0}\nOn reflection:\n" VS " nothing", ROLE_FAIL_NO_BOX, ROLE_NO_SCORE);
    {
        struct ver_parsed b;
        const char *t = "**" VB "**\n*Step 1* holds.\n\n**" VS "** \\boxed{1}";
        ver_parse(t, strlen(t), 0, &b);
        CHECK(b.fail == ROLE_OK && span_is(b.analysis, "*Step 1* holds.")); /* bold markers leave no ** behind */
    }
    /* markers inside fenced code blocks do not count; boxes anywhere after the marker do */
    VER("```\n" VB "\nx\n" VS " \\boxed{1}\n```\n", ROLE_FAIL_NO_BEGIN_MARKER, ROLE_NO_SCORE);
    VER("The format is:\n```text\n" VB "\n...\n" VS " \\boxed{1}\n```\n" VB "\nreal analysis\n" VS " \\boxed{0}",
        ROLE_OK, 0);
    VER(VB "\nx\n" VS "\n```\n\\boxed{0.5}\n```", ROLE_OK, 0.5);
    VER("~~~\n" VB "\n~~~\n" VB "\nx\n" VS " \\boxed{1}", ROLE_OK, 1);
    VER("```\n" VB "\nx\n" VS " \\boxed{1}", ROLE_OK, 1); /* a fence never closed is not a fence */
    VER("```\n" VB "\nx\n~~~\n" VS " \\boxed{1}", ROLE_OK, 1); /* ~~~ does not close ``` */
    /* </think> */
    VER("<think>" VB "\nx\n" VS " \\boxed{0}</think>" VB "\ny\n" VS " \\boxed{1}", ROLE_OK, 1);
    VER("thinking without an opening tag</think>\n" VB "\ny\n" VS " \\boxed{0.5}", ROLE_OK, 0.5);
    VER("<think>" VB "\nx\n" VS " \\boxed{1}", ROLE_FAIL_THINK_UNCLOSED, ROLE_NO_SCORE);
    VER("<think>a</think>" VB "\nx\n" VS " \\boxed{1}<think>more", ROLE_FAIL_THINK_UNCLOSED, ROLE_NO_SCORE);
    VER("<think>" VB "\nx\n" VS " \\boxed{1}</think>", ROLE_FAIL_EMPTY, ROLE_NO_SCORE);
    VER("<think>" VB "\nx\n" VS " \\boxed{1}</think>\nThe proof is fine.", ROLE_FAIL_NO_BEGIN_MARKER,
        ROLE_NO_SCORE);
    VER("", ROLE_FAIL_EMPTY, ROLE_NO_SCORE);
    VER(" \n\t\n", ROLE_FAIL_EMPTY, ROLE_NO_SCORE);
    /* the extractor's other forms (common/answer.h): \boxed without braces and \fbox are read */
    VER(VB "\nx\n" VS " \\boxed 1", ROLE_OK, 1);
    VER(VB "\nx\n" VS " \\fbox{0.5}", ROLE_OK, 0.5);
    VER(VB "\nx\n" VS " \\boxedfoo{1}", ROLE_FAIL_NO_BOX, ROLE_NO_SCORE);
    /* a cut-off output is never scored */
    const char *good = VB "\nStep 1 is right.\n" VS "\n\\boxed{1}";
    ver_case(__LINE__, good, 1, ROLE_FAIL_TRUNCATED, ROLE_NO_SCORE);
    /* the analysis span */
    struct ver_parsed p;
    const char *t = "<think>hmm</think>\n" VB "\n  Step 1 holds.\nStep 2 fails.  \n" VS " \\boxed{0}\n";
    ver_parse(t, strlen(t), 0, &p);
    CHECK(p.fail == ROLE_OK && span_is(p.analysis, "Step 1 holds.\nStep 2 fails."));
    CHECK(!strcmp(p.box, "0"));
    /* NUL bytes are ordinary characters */
    char nul[] = VB "\nx\0y\n" VS " \\boxed{1}";
    ver_parse(nul, sizeof nul - 1, 0, &p);
    CHECK(p.fail == ROLE_OK && p.score == 1 && p.analysis.n == 3);
    /* a prompt echoed back is not a scored output: its box holds "..." */
    char *prompt = NULL;
    struct dsm_err err = {0};
    CHECK_OK(ver_prompt_build(NULL, "Show that 1 + 1 = 2.", "Clear.", &prompt, &err), &err);
    if (prompt) {
        ver_parse(prompt, strlen(prompt), 0, &p);
        CHECK_MSG(p.fail == ROLE_FAIL_BAD_SCORE && !strcmp(p.box, "..."), "echoed prompt: %s box '%s'",
                  role_fail_name(p.fail), p.box);
    }
    free(prompt);
}

static void test_metaverifier(void) {
    MVER(MB "\nThe claimed gap in step 2 is real.\n" MS " \\boxed{1}", ROLE_OK, 1);
    MVER(MB "\nhalf right\n" MS "\n\\boxed{0.5}", ROLE_OK, 0.5);
    MVER(MB "\nx\n" MS " \\boxed{0}", ROLE_OK, 0);
    /* the verifier's markers are not the meta-verifier's */
    MVER(VB "\nx\n" VS " \\boxed{1}", ROLE_FAIL_NO_BEGIN_MARKER, ROLE_NO_SCORE);
    /* curly quotes are not the marker */
    MVER("Here is my analysis of the \xe2\x80\x9csolution evaluation\xe2\x80\x9d:\nx\n" MS " \\boxed{1}",
         ROLE_FAIL_NO_BEGIN_MARKER, ROLE_NO_SCORE);
    MVER(MB "\nx\nBased on my analysis, I will rate the solution evaluation as: \\boxed{1}", ROLE_FAIL_NO_SCORE_MARKER,
         ROLE_NO_SCORE);
    MVER(MB "\nx\n" MS " \\boxed{0.75}", ROLE_FAIL_BAD_SCORE, ROLE_NO_SCORE);
    struct mver_parsed p;
    const char *t = MB "\nok\n" MS " \\boxed{1}";
    mver_parse(t, strlen(t), 1, &p);
    CHECK(p.fail == ROLE_FAIL_TRUNCATED && p.score == ROLE_NO_SCORE);
}

static void test_generator(void) {
    struct gen_parsed p;
    p = GEN("## Solution\nBy induction on n.\n\n## Self Evaluation\n" VB "\nAll steps hold.\n" VS " \\boxed{1}",
            ROLE_OK, 1);
    CHECK(span_is(p.proof, "By induction on n."));
    CHECK(span_is(p.analysis, "All steps hold."));
    CHECK(span_is(p.self_evaluation, VB "\nAll steps hold.\n" VS " \\boxed{1}"));
    /* starred headings are normalised to the ## form */
    p = GEN("**Solution**\nP.\n**Self Evaluation**\n" VB "\nfine\n" VS " \\boxed{0.5}", ROLE_OK, 0.5);
    CHECK(span_is(p.proof, "P."));
    GEN("* Solution *\nP.\n*** Self Evaluation ***\nfine \\boxed{0}", ROLE_OK, 0);
    GEN("  ## Solution  \nP.\n\t## Self Evaluation\nfine \\boxed{0}", ROLE_OK, 0);
    /* other heading forms are not headings */
    GEN("### Solution\nP.\n## Self Evaluation\n\\boxed{1}", ROLE_FAIL_NO_SOLUTION, ROLE_NO_SCORE);
    GEN("## Solution:\nP.\n## Self Evaluation\n\\boxed{1}", ROLE_FAIL_NO_SOLUTION, ROLE_NO_SCORE);
    GEN("## solution\nP.\n## Self Evaluation\n\\boxed{1}", ROLE_FAIL_NO_SOLUTION, ROLE_NO_SCORE);
    GEN("## Solution\nP.\n## Self-Evaluation\n\\boxed{1}", ROLE_FAIL_NO_SELF_EVAL, ROLE_NO_SCORE);
    GEN("Here is the proof: ## Solution\nP.\n## Self Evaluation\n\\boxed{1}", ROLE_FAIL_NO_SOLUTION, ROLE_NO_SCORE);
    /* text before the Solution heading is dropped */
    p = GEN("Let me write it up.\n\n## Solution\nP.\n## Self Evaluation\nok \\boxed{1}", ROLE_OK, 1);
    CHECK(span_is(p.proof, "P."));
    /* boxes in the proof are answers, never the self-score */
    p = GEN("## Solution\nSo the answer is \\boxed{42}.\n## Self Evaluation\n" VB "\nfine\n" VS " \\boxed{0.5}",
            ROLE_OK, 0.5);
    CHECK(span_is(p.proof, "So the answer is \\boxed{42}."));
    GEN("## Solution\nthe answer is \\boxed{1}\n## Self Evaluation\nI am sure.", ROLE_FAIL_NO_BOX, ROLE_NO_SCORE);
    /* the self-evaluation's markers are read when present, not required */
    p = GEN("## Solution\nP.\n## Self Evaluation\nLooks right. \\boxed{1}", ROLE_OK, 1);
    CHECK(span_is(p.analysis, "Looks right. \\boxed{1}"));
    p = GEN("## Solution\nP.\n## Self Evaluation\n*All* steps hold **", ROLE_FAIL_NO_BOX, ROLE_NO_SCORE);
    CHECK(span_is(p.analysis, "*All* steps hold **"));
    p = GEN("## Solution\nP.\n## Self Evaluation\nLooks right.\n" VS2 " \\boxed{1}", ROLE_OK, 1);
    CHECK(span_is(p.analysis, "Looks right."));
    /* missing or misplaced sections */
    p = GEN("## Solution\nP. \\boxed{1}", ROLE_FAIL_NO_SELF_EVAL, ROLE_NO_SCORE);
    CHECK(span_is(p.proof, "P. \\boxed{1}"));
    GEN("## Self Evaluation\nok \\boxed{1}\n## Solution\nP.", ROLE_FAIL_NO_SELF_EVAL, ROLE_NO_SCORE);
    GEN("P. Self-score \\boxed{1}", ROLE_FAIL_NO_SOLUTION, ROLE_NO_SCORE);
    GEN("## Solution\n\n## Self Evaluation\nok \\boxed{1}", ROLE_FAIL_EMPTY_PROOF, ROLE_NO_SCORE);
    /* headings inside code blocks are code */
    p = GEN("```markdown\n## Solution\nexample\n## Self Evaluation\n```\n## Solution\nreal\n## Self Evaluation\n"
            "ok \\boxed{0.5}",
            ROLE_OK, 0.5);
    CHECK(span_is(p.proof, "real"));
    p = GEN("## Solution\nCode:\n```\n## Self Evaluation\n```\nend\n## Self Evaluation\nok \\boxed{1}", ROLE_OK, 1);
    CHECK(span_is(p.proof, "Code:\n```\n## Self Evaluation\n```\nend"));
    /* a second Self Evaluation heading belongs to the self-evaluation; its last box is the score */
    GEN("## Solution\nP.\n## Self Evaluation\nfirst \\boxed{1}\n## Self Evaluation\nsecond \\boxed{0}", ROLE_OK, 0);
    /* </think> */
    p = GEN("<think>## Solution\ndraft\n## Self Evaluation\n\\boxed{0}</think>\n## Solution\nfinal\n"
            "## Self Evaluation\nok \\boxed{1}",
            ROLE_OK, 1);
    CHECK(span_is(p.proof, "final"));
    GEN("<think>## Solution\ndraft\n## Self Evaluation\n\\boxed{1}", ROLE_FAIL_THINK_UNCLOSED, ROLE_NO_SCORE);
    GEN("", ROLE_FAIL_EMPTY, ROLE_NO_SCORE);
    /* truncated: spans are filled, the score is not */
    p = gen_case(__LINE__, "## Solution\nP.\n## Self Evaluation\nok \\boxed{1}", 1, ROLE_FAIL_TRUNCATED, ROLE_NO_SCORE);
    CHECK(span_is(p.proof, "P."));
    /* CRLF line ends */
    GEN("## Solution\r\nP.\r\n## Self Evaluation\r\nok \\boxed{1}\r\n", ROLE_OK, 1);
}

static void test_rewards(void) {
    static const double S[3] = {0, 0.5, 1};
    double min_correct = 9, max_imperfect = -9, max_wrong = -9;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            double r1 = gen_reward(1, 1.0, S[a], S[b]), r5 = gen_reward(1, 0.5, S[a], S[b]),
                   r0 = gen_reward(1, 0.0, S[a], S[b]);
            min_correct = r1 < min_correct ? r1 : min_correct;
            max_imperfect = r5 > max_imperfect ? r5 : max_imperfect;
            max_wrong = r0 > max_wrong ? r0 : max_wrong;
            CHECK(gen_reward(0, 1.0, S[a], S[b]) == 0.0);
        }
    /* SPEC §2: a correct proof (>= 0.76) always beats an imperfect one (<= 0.62) */
    CHECK_NEAR(min_correct, 0.76, 1e-12);
    CHECK_NEAR(max_imperfect, 0.62, 1e-12);
    CHECK(min_correct > max_imperfect);
    /* an honestly flagged wrong proof (0.24) beats a wrong proof claimed correct (0) */
    CHECK_NEAR(gen_reward(1, 0.0, 0.0, 1.0), 0.24, 1e-12);
    CHECK_NEAR(gen_reward(1, 0.0, 1.0, 1.0), 0.0, 1e-12);
    CHECK_NEAR(max_wrong, 0.24, 1e-12);
    CHECK_NEAR(gen_reward(1, 1.0, 1.0, 1.0), 1.0, 1e-12);
    CHECK_NEAR(gen_reward(1, 1.0, 1.0, 0.0), 0.76, 1e-12); /* self-analysis rejected: no honesty bonus */
    CHECK_NEAR(gen_reward(1, 0.5, 0.5, 1.0), 0.62, 1e-12);
    CHECK_NEAR(gen_reward(1, 0.5, 1.0, 1.0), 0.5, 1e-12);
    /* verifier: R_format (1 - |s' - s|) R_meta */
    CHECK_NEAR(ver_reward(1, 1.0, 1.0, 1.0), 1.0, 1e-12);
    CHECK_NEAR(ver_reward(1, 0.5, 1.0, 1.0), 0.5, 1e-12);
    CHECK_NEAR(ver_reward(1, 0.0, 1.0, 1.0), 0.0, 1e-12);
    CHECK_NEAR(ver_reward(1, 0.0, 0.0, 0.5), 0.5, 1e-12);
    CHECK_NEAR(ver_reward(1, 0.0, 0.0, 0.0), 0.0, 1e-12); /* right score, analysis rejected */
    CHECK(ver_reward(0, 1.0, 1.0, 1.0) == 0.0);
    /* meta-verifier: R_format (1 - |ms' - ms|) */
    CHECK_NEAR(mver_reward(1, 1.0, 1.0), 1.0, 1e-12);
    CHECK_NEAR(mver_reward(1, 0.5, 1.0), 0.5, 1e-12);
    CHECK_NEAR(mver_reward(1, 0.0, 1.0), 0.0, 1e-12);
    CHECK(mver_reward(0, 0.5, 0.5) == 0.0);
}

static int contains(const char *s, const char *needle) { return s && strstr(s, needle) != NULL; }

static void test_prompts(void) {
    struct dsm_err err = {0};
    char *g = NULL, *v = NULL, *m = NULL, *r = NULL;
    const char *problem = "Show that $\\sqrt{2}$ is irrational. Use {{braces}} freely.";
    CHECK_OK(gen_prompt_build(NULL, problem, &g, &err), &err);
    CHECK(contains(g, problem)); /* values are not re-scanned for placeholders */
    CHECK(contains(g, "## Solution") && contains(g, "## Self Evaluation"));
    CHECK(contains(g, VB) && contains(g, VS) && contains(g, "\\boxed{"));
    CHECK_OK(ver_prompt_build(NULL, problem, "Suppose sqrt 2 = p/q.", &v, &err), &err);
    CHECK(contains(v, problem) && contains(v, "Suppose sqrt 2 = p/q.") && contains(v, VB) && contains(v, VS));
    CHECK_OK(mver_prompt_build(NULL, problem, "Suppose.", "Step 2 is wrong.", &m, &err), &err);
    CHECK(contains(m, "Step 2 is wrong.") && contains(m, MB) && contains(m, MS));
    const char *an1[] = {"Step 3 divides by zero.", "Looks right."};
    struct gen_candidate c[2] = {{"First attempt.", an1, 2}, {"Second attempt.", NULL, 0}};
    CHECK_OK(gen_prompt_build_refine(NULL, NULL, problem, c, 2, &r, &err), &err);
    CHECK(contains(r, "## Candidate Solution(s) to Refine"));
    CHECK(contains(r, "--- Candidate 1 ---\nFirst attempt.\n\n=== Evaluation 1 of candidate 1 ===\nStep 3 divides"));
    CHECK(contains(r, "=== Evaluation 2 of candidate 1 ===\nLooks right.\n\n--- Candidate 2 ---\nSecond attempt."));
    CHECK(contains(r, problem) && r && strstr(r, problem) < strstr(r, "## Candidate Solution(s) to Refine"));
    free(g);
    free(v);
    free(m);
    free(r);
    /* ids carry the version and the text's hash */
    struct role_template t;
    gen_template_generate(&t);
    CHECK(!strncmp(t.id, "generate.v1@", 12) && strlen(t.id) == 24);
    ver_template_verify(&t);
    CHECK(!strncmp(t.id, "verify.v1@", 10));
    mver_template_metaverify(&t);
    CHECK(!strncmp(t.id, "metaverify.v1@", 14));
    gen_template_refine(&t);
    CHECK(!strncmp(t.id, "refine.v1@", 10));
    /* errors */
    r = NULL;
    CHECK(gen_prompt_build_refine(NULL, NULL, problem, c, 0, &r, &err) == DSM_EINVAL && !r);
    CHECK(gen_prompt_build(NULL, NULL, &r, &err) == DSM_EINVAL);
    struct role_template bad = {.name = "x", .text = "Grade {{proof}} for {{problem}}.", .id = "x"};
    CHECK(gen_prompt_build(&bad, problem, &r, &err) == DSM_EINVAL && contains(err.msg, "{{proof}}"));
    struct role_template lacks = {.name = "x", .text = "Grade {{problem}}.", .id = "x"};
    CHECK(ver_prompt_build(&lacks, problem, "p", &r, &err) == DSM_EINVAL && contains(err.msg, "no {{proof}}"));
    /* loading a template from a file */
    char path[] = "/tmp/dsm_test_tmpl_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        const char *txt = "Problem: {{problem}}\nWrite ## Solution then ## Self Evaluation.\n";
        CHECK(write(fd, txt, strlen(txt)) == (ssize_t)strlen(txt));
        close(fd);
        struct role_template ft;
        CHECK_OK(role_template_load(path, &ft, &err), &err);
        CHECK(!strncmp(ft.id, "file:dsm_test_tmpl_", 19));
        CHECK_OK(gen_prompt_build(&ft, "P", &r, &err), &err);
        CHECK(r && !strcmp(r, "Problem: P\nWrite ## Solution then ## Self Evaluation.\n"));
        free(r);
        role_template_free(&ft);
        FILE *f = fopen(path, "w");
        if (f) {
            fputs("broken {{problem", f);
            fclose(f);
        }
        CHECK(role_template_load(path, &ft, &err) == DSM_EINVAL && contains(err.msg, "no \"}}\""));
        unlink(path);
        CHECK(role_template_load(path, &ft, &err) == DSM_ENOTFOUND);
    }
}

/* Parse speed on a multi-megabyte output (reported, loosely bounded). */
static void test_huge(void) {
    size_t target = 8u << 20;
    char *t = malloc(target + 1024);
    if (!t) {
        CHECK(0);
        return;
    }
    size_t n = 0;
    n += (size_t)sprintf(t + n, "%s\n", VB);
    static const char line[] = "Step: since $a_{n+1} = a_n + \\frac{1}{n}$ the claim {holds} \\boxed{x} for n.\n";
    while (n + sizeof line < target) {
        memcpy(t + n, line, sizeof line - 1);
        n += sizeof line - 1;
    }
    n += (size_t)sprintf(t + n, "%s \\boxed{0.5}\n", VS);
    struct ver_parsed p;
    int reps = 5;
    double t0 = dsm_now();
    for (int i = 0; i < reps; i++) ver_parse(t, n, 0, &p);
    double dt = dsm_now() - t0;
    CHECK(p.fail == ROLE_OK && p.score == 0.5);
    double mbs = (double)n * reps / (1 << 20) / (dt > 0 ? dt : 1e-9);
    fprintf(stderr, "verifier parse: %.1f MB output, %.1f MB/s\n", n / 1048576.0, mbs);
    /* the same with a code block in it: markers are then searched line by line outside fences */
    size_t l1 = strlen(VB "\n");
    memcpy(t + l1, "```", 3);
    memcpy(t + l1 + sizeof line - 1, "```", 3);
    t0 = dsm_now();
    for (int i = 0; i < reps; i++) ver_parse(t, n, 0, &p);
    dt = dsm_now() - t0;
    CHECK(p.fail == ROLE_OK && p.score == 0.5);
    fprintf(stderr, "verifier parse with a code block: %.1f MB/s\n", (double)n * reps / (1 << 20) / (dt > 0 ? dt : 1e-9));
    /* generator form: a huge proof, then the self-evaluation */
    memcpy(t, "## Solution\n", 12);
    memcpy(t + n - 200, "\n## Self Evaluation\nfine \\boxed{1}\n", 36);
    struct gen_parsed g;
    t0 = dsm_now();
    for (int i = 0; i < reps; i++) gen_parse(t, n - 200 + 36, 0, &g);
    dt = dsm_now() - t0;
    CHECK(g.fail == ROLE_OK && g.self_score == 1 && g.proof.n > (6u << 20));
    fprintf(stderr, "generator parse: %.1f MB/s\n", (double)n * reps / (1 << 20) / (dt > 0 ? dt : 1e-9));
    /* a huge box is not a score */
    memset(t, 'x', n);
    memcpy(t, VB "\ny\n" VS " \\boxed{", strlen(VB "\ny\n" VS " \\boxed{"));
    t[n - 1] = '}';
    ver_parse(t, n, 0, &p);
    CHECK(p.fail == ROLE_FAIL_BAD_SCORE);
    /* one line of megabytes of backquotes and tildes: no fences, still linear */
    memset(t, '`', n / 2);
    memset(t + n / 2, '\n', 1);
    for (size_t i = n / 2 + 1; i < n; i += 4) memcpy(t + i, i + 4 <= n ? "~~~\n" : "\n\n\n\n", i + 4 <= n ? 4 : n - i);
    t0 = dsm_now();
    ver_parse(t, n, 0, &p);
    CHECK(p.fail == ROLE_FAIL_NO_BEGIN_MARKER);
    CHECK_MSG(dsm_now() - t0 < 5.0, "fence-heavy parse took %.1f s", dsm_now() - t0);
    free(t);
}

int main(void) {
    test_score_strings();
    test_verifier();
    test_metaverifier();
    test_generator();
    test_rewards();
    test_prompts();
    test_huge();
    return test_main_end();
}
