/* metaverifier.c - meta-verifier prompt, output reading and reward; see metaverifier.h. */
#include "metaverifier/metaverifier.h"

#include <math.h>
#include <string.h>

extern const char mver_metaverify_text[], mver_metaverify_version[], mver_metaverify_sha12[];

const char *const mver_markers_begin[] = {MVER_MARKER_BEGIN, NULL};
const char *const mver_markers_score[] = {MVER_MARKER_SCORE, NULL};

void mver_template_metaverify(struct role_template *t) {
    role_template_builtin(t, "metaverify", mver_metaverify_version, mver_metaverify_text, mver_metaverify_sha12);
}

int mver_prompt_build(const struct role_template *t, const char *problem, const char *proof,
                      const char *analysis, char **out, struct dsm_err *err) {
    struct role_template builtin;
    if (!t) {
        mver_template_metaverify(&builtin);
        t = &builtin;
    }
    *out = NULL;
    if (!problem || !proof || !analysis)
        return dsm_errf(err, DSM_EINVAL, "meta-verifier prompt: no %s text",
                        !problem ? "problem" : !proof ? "proof" : "analysis");
    const char *keys[] = {"problem", "proof", "analysis"}, *vals[] = {problem, proof, analysis};
    return role_template_render(t, keys, vals, 3, out, NULL, err);
}

void mver_parse(const char *text, size_t len, int truncated, struct mver_parsed *out) {
    memset(out, 0, sizeof *out);
    out->score = ROLE_NO_SCORE;
    struct role_span s;
    enum role_fail f = role_after_think(text, len, &s);
    if (f == ROLE_OK)
        f = role_parse_analysis(s, mver_markers_begin, mver_markers_score, &out->analysis, &out->score, out->box,
                                sizeof out->box);
    if (truncated) f = ROLE_FAIL_TRUNCATED;
    if (f != ROLE_OK) out->score = ROLE_NO_SCORE;
    out->fail = f;
}

double mver_reward(int format_ok, double ms_pred, double ms_label) {
    if (!format_ok) return 0.0;
    return 1.0 - fabs(ms_pred - ms_label);
}
