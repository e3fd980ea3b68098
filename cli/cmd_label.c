/* cmd_label.c - `dsm label`: the auto-labeler over the store. For every proof with verifier
 * analyses and no auto label of this --origin yet, read its first n analyses (by id) and the first
 * m meta-verifications of each, run the vote of SPEC §2 (labeler/vote.h) and write a labels row
 * (source 'auto', rule 'v2-vote', n, m, k, the full vote as jsonb, value NULL when uncertain).
 * Proofs whose vote is incomplete (fewer than n analyses, or an issue with fewer than m
 * meta-verifications) get no row: a later run labels them once the services have finished.
 * docs/serve.md. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/db.h"
#include "common/util.h"
#include "labeler/label_store.h"

struct label_counts {
    long proofs, labeled, uncertain, incomplete, unchanged;
};

int cmd_label(int argc, char **argv) {
    int n = LBL_DEFAULT_N, m = LBL_DEFAULT_M, k = LBL_DEFAULT_K, no_meta = 0, relabel = 0;
    long proof = 0, limit = 0, run_id = 0, round = -1;
    const char *origin = "";
    const struct cli_opt opts[] = {
        {"--n", CLI_INT, &n, "N", "analyses per proof the vote reads (the first N by id; default 64)"},
        {"--m", CLI_INT, &m, "M", "meta-verifications per issue it reads (the first M; default 3)"},
        {"--k", CLI_INT, &k, "K", "valid analyses that must agree on the lowest valid score (default 2)"},
        {"--no-meta", CLI_FLAG, &no_meta, NULL, "no meta-verifier: every analysis counts as valid"},
        {"--proof", CLI_LONG, &proof, "ID", "only this proof"},
        {"--origin", CLI_STR, &origin, "NAME", "labels.origin of the labels written (default \"\")"},
        {"--relabel", CLI_FLAG, &relabel, NULL, "vote again on proofs already labeled (replace the label)"},
        {"--limit", CLI_LONG, &limit, "N", "at most N proofs (0 = all)"},
        {"--run-id", CLI_LONG, &run_id, "N", "only proofs of this run (a loop's)"},
        {"--round", CLI_LONG, &round, "N", "only proofs of this round"},
    };
    const struct cli_cmd_spec spec = {
        "label", "[--n N] [--m M] [--k K] [--no-meta] [--proof ID] [--origin NAME] [--relabel]",
        "Auto-label proofs from their verifier analyses and meta-verifications (the V2 vote,\n"
        "SPEC §2; `dsm vote` is the same rule on one JSON input). Writes labels rows (source auto,\n"
        "rule v2-vote, n, m, k, the full vote; value NULL = uncertain). Proofs whose vote is\n"
        "incomplete get no row. Prints {\"proofs\", \"labeled\", \"uncertain\", \"incomplete\", \"unchanged\"}.",
        opts, DSM_ARRAY_LEN(opts), 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (n < 1 || m < 1 || k < 1) return cli_usage_error(spec.name, "--n, --m and --k must be at least 1");
    if (proof < 0 || limit < 0 || run_id < 0) return cli_usage_error(spec.name, "--proof, --limit and --run-id must be >= 0");

    struct dsm_err err = {0};
    struct dsm_db *db = NULL;
    struct db_open_opts oo = {.migrate = 1};
    if (db_open(&oo, &db, &err)) return cli_fail(spec.name, &err);
    char ns[16], ms[16], ps[24], ls[24], rs[24], rds[24];
    snprintf(rs, sizeof rs, "%ld", run_id);
    snprintf(rds, sizeof rds, "%ld", round);
    snprintf(ns, sizeof ns, "%d", n);
    snprintf(ms, sizeof ms, "%d", m);
    snprintf(ps, sizeof ps, "%ld", proof);
    snprintf(ls, sizeof ls, "%ld", limit ? limit : (long)1 << 62);
    const char *vals[8] = {origin, ns, ms, proof ? ps : NULL, relabel ? "true" : "false", ls, run_id > 0 ? rs : NULL,
                           round >= 0 ? rds : NULL};
    PGresult *r = NULL;
    struct label_counts c = {0};
    struct lbl_vote_opts o = {n, m, k, no_meta};
    if ((rc = db_exec(db, lbl_store_input_sql, 8, vals, &r, &err))) goto done;
    for (int i = 0; i < PQntuples(r) && !rc; i++) {
        c.proofs++;
        struct lbl_vote v;
        enum lbl_store_outcome out;
        rc = lbl_store_label(db, db_get(r, i, "id"), db_get(r, i, "vote_input"), &o, origin, relabel, &v, NULL, &out,
                             &err);
        long *slot[] = {&c.incomplete, &c.labeled, &c.uncertain, &c.unchanged};
        if (!rc) (*slot[out])++;
    }
    if (!rc)
        printf("{\"proofs\": %ld, \"labeled\": %ld, \"uncertain\": %ld, \"incomplete\": %ld, \"unchanged\": %ld}\n",
               c.proofs, c.labeled, c.uncertain, c.incomplete, c.unchanged);
done:
    PQclear(r);
    db_close(db);
    return rc ? cli_fail(spec.name, &err) : 0;
}
