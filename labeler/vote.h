/* vote.h - the auto-labeling rule of SPEC §2 ("scaled verification") as a pure function, plus its
 * JSON form (the input of `dsm vote`, the vote stored with every auto label).
 *
 * The rule, for one proof with n verifier analyses:
 *   - an analysis whose output was not well formed (score NULL) takes no part;
 *   - an analysis scoring below 1 reports an issue; it is *valid* when a strict majority of its
 *     meta-verifications rate it 1 (a meta-verification that failed to parse counts as not 1);
 *     an analysis scoring 1 is valid as it stands;
 *   - no analysis reports an issue, or every reported issue is rejected  -> label 1;
 *   - else lo = the lowest score among the valid analyses; at least k valid analyses at lo
 *     -> label lo; fewer -> no label ("uncertain", left for a human).
 * A rejected analysis never sets the label. With no usable analysis at all there is no label
 * (never a vacuous 1). When the vote is incomplete (fewer than n analyses, or an issue with fewer
 * than m meta-verifications) there is no label and the reason says so; n = 0 / m = 0 skip those
 * checks. no_meta = 1 models "before a meta-verifier exists": every analysis is valid.
 */
#ifndef DSM_LABELER_VOTE_H
#define DSM_LABELER_VOTE_H

#include <jansson.h>

#include "common/err.h"

#define LBL_DEFAULT_N 64
#define LBL_DEFAULT_M 3
#define LBL_DEFAULT_K 2
#define LBL_NO_LABEL (-1.0)

/* One analysis: its score (0, 0.5, 1; LBL_NO_LABEL = format failure) and the ratings its
 * meta-verifications gave (same encoding), borrowed. */
struct lbl_analysis {
    double score;
    const double *meta;
    int n_meta;
};

struct lbl_vote_opts {
    int n;       /* analyses required; 0 = any number (default LBL_DEFAULT_N in services) */
    int m;       /* meta-verifications required per issue; 0 = whatever is given */
    int k;       /* agreeing valid analyses needed at the lowest score, >= 1 */
    int no_meta; /* 1: no meta-verifier; every analysis is valid */
};

enum lbl_reason {
    LBL_R_NO_ISSUES = 0,   /* label 1: no analysis reported an issue */
    LBL_R_ALL_REJECTED,    /* label 1: every reported issue was rejected by meta-verification */
    LBL_R_AGREED,          /* label lo: >= k valid analyses gave the lowest valid score */
    LBL_R_UNCERTAIN,       /* no label: fewer than k valid analyses at the lowest valid score */
    LBL_R_NO_ANALYSES,     /* no label: no well-formed analysis */
    LBL_R_INCOMPLETE,      /* no label: fewer analyses or meta-verifications than required */
    LBL_R_COUNT
};

struct lbl_vote {
    double label;        /* 0, 0.5, 1 or LBL_NO_LABEL */
    enum lbl_reason reason;
    int n;               /* analyses given */
    int format_failures; /* analyses with no score */
    int issues;          /* well-formed analyses scoring below 1 */
    int rejected;        /* issues not confirmed by a strict majority of meta-verifications */
    int valid;           /* analyses that count: scoring 1, or issues confirmed */
    double lo;           /* lowest valid score (LBL_NO_LABEL when no valid analysis) */
    int agree;           /* valid analyses at lo */
    int incomplete_at;   /* the first analysis lacking meta-verifications (-1: none) */
};

/* "no-issues", "all-issues-rejected", "agreed", "uncertain", "no-analyses", "incomplete". */
const char *lbl_reason_name(enum lbl_reason r);

/* A sentence explaining v (e.g. "3 valid analyses agree on the lowest valid score 0 (k = 2)")
 * into buf[cap]. */
void lbl_vote_explain(const struct lbl_vote *v, const struct lbl_vote_opts *o, char *buf, size_t cap);

/* Decide the label of one proof from its na analyses (a may be NULL when na = 0). When valid is
 * not NULL it receives one flag per analysis (1 counts in the vote). Errors: DSM_EINVAL for k < 1,
 * n < 0, m < 0, or a score or rating other than 0, 0.5, 1, LBL_NO_LABEL (naming the analysis). */
int lbl_vote_decide(const struct lbl_analysis *a, int na, const struct lbl_vote_opts *o,
                    struct lbl_vote *out, int *valid, struct dsm_err *err);

/* Read {"analyses": [{"score": 0.5 | null, "meta": [1, 1, 0, null, ...]}, ...]} into new arrays:
 * *a (na entries) whose meta pointers point into *meta_store. The caller frees both. Scores may
 * be numbers or null (format failure); "meta" may be absent (no meta-verifications). Errors:
 * DSM_EINVAL naming the element (where names the input, e.g. "stdin"). */
int lbl_vote_input_from_json(const json_t *root, const char *where, struct lbl_analysis **a, int *na,
                             double **meta_store, struct dsm_err *err);

/* The vote as JSON (new reference): label, reason, explanation, counts, options and, per
 * analysis, its score, meta ratings and validity. Returns NULL when out of memory. */
json_t *lbl_vote_to_json(const struct lbl_vote *v, const struct lbl_vote_opts *o, const struct lbl_analysis *a,
                         int na, const int *valid);

#endif
