/* metaverifier.h - the meta-verifier role of the V2 protocol (SPEC §2): its prompt, the reading
 * of its output (analysis marker, analysis, rating marker, boxed rating) and its GRPO reward.
 *
 * A service's loop is: claim a verification -> mver_prompt_build -> the lm (common/lm.h) ->
 * mver_parse on each completion -> a meta_verifications row. Pure and thread-safe.
 */
#ifndef DSM_METAVERIFIER_H
#define DSM_METAVERIFIER_H

#include <stddef.h>

#include "common/err.h"
#include "common/role.h"

/* The exact markers (SPEC §2), ASCII double quotes included. */
#define MVER_MARKER_BEGIN "Here is my analysis of the \"solution evaluation\":"
#define MVER_MARKER_SCORE "Based on my analysis, I will rate the \"solution evaluation\" as:"

extern const char *const mver_markers_begin[];
extern const char *const mver_markers_score[];

/* The built-in template (metaverifier/prompts/metaverify.v1.md). */
void mver_template_metaverify(struct role_template *t);

/* The prompt for judging verifier analysis `analysis` of proof for problem: template t (NULL =
 * built-in) with {{problem}}, {{proof}} and {{analysis}}. *out is new (caller frees). Errors:
 * DSM_EINVAL (NULL text, template lacking a placeholder), DSM_ENOMEM. */
int mver_prompt_build(const struct role_template *t, const char *problem, const char *proof,
                      const char *analysis, char **out, struct dsm_err *err);

struct mver_parsed {
    enum role_fail fail;
    struct role_span analysis;
    double score; /* the rating: 0, 0.5, 1, or ROLE_NO_SCORE unless fail == ROLE_OK */
    char box[64];
};

/* Read one meta-verifier output; rules as ver_parse with the meta-verifier's markers. */
void mver_parse(const char *text, size_t len, int truncated, struct mver_parsed *out);

/* R_format * (1 - |ms_pred - ms_label|). */
double mver_reward(int format_ok, double ms_pred, double ms_label);

#endif
