/* db.h - the PostgreSQL store: connections, query helpers, migrations, the embedded cluster and
 * the crash-safe job queue.
 *
 * Where the database is (db_open with conninfo == NULL):
 *   1. $DSM_DATABASE_URL (a libpq conninfo string or URI): that server, nothing is started;
 *   2. otherwise the embedded cluster under $DSM_HOME (default ./var): a private PostgreSQL,
 *      unix socket only, started on demand (initdb on first use), database "dsm".
 *
 * Rules every query here follows: PQexecParams with $n parameters and explicit casts (never
 * string-built SQL with data in it), every PGresult cleared exactly once on every path, columns
 * read by name with NULL checked first. A struct dsm_db is one connection: use it from one thread
 * at a time; after fork() the child must db_open its own.
 *
 * The queue (db_job_*): jobs are claimed with FOR UPDATE SKIP LOCKED under a lease (a random
 * token + an expiry); a worker that dies stops heartbeating, its lease expires and the job is
 * reclaimed (queued again, or dead once max_attempts claims have been used). Completion stores the
 * result in job_results (primary key job_id) in the transaction that marks the job done, together
 * with whatever rows the caller's write callback adds, so a job's effects exist at most once even
 * when two workers finish it. Every insert into jobs sends NOTIFY dsm_jobs (a trigger), which
 * db_wait() turns into a wake-up.
 */
#ifndef DSM_DB_H
#define DSM_DB_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "common/err.h"

/* ---- connections ------------------------------------------------------------------------- */

struct dsm_db; /* opaque: one libpq connection, its conninfo and the channels it listens on */

struct db_open_opts {
    const char *conninfo; /* NULL: $DSM_DATABASE_URL, else the embedded cluster */
    int migrate;          /* apply pending migrations after connecting */
    int no_start;         /* embedded only: fail instead of starting a stopped cluster */
};

/* Connect as opts says (opts may be NULL: defaults), starting the embedded cluster when needed.
 * Errors: DSM_EDB (cannot connect; the message names the server and says what to try),
 * DSM_EIO (cannot start the embedded cluster). The caller owns *out (db_close). */
int db_open(const struct db_open_opts *opts, struct dsm_db **out, struct dsm_err *err);

/* Close the connection and free the handle. NULL is fine. */
void db_close(struct dsm_db *db);

/* The libpq connection (borrowed; valid until db_close or db_reconnect). */
PGconn *db_conn(struct dsm_db *db);

/* The conninfo string in use (borrowed). */
const char *db_conninfo(const struct dsm_db *db);

/* Resolve where the database is without connecting: $DSM_DATABASE_URL, or the embedded cluster's
 * conninfo (starting it unless no_start). Writes into out (cap bytes). *external is set to 1 for
 * $DSM_DATABASE_URL, 0 for the embedded cluster. */
int db_conninfo_resolve(char *out, size_t cap, int no_start, int *external, struct dsm_err *err);

/* 1 when the connection is unusable (server restarted, network gone). */
int db_is_broken(const struct dsm_db *db);

/* Re-establish a broken connection, retrying with backoff for up to timeout_s seconds, and
 * LISTEN again on every channel db_listen had subscribed. Errors: DSM_EDB when the server is not
 * back in time. */
int db_reconnect(struct dsm_db *db, double timeout_s, struct dsm_err *err);

/* ---- queries -------------------------------------------------------------------------------- */

/* Run sql with n text parameters (vals[i] NULL = SQL NULL). On success (command or tuples OK)
 * *out receives the result, which the caller clears (PQclear); pass out = NULL to discard it.
 * Errors: DSM_EDB with the server's message and SQLSTATE; the result is cleared and *out NULL. */
int db_exec(struct dsm_db *db, const char *sql, int n, const char *const *vals, PGresult **out,
            struct dsm_err *err);

/* BEGIN / COMMIT / ROLLBACK. db_rollback ignores errors (it is used on failure paths). */
int db_begin(struct dsm_db *db, struct dsm_err *err);
int db_commit(struct dsm_db *db, struct dsm_err *err);
void db_rollback(struct dsm_db *db);

/* The SQLSTATE of the last failed db_exec ("" when none). Borrowed. */
const char *db_last_sqlstate(const struct dsm_db *db);

/* Value of column `col` in row `row`, or NULL when SQL NULL. A missing column is a programming
 * error (asserted). Borrowed from r. */
const char *db_get(const PGresult *r, int row, const char *col);

/* Column `col` as a 64-bit integer; def when NULL. */
int64_t db_get_i64(const PGresult *r, int row, const char *col, int64_t def);

/* Column `col` as a double; def when NULL. */
double db_get_f64(const PGresult *r, int row, const char *col, double def);

/* Build a PostgreSQL text[] literal ("{\"a\",\"b\"}") from n strings into a new buffer. Caller
 * frees. NULL on allocation failure (err set). */
char *db_text_array(const char *const *items, size_t n, struct dsm_err *err);

/* ---- migrations ----------------------------------------------------------------------------- */

/* The schema directory: $DSM_SCHEMA_DIR, else <dir of the running executable>/../schema, else the
 * source tree's schema/. Writes into out. Errors: DSM_ENOTFOUND naming the places looked at. */
int db_schema_dir(char *out, size_t cap, struct dsm_err *err);

/* Apply every NNN_*.sql in dir (NULL: db_schema_dir) not yet recorded in schema_migrations, each
 * in its own transaction under an advisory lock (so concurrent migrators are safe). *applied (may
 * be NULL) gets the number applied now. Errors: DSM_EDB naming the file and the server's message
 * (that migration is rolled back; earlier ones stay); DSM_EINVAL when an applied migration's file
 * changed since (its checksum differs). */
int db_migrate(struct dsm_db *db, const char *dir, int *applied, struct dsm_err *err);

/* ---- the embedded cluster ------------------------------------------------------------------- */

struct db_cluster_info {
    char home[1024];     /* $DSM_HOME or ./var, absolute */
    char datadir[1100];  /* <home>/pg/data */
    char sockdir[1100];  /* where the unix socket is (when running) */
    int initialized;     /* datadir holds a cluster */
    int running;         /* the server answers */
    long pid;            /* postmaster pid when running */
    char conninfo[1400]; /* host=<sockdir> port=5432 dbname=dsm user=postgres (when running) */
};

/* Layout under home: pg/data (PGDATA, owned by the postgres user when we run as root), pg/log (the
 * server log), pg/run (socket directory; a mktemp'd /tmp/dsm-pg-* directory when that path is too
 * long for a unix socket or the postgres user cannot reach it), pg/lock (serialises start/stop).
 *
 * home NULL = $DSM_HOME or ./var. fast = fsync and synchronous_commit off (throwaway test
 * clusters only; DSM_DB_FAST=1 in the environment forces it, for CLI tests). Starting is idempotent: init when needed, start when stopped, create database
 * "dsm" when missing. Errors: DSM_EIO with the step that failed and the log to read. */
int db_cluster_start(const char *home, int fast, struct db_cluster_info *info, struct dsm_err *err);

/* Stop the cluster (fast shutdown). Not running is not an error. *was_running may be NULL. */
int db_cluster_stop(const char *home, int *was_running, struct dsm_err *err);

/* Fill info without starting anything. */
int db_cluster_status(const char *home, struct db_cluster_info *info, struct dsm_err *err);

/* Remove a stopped cluster's whole directory tree (home/pg). Used by tests. */
int db_cluster_destroy(const char *home, struct dsm_err *err);

/* Directory holding the PostgreSQL server programs (initdb, pg_ctl, postgres):
 * $DSM_PG_BINDIR, `pg_config --bindir` when it holds initdb, else the newest
 * /usr/lib/postgresql/<N>/bin. Errors: DSM_ENOTFOUND saying how to install PostgreSQL. */
int db_pg_bindir(char *out, size_t cap, struct dsm_err *err);

/* The models row named name (kind "remote" with spec as endpoint, or "checkpoint" with spec as
 * path; first_role in metadata), created when missing; *id gets its id. Safe when several
 * processes register the same name at once. Errors: DSM_EDB. */
int db_model_register(struct dsm_db *db, const char *name, const char *kind, const char *spec, const char *first_role,
                      int64_t *id, struct dsm_err *err);

/* ---- the job queue -------------------------------------------------------------------------- */

struct db_enqueue_opts {
    int priority;           /* higher first (default 0) */
    int max_attempts;       /* 0 = default 5 */
    int64_t run_id;         /* 0 = none */
    const char *dedup_field; /* when set, element[field] (as text) prefixed by "<kind>:" becomes
                                the job's dedup_key: enqueueing the same key again is a no-op */
};

/* Enqueue one job per element of the JSON array `payloads` (text) in one statement and one
 * transaction. *inserted (may be NULL) gets how many were new. Errors: DSM_EINVAL (not a JSON
 * array), DSM_EDB. */
int db_job_enqueue(struct dsm_db *db, const char *kind, const char *payloads,
                   const struct db_enqueue_opts *opts, int64_t *inserted, struct dsm_err *err);

struct db_job {
    int64_t id;
    char kind[64];
    char *payload;    /* JSON text, owned (db_job_clear) */
    int attempts;     /* claims so far, including this one */
    int max_attempts;
    char token[40];   /* the lease token (uuid) */
};

/* Free a job's payload and zero it. NULL is fine. */
void db_job_clear(struct db_job *job);

/* Claim up to max claimable jobs of the given kinds (nkinds = 0: any kind) for `worker` (a
 * free-form name stored as lease_owner) with a lease of lease_s seconds. Expired leases are
 * reclaimed first (at most once a second per handle). Fills jobs[0..*n); the caller clears each
 * with db_job_clear. *n = 0 means nothing is claimable now. */
int db_job_claim(struct dsm_db *db, const char *const *kinds, size_t nkinds, const char *worker,
                 double lease_s, int max, struct db_job *jobs, int *n, struct dsm_err *err);

/* Extend the lease by lease_s seconds from now. Errors: DSM_ENOTFOUND when the lease is lost (it
 * expired and was reclaimed, or the job was completed elsewhere): stop working on it. */
int db_job_heartbeat(struct dsm_db *db, const struct db_job *job, double lease_s,
                     struct dsm_err *err);

/* Called inside the completing transaction to write the job's domain rows (a proof, a
 * verification, ...). Return DSM_OK or an error (the transaction is then rolled back). */
typedef int (*db_job_write_fn)(struct dsm_db *db, const struct db_job *job, void *ctx,
                               struct dsm_err *err);

/* Complete a job: in one transaction insert its result (JSON text, NULL = {}) into job_results,
 * run write(db, job, ctx) when given, and mark the job done. Idempotent: when the job already has
 * a result nothing is written and *stored = 0 (the first completion wins), else *stored = 1.
 * Works whether or not the caller's lease is still valid (the work is done; keeping it is
 * correct). Errors: DSM_EDB (rolled back, nothing stored), or write's error. */
int db_job_complete(struct dsm_db *db, const struct db_job *job, const char *result,
                    const char *worker, db_job_write_fn write, void *ctx, int *stored,
                    struct dsm_err *err);

/* Report a failed attempt: the job is queued again after backoff_s * 2^(attempts-1) seconds
 * (capped at an hour), or becomes dead when it has used max_attempts; the error text is kept in
 * last_error either way. *dead (may be NULL) says which. Errors: DSM_ENOTFOUND when the lease was
 * already lost (nothing changed). */
int db_job_fail(struct dsm_db *db, const struct db_job *job, const char *error, double backoff_s,
                int *dead, struct dsm_err *err);

/* Requeue (or kill, at max_attempts) every running job whose lease has expired. *n (may be
 * NULL) gets how many. Called by db_job_claim; exposed for supervisors and tests. */
int db_job_reclaim(struct dsm_db *db, int64_t *n, struct dsm_err *err);

/* LISTEN on channel (letters, digits, '_'; "dsm_jobs" is the queue's). Remembered: db_reconnect
 * listens again. */
int db_listen(struct dsm_db *db, const char *channel, struct dsm_err *err);

/* Wait up to timeout_s seconds for a notification on any channel this connection listens on.
 * *notified = number of notifications consumed (0 on timeout). Errors: DSM_EDB when the
 * connection broke (see db_reconnect). */
int db_wait(struct dsm_db *db, double timeout_s, int *notified, struct dsm_err *err);

/* An idle worker's wait: up to timeout_s for a notification, in slices of at most 0.25 s so that a
 * stop flag a signal handler sets (a signal does not cut the wait short) is noticed at once.
 * Returns when notified, when *stop is non-zero, or at the timeout. A broken connection is
 * re-established (up to 60 s) unless *stop is set. Errors: DSM_EDB when it cannot be. */
int db_wait_idle(struct dsm_db *db, double timeout_s, const volatile int *stop, struct dsm_err *err);

#endif
