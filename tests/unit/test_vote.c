/* test_vote.c - the SPEC §2 auto-labeling rule (labeler/vote.h): every branch of the rule, the
 * strict majority of meta-verifications, completeness checks, bad input, and the JSON forms. */
#include <stdlib.h>
#include <string.h>

#include "labeler/vote.h"
#include "test.h"

#define X LBL_NO_LABEL

/* Up to 16 analyses written as score + meta ratings; meta lists end at -9. */
static struct lbl_vote run(int line, const double *scores, int na, double meta[][8], struct lbl_vote_opts o,
                           double want_label, enum lbl_reason want_reason) {
    struct lbl_analysis a[16];
    for (int i = 0; i < na; i++) {
        a[i].score = scores[i];
        a[i].meta = meta[i];
        a[i].n_meta = 0;
        while (a[i].n_meta < 8 && meta[i][a[i].n_meta] != -9) a[i].n_meta++;
    }
    struct lbl_vote v;
    struct dsm_err err = {0};
    int rc = lbl_vote_decide(a, na, &o, &v, NULL, &err);
    CHECK_MSG(rc == 0 && v.label == want_label && v.reason == want_reason, "line %d: rc %d label %g reason %s (%s)",
              line, rc, v.label, lbl_reason_name(v.reason), err.msg);
    return v;
}

#define E {-9}
#define M1(a) {a, -9}
#define M3(a, b, c) {a, b, c, -9}
static const struct lbl_vote_opts K2 = {0, 0, 2, 0};

static void test_rule(void) {
    /* no analysis reports an issue -> 1 */
    {
        double s[] = {1, 1, 1, 1};
        double m[][8] = {E, E, E, E};
        struct lbl_vote v = run(__LINE__, s, 4, m, K2, 1, LBL_R_NO_ISSUES);
        CHECK(v.valid == 4 && v.issues == 0);
    }
    /* every reported issue rejected -> 1 */
    {
        double s[] = {1, 0, 0.5, 1};
        double m[][8] = {E, M3(0, 0, 1), M3(0, 0.5, 1), E};
        struct lbl_vote v = run(__LINE__, s, 4, m, K2, 1, LBL_R_ALL_REJECTED);
        CHECK(v.issues == 2 && v.rejected == 2 && v.valid == 2);
    }
    /* lowest valid score with >= k agreeing -> that score */
    {
        double s[] = {1, 0.5, 0.5, 1, 1};
        double m[][8] = {E, M3(1, 1, 0), M3(1, 1, 1), E, E};
        struct lbl_vote v = run(__LINE__, s, 5, m, K2, 0.5, LBL_R_AGREED);
        CHECK(v.lo == 0.5 && v.agree == 2);
    }
    {
        double s[] = {0, 0, 0.5, 0.5, 0.5, 1};
        double m[][8] = {M3(1, 1, 1), M3(1, 0, 1), M3(1, 1, 1), M3(1, 1, 1), M3(1, 1, 1), E};
        run(__LINE__, s, 6, m, K2, 0, LBL_R_AGREED);
    }
    /* fewer than k at the lowest valid score -> no label, even when more agree on a higher one */
    {
        double s[] = {0, 0.5, 0.5, 0.5, 1};
        double m[][8] = {M3(1, 1, 1), M3(1, 1, 1), M3(1, 1, 1), M3(1, 1, 1), E};
        struct lbl_vote v = run(__LINE__, s, 5, m, K2, X, LBL_R_UNCERTAIN);
        CHECK(v.lo == 0 && v.agree == 1);
    }
    /* a rejected analysis never sets the label: two rejected zeros, two valid halves -> 0.5 */
    {
        double s[] = {0, 0, 0.5, 0.5};
        double m[][8] = {M3(0, 0, 0), M3(1, 0, 0), M3(1, 1, 0), M3(1, 1, 0.5)};
        struct lbl_vote v = run(__LINE__, s, 4, m, K2, 0.5, LBL_R_AGREED);
        CHECK(v.rejected == 2 && v.valid == 2);
    }
    /* ... and one valid zero among rejected zeros is uncertain with k = 2 */
    {
        double s[] = {0, 0, 0, 1};
        double m[][8] = {M3(1, 1, 1), M3(0, 1, 0), M3(0, 0, 1), E};
        run(__LINE__, s, 4, m, K2, X, LBL_R_UNCERTAIN);
    }
    /* strict majority: 2 of 3, 3 of 4 are valid; 1 of 2, 2 of 4, 1 of 3 are not */
    {
        double s[] = {0, 0};
        double m[][8] = {M3(1, 1, 0), M3(0, 1, 1)};
        run(__LINE__, s, 2, m, K2, 0, LBL_R_AGREED);
    }
    {
        double s[] = {0, 0};
        double m[][8] = {{1, 1, 1, 0, -9}, {1, 0, 1, 1, -9}};
        run(__LINE__, s, 2, m, K2, 0, LBL_R_AGREED);
    }
    {
        double s[] = {0, 0};
        double m[][8] = {{1, 0, -9}, {1, 1, 0, 0, -9}};
        run(__LINE__, s, 2, m, K2, 1, LBL_R_ALL_REJECTED);
    }
    {
        double s[] = {0.5, 0.5};
        double m[][8] = {M3(1, 0.5, 0.5), M3(1, 0, 0.5)};
        run(__LINE__, s, 2, m, K2, 1, LBL_R_ALL_REJECTED);
    }
    /* a meta-verification that failed to parse counts as "not 1" */
    {
        double s[] = {0, 0};
        double m[][8] = {M3(1, X, X), M3(1, 1, X)};
        struct lbl_vote v = run(__LINE__, s, 2, m, K2, X, LBL_R_UNCERTAIN);
        CHECK(v.rejected == 1 && v.valid == 1);
    }
    /* an issue with no meta-verification at all is not confirmed */
    {
        double s[] = {0, 1};
        double m[][8] = {E, E};
        run(__LINE__, s, 2, m, K2, 1, LBL_R_ALL_REJECTED);
    }
    /* format failures take no part */
    {
        double s[] = {X, X, 1};
        double m[][8] = {E, E, E};
        struct lbl_vote v = run(__LINE__, s, 3, m, K2, 1, LBL_R_NO_ISSUES);
        CHECK(v.format_failures == 2 && v.valid == 1);
    }
    {
        double s[] = {X, X};
        double m[][8] = {E, E};
        run(__LINE__, s, 2, m, K2, X, LBL_R_NO_ANALYSES);
    }
    run(__LINE__, NULL, 0, NULL, K2, X, LBL_R_NO_ANALYSES);
    /* k = 1 and k = 3 */
    {
        double s[] = {0, 0.5, 0.5, 1};
        double m[][8] = {M1(1), M1(1), M1(1), E};
        run(__LINE__, s, 4, m, (struct lbl_vote_opts){0, 0, 1, 0}, 0, LBL_R_AGREED);
        run(__LINE__, s, 4, m, (struct lbl_vote_opts){0, 0, 3, 0}, X, LBL_R_UNCERTAIN);
    }
    /* completeness: n analyses and m meta-verifications per issue when asked for */
    {
        double s[] = {0, 0, 1};
        double m[][8] = {M3(1, 1, 1), M1(1), E};
        struct lbl_vote v = run(__LINE__, s, 3, m, (struct lbl_vote_opts){0, 3, 2, 0}, X, LBL_R_INCOMPLETE);
        CHECK(v.incomplete_at == 1);
        run(__LINE__, s, 3, m, (struct lbl_vote_opts){4, 0, 2, 0}, X, LBL_R_INCOMPLETE);
        run(__LINE__, s, 3, m, (struct lbl_vote_opts){3, 1, 2, 0}, 0, LBL_R_AGREED);
    }
    /* a score-1 analysis needs no meta-verification, so m does not make it incomplete */
    {
        double s[] = {1, 1};
        double m[][8] = {E, E};
        run(__LINE__, s, 2, m, (struct lbl_vote_opts){2, 3, 2, 0}, 1, LBL_R_NO_ISSUES);
    }
    /* no meta-verifier yet: every analysis is valid */
    {
        double s[] = {0, 0, 1};
        double m[][8] = {E, E, E};
        run(__LINE__, s, 3, m, (struct lbl_vote_opts){0, 0, 2, 1}, 0, LBL_R_AGREED);
    }
    /* a 64-analysis vote: 60 say 1, 4 say 0 of which 3 are confirmed -> 0 */
    {
        struct lbl_analysis a[64];
        double ok3[3] = {1, 1, 0}, bad3[3] = {0, 0, 1};
        for (int i = 0; i < 64; i++) a[i] = (struct lbl_analysis){1, NULL, 0};
        for (int i = 0; i < 4; i++) a[10 * i] = (struct lbl_analysis){0, i ? ok3 : bad3, 3};
        struct lbl_vote v;
        int valid[64];
        struct lbl_vote_opts o = {LBL_DEFAULT_N, LBL_DEFAULT_M, LBL_DEFAULT_K, 0};
        struct dsm_err err = {0};
        CHECK_OK(lbl_vote_decide(a, 64, &o, &v, valid, &err), &err);
        CHECK(v.label == 0 && v.agree == 3 && v.valid == 63 && v.rejected == 1 && valid[0] == 0 && valid[10] == 1);
    }
}

static void test_bad_input(void) {
    struct dsm_err err = {0};
    struct lbl_vote v;
    double s[] = {0.75};
    struct lbl_analysis a = {s[0], NULL, 0};
    CHECK(lbl_vote_decide(&a, 1, &K2, &v, NULL, &err) == DSM_EINVAL && strstr(err.msg, "analysis 0"));
    double meta[] = {2};
    a = (struct lbl_analysis){0, meta, 1};
    CHECK(lbl_vote_decide(&a, 1, &K2, &v, NULL, &err) == DSM_EINVAL && strstr(err.msg, "meta-verification 0"));
    a = (struct lbl_analysis){1, NULL, 0};
    struct lbl_vote_opts k0 = {0, 0, 0, 0};
    CHECK(lbl_vote_decide(&a, 1, &k0, &v, NULL, &err) == DSM_EINVAL);
}

static void test_json(void) {
    struct dsm_err err = {0};
    json_error_t je;
    json_t *in = json_loads("{\"analyses\":[{\"score\":0.5,\"meta\":[1,1,0]},{\"score\":0.5,\"meta\":[1,null,1]},"
                            "{\"score\":1},{\"score\":null,\"meta\":null},{\"score\":0,\"meta\":[0,0,1]}]}",
                            0, &je);
    CHECK(in != NULL);
    struct lbl_analysis *a = NULL;
    double *store = NULL;
    int na = 0;
    CHECK_OK(lbl_vote_input_from_json(in, "test", &a, &na, &store, &err), &err);
    CHECK(na == 5 && a[3].score == LBL_NO_LABEL && a[1].meta[1] == LBL_NO_LABEL && a[2].n_meta == 0);
    struct lbl_vote v;
    int valid[5];
    struct lbl_vote_opts o = {0, 3, 2, 0};
    CHECK_OK(lbl_vote_decide(a, na, &o, &v, valid, &err), &err);
    CHECK(v.label == 0.5 && v.reason == LBL_R_AGREED && v.rejected == 1 && v.format_failures == 1);
    json_t *out = lbl_vote_to_json(&v, &o, a, na, valid);
    CHECK(out && json_real_value(json_object_get(out, "label")) == 0.5);
    CHECK(out && !strcmp(json_string_value(json_object_get(out, "reason")), "agreed"));
    CHECK(out && json_array_size(json_object_get(out, "analyses")) == 5);
    CHECK(out && json_is_false(json_object_get(json_array_get(json_object_get(out, "analyses"), 4), "valid")));
    json_decref(out);
    free(a);
    free(store);
    json_decref(in);
    static const char *const bad[] = {
        "[]", "{\"analyses\":3}", "{\"analyses\":[3]}", "{\"analyses\":[{}]}", "{\"analyses\":[{\"score\":0.3}]}",
        "{\"analyses\":[{\"score\":\"1\"}]}", "{\"analyses\":[{\"score\":0,\"meta\":[1,7]}]}",
        "{\"analyses\":[{\"score\":0,\"meta\":1}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = json_loads(bad[i], JSON_DECODE_ANY, &je);
        int rc = lbl_vote_input_from_json(j, "stdin", &a, &na, &store, &err);
        CHECK_MSG(rc == DSM_EINVAL && strstr(err.msg, "stdin"), "bad input %s accepted (%s)", bad[i], err.msg);
        json_decref(j);
    }
}

int main(void) {
    test_rule();
    test_bad_input();
    test_json();
    return test_main_end();
}
