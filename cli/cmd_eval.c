/* cmd_eval.c - `dsm eval`: sample answers to an answer-checked set through the lm interface (native
 * engine or an OpenAI-compatible server) and report greedy accuracy, maj@k and pass@k overall, per
 * subject and per level (common/eval.h). With --run NAME every sample is recorded in the store
 * (eval_samples, schema/005_eval.sql) chunk by chunk, the metrics become rows of the run, and the
 * same command again samples only what is missing (docs/eval.md).
 *
 * Set files: JSONL (or one JSON array) in the shipped forms (../shared/data/README.md): the problem
 * from "problem" or "question"; the gold from "answer" (GSM8K: the text after the last "#### "),
 * else "final_answer" (first element of a list), else the last \boxed{} of "solution"; the subject
 * from "subject" or "type"; the level from "level" (3 or "Level 3").
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/lm_flags.h"
#include "common/db.h"
#include "common/lm.h"
#include "common/answer.h"
#include "common/chat.h"
#include "common/eval.h"
#include "common/util.h"

struct problem {
    char *text, *gold, *subject;
    int level;
    int64_t problem_id; /* with --run: its problems row */
    struct eval_output greedy;
    struct eval_output *samples;
    int got_greedy, got;
};


static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Gold answer of a record, newly allocated, or NULL. */
static char *record_gold(json_t *o) {
    json_t *a = json_object_get(o, "answer");
    char buf[64];
    if (json_is_string(a)) {
        const char *s = json_string_value(a), *h = strstr(s, "####");
        if (h) { /* GSM8K: reasoning, then "#### gold" (the last one) */
            const char *last = h;
            while ((h = strstr(last + 4, "####"))) last = h;
            last += 4;
            while (*last == ' ') last++;
            return strdup(last);
        }
        return strdup(s);
    }
    if (json_is_number(a)) {
        snprintf(buf, sizeof buf, "%.15g", json_number_value(a));
        return strdup(buf);
    }
    json_t *f = json_object_get(o, "final_answer");
    if (json_is_array(f) && json_is_string(json_array_get(f, 0))) return strdup(json_string_value(json_array_get(f, 0)));
    json_t *sol = json_object_get(o, "solution");
    if (json_is_string(sol)) {
        char ans[ANS_MAX_LEN];
        enum ans_found found;
        if (ans_extract(json_string_value(sol), strlen(json_string_value(sol)), 0, ans, sizeof ans, &found, NULL) == DSM_OK &&
            found == ANS_FOUND_BOXED)
            return strdup(ans);
    }
    return NULL;
}

static int record_level(json_t *o) {
    json_t *l = json_object_get(o, "level");
    if (json_is_integer(l)) return (int)json_integer_value(l);
    if (json_is_string(l)) {
        const char *s = json_string_value(l);
        while (*s && (*s < '0' || *s > '9')) s++;
        return *s ? atoi(s) : -1;
    }
    return -1;
}

static int load_set(const char *path, int limit, struct problem **out, int *n, struct dsm_err *err) {
    char *text = NULL;
    size_t len = 0;
    int rc = dsm_file_read(path, &text, &len, err);
    if (rc) return rc;
    int cap = 64, count = 0, line = 0;
    struct problem *ps = calloc((size_t)cap, sizeof *ps);
    if (!ps) rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
    char *save = NULL;
    for (char *l = text; rc == DSM_OK && l && l < text + len && (limit <= 0 || count < limit); l = save) {
        char *nl = strchr(l, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl) *nl = '\0';
        line++;
        if (strspn(l, " \t\r") == strlen(l)) continue;
        json_error_t je;
        json_t *o = json_loads(l, 0, &je);
        if (!o || !json_is_object(o)) {
            rc = dsm_errf(err, DSM_EINVAL, "%s:%d: not a JSON object%s%s", path, line, o ? "" : ": ", o ? "" : je.text);
            json_decref(o);
            break;
        }
        json_t *pt = json_object_get(o, "problem");
        if (!json_is_string(pt)) pt = json_object_get(o, "question");
        char *gold = record_gold(o);
        if (!json_is_string(pt) || !gold || !gold[0]) {
            free(gold);
            json_decref(o);
            rc = dsm_errf(err, DSM_EINVAL, "%s:%d: a record needs a \"problem\" (or \"question\") and a gold answer "
                                           "(\"answer\", \"final_answer\" or a \\boxed{} in \"solution\")", path, line);
            break;
        }
        if (count == cap) {
            struct problem *np = realloc(ps, sizeof *ps * (size_t)(cap *= 2));
            if (!np) {
                free(gold);
                json_decref(o);
                rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
                break;
            }
            ps = np;
        }
        struct problem *p = &ps[count++];
        memset(p, 0, sizeof *p);
        json_t *subj = json_object_get(o, "subject");
        if (!json_is_string(subj)) subj = json_object_get(o, "type");
        p->text = strdup(json_string_value(pt));
        p->gold = gold;
        p->subject = dup_or_null(json_is_string(subj) ? json_string_value(subj) : NULL);
        p->level = record_level(o);
        json_decref(o);
    }
    free(text);
    if (rc == DSM_OK && count == 0) rc = dsm_errf(err, DSM_EINVAL, "%s: no problems", path);
    *out = ps;
    *n = count;
    return rc;
}

/* ---- the store (--run NAME) ------------------------------------------------------------------ */

struct eval_store {
    struct dsm_db *db;
    int64_t run_id;
    char run_s[24], model_id[24];
    long reused, added;
};

/* The set's problems (source, key = md5 of the statement), the run (kind 'eval', resumed when its
 * configuration is the same) and the backend's models row. */
static int store_open(struct eval_store *es, const char *run, const char *source, const char *config, struct dsm_lm *lm,
                      const char *backend, struct problem *ps, int np, struct dsm_err *err) {
    struct db_open_opts o = {.migrate = 1};
    int rc = db_open(&o, &es->db, err);
    if (rc) return rc;
    const char *v[2] = {run, config};
    PGresult *r = NULL;
    if ((rc = db_exec(es->db,
                      "WITH old AS (SELECT id, config FROM runs WHERE name = $1 AND kind = 'eval' ORDER BY id LIMIT 1), "
                      "ins AS (INSERT INTO runs (name, kind, config) SELECT $1, 'eval', $2::jsonb WHERE NOT EXISTS "
                      "(SELECT 1 FROM old) RETURNING id, config) SELECT id, config::text AS config, config = $2::jsonb AS same "
                      "FROM old UNION ALL SELECT id, config::text, true FROM ins",
                      2, v, &r, err)))
        return rc;
    if (strcmp(db_get(r, 0, "same"), "t")) {
        rc = dsm_errf(err, DSM_EINVAL, "run '%s' exists with other settings (%s); name another --run", run, db_get(r, 0, "config"));
        PQclear(r);
        return rc;
    }
    es->run_id = db_get_i64(r, 0, "id", 0);
    snprintf(es->run_s, sizeof es->run_s, "%lld", (long long)es->run_id);
    PQclear(r);
    if ((rc = db_begin(es->db, err))) return rc;
    for (int i = 0; i < np && !rc; i++) {
        char level[16];
        snprintf(level, sizeof level, "%d", ps[i].level);
        const char *pv[5] = {source, ps[i].text, ps[i].gold, ps[i].subject, ps[i].level >= 0 ? level : NULL};
        if (!(rc = db_exec(es->db,
                           "INSERT INTO problems (source, source_key, statement, gold_answer, subject, level) VALUES "
                           "($1, md5($2), $2, $3, $4, $5) ON CONFLICT (source, source_key) DO UPDATE SET gold_answer = "
                           "EXCLUDED.gold_answer RETURNING id",
                           5, pv, &r, err)))
            ps[i].problem_id = db_get_i64(r, 0, "id", 0);
        PQclear(r);
    }
    if (rc) {
        db_rollback(es->db);
        return rc;
    }
    if ((rc = db_commit(es->db, err))) return rc;
    const char *spec = backend;
    if (!strncmp(spec, "native:", 7)) spec += 7;
    int64_t mid = 0;
    if ((rc = db_model_register(es->db, lm_model_name(lm), strcmp(lm_kind(lm), "http") ? "checkpoint" : "remote", spec, "any",
                                &mid, err)))
        return rc;
    snprintf(es->model_id, sizeof es->model_id, "%lld", (long long)mid);
    return DSM_OK;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The samples this run already has go into ps (not sampled again). */
static int store_load(struct eval_store *es, struct problem *ps, int np, int k, struct dsm_err *err) {
    int64_t(*idx)[2] = calloc((size_t)np + 1, sizeof *idx); /* (problem_id, index), sorted */
    if (!idx) return dsm_errf(err, DSM_ENOMEM, "out of memory");
    for (int i = 0; i < np; i++) idx[i][0] = ps[i].problem_id, idx[i][1] = i;
    qsort(idx, (size_t)np, sizeof *idx, cmp_i64);
    const char *v[1] = {es->run_s};
    PGresult *r = NULL;
    int rc = db_exec(es->db, "SELECT problem_id, sample, text, finish_reason FROM eval_samples WHERE run_id = $1::bigint", 1, v,
                     &r, err);
    for (int i = 0; !rc && i < PQntuples(r); i++) {
        int64_t key[2] = {db_get_i64(r, i, "problem_id", 0), 0};
        int64_t(*hit)[2] = bsearch(key, idx, (size_t)np, sizeof *idx, cmp_i64);
        int sample = (int)db_get_i64(r, i, "sample", -2);
        if (!hit || sample < -1 || sample >= k) continue;
        struct problem *p = &ps[(*hit)[1]];
        const char *t = db_get(r, i, "text"), *fin = db_get(r, i, "finish_reason");
        struct eval_output o = {strdup(t), strlen(t), !fin || strcmp(fin, "stop")};
        if (!o.text) {
            rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
            break;
        }
        struct eval_output *slot = sample < 0 ? &p->greedy : &p->samples[sample];
        if (slot->text) free((void *)slot->text);
        else if (sample < 0) p->got_greedy = 1;
        else p->got++;
        *slot = o;
        es->reused++;
    }
    PQclear(r);
    free(idx);
    return rc;
}

/* Record one sample with its extracted answer and verdict. */
static int store_sample(struct eval_store *es, struct ans_checker *ck, unsigned flags, const struct problem *p, int sample,
                        const struct lm_completion *c, const char *sampling, struct dsm_err *err) {
    char ans[ANS_MAX_LEN], pid[24], smp[16], seed[24];
    enum ans_found found = ANS_FOUND_NONE;
    int stop = c->finish == LM_FINISH_STOP, correct = 0;
    if (stop && ans_extract(c->text, c->text_len, flags, ans, sizeof ans, &found, NULL) != DSM_OK) found = ANS_FOUND_NONE;
    if (stop) {
        struct ans_verdict v;
        if (ans_checker_grade(ck, p->gold, c->text, c->text_len, flags, &v, err)) return err->code;
        correct = v.equal;
    }
    snprintf(pid, sizeof pid, "%lld", (long long)p->problem_id);
    snprintf(smp, sizeof smp, "%d", sample);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)(c->seed & 0x7fffffffffffffffULL));
    const char *v[9] = {es->run_s, pid, smp, c->text, stop ? "stop" : c->finish == LM_FINISH_LENGTH ? "length" : c->finish_raw,
                        found == ANS_FOUND_NONE ? NULL : ans, correct ? "true" : "false", seed, es->model_id};
    const char *v2[10] = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], sampling};
    int rc = db_exec(es->db,
                     "INSERT INTO eval_samples (run_id, problem_id, sample, text, finish_reason, answer, correct, seed, "
                     "model_id, sampling) VALUES ($1::bigint, $2::bigint, $3::int, $4, $5, $6, $7::boolean, $8::bigint, "
                     "$9::bigint, $10::jsonb) ON CONFLICT (run_id, problem_id, sample) DO NOTHING",
                     10, v2, NULL, err);
    if (!rc) es->added++;
    return rc;
}

/* The run's metrics, replaced: '<group>/<metric>' for every group of the table. */
static int store_metrics(struct eval_store *es, char **gname, const struct eval_totals *gt, int ngroups, int k,
                         struct dsm_err *err) {
    const char *v[1] = {es->run_s};
    int rc = db_begin(es->db, err);
    if (!rc) rc = db_exec(es->db, "DELETE FROM metrics WHERE run_id = $1::bigint", 1, v, NULL, err);
    for (int j = 0; j < ngroups && !rc; j++) {
        const struct eval_totals *t = &gt[j];
        char group[200], name[260], val[40];
        snprintf(group, sizeof group, "%s", gname[j]);
        if (!strncmp(group, "subject: ", 9)) memmove(group + 8, group + 9, strlen(group + 9) + 1), group[7] = '=';
        else if (!strncmp(group, "level: ", 7)) memmove(group + 6, group + 7, strlen(group + 7) + 1), group[5] = '=';
        struct {
            const char *m;
            double x;
            int ok;
        } ms[] = {{"problems", t->problems, 1},
                  {"greedy_accuracy", t->greedy_scored ? (double)t->greedy_correct / t->greedy_scored : 0, t->greedy_scored > 0},
                  {"maj@k", (double)t->maj_correct / t->problems, 1},
                  {"pass@1", t->pass1_sum / t->problems, 1},
                  {"pass@k", t->pass_sum / t->problems, 1}};
        for (size_t m = 0; m < DSM_ARRAY_LEN(ms) && !rc; m++) {
            if (!ms[m].ok) continue;
            char mname[32];
            snprintf(mname, sizeof mname, "%s", ms[m].m);
            char *at = strstr(mname, "@k");
            if (at) snprintf(at, sizeof mname - (size_t)(at - mname), "@%d", k);
            snprintf(name, sizeof name, "%s/%s", group, mname);
            snprintf(val, sizeof val, "%.17g", ms[m].x);
            const char *mv[3] = {es->run_s, name, val};
            rc = db_exec(es->db, "INSERT INTO metrics (run_id, name, value) VALUES ($1::bigint, $2, $3::float8)", 3, mv, NULL, err);
        }
    }
    if (!rc) rc = db_exec(es->db, "UPDATE runs SET status = 'done', finished_at = now() WHERE id = $1::bigint", 1, v, NULL, err);
    if (rc) {
        db_rollback(es->db);
        return rc;
    }
    return db_commit(es->db, err);
}

/* A name for the set when none is given: "<parent dir>/<file stem>", e.g. "gsm8k/test". */
static void set_source(const char *path, char *out, size_t cap) {
    const char *base = strrchr(path, '/');
    const char *file = base ? base + 1 : path;
    int parent_len = 0;
    const char *parent = NULL;
    if (base && base > path) {
        parent = base - 1;
        while (parent > path && parent[-1] != '/') parent--;
        parent_len = (int)(base - parent);
    }
    snprintf(out, cap, "eval:%.*s%s%.*s", parent_len, parent ? parent : "", parent_len ? "/" : "", (int)strcspn(file, "."), file);
}

int cmd_eval(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "verifier")) return cmd_eval_verifier(argc - 1, argv + 1);
    const char *set = NULL, *dir = NULL, *json_out = NULL, *run = NULL, *source_name = NULL;
    int k = 8, max_tokens = 512, limit = 0, no_greedy = 0, last_number = 0, chunk = 32;
    long seed = 0;
    double temperature = 0.7, top_p = 0.95;
    struct cli_lm_flags lf = {0};
    const struct cli_opt opts[] = {
        {"--set", CLI_STR, &set, "FILE", "problems with gold answers (JSONL in the shipped forms; required)"},
        {"--model", CLI_STR, &dir, "DIR", "a native model directory (the same as --backend native:DIR)"},
        {"-k", CLI_INT, &k, "K", "samples per problem for maj@k and pass@k (default 8)"},
        {"--no-greedy", CLI_FLAG, &no_greedy, NULL, "skip the greedy sample"},
        {"--temperature", CLI_DOUBLE, &temperature, "T", "sampling temperature (default 0.7)"},
        {"--top-p", CLI_DOUBLE, &top_p, "P", "nucleus mass (default 0.95)"},
        {"--max-tokens", CLI_INT, &max_tokens, "N", "new tokens per sample (default 512)"},
        {"--seed", CLI_LONG, &seed, "N", "sampling seed (default 0)"},
        {"--limit", CLI_INT, &limit, "N", "only the first N problems"},
        {"--last-number", CLI_FLAG, &last_number, NULL, "fall back to the last number when no answer is marked"},
        {"--json-out", CLI_STR, &json_out, "FILE", "write one JSON record per problem with every sample"},
        {"--run", CLI_STR, &run, "NAME", "record every sample and the metrics in the store under this run; resumes it"},
        {"--source", CLI_STR, &source_name, "NAME", "with --run: problems.source of the set (default eval:<dir>/<file>)"},
        {"--chunk", CLI_INT, &chunk, "N", "problems sampled (and recorded) together (default 32)"},
        CLI_LM_OPTS(lf),
    };
    const struct cli_cmd_spec spec = {"eval", "--set FILE (--model DIR | --backend SPEC) [-k K] [--run NAME] [options]",
                                      "Sample answers through a backend (native or an OpenAI-compatible server) and report\n"
                                      "greedy accuracy, maj@k and pass@k, overall and per subject and level, as a table on\n"
                                      "stdout. With --run, every sample is recorded in the store (eval_samples) and the\n"
                                      "metrics are rows of the run; the same command again samples only what is missing.",
                                      opts, DSM_ARRAY_LEN(opts), 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (!set || (!dir == !lf.backend)) return cli_usage_error(spec.name, "--set FILE and one of --model DIR / --backend SPEC are required");
    if (k < 1 || max_tokens < 1) return cli_usage_error(spec.name, "-k and --max-tokens must be at least 1");
    if (chunk < 1) return cli_usage_error(spec.name, "--chunk must be at least 1");
    if (temperature < 0 || !(top_p > 0 && top_p <= 1)) return cli_usage_error(spec.name, "need --temperature >= 0 and 0 < --top-p <= 1");
    if (source_name && !run) return cli_usage_error(spec.name, "--source names the set in the store: it needs --run");
    char backend[4200];
    snprintf(backend, sizeof backend, "%s%s", dir ? "native:" : "", dir ? dir : lf.backend);
    lf.backend = backend;
    if (!lf.max_context) lf.max_context = max_tokens + 3072; /* native: the longest prompt plus the output */

    struct dsm_err err = {0};
    struct problem *ps = NULL;
    int np = 0;
    struct dsm_lm *lm = NULL;
    struct lm_request *reqs = NULL;
    struct lm_result *res = NULL;
    struct chat_msg *msgs = NULL;
    struct ans_checker *ac = NULL;
    struct eval_store es = {0};
    char **prompts = NULL;
    FILE *jf = NULL;
    unsigned flags = last_number ? ANS_EXTRACT_LAST_NUMBER : 0;
    int lm_exit = 0; /* cli_lm_open's exit code (it reported the error) */
    if ((rc = load_set(set, limit, &ps, &np, &err))) goto done;
    if ((lm_exit = cli_lm_open(spec.name, &lf, &lm))) goto done;
    if ((rc = ans_checker_create(NULL, &ac, &err))) goto done;
    prompts = calloc((size_t)np, sizeof *prompts);
    msgs = calloc((size_t)np, sizeof *msgs);
    reqs = calloc((size_t)2 * chunk, sizeof *reqs);
    res = calloc((size_t)2 * chunk, sizeof *res);
    if (!prompts || !msgs || !reqs || !res) {
        rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < np; i++) {
        static const char instruction[] = "\nPlease reason step by step, and put your final answer within \\boxed{}.";
        size_t plen = strlen(ps[i].text);
        if (!(prompts[i] = malloc(plen + sizeof instruction)) || !(ps[i].samples = calloc((size_t)k, sizeof *ps[i].samples))) {
            rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
            goto done;
        }
        memcpy(prompts[i], ps[i].text, plen);
        memcpy(prompts[i] + plen, instruction, sizeof instruction);
        msgs[i] = (struct chat_msg){"user", prompts[i]};
    }
    if (run) {
        char src[300];
        if (source_name) snprintf(src, sizeof src, "%s", source_name);
        else set_source(set, src, sizeof src);
        json_t *cfg = json_pack("{s:s,s:s,s:s,s:i,s:b,s:f,s:f,s:i,s:I,s:i,s:b}", "set", set, "source", src, "backend", backend,
                                "k", k, "greedy", !no_greedy, "temperature", temperature, "top_p", top_p, "max_tokens",
                                max_tokens, "seed", (json_int_t)seed, "limit", limit, "last_number", last_number);
        char *ct = cfg ? json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(cfg);
        if (!ct) {
            rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
            goto done;
        }
        rc = store_open(&es, run, src, ct, lm, backend, ps, np, &err);
        free(ct);
        if (rc || (rc = store_load(&es, ps, np, k, &err))) goto done;
    }
    /* sample what is missing, chunk by chunk; with a store each chunk is recorded before the next */
    int terminal = isatty(2), total = np * (k + !no_greedy), done_n = 0;
    for (int c0 = 0; c0 < np && !rc; c0 += chunk) {
        int nreq = 0, owner[64 * 2], kind[64 * 2];
        int *own = owner, *knd = kind;
        int *own_heap = NULL;
        if (2 * chunk > 128) {
            own_heap = calloc((size_t)4 * chunk, sizeof *own_heap);
            if (!own_heap) {
                rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
                break;
            }
            own = own_heap, knd = own_heap + 2 * chunk;
        }
        for (int i = c0; i < np && i < c0 + chunk; i++) {
            struct problem *p = &ps[i];
            struct lm_settings st;
            lm_settings_default(&st);
            st.temperature = (float)temperature, st.top_p = (float)top_p, st.max_tokens = max_tokens;
            st.seed = (uint64_t)seed + (uint64_t)i * 100003u;
            if (!no_greedy && !p->got_greedy) {
                struct lm_settings g = st;
                g.temperature = 0.0f, g.top_p = 1.0f;
                own[nreq] = i, knd[nreq] = -1;
                reqs[nreq++] = (struct lm_request){&msgs[i], 1, g};
            }
            if (p->got < k) {
                st.n = k;
                own[nreq] = i, knd[nreq] = 0;
                reqs[nreq++] = (struct lm_request){&msgs[i], 1, st};
            }
        }
        if (nreq && (rc = lm_sample(lm, reqs, nreq, res, &err))) {
            free(own_heap);
            break;
        }
        if (es.db && nreq) rc = db_begin(es.db, &err);
        for (int q = 0; q < nreq && !rc; q++) {
            struct problem *p = &ps[own[q]];
            if (res[q].status) {
                rc = dsm_errf(&err, DSM_EIO, "problem %d: %s", own[q] + 1, res[q].error);
                break;
            }
            json_t *prov = es.db ? lm_provenance_json(lm, &reqs[q].s, "eval.v1") : NULL;
            char *sampling = prov ? json_dumps(prov, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
            json_decref(prov);
            for (int j = 0; j < res[q].n && !rc; j++) {
                struct lm_completion *c = &res[q].c[j];
                int sample = knd[q] < 0 ? -1 : j;
                if (es.db) rc = store_sample(&es, ac, flags, p, sample, c, sampling ? sampling : "{}", &err);
                struct eval_output o = {c->text, c->text_len, c->finish != LM_FINISH_STOP};
                c->text = NULL; /* now p's */
                struct eval_output *slot = sample < 0 ? &p->greedy : &p->samples[sample];
                free((void *)slot->text);
                *slot = o;
                if (sample < 0) p->got_greedy = 1;
                else p->got = k;
                done_n++;
            }
            free(sampling);
        }
        if (es.db && nreq) {
            if (rc) db_rollback(es.db);
            else rc = db_commit(es.db, &err);
        }
        for (int q = 0; q < nreq; q++) lm_result_free(&res[q]);
        free(own_heap);
        if (terminal) fprintf(stderr, "\r[eval] %d/%d samples ", done_n + (int)es.reused, total);
    }
    if (terminal) fputc('\n', stderr);
    if (rc) goto done;

    /* score: groups are "all", "subject: X" and "level: N" */
    if (json_out && !(jf = fopen(json_out, "w"))) {
        rc = dsm_errf(&err, DSM_EIO, "%s: cannot create", json_out);
        goto done;
    }
    int ngroups = 0, gcap = 16;
    char **gname = calloc((size_t)gcap, sizeof *gname);
    struct eval_totals *gt = calloc((size_t)gcap, sizeof *gt);
    for (int i = 0; i < np && rc == DSM_OK; i++) {
        struct problem *p = &ps[i];
        struct eval_item item = {p->gold, p->got_greedy ? &p->greedy : NULL, p->samples, k};
        struct eval_item_result r;
        if ((rc = eval_score_item(ac, &item, k, flags, &r, &err))) {
            dsm_err_prefix(&err, rc, "%s: problem %d", set, i + 1);
            break;
        }
        char names[3][160];
        snprintf(names[0], sizeof names[0], "all");
        snprintf(names[1], sizeof names[1], "subject: %s", p->subject ? p->subject : "-");
        snprintf(names[2], sizeof names[2], "level: %d", p->level);
        for (int gi = 0; gi < 3; gi++) {
            if (gi == 1 && !p->subject) continue;
            if (gi == 2 && p->level < 0) continue;
            int found = -1;
            for (int j = 0; j < ngroups; j++)
                if (!strcmp(gname[j], names[gi])) found = j;
            if (found < 0) {
                if (ngroups == gcap) {
                    gcap *= 2;
                    gname = realloc(gname, sizeof *gname * (size_t)gcap);
                    gt = realloc(gt, sizeof *gt * (size_t)gcap);
                    if (!gname || !gt) {
                        rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
                        break;
                    }
                }
                found = ngroups++;
                gname[found] = strdup(names[gi]);
                memset(&gt[found], 0, sizeof gt[found]);
            }
            eval_totals_add(&gt[found], &r, k, k);
        }
        if (jf) {
            json_t *samples = json_array();
            for (int s = 0; s < k; s++)
                json_array_append_new(samples, json_pack("{s:s, s:b}", "text", p->samples[s].text ? p->samples[s].text : "",
                                                         "truncated", p->samples[s].truncated));
            json_t *rec = json_pack("{s:i, s:s, s:s, s:o, s:i, s:i, s:b, s:o}", "index", i, "problem", p->text, "gold", p->gold,
                                    "greedy_correct", r.greedy_correct < 0 ? json_null() : json_boolean(r.greedy_correct),
                                    "n_correct", r.n_correct, "answered", r.answered, "maj_correct", r.maj_correct, "samples", samples);
            char *line = json_dumps(rec, JSON_COMPACT);
            if (line) fprintf(jf, "%s\n", line);
            free(line);
            json_decref(rec);
        }
    }
    /* "all" first, then subjects, then levels, each by name */
    for (int a = 1; a < ngroups; a++)
        for (int b = a; b > 0; b--) {
            int ka = gname[b][0] == 'a' ? 0 : gname[b][0] == 's' ? 1 : 2, kb = gname[b - 1][0] == 'a' ? 0 : gname[b - 1][0] == 's' ? 1 : 2;
            if (ka > kb || (ka == kb && strcmp(gname[b], gname[b - 1]) >= 0)) break;
            char *tn = gname[b];
            gname[b] = gname[b - 1], gname[b - 1] = tn;
            struct eval_totals tt = gt[b];
            gt[b] = gt[b - 1], gt[b - 1] = tt;
        }
    if (rc == DSM_OK) {
        printf("| group | problems | greedy acc %% | maj@%d %% | pass@1 %% | pass@%d %% |\n|---|---|---|---|---|---|\n", k, k);
        for (int j = 0; j < ngroups; j++) {
            const struct eval_totals *t = &gt[j];
            char greedy[32] = "-";
            if (t->greedy_scored) snprintf(greedy, sizeof greedy, "%.1f", 100.0 * t->greedy_correct / t->greedy_scored);
            printf("| %s | %d | %s | %.1f | %.1f | %.1f |\n", gname[j], t->problems, greedy,
                   100.0 * t->maj_correct / t->problems, 100.0 * t->pass1_sum / t->problems,
                   100.0 * t->pass_sum / t->problems);
        }
    }
    if (rc == DSM_OK && es.db) {
        rc = store_metrics(&es, gname, gt, ngroups, k, &err);
        if (!rc)
            fprintf(stderr, "dsm eval: run '%s' (id %s): %ld sample(s) recorded now, %ld from before\n", run, es.run_s, es.added,
                    es.reused);
    }
    for (int j = 0; j < ngroups; j++) free(gname[j]);
    free(gname);
    free(gt);
done:
    if (jf) fclose(jf);
    for (int i = 0; ps && i < np; i++) {
        free(ps[i].text), free(ps[i].gold), free(ps[i].subject);
        free((void *)ps[i].greedy.text);
        for (int j = 0; ps[i].samples && j < k; j++) free((void *)ps[i].samples[j].text);
        free(ps[i].samples);
        if (prompts) free(prompts[i]);
    }
    free(ps);
    free(prompts);
    free(msgs);
    free(reqs);
    free(res);
    ans_checker_destroy(ac);
    lm_destroy(lm);
    db_close(es.db);
    if (lm_exit) return lm_exit;
    return rc ? cli_fail(spec.name, &err) : 0;
}
