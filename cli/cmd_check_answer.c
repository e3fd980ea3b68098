/* cmd_check_answer.c - `dsm check-answer --gold G (--pred P | --pred-text OUTPUT)`: is a predicted
 * answer mathematically equal to the gold one? Prints "equal" or "different" on stdout and exits
 * 0 or 1; 2 on a usage error or a bad gold (empty, too long). See docs/answer-checking.md. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/answer.h"

int cmd_check_answer(int argc, char **argv) {
    const char *gold = NULL, *pred = NULL, *pred_text = NULL;
    int last_number = 0, explain = 0;
    double rel_tol = -1;
    const struct cli_opt opts[] = {
        {"--gold", CLI_STR, &gold, "G", "the gold answer (LaTeX, as in a dataset's answer field)"},
        {"--pred", CLI_STR, &pred, "P", "the predicted final answer"},
        {"--pred-text", CLI_STR, &pred_text, "TEXT",
         "a full model output: the answer is extracted (last \\boxed{}, '#### ', 'the answer is')"},
        {"--last-number", CLI_FLAG, &last_number, NULL,
         "with --pred-text, fall back to the last number in the text"},
        {"--rel-tol", CLI_DOUBLE, &rel_tol, "X",
         "relative tolerance for inexact values (default 1e-8)"},
        {"--explain", CLI_FLAG, &explain, NULL,
         "also print on stderr the extracted answer and the rule that decided"},
    };
    const struct cli_cmd_spec spec = {
        "check-answer", "--gold G (--pred P | --pred-text TEXT) [--last-number] [--explain]",
        "Decide whether a predicted answer equals the gold answer (numbers, fractions, expressions,\n"
        "tuples, sets, intervals, matrices, choices). Prints 'equal' (exit 0) or 'different'\n"
        "(exit 1); exit 2 on a usage error or an empty gold.",
        opts, sizeof opts / sizeof opts[0], 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (!gold) return cli_usage_error("check-answer", "--gold is required");
    if (!pred == !pred_text)
        return cli_usage_error("check-answer", "give exactly one of --pred and --pred-text");
    if (last_number && !pred_text)
        return cli_usage_error("check-answer", "--last-number only applies to --pred-text");
    struct ans_opts o;
    ans_opts_default(&o);
    if (rel_tol != -1) {
        if (!(rel_tol >= 0 && rel_tol < 1))
            return cli_usage_error("check-answer", "--rel-tol must be in [0, 1), got %g", rel_tol);
        o.rel_tol = rel_tol;
    }
    struct dsm_err err = {0};
    struct ans_checker *c = NULL;
    if (ans_checker_create(&o, &c, &err) != DSM_OK) return cli_fail("check-answer", &err);
    struct ans_verdict v;
    if (pred_text) {
        char extracted[ANS_MAX_LEN + 1];
        enum ans_found found = ANS_FOUND_NONE;
        unsigned flags = last_number ? ANS_EXTRACT_LAST_NUMBER : 0;
        if (ans_extract(pred_text, strlen(pred_text), flags, extracted, sizeof extracted, &found,
                        NULL) != DSM_OK)
            extracted[0] = 0, found = ANS_FOUND_NONE;
        if (explain)
            fprintf(stderr, "extracted (%s): %s\n", ans_found_name(found), extracted);
        rc = ans_checker_compare(c, gold, found == ANS_FOUND_NONE ? "" : extracted, &v, &err);
    } else {
        rc = ans_checker_compare(c, gold, pred, &v, &err);
    }
    ans_checker_destroy(c);
    if (rc != DSM_OK) return cli_fail("check-answer", &err);
    if (explain) fprintf(stderr, "rule: %s, steps: %ld\n", ans_reason_name(v.reason), v.steps);
    printf("%s\n", v.equal ? "equal" : "different");
    return v.equal ? 0 : 1;
}
