/* label_store.c - the V2 vote over the store; see label_store.h. */
#include "labeler/label_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const lbl_store_input_sql =
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

int lbl_store_input(struct dsm_db *db, const char *proof_id, int n, int m, char **input, struct dsm_err *err) {
    char ns[16], ms[16];
    snprintf(ns, sizeof ns, "%d", n);
    snprintf(ms, sizeof ms, "%d", m);
    const char *vals[8] = {"", ns, ms, proof_id, "true", "1", NULL, NULL};
    PGresult *r = NULL;
    *input = NULL;
    int rc = db_exec(db, lbl_store_input_sql, 8, vals, &r, err);
    if (rc) return rc;
    *input = strdup(PQntuples(r) ? db_get(r, 0, "vote_input") : "{\"analyses\": []}");
    PQclear(r);
    return *input ? DSM_OK : dsm_errf(err, DSM_ENOMEM, "out of memory");
}

int lbl_store_label(struct dsm_db *db, const char *proof_id, const char *input, const struct lbl_vote_opts *o,
                    const char *origin, int relabel, struct lbl_vote *v, json_t **vote,
                    enum lbl_store_outcome *outcome, struct dsm_err *err) {
    json_error_t je;
    json_t *root = json_loads(input, 0, &je), *vj = NULL;
    struct lbl_analysis *a = NULL;
    double *store = NULL;
    int na = 0, *valid = NULL, rc;
    char *text = NULL, where[64];
    snprintf(where, sizeof where, "proof %s", proof_id);
    *outcome = LBL_STORE_INCOMPLETE;
    if (vote) *vote = NULL;
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
    if ((rc = lbl_vote_decide(a, na, o, v, valid, err))) goto done;
    if (v->reason == LBL_R_INCOMPLETE) goto done;
    vj = lbl_vote_to_json(v, o, a, na, valid);
    json_t *list = vj ? json_object_get(vj, "analyses") : NULL, *in = json_object_get(root, "analyses");
    for (int i = 0; list && i < na; i++) /* which verification each entry is */
        json_object_set(json_array_get(list, (size_t)i), "verification_id",
                        json_object_get(json_array_get(in, (size_t)i), "id"));
    text = vj ? json_dumps(vj, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
    if (!text) {
        rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
        goto done;
    }
    char val[32] = "", n[16], m[16], k[16];
    if (v->label != LBL_NO_LABEL) snprintf(val, sizeof val, "%g", v->label);
    snprintf(n, sizeof n, "%d", o->n);
    snprintf(m, sizeof m, "%d", o->m);
    snprintf(k, sizeof k, "%d", o->k);
    const char *vals[7] = {proof_id, val[0] ? val : NULL, n, m, k, text, origin};
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
    if (!rc)
        *outcome = PQntuples(r) == 0         ? LBL_STORE_UNCHANGED
                   : v->label == LBL_NO_LABEL ? LBL_STORE_UNCERTAIN
                                              : LBL_STORE_LABELED;
    PQclear(r);
    if (!rc && vote) *vote = json_incref(vj);
done:
    free(text);
    json_decref(vj);
    json_decref(root);
    free(a);
    free(store);
    free(valid);
    return rc;
}
