/* db_test_util.h - a throwaway PostgreSQL cluster for C tests and benchmarks.
 *
 * Usage (see docs/store.md, "Testing against PostgreSQL"):
 *
 *     struct dbt_cluster c;
 *     if (dbt_start(&c)) return 1;                 // fresh cluster in /tmp/dsm-test-XXXXXX
 *     char ci[1500];
 *     dbt_fresh_db(&c, "t_queue", ci, sizeof ci);  // new database with every migration applied
 *     struct dsm_db *db = dbt_connect(ci);         // NULL on failure (message on stderr)
 *     ...
 *     db_close(db);
 *     dbt_stop(&c);                                // stops the server and removes the directory
 *
 * The cluster runs with fsync and synchronous_commit off (never do that to real data), on a unix
 * socket in its own directory, as the postgres user when the test runs as root. PostgreSQL is a
 * hard requirement of the test suite (scripts/setup.sh installs it): a test that cannot start the
 * cluster fails, it never skips. Header-only (static functions) so every test can include it.
 */
#ifndef DSM_DB_TEST_UTIL_H
#define DSM_DB_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/db.h"
#include "common/util.h"

struct dbt_cluster {
    char home[64];
    struct db_cluster_info info;
};

/* Start a fresh cluster. Returns 0, or 1 with the reason on stderr. */
static inline int dbt_start(struct dbt_cluster *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->home, sizeof c->home, "/tmp/dsm-test-XXXXXX");
    if (!mkdtemp(c->home)) {
        perror("dbt_start: mkdtemp");
        return 1;
    }
    chmod(c->home, 0755); /* the postgres user must traverse it */
    struct dsm_err err = {0};
    double t0 = dsm_now();
    if (db_cluster_start(c->home, 1, &c->info, &err)) {
        fprintf(stderr, "dbt_start: cannot start a test PostgreSQL cluster: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "dbt_start: cluster in %s up in %.2f s\n", c->home, dsm_now() - t0);
    return 0;
}

/* Connect to conninfo; NULL (message on stderr) on failure. */
static inline struct dsm_db *dbt_connect(const char *conninfo) {
    struct dsm_err err = {0};
    struct db_open_opts o = {.conninfo = conninfo};
    struct dsm_db *db = NULL;
    if (db_open(&o, &db, &err)) {
        fprintf(stderr, "dbt_connect: %s\n", err.msg);
        return NULL;
    }
    return db;
}

/* Create database `name` (letters, digits, '_'), apply every migration, and write its conninfo to
 * out. Returns 0 or 1 (message on stderr). */
static inline int dbt_fresh_db(struct dbt_cluster *c, const char *name, char *out, size_t cap) {
    struct dsm_err err = {0};
    struct dsm_db *db = dbt_connect(c->info.conninfo);
    if (!db) return 1;
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\"", name);
    int rc = db_exec(db, sql, 0, NULL, NULL, &err);
    snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", name);
    if (!rc) rc = db_exec(db, sql, 0, NULL, NULL, &err);
    db_close(db);
    if (rc) {
        fprintf(stderr, "dbt_fresh_db: %s\n", err.msg);
        return 1;
    }
    snprintf(out, cap, "host=%s port=5432 dbname=%s user=postgres", c->info.sockdir, name);
    db = dbt_connect(out);
    if (!db) return 1;
    rc = db_migrate(db, NULL, NULL, &err);
    db_close(db);
    if (rc) {
        fprintf(stderr, "dbt_fresh_db: migrate: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* Restart the server (workers see their connections drop). Returns 0 or 1. */
static inline int dbt_restart(struct dbt_cluster *c) {
    struct dsm_err err = {0};
    if (db_cluster_stop(c->home, NULL, &err) || db_cluster_start(c->home, 1, &c->info, &err)) {
        fprintf(stderr, "dbt_restart: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* Stop the server and remove its directory. */
static inline void dbt_stop(struct dbt_cluster *c) {
    struct dsm_err err = {0};
    if (!c->home[0]) return;
    if (db_cluster_stop(c->home, NULL, &err) || db_cluster_destroy(c->home, &err))
        fprintf(stderr, "dbt_stop: %s\n", err.msg);
    rmdir(c->home);
}

#endif
