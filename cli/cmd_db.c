/* cmd_db.c - `dsm db start|stop|status|migrate|psql [psql arguments...]` (docs/store.md).
 *
 * With DSM_DATABASE_URL set every subcommand uses that server (start and stop then only say so);
 * otherwise the embedded cluster under $DSM_HOME (default ./var). Exit codes: 0 ok, 1 `status`
 * found the database not running, 2 usage, 3 the database failed.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/db.h"
#include "common/util.h"

static const char *db_summary =
    "Manage the PostgreSQL store. Subcommands:\n"
    "  start            start the embedded cluster (initialising it on first use) and migrate\n"
    "  stop             stop the embedded cluster\n"
    "  status           say whether the database runs and print the conninfo in use (exit 1: not running)\n"
    "  migrate          apply pending schema migrations (schema/NNN_*.sql)\n"
    "  psql [ARGS...]   run psql on the database; ARGS go to psql unchanged\n"
    "The embedded cluster lives in $DSM_HOME (default ./var); DSM_DATABASE_URL (a libpq conninfo\n"
    "or URI) selects an external server instead.";

static int usage_db(void) {
    const struct cli_cmd_spec spec = {"db", "start|stop|status|migrate|psql [ARGS...]", db_summary, NULL, 0, 0};
    cli_usage(&spec);
    return 0;
}

static int external_url(void) {
    const char *u = getenv("DSM_DATABASE_URL");
    return u && u[0];
}

static int db_start_cmd(void) {
    struct dsm_err err = {0};
    if (external_url()) {
        fprintf(stderr, "dsm db start: DSM_DATABASE_URL is set: using that server, nothing to start\n");
    } else {
        struct db_cluster_info info;
        double t0 = dsm_now();
        if (db_cluster_start(NULL, 0, &info, &err)) return cli_fail("db start", &err);
        fprintf(stderr, "dsm db start: running in %s (%.2f s)\n", info.datadir, dsm_now() - t0);
    }
    struct db_open_opts o = {.migrate = 1};
    struct dsm_db *db = NULL;
    if (db_open(&o, &db, &err)) return cli_fail("db start", &err);
    printf("%s\n", db_conninfo(db));
    db_close(db);
    return 0;
}

static int db_stop_cmd(void) {
    struct dsm_err err = {0};
    if (external_url()) {
        fprintf(stderr, "dsm db stop: DSM_DATABASE_URL is set: not stopping an external server\n");
        return 0;
    }
    int was = 0;
    if (db_cluster_stop(NULL, &was, &err)) return cli_fail("db stop", &err);
    fprintf(stderr, "dsm db stop: %s\n", was ? "stopped" : "was not running");
    return 0;
}

static int db_status_cmd(void) {
    struct dsm_err err = {0};
    if (external_url()) {
        const char *url = getenv("DSM_DATABASE_URL");
        int ok = PQping(url) == PQPING_OK;
        printf("database: external (DSM_DATABASE_URL)\nstatus: %s\nconninfo: %s\n", ok ? "running" : "not answering",
               url);
        return ok ? 0 : 1;
    }
    struct db_cluster_info info;
    if (db_cluster_status(NULL, &info, &err)) return cli_fail("db status", &err);
    printf("database: embedded (%s)\n", info.datadir);
    if (!info.initialized) printf("status: not initialised (any dsm command that needs it creates it)\n");
    else if (info.running) printf("status: running (pid %ld)\n", info.pid);
    else printf("status: stopped\n");
    if (info.running) printf("conninfo: %s\n", info.conninfo);
    return info.running ? 0 : 1;
}

static int db_migrate_cmd(void) {
    struct dsm_err err = {0};
    struct dsm_db *db = NULL;
    if (db_open(NULL, &db, &err)) return cli_fail("db migrate", &err);
    int applied = 0;
    double t0 = dsm_now();
    int rc = db_migrate(db, NULL, &applied, &err);
    double dt = dsm_now() - t0;
    PGresult *r = NULL;
    if (!rc) rc = db_exec(db, "SELECT max(version) AS v FROM schema_migrations", 0, NULL, &r, &err);
    if (rc) {
        db_close(db);
        return cli_fail("db migrate", &err);
    }
    printf("applied %d migration(s) in %.3f s; schema version %lld\n", applied, dt,
           (long long)db_get_i64(r, 0, "v", 0));
    PQclear(r);
    db_close(db);
    return 0;
}

static int db_psql_cmd(int argc, char **argv) {
    struct dsm_err err = {0};
    /* start and migrate on demand, like every command that needs the database */
    struct db_open_opts o = {.migrate = 1};
    struct dsm_db *db = NULL;
    if (db_open(&o, &db, &err)) return cli_fail("db psql", &err);
    char *ci = strdup(db_conninfo(db));
    db_close(db);
    if (!ci) return 3;
    char psql[PATH_MAX + 8] = "psql", bindir[PATH_MAX];
    struct dsm_err e2 = {0};
    if (db_pg_bindir(bindir, sizeof bindir, &e2) == DSM_OK) {
        char cand[PATH_MAX + 8];
        if (snprintf(cand, sizeof cand, "%s/psql", bindir) < (int)sizeof cand && access(cand, X_OK) == 0)
            memcpy(psql, cand, sizeof cand);
    }
    size_t n = (size_t)argc + 3;
    char **args = calloc(n, sizeof *args);
    char *dbarg = malloc(strlen(ci) + 16);
    if (!args || !dbarg) {
        fprintf(stderr, "dsm db psql: out of memory\n");
        free(args);
        free(dbarg);
        free(ci);
        return 3;
    }
    sprintf(dbarg, "--dbname=%s", ci);
    args[0] = psql;
    args[1] = dbarg;
    for (int i = 0; i < argc; i++) args[2 + i] = argv[i];
    fflush(stdout);
    if (strchr(psql, '/')) execv(psql, args);
    else execvp(psql, args);
    fprintf(stderr, "dsm db psql: cannot run %s: %s\n", psql, strerror(errno));
    free(args);
    free(dbarg);
    free(ci);
    return 3;
}

int cmd_db(int argc, char **argv) {
    if (argc < 2) {
        usage_db();
        return 2;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) return usage_db();
    if (!strcmp(sub, "psql")) return db_psql_cmd(argc - 2, argv + 2);
    if (argc > 2) {
        if (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")) return usage_db();
        return cli_usage_error("db", "'db %s' takes no arguments", sub);
    }
    if (!strcmp(sub, "start")) return db_start_cmd();
    if (!strcmp(sub, "stop")) return db_stop_cmd();
    if (!strcmp(sub, "status")) return db_status_cmd();
    if (!strcmp(sub, "migrate")) return db_migrate_cmd();
    return cli_usage_error("db", "unknown subcommand '%s'", sub);
}
