/* cmd_serve.c - `dsm serve generator|verifier|metaverifier`: a model role as a queue worker
 * (docs/serve.md). The loop: claim up to --concurrency jobs of the role's kind from the store
 * (common/db.h), read what each needs (problem, proof, analysis), build the role's prompt, sample
 * one completion per job through the lm interface (native:DIR or http:URL; the --concurrency N
 * jobs claimed together go in one lm_sample call: sent concurrently or decoded as one batch), parse it, and complete the job writing its row (proofs, verifications or
 * meta_verifications) with full provenance in the same transaction.
 *
 *   job kind     payload                         row written
 *   generate     {"problem_id": N}               proofs
 *                + "refine": [{"proof_id": P, "analyses": [V...] | "self"}, ...]  a refinement: the
 *                earlier proofs P (of the same problem) with verifications V (or their own
 *                self-evaluation) under "## Candidate Solution(s) to Refine"; proof_parents rows
 *   verify       {"proof_id": N}                 verifications
 *   metaverify   {"verification_id": N}          meta_verifications
 * Optional payload fields: "seed" (else --seed + job id), "round", "run_id".
 *
 * A malformed output is a row with format_ok false (a proof row with metadata.format_ok false),
 * not a failed job. A backend error or bad payload fails the job with its message (the queue
 * retries it with backoff, then marks it dead). SIGTERM/SIGINT cancel the backend call in
 * progress; jobs not finished are released (queued again, the attempt not counted) and the
 * process exits 0. --once exits when nothing is claimable. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/lm_flags.h"
#include "common/db.h"
#include "common/lm.h"
#include "common/log.h"
#include "common/role.h"
#include "common/synth.h"
#include "common/util.h"
#include "generator/generator.h"
#include "metaverifier/metaverifier.h"
#include "verifier/verifier.h"

enum serve_role { S_GEN, S_VER, S_MVER };

static volatile int g_stop; /* set by SIGTERM/SIGINT; also the lm's cancel flag */

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

/* The heartbeat thread: while a batch is with the backend it extends the batch's leases every
 * lease/4 seconds on its own connection, so a long generation is not reclaimed by another worker. */
struct serve_hb {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct dsm_db *db;
    const struct db_job *jobs; /* the batch being sampled (borrowed), n of them; NULL when idle */
    int n, quit, started;
    double lease_s;
    long beats, lost;
};

static void *hb_main(void *arg) {
    struct serve_hb *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->quit) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double every = h->lease_s / 4, at = (double)ts.tv_sec + ts.tv_nsec * 1e-9 + every;
        ts.tv_sec = (time_t)at;
        ts.tv_nsec = (long)((at - (double)ts.tv_sec) * 1e9);
        int w = 0;
        while (!h->quit && w != ETIMEDOUT) w = pthread_cond_timedwait(&h->cv, &h->mu, &ts);
        if (h->quit) break;
        for (int i = 0; h->jobs && i < h->n; i++) {
            struct dsm_err err = {0};
            if (db_job_heartbeat(h->db, &h->jobs[i], h->lease_s, &err)) {
                h->lost++;
                LOG_WARN("serve: job %lld: heartbeat: %s", (long long)h->jobs[i].id, err.msg);
                if (db_is_broken(h->db)) db_reconnect(h->db, 5, &err);
            } else {
                h->beats++;
            }
        }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* Point the heartbeat at jobs[0..n) (NULL: stop beating). */
static void hb_set(struct serve_hb *h, const struct db_job *jobs, int n) {
    if (!h->started) return;
    pthread_mutex_lock(&h->mu);
    h->jobs = jobs, h->n = n;
    pthread_mutex_unlock(&h->mu);
}

struct serve_cfg {
    enum serve_role role;
    const char *kind; /* job kind */
    struct dsm_lm *lm;
    struct role_template tmpl;
    struct role_template refine_tmpl; /* generator: the refinement template */
    struct lm_settings s; /* n = 1; seed = base */
    char worker[128];
    char model_id[32]; /* models.id of the backend's model, as text */
    double lease_s, backoff_s;
    struct serve_hb *hb;
};

#define SERVE_MAX_CANDIDATES 16 /* earlier proofs in one refinement prompt */
#define SERVE_MAX_ANALYSES 64   /* analyses shown per earlier proof */

/* One claimed job and what was built for it. */
struct serve_item {
    struct db_job job;
    char *prompt;
    uint64_t seed;
    char round[24], run_id[24]; /* "" = NULL */
    char ref_id[24];            /* problem_id / proof_id / verification_id as text */
    int64_t parents[SERVE_MAX_CANDIDATES]; /* a refinement's earlier proofs */
    int n_parents;
    char tmpl_id[340];          /* the template id(s) recorded in sampling.template */
    char *error;                /* preparation failed: fail the job with this */
    int skip;                   /* complete without a row (result says why) */
};

/* ---- reading the store ------------------------------------------------------------------- */

/* Fetch one text column of a one-row query with one parameter; *out new or NULL for SQL NULL. */
static int fetch_row(struct dsm_db *db, const char *sql, const char *id, PGresult **out, const char *what,
                     struct dsm_err *err) {
    const char *v[1] = {id};
    if (db_exec(db, sql, 1, v, out, err)) return err->code;
    if (PQntuples(*out) != 1) {
        PQclear(*out);
        *out = NULL;
        return dsm_errf(err, DSM_ENOTFOUND, "%s %s does not exist", what, id);
    }
    return DSM_OK;
}

/* A refinement job: read the earlier proofs of "refine" (each of problem it->ref_id) and the
 * analyses shown with each, and build the refinement prompt. */
static int prepare_refine(struct dsm_db *db, const struct serve_cfg *c, struct serve_item *it, json_t *refine,
                          const char *statement, struct dsm_err *err) {
    size_t nc = json_array_size(refine);
    if (!json_is_array(refine) || nc < 1 || nc > SERVE_MAX_CANDIDATES)
        return dsm_errf(err, DSM_EINVAL, "\"refine\" must be an array of 1..%d {\"proof_id\", \"analyses\"} objects",
                        SERVE_MAX_CANDIDATES);
    struct gen_candidate cand[SERVE_MAX_CANDIDATES];
    PGresult *pr[SERVE_MAX_CANDIDATES] = {0}, *ar[SERVE_MAX_CANDIDATES] = {0};
    const char *texts[SERVE_MAX_CANDIDATES][SERVE_MAX_ANALYSES];
    int rc = DSM_OK;
    memset(cand, 0, sizeof cand);
    for (size_t i = 0; i < nc && !rc; i++) {
        json_t *e = json_array_get(refine, i), *pid = json_object_get(e, "proof_id"), *an = json_object_get(e, "analyses");
        if (!json_is_integer(pid)) {
            rc = dsm_errf(err, DSM_EINVAL, "refine[%zu] lacks an integer \"proof_id\"", i);
            break;
        }
        char ps[24];
        snprintf(ps, sizeof ps, "%lld", (long long)json_integer_value(pid));
        const char *v2[2] = {ps, it->ref_id};
        if ((rc = db_exec(db, "SELECT proof, self_evaluation FROM proofs WHERE id = $1::bigint AND problem_id = $2::bigint",
                          2, v2, &pr[i], err)))
            break;
        if (PQntuples(pr[i]) != 1) {
            rc = dsm_errf(err, DSM_ENOTFOUND, "refine[%zu]: proof %s is not a proof of problem %s", i, ps, it->ref_id);
            break;
        }
        it->parents[it->n_parents++] = json_integer_value(pid);
        cand[i].proof = db_get(pr[i], 0, "proof");
        cand[i].analyses = texts[i];
        if (json_is_string(an) && !strcmp(json_string_value(an), "self")) {
            const char *se = db_get(pr[i], 0, "self_evaluation");
            if (se && *se) texts[i][cand[i].n_analyses++] = se;
        } else if (json_is_array(an) || !an) {
            if (json_array_size(an) > SERVE_MAX_ANALYSES) {
                rc = dsm_errf(err, DSM_EINVAL, "refine[%zu]: more than %d analyses", i, SERVE_MAX_ANALYSES);
                break;
            }
            char *ids = an ? json_dumps(an, JSON_COMPACT) : strdup("[]");
            if (!ids) {
                rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
                break;
            }
            for (char *q = ids; *q; q++) /* JSON array -> SQL array literal */
                if (*q == '[') *q = '{';
                else if (*q == ']') *q = '}';
            const char *v3[2] = {ids, ps};
            rc = db_exec(db,
                         "SELECT v.analysis FROM unnest($1::bigint[]) WITH ORDINALITY AS u(id, o) JOIN verifications v "
                         "ON v.id = u.id AND v.proof_id = $2::bigint ORDER BY u.o",
                         2, v3, &ar[i], err);
            free(ids);
            if (rc) {
                rc = dsm_errf(err, DSM_EINVAL, "refine[%zu]: \"analyses\" must be verification ids of proof %s", i, ps);
                break;
            }
            if ((size_t)PQntuples(ar[i]) != json_array_size(an)) {
                rc = dsm_errf(err, DSM_ENOTFOUND, "refine[%zu]: some analyses are not verifications of proof %s", i, ps);
                break;
            }
            for (int j = 0; j < PQntuples(ar[i]); j++)
                if (db_get(ar[i], j, "analysis")) texts[i][cand[i].n_analyses++] = db_get(ar[i], j, "analysis");
        } else {
            rc = dsm_errf(err, DSM_EINVAL, "refine[%zu]: \"analyses\" must be an array of verification ids or \"self\"", i);
        }
    }
    if (!rc) rc = gen_prompt_build_refine(&c->tmpl, &c->refine_tmpl, statement, cand, (int)nc, &it->prompt, err);
    if (!rc) snprintf(it->tmpl_id, sizeof it->tmpl_id, "%s+%s", c->tmpl.id, c->refine_tmpl.id);
    for (size_t i = 0; i < nc && i < SERVE_MAX_CANDIDATES; i++) {
        PQclear(pr[i]);
        PQclear(ar[i]);
    }
    return rc;
}

/* Read the payload and the rows it names; build the prompt. Problems go into it->error. */
static void serve_prepare(struct dsm_db *db, const struct serve_cfg *c, struct serve_item *it) {
    struct dsm_err err = {0};
    json_error_t je;
    json_t *p = json_loads(it->job.payload ? it->job.payload : "{}", 0, &je);
    PGresult *r = NULL;
    const char *key = c->role == S_GEN ? "problem_id" : c->role == S_VER ? "proof_id" : "verification_id";
    json_t *idv = p ? json_object_get(p, key) : NULL;
    char msg[600];
    if (!json_is_integer(idv)) {
        snprintf(msg, sizeof msg, "job %lld: payload lacks an integer \"%s\"", (long long)it->job.id, key);
        it->error = strdup(msg);
        json_decref(p);
        return;
    }
    snprintf(it->ref_id, sizeof it->ref_id, "%lld", (long long)json_integer_value(idv));
    json_t *sv = json_object_get(p, "seed");
    it->seed = json_is_integer(sv) ? (uint64_t)json_integer_value(sv) : c->s.seed + (uint64_t)it->job.id;
    json_t *rv = json_object_get(p, "round"), *uv = json_object_get(p, "run_id");
    if (json_is_integer(rv)) snprintf(it->round, sizeof it->round, "%lld", (long long)json_integer_value(rv));
    if (json_is_integer(uv)) snprintf(it->run_id, sizeof it->run_id, "%lld", (long long)json_integer_value(uv));
    json_t *refine = json_incref(json_object_get(p, "refine"));
    json_decref(p);

    int rc = DSM_OK;
    snprintf(it->tmpl_id, sizeof it->tmpl_id, "%s", c->tmpl.id);
    if (c->role == S_GEN) {
        if (!(rc = fetch_row(db, "SELECT statement FROM problems WHERE id = $1::bigint", it->ref_id, &r, "problem",
                             &err))) {
            if (refine && !json_is_null(refine))
                rc = prepare_refine(db, c, it, refine, db_get(r, 0, "statement"), &err);
            else
                rc = gen_prompt_build(&c->tmpl, db_get(r, 0, "statement"), &it->prompt, &err);
        }
    } else if (c->role == S_VER) {
        if (!(rc = fetch_row(db,
                             "SELECT pr.statement, p.proof FROM proofs p JOIN problems pr ON pr.id = p.problem_id "
                             "WHERE p.id = $1::bigint",
                             it->ref_id, &r, "proof", &err)))
            rc = ver_prompt_build(&c->tmpl, db_get(r, 0, "statement"), db_get(r, 0, "proof"), &it->prompt, &err);
    } else {
        if (!(rc = fetch_row(db,
                             "SELECT pr.statement, p.proof, v.analysis, v.raw_output FROM verifications v "
                             "JOIN proofs p ON p.id = v.proof_id JOIN problems pr ON pr.id = p.problem_id "
                             "WHERE v.id = $1::bigint",
                             it->ref_id, &r, "verification", &err))) {
            /* the meta-verifier judges the whole evaluation, its score included (whether the score
             * follows from the defects is part of the rating): the output after its last </think> */
            const char *an = db_get(r, 0, "analysis"), *raw = db_get(r, 0, "raw_output");
            struct role_span tail = {0};
            if (raw) role_after_think(raw, strlen(raw), &tail);
            char *whole = tail.p && tail.n ? strndup(tail.p, tail.n) : NULL;
            if (!an || !*an)
                it->skip = 1; /* a format failure has no analysis to judge */
            else
                rc = mver_prompt_build(&c->tmpl, db_get(r, 0, "statement"), db_get(r, 0, "proof"), whole ? whole : an,
                                       &it->prompt, &err);
            free(whole);
        }
    }
    PQclear(r);
    json_decref(refine);
    if (rc) {
        snprintf(msg, sizeof msg, "job %lld: %s", (long long)it->job.id, err.msg);
        it->error = strdup(msg);
    }
}

/* ---- writing the result ------------------------------------------------------------------ */

struct write_ctx {
    const struct serve_cfg *c;
    const struct serve_item *it;
    const struct lm_completion *comp;
    const char *sampling; /* JSON */
    int64_t row_id;
};

static int write_row(struct dsm_db *db, const struct db_job *job, void *vctx, struct dsm_err *err) {
    struct write_ctx *w = vctx;
    const struct serve_item *it = w->it;
    const struct lm_completion *comp = w->comp;
    int trunc = comp->finish != LM_FINISH_STOP;
    const char *finish = comp->finish == LM_FINISH_STOP ? "stop" : comp->finish == LM_FINISH_LENGTH ? "length" : NULL;
    char job_id[24], seed[24], score[32] = "", *analysis = NULL, *proof = NULL, *selfev = NULL;
    snprintf(job_id, sizeof job_id, "%lld", (long long)job->id);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)comp->seed);
    const char *model = w->c->model_id[0] ? w->c->model_id : NULL;
    const char *round = it->round[0] ? it->round : NULL, *run = it->run_id[0] ? it->run_id : NULL;
    PGresult *r = NULL;
    int rc;
    if (w->c->role == S_GEN) {
        struct gen_parsed g;
        gen_parse(comp->text, comp->text_len, trunc, &g);
        proof = g.proof.p ? strndup(g.proof.p, g.proof.n) : strdup("");
        selfev = g.self_evaluation.p ? strndup(g.self_evaluation.p, g.self_evaluation.n) : NULL;
        if (g.fail == ROLE_OK) snprintf(score, sizeof score, "%g", g.self_score);
        char meta[160];
        snprintf(meta, sizeof meta, "{\"format_ok\": %s, \"fail\": \"%s\"}", g.fail == ROLE_OK ? "true" : "false",
                 role_fail_name(g.fail));
        const char *v[11] = {it->ref_id, model, proof, selfev, score[0] ? score : NULL, comp->text, finish,
                             w->sampling, seed, round, run};
        const char *v2[13] = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], job_id, meta};
        rc = db_exec(db,
                     "INSERT INTO proofs (problem_id, model_id, proof, self_evaluation, self_score, raw_output, "
                     "finish_reason, sampling, seed, round, run_id, job_id, metadata) VALUES ($1::bigint, "
                     "$2::bigint, $3, $4, $5::numeric, $6, $7, $8::jsonb, $9::bigint, $10::int, $11::bigint, "
                     "$12::bigint, $13::jsonb) RETURNING id",
                     13, v2, &r, err);
    } else {
        enum role_fail fail;
        double sc;
        struct role_span an;
        if (w->c->role == S_VER) {
            struct ver_parsed vp;
            ver_parse(comp->text, comp->text_len, trunc, &vp);
            fail = vp.fail, sc = vp.score, an = vp.analysis;
        } else {
            struct mver_parsed mp;
            mver_parse(comp->text, comp->text_len, trunc, &mp);
            fail = mp.fail, sc = mp.score, an = mp.analysis;
        }
        analysis = an.p ? strndup(an.p, an.n) : NULL;
        if (fail == ROLE_OK) snprintf(score, sizeof score, "%g", sc);
        const char *v[12] = {it->ref_id, model, analysis, score[0] ? score : NULL, fail == ROLE_OK ? "true" : "false",
                             comp->text, finish, w->sampling, seed, round, run, job_id};
        const char *sql = w->c->role == S_VER
                              ? "INSERT INTO verifications (proof_id, model_id, analysis, score, format_ok, raw_output, "
                                "finish_reason, sampling, seed, round, run_id, job_id) VALUES ($1::bigint, $2::bigint, "
                                "$3, $4::numeric, $5::boolean, $6, $7, $8::jsonb, $9::bigint, $10::int, $11::bigint, "
                                "$12::bigint) RETURNING id"
                              : "INSERT INTO meta_verifications (verification_id, model_id, analysis, score, format_ok, "
                                "raw_output, finish_reason, sampling, seed, round, run_id, job_id) VALUES ($1::bigint, "
                                "$2::bigint, $3, $4::numeric, $5::boolean, $6, $7, $8::jsonb, $9::bigint, $10::int, "
                                "$11::bigint, $12::bigint) RETURNING id";
        rc = db_exec(db, sql, 12, v, &r, err);
    }
    if (!rc) w->row_id = db_get_i64(r, 0, "id", 0);
    PQclear(r);
    for (int i = 0; !rc && i < it->n_parents; i++) { /* a refinement: where it came from */
        char child[24], parent[24];
        snprintf(child, sizeof child, "%lld", (long long)w->row_id);
        snprintf(parent, sizeof parent, "%lld", (long long)it->parents[i]);
        const char *pv[2] = {child, parent};
        rc = db_exec(db, "INSERT INTO proof_parents (proof_id, parent_id) VALUES ($1::bigint, $2::bigint) ON CONFLICT DO NOTHING",
                     2, pv, NULL, err);
    }
    free(analysis);
    free(proof);
    free(selfev);
    return rc;
}

/* Put a claimed job back in the queue without counting the attempt (shutdown). */
static void serve_release(struct dsm_db *db, const struct db_job *job) {
    struct dsm_err err = {0};
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)job->id);
    const char *v[2] = {id, job->token};
    if (db_exec(db,
                "UPDATE jobs SET state = 'queued', lease_token = NULL, lease_until = NULL, lease_owner = NULL, "
                "attempts = greatest(attempts - 1, 0), run_after = now(), updated_at = now() "
                "WHERE id = $1::bigint AND lease_token = $2::uuid AND state = 'running'",
                2, v, NULL, &err))
        LOG_WARN("serve: could not release job %lld: %s", (long long)job->id, err.msg);
}

static void serve_fail(struct dsm_db *db, const struct serve_cfg *c, const struct db_job *job, const char *msg) {
    struct dsm_err err = {0};
    int dead = 0;
    if (db_job_fail(db, job, msg, c->backoff_s, &dead, &err))
        LOG_WARN("serve: job %lld: could not record the failure: %s", (long long)job->id, err.msg);
    else
        LOG_WARN("serve: job %lld failed%s: %s", (long long)job->id, dead ? " (dead)" : "", msg);
}

struct serve_stats {
    long done, format_fail, failed, released, duplicate;
};

/* Claim, run and complete one batch. *claimed = jobs claimed (0: queue empty). */
static int serve_batch(struct dsm_db *db, struct serve_cfg *c, int max, int *claimed, struct serve_stats *st,
                       struct dsm_err *err) {
    struct db_job jobs[64];
    struct serve_item items[64];
    struct lm_request reqs[64];
    struct lm_result res[64];
    struct chat_msg msgs[64];
    int n = 0, nreq = 0;
    const char *kinds[1] = {c->kind};
    memset(items, 0, sizeof items);
    memset(res, 0, sizeof res);
    *claimed = 0;
    if (db_job_claim(db, kinds, 1, c->worker, c->lease_s, max, jobs, &n, err)) return err->code;
    *claimed = n;
    if (!n) return DSM_OK;
    for (int i = 0; i < n; i++) {
        items[i].job = jobs[i];
        serve_prepare(db, c, &items[i]);
        if (items[i].error || items[i].skip) continue;
        msgs[nreq] = (struct chat_msg){"user", items[i].prompt};
        reqs[nreq] = (struct lm_request){&msgs[nreq], 1, c->s};
        reqs[nreq].s.seed = items[i].seed;
        nreq++;
    }
    double t0 = dsm_now();
    hb_set(c->hb, jobs, n);
    int rc = nreq ? lm_sample(c->lm, reqs, nreq, res, err) : DSM_OK;
    hb_set(c->hb, NULL, 0);
    if (rc) { /* a bad setting: nothing was sent; fail every job with it */
        for (int i = 0; i < n; i++) {
            if (!items[i].error && !items[i].skip) items[i].error = strdup(err->msg);
        }
        nreq = 0;
        rc = DSM_OK;
    }
    LOG_DEBUG("serve: %d job(s), %d request(s) in %.2f s", n, nreq, dsm_now() - t0);
    int ri = 0;
    for (int i = 0; i < n && !rc; i++) {
        struct serve_item *it = &items[i];
        if (it->error) {
            serve_fail(db, c, &it->job, it->error);
            st->failed++;
            continue;
        }
        int stored = 0;
        if (it->skip) {
            if ((rc = db_job_complete(db, &it->job, "{\"skipped\": \"the verification has no analysis\"}",
                                      c->worker, NULL, NULL, &stored, err)))
                break;
            st->done++;
            continue;
        }
        struct lm_result *r = &res[ri];
        ri++;
        if (r->status) {
            if (r->cancelled || g_stop) {
                serve_release(db, &it->job);
                st->released++;
            } else {
                serve_fail(db, c, &it->job, r->error);
                st->failed++;
            }
            continue;
        }
        json_t *prov = lm_provenance_json(c->lm, &reqs[ri - 1].s, it->tmpl_id);
        if (prov && r->c[0].finish == LM_FINISH_OTHER)
            json_object_set_new(prov, "finish_reason_raw", json_string(r->c[0].finish_raw));
        if (prov) json_object_set_new(prov, "completion_tokens", json_integer(r->c[0].n_tokens));
        char *sampling = prov ? json_dumps(prov, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
        json_decref(prov);
        if (!sampling) {
            rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
            break;
        }
        struct write_ctx w = {c, it, &r->c[0], sampling, 0};
        rc = db_job_complete(db, &it->job, NULL, c->worker, write_row, &w, &stored, err);
        free(sampling);
        if (rc) break;
        if (!stored) {
            st->duplicate++;
            continue;
        }
        st->done++;
        /* well formed? read back from what was written: cheap to recompute */
        int trunc = r->c[0].finish != LM_FINISH_STOP;
        enum role_fail f;
        if (c->role == S_GEN) {
            struct gen_parsed g;
            gen_parse(r->c[0].text, r->c[0].text_len, trunc, &g);
            f = g.fail;
        } else if (c->role == S_VER) {
            struct ver_parsed vp;
            ver_parse(r->c[0].text, r->c[0].text_len, trunc, &vp);
            f = vp.fail;
        } else {
            struct mver_parsed mp;
            mver_parse(r->c[0].text, r->c[0].text_len, trunc, &mp);
            f = mp.fail;
        }
        if (f != ROLE_OK) st->format_fail++;
        LOG_INFO("serve: job %lld -> %s row %lld (%s)", (long long)it->job.id,
                 c->role == S_GEN ? "proofs" : c->role == S_VER ? "verifications" : "meta_verifications",
                 (long long)w.row_id, role_fail_name(f));
    }
    if (rc) { /* the store failed mid-batch: give back what was not completed */
        for (int i = 0; i < n; i++) serve_release(db, &items[i].job);
    }
    for (int i = 0; i < n; i++) {
        free(items[i].prompt);
        free(items[i].error);
        db_job_clear(&items[i].job);
    }
    for (int i = 0; i < nreq; i++) lm_result_free(&res[i]);
    return rc;
}

/* Record the backend's model in models (kind remote for http, checkpoint for native); its id
 * goes into every row. */
static int serve_model_row(struct dsm_db *db, struct serve_cfg *c, const char *backend, struct dsm_err *err) {
    const char *name = lm_model_name(c->lm);
    int http = !strcmp(lm_kind(c->lm), "http");
    const char *spec = backend;
    if (!strncmp(spec, "native:", 7)) spec += 7;
    else if (!strncmp(spec, "http:", 5) && strncmp(spec, "http://", 7)) spec += 5;
    const char *role = c->role == S_GEN ? "generator" : c->role == S_VER ? "verifier" : "metaverifier";
    int64_t id = 0;
    int rc = db_model_register(db, name, http ? "remote" : "checkpoint", spec, role, &id, err);
    if (!rc) snprintf(c->model_id, sizeof c->model_id, "%lld", (long long)id);
    return rc;
}

int cmd_serve(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "submissions")) return cmd_serve_submissions(argc - 1, argv + 1);
    struct cli_lm_flags lf = {0};
    int once = 0, batch = 1, max_tokens = 4096, top_k = 0;
    long max_jobs = 0, seed = 0;
    double temperature = 1.0, top_p = 0.95, lease = 120, backoff = 5, idle = 5;
    const char *worker = NULL, *template_path = NULL, *refine_path = NULL;
    const struct cli_opt opts[] = {
        {"--once", CLI_FLAG, &once, NULL, "exit when no job is claimable (instead of waiting for more)"},
        {"--max-jobs", CLI_LONG, &max_jobs, "N", "exit after N jobs (0 = no limit)"},
        {"--temperature", CLI_DOUBLE, &temperature, "T", "default 1 (the V2 setting)"},
        {"--top-p", CLI_DOUBLE, &top_p, "P", "default 0.95 (the V2 setting)"},
        {"--top-k", CLI_INT, &top_k, "K", "0 = off (default)"},
        {"--max-tokens", CLI_INT, &max_tokens, "N", "new tokens at most (default 4096)"},
        {"--seed", CLI_LONG, &seed, "N", "base seed: a job samples with its payload's \"seed\", else N + job id"},
        {"--lease", CLI_DOUBLE, &lease, "S", "job lease in seconds, renewed every S/4 while the backend works (default 120)"},
        {"--backoff", CLI_DOUBLE, &backoff, "S", "first retry delay of a failed job (default 5, doubled per attempt)"},
        {"--idle-wait", CLI_DOUBLE, &idle, "S", "longest wait for a new-job notification (default 5)"},
        {"--worker", CLI_STR, &worker, "NAME", "lease owner name (default serve-ROLE-PID)"},
        {"--template", CLI_STR, &template_path, "FILE", "prompt template instead of the built-in one (id file:NAME@hash); 'synth' = the synthetic domain's compact one"},
        {"--refine-template", CLI_STR, &refine_path, "FILE", "generator: refinement template instead of the built-in one ({{instruction}}, {{candidates}})"},
        CLI_LM_OPTS(lf),
    };
    const struct cli_cmd_spec spec = {
        "serve", "generator|verifier|metaverifier --backend SPEC [--concurrency N] [--once] [--max-jobs N] [options]",
        "Run a model role as a worker of the store's job queue: claim jobs of kind generate,\n"
        "verify or metaverify, build the prompt, sample through the backend, parse, and write the\n"
        "proofs / verifications / meta_verifications row with its provenance while completing the\n"
        "job (once, whatever happens). SIGTERM releases unfinished jobs and exits 0. docs/serve.md.",
        opts, DSM_ARRAY_LEN(opts), 1};
    char *pos[1] = {0};
    int npos = 0, rc = cli_parse(&spec, argc, argv, pos, 1, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    struct serve_cfg c;
    memset(&c, 0, sizeof c);
    if (npos != 1) return cli_usage_error(spec.name, "name the role: generator, verifier or metaverifier");
    if (!strcmp(pos[0], "generator")) {
        c.role = S_GEN, c.kind = "generate";
        gen_template_generate(&c.tmpl);
        gen_template_refine(&c.refine_tmpl);
    } else if (!strcmp(pos[0], "verifier")) {
        c.role = S_VER, c.kind = "verify";
        ver_template_verify(&c.tmpl);
    } else if (!strcmp(pos[0], "metaverifier")) {
        c.role = S_MVER, c.kind = "metaverify";
        mver_template_metaverify(&c.tmpl);
    } else {
        return cli_usage_error(spec.name, "unknown role '%s' (generator, verifier or metaverifier)", pos[0]);
    }
    if (!lf.backend) return cli_usage_error(spec.name, "--backend SPEC is required (native:DIR or http:URL)");
    if (lf.concurrency) batch = lf.concurrency; /* jobs claimed and sampled together */
    if (batch < 1 || batch > 64) return cli_usage_error(spec.name, "--concurrency must be in 1..64");
    if (max_tokens < 1 || max_jobs < 0 || seed < 0) return cli_usage_error(spec.name, "--max-tokens >= 1, --max-jobs >= 0, --seed >= 0");
    if (temperature < 0 || !(top_p > 0 && top_p <= 1) || top_k < 0)
        return cli_usage_error(spec.name, "need --temperature >= 0, --top-p in (0, 1], --top-k >= 0");
    if (!(lease >= 1) || !(backoff >= 0) || !(idle > 0)) return cli_usage_error(spec.name, "need --lease >= 1, --backoff >= 0, --idle-wait > 0");
    lm_settings_default(&c.s);
    c.s.temperature = (float)temperature;
    c.s.top_p = (float)top_p;
    c.s.top_k = top_k;
    c.s.max_tokens = max_tokens;
    c.s.seed = (uint64_t)seed;
    c.lease_s = lease, c.backoff_s = backoff;
    if (worker)
        snprintf(c.worker, sizeof c.worker, "%s", worker);
    else
        snprintf(c.worker, sizeof c.worker, "serve-%s-%ld", pos[0], (long)getpid());

    struct dsm_err err = {0};
    if (template_path && !strcmp(template_path, "synth"))
        synth_template(c.role == S_GEN ? SYNTH_ROLE_GENERATOR : c.role == S_VER ? SYNTH_ROLE_VERIFIER : SYNTH_ROLE_METAVERIFIER,
                       &c.tmpl);
    else if (template_path && role_template_load(template_path, &c.tmpl, &err))
        return cli_fail(spec.name, &err);
    if (refine_path && c.role != S_GEN) {
        role_template_free(&c.tmpl);
        return cli_usage_error(spec.name, "--refine-template is for the generator");
    }
    if (refine_path && role_template_load(refine_path, &c.refine_tmpl, &err)) {
        role_template_free(&c.tmpl);
        return cli_fail(spec.name, &err);
    }
    struct dsm_db *db = NULL;
    struct db_open_opts o = {.migrate = 1};
    if (db_open(&o, &db, &err)) {
        role_template_free(&c.tmpl);
        role_template_free(&c.refine_tmpl);
        return cli_fail(spec.name, &err);
    }
    int xc = cli_lm_open(spec.name, &lf, &c.lm);
    if (xc) {
        role_template_free(&c.tmpl);
        role_template_free(&c.refine_tmpl);
        db_close(db);
        return xc;
    }
    cli_catch_stop_signals(on_signal);
    lm_set_cancel(c.lm, &g_stop);

    struct serve_stats st = {0};
    double t0 = dsm_now();
    struct serve_hb hb;
    memset(&hb, 0, sizeof hb);
    hb.lease_s = lease;
    c.hb = &hb;
    struct db_open_opts ho = {.conninfo = db_conninfo(db)};
    if ((rc = db_open(&ho, &hb.db, &err))) goto done;
    pthread_mutex_init(&hb.mu, NULL);
    pthread_cond_init(&hb.cv, NULL);
    if (pthread_create(&hb.th, NULL, hb_main, &hb)) {
        rc = dsm_errf(&err, DSM_EIO, "cannot start the heartbeat thread");
        goto done;
    }
    hb.started = 1;
    if ((rc = serve_model_row(db, &c, lf.backend, &err))) goto done;
    if (!once && (rc = db_listen(db, "dsm_jobs", &err))) goto done;
    LOG_INFO("serve: %s as %s, backend %s (%s), template %s", pos[0], c.worker, lm_kind(c.lm), lm_model_name(c.lm),
             c.tmpl.id);
    while (!g_stop) {
        long total = st.done + st.failed + st.duplicate;
        if (max_jobs && total >= max_jobs) break;
        int max = batch;
        if (max_jobs && max_jobs - total < max) max = (int)(max_jobs - total);
        int claimed = 0;
        if ((rc = serve_batch(db, &c, max, &claimed, &st, &err))) {
            if (!db_is_broken(db)) goto done;
            LOG_WARN("serve: %s; reconnecting", err.msg);
            if ((rc = db_reconnect(db, 60, &err))) goto done;
            continue;
        }
        if (claimed) continue;
        if (once) break;
        if ((rc = db_wait_idle(db, idle, &g_stop, &err))) goto done;
    }
    rc = DSM_OK;
done:
    fprintf(stderr,
            "dsm serve %s: %ld job(s) done (%ld format failure(s)), %ld failed, %ld released, %ld already done, "
            "%.2f s\n",
            pos[0], st.done, st.format_fail, st.failed, st.released, st.duplicate, dsm_now() - t0);
    if (hb.started) {
        pthread_mutex_lock(&hb.mu);
        hb.quit = 1;
        pthread_cond_signal(&hb.cv);
        pthread_mutex_unlock(&hb.mu);
        pthread_join(hb.th, NULL);
        LOG_DEBUG("serve: %ld heartbeat(s), %ld lost", hb.beats, hb.lost);
    }
    if (hb.db) {
        pthread_mutex_destroy(&hb.mu);
        pthread_cond_destroy(&hb.cv);
    }
    db_close(hb.db);
    role_template_free(&c.tmpl);
    role_template_free(&c.refine_tmpl);
    lm_destroy(c.lm);
    db_close(db);
    return rc ? cli_fail(spec.name, &err) : 0;
}
