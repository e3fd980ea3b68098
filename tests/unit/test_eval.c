/* test_eval.c - greedy accuracy, maj@k and pass@k (common/eval.h) on hand-computed cases. */
#include <math.h>
#include <string.h>

#include "common/eval.h"
#include "test.h"

/* C(n, k) in floating point, directly. */
static double choose(int n, int k) {
    if (k < 0 || k > n) return 0.0;
    return exp(lgamma(n + 1.0) - lgamma(k + 1.0) - lgamma(n - k + 1.0));
}

static struct eval_output out(const char *s) {
    struct eval_output o = {s, strlen(s), 0};
    return o;
}

int main(void) {
    /* pass@k against the combinatorial definition, and fixed points */
    CHECK_NEAR(eval_pass_at_k(10, 0, 1), 0.0, 1e-12);
    CHECK_NEAR(eval_pass_at_k(10, 10, 5), 1.0, 1e-12);
    CHECK_NEAR(eval_pass_at_k(5, 1, 1), 0.2, 1e-12);
    CHECK_NEAR(eval_pass_at_k(5, 2, 2), 0.7, 1e-12); /* 1 - C(3,2)/C(5,2) = 1 - 3/10 */
    for (int n = 1; n <= 40; n += 3)
        for (int c = 0; c <= n; c++)
            for (int k = 1; k <= n; k += 2)
                CHECK_NEAR(eval_pass_at_k(n, c, k), 1.0 - choose(n - c, k) / choose(n, k), 1e-9);

    struct dsm_err err = {0};
    struct ans_checker *ac = NULL;
    CHECK_OK(ans_checker_create(NULL, &ac, &err), &err);
    struct eval_output s[7] = {out("so \\boxed{4}"), out("it is \\boxed{2+2}"), out("\\boxed{5}"), out("\\boxed{5}"),
                               out("\\boxed{5}"), out("I give up"), out("\\boxed{4}")};
    s[6].truncated = 1; /* would be right, but a cut-off output is never scored */
    struct eval_output g = out("The answer is \\boxed{\\frac{8}{2}}");
    struct eval_item it = {"4", &g, s, 7};
    struct eval_item_result r;
    CHECK_OK(eval_score_item(ac, &it, 2, 0, &r, &err), &err);
    CHECK(r.greedy_correct == 1 && r.n_correct == 2 && r.answered == 5);
    CHECK(r.maj_correct == 1 && r.maj_votes == 2); /* first two samples: 4 and 2+2, one class */
    CHECK_OK(eval_score_item(ac, &it, 5, 0, &r, &err), &err);
    CHECK(r.maj_correct == 0 && r.maj_votes == 3); /* 5 outvotes 4 */
    /* a tie goes to the class seen first */
    struct eval_output t2[2] = {out("\\boxed{5}"), out("\\boxed{4}")};
    struct eval_item tie = {"4", NULL, t2, 2};
    CHECK_OK(eval_score_item(ac, &tie, 2, 0, &r, &err), &err);
    CHECK(r.greedy_correct == -1 && r.maj_correct == 0 && r.maj_votes == 1 && r.n_correct == 1);
    /* nobody answers: maj@k is wrong, pass is 0 */
    struct eval_output none[2] = {out("hmm"), out("")};
    struct eval_item empty = {"4", NULL, none, 2};
    CHECK_OK(eval_score_item(ac, &empty, 2, 0, &r, &err), &err);
    CHECK(r.maj_correct == 0 && r.answered == 0 && r.n_correct == 0);
    /* the last-number fallback is the caller's choice */
    struct eval_output ln[1] = {out("so we get 4 apples")};
    struct eval_item lastnum = {"4", NULL, ln, 1};
    CHECK_OK(eval_score_item(ac, &lastnum, 1, ANS_EXTRACT_LAST_NUMBER, &r, &err), &err);
    CHECK(r.n_correct == 1);
    CHECK_OK(eval_score_item(ac, &lastnum, 1, 0, &r, &err), &err);
    CHECK(r.n_correct == 0);
    /* totals */
    struct eval_totals tot = {0};
    struct eval_item_result a = {1, 2, 1, 2, 5}, b = {0, 0, 0, 1, 1};
    eval_totals_add(&tot, &a, 7, 2);
    eval_totals_add(&tot, &b, 7, 2);
    CHECK(tot.problems == 2 && tot.greedy_scored == 2 && tot.greedy_correct == 1 && tot.maj_correct == 1);
    CHECK_NEAR(tot.pass_sum, eval_pass_at_k(7, 2, 2), 1e-12);
    /* errors */
    CHECK(eval_score_item(ac, &it, 8, 0, &r, &err) == DSM_EINVAL && strstr(err.msg, "outside"));
    struct eval_item bad = {"", NULL, s, 1};
    CHECK(eval_score_item(ac, &bad, 1, 0, &r, &err) == DSM_EINVAL);
    ans_checker_destroy(ac);
    return test_main_end();
}
