/* answer.h - final-answer extraction and mathematical equivalence (the rule reward, eval scoring).
 *
 * Three pure steps, each usable alone:
 *   ans_extract    full model output -> the final answer string (last non-empty \boxed{}/\fbox{}
 *                  after the last </think>, else GSM8K "#### x", else "the answer is x", else
 *                  optionally the last number);
 *   ans_normalize  answer string -> canonical LaTeX-ish text (no $, \left/\right, \dfrac, spacing
 *                  commands, thousands separators, units, degrees, trailing period);
 *   ans_checker_compare  gold vs predicted answer -> equal / different, with the rule that decided.
 * What is decided and what is not is documented in docs/answer-checking.md.
 *
 * Ownership: every function writes into caller buffers or a caller-owned checker; nothing returned
 * needs freeing except the checker itself. Inputs are never kept after a call returns.
 * Thread safety: the free functions are thread-safe; a checker is used by one thread at a time
 * (create one per thread; comparisons through one checker are independent and deterministic).
 */
#ifndef DSM_ANSWER_H
#define DSM_ANSWER_H

#include <stddef.h>

#include "common/err.h"

/* Longest answer (bytes, after extraction) that is parsed; longer ones compare as strings. */
#define ANS_MAX_LEN 4096

/* ---- extraction ------------------------------------------------------------------------- */

enum ans_found {
    ANS_FOUND_NONE = 0,
    ANS_FOUND_BOXED,       /* last non-empty \boxed{...} or \fbox{...} */
    ANS_FOUND_HASH,        /* GSM8K "#### x" */
    ANS_FOUND_PHRASE,      /* "the answer is x", "final answer: x" */
    ANS_FOUND_LAST_NUMBER, /* fallback, only with ANS_EXTRACT_LAST_NUMBER */
};

/* ans_extract flags */
#define ANS_EXTRACT_LAST_NUMBER 1u /* fall back to the last number in the text */

/* Extract the final answer from a model's full output text[0..len). Only the text after the last
 * "</think>" is searched. A last \boxed whose braces never close (a truncated output) means no
 * answer: nothing earlier is used. Writes the answer (NUL-terminated, trimmed) into out[cap] and
 * how it was found into *found; when nothing is found, out is "" and *found ANS_FOUND_NONE and the
 * status is still DSM_OK. Errors: DSM_EINVAL when the answer does not fit in cap (cap >= 1). */
int ans_extract(const char *text, size_t len, unsigned flags, char *out, size_t cap,
                enum ans_found *found, struct dsm_err *err);

/* A short name for a found kind ("boxed", "hash", "phrase", "last-number", "none"). */
const char *ans_found_name(enum ans_found f);

/* ---- normalisation ---------------------------------------------------------------------- */

/* Normalise answer s[0..len) into out[cap] (see the file header). Errors: DSM_EINVAL when the
 * result does not fit in cap or len > ANS_MAX_LEN. */
int ans_normalize(const char *s, size_t len, char *out, size_t cap, struct dsm_err *err);

/* ---- comparison ------------------------------------------------------------------------- */

/* ans_opts.flags */
#define ANS_NO_STRING_SHORTCUT 1u /* never decide "equal" from identical normalised strings (tests) */

struct ans_opts {
    double rel_tol;      /* relative tolerance when a side is not an exact rational; 1e-8 */
    long max_steps;      /* parse + evaluation steps per comparison; 2,000,000 */
    double time_limit_s; /* wall-clock limit per comparison; 1.0 s (0 = none) */
    int max_nodes;       /* expression nodes per comparison; 16384 */
    unsigned flags;
};

/* Fill o with the defaults above. */
void ans_opts_default(struct ans_opts *o);

/* The rule that decided a verdict. */
enum ans_reason {
    ANS_R_STRING = 0, /* identical after normalisation */
    ANS_R_NUMERAL,    /* both plain decimal numerals, compared digit by digit */
    ANS_R_EXACT,      /* exact rational arithmetic */
    ANS_R_FLOAT,      /* constants compared in floating point within rel_tol */
    ANS_R_POINTS,     /* expressions with variables compared at random points */
    ANS_R_CHOICE,     /* multiple-choice letters */
    ANS_R_TEXT,       /* text compared case-insensitively (words, unparseable parts) */
    ANS_R_STRUCTURE,  /* different shapes: tuple vs set, sizes, brackets, matrix dimensions */
    ANS_R_EMPTY,      /* the prediction is empty */
    ANS_R_LIMIT,      /* the step or time limit was hit: judged different */
    ANS_R_COUNT
};

/* A short name for a reason ("string", "numeral", "exact", ...). Never NULL. */
const char *ans_reason_name(enum ans_reason r);

struct ans_verdict {
    int equal;             /* 1 equal, 0 different */
    enum ans_reason reason; /* the rule that decided the last element compared */
    long steps;            /* evaluation steps spent */
};

struct ans_checker;

/* Create a reusable checker with opts (NULL = defaults). *out is new; free with
 * ans_checker_destroy(). Errors: DSM_EINVAL for bad options, DSM_ENOMEM. */
int ans_checker_create(const struct ans_opts *opts, struct ans_checker **out, struct dsm_err *err);

/* Free a checker. NULL is fine. */
void ans_checker_destroy(struct ans_checker *c);

/* Decide whether the predicted answer pred equals the gold answer gold (both NUL-terminated answer
 * strings, not full outputs). Always reaches a verdict within the limits (a limit hit is judged
 * different). Errors: DSM_EINVAL when gold is empty after normalisation or longer than
 * ANS_MAX_LEN. An empty or overlong pred is "different", not an error. */
int ans_checker_compare(struct ans_checker *c, const char *gold, const char *pred,
                        struct ans_verdict *v, struct dsm_err *err);

/* Extract the answer from a full model output (ans_extract with flags) and compare it with gold;
 * no answer found is "different" (reason ANS_R_EMPTY). The reward function of GRPO and eval. */
int ans_checker_grade(struct ans_checker *c, const char *gold, const char *output, size_t len,
                      unsigned flags, struct ans_verdict *v, struct dsm_err *err);

/* One-shot ans_checker_compare with a temporary checker (opts NULL = defaults). */
int ans_equal(const char *gold, const char *pred, const struct ans_opts *opts,
              struct ans_verdict *v, struct dsm_err *err);

#endif
