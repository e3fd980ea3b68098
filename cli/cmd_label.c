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
#include "labeler/vote.h"

/* The proofs to label, each with its analyses as {"analyses": [{"id", "score", "meta": [...]}]}. */
static const char *const label_sql =
    "SELECT p.id, jsonb_build_object('analyses', coalesce((SELECT jsonb_agg(jsonb_build_object('id', v.id, "
    "'score', v.score, 'meta', coalesce((SELECT jsonb_agg(mv.score ORDER BY mv.id) FROM (SELECT mv0.id, mv0.score "
    "FROM meta_verifications mv0 WHERE mv0.verification_id = v.id ORDER BY mv0.id LIMIT $3::int) mv), "
    "'[]'::jsonb)) ORDER BY v.id) FROM (SELECT v0.id, v0.score FROM verifications v0 WHERE v0.proof_id = p.id "
    "AND v0.kind = 'analysis' ORDER BY v0.id LIMIT $2::int) v), '[]'::jsonb))::text AS vote_input "
    "FROM proofs p WHERE EXISTS (SELECT 1 FROM verifications x WHERE x.proof_id = p.id AND x.kind = 'analysis') "
    "AND ($7::bigint IS NULL OR p.run_id = $7::bigint) AND ($8::int IS NULL OR p.round = $8::int) "
    "AND ($4::bigint IS NULL OR p.id = $4::bigint) "
    "AND ($5::boolean OR NOT EXISTS (SELECT 1 FROM labels l WHERE l.proof_id = p.id AND l.source = 'auto' "
    "AND l.origin = $1)) ORDER BY p.id LIMIT $6::bigint";

struct label_counts {
    long proofs, labeled, uncertain, incomplete, unchanged;
};

/* Vote on one proof and write its label. */
static int label_one(struct dsm_db *db, const char *proof_id, const char *input, const struct lbl_vote_opts *o,
                     const char *origin, int relabel, struct label_counts *c, struct dsm_err *err) {
    json_error_t je;
    json_t *root = json_loads(input, 0, &je), *vj = NULL;
    struct lbl_analysis *a = NULL;
    double *store = NULL;
    int na = 0, *valid = NULL, rc;
    char *vote = NULL, where[64];
    snprintf(where, sizeof where, "proof %s", proof_id);
    if (!root) {
        rc = dsm_errf(err, DSM_EINVAL, "%s: bad vote input: %s", where, je.text);
        goto done;
    }
    if ((rc = lbl_vote_input_from_json(root, where, &a, &na, &store, err))) goto done;
    valid = calloc((size_t)na + 1, sizeof *valid);
    if (!valid) {
        rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
        goto done;
    }
    struct lbl_vote v;
    if ((rc = lbl_vote_decide(a, na, o, &v, valid, err))) goto done;
    if (v.reason == LBL_R_INCOMPLETE) {
        c->incomplete++;
        goto done;
    }
    vj = lbl_vote_to_json(&v, o, a, na, valid);
    json_t *list = vj ? json_object_get(vj, "analyses") : NULL, *in = json_object_get(root, "analyses");
    for (int i = 0; list && i < na; i++) /* which verification each entry is */
        json_object_set(json_array_get(list, (size_t)i), "verification_id",
                        json_object_get(json_array_get(in, (size_t)i), "id"));
    vote = vj ? json_dumps(vj, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
    if (!vote) {
        rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
        goto done;
    }
    char val[32] = "", n[16], m[16], k[16];
    if (v.label != LBL_NO_LABEL) snprintf(val, sizeof val, "%g", v.label);
    snprintf(n, sizeof n, "%d", o->n);
    snprintf(m, sizeof m, "%d", o->m);
    snprintf(k, sizeof k, "%d", o->k);
    const char *vals[7] = {proof_id, val[0] ? val : NULL, n, m, k, vote, origin};
    PGresult *r = NULL;
    rc = db_exec(db,
                 relabel ? "INSERT INTO labels (proof_id, value, source, rule, n, m, k, vote, origin) VALUES "
                           "($1::bigint, $2::numeric, 'auto', 'v2-vote', $3::int, $4::int, $5::int, $6::jsonb, $7) "
                           "ON CONFLICT (proof_id, source, origin) DO UPDATE SET value = EXCLUDED.value, "
                           "n = EXCLUDED.n, m = EXCLUDED.m, k = EXCLUDED.k, vote = EXCLUDED.vote, created_at = now() "
                           "RETURNING id"
                         : "INSERT INTO labels (proof_id, value, source, rule, n, m, k, vote, origin) VALUES "
                           "($1::bigint, $2::numeric, 'auto', 'v2-vote', $3::int, $4::int, $5::int, $6::jsonb, $7) "
                           "ON CONFLICT (proof_id, source, origin) DO NOTHING RETURNING id",
                 7, vals, &r, err);
    if (!rc) {
        if (PQntuples(r) == 0)
            c->unchanged++;
        else if (v.label == LBL_NO_LABEL)
            c->uncertain++;
        else
            c->labeled++;
    }
    PQclear(r);
done:
    free(vote);
    json_decref(vj);
    json_decref(root);
    free(a);
    free(store);
    free(valid);
    return rc;
}

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
    if ((rc = db_exec(db, label_sql, 8, vals, &r, &err))) goto done;
    for (int i = 0; i < PQntuples(r) && !rc; i++) {
        c.proofs++;
        rc = label_one(db, db_get(r, i, "id"), db_get(r, i, "vote_input"), &o, origin, relabel, &c, &err);
    }
    if (!rc)
        printf("{\"proofs\": %ld, \"labeled\": %ld, \"uncertain\": %ld, \"incomplete\": %ld, \"unchanged\": %ld}\n",
               c.proofs, c.labeled, c.uncertain, c.incomplete, c.unchanged);
done:
    PQclear(r);
    db_close(db);
    return rc ? cli_fail(spec.name, &err) : 0;
}
