/* submit.c - a submission carried through the V2 vote by the store; see submit.h. */
#include "labeler/submit.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "labeler/label_store.h"

int sub_insert(struct dsm_db *db, const char *problem, const char *proof, int n, int m, int k, int64_t *id,
               struct dsm_err *err) {
    if (!problem || !*problem || !proof || !*proof) return dsm_errf(err, DSM_EINVAL, "the problem and the proof must not be empty");
    if (n < 1 || n > 1024 || m < 1 || m > 64 || k < 1 || k > n)
        return dsm_errf(err, DSM_EINVAL, "need n in 1..1024, m in 1..64 and k in 1..n (got n %d, m %d, k %d)", n, m, k);
    char ns[16], ms[16], ks[16];
    snprintf(ns, sizeof ns, "%d", n);
    snprintf(ms, sizeof ms, "%d", m);
    snprintf(ks, sizeof ks, "%d", k);
    const char *v[5] = {problem, proof, ns, ms, ks};
    PGresult *r = NULL;
    int rc = db_exec(db, "INSERT INTO submissions (problem, proof, n, m, k) VALUES ($1, $2, $3::int, $4::int, $5::int) RETURNING id",
                     5, v, &r, err);
    if (!rc) *id = db_get_i64(r, 0, "id", 0);
    PQclear(r);
    return rc;
}

/* Step 1: the problem and proof rows, the verify jobs, status running. */
static int sub_start(struct dsm_db *db, const char *id, const PGresult *s, struct dsm_err *err) {
    const char *v[2] = {db_get(s, 0, "problem"), NULL};
    PGresult *r = NULL;
    int rc = db_exec(db,
                     "INSERT INTO problems (source, source_key, statement) VALUES ('submission', md5($1), $1) "
                     "ON CONFLICT (source, source_key) DO UPDATE SET source = EXCLUDED.source RETURNING id",
                     1, v, &r, err);
    if (rc) return rc;
    char problem_id[24];
    snprintf(problem_id, sizeof problem_id, "%s", db_get(r, 0, "id"));
    PQclear(r);
    const char *v2[4] = {problem_id, db_get(s, 0, "proof"), id, db_get(s, 0, "submitter")};
    if ((rc = db_exec(db,
                      "INSERT INTO proofs (problem_id, proof, origin, origin_key, metadata) VALUES ($1::bigint, $2, "
                      "'submission', $3, jsonb_build_object('submitter', $4::text)) ON CONFLICT (origin, origin_key) "
                      "DO UPDATE SET origin = EXCLUDED.origin RETURNING id",
                      4, v2, &r, err)))
        return rc;
    char proof_id[24];
    snprintf(proof_id, sizeof proof_id, "%s", db_get(r, 0, "id"));
    PQclear(r);
    char prio[16];
    snprintf(prio, sizeof prio, "%d", SUB_PRIORITY);
    const char *v3[4] = {id, proof_id, db_get(s, 0, "n"), prio};
    if ((rc = db_exec(db, "UPDATE submissions SET proof_id = $2::bigint, status = 'running' WHERE id = $1::bigint", 2, v3,
                      NULL, err)))
        return rc;
    /* seeds: hashes of the submission and the sample index (never of row ids of other tables) */
    return db_exec(db,
                   "INSERT INTO jobs (kind, payload, priority, dedup_key) SELECT 'verify', jsonb_build_object('proof_id', "
                   "$2::bigint, 'submission_id', $1::bigint, 'seed', hashtextextended('sub:' || $1 || ':v:' || g, 0) & "
                   "9007199254740991), $4::int, 'verify:sub:' || $1 || ':' || g FROM generate_series(1, $3::int) g "
                   "ON CONFLICT (dedup_key) DO NOTHING",
                   4, v3, NULL, err);
}

/* How many of the submission's jobs of kind are pending / dead, and the last error of a dead one. */
struct sub_jobs {
    long pending, dead, total;
    char error[300];
};

static int sub_count(struct dsm_db *db, const char *id, const char *kind, struct sub_jobs *j, struct dsm_err *err) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s:sub:%s:%%", kind, id);
    const char *v[1] = {prefix};
    PGresult *r = NULL;
    int rc = db_exec(db,
                     "SELECT count(*) FILTER (WHERE state IN ('queued', 'running')) AS pending, count(*) FILTER (WHERE "
                     "state = 'dead') AS dead, count(*) AS total, max(last_error) FILTER (WHERE state = 'dead') AS error "
                     "FROM jobs WHERE dedup_key LIKE $1",
                     1, v, &r, err);
    if (rc) return rc;
    j->pending = (long)db_get_i64(r, 0, "pending", 0);
    j->dead = (long)db_get_i64(r, 0, "dead", 0);
    j->total = (long)db_get_i64(r, 0, "total", 0);
    snprintf(j->error, sizeof j->error, "%s", db_get(r, 0, "error") ? db_get(r, 0, "error") : "");
    PQclear(r);
    return DSM_OK;
}

static int sub_finish(struct dsm_db *db, const char *id, const char *status, const char *result, const char *error,
                      struct dsm_err *err) {
    const char *v[4] = {id, status, result, error};
    int rc = db_exec(db,
                     "UPDATE submissions SET status = $2, result = $3::jsonb, error = $4, finished_at = now() "
                     "WHERE id = $1::bigint",
                     4, v, NULL, err);
    if (rc) return rc;
    /* the 'submission' job of the INSERT trigger: done now, whoever finished the submission */
    const char *v2[2] = {id, status};
    if ((rc = db_exec(db,
                      "INSERT INTO job_results (job_id, result, worker) SELECT id, jsonb_build_object('status', $2::text), "
                      "'submit' FROM jobs WHERE dedup_key = 'submission:' || $1 AND state <> 'done' "
                      "ON CONFLICT (job_id) DO NOTHING",
                      2, v2, NULL, err)))
        return rc;
    return db_exec(db,
                   "UPDATE jobs SET state = 'done', lease_token = NULL, lease_until = NULL, finished_at = now(), "
                   "updated_at = now() WHERE dedup_key = 'submission:' || $1 AND state <> 'done'",
                   1, v, NULL, err);
}

/* The final step: vote, label, result. */
static int sub_vote(struct dsm_db *db, const char *id, const PGresult *s, struct dsm_err *err) {
    const char *proof_id = db_get(s, 0, "proof_id");
    struct lbl_vote_opts o = {atoi(db_get(s, 0, "n")), atoi(db_get(s, 0, "m")), atoi(db_get(s, 0, "k")), 0};
    char *input = NULL, *text = NULL;
    json_t *vote = NULL, *res = NULL;
    PGresult *r = NULL;
    struct lbl_vote v;
    enum lbl_store_outcome out;
    int rc = lbl_store_input(db, proof_id, o.n, o.m, &input, err);
    if (!rc) rc = lbl_store_label(db, proof_id, input, &o, "submission", 1, &v, &vote, &out, err);
    if (rc) goto done;
    if (out == LBL_STORE_INCOMPLETE) { /* cannot happen once every job is done; say so rather than hang */
        rc = sub_finish(db, id, "failed", NULL, "the vote is incomplete although every job has finished", err);
        goto done;
    }
    const char *v1[1] = {proof_id};
    if ((rc = db_exec(db,
                      "SELECT count(score) AS analyses, count(*) - count(score) AS format_failures, avg(score)::float8 "
                      "AS mean, count(*) FILTER (WHERE score = 0) AS h0, count(*) FILTER (WHERE score = 0.5) AS h05, "
                      "count(*) FILTER (WHERE score = 1) AS h1, coalesce(jsonb_agg(id ORDER BY id), '[]')::text AS ids, "
                      "(SELECT count(*) FROM meta_verifications mv JOIN verifications v2 ON v2.id = mv.verification_id "
                      "WHERE v2.proof_id = $1::bigint) AS metas FROM verifications WHERE proof_id = $1::bigint AND kind = 'analysis'",
                      1, v1, &r, err)))
        goto done;
    char lab[32];
    snprintf(lab, sizeof lab, "%g", v.label);
    char expl[400];
    lbl_vote_explain(&v, &o, expl, sizeof expl);
    res = json_pack("{s:I,s:I,s:i,s:i,s:i,s:I,s:I,s:o,s:{s:I,s:I,s:I},s:o,s:s,s:s,s:o,s:I,s:O}", "submission_id",
                    (json_int_t)atoll(id), "proof_id", (json_int_t)atoll(proof_id), "n", o.n, "m", o.m, "k", o.k,
                    "analyses", (json_int_t)db_get_i64(r, 0, "analyses", 0), "format_failures",
                    (json_int_t)db_get_i64(r, 0, "format_failures", 0), "mean_score",
                    db_get(r, 0, "mean") ? json_real(atof(db_get(r, 0, "mean"))) : json_null(), "histogram", "0",
                    (json_int_t)db_get_i64(r, 0, "h0", 0), "0.5", (json_int_t)db_get_i64(r, 0, "h05", 0), "1",
                    (json_int_t)db_get_i64(r, 0, "h1", 0), "label",
                    v.label == LBL_NO_LABEL ? json_null() : json_real(v.label), "reason", lbl_reason_name(v.reason),
                    "explanation", expl, "analysis_ids", json_loads(db_get(r, 0, "ids"), 0, NULL), "meta_verifications",
                    (json_int_t)db_get_i64(r, 0, "metas", 0), "vote", vote);
    text = res ? json_dumps(res, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    if (!text) {
        rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
        goto done;
    }
    rc = sub_finish(db, id, "done", text, NULL, err);
done:
    PQclear(r);
    free(input);
    free(text);
    json_decref(vote);
    json_decref(res);
    return rc;
}

/* One step inside the caller's transaction. */
static int sub_step(struct dsm_db *db, const char *id, int *finished, struct dsm_err *err) {
    const char *v[1] = {id};
    PGresult *s = NULL;
    int rc = db_exec(db,
                     "SELECT id, submitter, problem, proof, n, m, k, status, proof_id FROM submissions "
                     "WHERE id = $1::bigint FOR UPDATE",
                     1, v, &s, err);
    if (rc) return rc;
    if (PQntuples(s) != 1) {
        PQclear(s);
        return dsm_errf(err, DSM_ENOTFOUND, "submission %s does not exist", id);
    }
    const char *status = db_get(s, 0, "status");
    *finished = !strcmp(status, "done") || !strcmp(status, "failed");
    if (*finished) goto done;
    if (!db_get(s, 0, "proof_id")) {
        rc = sub_start(db, id, s, err);
        goto done;
    }
    struct sub_jobs vj, mj;
    if ((rc = sub_count(db, id, "verify", &vj, err))) goto done;
    if (vj.pending) goto done;
    char msg[400];
    if (vj.dead) {
        snprintf(msg, sizeof msg, "%ld of %ld verification job(s) failed; the last error: %s", vj.dead, vj.total, vj.error);
        rc = sub_finish(db, id, "failed", NULL, msg, err);
        *finished = !rc;
        goto done;
    }
    /* the meta-verifications the vote needs: m per analysis reporting an issue (first n analyses) */
    char prio[16];
    snprintf(prio, sizeof prio, "%d", SUB_PRIORITY);
    const char *v2[5] = {id, db_get(s, 0, "proof_id"), db_get(s, 0, "n"), db_get(s, 0, "m"), prio};
    PGresult *r = NULL;
    if ((rc = db_exec(db,
                      "WITH a AS (SELECT id, score, seed FROM verifications WHERE proof_id = $2::bigint AND kind = 'analysis' "
                      "ORDER BY id LIMIT $3::int), ins AS (INSERT INTO jobs (kind, payload, priority, dedup_key) SELECT "
                      "'metaverify', jsonb_build_object('verification_id', a.id, 'submission_id', $1::bigint, 'seed', "
                      "hashtextextended('sub:' || $1 || ':m:' || a.seed || ':' || g, 0) & 9007199254740991), $5::int, "
                      "'metaverify:sub:' || $1 || ':' || a.id || ':' || g FROM a CROSS JOIN generate_series(1, $4::int) g "
                      "WHERE a.score < 1 ON CONFLICT (dedup_key) DO NOTHING RETURNING 1) SELECT count(*) AS n FROM ins",
                      5, v2, &r, err)))
        goto done;
    long added = (long)db_get_i64(r, 0, "n", 0);
    PQclear(r);
    if (added) goto done;
    if ((rc = sub_count(db, id, "metaverify", &mj, err))) goto done;
    if (mj.pending) goto done;
    if (mj.dead) {
        snprintf(msg, sizeof msg, "%ld of %ld meta-verification job(s) failed; the last error: %s", mj.dead, mj.total,
                 mj.error);
        rc = sub_finish(db, id, "failed", NULL, msg, err);
        *finished = !rc;
        goto done;
    }
    rc = sub_vote(db, id, s, err);
    *finished = !rc;
done:
    PQclear(s);
    return rc;
}

int sub_advance(struct dsm_db *db, int64_t id, int *finished, struct dsm_err *err) {
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    *finished = 0;
    int rc = db_begin(db, err);
    if (rc) return rc;
    if ((rc = sub_step(db, ids, finished, err))) {
        db_rollback(db);
        *finished = 0;
        return rc;
    }
    return db_commit(db, err);
}
