/* cmd_prove.c - `dsm prove`: the test-time procedures of DeepSeekMath-V2 (SPEC §2) for one
 * problem, run through the store and the role services (docs/prove.md):
 *
 *   one-shot  K proofs; each verified N times and judged by the majority of its N scores (ties go
 *             to the lower score), then the mean; the best is printed.
 *   refine    T independent threads; each writes a proof and, while its self-score is below 1,
 *             re-prompts the generator with that proof and its self-evaluation (the refinement
 *             prompt), at most A attempts. The last proof of each thread is verified N times; the
 *             best by mean score is printed.
 *   search    a pool of P proofs, each verified N times; each round writes P refinements, spread
 *             over the top R proofs by mean score, each shown with up to C of its analyses that
 *             report issues (lowest scores first), and verifies them N times. It stops when a proof
 *             passes all N analyses or after the round limit; the best by mean score is printed.
 *
 * Everything is a job with a dedup key under one runs row (kind 'prove'): a second run with the
 * same --run continues where a killed one stopped, and redoes nothing. The work is done by
 * `dsm serve generator|verifier` children this command starts for each stage (backends from
 * --generator / --verifier), or, with --external, by services running elsewhere.
 */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/child.h"
#include "cli/stage.h"
#include "cli/cli.h"
#include "common/db.h"
#include "common/log.h"
#include "common/util.h"

enum prove_mode { M_ONESHOT, M_REFINE, M_SEARCH };
static const char *const mode_names[] = {"one-shot", "refine", "search"};

struct prove {
    struct cli_stage st; /* store, run, backends, sampling, seed, logs */
    enum prove_mode mode;
    int proofs, analyses, threads, attempts, pool, top, shown, rounds;
    int tty, quiet;
    char problem_s[24];
};

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
    g_stop = sig;
    if (cli_child_pid > 0) kill(cli_child_pid, SIGTERM);
}

/* ---- what the store holds ------------------------------------------------------------------------- */

struct cand {
    int64_t id;
    char key[96];
    double self_score; /* -1: none */
    int has_proof;
    int n, h[3];       /* well-formed analyses; histogram of 0, 0.5, 1 */
    double mean;       /* -1 without analyses */
};

/* The proofs of this run whose job key (after "prove:<run>:") matches the LIKE pattern, by key,
 * with their analyses' statistics. *out new (caller frees). */
static int cands_get(struct prove *P, const char *pattern, struct cand **out, int *n, struct dsm_err *err) {
    char pat[160];
    snprintf(pat, sizeof pat, "prove:%s:%s", P->st.run_s, pattern);
    const char *v[2] = {P->st.run_s, pat};
    PGresult *r = NULL;
    *out = NULL, *n = 0;
    int rc = db_exec(P->st.db,
                     "SELECT p.id, j.payload->>'key' AS key, p.self_score, p.proof <> '' AS has_proof, "
                     "count(v.score) AS n, count(*) FILTER (WHERE v.score = 0) AS h0, count(*) FILTER (WHERE v.score = 0.5) "
                     "AS h05, count(*) FILTER (WHERE v.score = 1) AS h1, avg(v.score)::float8 AS mean FROM proofs p "
                     "JOIN jobs j ON j.id = p.job_id LEFT JOIN verifications v ON v.proof_id = p.id AND v.run_id = $1::bigint "
                     "AND v.kind = 'analysis' WHERE j.run_id = $1::bigint AND j.kind = 'generate' AND j.payload->>'key' LIKE $2 "
                     "GROUP BY p.id, j.payload->>'key' ORDER BY length(j.payload->>'key'), j.payload->>'key'",
                     2, v, &r, err);
    if (rc) return rc;
    int m = PQntuples(r);
    struct cand *c = calloc((size_t)m + 1, sizeof *c);
    if (!c) {
        PQclear(r);
        return dsm_errf(err, DSM_ENOMEM, "out of memory");
    }
    for (int i = 0; i < m; i++) {
        c[i].id = db_get_i64(r, i, "id", 0);
        snprintf(c[i].key, sizeof c[i].key, "%s", db_get(r, i, "key") + strlen(pat) - strlen(pattern));
        c[i].self_score = db_get(r, i, "self_score") ? atof(db_get(r, i, "self_score")) : -1;
        c[i].has_proof = !strcmp(db_get(r, i, "has_proof"), "t");
        c[i].n = (int)db_get_i64(r, i, "n", 0);
        c[i].h[0] = (int)db_get_i64(r, i, "h0", 0), c[i].h[1] = (int)db_get_i64(r, i, "h05", 0);
        c[i].h[2] = (int)db_get_i64(r, i, "h1", 0);
        c[i].mean = db_get(r, i, "mean") ? atof(db_get(r, i, "mean")) : -1;
    }
    PQclear(r);
    *out = c, *n = m;
    return DSM_OK;
}

/* Enqueue N analyses of every candidate with a proof, then run the verifier. */
static int verify_all(struct prove *P, const struct cand *c, int n, int round, struct dsm_err *err) {
    json_t *arr = json_array();
    char key[160];
    for (int i = 0; i < n; i++) {
        if (!c[i].has_proof) continue;
        for (int j = 0; j < P->analyses; j++) {
            snprintf(key, sizeof key, "v:%lld:%d", (long long)c[i].id, j);
            cli_stage_payload(&P->st, arr, "proof_id", c[i].id, round, key, NULL);
        }
    }
    int rc = cli_stage_enqueue(&P->st, "verify", arr, err);
    char what[64];
    snprintf(what, sizeof what, "round %d: verify", round);
    return rc ? rc : cli_stage_drain(&P->st, "verify", what, err);
}

/* The majority score of a candidate's analyses (ties to the lower score); -1 without any. */
static double majority(const struct cand *c) {
    if (!c->n) return -1;
    int best = 0;
    for (int s = 1; s < 3; s++)
        if (c->h[s] > c->h[best]) best = s;
    return best * 0.5;
}

/* Is a better than b? one-shot: majority, then mean; otherwise mean, then analyses. Ties: the earlier. */
static int better(const struct prove *P, const struct cand *a, const struct cand *b) {
    if (!b) return 1;
    if (P->mode == M_ONESHOT && majority(a) != majority(b)) return majority(a) > majority(b);
    if (a->mean != b->mean) return a->mean > b->mean;
    return 0;
}

static int passes(const struct prove *P, const struct cand *c) { return c->n == P->analyses && c->h[2] == P->analyses; }

/* ---- the three procedures ------------------------------------------------------------------------- */

static int run_oneshot(struct prove *P, struct cand **out, int *n, int *rounds, struct dsm_err *err) {
    json_t *arr = json_array();
    char key[64];
    for (int i = 0; i < P->proofs; i++) {
        snprintf(key, sizeof key, "g:0:%d", i);
        cli_stage_payload(&P->st, arr, "problem_id", atoll(P->problem_s), 0, key, NULL);
    }
    int rc = cli_stage_enqueue(&P->st, "generate", arr, err);
    if (!rc) rc = cli_stage_drain(&P->st, "generate", "one-shot: generate", err);
    if (!rc) rc = cands_get(P, "g:0:%", out, n, err);
    if (!rc) rc = verify_all(P, *out, *n, 0, err);
    free(*out);
    *out = NULL;
    *rounds = 1;
    return rc ? rc : cands_get(P, "g:0:%", out, n, err);
}

static int run_refine(struct prove *P, struct cand **out, int *n, int *rounds, struct dsm_err *err) {
    int64_t *last = calloc((size_t)P->threads, sizeof *last); /* each thread's latest proof */
    int *done = calloc((size_t)P->threads, sizeof *done), rc = DSM_OK;
    if (!last || !done) {
        free(last);
        free(done);
        return dsm_errf(err, DSM_ENOMEM, "out of memory");
    }
    char key[64], pat[64], what[64];
    int a = 0;
    for (; a < P->attempts && !rc; a++) {
        json_t *arr = json_array();
        int active = 0;
        for (int t = 0; t < P->threads; t++) {
            if (done[t]) continue;
            active++;
            snprintf(key, sizeof key, "r:%d:%d", a, t);
            json_t *ref = a ? json_pack("[{s:I,s:s}]", "proof_id", (json_int_t)last[t], "analyses", "self") : NULL;
            cli_stage_payload(&P->st, arr, "problem_id", atoll(P->problem_s), a, key, ref);
        }
        if (!active) {
            json_decref(arr);
            break;
        }
        snprintf(what, sizeof what, "attempt %d: generate", a + 1);
        if ((rc = cli_stage_enqueue(&P->st, "generate", arr, err)) || (rc = cli_stage_drain(&P->st, "generate", what, err))) break;
        struct cand *c = NULL;
        int m = 0;
        snprintf(pat, sizeof pat, "r:%d:%%", a);
        if ((rc = cands_get(P, pat, &c, &m, err))) break;
        for (int i = 0; i < m; i++) {
            int t = atoi(strrchr(c[i].key, ':') + 1);
            if (t < 0 || t >= P->threads) continue;
            last[t] = c[i].id;
            if (c[i].self_score == 1) done[t] = 1;
        }
        free(c);
        if (!P->quiet) {
            int fin = 0;
            for (int t = 0; t < P->threads; t++) fin += done[t];
            fprintf(stderr, "attempt %d: %d of %d thread(s) have a proof graded 1 by itself\n", a + 1, fin, P->threads);
        }
    }
    *rounds = a;
    if (!rc) { /* verify each thread's final proof */
        struct cand *all = NULL;
        int m = 0;
        if (!(rc = cands_get(P, "r:%", &all, &m, err))) {
            int k = 0;
            for (int i = 0; i < m; i++)
                for (int t = 0; t < P->threads; t++)
                    if (last[t] == all[i].id) all[k++] = all[i];
            if (!(rc = verify_all(P, all, k, a, err))) {
                free(all);
                all = NULL;
                if (!(rc = cands_get(P, "r:%", &all, &m, err))) {
                    k = 0;
                    for (int i = 0; i < m; i++)
                        for (int t = 0; t < P->threads; t++)
                            if (last[t] == all[i].id) all[k++] = all[i];
                    *out = all, *n = k;
                    all = NULL;
                }
            }
            free(all);
        }
    }
    free(last);
    free(done);
    return rc;
}

/* The analyses shown with a candidate in a search refinement: up to P->shown of its analyses
 * reporting issues, lowest score first (then by id). New JSON array of ids. */
static int issues_of(struct prove *P, int64_t proof, json_t **ids, struct dsm_err *err) {
    char ps[24], lim[16];
    snprintf(ps, sizeof ps, "%lld", (long long)proof);
    snprintf(lim, sizeof lim, "%d", P->shown);
    const char *v[3] = {ps, P->st.run_s, lim};
    PGresult *r = NULL;
    int rc = db_exec(P->st.db,
                     "SELECT id FROM verifications WHERE proof_id = $1::bigint AND run_id = $2::bigint AND kind = 'analysis' "
                     "AND score < 1 ORDER BY score, id LIMIT $3::int",
                     3, v, &r, err);
    if (rc) return rc;
    *ids = json_array();
    for (int i = 0; i < PQntuples(r); i++) json_array_append_new(*ids, json_integer(db_get_i64(r, i, "id", 0)));
    PQclear(r);
    return DSM_OK;
}

static int cmp_mean_desc(const void *x, const void *y) {
    const struct cand *a = x, *b = y;
    if (a->mean != b->mean) return a->mean < b->mean ? 1 : -1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static int run_search(struct prove *P, struct cand **out, int *n, int *rounds, struct dsm_err *err) {
    char key[64], pat[64], what[64];
    int rc = DSM_OK, r = 0;
    for (;; r++) {
        json_t *arr = json_array();
        struct cand *pool = NULL;
        int m = 0;
        if (r > 0) { /* refine the top proofs of the pool so far */
            if ((rc = cands_get(P, "s:%", &pool, &m, err))) {
                json_decref(arr);
                break;
            }
            qsort(pool, (size_t)m, sizeof *pool, cmp_mean_desc);
            int top = m < P->top ? m : P->top;
            while (top > 0 && !pool[top - 1].has_proof) top--;
            for (int i = 0; i < P->pool && top > 0 && !rc; i++) {
                json_t *ids = NULL;
                if ((rc = issues_of(P, pool[i % top].id, &ids, err))) break;
                snprintf(key, sizeof key, "s:%d:%d", r, i);
                cli_stage_payload(&P->st, arr, "problem_id", atoll(P->problem_s), r, key,
                            json_pack("[{s:I,s:o}]", "proof_id", (json_int_t)pool[i % top].id, "analyses", ids));
            }
            free(pool);
            if (rc) {
                json_decref(arr);
                break;
            }
        } else {
            for (int i = 0; i < P->pool; i++) {
                snprintf(key, sizeof key, "s:0:%d", i);
                cli_stage_payload(&P->st, arr, "problem_id", atoll(P->problem_s), 0, key, NULL);
            }
        }
        snprintf(what, sizeof what, "round %d: generate", r);
        if ((rc = cli_stage_enqueue(&P->st, "generate", arr, err)) || (rc = cli_stage_drain(&P->st, "generate", what, err))) break;
        snprintf(pat, sizeof pat, "s:%d:%%", r);
        if ((rc = cands_get(P, pat, &pool, &m, err))) break;
        rc = verify_all(P, pool, m, r, err);
        free(pool);
        if (rc || (rc = cands_get(P, "s:%", &pool, &m, err))) break;
        int passed = 0;
        double best = -1;
        for (int i = 0; i < m; i++) {
            passed += passes(P, &pool[i]);
            if (pool[i].mean > best) best = pool[i].mean;
        }
        if (!P->quiet)
            fprintf(stderr, "round %d: %d proof(s) in the pool, best mean score %.3f, %d pass all %d analyses\n", r, m,
                    best, passed, P->analyses);
        if (passed || r + 1 > P->rounds) {
            *out = pool, *n = m;
            break;
        }
        free(pool);
    }
    *rounds = r + 1;
    return rc;
}

/* ---- the run row, the result ---------------------------------------------------------------------- */

static int run_open(struct prove *P, const char *name, const char *problem_text, long problem_id, struct dsm_err *err) {
    PGresult *r = NULL;
    int rc;
    if (problem_text) {
        const char *v[1] = {problem_text};
        if ((rc = db_exec(P->st.db,
                          "INSERT INTO problems (source, source_key, statement) VALUES ('prove', md5($1), $1) "
                          "ON CONFLICT (source, source_key) DO UPDATE SET source = EXCLUDED.source RETURNING id",
                          1, v, &r, err)))
            return rc;
    } else {
        char ids[24];
        snprintf(ids, sizeof ids, "%ld", problem_id);
        const char *v[1] = {ids};
        if ((rc = db_exec(P->st.db, "SELECT id FROM problems WHERE id = $1::bigint", 1, v, &r, err))) return rc;
        if (PQntuples(r) != 1) {
            PQclear(r);
            return dsm_errf(err, DSM_ENOTFOUND, "problem %ld does not exist", problem_id);
        }
    }
    snprintf(P->problem_s, sizeof P->problem_s, "%s", db_get(r, 0, "id"));
    PQclear(r);
    json_t *cfg = json_pack("{s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:i,s:I,s:s,s:s,s:s?}", "mode",
                            mode_names[P->mode], "problem_id", P->problem_s, "proofs", P->proofs, "analyses", P->analyses,
                            "threads", P->threads, "attempts", P->attempts, "pool", P->pool, "top", P->top, "shown",
                            P->shown, "rounds", P->rounds, "temperature", P->st.temperature, "top_p", P->st.top_p, "max_tokens",
                            P->st.max_tokens, "seed", (json_int_t)P->st.seed, "generator", P->st.backend[0], "verifier",
                            P->st.backend[1], "template", P->st.template_);
    char *cfg_text = cfg ? json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(cfg);
    if (!cfg_text) return dsm_errf(err, DSM_ENOMEM, "out of memory");
    char rname[200];
    if (name)
        snprintf(rname, sizeof rname, "%s", name);
    else
        snprintf(rname, sizeof rname, "prove-%s-%016llx", P->problem_s, (unsigned long long)cli_stage_seed(0, cfg_text));
    rc = cli_stage_run_open(&P->st, "prove", rname, cfg_text, err);
    free(cfg_text);
    if (!rc) LOG_INFO("prove: run %s (%s), problem %s", P->st.run_s, rname, P->problem_s);
    return rc;
}

static int print_result(struct prove *P, const struct cand *c, int n, int rounds, int as_json, struct dsm_err *err) {
    const struct cand *best = NULL;
    int passed = 0, total = 0;
    for (int i = 0; i < n; i++) {
        if (!c[i].has_proof) continue;
        if (better(P, &c[i], best)) best = &c[i];
        passed += passes(P, &c[i]);
    }
    PGresult *r = NULL;
    const char *v[1] = {P->st.run_s};
    int rc = db_exec(P->st.db, "SELECT count(*) AS n FROM proofs WHERE run_id = $1::bigint", 1, v, &r, err);
    if (rc) return rc;
    total = (int)db_get_i64(r, 0, "n", 0);
    PQclear(r);
    if (!best) return dsm_errf(err, DSM_EIO, "no well-formed proof among %d generated (see %s/generator.log)", total, P->st.dir);
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)best->id);
    const char *v2[1] = {ids};
    if ((rc = db_exec(P->st.db, "SELECT proof FROM proofs WHERE id = $1::bigint", 1, v2, &r, err))) return rc;
    const char *proof = db_get(r, 0, "proof");
    json_t *o = json_pack("{s:I,s:s,s:I,s:i,s:i,s:i,s:{s:I,s:s,s:o,s:o,s:i,s:{s:i,s:i,s:i},s:b,s:o}}", "run_id",
                          (json_int_t)P->st.run_id, "mode", mode_names[P->mode], "problem_id",
                          (json_int_t)atoll(P->problem_s), "rounds", rounds, "proofs", total, "passing", passed, "best",
                          "proof_id", (json_int_t)best->id, "proof", proof ? proof : "", "mean_score",
                          best->mean < 0 ? json_null() : json_real(best->mean), "majority_score",
                          best->n ? json_real(majority(best)) : json_null(), "analyses", best->n, "histogram", "0",
                          best->h[0], "0.5", best->h[1], "1", best->h[2], "passes_all", passes(P, best), "self_score",
                          best->self_score < 0 ? json_null() : json_real(best->self_score));
    PQclear(r);
    if (!o) return dsm_errf(err, DSM_ENOMEM, "out of memory");
    if (as_json) {
        char *t = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        if (t) printf("%s\n", t);
        free(t);
    } else {
        json_t *b = json_object_get(o, "best");
        printf("best proof: proof %lld of %d (run %lld, %s, %d round(s))\n", (long long)best->id, total,
               (long long)P->st.run_id, mode_names[P->mode], rounds);
        printf("mean verification score %.3f over %d analyses; histogram 0: %d, 0.5: %d, 1: %d%s\n\n", best->mean, best->n,
               best->h[0], best->h[1], best->h[2], passes(P, best) ? "; passes all" : "");
        printf("%s\n", json_string_value(json_object_get(b, "proof")));
    }
    json_decref(o);
    return DSM_OK;
}

int cmd_prove(int argc, char **argv) {
    struct prove P;
    memset(&P, 0, sizeof P);
    const char *problem_path = NULL, *mode = "one-shot", *run = NULL, *dir = NULL;
    long problem_id = 0;
    int as_json = 0;
    P.proofs = 8, P.analyses = -1, P.threads = 32, P.attempts = 8, P.pool = 64, P.top = 8, P.shown = 8, P.rounds = 16;
    P.st.temperature = 1.0, P.st.top_p = 0.95, P.st.max_tokens = 4096, P.st.concurrency = 8;
    const struct cli_opt opts[] = {
        {"--problem", CLI_STR, &problem_path, "FILE", "the problem statement (a text file)"},
        {"--problem-id", CLI_LONG, &problem_id, "ID", "a problem already in the store"},
        {"--mode", CLI_STR, &mode, "MODE", "one-shot (default), refine or search"},
        {"--generator", CLI_STR, &P.st.backend[0], "SPEC", "generator backend: native:DIR or http:URL"},
        {"--verifier", CLI_STR, &P.st.backend[1], "SPEC", "verifier backend (default: the generator's)"},
        {"--external", CLI_FLAG, &P.st.external, NULL, "services run elsewhere: only enqueue and wait"},
        {"--run", CLI_STR, &run, "NAME", "name of the run (default: from the problem and the settings); resumes"},
        {"--proofs", CLI_INT, &P.proofs, "K", "one-shot: proofs (default 8)"},
        {"--analyses", CLI_INT, &P.analyses, "N", "analyses per proof (default 8; search 64)"},
        {"--threads", CLI_INT, &P.threads, "T", "refine: independent threads (default 32)"},
        {"--attempts", CLI_INT, &P.attempts, "A", "refine: attempts per thread at most (default 8)"},
        {"--pool", CLI_INT, &P.pool, "P", "search: proofs written per round (default 64)"},
        {"--top", CLI_INT, &P.top, "R", "search: proofs refined each round (default 8)"},
        {"--shown", CLI_INT, &P.shown, "C", "search: analyses shown with a refined proof at most (default 8)"},
        {"--rounds", CLI_INT, &P.rounds, "N", "search: refinement rounds at most (default 16)"},
        {"--temperature", CLI_DOUBLE, &P.st.temperature, "T", "sampling temperature (default 1)"},
        {"--top-p", CLI_DOUBLE, &P.st.top_p, "P", "nucleus sampling (default 0.95)"},
        {"--max-tokens", CLI_INT, &P.st.max_tokens, "N", "new tokens per output (default 4096)"},
        {"--seed", CLI_LONG, &P.st.seed, "N", "base of every sample's seed (default 0)"},
        {"--concurrency", CLI_INT, &P.st.concurrency, "N", "jobs a service samples together (default 8)"},
        {"--cpu-threads", CLI_INT, &P.st.cpu_threads, "N", "native: CPU threads of a service (default all)"},
        {"--template", CLI_STR, &P.st.template_, "FILE", "the services' prompt template ('synth' for the synthetic domain)"},
        {"--dir", CLI_STR, &dir, "DIR", "the services' logs (default $DSM_HOME/prove/RUN-ID)"},
        {"--json", CLI_FLAG, &as_json, NULL, "print the result as JSON"},
        {"--quiet", CLI_FLAG, &P.quiet, NULL, "no progress lines"},
    };
    const struct cli_cmd_spec spec = {
        "prove", "(--problem FILE | --problem-id ID) --generator SPEC [--verifier SPEC] [--mode one-shot|refine|search]",
        "Prove one problem with the V2 test-time procedures (SPEC §2), through the store and the\n"
        "generator and verifier services: one-shot (K proofs judged by the majority of N analyses),\n"
        "refine (threads re-prompted with their proof and self-evaluation until it grades 1), search\n"
        "(a pool refined from its best proofs and their issues until one passes all N analyses).\n"
        "Prints the best proof with its mean verification score and histogram. Rerunning the same\n"
        "command continues an interrupted run. docs/prove.md.",
        opts, DSM_ARRAY_LEN(opts), 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (!strcmp(mode, "one-shot")) P.mode = M_ONESHOT;
    else if (!strcmp(mode, "refine")) P.mode = M_REFINE;
    else if (!strcmp(mode, "search")) P.mode = M_SEARCH;
    else return cli_usage_error(spec.name, "unknown --mode '%s' (one-shot, refine or search)", mode);
    if (!problem_path == !problem_id) return cli_usage_error(spec.name, "give one of --problem FILE and --problem-id ID");
    if (problem_id < 0) return cli_usage_error(spec.name, "--problem-id must be positive");
    if (!P.st.backend[0] && !P.st.external) return cli_usage_error(spec.name, "--generator SPEC is required (or --external)");
    if (!P.st.backend[1]) P.st.backend[1] = P.st.backend[0];
    if (P.analyses < 0) P.analyses = P.mode == M_SEARCH ? 64 : 8;
    if (P.proofs < 1 || P.proofs > 4096 || P.analyses < 1 || P.analyses > 1024 || P.threads < 1 || P.threads > 1024 ||
        P.attempts < 1 || P.attempts > 64 || P.pool < 1 || P.pool > 4096 || P.top < 1 || P.shown < 0 || P.shown > 64 ||
        P.rounds < 0 || P.rounds > 1000)
        return cli_usage_error(spec.name, "need --proofs 1..4096, --analyses 1..1024, --threads 1..1024, --attempts 1..64, "
                                          "--pool 1..4096, --top >= 1, --shown 0..64, --rounds 0..1000");
    if (P.st.temperature < 0 || !(P.st.top_p > 0 && P.st.top_p <= 1) || P.st.max_tokens < 1 || P.st.concurrency < 1 || P.st.concurrency > 64 || P.st.seed < 0)
        return cli_usage_error(spec.name, "need --temperature >= 0, --top-p in (0, 1], --max-tokens >= 1, --concurrency 1..64, --seed >= 0");
    for (int i = 0; i < 2 && !P.st.external; i++)
        if (strncmp(P.st.backend[i], "native:", 7) && strncmp(P.st.backend[i], "http:", 5) && strncmp(P.st.backend[i], "https:", 6))
            return cli_usage_error(spec.name, "backend '%s': expected native:DIR or http:URL", P.st.backend[i]);
    if (P.st.external) P.st.backend[0] = P.st.backend[0] ? P.st.backend[0] : "external", P.st.backend[1] = P.st.backend[1] ? P.st.backend[1] : "external";

    struct dsm_err err = {0};
    char *problem = NULL;
    size_t len = 0;
    if (problem_path) {
        if (dsm_file_read(problem_path, &problem, &len, &err)) return cli_fail(spec.name, &err);
        if (!problem[strspn(problem, " \t\r\n")]) {
            free(problem);
            return cli_usage_error(spec.name, "%s is empty", problem_path);
        }
    }
    if (cli_stage_self(&P.st, &err)) {
        free(problem);
        return cli_fail(spec.name, &err);
    }
    P.tty = isatty(2);
    P.st.prefix = "prove", P.st.show = P.tty && !P.quiet, P.st.stop = &g_stop;
    struct cand *c = NULL;
    int n = 0, rounds = 0;
    struct db_open_opts o = {.migrate = 1};
    if ((rc = db_open(&o, &P.st.db, &err))) goto done;
    if ((rc = run_open(&P, run, problem, problem_id, &err))) goto done;
    if (dir)
        snprintf(P.st.dir, sizeof P.st.dir, "%s", dir);
    else if (getenv("DSM_HOME") && *getenv("DSM_HOME"))
        snprintf(P.st.dir, sizeof P.st.dir, "%s/prove/run-%s", getenv("DSM_HOME"), P.st.run_s);
    else
        snprintf(P.st.dir, sizeof P.st.dir, "var/prove/run-%s", P.st.run_s);
    if ((rc = dsm_mkdir_p(P.st.dir, &err))) goto done;
    cli_catch_stop_signals(on_signal);
    double t0 = dsm_now();
    rc = P.mode == M_ONESHOT ? run_oneshot(&P, &c, &n, &rounds, &err)
         : P.mode == M_REFINE ? run_refine(&P, &c, &n, &rounds, &err)
                              : run_search(&P, &c, &n, &rounds, &err);
    if (!rc) rc = print_result(&P, c, n, rounds, as_json, &err);
    if (!rc && !P.quiet) fprintf(stderr, "dsm prove: %s, run %s, %.1f s\n", mode_names[P.mode], P.st.run_s, dsm_now() - t0);
done:
    free(c);
    free(problem);
    db_close(P.st.db);
    return rc ? cli_fail(spec.name, &err) : 0;
}
