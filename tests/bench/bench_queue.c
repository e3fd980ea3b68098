/* bench_queue.c - job queue throughput: completed jobs per second with 1, 2, 4 and 8 worker
 * processes, idle workers woken by LISTEN/NOTIFY or by polling every 50 ms.
 *
 * Each run: a fresh database in a throwaway cluster (fsync and synchronous_commit off, so this
 * measures the queue's SQL and round trips, not the disk), N workers start on an empty queue, a
 * producer enqueues JOBS jobs in batches of 100 as fast as it can; each worker claims one job at a
 * time and completes it (result row + job marked done, one transaction). Time runs from the first
 * enqueue to the last completion.
 *
 *   build/tests/bench_queue [JOBS]      (default 4000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/db.h"
#include "common/log.h"
#include "tests/unit/db_test_util.h"

static _Noreturn void worker(const char *ci, int notify, int total) {
    struct dsm_err err = {0};
    struct dsm_db *db = dbt_connect(ci);
    if (!db) _exit(10);
    if (notify && db_listen(db, "dsm_jobs", &err)) _exit(11);
    for (;;) {
        struct db_job j;
        int n = 0;
        if (db_job_claim(db, NULL, 0, "bench", 30, 1, &j, &n, &err)) _exit(12);
        if (n) {
            int stored = 0;
            if (db_job_complete(db, &j, "{}", "bench", NULL, NULL, &stored, &err)) _exit(13);
            db_job_clear(&j);
            continue;
        }
        PGresult *r = NULL;
        if (db_exec(db, "SELECT count(*) AS done FROM jobs WHERE state = 'done'", 0, NULL, &r, &err)) _exit(14);
        long long done = (long long)db_get_i64(r, 0, "done", 0);
        PQclear(r);
        if (done >= total) break;
        if (notify) {
            int got = 0;
            if (db_wait(db, 0.5, &got, &err)) _exit(15);
        } else {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    db_close(db);
    _exit(0);
}

static double run(struct dbt_cluster *c, int nworkers, int notify, int total) {
    char ci[1500], name[32];
    snprintf(name, sizeof name, "bench_%d_%d", nworkers, notify);
    if (dbt_fresh_db(c, name, ci, sizeof ci)) return -1;
    pid_t pids[16];
    fflush(NULL);
    for (int i = 0; i < nworkers; i++) {
        pids[i] = fork();
        if (pids[i] == 0) worker(ci, notify, total);
    }
    struct dsm_db *db = dbt_connect(ci);
    if (!db) return -1;
    struct timespec settle = {0, 200 * 1000 * 1000};
    nanosleep(&settle, NULL); /* let the workers connect and go idle */
    struct dsm_err err = {0};
    char *batch = malloc(100 * 16 + 8);
    strcpy(batch, "[");
    for (int i = 0; i < 100; i++) strcat(batch, i ? ",{\"x\":1}" : "{\"x\":1}");
    strcat(batch, "]");
    double t0 = dsm_now();
    for (int sent = 0; sent < total; sent += 100)
        if (db_job_enqueue(db, "bench", batch, NULL, NULL, &err)) {
            fprintf(stderr, "enqueue: %s\n", err.msg);
            break;
        }
    int bad = 0;
    for (int i = 0; i < nworkers; i++) {
        int st = 0;
        waitpid(pids[i], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st)) bad++;
    }
    double dt = dsm_now() - t0;
    free(batch);
    db_close(db);
    if (bad) fprintf(stderr, "%d worker(s) failed\n", bad);
    return bad ? -1 : total / dt;
}

int main(int argc, char **argv) {
    dsm_log_init();
    int total = argc > 1 ? atoi(argv[1]) : 4000;
    if (total < 100) total = 100;
    total -= total % 100;
    struct dbt_cluster c;
    if (dbt_start(&c)) return 1;
    const int ns[] = {1, 2, 4, 8};
    double res[4][2];
    for (int i = 0; i < 4; i++)
        for (int m = 0; m < 2; m++) res[i][m] = run(&c, ns[i], m == 0, total);
    printf("job queue: %d jobs, claim 1 + complete per job, %ld CPU cores\n", total, sysconf(_SC_NPROCESSORS_ONLN));
    printf("| workers | jobs/s (LISTEN/NOTIFY) | jobs/s (poll 50 ms) |\n|---:|---:|---:|\n");
    for (int i = 0; i < 4; i++) printf("| %d | %.0f | %.0f |\n", ns[i], res[i][0], res[i][1]);
    dbt_stop(&c);
    return 0;
}
