/* import.c - the shipped data sets -> problems, models, proofs, labels (see import.h).
 *
 * Every format is a function from one record (a JSON object; CSV rows are turned into objects
 * keyed by the header) to upserts. A record is validated completely before anything is written,
 * so a bad record writes nothing; the file's transaction holds everything else.
 */
#include "common/import.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"

/* ---- per-file context ------------------------------------------------------------------------ */

struct imp_ctx {
    struct dsm_db *db;
    const char *path;     /* for messages */
    const char *format;
    char origin[160];     /* "<format>:<file name>": stable across paths */
    char source[64];      /* competition: the file's base name */
    long line;            /* current record's line (or element number for JSON arrays) */
    int strict;
    struct imp_stats *st;
    struct dsm_err *err;
    char **csv_header;    /* CSV: header fields */
    int csv_ncols;
};

/* Report a bad record: with strict it is an error, otherwise a warning and a count. */
static int bad(struct imp_ctx *c, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(struct imp_ctx *c, const char *field, const char *fmt, ...) {
    char what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    c->st->bad++;
    if (c->strict)
        return dsm_errf(c->err, DSM_EINVAL, "%s:%ld: field '%s': %s (bad record; --strict)", c->path, c->line, field,
                        what);
    LOG_WARN("%s:%ld: field '%s': %s (record skipped)", c->path, c->line, field, what);
    return DSM_OK;
}

/* ---- field access ---------------------------------------------------------------------------- */

/* A required non-empty string field, or NULL after reporting it bad. */
static const char *req_str(struct imp_ctx *c, json_t *o, const char *key, int *status) {
    json_t *v = json_object_get(o, key);
    if (!v) {
        *status = bad(c, key, "missing");
        return NULL;
    }
    if (!json_is_string(v) || json_string_length(v) == 0) {
        *status = bad(c, key, "expected a non-empty string");
        return NULL;
    }
    return json_string_value(v);
}

/* An optional string field (NULL when absent, null or empty). */
static const char *opt_str(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) && json_string_length(v) ? json_string_value(v) : NULL;
}

/* A scalar (string, integer, real) as text in buf; NULL when absent or null. Reals print without
 * a trailing .0 when integral (AMC's 27.0 -> "27"). */
static const char *scalar_text(json_t *v, char *buf, size_t cap) {
    if (json_is_string(v)) return json_string_length(v) ? json_string_value(v) : NULL;
    if (json_is_integer(v)) {
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    if (json_is_real(v)) {
        snprintf(buf, cap, "%.15g", json_real_value(v));
        return buf;
    }
    return NULL;
}

int imp_last_boxed(const char *s, char **out, struct dsm_err *err) {
    *out = NULL;
    const char *best = NULL;
    size_t best_len = 0;
    for (const char *p = s; (p = strchr(p, '\\')) != NULL; p++) {
        size_t skip = 0;
        if (!strncmp(p, "\\boxed{", 7)) skip = 7;
        else if (!strncmp(p, "\\fbox{", 6)) skip = 6;
        if (!skip) continue;
        const char *q = p + skip;
        int depth = 1;
        const char *e = q;
        while (*e && depth) {
            if (*e == '{') depth++;
            else if (*e == '}') depth--;
            if (depth) e++;
        }
        if (depth) break; /* unbalanced: ignore this and anything after */
        if (e > q) {
            best = q;
            best_len = (size_t)(e - q);
        }
    }
    if (!best) return DSM_OK;
    char *r = malloc(best_len + 1);
    if (!r) return dsm_errf(err, DSM_ENOMEM, "out of memory");
    memcpy(r, best, best_len);
    r[best_len] = '\0';
    *out = r;
    return DSM_OK;
}

/* ---- upserts --------------------------------------------------------------------------------- */

struct prob {
    const char *source, *key, *statement, *solution, *gold, *answer_type, *subject, *level;
    json_t *meta; /* borrowed; NULL = {} */
};

static int sql_fail(struct imp_ctx *c) {
    return dsm_err_prefix(c->err, DSM_EDB, "%s:%ld", c->path, c->line);
}

static int upsert_problem(struct imp_ctx *c, const struct prob *p, char *id, size_t idcap) {
    char *meta = p->meta ? json_dumps(p->meta, JSON_COMPACT) : NULL;
    const char *v[] = {p->source, p->key, p->statement, p->solution, p->gold, p->answer_type, p->subject, p->level,
                       meta ? meta : "{}"};
    PGresult *r = NULL;
    int rc = db_exec(c->db,
                     "INSERT INTO problems (source, source_key, statement, reference_solution, gold_answer,"
                     " answer_type, subject, level, metadata)"
                     " VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, $9::jsonb)"
                     " ON CONFLICT (source, source_key) DO UPDATE SET statement = EXCLUDED.statement,"
                     "  reference_solution = coalesce(EXCLUDED.reference_solution, problems.reference_solution),"
                     "  gold_answer = coalesce(EXCLUDED.gold_answer, problems.gold_answer),"
                     "  answer_type = coalesce(EXCLUDED.answer_type, problems.answer_type),"
                     "  subject = coalesce(EXCLUDED.subject, problems.subject),"
                     "  level = coalesce(EXCLUDED.level, problems.level),"
                     "  metadata = problems.metadata || EXCLUDED.metadata"
                     " RETURNING id, (xmax = 0) AS inserted",
                     9, v, &r, c->err);
    free(meta);
    if (rc) return sql_fail(c);
    snprintf(id, idcap, "%s", db_get(r, 0, "id"));
    c->st->problems++;
    if (db_get(r, 0, "inserted")[0] == 't') c->st->inserted++;
    PQclear(r);
    return DSM_OK;
}

static int upsert_model(struct imp_ctx *c, const char *name, char *id, size_t idcap) {
    const char *v[] = {name};
    PGresult *r = NULL;
    int rc = db_exec(c->db,
                     "INSERT INTO models (name, kind) VALUES ($1::text, 'external')"
                     " ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id, (xmax = 0) AS inserted",
                     1, v, &r, c->err);
    if (rc) return sql_fail(c);
    snprintf(id, idcap, "%s", db_get(r, 0, "id"));
    if (db_get(r, 0, "inserted")[0] == 't') c->st->inserted++;
    PQclear(r);
    return DSM_OK;
}

static int upsert_proof(struct imp_ctx *c, const char *problem_id, const char *model_id, const char *text,
                        const char *key, json_t *meta, char *id, size_t idcap) {
    char *m = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    const char *v[] = {problem_id, model_id, text, c->origin, key, m ? m : "{}"};
    PGresult *r = NULL;
    int rc = db_exec(c->db,
                     "INSERT INTO proofs (problem_id, model_id, proof, origin, origin_key, metadata)"
                     " VALUES ($1::bigint, $2::bigint, $3::text, $4::text, $5::text, $6::jsonb)"
                     " ON CONFLICT (origin, origin_key) DO UPDATE SET problem_id = EXCLUDED.problem_id,"
                     "  model_id = EXCLUDED.model_id, proof = EXCLUDED.proof, metadata = EXCLUDED.metadata"
                     " RETURNING id, (xmax = 0) AS inserted",
                     6, v, &r, c->err);
    free(m);
    if (rc) return sql_fail(c);
    snprintf(id, idcap, "%s", db_get(r, 0, "id"));
    c->st->proofs++;
    if (db_get(r, 0, "inserted")[0] == 't') c->st->inserted++;
    PQclear(r);
    return DSM_OK;
}

static int upsert_human_label(struct imp_ctx *c, const char *proof_id, const char *value, const char *rule,
                              const char *points, const char *max_points, json_t *detail) {
    char *d = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
    const char *v[] = {proof_id, value, rule, points, max_points, d ? d : "{}", c->origin};
    PGresult *r = NULL;
    int rc = db_exec(c->db,
                     "INSERT INTO labels (proof_id, value, source, rule, points, max_points, detail, origin)"
                     " VALUES ($1::bigint, $2::numeric, 'human', $3::text, $4::numeric, $5::numeric, $6::jsonb, $7::text)"
                     " ON CONFLICT (proof_id, source, origin) DO UPDATE SET value = EXCLUDED.value,"
                     "  rule = EXCLUDED.rule, points = EXCLUDED.points, max_points = EXCLUDED.max_points,"
                     "  detail = EXCLUDED.detail"
                     " RETURNING (xmax = 0) AS inserted",
                     7, v, &r, c->err);
    free(d);
    if (rc) return sql_fail(c);
    c->st->labels++;
    if (db_get(r, 0, "inserted")[0] == 't') c->st->inserted++;
    PQclear(r);
    return DSM_OK;
}

/* ---- formats ----------------------------------------------------------------------------------- */

typedef int (*record_fn)(struct imp_ctx *c, json_t *o);

static int rec_gsm8k(struct imp_ctx *c, json_t *o) {
    int st = DSM_OK;
    const char *q = req_str(c, o, "question", &st), *a = q ? req_str(c, o, "answer", &st) : NULL;
    if (!q || !a) return st;
    const char *hash = NULL;
    for (const char *p = a; (p = strstr(p, "#### ")) != NULL; p++) hash = p;
    if (!hash) return bad(c, "answer", "no '#### ' before the gold answer");
    char gold[128];
    size_t k = 0;
    for (const char *p = hash + 5; *p && *p != '\n' && k + 1 < sizeof gold; p++)
        if (*p != ',') gold[k++] = *p; /* "1,000" -> "1000" */
    while (k && gold[k - 1] == ' ') k--;
    gold[k] = '\0';
    if (!k) return bad(c, "answer", "empty gold answer after '#### '");
    char key[24], id[24];
    snprintf(key, sizeof key, "%ld", c->line);
    struct prob p = {.source = "gsm8k", .key = key, .statement = q, .solution = a, .gold = gold};
    return upsert_problem(c, &p, id, sizeof id);
}

static int rec_math(struct imp_ctx *c, json_t *o) {
    int st = DSM_OK;
    const char *q = req_str(c, o, "problem", &st), *s = q ? req_str(c, o, "solution", &st) : NULL;
    if (!q || !s) return st;
    char kb[32], id[24];
    const char *key = scalar_text(json_object_get(o, "idx"), kb, sizeof kb);
    if (!key) return bad(c, "idx", "missing");
    const char *level = opt_str(o, "level");
    if (level && !strncmp(level, "Level ", 6)) level += 6;
    char *gold = NULL;
    if (imp_last_boxed(s, &gold, c->err)) return c->err ? c->err->code : DSM_ENOMEM;
    if (!gold) return bad(c, "solution", "no \\boxed{} or \\fbox{} holding the gold answer");
    struct prob p = {.source = "math", .key = key, .statement = q, .solution = s, .gold = gold,
                     .subject = opt_str(o, "type"), .level = level};
    int rc = upsert_problem(c, &p, id, sizeof id);
    free(gold);
    return rc;
}

static int rec_math500(struct imp_ctx *c, json_t *o) {
    int st = DSM_OK;
    const char *q = req_str(c, o, "problem", &st), *key = q ? req_str(c, o, "unique_id", &st) : NULL,
               *a = key ? req_str(c, o, "answer", &st) : NULL;
    if (!q || !key || !a) return st;
    char lb[32], id[24];
    struct prob p = {.source = "math500", .key = key, .statement = q, .solution = opt_str(o, "solution"), .gold = a,
                     .subject = opt_str(o, "subject"), .level = scalar_text(json_object_get(o, "level"), lb, sizeof lb)};
    return upsert_problem(c, &p, id, sizeof id);
}

/* aime24, amc23, olympiadbench, minerva_math */
static int rec_competition(struct imp_ctx *c, json_t *o) {
    char kb[32], gb[64], id[24];
    const char *key = scalar_text(json_object_get(o, "id"), kb, sizeof kb);
    if (!key) key = scalar_text(json_object_get(o, "idx"), kb, sizeof kb);
    if (!key) return bad(c, "id", "missing (and no idx)");
    const char *q = opt_str(o, "problem");
    if (!q) q = opt_str(o, "question");
    if (!q) return bad(c, "problem", "missing (and no question)");
    json_t *sol = json_object_get(o, "solution");
    char *soltext = NULL, *gold_own = NULL;
    const char *gold = scalar_text(json_object_get(o, "answer"), gb, sizeof gb);
    json_t *meta = json_object();
    int rc = DSM_OK;
    if (json_is_string(sol)) {
        soltext = strdup(json_string_value(sol));
    } else if (json_is_array(sol)) { /* OlympiadBench: a list of solutions */
        size_t i, total = 1;
        json_t *e;
        json_array_foreach(sol, i, e) total += (json_is_string(e) ? json_string_length(e) : 0) + 2;
        soltext = calloc(total, 1);
        json_array_foreach(sol, i, e) if (soltext && json_is_string(e)) {
            if (i) strcat(soltext, "\n\n");
            strcat(soltext, json_string_value(e));
        }
    }
    json_t *fa = json_object_get(o, "final_answer");
    if (!gold && json_is_array(fa) && json_array_size(fa)) {
        size_t i, total = 1;
        json_t *e;
        json_array_foreach(fa, i, e) total += (json_is_string(e) ? json_string_length(e) : 0) + 2;
        gold_own = calloc(total, 1);
        json_array_foreach(fa, i, e) if (gold_own && json_is_string(e)) {
            if (i) strcat(gold_own, ", ");
            strcat(gold_own, json_string_value(e));
        }
        gold = gold_own;
        json_object_set(meta, "final_answer", fa);
    }
    if (!gold && soltext) {
        if ((rc = imp_last_boxed(soltext, &gold_own, c->err))) goto done;
        gold = gold_own;
    }
    if (!gold) {
        rc = bad(c, "answer", "no gold answer (answer, final_answer or a \\boxed{} in solution)");
        goto done;
    }
    const char *copy[] = {"url", "unit", "is_multiple_answer", "context", "error"};
    for (size_t i = 0; i < DSM_ARRAY_LEN(copy); i++) {
        json_t *v = json_object_get(o, copy[i]);
        if (v && !json_is_null(v)) json_object_set(meta, copy[i], v);
    }
    const char *subject = opt_str(o, "subfield");
    if (!subject) subject = opt_str(o, "type");
    struct prob p = {.source = c->source, .key = key, .statement = q, .solution = soltext, .gold = gold,
                     .answer_type = opt_str(o, "answer_type"), .subject = subject, .meta = meta};
    rc = upsert_problem(c, &p, id, sizeof id);
done:
    json_decref(meta);
    free(soltext);
    free(gold_own);
    return rc;
}

static int rec_v2_input(struct imp_ctx *c, json_t *o) {
    int st = DSM_OK;
    const char *key = req_str(c, o, "problem_idx", &st), *q = key ? req_str(c, o, "question", &st) : NULL;
    if (!key || !q) return st;
    const char *a = opt_str(o, "answer");
    if (a && !strcmp(a, "null")) a = NULL; /* proof-only problem */
    json_t *meta = json_object();
    if (opt_str(o, "contest")) json_object_set(meta, "contest", json_object_get(o, "contest"));
    char id[24];
    struct prob p = {.source = strncmp(key, "PB-", 3) ? "v2" : "proofbench", .key = key, .statement = q, .gold = a,
                     .meta = meta};
    int rc = upsert_problem(c, &p, id, sizeof id);
    json_decref(meta);
    return rc;
}

/* The contest's points scale from the problem id: CMO 21, Putnam 10, IMO and ProofBench 7. */
static int v2_max_points(const char *key) {
    if (!strncmp(key, "CMO", 3)) return 21;
    if (!strncmp(key, "Putnam", 6)) return 10;
    return 7;
}

static int rec_v2_output(struct imp_ctx *c, json_t *o) {
    int st = DSM_OK;
    const char *key = req_str(c, o, "problem_idx", &st), *q = key ? req_str(c, o, "question", &st) : NULL;
    if (!key || !q) return st;
    json_t *mp = json_object_get(o, "model_prediction");
    if (!json_is_object(mp)) return bad(c, "model_prediction", "missing or not an object");
    const char *proof = opt_str(mp, "proof");
    if (!proof) return bad(c, "model_prediction.proof", "missing or empty");
    json_t *hr = json_object_get(mp, "human_rating");
    double points;
    if (json_is_number(hr)) {
        points = json_number_value(hr);
    } else if (json_is_string(hr)) {
        char *end = NULL;
        points = strtod(json_string_value(hr), &end);
        if (end == json_string_value(hr) || *end) return bad(c, "model_prediction.human_rating", "not a number");
    } else {
        return bad(c, "model_prediction.human_rating", "missing");
    }
    int maxp = v2_max_points(key);
    if (points < 0 || points > maxp)
        return bad(c, "model_prediction.human_rating", "%g is outside 0..%d (the contest's scale)", points, maxp);
    json_t *meta = json_object(), *pmeta = json_object();
    const char *copy[] = {"grading guidelines", "level", "source", "type", "question_original"};
    for (size_t i = 0; i < DSM_ARRAY_LEN(copy); i++) {
        json_t *v = json_object_get(o, copy[i]);
        if (v && !json_is_null(v)) json_object_set(meta, copy[i], v);
    }
    json_t *avg = json_object_get(mp, "average_automatic_rating");
    if (json_is_number(avg)) json_object_set(pmeta, "average_automatic_rating", avg);
    char pid[24], mid[24], prid[24], pts[32], mx[16];
    struct prob p = {.source = strncmp(key, "PB-", 3) ? "v2" : "proofbench", .key = key, .statement = q,
                     .solution = opt_str(o, "solution"), .meta = meta};
    int rc = upsert_problem(c, &p, pid, sizeof pid);
    if (!rc) rc = upsert_model(c, "DeepSeekMath-V2", mid, sizeof mid);
    if (!rc) rc = upsert_proof(c, pid, mid, proof, key, pmeta, prid, sizeof prid);
    snprintf(pts, sizeof pts, "%g", points);
    snprintf(mx, sizeof mx, "%d", maxp);
    const char *value = points >= maxp ? "1" : points <= 0 ? "0" : "0.5";
    if (!rc) rc = upsert_human_label(c, prid, value, "points-scale", pts, mx, NULL);
    json_decref(meta);
    json_decref(pmeta);
    return rc;
}

static int rec_opc(struct imp_ctx *c, json_t *o) {
    int st = DSM_OK;
    const char *pkey = req_str(c, o, "problem_id", &st), *q = pkey ? req_str(c, o, "problem", &st) : NULL,
               *proof = q ? req_str(c, o, "proof", &st) : NULL, *model = proof ? req_str(c, o, "model_id", &st) : NULL,
               *verdict = model ? req_str(c, o, "human_verdict", &st) : NULL;
    if (!verdict) return st;
    const char *value = !strcmp(verdict, "correct") ? "1" : !strcmp(verdict, "incorrect") ? "0" : NULL;
    if (!value) return bad(c, "human_verdict", "'%s' is neither 'correct' nor 'incorrect'", verdict);
    json_t *meta = json_object(), *pmeta = json_object(), *detail = json_object();
    const char *copy[] = {"competition", "source", "year", "level"};
    for (size_t i = 0; i < DSM_ARRAY_LEN(copy); i++) {
        json_t *v = json_object_get(o, copy[i]);
        if (v && !json_is_null(v)) json_object_set(meta, copy[i], v);
    }
    json_t *issues = json_object_get(o, "llm_judge_issues");
    if (issues && !json_is_null(issues)) json_object_set(pmeta, "llm_judge_issues", issues);
    json_object_set_new(detail, "verdict", json_string(verdict));
    json_t *ann = json_object_get(o, "human_annotations");
    if (ann && !json_is_null(ann)) json_object_set(detail, "human_annotations", ann);
    char pid[24], mid[24], prid[24], key[512];
    snprintf(key, sizeof key, "%s/%s", pkey, model);
    struct prob p = {.source = "opc", .key = pkey, .statement = q, .solution = opt_str(o, "reference_solution"),
                     .level = opt_str(o, "level"), .meta = meta};
    int rc = upsert_problem(c, &p, pid, sizeof pid);
    if (!rc) rc = upsert_model(c, model, mid, sizeof mid);
    if (!rc) rc = upsert_proof(c, pid, mid, proof, key, pmeta, prid, sizeof prid);
    if (!rc) rc = upsert_human_label(c, prid, value, "opc-verdict", NULL, NULL, detail);
    json_decref(meta);
    json_decref(pmeta);
    json_decref(detail);
    return rc;
}

static int rec_mr_gsm8k(struct imp_ctx *c, json_t *o) {
    int st = DSM_OK;
    const char *key = req_str(c, o, "uuid", &st), *q = key ? req_str(c, o, "question", &st) : NULL;
    if (!key || !q) return st;
    char gb[64];
    const char *gold = scalar_text(json_object_get(o, "ground_truth_answer"), gb, sizeof gb);
    if (!gold) return bad(c, "ground_truth_answer", "missing");
    json_t *steps = json_object_get(o, "model_output_steps");
    if (!json_is_array(steps) || !json_array_size(steps)) return bad(c, "model_output_steps", "missing or empty");
    size_t i, total = 1;
    json_t *e;
    json_array_foreach(steps, i, e) {
        if (!json_is_string(e)) return bad(c, "model_output_steps", "element %zu is not a string", i);
        total += json_string_length(e) + 1;
    }
    const char *corr = opt_str(o, "model_output_solution_correctness");
    const char *value = corr && !strcmp(corr, "correct") ? "1" : corr && !strcmp(corr, "wrong") ? "0" : NULL;
    if (!value) return bad(c, "model_output_solution_correctness", "expected 'wrong' or 'correct'");
    char *proof = malloc(total);
    if (!proof) return dsm_errf(c->err, DSM_ENOMEM, "out of memory");
    proof[0] = '\0';
    json_array_foreach(steps, i, e) {
        if (i) strcat(proof, "\n");
        strcat(proof, json_string_value(e));
    }
    json_t *meta = json_object(), *detail = json_object();
    if (opt_str(o, "question_type")) json_object_set(meta, "question_type", json_object_get(o, "question_type"));
    const char *dk[] = {"model_output_solution_first_error_step", "model_output_solution_first_error_reason",
                        "model_output_answer_correctness"};
    for (size_t k = 0; k < DSM_ARRAY_LEN(dk); k++) {
        json_t *v = json_object_get(o, dk[k]);
        if (v && !json_is_null(v)) json_object_set(detail, dk[k] + strlen("model_output_"), v);
    }
    char pid[24], mid[24], prid[24];
    struct prob p = {.source = "mr_gsm8k", .key = key, .statement = q, .solution = opt_str(o, "ground_truth_solution"),
                     .gold = gold, .meta = meta};
    int rc = upsert_problem(c, &p, pid, sizeof pid);
    if (!rc) rc = upsert_model(c, "mr-gsm8k-unknown", mid, sizeof mid);
    if (!rc) rc = upsert_proof(c, pid, mid, proof, key, NULL, prid, sizeof prid);
    if (!rc) rc = upsert_human_label(c, prid, value, "mr-gsm8k-first-error", NULL, NULL, detail);
    free(proof);
    json_decref(meta);
    json_decref(detail);
    return rc;
}

static int rec_proofbench(struct imp_ctx *c, json_t *o) {
    int st = DSM_OK;
    const char *key = req_str(c, o, "Problem ID", &st), *q = key ? req_str(c, o, "Problem", &st) : NULL;
    if (!key || !q) return st;
    json_t *meta = json_object();
    const char *copy[] = {"Grading guidelines", "Source", "Subcategory"};
    for (size_t i = 0; i < DSM_ARRAY_LEN(copy); i++)
        if (opt_str(o, copy[i])) json_object_set(meta, copy[i], json_object_get(o, copy[i]));
    char id[24];
    struct prob p = {.source = !strcmp(c->format, "proofbench") ? "proofbench" : "answerbench", .key = key,
                     .statement = q, .solution = opt_str(o, "Solution"), .gold = opt_str(o, "Short Answer"),
                     .subject = opt_str(o, "Category"), .level = opt_str(o, "Level"), .meta = meta};
    int rc = upsert_problem(c, &p, id, sizeof id);
    json_decref(meta);
    return rc;
}

enum container { C_JSONL, C_JSON_ARRAY, C_CSV };

static const struct format {
    const char *name;
    const char *match;  /* substring of the path */
    const char *suffix; /* how the file name ends */
    enum container kind;
    record_fn fn;
} formats[] = {
    {"mr-gsm8k", "mr_gsm8k/", ".jsonl", C_JSONL, rec_mr_gsm8k},
    {"gsm8k", "gsm8k/", ".jsonl", C_JSONL, rec_gsm8k},
    {"math500", "math500/", ".jsonl", C_JSONL, rec_math500},
    {"math", "math/", ".jsonl", C_JSONL, rec_math},
    {"competition", "competition/", ".jsonl", C_JSONL, rec_competition},
    {"v2-inputs", "v2/inputs/", ".json", C_JSON_ARRAY, rec_v2_input},
    {"v2-outputs", "v2/outputs/", ".jsonl", C_JSONL, rec_v2_output},
    {"proofbench", "proofbench", ".csv", C_CSV, rec_proofbench},
    {"answerbench", "answerbench", ".csv", C_CSV, rec_proofbench},
    {"opc", "opc/", ".jsonl", C_JSONL, rec_opc},
};

static const struct format *format_by_name(const char *name) {
    for (size_t i = 0; i < DSM_ARRAY_LEN(formats); i++)
        if (!strcmp(formats[i].name, name)) return &formats[i];
    return NULL;
}

const char *imp_format_detect(const char *path) {
    size_t len = strlen(path);
    for (size_t i = 0; i < DSM_ARRAY_LEN(formats); i++) {
        size_t sl = strlen(formats[i].suffix);
        if (len < sl || strcmp(path + len - sl, formats[i].suffix)) continue;
        const char *m = strstr(path, formats[i].match);
        /* "gsm8k/" must not match inside "mr_gsm8k/", "math/" not inside "math500/" */
        if (m && (m == path || m[-1] == '/' || formats[i].kind == C_CSV)) return formats[i].name;
    }
    return NULL;
}

/* ---- containers -------------------------------------------------------------------------------- */

static int run_jsonl(struct imp_ctx *c, const struct format *f, char *text, size_t len) {
    char *p = text, *end = text + len;
    long line = 0;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *stop = nl ? nl : end;
        line++;
        c->line = line;
        size_t n = (size_t)(stop - p);
        int blank = 1;
        for (size_t i = 0; i < n; i++)
            if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') blank = 0;
        if (!blank) {
            c->st->records++;
            json_error_t je;
            json_t *o = json_loadb(p, n, 0, &je);
            int rc;
            if (!o || !json_is_object(o))
                rc = bad(c, "(record)", o ? "not a JSON object" : "invalid JSON at column %d: %s", je.column, je.text);
            else
                rc = f->fn(c, o);
            json_decref(o);
            if (rc) return rc;
        }
        p = stop + 1;
    }
    return DSM_OK;
}

static int run_json_array(struct imp_ctx *c, const struct format *f, const char *text, size_t len) {
    json_error_t je;
    json_t *a = json_loadb(text, len, 0, &je);
    if (!a || !json_is_array(a)) {
        json_decref(a);
        c->line = a ? 1 : je.line;
        c->st->records++;
        c->st->bad++;
        return dsm_errf(c->err, DSM_EINVAL, "%s:%d: %s", c->path, je.line,
                        a ? "expected a JSON array of objects" : je.text);
    }
    size_t i;
    json_t *o;
    int rc = DSM_OK;
    json_array_foreach(a, i, o) {
        c->line = (long)i + 1; /* element number: the array is not line-oriented */
        c->st->records++;
        rc = json_is_object(o) ? f->fn(c, o) : bad(c, "(element)", "not a JSON object");
        if (rc) break;
    }
    json_decref(a);
    return rc;
}

static int csv_record(char **fields, int n, long line, const char *problem, void *ctx, struct dsm_err *err) {
    struct imp_ctx *c = ctx;
    c->line = line;
    if (!c->csv_header) {
        c->csv_header = calloc((size_t)n, sizeof *c->csv_header);
        if (!c->csv_header) return dsm_errf(err, DSM_ENOMEM, "out of memory");
        for (int i = 0; i < n; i++) {
            c->csv_header[i] = strdup(fields[i]);
            if (!c->csv_header[i]) return dsm_errf(err, DSM_ENOMEM, "out of memory");
        }
        c->csv_ncols = n;
        if (problem) return dsm_errf(err, DSM_EINVAL, "%s:%ld: malformed CSV header (%s)", c->path, line, problem);
        return DSM_OK;
    }
    c->st->records++;
    if (problem) return bad(c, "(record)", "malformed CSV (%s)", problem);
    if (n != c->csv_ncols) return bad(c, "(record)", "%d fields where the header has %d", n, c->csv_ncols);
    json_t *o = json_object();
    for (int i = 0; i < n; i++) json_object_set_new(o, c->csv_header[i], json_string(fields[i]));
    const struct format *f = format_by_name(c->format);
    int rc = f->fn(c, o);
    json_decref(o);
    return rc;
}

/* ---- files --------------------------------------------------------------------------------------- */

int imp_file(struct dsm_db *db, const char *path, const char *format, int strict, struct imp_stats *st,
             struct dsm_err *err) {
    if (!format) format = imp_format_detect(path);
    if (!format)
        return dsm_errf(err, DSM_EINVAL, "%s: unknown data set; name its format with --format (one of: gsm8k, math, "
                                         "math500, competition, v2-inputs, v2-outputs, proofbench, answerbench, opc, mr-gsm8k)",
                        path);
    const struct format *f = format_by_name(format);
    if (!f) return dsm_errf(err, DSM_EINVAL, "unknown format '%s'", format);
    char *text = NULL;
    size_t len = 0;
    int rc = dsm_file_read(path, &text, &len, err);
    if (rc) return rc;
    struct imp_stats local = {0};
    struct imp_ctx c = {.db = db, .path = path, .format = f->name, .strict = strict, .st = &local, .err = err};
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(c.origin, sizeof c.origin, "%s:%s", f->name, base);
    snprintf(c.source, sizeof c.source, "%.*s", (int)strcspn(base, "."), base);
    double t0 = dsm_now();
    rc = db_begin(db, err);
    if (!rc) {
        if (f->kind == C_JSONL) rc = run_jsonl(&c, f, text, len);
        else if (f->kind == C_JSON_ARRAY) rc = run_json_array(&c, f, text, len);
        else rc = csv_parse(text, len, path, csv_record, &c, err);
        if (!rc) rc = db_commit(db, err);
        else db_rollback(db);
    }
    if (c.csv_header) {
        for (int i = 0; i < c.csv_ncols; i++) free(c.csv_header[i]);
        free(c.csv_header);
    }
    free(text);
    if (rc) return rc;
    st->files++;
    st->records += local.records;
    st->bad += local.bad;
    st->problems += local.problems;
    st->proofs += local.proofs;
    st->labels += local.labels;
    st->inserted += local.inserted;
    if (st->on_file) st->on_file(c.origin, st->on_file_ctx);
    LOG_INFO("%s (%s): %ld records, %ld bad, %ld problems, %ld proofs, %ld labels, %ld new rows in %.2f s", path,
             f->name, local.records, local.bad, local.problems, local.proofs, local.labels, local.inserted,
             dsm_now() - t0);
    return DSM_OK;
}

static int name_cmp(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

int imp_path(struct dsm_db *db, const char *path, const char *format, int strict, struct imp_stats *st,
             struct dsm_err *err) {
    struct stat sb;
    if (stat(path, &sb) != 0) return dsm_errf(err, DSM_ENOTFOUND, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return imp_file(db, path, format, strict, st, err);
    struct dirent **names = NULL;
    int n = scandir(path, &names, NULL, name_cmp);
    if (n < 0) return dsm_errf(err, DSM_EIO, "cannot list %s: %s", path, strerror(errno));
    int rc = DSM_OK;
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        if (!rc && nm[0] != '.') {
            char child[PATH_MAX];
            if (snprintf(child, sizeof child, "%s/%s", path, nm) >= (int)sizeof child) {
                rc = dsm_errf(err, DSM_EINVAL, "path too long under %s", path);
            } else if (stat(child, &sb) == 0 && S_ISDIR(sb.st_mode)) {
                rc = imp_path(db, child, format, strict, st, err);
            } else if (format || imp_format_detect(child)) {
                rc = imp_file(db, child, format, strict, st, err);
            } else {
                LOG_INFO("%s: not a known data set, skipped", child);
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

/* ---- export ---------------------------------------------------------------------------------------- */

int imp_export_labeled(struct dsm_db *db, FILE *out, const char *label_source, long *n, struct dsm_err *err) {
    if (n) *n = 0;
    int rc = db_begin(db, err);
    if (rc) return rc;
    const char *p[] = {label_source};
    rc = db_exec(db,
                 "DECLARE dsm_export NO SCROLL CURSOR FOR"
                 " SELECT jsonb_build_object("
                 "  'version', 1, 'proof_id', lp.proof_id,"
                 "  'problem', jsonb_build_object('source', pr.source, 'key', pr.source_key,"
                 "     'statement', pr.statement, 'gold_answer', pr.gold_answer),"
                 "  'generator', lp.generator, 'proof', p.proof, 'self_evaluation', p.self_evaluation,"
                 "  'self_score', p.self_score, 'origin', p.origin, 'origin_key', p.origin_key,"
                 "  'sampling', p.sampling, 'seed', p.seed, 'round', p.round,"
                 "  'label', jsonb_build_object('value', lp.label, 'source', lp.label_source, 'rule', lp.rule,"
                 "     'n', lp.n, 'm', lp.m, 'k', lp.k, 'vote', lp.vote, 'points', lp.points,"
                 "     'max_points', lp.max_points, 'origin', lp.label_origin, 'detail', lp.label_detail),"
                 "  'verifications', jsonb_build_object('n', lp.n_verifications, 'mean_score', lp.mean_score,"
                 "     'histogram', lp.histogram)"
                 " )::text AS line"
                 " FROM labeled_proofs lp JOIN proofs p ON p.id = lp.proof_id JOIN problems pr ON pr.id = lp.problem_id"
                 " WHERE $1::text IS NULL OR lp.label_source = $1::text"
                 " ORDER BY lp.proof_id, lp.label_id",
                 1, p, NULL, err);
    while (!rc) {
        PGresult *r = NULL;
        rc = db_exec(db, "FETCH 500 FROM dsm_export", 0, NULL, &r, err);
        if (rc) break;
        int rows = PQntuples(r);
        for (int i = 0; i < rows; i++) {
            if (fputs(db_get(r, i, "line"), out) == EOF || fputc('\n', out) == EOF) {
                rc = dsm_errf(err, DSM_EIO, "writing the export failed: %s", strerror(errno));
                break;
            }
            if (n) (*n)++;
        }
        PQclear(r);
        if (rows == 0) break;
    }
    if (rc) {
        db_rollback(db);
        return rc;
    }
    return db_commit(db, err);
}
