/* verifier.h - the verifier role of the V2 protocol (SPEC §2): its prompt, the reading of its
 * output (analysis marker, analysis, score marker, boxed score) and its GRPO reward.
 *
 * A service's loop is: claim a proof -> ver_prompt_build -> the lm (common/lm.h) -> ver_parse on
 * each completion -> a verifications row holding analysis, score (NULL unless well formed),
 * format_ok, raw_output, finish_reason and the template id. Pure and thread-safe.
 */
#ifndef DSM_VERIFIER_H
#define DSM_VERIFIER_H

#include <stddef.h>

#include "common/err.h"
#include "common/role.h"

/* The exact markers (SPEC §2). The released code spells "overal"; both spellings are accepted. */
#define VER_MARKER_BEGIN "Here is my evaluation of the solution:"
#define VER_MARKER_SCORE "Based on my evaluation, the final overall score should be:"
#define VER_MARKER_SCORE_ALT "Based on my evaluation, the final overal score should be:"

/* NULL-terminated spelling lists, for role_find_markers / role_parse_analysis. */
extern const char *const ver_markers_begin[];
extern const char *const ver_markers_score[];

/* The built-in template (verifier/prompts/verify.v1.md). */
void ver_template_verify(struct role_template *t);

/* The prompt for grading proof of problem: template t (NULL = built-in) with {{problem}} and
 * {{proof}}. *out is new (caller frees). Errors: DSM_EINVAL (NULL text, template lacking a
 * placeholder), DSM_ENOMEM. */
int ver_prompt_build(const struct role_template *t, const char *problem, const char *proof, char **out,
                     struct dsm_err *err);

/* A verifier output, read. Spans point into the text given to ver_parse. */
struct ver_parsed {
    enum role_fail fail;       /* ROLE_OK when well formed */
    struct role_span analysis; /* between the markers, trimmed */
    double score;              /* 0, 0.5, 1, or ROLE_NO_SCORE unless fail == ROLE_OK */
    char box[64];              /* the last box after the score marker, as read */
};

/* Read one verifier output text[0..len). truncated: finish reason not "stop" (never scored). Well
 * formed: the </think> rule holds, the analysis marker, then (last occurrence) the score marker,
 * a non-empty analysis between, and the last non-empty box after the score marker is 0, 0.5 or 1.
 * Markers inside fenced code blocks do not count. */
void ver_parse(const char *text, size_t len, int truncated, struct ver_parsed *out);

/* R_V = R_format * (1 - |s_pred - s_label|) * r_meta: s_pred the analysis's score, s_label the
 * proof's label, r_meta the meta-verifier's score of the analysis (1 before one exists). */
double ver_reward(int format_ok, double s_pred, double s_label, double r_meta);

#endif
