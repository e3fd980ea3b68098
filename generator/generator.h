/* generator.h - the generator role of the V2 protocol (SPEC §2): its prompts, the reading of its
 * output (## Solution / ## Self Evaluation with a boxed self-score) and its GRPO reward.
 *
 * A service's loop is: claim a problem -> gen_prompt_build (or gen_prompt_build_refine) -> the lm
 * (common/lm.h) -> gen_parse on each completion -> a proofs row holding proof, self_evaluation,
 * self_score (NULL unless well formed), raw_output, finish_reason and the template id.
 * Everything here is pure and thread-safe; docs/roles.md states every parsing decision.
 */
#ifndef DSM_GENERATOR_H
#define DSM_GENERATOR_H

#include <stddef.h>

#include "common/err.h"
#include "common/role.h"

#define GEN_REWARD_ALPHA 0.76 /* weight of the verifier's score of the proof */
#define GEN_REWARD_BETA 0.24  /* weight of an honest, meta-verified self-evaluation */

/* The built-in templates (generator/prompts/generate.v1.md, refine.v1.md). */
void gen_template_generate(struct role_template *t);
void gen_template_refine(struct role_template *t);

/* The first prompt for a problem: template t (NULL = built-in "generate") with {{problem}}.
 * *out is a new string (caller frees). Errors: DSM_EINVAL (template without {{problem}}, NULL
 * problem), DSM_ENOMEM. */
int gen_prompt_build(const struct role_template *t, const char *problem, char **out, struct dsm_err *err);

/* One earlier attempt to refine: its proof and some analyses of it (verifier analyses, or its own
 * self-evaluation). All borrowed. */
struct gen_candidate {
    const char *proof;
    const char *const *analyses;
    int n_analyses;
};

/* The refinement prompt (SPEC §2): the first prompt for the problem (template gen_t, NULL =
 * built-in) as {{instruction}}, then the nc >= 1 candidates, each with its analyses, as
 * {{candidates}} under "## Candidate Solution(s) to Refine" (template refine_t, NULL = built-in).
 * Candidates are written as "--- Candidate i ---" blocks with "=== Evaluation j of candidate i ==="
 * sub-blocks (i, j from 1). Errors as gen_prompt_build, and DSM_EINVAL for nc < 1 or a NULL proof. */
int gen_prompt_build_refine(const struct role_template *gen_t, const struct role_template *refine_t,
                            const char *problem, const struct gen_candidate *c, int nc, char **out,
                            struct dsm_err *err);

/* A generator output, read. Spans point into the text given to gen_parse. */
struct gen_parsed {
    enum role_fail fail;              /* ROLE_OK when well formed */
    struct role_span proof;           /* between the two headings, trimmed (NULL p when absent) */
    struct role_span self_evaluation; /* after the Self Evaluation heading, trimmed */
    struct role_span analysis;        /* the self-evaluation's analysis: between its markers when
                                       * both are there, else up to the score marker, else all */
    double self_score;                /* 0, 0.5, 1, or ROLE_NO_SCORE unless fail == ROLE_OK */
    char box[64];                     /* the last box's content as read ("" when none) */
};

/* Read one generator output text[0..len). truncated: the finish reason was not "stop" (such an
 * output is never scored: fail = ROLE_FAIL_TRUNCATED, though the spans are still filled). Well
 * formed means: the </think> rule holds, a Solution heading, a Self Evaluation heading after it, a
 * non-empty proof between them, and a valid score as the last non-empty box of the
 * self-evaluation (the analysis markers inside it are read when present, not required). */
void gen_parse(const char *text, size_t len, int truncated, struct gen_parsed *out);

/* R = R_format * (alpha * s + beta * (1 - |s_self - s|) * ms): s the verifier's score of the
 * proof, s_self the self-score, ms the meta-verifier's score of the self-evaluation (1 before a
 * meta-verifier exists). format_ok = 0 gives 0 whatever the scores. Scores are 0, 0.5 or 1. */
double gen_reward(int format_ok, double s, double s_self, double ms);

#endif
