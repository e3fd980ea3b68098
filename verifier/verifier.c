/* verifier.c - verifier prompt, output reading and reward; see verifier.h. */
#include "verifier/verifier.h"

#include <math.h>
#include <string.h>

extern const char ver_verify_text[], ver_verify_version[], ver_verify_sha12[];

const char *const ver_markers_begin[] = {VER_MARKER_BEGIN, NULL};
const char *const ver_markers_score[] = {VER_MARKER_SCORE, VER_MARKER_SCORE_ALT, NULL};

void ver_template_verify(struct role_template *t) {
    role_template_builtin(t, "verify", ver_verify_version, ver_verify_text, ver_verify_sha12);
}

int ver_prompt_build(const struct role_template *t, const char *problem, const char *proof, char **out,
                     struct dsm_err *err) {
    struct role_template builtin;
    if (!t) {
        ver_template_verify(&builtin);
        t = &builtin;
    }
    *out = NULL;
    if (!problem || !proof) return dsm_errf(err, DSM_EINVAL, "verifier prompt: no %s text", problem ? "proof" : "problem");
    const char *keys[] = {"problem", "proof"}, *vals[] = {problem, proof};
    return role_template_render(t, keys, vals, 2, out, NULL, err);
}

void ver_parse(const char *text, size_t len, int truncated, struct ver_parsed *out) {
    memset(out, 0, sizeof *out);
    out->score = ROLE_NO_SCORE;
    struct role_span s;
    enum role_fail f = role_after_think(text, len, &s);
    if (f == ROLE_OK)
        f = role_parse_analysis(s, ver_markers_begin, ver_markers_score, &out->analysis, &out->score, out->box,
                                sizeof out->box);
    if (truncated) f = ROLE_FAIL_TRUNCATED;
    if (f != ROLE_OK) out->score = ROLE_NO_SCORE;
    out->fail = f;
}

double ver_reward(int format_ok, double s_pred, double s_label, double r_meta) {
    if (!format_ok) return 0.0;
    return (1.0 - fabs(s_pred - s_label)) * r_meta;
}
