/* db_queue.c - the crash-safe job queue on PostgreSQL (see db.h for the protocol).
 *
 * States: queued -> running (claimed under a lease) -> done; running -> queued (failure with
 * attempts left, or lease expired) or dead (attempts used up). The schema's CHECK ties
 * state = 'running' to a lease being present, and job_results' primary key makes a second
 * completion a no-op.
 */
#include "common/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

/* db.c keeps the per-handle time of the last reclaim sweep. */
double *db_last_reclaim_slot(struct dsm_db *db);

#define RECLAIM_EVERY_S 1.0

void db_job_clear(struct db_job *job) {
    if (!job) return;
    free(job->payload);
    memset(job, 0, sizeof *job);
}

int db_job_enqueue(struct dsm_db *db, const char *kind, const char *payloads,
                   const struct db_enqueue_opts *opts, int64_t *inserted, struct dsm_err *err) {
    static const struct db_enqueue_opts defaults = {0};
    if (!opts) opts = &defaults;
    if (inserted) *inserted = 0;
    if (!kind || !kind[0] || strlen(kind) >= sizeof ((struct db_job *)0)->kind)
        return dsm_errf(err, DSM_EINVAL, "job kind must be 1..63 characters");
    char prio[16], maxa[16], run[24];
    snprintf(prio, sizeof prio, "%d", opts->priority);
    snprintf(maxa, sizeof maxa, "%d", opts->max_attempts > 0 ? opts->max_attempts : 5);
    snprintf(run, sizeof run, "%lld", (long long)opts->run_id);
    const char *p[] = {kind, payloads, prio, maxa, opts->run_id > 0 ? run : NULL, opts->dedup_field};
    PGresult *r = NULL;
    int rc = db_exec(db,
                     "WITH ins AS ("
                     " INSERT INTO jobs (kind, payload, priority, max_attempts, run_id, dedup_key)"
                     " SELECT $1::text, e, $3::integer, $4::integer, $5::bigint,"
                     "        CASE WHEN $6::text IS NULL THEN NULL ELSE $1::text || ':' || (e ->> $6::text) END"
                     " FROM jsonb_array_elements($2::jsonb) AS e"
                     " ON CONFLICT (dedup_key) DO NOTHING RETURNING 1)"
                     " SELECT count(*) AS n FROM ins",
                     6, p, &r, err);
    if (rc) {
        if (!strcmp(db_last_sqlstate(db), "22023") || !strcmp(db_last_sqlstate(db), "22P02")) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err ? err->msg : "");
            return dsm_errf(err, DSM_EINVAL, "job payloads must be a JSON array: %s", why);
        }
        return rc;
    }
    if (inserted) *inserted = db_get_i64(r, 0, "n", 0);
    PQclear(r);
    return DSM_OK;
}

int db_job_reclaim(struct dsm_db *db, int64_t *n, struct dsm_err *err) {
    PGresult *r = NULL;
    int rc = db_exec(db,
                     "WITH x AS (SELECT id FROM jobs WHERE state = 'running' AND lease_until < now()"
                     "           FOR UPDATE SKIP LOCKED),"
                     " u AS (UPDATE jobs j SET"
                     "   state = CASE WHEN j.attempts >= j.max_attempts THEN 'dead' ELSE 'queued' END,"
                     "   last_error = 'lease expired (worker ' || coalesce(j.lease_owner, '?') || ')',"
                     "   finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END,"
                     "   lease_token = NULL, lease_owner = NULL, lease_until = NULL,"
                     "   run_after = now(), updated_at = now()"
                     "  FROM x WHERE j.id = x.id RETURNING j.id)"
                     " SELECT count(*) AS n FROM u",
                     0, NULL, &r, err);
    if (rc) return rc;
    int64_t got = db_get_i64(r, 0, "n", 0);
    PQclear(r);
    if (got) LOG_INFO("reclaimed %lld job(s) whose lease expired", (long long)got);
    if (n) *n = got;
    *db_last_reclaim_slot(db) = dsm_now();
    return DSM_OK;
}

int db_job_claim(struct dsm_db *db, const char *const *kinds, size_t nkinds, const char *worker,
                 double lease_s, int max, struct db_job *jobs, int *n, struct dsm_err *err) {
    *n = 0;
    if (max <= 0) return DSM_OK;
    if (lease_s <= 0) return dsm_errf(err, DSM_EINVAL, "lease must be positive");
    if (dsm_now() - *db_last_reclaim_slot(db) >= RECLAIM_EVERY_S) {
        int rc = db_job_reclaim(db, NULL, err);
        if (rc) return rc;
    }
    char *arr = NULL;
    if (nkinds) {
        arr = db_text_array(kinds, nkinds, err);
        if (!arr) return DSM_ENOMEM;
    }
    char lease[32], lim[16];
    snprintf(lease, sizeof lease, "%.3f", lease_s);
    snprintf(lim, sizeof lim, "%d", max);
    const char *p[] = {arr, worker ? worker : "", lease, lim};
    PGresult *r = NULL;
    int rc = db_exec(db,
                     "WITH c AS ("
                     " SELECT id FROM jobs"
                     " WHERE state = 'queued' AND run_after <= now()"
                     "   AND ($1::text[] IS NULL OR kind = ANY ($1::text[]))"
                     " ORDER BY priority DESC, id LIMIT $4::integer FOR UPDATE SKIP LOCKED)"
                     " UPDATE jobs j SET state = 'running', attempts = j.attempts + 1,"
                     "   lease_token = gen_random_uuid(), lease_owner = $2::text,"
                     "   lease_until = now() + make_interval(secs => $3::float8), updated_at = now()"
                     " FROM c WHERE j.id = c.id"
                     " RETURNING j.id, j.kind, j.payload::text AS payload, j.attempts, j.max_attempts,"
                     "   j.lease_token::text AS lease_token",
                     4, p, &r, err);
    free(arr);
    if (rc) return rc;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && i < max; i++) {
        struct db_job *j = &jobs[i];
        memset(j, 0, sizeof *j);
        j->id = db_get_i64(r, i, "id", 0);
        snprintf(j->kind, sizeof j->kind, "%s", db_get(r, i, "kind"));
        j->payload = strdup(db_get(r, i, "payload"));
        j->attempts = (int)db_get_i64(r, i, "attempts", 0);
        j->max_attempts = (int)db_get_i64(r, i, "max_attempts", 0);
        snprintf(j->token, sizeof j->token, "%s", db_get(r, i, "lease_token"));
        if (!j->payload) {
            for (int k = 0; k <= i; k++) db_job_clear(&jobs[k]);
            PQclear(r);
            /* the claimed jobs' leases will expire and they will be reclaimed */
            return dsm_errf(err, DSM_ENOMEM, "out of memory reading claimed jobs");
        }
        (*n)++;
    }
    PQclear(r);
    return DSM_OK;
}

int db_job_heartbeat(struct dsm_db *db, const struct db_job *job, double lease_s, struct dsm_err *err) {
    char id[24], lease[32];
    snprintf(id, sizeof id, "%lld", (long long)job->id);
    snprintf(lease, sizeof lease, "%.3f", lease_s);
    const char *p[] = {id, job->token, lease};
    PGresult *r = NULL;
    int rc = db_exec(db,
                     "UPDATE jobs SET lease_until = now() + make_interval(secs => $3::float8), updated_at = now()"
                     " WHERE id = $1::bigint AND lease_token = $2::uuid AND state = 'running'",
                     3, p, &r, err);
    if (rc) return rc;
    int hit = atoi(PQcmdTuples(r));
    PQclear(r);
    if (!hit) return dsm_errf(err, DSM_ENOTFOUND, "job %lld: lease lost (expired and reclaimed, or completed elsewhere)",
                              (long long)job->id);
    return DSM_OK;
}

int db_job_complete(struct dsm_db *db, const struct db_job *job, const char *result, const char *worker,
                    db_job_write_fn write, void *ctx, int *stored, struct dsm_err *err) {
    if (stored) *stored = 0;
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)job->id);
    const char *p[] = {id, result ? result : "{}", worker};
    PGresult *r = NULL;
    if (!write) {
        /* no domain rows: one atomic statement, one round trip */
        int rc = db_exec(db,
                         "WITH r AS (INSERT INTO job_results (job_id, result, worker)"
                         "           VALUES ($1::bigint, $2::jsonb, $3::text)"
                         "           ON CONFLICT (job_id) DO NOTHING RETURNING job_id),"
                         " u AS (UPDATE jobs SET state = 'done', finished_at = now(), updated_at = now(),"
                         "        lease_token = NULL, lease_owner = NULL, lease_until = NULL"
                         "       WHERE id IN (SELECT job_id FROM r) RETURNING id)"
                         " SELECT count(*) AS stored FROM u",
                         3, p, &r, err);
        if (rc) return rc;
        if (stored) *stored = db_get_i64(r, 0, "stored", 0) == 1;
        PQclear(r);
        return DSM_OK;
    }
    int rc = db_begin(db, err);
    if (rc) return rc;
    /* waits on a concurrent completer's uncommitted row, then does nothing if it committed */
    rc = db_exec(db,
                 "INSERT INTO job_results (job_id, result, worker) VALUES ($1::bigint, $2::jsonb, $3::text)"
                 " ON CONFLICT (job_id) DO NOTHING RETURNING job_id",
                 3, p, &r, err);
    if (rc) goto fail;
    int fresh = PQntuples(r) == 1;
    PQclear(r);
    if (!fresh) {
        db_rollback(db);
        return DSM_OK;
    }
    if (write && (rc = write(db, job, ctx, err))) goto fail;
    rc = db_exec(db,
                 "UPDATE jobs SET state = 'done', finished_at = now(), updated_at = now(),"
                 " lease_token = NULL, lease_owner = NULL, lease_until = NULL"
                 " WHERE id = $1::bigint",
                 1, p, NULL, err);
    if (rc) goto fail;
    if ((rc = db_commit(db, err))) return rc;
    if (stored) *stored = 1;
    return DSM_OK;
fail:
    db_rollback(db);
    return rc;
}

int db_job_fail(struct dsm_db *db, const struct db_job *job, const char *error, double backoff_s, int *dead,
                struct dsm_err *err) {
    if (dead) *dead = 0;
    char id[24], backoff[32];
    snprintf(id, sizeof id, "%lld", (long long)job->id);
    snprintf(backoff, sizeof backoff, "%.3f", backoff_s < 0 ? 0.0 : backoff_s);
    const char *p[] = {id, job->token, error ? error : "(no message)", backoff};
    PGresult *r = NULL;
    int rc = db_exec(db,
                     "UPDATE jobs SET"
                     "  state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,"
                     "  run_after = now() + least(make_interval(secs => $4::float8 * power(2, greatest(attempts - 1, 0))),"
                     "                            interval '1 hour'),"
                     "  finished_at = CASE WHEN attempts >= max_attempts THEN now() END,"
                     "  last_error = $3::text, lease_token = NULL, lease_owner = NULL, lease_until = NULL,"
                     "  updated_at = now()"
                     " WHERE id = $1::bigint AND lease_token = $2::uuid AND state = 'running'"
                     " RETURNING state",
                     4, p, &r, err);
    if (rc) return rc;
    int hit = PQntuples(r) == 1;
    if (hit && dead) *dead = !strcmp(db_get(r, 0, "state"), "dead");
    PQclear(r);
    if (!hit) return dsm_errf(err, DSM_ENOTFOUND, "job %lld: lease lost before the failure was recorded",
                              (long long)job->id);
    return DSM_OK;
}
