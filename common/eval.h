/* eval.h - scoring sampled answers to answer-checked problems: greedy accuracy, maj@k, pass@k.
 *
 * Pure functions over texts (however the samples were produced): a caller hands in, per problem,
 * the gold answer, the greedy output (optional) and n sampled outputs; the scorer extracts each
 * answer (common/answer.h), groups equivalent answers for the majority vote, and counts.
 *
 * Definitions (DeepSeekMath's reporting, our wording):
 *  - greedy accuracy: the greedy output's answer equals the gold one;
 *  - maj@k: the most frequent answer among the first k samples (equivalence classes under the
 *    answer checker; samples with no answer do not vote; ties go to the class seen first) equals
 *    the gold one;
 *  - pass@k: the unbiased estimator from n >= k samples with c correct,
 *    1 - C(n - c, k) / C(n, k) (Chen et al. 2021), averaged over problems.
 * A truncated output (finish reason "length") has no answer.
 */
#ifndef DSM_EVAL_H
#define DSM_EVAL_H

#include <stddef.h>

#include "common/answer.h"
#include "common/err.h"

struct eval_output {
    const char *text;   /* borrowed */
    size_t len;
    int truncated;      /* 1: finish reason "length": never scored */
};

struct eval_item {
    const char *gold;                 /* gold answer string */
    const struct eval_output *greedy; /* NULL when no greedy output was sampled */
    const struct eval_output *samples;
    int n;                            /* samples */
};

struct eval_item_result {
    int greedy_correct;   /* 1/0, or -1 when there was no greedy output */
    int n_correct;        /* samples whose answer equals the gold one */
    int maj_correct;      /* the majority answer of the first k samples is right (0 when none answered) */
    int maj_votes;        /* size of the winning class */
    int answered;         /* samples with an extractable answer */
};

/* Score one problem; k <= item->n is the maj@k window. flags as ans_extract (e.g.
 * ANS_EXTRACT_LAST_NUMBER). Errors: DSM_EINVAL for an empty or overlong gold (the message names it),
 * k outside [1, n]. */
int eval_score_item(struct ans_checker *c, const struct eval_item *item, int k, unsigned flags,
                    struct eval_item_result *out, struct dsm_err *err);

/* The unbiased pass@k estimate for n samples with c correct (0 <= c <= n, 1 <= k <= n). */
double eval_pass_at_k(int n, int c, int k);

/* Running totals for a group of problems (all, one subject, one level). */
struct eval_totals {
    int problems;
    int greedy_scored, greedy_correct;
    int maj_correct;
    double pass_sum;      /* sum of per-problem pass@k */
    double pass1_sum;     /* sum of per-problem pass@1 (fraction of samples correct) */
};

/* Add one scored problem to t. */
void eval_totals_add(struct eval_totals *t, const struct eval_item_result *r, int n, int k);

#endif
