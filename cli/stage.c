/* stage.c - enqueue role jobs under a run and drain them with a service child; see stage.h. */
#include "cli/stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/child.h"
#include "common/util.h"

int64_t cli_stage_seed(long seed, const char *key) {
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)seed;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) h = (h ^ *p) * 1099511628211ULL;
    h ^= h >> 31, h *= 0x9E3779B97F4A7C15ULL, h ^= h >> 29;
    return (int64_t)(h & 9007199254740991ULL);
}

void cli_stage_payload(const struct cli_stage *s, json_t *arr, const char *field, int64_t id, int round,
                       const char *key, json_t *refine) {
    char full[200];
    snprintf(full, sizeof full, "%s:%s:%s", s->prefix, s->run_s, key);
    json_t *o = json_pack("{s:I,s:I,s:i,s:s,s:I}", field, (json_int_t)id, "run_id", (json_int_t)s->run_id, "round",
                          round, "key", full, "seed", (json_int_t)cli_stage_seed(s->seed, full));
    if (o && refine) json_object_set_new(o, "refine", refine);
    else json_decref(refine);
    if (o) json_array_append_new(arr, o);
}

int cli_stage_enqueue(const struct cli_stage *s, const char *kind, json_t *arr, struct dsm_err *err) {
    if (!json_array_size(arr)) {
        json_decref(arr);
        return DSM_OK;
    }
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (!text) return dsm_errf(err, DSM_ENOMEM, "out of memory");
    struct db_enqueue_opts eo = {.run_id = s->run_id, .dedup_field = "key"};
    int rc = db_job_enqueue(s->db, kind, text, &eo, NULL, err);
    free(text);
    return rc;
}

static int stopped(const struct cli_stage *s) { return s->stop && *s->stop; }

int cli_stage_drain(const struct cli_stage *s, const char *kind, const char *what, struct dsm_err *err) {
    int gen = !strcmp(kind, "generate");
    const char *role = gen ? "generator" : "verifier", *backend = s->backend[!gen];
    char mt[16], conc[16], temp[32], topp[32], thr[16], ctx[16], worker[80], logp[2300], label[160];
    snprintf(mt, sizeof mt, "%d", s->max_tokens);
    snprintf(ctx, sizeof ctx, "%d", s->max_tokens + 4096);
    snprintf(conc, sizeof conc, "%d", s->concurrency);
    snprintf(temp, sizeof temp, "%g", s->temperature);
    snprintf(topp, sizeof topp, "%g", s->top_p);
    snprintf(thr, sizeof thr, "%d", s->cpu_threads);
    snprintf(worker, sizeof worker, "%s-%s-%ld", s->prefix, role, (long)getpid());
    snprintf(logp, sizeof logp, "%s/%s.log", s->dir, role);
    char *av[40] = {"dsm", "serve", (char *)role, "--backend", (char *)backend, "--once", "--concurrency", conc,
                    "--temperature", temp, "--top-p", topp, "--max-tokens", mt, "--lease", "10", "--idle-wait", "1",
                    "--worker", worker};
    int ac = 20;
    if (!strncmp(backend, "native:", 7)) {
        av[ac++] = "--max-context", av[ac++] = ctx;
        if (s->cpu_threads > 0) av[ac++] = "--threads", av[ac++] = thr;
    }
    if (s->template_) av[ac++] = "--template", av[ac++] = (char *)s->template_;
    av[ac] = NULL;
    const char *v[2] = {s->run_s, kind};
    double waited = 0;
    for (int attempt = 0;; attempt++) {
        if (stopped(s)) return dsm_errf(err, DSM_EIO, "interrupted");
        PGresult *r = NULL;
        int rc = db_exec(s->db,
                         "SELECT count(*) FILTER (WHERE state IN ('queued', 'running')) AS n, count(*) FILTER "
                         "(WHERE state = 'dead') AS dead, max(last_error) FILTER (WHERE state = 'dead') AS error "
                         "FROM jobs WHERE run_id = $1::bigint AND kind = $2",
                         2, v, &r, err);
        if (rc) return rc;
        int64_t pending = db_get_i64(r, 0, "n", 0), dead = db_get_i64(r, 0, "dead", 0);
        char msg[400];
        snprintf(msg, sizeof msg, "%s", db_get(r, 0, "error") ? db_get(r, 0, "error") : "");
        PQclear(r);
        if (dead)
            return dsm_errf(err, DSM_EIO, "%lld %s job(s) failed; the last error: %s (run again to retry them)",
                            (long long)dead, kind, msg);
        if (!pending) return DSM_OK;
        if (s->external || attempt > 0) { /* services elsewhere, or jobs under an old lease */
            if (!s->external && waited > 120)
                return dsm_errf(err, DSM_EIO, "%lld %s job(s) still pending after 120 s", (long long)pending, kind);
            struct timespec ts = {0, 250 * 1000 * 1000};
            nanosleep(&ts, NULL);
            waited += 0.25;
            if (s->external) continue;
        }
        snprintf(label, sizeof label, "%s (%lld jobs)", what, (long long)pending);
        struct cli_child c = {s->self, logp, NULL, label, s->show, s->stop};
        int code = cli_child_run(&c, av);
        if (code)
            return stopped(s) ? dsm_errf(err, DSM_EIO, "interrupted")
                              : dsm_errf(err, DSM_EIO, "dsm serve %s failed (exit %d); its log: %s", role, code, logp);
    }
}

int cli_stage_run_open(struct cli_stage *s, const char *kind, const char *name, const char *cfg_text,
                       struct dsm_err *err) {
    const char *v[3] = {name, cfg_text, kind};
    PGresult *r = NULL;
    int rc = db_exec(s->db,
                     "WITH old AS (SELECT id, config FROM runs WHERE name = $1 AND kind = $3 ORDER BY id LIMIT 1), "
                     "ins AS (INSERT INTO runs (name, kind, config) SELECT $1, $3, $2::jsonb WHERE NOT EXISTS "
                     "(SELECT 1 FROM old) RETURNING id, config) SELECT id, config::text AS config, config = $2::jsonb "
                     "AS same FROM old UNION ALL SELECT id, config::text, true FROM ins",
                     3, v, &r, err);
    if (rc) return rc;
    if (strcmp(db_get(r, 0, "same"), "t")) {
        rc = dsm_errf(err, DSM_EINVAL, "run '%s' exists with other settings (%s); choose another --run", name,
                      db_get(r, 0, "config"));
        PQclear(r);
        return rc;
    }
    s->run_id = db_get_i64(r, 0, "id", 0);
    snprintf(s->run_s, sizeof s->run_s, "%lld", (long long)s->run_id);
    PQclear(r);
    return cli_stage_requeue_dead(s, err);
}

int cli_stage_requeue_dead(const struct cli_stage *s, struct dsm_err *err) {
    const char *v[1] = {s->run_s};
    return db_exec(s->db,
                   "UPDATE jobs SET state = 'queued', attempts = 0, run_after = now(), updated_at = now() "
                   "WHERE run_id = $1::bigint AND state = 'dead'",
                   1, v, NULL, err);
}

int cli_stage_self(struct cli_stage *s, struct dsm_err *err) {
    ssize_t n = readlink("/proc/self/exe", s->self, sizeof s->self - 1);
    if (n <= 0) return dsm_errf(err, DSM_EIO, "cannot find our own binary (/proc/self/exe)");
    s->self[n] = 0;
    return DSM_OK;
}
