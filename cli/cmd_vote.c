/* cmd_vote.c - `dsm vote`: the SPEC §2 auto-labeling rule (labeler/vote.h) on a vote given as
 * JSON on stdin: {"analyses": [{"score": 0.5, "meta": [1, 1, 0]}, ...]}. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "common/util.h"
#include "labeler/vote.h"

int cmd_vote(int argc, char **argv) {
    int k = LBL_DEFAULT_K, m = 0, n = 0, no_meta = 0, pretty = 0;
    const char *input = NULL;
    const struct cli_opt opts[] = {
        {"--k", CLI_INT, &k, "K", "valid analyses that must agree on the lowest valid score (default 2)"},
        {"--m", CLI_INT, &m, "M", "meta-verifications each issue must have, else 'incomplete' (default 0: any)"},
        {"--n", CLI_INT, &n, "N", "analyses the vote must have, else 'incomplete' (default 0: any)"},
        {"--no-meta", CLI_FLAG, &no_meta, NULL, "no meta-verifier: every analysis counts as valid"},
        {"--input", CLI_STR, &input, "FILE", "read the vote from FILE instead of stdin"},
        {"--pretty", CLI_FLAG, &pretty, NULL, "indent the JSON"},
    };
    const struct cli_cmd_spec spec = {
        "vote", "[--k K] [--m M] [--n N] [--no-meta] < VOTE.json",
        "Label one proof from its verifier analyses and their meta-verifications (SPEC §2):\n"
        "input {\"analyses\": [{\"score\": 0|0.5|1|null, \"meta\": [1, 1, 0, ...]}, ...]} (null = a format\n"
        "failure); output {\"label\": 0|0.5|1|null, \"reason\", \"explanation\", \"n\", \"valid\", ...}.\n"
        "Reasons: no-issues, all-issues-rejected, agreed, uncertain, no-analyses, incomplete.",
        opts, DSM_ARRAY_LEN(opts), 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (k < 1) return cli_usage_error(spec.name, "--k must be at least 1 (got %d)", k);
    if (m < 0 || n < 0) return cli_usage_error(spec.name, "--m and --n must be >= 0");

    struct dsm_err err = {0};
    json_error_t je;
    const char *what = input ? input : "stdin";
    json_t *root = input ? json_load_file(input, 0, &je) : json_loadf(stdin, 0, &je);
    if (!root) {
        dsm_errf(&err, DSM_EINVAL, "%s: invalid JSON at line %d column %d: %s", what, je.line, je.column, je.text);
        return cli_fail(spec.name, &err);
    }
    struct lbl_analysis *a = NULL;
    double *store = NULL;
    int na = 0, *valid = NULL;
    struct lbl_vote v;
    struct lbl_vote_opts o = {n, m, k, no_meta};
    if ((rc = lbl_vote_input_from_json(root, what, &a, &na, &store, &err))) goto done;
    if (!(valid = calloc((size_t)(na ? na : 1), sizeof *valid))) {
        rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = lbl_vote_decide(a, na, &o, &v, valid, &err))) goto done;
    json_t *out = lbl_vote_to_json(&v, &o, a, na, valid);
    char *s = out ? json_dumps(out, JSON_PRESERVE_ORDER | (pretty ? JSON_INDENT(2) : JSON_COMPACT)) : NULL;
    json_decref(out);
    if (!s) {
        rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
        goto done;
    }
    printf("%s\n", s);
    free(s);
done:
    free(a);
    free(store);
    free(valid);
    json_decref(root);
    return rc ? cli_fail(spec.name, &err) : 0;
}
