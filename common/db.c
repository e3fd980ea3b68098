/* db.c - connections, query helpers and the migrations runner (see db.h). */
#include "common/db.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/* snprintf that reports truncation (returns 1) instead of warning about it at compile time. */
static int pathf(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int pathf(char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= cap;
}

#define DB_MAX_CHANNELS 8

struct dsm_db {
    PGconn *conn;
    char *conninfo;
    char sqlstate[8];
    char channels[DB_MAX_CHANNELS][64];
    int nchannels;
    double last_reclaim; /* db_queue.c: monotonic time of the last reclaim sweep */
};

/* Shared with db_queue.c (declared there too): the time of the last reclaim sweep. */
double *db_last_reclaim_slot(struct dsm_db *db);
double *db_last_reclaim_slot(struct dsm_db *db) { return &db->last_reclaim; }

/* Copy the first line of a server message without the trailing newline. */
static void first_line(char *out, size_t cap, const char *msg) {
    size_t i = 0;
    if (!msg) msg = "";
    while (msg[i] && msg[i] != '\n' && i + 1 < cap) {
        out[i] = msg[i];
        i++;
    }
    out[i] = '\0';
}

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

int db_conninfo_resolve(char *out, size_t cap, int no_start, int *external, struct dsm_err *err) {
    const char *url = getenv("DSM_DATABASE_URL");
    if (url && url[0]) {
        if (external) *external = 1;
        if (strlen(url) >= cap) return dsm_errf(err, DSM_EINVAL, "DSM_DATABASE_URL is too long");
        pathf(out, cap, "%s", url);
        return DSM_OK;
    }
    if (external) *external = 0;
    struct db_cluster_info info;
    int rc = no_start ? db_cluster_status(NULL, &info, err) : db_cluster_start(NULL, 0, &info, err);
    if (rc) return rc;
    if (!info.running)
        return dsm_errf(err, DSM_EDB, "the embedded database under %s is not running (start it with 'dsm db start')",
                        info.home);
    if (strlen(info.conninfo) >= cap) return dsm_errf(err, DSM_EINVAL, "conninfo too long");
    pathf(out, cap, "%s", info.conninfo);
    return DSM_OK;
}

static int connect_once(struct dsm_db *db, struct dsm_err *err) {
    db->conn = PQconnectdb(db->conninfo);
    if (!db->conn) return dsm_errf(err, DSM_ENOMEM, "out of memory opening a database connection");
    if (PQstatus(db->conn) != CONNECTION_OK) {
        char line[300];
        first_line(line, sizeof line, PQerrorMessage(db->conn));
        PQfinish(db->conn);
        db->conn = NULL;
        return dsm_errf(err, DSM_EDB, "cannot connect to the database (%s): %s", db->conninfo, line);
    }
    /* notices (e.g. "relation already exists, skipping") are not errors: route them to debug */
    return DSM_OK;
}

static void notice_to_log(void *arg, const char *message) {
    (void)arg;
    char line[300];
    first_line(line, sizeof line, message);
    LOG_DEBUG("server: %s", line);
}

int db_open(const struct db_open_opts *opts, struct dsm_db **out, struct dsm_err *err) {
    static const struct db_open_opts defaults = {0};
    if (!opts) opts = &defaults;
    *out = NULL;
    char ci[2048];
    if (opts->conninfo) {
        if (strlen(opts->conninfo) >= sizeof ci) return dsm_errf(err, DSM_EINVAL, "conninfo too long");
        pathf(ci, sizeof ci, "%s", opts->conninfo);
    } else {
        int rc = db_conninfo_resolve(ci, sizeof ci, opts->no_start, NULL, err);
        if (rc) return rc;
    }
    struct dsm_db *db = dsm_calloc(1, sizeof *db, err);
    if (!db) return DSM_ENOMEM;
    db->conninfo = strdup(ci);
    if (!db->conninfo) {
        free(db);
        return dsm_errf(err, DSM_ENOMEM, "out of memory");
    }
    int rc = connect_once(db, err);
    if (rc) goto fail;
    PQsetNoticeProcessor(db->conn, notice_to_log, NULL);
    if (opts->migrate) {
        rc = db_migrate(db, NULL, NULL, err);
        if (rc) goto fail;
    }
    *out = db;
    return DSM_OK;
fail:
    db_close(db);
    return rc;
}

void db_close(struct dsm_db *db) {
    if (!db) return;
    if (db->conn) PQfinish(db->conn);
    free(db->conninfo);
    free(db);
}

PGconn *db_conn(struct dsm_db *db) { return db->conn; }
const char *db_conninfo(const struct dsm_db *db) { return db->conninfo; }
const char *db_last_sqlstate(const struct dsm_db *db) { return db->sqlstate; }

int db_is_broken(const struct dsm_db *db) { return !db->conn || PQstatus(db->conn) != CONNECTION_OK; }

int db_reconnect(struct dsm_db *db, double timeout_s, struct dsm_err *err) {
    double t0 = dsm_now(), delay = 0.05;
    for (;;) {
        if (db->conn) PQreset(db->conn);
        else db->conn = PQconnectdb(db->conninfo);
        if (db->conn && PQstatus(db->conn) == CONNECTION_OK) break;
        if (dsm_now() - t0 > timeout_s) {
            char line[300];
            first_line(line, sizeof line, db->conn ? PQerrorMessage(db->conn) : "out of memory");
            return dsm_errf(err, DSM_EDB, "database did not come back within %.0f s (%s): %s", timeout_s,
                            db->conninfo, line);
        }
        sleep_s(delay);
        if (delay < 1.0) delay *= 2;
    }
    PQsetNoticeProcessor(db->conn, notice_to_log, NULL);
    for (int i = 0; i < db->nchannels; i++) {
        char sql[100];
        pathf(sql, sizeof sql, "LISTEN \"%s\"", db->channels[i]);
        int rc = db_exec(db, sql, 0, NULL, NULL, err);
        if (rc) return rc;
    }
    LOG_INFO("reconnected to the database after %.2f s", dsm_now() - t0);
    return DSM_OK;
}

int db_exec(struct dsm_db *db, const char *sql, int n, const char *const *vals, PGresult **out,
            struct dsm_err *err) {
    if (out) *out = NULL;
    db->sqlstate[0] = '\0';
    if (!db->conn) return dsm_errf(err, DSM_EDB, "database connection is closed");
    PGresult *r = PQexecParams(db->conn, sql, n, NULL, vals, NULL, NULL, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (out) *out = r;
        else PQclear(r);
        return DSM_OK;
    }
    char line[400], what[80];
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    pathf(db->sqlstate, sizeof db->sqlstate, "%s", state ? state : "");
    first_line(line, sizeof line, r ? PQresultErrorMessage(r) : PQerrorMessage(db->conn));
    if (!line[0]) first_line(line, sizeof line, PQerrorMessage(db->conn));
    first_line(what, sizeof what, sql);
    PQclear(r);
    return dsm_errf(err, DSM_EDB, "%s%s%s (query: %.60s%s)", line, db->sqlstate[0] ? " SQLSTATE " : "",
                    db->sqlstate, what, strlen(what) > 60 ? "..." : "");
}

int db_begin(struct dsm_db *db, struct dsm_err *err) { return db_exec(db, "BEGIN", 0, NULL, NULL, err); }
int db_commit(struct dsm_db *db, struct dsm_err *err) { return db_exec(db, "COMMIT", 0, NULL, NULL, err); }

void db_rollback(struct dsm_db *db) {
    if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) return;
    PGresult *r = PQexec(db->conn, "ROLLBACK");
    PQclear(r);
}

const char *db_get(const PGresult *r, int row, const char *col) {
    int c = PQfnumber(r, col);
    DSM_ASSERT(c >= 0);
    if (PQgetisnull(r, row, c)) return NULL;
    return PQgetvalue(r, row, c);
}

int64_t db_get_i64(const PGresult *r, int row, const char *col, int64_t def) {
    const char *v = db_get(r, row, col);
    return v ? (int64_t)strtoll(v, NULL, 10) : def;
}

double db_get_f64(const PGresult *r, int row, const char *col, double def) {
    const char *v = db_get(r, row, col);
    return v ? strtod(v, NULL) : def;
}

char *db_text_array(const char *const *items, size_t n, struct dsm_err *err) {
    size_t len = 3;
    for (size_t i = 0; i < n; i++) len += 2 * strlen(items[i]) + 3;
    char *s = dsm_calloc(len, 1, err);
    if (!s) return NULL;
    char *p = s;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i) *p++ = ',';
        *p++ = '"';
        for (const char *q = items[i]; *q; q++) {
            if (*q == '"' || *q == '\\') *p++ = '\\';
            *p++ = *q;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return s;
}

/* ---- migrations ------------------------------------------------------------------------------ */

static int dir_has_migrations(const char *dir) {
    char p[PATH_MAX];
    pathf(p, sizeof p, "%s/001_init.sql", dir);
    return access(p, R_OK) == 0;
}

int db_schema_dir(char *out, size_t cap, struct dsm_err *err) {
    const char *env = getenv("DSM_SCHEMA_DIR");
    if (env && env[0]) {
        if (!dir_has_migrations(env))
            return dsm_errf(err, DSM_ENOTFOUND, "DSM_SCHEMA_DIR=%s holds no 001_init.sql", env);
        pathf(out, cap, "%s", env);
        return DSM_OK;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char cand[PATH_MAX + 16];
            pathf(cand, sizeof cand, "%s/../schema", exe);
            if (dir_has_migrations(cand)) {
                char *real = realpath(cand, NULL);
                pathf(out, cap, "%s", real ? real : cand);
                free(real);
                return DSM_OK;
            }
        }
    }
#ifdef DSM_SOURCE_DIR
    if (dir_has_migrations(DSM_SOURCE_DIR "/schema")) {
        pathf(out, cap, "%s", DSM_SOURCE_DIR "/schema");
        return DSM_OK;
    }
#endif
    return dsm_errf(err, DSM_ENOTFOUND,
                    "cannot find the schema/ directory with the migrations: set DSM_SCHEMA_DIR");
}

static int is_migration_name(const char *name) {
    size_t len = strlen(name);
    return len > 8 && name[0] >= '0' && name[0] <= '9' && name[1] >= '0' && name[1] <= '9' && name[2] >= '0' &&
           name[2] <= '9' && name[3] == '_' && !strcmp(name + len - 4, ".sql");
}

static int name_cmp(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }
static int name_filter(const struct dirent *d) { return is_migration_name(d->d_name); }

/* Apply one migration file in its own transaction unless already recorded. */
static int migrate_one(struct dsm_db *db, const char *dir, const char *name, int *applied, struct dsm_err *err) {
    char path[PATH_MAX], version[8];
    pathf(path, sizeof path, "%s/%s", dir, name);
    pathf(version, sizeof version, "%.3s", name);
    char *sql = NULL;
    size_t len = 0;
    int rc = dsm_file_read(path, &sql, &len, err);
    if (rc) return rc;
    PGresult *r = NULL;
    if ((rc = db_begin(db, err))) goto done;
    /* one migrator at a time per database; the lock ends with the transaction */
    if ((rc = db_exec(db, "SELECT pg_advisory_xact_lock(7436001)", 0, NULL, NULL, err))) goto fail;
    rc = db_exec(db,
                 "CREATE TABLE IF NOT EXISTS schema_migrations ("
                 " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                 " applied_at timestamptz NOT NULL DEFAULT now())",
                 0, NULL, NULL, err);
    if (rc) goto fail;
    const char *p1[] = {version, sql};
    rc = db_exec(db,
                 "SELECT checksum, checksum = md5($2::text) AS same FROM schema_migrations "
                 "WHERE version = $1::integer",
                 2, p1, &r, err);
    if (rc) goto fail;
    if (PQntuples(r) == 1) {
        const char *same = db_get(r, 0, "same");
        int ok = same && same[0] == 't';
        PQclear(r);
        r = NULL;
        db_rollback(db);
        if (!ok)
            rc = dsm_errf(err, DSM_EINVAL,
                          "migration %s changed after it was applied: never edit an applied migration, add a new one",
                          path);
        goto done;
    }
    PQclear(r);
    r = NULL;
    /* the file is our own trusted DDL; it may hold several statements, hence PQexec */
    PGresult *x = PQexec(db_conn(db), sql);
    if (PQresultStatus(x) != PGRES_COMMAND_OK && PQresultStatus(x) != PGRES_TUPLES_OK) {
        char line[400];
        first_line(line, sizeof line, PQresultErrorMessage(x));
        PQclear(x);
        rc = dsm_errf(err, DSM_EDB, "migration %s failed: %s", path, line);
        goto fail;
    }
    PQclear(x);
    const char *p2[] = {version, name, sql};
    rc = db_exec(db,
                 "INSERT INTO schema_migrations (version, name, checksum) "
                 "VALUES ($1::integer, $2::text, md5($3::text))",
                 3, p2, NULL, err);
    if (rc) goto fail;
    if ((rc = db_commit(db, err))) goto done;
    (*applied)++;
    LOG_INFO("applied migration %s", name);
    goto done;
fail:
    db_rollback(db);
done:
    free(sql);
    return rc;
}

int db_migrate(struct dsm_db *db, const char *dir, int *applied, struct dsm_err *err) {
    char sdir[PATH_MAX];
    if (!dir) {
        int rc = db_schema_dir(sdir, sizeof sdir, err);
        if (rc) return rc;
        dir = sdir;
    }
    struct dirent **names = NULL;
    int n = scandir(dir, &names, name_filter, name_cmp);
    if (n < 0) return dsm_errf(err, DSM_EIO, "cannot list migrations in %s: %s", dir, strerror(errno));
    int count = 0, rc = DSM_OK;
    for (int i = 0; i < n; i++) {
        if (!rc) rc = migrate_one(db, dir, names[i]->d_name, &count, err);
        free(names[i]);
    }
    free(names);
    if (n == 0 && !rc) rc = dsm_errf(err, DSM_ENOTFOUND, "no migrations (NNN_name.sql) in %s", dir);
    if (applied) *applied = count;
    return rc;
}

/* ---- LISTEN / wait --------------------------------------------------------------------------- */

int db_listen(struct dsm_db *db, const char *channel, struct dsm_err *err) {
    size_t len = strlen(channel);
    if (len == 0 || len >= 60) return dsm_errf(err, DSM_EINVAL, "bad channel name '%s'", channel);
    for (const char *p = channel; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return dsm_errf(err, DSM_EINVAL, "bad channel name '%s' (letters, digits, '_')", channel);
    char sql[100];
    pathf(sql, sizeof sql, "LISTEN \"%s\"", channel); /* identifiers cannot be $n parameters */
    int rc = db_exec(db, sql, 0, NULL, NULL, err);
    if (rc) return rc;
    for (int i = 0; i < db->nchannels; i++)
        if (!strcmp(db->channels[i], channel)) return DSM_OK;
    if (db->nchannels >= DB_MAX_CHANNELS) return dsm_errf(err, DSM_EINVAL, "too many channels");
    pathf(db->channels[db->nchannels++], sizeof db->channels[0], "%s", channel);
    return DSM_OK;
}

static int drain_notifies(struct dsm_db *db) {
    int got = 0;
    PGnotify *nt;
    while ((nt = PQnotifies(db->conn)) != NULL) {
        got++;
        PQfreemem(nt);
    }
    return got;
}

int db_wait(struct dsm_db *db, double timeout_s, int *notified, struct dsm_err *err) {
    *notified = 0;
    if (db_is_broken(db)) return dsm_errf(err, DSM_EDB, "database connection lost");
    double deadline = dsm_now() + timeout_s;
    for (;;) {
        if (!PQconsumeInput(db->conn)) {
            char line[300];
            first_line(line, sizeof line, PQerrorMessage(db->conn));
            return dsm_errf(err, DSM_EDB, "database connection lost while waiting: %s", line);
        }
        int got = drain_notifies(db);
        if (got) {
            *notified = got;
            return DSM_OK;
        }
        double left = deadline - dsm_now();
        if (left <= 0) return DSM_OK;
        struct pollfd pfd = {.fd = PQsocket(db->conn), .events = POLLIN};
        if (pfd.fd < 0) return dsm_errf(err, DSM_EDB, "database connection has no socket");
        int pr = poll(&pfd, 1, (int)(left * 1000.0) + 1);
        if (pr < 0 && errno != EINTR) return dsm_errf(err, DSM_EIO, "poll: %s", strerror(errno));
    }
}

int db_model_register(struct dsm_db *db, const char *name, const char *kind, const char *spec, const char *first_role,
                      int64_t *id, struct dsm_err *err) {
    const char *v[4] = {name, kind, spec, first_role};
    /* Two processes registering the same model at once: the loser's INSERT waits for the winner
     * and then returns nothing, and its statement's snapshot cannot see the winner's row either;
     * the next statement can. */
    for (int attempt = 0; attempt < 3; attempt++) {
        PGresult *r = NULL;
        int rc = db_exec(db,
                         "WITH ins AS (INSERT INTO models (name, kind, path, endpoint, metadata) VALUES ($1, $2, "
                         "CASE WHEN $2 = 'checkpoint' THEN $3 END, CASE WHEN $2 = 'remote' THEN $3 END, "
                         "jsonb_build_object('first_role', $4::text)) ON CONFLICT (name) DO NOTHING RETURNING id) "
                         "SELECT id FROM ins UNION ALL SELECT id FROM models WHERE name = $1",
                         4, v, &r, err);
        if (rc) return rc;
        int found = PQntuples(r) > 0;
        if (found) *id = db_get_i64(r, 0, "id", 0);
        PQclear(r);
        if (found) return DSM_OK;
    }
    return dsm_errf(err, DSM_EDB, "could not register model '%s' in the store", name);
}

int db_wait_idle(struct dsm_db *db, double timeout_s, const volatile int *stop, struct dsm_err *err) {
    int notified = 0, rc = DSM_OK;
    double until = dsm_now() + timeout_s;
    while (!*stop && !notified && !rc) {
        double left = until - dsm_now();
        if (left <= 0) break;
        rc = db_wait(db, left < 0.25 ? left : 0.25, &notified, err);
    }
    if (rc && !*stop) rc = db_reconnect(db, 60, err);
    return *stop ? DSM_OK : rc;
}
