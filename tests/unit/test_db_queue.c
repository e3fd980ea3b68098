/* test_db_queue.c - migrations and the crash-safe job queue against a real PostgreSQL.
 *
 *  1. migrations apply, re-apply as a no-op, and an edited applied migration is refused;
 *  2. the job life cycle: enqueue (bulk, dedup), claim, heartbeat, complete twice (stored once),
 *     fail with backoff, dead after max attempts with the error kept, an expired lease reclaimed;
 *  3. no killer: 4 worker processes x 200 jobs, every job claimed exactly once;
 *  4. killer: 8 worker processes claim and complete DSM_TEST_QUEUE_JOBS (default 20000) jobs
 *     while random workers get SIGKILL; every job ends done with its effect written exactly once;
 *  5. a server restart mid-run is survived by reconnecting workers;
 *  6. LISTEN/NOTIFY wakes an idle worker (latency printed).
 * A worker's "effect" is a row in a test table written by the completion callback in the
 * completing transaction; the table has no unique constraint, so a double completion would show.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/db.h"
#include "tests/unit/db_test_util.h"
#include "tests/unit/test.h"

static struct dbt_cluster cluster;

static int write_effect(struct dsm_db *db, const struct db_job *job, void *ctx, struct dsm_err *err) {
    (void)ctx;
    char id[24], pid[16];
    snprintf(id, sizeof id, "%lld", (long long)job->id);
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    const char *p[] = {id, pid};
    return db_exec(db, "INSERT INTO test_effects (job_id, worker) VALUES ($1::bigint, $2::integer)", 2, p, NULL, err);
}

static long long scalar(struct dsm_db *db, const char *sql) {
    struct dsm_err err = {0};
    PGresult *r = NULL;
    if (db_exec(db, sql, 0, NULL, &r, &err)) {
        fprintf(stderr, "scalar: %s\n", err.msg);
        return -1;
    }
    long long v = PQntuples(r) ? (long long)db_get_i64(r, 0, PQfname(r, 0), -1) : -1;
    PQclear(r);
    return v;
}

static void test_migrations(void) {
    char ci[1500];
    CHECK(dbt_fresh_db(&cluster, "t_migrate", ci, sizeof ci) == 0);
    struct dsm_db *db = dbt_connect(ci);
    CHECK(db != NULL);
    if (!db) return;
    struct dsm_err err = {0};
    int applied = -1;
    CHECK_OK(db_migrate(db, NULL, &applied, &err), &err);
    CHECK_MSG(applied == 0, "re-migrate applied %d", applied);
    CHECK(scalar(db, "SELECT count(*) FROM schema_migrations") >= 3);
    /* an edited applied migration is refused */
    char tmpl[] = "/tmp/dsm-schema-XXXXXX", dir[1100];
    CHECK(mkdtemp(tmpl) != NULL);
    db_schema_dir(dir, sizeof dir, &err);
    char *sql = NULL;
    size_t len = 0;
    char src[1200], dst[1200];
    snprintf(src, sizeof src, "%s/001_init.sql", dir);
    snprintf(dst, sizeof dst, "%s/001_init.sql", tmpl);
    CHECK_OK(dsm_file_read(src, &sql, &len, &err), &err);
    if (sql) {
        char *edited = malloc(len + 32);
        snprintf(edited, len + 32, "%s\n-- edited\n", sql);
        CHECK_OK(dsm_file_write_atomic(dst, edited, strlen(edited), &err), &err);
        int rc = db_migrate(db, tmpl, NULL, &err);
        CHECK_MSG(rc == DSM_EINVAL && strstr(err.msg, "changed"), "rc %d: %s", rc, err.msg);
        free(edited);
        free(sql);
    }
    unlink(dst);
    rmdir(tmpl);
    db_close(db);
}

static void test_lifecycle(void) {
    char ci[1500];
    CHECK(dbt_fresh_db(&cluster, "t_life", ci, sizeof ci) == 0);
    struct dsm_db *db = dbt_connect(ci), *db2 = dbt_connect(ci);
    CHECK(db && db2);
    if (!db || !db2) return;
    struct dsm_err err = {0};
    CHECK_OK(db_exec(db, "CREATE TABLE test_effects (job_id bigint, worker integer)", 0, NULL, NULL, &err), &err);
    int64_t ins = 0;
    struct db_enqueue_opts o = {.dedup_field = "k", .max_attempts = 2};
    CHECK_OK(db_job_enqueue(db, "t", "[{\"k\":1},{\"k\":2},{\"k\":3}]", &o, &ins, &err), &err);
    CHECK(ins == 3);
    CHECK_OK(db_job_enqueue(db, "t", "[{\"k\":1},{\"k\":4}]", &o, &ins, &err), &err);
    CHECK_MSG(ins == 1, "dedup: inserted %lld", (long long)ins);
    CHECK(db_job_enqueue(db, "t", "{\"k\":1}", &o, &ins, &err) == DSM_EINVAL);
    CHECK(db_job_enqueue(db, "t", "not json", &o, &ins, &err) == DSM_EINVAL);

    struct db_job jobs[4];
    int n = 0;
    const char *kinds[] = {"t"};
    const char *other[] = {"nope"};
    CHECK_OK(db_job_claim(db, other, 1, "w0", 30, 4, jobs, &n, &err), &err);
    CHECK(n == 0);
    CHECK_OK(db_job_claim(db, kinds, 1, "w1", 30, 2, jobs, &n, &err), &err);
    CHECK(n == 2);
    CHECK(strstr(jobs[0].payload, "\"k\": 1") != NULL);
    CHECK(jobs[0].attempts == 1);
    /* the second worker cannot see the two claimed jobs */
    struct db_job j2[4];
    int n2 = 0;
    CHECK_OK(db_job_claim(db2, kinds, 1, "w2", 30, 4, j2, &n2, &err), &err);
    CHECK_MSG(n2 == 2, "second claim got %d", n2);
    for (int i = 0; i < n2; i++) CHECK(j2[i].id != jobs[0].id && j2[i].id != jobs[1].id);

    CHECK_OK(db_job_heartbeat(db, &jobs[0], 30, &err), &err);
    int stored = -1;
    CHECK_OK(db_job_complete(db, &jobs[0], "{\"ok\":true}", "w1", write_effect, NULL, &stored, &err), &err);
    CHECK(stored == 1);
    CHECK_OK(db_job_complete(db2, &jobs[0], "{\"ok\":false}", "w2", write_effect, NULL, &stored, &err), &err);
    CHECK(stored == 0);
    CHECK(scalar(db, "SELECT count(*) FROM test_effects") == 1);
    CHECK(scalar(db, "SELECT count(*) FROM job_results WHERE result = '{\"ok\": true}'") == 1);
    CHECK(db_job_heartbeat(db, &jobs[0], 30, &err) == DSM_ENOTFOUND);

    /* fail: retried with backoff, then dead at max_attempts (2) with the error kept */
    int dead = -1;
    CHECK_OK(db_job_fail(db, &jobs[1], "boom 1", 0.0, &dead, &err), &err);
    CHECK(dead == 0);
    CHECK(db_job_fail(db, &jobs[1], "again", 0.0, &dead, &err) == DSM_ENOTFOUND); /* lease gone */
    struct db_job j3[4];
    int n3 = 0;
    CHECK_OK(db_job_claim(db, kinds, 1, "w1", 30, 4, j3, &n3, &err), &err);
    CHECK_MSG(n3 == 1 && j3[0].id == jobs[1].id && j3[0].attempts == 2, "n3 %d", n3);
    if (n3 == 1) {
        CHECK_OK(db_job_fail(db, &j3[0], "boom 2", 60.0, &dead, &err), &err);
        CHECK(dead == 1);
    }
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE id = %lld AND state = 'dead' AND last_error = 'boom 2'",
             (long long)jobs[1].id);
    CHECK(scalar(db, sql) == 1);
    /* backoff: a failed job is not claimable before run_after */
    CHECK_OK(db_job_fail(db2, &j2[0], "later", 60.0, &dead, &err), &err);
    CHECK_OK(db_job_claim(db, kinds, 1, "w1", 30, 4, j3 + 1, &n3, &err), &err);
    CHECK_MSG(n3 == 0, "claimed %d job(s) during backoff", n3);
    for (int i = 0; i < n3; i++) db_job_clear(&j3[1 + i]);

    /* lease expiry: j2[1] claimed with a short lease by a worker that "dies" */
    CHECK_OK(db_job_heartbeat(db2, &j2[1], 0.2, &err), &err);
    struct timespec ts = {0, 400 * 1000 * 1000};
    nanosleep(&ts, NULL);
    int64_t rec = 0;
    CHECK_OK(db_job_reclaim(db, &rec, &err), &err);
    CHECK(rec == 1);
    struct db_job j4[2];
    int n4 = 0;
    CHECK_OK(db_job_claim(db, kinds, 1, "w3", 30, 2, j4, &n4, &err), &err);
    CHECK_MSG(n4 == 1 && j4[0].id == j2[1].id && j4[0].attempts == 2, "reclaimed job not claimed again (n4 %d)", n4);
    /* the dead worker's late completion still stores once; the new owner's is a no-op */
    CHECK_OK(db_job_complete(db2, &j2[1], NULL, "w2", write_effect, NULL, &stored, &err), &err);
    CHECK(stored == 1);
    if (n4 == 1) {
        CHECK_OK(db_job_complete(db, &j4[0], NULL, "w3", write_effect, NULL, &stored, &err), &err);
        CHECK(stored == 0);
    }
    CHECK(scalar(db, "SELECT count(*) FROM test_effects") == 2);
    for (int i = 0; i < n; i++) db_job_clear(&jobs[i]);
    for (int i = 0; i < n2; i++) db_job_clear(&j2[i]);
    db_job_clear(&j3[0]);
    for (int i = 0; i < n4; i++) db_job_clear(&j4[i]);
    db_close(db);
    db_close(db2);
}

/* ---- worker processes ------------------------------------------------------------------------ */

/* A worker: claim, record the claim, complete with an effect, until no job is left. Reconnects
 * when the server goes away. Never returns. */
static _Noreturn void worker_main(const char *ci, int batch, double lease_s) {
    struct dsm_err err = {0};
    struct dsm_db *db = dbt_connect(ci);
    if (!db) _exit(10);
    if (db_listen(db, "dsm_jobs", &err)) _exit(11);
    char name[32];
    snprintf(name, sizeof name, "w%d", (int)getpid());
    struct db_job jobs[16];
    for (;;) {
        int n = 0, rc = db_job_claim(db, NULL, 0, name, lease_s, batch, jobs, &n, &err);
        for (int i = 0; !rc && i < n; i++) {
            char id[24], at[16];
            snprintf(id, sizeof id, "%lld", (long long)jobs[i].id);
            snprintf(at, sizeof at, "%d", jobs[i].attempts);
            const char *p[] = {id, at, name};
            rc = db_exec(db, "INSERT INTO test_claims (job_id, attempt, worker) VALUES ($1::bigint, $2::integer, $3::text)",
                         3, p, NULL, &err);
            int stored = 0;
            if (!rc) rc = db_job_complete(db, &jobs[i], "{}", name, write_effect, NULL, &stored, &err);
        }
        for (int i = 0; i < n; i++) db_job_clear(&jobs[i]);
        if (rc) {
            if (db_is_broken(db)) {
                if (db_reconnect(db, 60, &err)) _exit(12);
                continue;
            }
            fprintf(stderr, "worker %s: %s\n", name, err.msg);
            _exit(13);
        }
        if (n == 0) {
            PGresult *r = NULL;
            rc = db_exec(db, "SELECT count(*) AS left FROM jobs WHERE state <> 'done'", 0, NULL, &r, &err);
            if (!rc) {
                long long left = (long long)db_get_i64(r, 0, "left", 1);
                PQclear(r);
                if (left == 0) break;
                int got = 0;
                rc = db_wait(db, 0.2, &got, &err);
            }
            if (rc && db_is_broken(db) && db_reconnect(db, 60, &err)) _exit(12);
        }
    }
    db_close(db);
    _exit(0);
}

static pid_t spawn_worker(const char *ci, int batch, double lease_s) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) worker_main(ci, batch, lease_s);
    return pid;
}

static int setup_queue_db(const char *name, char *ci, size_t cap, int njobs) {
    if (dbt_fresh_db(&cluster, name, ci, cap)) return 1;
    struct dsm_db *db = dbt_connect(ci);
    if (!db) return 1;
    struct dsm_err err = {0};
    int rc = db_exec(db, "CREATE TABLE test_effects (job_id bigint, worker integer)", 0, NULL, NULL, &err);
    if (!rc)
        rc = db_exec(db,
                     "CREATE TABLE test_claims (job_id bigint, attempt integer, worker text,"
                     " UNIQUE (job_id, attempt))",
                     0, NULL, NULL, &err);
    char n[16];
    snprintf(n, sizeof n, "%d", njobs);
    const char *p[] = {n};
    if (!rc)
        rc = db_exec(db,
                     "INSERT INTO jobs (kind, payload, max_attempts)"
                     " SELECT 'test', jsonb_build_object('i', i), 1000 FROM generate_series(1, $1::integer) i",
                     1, p, NULL, &err);
    if (rc) fprintf(stderr, "setup_queue_db: %s\n", err.msg);
    db_close(db);
    return rc ? 1 : 0;
}

/* Every job done, one result and one effect each. */
static void check_exactly_once(const char *ci, int njobs, const char *what) {
    struct dsm_db *db = dbt_connect(ci);
    CHECK(db != NULL);
    if (!db) return;
    long long notdone = scalar(db, "SELECT count(*) FROM jobs WHERE state <> 'done'");
    long long results = scalar(db, "SELECT count(*) FROM job_results");
    long long effects = scalar(db, "SELECT count(*) FROM test_effects");
    long long distinct = scalar(db, "SELECT count(DISTINCT job_id) FROM test_effects");
    long long claims = scalar(db, "SELECT count(*) FROM test_claims");
    long long reclaimed = scalar(db, "SELECT count(*) FROM jobs WHERE attempts > 1");
    fprintf(stderr, "%s: %d jobs, %lld not done, %lld results, %lld effects (%lld distinct), %lld claims, "
                    "%lld jobs claimed more than once\n",
            what, njobs, notdone, results, effects, distinct, claims, reclaimed);
    CHECK(notdone == 0);
    CHECK(results == njobs);
    CHECK(effects == njobs);
    CHECK(distinct == njobs);
    db_close(db);
}

static void wait_all(pid_t *pids, int n, int *failures) {
    for (int i = 0; i < n; i++) {
        if (pids[i] <= 0) continue;
        int st = 0;
        while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR) {
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "worker %d ended with status 0x%x\n", (int)pids[i], st);
            (*failures)++;
        }
    }
}

static void test_no_double_claims(void) {
    const int W = 4, N = 800; /* 4 workers x 200 jobs each on average */
    char ci[1500];
    CHECK(setup_queue_db("t_claims", ci, sizeof ci, N) == 0);
    pid_t pids[4];
    for (int i = 0; i < W; i++) pids[i] = spawn_worker(ci, 1, 30);
    int fails = 0;
    wait_all(pids, W, &fails);
    CHECK(fails == 0);
    check_exactly_once(ci, N, "4 workers, no killer");
    struct dsm_db *db = dbt_connect(ci);
    if (db) {
        CHECK_MSG(scalar(db, "SELECT count(*) FROM test_claims") == N, "a job was claimed twice with no worker dying");
        db_close(db);
    }
}

static void test_killer(void) {
    const char *env = getenv("DSM_TEST_QUEUE_JOBS");
    const int W = 8, N = env ? atoi(env) : 20000;
    char ci[1500];
    CHECK(setup_queue_db("t_killer", ci, sizeof ci, N) == 0);
    pid_t pids[8];
    for (int i = 0; i < W; i++) pids[i] = spawn_worker(ci, 4, 1.0);
    struct dsm_db *db = dbt_connect(ci);
    CHECK(db != NULL);
    if (!db) return;
    srand(12345);
    int kills = 0;
    double t0 = dsm_now();
    /* kill a random worker every ~100 ms while at least a fifth of the work remains */
    for (;;) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        long long left = scalar(db, "SELECT count(*) FROM jobs WHERE state <> 'done'");
        if (left < N / 5 || kills >= 40) break;
        int v = rand() % W;
        kill(pids[v], SIGKILL);
        int st;
        waitpid(pids[v], &st, 0);
        pids[v] = spawn_worker(ci, 4, 1.0);
        kills++;
    }
    int fails = 0;
    wait_all(pids, W, &fails);
    double dt = dsm_now() - t0;
    CHECK(fails == 0);
    fprintf(stderr, "killer: %d SIGKILLs, %.1f s\n", kills, dt);
    CHECK(kills > 0);
    check_exactly_once(ci, N, "8 workers with killer");
    CHECK_MSG(scalar(db, "SELECT count(*) FROM test_claims c JOIN jobs j ON j.id = c.job_id WHERE c.attempt > j.attempts") == 0,
              "claims beyond a job's attempts");
    db_close(db);
}

static void test_restart(void) {
    const int W = 4, N = 3000;
    char ci[1500];
    CHECK(setup_queue_db("t_restart", ci, sizeof ci, N) == 0);
    pid_t pids[4];
    for (int i = 0; i < W; i++) pids[i] = spawn_worker(ci, 2, 2.0);
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    double t0 = dsm_now();
    CHECK(dbt_restart(&cluster) == 0);
    fprintf(stderr, "restart: server restarted in %.2f s while workers ran\n", dsm_now() - t0);
    int fails = 0;
    wait_all(pids, W, &fails);
    CHECK(fails == 0);
    check_exactly_once(ci, N, "4 workers across a server restart");
}

static void test_notify_latency(void) {
    char ci[1500];
    CHECK(dbt_fresh_db(&cluster, "t_notify", ci, sizeof ci) == 0);
    int to_parent[2], to_child[2];
    CHECK(pipe(to_parent) == 0 && pipe(to_child) == 0);
    const int ROUNDS = 20;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct dsm_err err = {0};
        struct dsm_db *db = dbt_connect(ci);
        if (!db || db_listen(db, "dsm_jobs", &err)) _exit(10);
        char c = 'r';
        if (write(to_parent[1], &c, 1) != 1) _exit(11);
        for (int i = 0; i < ROUNDS; i++) {
            int got = 0;
            struct db_job j;
            int n = 0;
            /* the idle loop a worker runs: wait (10 s would mean no wake-up), then claim */
            if (db_wait(db, 10.0, &got, &err) || !got) _exit(12);
            if (db_job_claim(db, NULL, 0, "idle", 30, 1, &j, &n, &err) || n != 1) _exit(13);
            int stored = 0;
            if (db_job_complete(db, &j, NULL, "idle", NULL, NULL, &stored, &err)) _exit(14);
            db_job_clear(&j);
            if (write(to_parent[1], &c, 1) != 1) _exit(11);
            if (read(to_child[0], &c, 1) != 1) _exit(15);
        }
        db_close(db);
        _exit(0);
    }
    struct dsm_db *db = dbt_connect(ci);
    CHECK(db != NULL);
    char c;
    CHECK(read(to_parent[0], &c, 1) == 1);
    double lat[20], worst = 0, sum = 0;
    struct dsm_err err = {0};
    for (int i = 0; db && i < ROUNDS; i++) {
        double t0 = dsm_now();
        CHECK_OK(db_job_enqueue(db, "wake", "[{}]", NULL, NULL, &err), &err);
        if (read(to_parent[0], &c, 1) != 1) {
            CHECK_MSG(0, "idle worker died");
            break;
        }
        lat[i] = dsm_now() - t0;
        sum += lat[i];
        if (lat[i] > worst) worst = lat[i];
        c = 'n';
        CHECK(write(to_child[1], &c, 1) == 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "idle worker status 0x%x", st);
    fprintf(stderr, "notify: enqueue -> woken worker claimed and completed: mean %.2f ms, worst %.2f ms (%d rounds)\n",
            1e3 * sum / ROUNDS, 1e3 * worst, ROUNDS);
    CHECK(worst < 1.0);
    db_close(db);
    close(to_parent[0]);
    close(to_parent[1]);
    close(to_child[0]);
    close(to_child[1]);
}

int main(void) {
    if (dbt_start(&cluster)) return 1;
    double t;
    t = dsm_now();
    test_migrations();
    fprintf(stderr, "migrations: %.2f s\n", dsm_now() - t);
    test_lifecycle();
    t = dsm_now();
    test_no_double_claims();
    fprintf(stderr, "no double claims: %.2f s\n", dsm_now() - t);
    test_notify_latency();
    t = dsm_now();
    test_restart();
    fprintf(stderr, "restart: %.2f s\n", dsm_now() - t);
    t = dsm_now();
    test_killer();
    fprintf(stderr, "killer: %.2f s\n", dsm_now() - t);
    dbt_stop(&cluster);
    return test_main_end();
}
