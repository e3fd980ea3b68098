/* cmd_submit.c - `dsm submit` (hand a proof in for scoring, optionally wait for its result) and
 * `dsm serve submissions` (the worker that carries submissions inserted by SQL through the vote).
 * The steps themselves are labeler/submit.h; the sampling is done by `dsm serve verifier` and
 * `dsm serve metaverifier`. docs/serve.md "Submissions". */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/db.h"
#include "common/log.h"
#include "common/util.h"
#include "labeler/submit.h"
#include "labeler/vote.h"

static volatile int g_stop; /* set by SIGTERM/SIGINT */

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static void nap(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Read a text file, or stdin for "-". */
static int read_text(const char *path, char **out, struct dsm_err *err) {
    size_t len = 0;
    if (strcmp(path, "-")) return dsm_file_read(path, out, &len, err);
    size_t cap = 4096;
    char *b = malloc(cap);
    for (size_t got; b && (got = fread(b + len, 1, cap - len - 1, stdin)) > 0;) {
        len += got;
        if (cap - len < 2) {
            char *q = realloc(b, cap *= 2);
            if (!q) free(b);
            b = q;
        }
    }
    if (!b) return dsm_errf(err, DSM_ENOMEM, "out of memory reading stdin");
    b[len] = 0;
    *out = b;
    return DSM_OK;
}

/* Print the submission's row as JSON: {"submission_id", "status", "error", "result"...}. */
static int print_submission(struct dsm_db *db, int64_t id, struct dsm_err *err) {
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    const char *v[1] = {ids};
    PGresult *r = NULL;
    int rc = db_exec(db,
                     "SELECT jsonb_build_object('submission_id', id, 'status', status, 'error', error, 'n', n, 'm', m, "
                     "'k', k) || coalesce(result, '{}') AS j FROM submissions WHERE id = $1::bigint",
                     1, v, &r, err);
    if (rc) return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return dsm_errf(err, DSM_ENOTFOUND, "submission %s does not exist (or is not yours)", ids);
    }
    printf("%s\n", db_get(r, 0, "j"));
    PQclear(r);
    return DSM_OK;
}

int cmd_submit(int argc, char **argv) {
    const char *problem_path = NULL, *proof_path = NULL;
    int n = LBL_DEFAULT_N, m = LBL_DEFAULT_M, k = LBL_DEFAULT_K, wait = 0;
    long id = 0;
    double timeout = 0, poll = 0.5;
    const struct cli_opt opts[] = {
        {"--problem", CLI_STR, &problem_path, "FILE", "the problem statement (text file; '-' = stdin)"},
        {"--proof", CLI_STR, &proof_path, "FILE", "the proof to score (text file; '-' = stdin)"},
        {"-n", CLI_INT, &n, "N", "verifier analyses (default 64)"},
        {"--m", CLI_INT, &m, "M", "meta-verifications per analysis reporting an issue (default 3)"},
        {"--k", CLI_INT, &k, "K", "valid analyses that must agree on the lowest score (default 2)"},
        {"--wait", CLI_FLAG, &wait, NULL, "wait for the result (the submission advances from this process too)"},
        {"--id", CLI_LONG, &id, "ID", "an existing submission: print it (with --wait: wait for it first)"},
        {"--timeout", CLI_DOUBLE, &timeout, "S", "with --wait: give up after S seconds (exit 3; the submission goes on)"},
        {"--poll", CLI_DOUBLE, &poll, "S", "with --wait: seconds between checks (default 0.5)"},
    };
    const struct cli_cmd_spec spec = {
        "submit", "--problem FILE --proof FILE [-n 64] [--m 3] [--k 2] [--wait] | --id ID [--wait]",
        "Hand a proof in for scoring: a submissions row whose n verifier analyses (and the\n"
        "meta-verifications the vote needs) are enqueued for the verifier and meta-verifier services.\n"
        "Prints {\"submission_id\", \"status\"}; with --wait, the result: mean score, histogram, the\n"
        "label by the V2 vote (null = uncertain), the vote, the analysis ids. docs/serve.md.",
        opts, DSM_ARRAY_LEN(opts), 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (id < 0) return cli_usage_error(spec.name, "--id must be positive");
    if (!id && (!problem_path || !proof_path)) return cli_usage_error(spec.name, "give --problem FILE and --proof FILE (or --id ID)");
    if (id && (problem_path || proof_path)) return cli_usage_error(spec.name, "--id names an existing submission: no --problem/--proof");
    if (!id && (n < 1 || n > 1024 || m < 1 || m > 64 || k < 1 || k > n))
        return cli_usage_error(spec.name, "need -n in 1..1024, --m in 1..64, --k in 1..n");
    if (!(poll > 0) || timeout < 0) return cli_usage_error(spec.name, "need --poll > 0 and --timeout >= 0");
    if (problem_path && proof_path && !strcmp(problem_path, "-") && !strcmp(proof_path, "-"))
        return cli_usage_error(spec.name, "only one of --problem and --proof can be stdin");

    struct dsm_err err = {0};
    char *problem = NULL, *proof = NULL;
    if (problem_path && read_text(problem_path, &problem, &err)) return cli_fail(spec.name, &err);
    if (proof_path && read_text(proof_path, &proof, &err)) {
        free(problem);
        return cli_fail(spec.name, &err);
    }
    struct dsm_db *db = NULL;
    struct db_open_opts o = {.migrate = 1};
    if ((rc = db_open(&o, &db, &err))) goto done;
    if (!id) {
        int64_t nid = 0;
        if ((rc = sub_insert(db, problem, proof, n, m, k, &nid, &err))) goto done;
        id = (long)nid;
        LOG_INFO("submit: submission %ld: %d analyses, m %d, k %d", id, n, m, k);
    }
    if (wait) {
        cli_catch_stop_signals(on_signal);
        double t0 = dsm_now();
        int finished = 0;
        while (!g_stop) {
            if ((rc = sub_advance(db, id, &finished, &err))) {
                if (!db_is_broken(db) || (rc = db_reconnect(db, 60, &err))) goto done;
                continue;
            }
            if (finished) break;
            if (timeout && dsm_now() - t0 > timeout) {
                rc = dsm_errf(&err, DSM_EIO, "submission %ld is not finished after %g s (it goes on; wait again with --id %ld --wait)",
                              id, timeout, id);
                goto done;
            }
            nap(poll);
        }
        if (!finished) {
            rc = dsm_errf(&err, DSM_EIO, "interrupted; submission %ld goes on (wait again with --id %ld --wait)", id, id);
            goto done;
        }
    }
    rc = print_submission(db, id, &err);
done:
    db_close(db);
    free(problem);
    free(proof);
    return rc ? cli_fail(spec.name, &err) : 0;
}

/* `dsm serve submissions`: claim 'submission' jobs (one per submission, made by the INSERT
 * trigger), advance each; a submission still waiting for its analyses goes back to the queue for
 * --poll seconds without counting an attempt. */
int cmd_serve_submissions(int argc, char **argv) {
    int once = 0;
    double poll = 1, lease = 60, idle = 5;
    const char *worker_name = NULL;
    const struct cli_opt opts[] = {
        {"--once", CLI_FLAG, &once, NULL, "exit when every claimable submission is finished or waiting"},
        {"--poll", CLI_DOUBLE, &poll, "S", "a waiting submission is looked at again after S seconds (default 1)"},
        {"--lease", CLI_DOUBLE, &lease, "S", "job lease in seconds (default 60)"},
        {"--idle-wait", CLI_DOUBLE, &idle, "S", "longest wait for a new-job notification (default 5)"},
        {"--worker", CLI_STR, &worker_name, "NAME", "lease owner name (default serve-submissions-PID)"},
    };
    const struct cli_cmd_spec spec = {
        "serve submissions", "[--once] [--poll S]",
        "Carry submissions (INSERT INTO submissions, or `dsm submit` without --wait) through the\n"
        "V2 vote: enqueue their verify and metaverify jobs, wait for the services, vote, write the\n"
        "result. Run the verifier and meta-verifier services beside it. docs/serve.md.",
        opts, DSM_ARRAY_LEN(opts), 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (!(poll > 0) || !(lease >= 1) || !(idle > 0)) return cli_usage_error(spec.name, "need --poll > 0, --lease >= 1, --idle-wait > 0");
    char worker[128];
    if (worker_name)
        snprintf(worker, sizeof worker, "%s", worker_name);
    else
        snprintf(worker, sizeof worker, "serve-submissions-%ld", (long)getpid());
    struct dsm_err err = {0};
    struct dsm_db *db = NULL;
    struct db_open_opts o = {.migrate = 1};
    if (db_open(&o, &db, &err)) return cli_fail(spec.name, &err);
    long finished_n = 0, waiting = 0;
    cli_catch_stop_signals(on_signal);
    if (!once && (rc = db_listen(db, "dsm_jobs", &err))) goto done;
    const char *kinds[1] = {"submission"};
    char pollms[32];
    snprintf(pollms, sizeof pollms, "%.0f", poll * 1000);
    while (!g_stop) {
        struct db_job job;
        int got = 0;
        if ((rc = db_job_claim(db, kinds, 1, worker, lease, 1, &job, &got, &err))) {
            if (!db_is_broken(db) || (rc = db_reconnect(db, 60, &err))) goto done;
            continue;
        }
        if (got) {
            json_t *p = json_loads(job.payload ? job.payload : "{}", 0, NULL);
            json_t *sid = json_object_get(p, "submission_id");
            int finished = 0;
            if (!json_is_integer(sid)) {
                int dead = 0;
                if (db_job_fail(db, &job, "payload lacks an integer \"submission_id\"", 5, &dead, &err))
                    LOG_WARN("serve submissions: job %lld: %s", (long long)job.id, err.msg);
            } else if (sub_advance(db, json_integer_value(sid), &finished, &err)) {
                int dead = 0;
                LOG_WARN("serve submissions: submission %lld: %s", (long long)json_integer_value(sid), err.msg);
                if (db_job_fail(db, &job, err.msg, 5, &dead, &err)) LOG_WARN("serve submissions: %s", err.msg);
            } else if (finished) {
                int stored = 0;
                if (db_job_complete(db, &job, "{\"status\": \"finished\"}", worker, NULL, NULL, &stored, &err))
                    LOG_WARN("serve submissions: job %lld: %s", (long long)job.id, err.msg);
                finished_n++;
                LOG_INFO("serve submissions: submission %lld finished", (long long)json_integer_value(sid));
            } else { /* back to the queue for a while, the attempt not counted */
                char jid[24];
                snprintf(jid, sizeof jid, "%lld", (long long)job.id);
                const char *v[3] = {jid, job.token, pollms};
                waiting++;
                if (db_exec(db,
                            "UPDATE jobs SET state = 'queued', lease_token = NULL, lease_until = NULL, lease_owner = NULL, "
                            "attempts = greatest(attempts - 1, 0), run_after = now() + $3::int * interval '1 millisecond', "
                            "updated_at = now() WHERE id = $1::bigint AND lease_token = $2::uuid AND state = 'running'",
                            3, v, NULL, &err))
                    LOG_WARN("serve submissions: job %lld: %s", (long long)job.id, err.msg);
            }
            json_decref(p);
            db_job_clear(&job);
            continue;
        }
        if (once) break;
        if ((rc = db_wait_idle(db, idle < poll ? idle : poll, &g_stop, &err))) goto done;
    }
    rc = DSM_OK;
done:
    fprintf(stderr, "dsm serve submissions: %ld finished, %ld look(s) at unfinished ones\n", finished_n, waiting);
    db_close(db);
    return rc ? cli_fail(spec.name, &err) : 0;
}
