/* cmd_eval_verifier.c - `dsm eval verifier`: the agreement of a verifier with human grades
 * (docs/eval.md "Verifier agreement").
 *
 * The sets (Open Proof Corpus verdicts, DeepSeekMath-V2 outputs with points, MR-GSM8K flawed
 * solutions) are imported into the store (idempotent), the human-graded proofs of those files are
 * chosen (all, or a stable sample of --limit), and n analyses of each are enqueued as verify jobs
 * under one runs row (kind 'eval-verifier', dedup keys "evalv:<run>:v:<proof digest>:<j>", seeds
 * from the key, not from row ids). `dsm serve verifier` children (or, with --external, services
 * elsewhere) write the verifications; the report is read from the SQL views of
 * schema/008_eval_verifier.sql and becomes metrics rows of the run. A rerun of the same command
 * enqueues nothing twice and samples only what is missing.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/child.h"
#include "cli/cli.h"
#include "cli/stage.h"
#include "common/db.h"
#include "common/import.h"
#include "common/log.h"
#include "common/util.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
    g_stop = sig;
    if (cli_child_pid > 0) kill(cli_child_pid, SIGTERM);
}

/* The origins of the imported files, as a JSON array (sorted and unique later, in SQL). */
static void add_origin(const char *origin, void *ctx) { json_array_append_new((json_t *)ctx, json_string(origin)); }

static int run_open(struct cli_stage *s, const char *name, json_t *cfg, struct dsm_err *err) {
    char *cfg_text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
    if (!cfg_text) return dsm_errf(err, DSM_ENOMEM, "out of memory");
    char rname[200];
    if (name)
        snprintf(rname, sizeof rname, "%s", name);
    else
        snprintf(rname, sizeof rname, "eval-verifier-%016llx", (unsigned long long)cli_stage_seed(0, cfg_text));
    int rc = cli_stage_run_open(s, "eval-verifier", rname, cfg_text, err);
    free(cfg_text);
    if (!rc) LOG_INFO("eval verifier: run %s (%s)", s->run_s, rname);
    return rc;
}

/* Enqueue n analyses of each chosen proof. *nproofs gets the number of proofs. */
static int enqueue_all(struct cli_stage *s, const char *origins, int limit, int n, long *nproofs, struct dsm_err *err) {
    char lim[24];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *v[2] = {origins, limit > 0 ? lim : NULL};
    PGresult *r = NULL;
    int rc = db_exec(s->db,
                     "SELECT p.id, left(md5(p.origin || ':' || p.origin_key), 16) AS digest FROM proofs p "
                     "WHERE p.origin IN (SELECT jsonb_array_elements_text($1::jsonb)) AND EXISTS (SELECT 1 FROM labels l "
                     "WHERE l.proof_id = p.id AND l.source = 'human' AND l.value IS NOT NULL) "
                     "ORDER BY md5(p.origin || ':' || p.origin_key) LIMIT $2::int",
                     2, v, &r, err);
    if (rc) return rc;
    *nproofs = PQntuples(r);
    if (!*nproofs) {
        PQclear(r);
        return dsm_errf(err, DSM_EINVAL, "the sets hold no proof with a human grade (the formats with grades: opc, "
                                         "v2-outputs, mr-gsm8k)");
    }
    json_t *arr = json_array();
    char key[96];
    for (long i = 0; i < *nproofs; i++)
        for (int j = 0; j < n; j++) {
            snprintf(key, sizeof key, "v:%s:%d", db_get(r, (int)i, "digest"), j);
            cli_stage_payload(s, arr, "proof_id", db_get_i64(r, (int)i, "id", 0), 0, key, NULL);
        }
    PQclear(r);
    return cli_stage_enqueue(s, "verify", arr, err);
}

static void fmt_ratio(char *buf, size_t cap, const char *v) {
    if (v) snprintf(buf, cap, "%.3f", atof(v));
    else snprintf(buf, cap, "-");
}

/* Print the table (or JSON) from the views and write the metrics rows of the run. */
static int report(struct cli_stage *s, int as_json, struct dsm_err *err) {
    const char *v[1] = {s->run_s};
    PGresult *r = NULL, *f = NULL;
    int rc = db_exec(s->db,
                     "SELECT judged_by, verifier, CASE grouped_by WHEN 'all' THEN 'all' WHEN 'source' THEN 'source=' || source "
                     "ELSE 'generator=' || generator END AS grp, n, tp, fp, fn, tn, accuracy, balanced_accuracy, "
                     "precision_incorrect, recall_incorrect, kappa FROM verifier_run_agreement WHERE run_id = $1::bigint "
                     "AND reference = 'human' ORDER BY verifier, judged_by, grouped_by = 'all' DESC, grouped_by DESC, grp",
                     1, v, &r, err);
    if (!rc)
        rc = db_exec(s->db,
                     "SELECT verifier, analyses, flagged, flagged_naming_step, hits, hit_rate FROM "
                     "mr_gsm8k_first_issue_summary WHERE run_id = $1::bigint ORDER BY verifier",
                     1, v, &f, err);
    if (rc) {
        PQclear(r);
        return rc;
    }
    static const char *cols[] = {"accuracy", "balanced_accuracy", "precision_incorrect", "recall_incorrect", "kappa"};
    if (as_json) {
        json_t *rows = json_array(), *fi = json_array();
        for (int i = 0; i < PQntuples(r); i++) {
            json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "judged_by", db_get(r, i, "judged_by"), "verifier",
                                  db_get(r, i, "verifier"), "group", db_get(r, i, "grp"), "n",
                                  (json_int_t)db_get_i64(r, i, "n", 0), "tp", (json_int_t)db_get_i64(r, i, "tp", 0), "fp",
                                  (json_int_t)db_get_i64(r, i, "fp", 0), "fn", (json_int_t)db_get_i64(r, i, "fn", 0), "tn",
                                  (json_int_t)db_get_i64(r, i, "tn", 0));
            for (size_t c = 0; o && c < DSM_ARRAY_LEN(cols); c++)
                json_object_set_new(o, cols[c], db_get(r, i, cols[c]) ? json_real(atof(db_get(r, i, cols[c]))) : json_null());
            if (o) json_array_append_new(rows, o);
        }
        for (int i = 0; i < PQntuples(f); i++)
            json_array_append_new(fi, json_pack("{s:s,s:I,s:I,s:I,s:I,s:o}", "verifier", db_get(f, i, "verifier"),
                                                "analyses", (json_int_t)db_get_i64(f, i, "analyses", 0), "flagged",
                                                (json_int_t)db_get_i64(f, i, "flagged", 0), "flagged_naming_step",
                                                (json_int_t)db_get_i64(f, i, "flagged_naming_step", 0), "hits",
                                                (json_int_t)db_get_i64(f, i, "hits", 0), "hit_rate",
                                                db_get(f, i, "hit_rate") ? json_real(atof(db_get(f, i, "hit_rate")))
                                                                         : json_null()));
        json_t *o = json_pack("{s:I,s:o,s:o}", "run_id", (json_int_t)s->run_id, "agreement", rows, "first_issue", fi);
        char *t = o ? json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
        if (t) printf("%s\n", t);
        free(t);
        json_decref(o);
    } else {
        printf("%-9s %-24s %-32s %6s %5s %5s %5s %5s %6s %7s %7s %7s %6s\n", "judged_by", "verifier", "group", "n", "tp",
               "fp", "fn", "tn", "acc", "bal_acc", "prec_in", "rec_in", "kappa");
        for (int i = 0; i < PQntuples(r); i++) {
            char b[5][16];
            for (size_t c = 0; c < DSM_ARRAY_LEN(cols); c++) fmt_ratio(b[c], sizeof b[c], db_get(r, i, cols[c]));
            printf("%-9s %-24.24s %-32.32s %6lld %5lld %5lld %5lld %5lld %6s %7s %7s %7s %6s\n", db_get(r, i, "judged_by"),
                   db_get(r, i, "verifier"), db_get(r, i, "grp"), (long long)db_get_i64(r, i, "n", 0),
                   (long long)db_get_i64(r, i, "tp", 0), (long long)db_get_i64(r, i, "fp", 0),
                   (long long)db_get_i64(r, i, "fn", 0), (long long)db_get_i64(r, i, "tn", 0), b[0], b[1], b[2], b[3], b[4]);
        }
        for (int i = 0; i < PQntuples(f); i++) {
            char hr[16];
            fmt_ratio(hr, sizeof hr, db_get(f, i, "hit_rate"));
            printf("MR-GSM8K first issue (%s): %lld of %lld analyses report an error, %lld name a step, %lld name the "
                   "human's first wrong step (hit rate %s)\n",
                   db_get(f, i, "verifier"), (long long)db_get_i64(f, i, "flagged", 0),
                   (long long)db_get_i64(f, i, "analyses", 0), (long long)db_get_i64(f, i, "flagged_naming_step", 0),
                   (long long)db_get_i64(f, i, "hits", 0), hr);
        }
    }
    PQclear(r);
    PQclear(f);
    /* metrics: "<judged_by>/<group>/<metric>", prefixed "verifier=<name>/" when the run has several */
    if ((rc = db_begin(s->db, err))) return rc;
    rc = db_exec(s->db, "DELETE FROM metrics WHERE run_id = $1::bigint", 1, v, NULL, err);
    if (!rc)
        rc = db_exec(s->db,
                     "WITH a AS (SELECT *, count(*) OVER (PARTITION BY verifier) AS k, dense_rank() OVER (ORDER BY verifier) "
                     "AS vr FROM verifier_run_agreement WHERE run_id = $1::bigint AND reference = 'human'), "
                     "multi AS (SELECT max(vr) > 1 AS several FROM a), "
                     "fi AS (SELECT * FROM mr_gsm8k_first_issue_summary WHERE run_id = $1::bigint) "
                     "INSERT INTO metrics (run_id, name, value) "
                     "SELECT $1::bigint, CASE WHEN m.several THEN 'verifier=' || a.verifier || '/' ELSE '' END || a.judged_by "
                     "|| '/' || CASE a.grouped_by WHEN 'all' THEN 'all' WHEN 'source' THEN 'source=' || a.source "
                     "ELSE 'generator=' || a.generator END || '/' || x.name, x.value FROM a CROSS JOIN multi m, LATERAL "
                     "(VALUES ('n', a.n::float8), ('accuracy', a.accuracy), ('balanced_accuracy', a.balanced_accuracy), "
                     "('precision_incorrect', a.precision_incorrect), ('recall_incorrect', a.recall_incorrect), "
                     "('kappa', a.kappa)) x(name, value) WHERE x.value IS NOT NULL "
                     "UNION ALL SELECT $1::bigint, CASE WHEN (SELECT count(*) FROM fi) > 1 THEN 'verifier=' || fi.verifier "
                     "|| '/' ELSE '' END || 'first_issue/' || x.name, x.value FROM fi, LATERAL (VALUES ('analyses', "
                     "fi.analyses::float8), ('flagged', fi.flagged::float8), ('hits', fi.hits::float8), ('hit_rate', "
                     "fi.hit_rate)) x(name, value) WHERE x.value IS NOT NULL",
                     1, v, NULL, err);
    if (!rc) rc = db_exec(s->db, "UPDATE runs SET status = 'done', finished_at = now() WHERE id = $1::bigint", 1, v, NULL, err);
    if (rc) {
        db_rollback(s->db);
        return rc;
    }
    return db_commit(s->db, err);
}

int cmd_eval_verifier(int argc, char **argv) {
    struct cli_stage S;
    memset(&S, 0, sizeof S);
    struct cli_str_list sets = {0};
    const char *run = NULL, *dir = NULL;
    int n = 4, limit = 0, as_json = 0, quiet = 0;
    S.temperature = 1.0, S.top_p = 0.95, S.max_tokens = 4096, S.concurrency = 8;
    const struct cli_opt opts[] = {
        {"--set", CLI_STR_LIST, &sets, "PATH", "a graded proof set: file or directory (repeatable; required)"},
        {"--verifier", CLI_STR, &S.backend[1], "SPEC", "verifier backend: native:DIR or http:URL"},
        {"--external", CLI_FLAG, &S.external, NULL, "verifier services run elsewhere: only enqueue and wait"},
        {"-n", CLI_INT, &n, "N", "analyses per proof (default 4)"},
        {"--limit", CLI_INT, &limit, "N", "at most N proofs (a stable sample: by the digest of their origin key)"},
        {"--run", CLI_STR, &run, "NAME", "name of the run (default: from the settings); resumes it"},
        {"--temperature", CLI_DOUBLE, &S.temperature, "T", "sampling temperature (default 1)"},
        {"--top-p", CLI_DOUBLE, &S.top_p, "P", "nucleus sampling (default 0.95)"},
        {"--max-tokens", CLI_INT, &S.max_tokens, "N", "new tokens per analysis (default 4096)"},
        {"--seed", CLI_LONG, &S.seed, "N", "base of every analysis's seed (default 0)"},
        {"--concurrency", CLI_INT, &S.concurrency, "N", "analyses the service samples together (default 8)"},
        {"--cpu-threads", CLI_INT, &S.cpu_threads, "N", "native: CPU threads of the service (default all)"},
        {"--template", CLI_STR, &S.template_, "FILE", "the verifier's prompt template (default the built-in)"},
        {"--dir", CLI_STR, &dir, "DIR", "the service's log (default $DSM_HOME/eval-verifier/run-ID)"},
        {"--json", CLI_FLAG, &as_json, NULL, "print the report as JSON"},
        {"--quiet", CLI_FLAG, &quiet, NULL, "no progress lines"},
    };
    const struct cli_cmd_spec spec = {
        "eval verifier", "--set PATH [--set PATH...] (--verifier SPEC | --external) [-n N] [--limit N] [--run NAME]",
        "Judge a verifier against human grades: import the graded proof sets (Open Proof Corpus,\n"
        "DeepSeekMath-V2 outputs, MR-GSM8K), sample n analyses of each proof through the verifier\n"
        "service, and report accuracy, balanced accuracy, precision and recall on \"incorrect\" and\n"
        "Cohen's kappa, for each analysis and for the n-vote of each proof, overall, per source and\n"
        "per generating model, plus the MR-GSM8K first-error match. Everything is read from SQL\n"
        "views and stored as metrics of the run; the same command again continues it. docs/eval.md.",
        opts, DSM_ARRAY_LEN(opts), 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (!sets.n) return cli_usage_error(spec.name, "--set PATH is required");
    if (!S.backend[1] && !S.external) return cli_usage_error(spec.name, "--verifier SPEC is required (or --external)");
    if (n < 1 || n > 1024 || limit < 0) return cli_usage_error(spec.name, "need -n 1..1024 and --limit >= 0");
    if (S.temperature < 0 || !(S.top_p > 0 && S.top_p <= 1) || S.max_tokens < 1 || S.concurrency < 1 ||
        S.concurrency > 64 || S.seed < 0)
        return cli_usage_error(spec.name,
                               "need --temperature >= 0, --top-p in (0, 1], --max-tokens >= 1, --concurrency 1..64, --seed >= 0");
    if (S.backend[1] && strncmp(S.backend[1], "native:", 7) && strncmp(S.backend[1], "http:", 5) &&
        strncmp(S.backend[1], "https:", 6))
        return cli_usage_error(spec.name, "backend '%s': expected native:DIR or http:URL", S.backend[1]);
    if (!S.backend[1]) S.backend[1] = "external";
    S.backend[0] = S.backend[1];

    struct dsm_err err = {0};
    if (cli_stage_self(&S, &err)) return cli_fail(spec.name, &err);
    S.prefix = "evalv", S.show = isatty(2) && !quiet, S.stop = &g_stop;
    json_t *origins = json_array(), *cfg = NULL;
    char *origins_text = NULL;
    struct db_open_opts o = {.migrate = 1};
    if ((rc = db_open(&o, &S.db, &err))) goto done;
    struct imp_stats st = {.on_file = add_origin, .on_file_ctx = origins};
    for (int i = 0; i < sets.n && !rc; i++) rc = imp_path(S.db, sets.v[i], NULL, 0, &st, &err);
    if (rc) goto done;
    if (!json_array_size(origins)) {
        rc = dsm_errf(&err, DSM_EINVAL, "no data set file found under the --set paths");
        goto done;
    }
    origins_text = json_dumps(origins, JSON_COMPACT);
    cfg = json_pack("{s:O,s:i,s:i,s:f,s:f,s:i,s:I,s:s,s:s?}", "sets", origins, "n", n, "limit", limit, "temperature",
                    S.temperature, "top_p", S.top_p, "max_tokens", S.max_tokens, "seed", (json_int_t)S.seed, "verifier",
                    S.backend[1], "template", S.template_);
    if (!cfg || !origins_text) {
        rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = run_open(&S, run, cfg, &err))) goto done;
    if (dir)
        snprintf(S.dir, sizeof S.dir, "%s", dir);
    else if (getenv("DSM_HOME") && *getenv("DSM_HOME"))
        snprintf(S.dir, sizeof S.dir, "%s/eval-verifier/run-%s", getenv("DSM_HOME"), S.run_s);
    else
        snprintf(S.dir, sizeof S.dir, "var/eval-verifier/run-%s", S.run_s);
    if ((rc = dsm_mkdir_p(S.dir, &err))) goto done;
    cli_catch_stop_signals(on_signal);
    double t0 = dsm_now();
    long nproofs = 0;
    if ((rc = enqueue_all(&S, origins_text, limit, n, &nproofs, &err))) goto done;
    if (!quiet) fprintf(stderr, "eval verifier: run %s, %ld proofs x %d analyses\n", S.run_s, nproofs, n);
    if ((rc = cli_stage_drain(&S, "verify", "verify", &err))) goto done;
    rc = report(&S, as_json, &err);
    if (!rc && !quiet) fprintf(stderr, "eval verifier: run %s done in %.1f s\n", S.run_s, dsm_now() - t0);
done:
    json_decref(origins);
    json_decref(cfg);
    free(origins_text);
    db_close(S.db);
    return rc ? cli_fail(spec.name, &err) : 0;
}
