/* test_db_views.c - the SQL views on a small hand-made dataset, the roles, and the CSV reader.
 *
 * Agreement case (verifier V, one analysis per proof, "incorrect" = score or label below 1):
 *   proofs 1-5 by generator G1, 6-10 by G2.
 *   human:    0   0   1   0.5 1  | 0   0   1   1   1
 *   verifier: 0   0.5 0   0   1  | 0   1   1   1   1
 * All rows: tp = 4 (1,2,4,6), fp = 1 (3), fn = 1 (7), tn = 4 (5,8,9,10), n = 10
 *   accuracy 0.8; TPR 4/5, TNR 4/5 -> balanced 0.8; precision 4/5; recall 4/5;
 *   pe = ((tp+fp)(tp+fn) + (fn+tn)(fp+tn)) / n^2 = (5*5 + 5*5) / 100 = 0.5; kappa = 0.3/0.5 = 0.6.
 * G1 (proofs 1-5): tp 3, fp 1, fn 0, tn 1, n 5
 *   accuracy 0.8; TPR 1, TNR 0.5 -> balanced 0.75; precision 0.75; recall 1;
 *   pe = (4*3 + 1*2) / 25 = 0.56; kappa = (0.8 - 0.56) / 0.44 = 0.545454...
 * Proof 1 also gets analyses from a second verifier W (scores 0.5, 1, 1, and one format failure),
 * which feed proof_verification_stats but not V's agreement.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/db.h"
#include "common/import.h"
#include "tests/unit/db_test_util.h"
#include "tests/unit/test.h"

static struct dbt_cluster cluster;

static int exec_ok(struct dsm_db *db, const char *sql) {
    struct dsm_err err = {0};
    int rc = db_exec(db, sql, 0, NULL, NULL, &err);
    if (rc) fprintf(stderr, "exec: %s\n", err.msg);
    return rc;
}

static void seed(struct dsm_db *db) {
    CHECK(exec_ok(db, "INSERT INTO problems (source, source_key, statement) VALUES ('hand', 'p1', 'Show it.')") == 0);
    CHECK(exec_ok(db, "INSERT INTO models (name, kind) VALUES ('G1', 'external'), ('G2', 'external'),"
                      " ('V', 'external'), ('W', 'external')") == 0);
    CHECK(exec_ok(db, "INSERT INTO proofs (problem_id, model_id, proof, origin, origin_key)"
                      " SELECT 1, (SELECT id FROM models WHERE name = CASE WHEN i <= 5 THEN 'G1' ELSE 'G2' END),"
                      "  'proof ' || i, 'hand', i::text FROM generate_series(1, 10) i") == 0);
    CHECK(exec_ok(db, "INSERT INTO labels (proof_id, value, source, rule, origin)"
                      " SELECT p.id, h.v, 'human', 'hand', 'hand' FROM proofs p"
                      " JOIN (VALUES (1, 0), (2, 0), (3, 1), (4, 0.5), (5, 1), (6, 0), (7, 0), (8, 1), (9, 1), (10, 1))"
                      "  AS h(k, v) ON p.origin_key = h.k::text") == 0);
    CHECK(exec_ok(db, "INSERT INTO verifications (proof_id, model_id, score)"
                      " SELECT p.id, (SELECT id FROM models WHERE name = 'V'), s.v FROM proofs p"
                      " JOIN (VALUES (1, 0), (2, 0.5), (3, 0), (4, 0), (5, 1), (6, 0), (7, 1), (8, 1), (9, 1), (10, 1))"
                      "  AS s(k, v) ON p.origin_key = s.k::text") == 0);
    CHECK(exec_ok(db, "INSERT INTO verifications (proof_id, model_id, score, format_ok)"
                      " SELECT 1, (SELECT id FROM models WHERE name = 'W'), v, v IS NOT NULL"
                      " FROM (VALUES (0.5), (1), (1), (NULL)) AS t(v)") == 0);
    /* an auto label with its vote, for labeled_proofs */
    CHECK(exec_ok(db, "INSERT INTO labels (proof_id, value, source, rule, n, m, k, vote, origin)"
                      " VALUES (1, 0, 'auto', 'v2-vote', 64, 3, 2, '{\"lowest\": 0, \"valid_at_lowest\": 2}', 'round 1')") == 0);
}

static PGresult *query(struct dsm_db *db, const char *sql) {
    struct dsm_err err = {0};
    PGresult *r = NULL;
    if (db_exec(db, sql, 0, NULL, &r, &err)) fprintf(stderr, "query: %s\n", err.msg);
    return r;
}

static void test_views(struct dsm_db *db) {
    seed(db);
    PGresult *r = query(db, "SELECT * FROM verifier_agreement WHERE verifier = 'V' AND grouped_by = 'all'");
    CHECK(r && PQntuples(r) == 1);
    if (r && PQntuples(r) == 1) {
        CHECK(db_get_i64(r, 0, "n", 0) == 10);
        CHECK(db_get_i64(r, 0, "tp", 0) == 4);
        CHECK(db_get_i64(r, 0, "fp", 0) == 1);
        CHECK(db_get_i64(r, 0, "fn", 0) == 1);
        CHECK(db_get_i64(r, 0, "tn", 0) == 4);
        CHECK_NEAR(db_get_f64(r, 0, "accuracy", -1), 0.8, 1e-12);
        CHECK_NEAR(db_get_f64(r, 0, "balanced_accuracy", -1), 0.8, 1e-12);
        CHECK_NEAR(db_get_f64(r, 0, "precision_incorrect", -1), 0.8, 1e-12);
        CHECK_NEAR(db_get_f64(r, 0, "recall_incorrect", -1), 0.8, 1e-12);
        CHECK_NEAR(db_get_f64(r, 0, "kappa", -1), 0.6, 1e-12);
    }
    PQclear(r);
    r = query(db, "SELECT * FROM verifier_agreement WHERE verifier = 'V' AND grouped_by = 'generator' AND generator = 'G1'");
    CHECK(r && PQntuples(r) == 1);
    if (r && PQntuples(r) == 1) {
        CHECK(db_get_i64(r, 0, "tp", 0) == 3 && db_get_i64(r, 0, "fp", 0) == 1 && db_get_i64(r, 0, "fn", -1) == 0 &&
              db_get_i64(r, 0, "tn", 0) == 1);
        CHECK_NEAR(db_get_f64(r, 0, "accuracy", -1), 0.8, 1e-12);
        CHECK_NEAR(db_get_f64(r, 0, "balanced_accuracy", -1), 0.75, 1e-12);
        CHECK_NEAR(db_get_f64(r, 0, "precision_incorrect", -1), 0.75, 1e-12);
        CHECK_NEAR(db_get_f64(r, 0, "recall_incorrect", -1), 1.0, 1e-12);
        CHECK_NEAR(db_get_f64(r, 0, "kappa", -1), 0.24 / 0.44, 1e-12);
    }
    PQclear(r);
    r = query(db, "SELECT * FROM verifier_agreement WHERE verifier = 'V' AND grouped_by = 'source'");
    CHECK(r && PQntuples(r) == 1 && !strcmp(db_get(r, 0, "source"), "hand") && db_get_i64(r, 0, "n", 0) == 10);
    PQclear(r);
    /* W judged only proof 1 (human 0): 3 scored analyses, one says 0.5 (agrees), two say 1 */
    r = query(db, "SELECT * FROM verifier_agreement WHERE verifier = 'W' AND grouped_by = 'all'");
    CHECK(r && PQntuples(r) == 1 && db_get_i64(r, 0, "tp", 0) == 1 && db_get_i64(r, 0, "fn", 0) == 2);
    if (r && PQntuples(r) == 1) CHECK(db_get(r, 0, "balanced_accuracy") == NULL); /* no "correct" references */
    PQclear(r);

    r = query(db, "SELECT * FROM proof_verification_stats WHERE proof_id = 1");
    CHECK(r && PQntuples(r) == 1);
    if (r && PQntuples(r) == 1) {
        CHECK(db_get_i64(r, 0, "n_verifications", 0) == 5);
        CHECK(db_get_i64(r, 0, "n_scored", 0) == 4);
        CHECK(db_get_i64(r, 0, "n_format_failures", 0) == 1);
        CHECK_NEAR(db_get_f64(r, 0, "mean_score", -1), 2.5 / 4, 1e-12);
        CHECK(db_get_i64(r, 0, "n_score_0", -1) == 1 && db_get_i64(r, 0, "n_score_half", -1) == 1 &&
              db_get_i64(r, 0, "n_score_1", -1) == 2);
        CHECK(!strcmp(db_get(r, 0, "histogram"), "{\"0\": 1, \"1\": 2, \"0.5\": 1}"));
    }
    PQclear(r);
    r = query(db, "SELECT * FROM labeled_proofs ORDER BY label_id");
    CHECK(r && PQntuples(r) == 11);
    if (r && PQntuples(r) == 11) {
        CHECK(!strcmp(db_get(r, 10, "label_source"), "auto"));
        CHECK(db_get_i64(r, 10, "n", 0) == 64 && db_get_i64(r, 10, "m", 0) == 3 && db_get_i64(r, 10, "k", 0) == 2);
        CHECK(!strcmp(db_get(r, 0, "generator"), "G1"));
        CHECK(db_get_i64(r, 0, "n_verifications", 0) == 5);
    }
    PQclear(r);
    /* the protocol's constraints */
    struct dsm_err err = {0};
    CHECK(db_exec(db, "INSERT INTO verifications (proof_id, score) VALUES (1, 0.7)", 0, NULL, NULL, &err) == DSM_EDB);
    CHECK(!strcmp(db_last_sqlstate(db), "23514"));
    CHECK(db_exec(db, "INSERT INTO labels (proof_id, value, source) VALUES (99, 1, 'human')", 0, NULL, NULL, &err) == DSM_EDB);
    CHECK(!strcmp(db_last_sqlstate(db), "23503"));
    CHECK(db_exec(db, "INSERT INTO labels (proof_id, value, source) VALUES (1, 1, 'auto')", 0, NULL, NULL, &err) == DSM_EDB);
}

/* Connect as a fresh login role `user` that is a member of `group`. */
static struct dsm_db *connect_as(struct dsm_db *admin, const char *ci, const char *user, const char *group) {
    char sql[200], uci[1600];
    snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", user);
    exec_ok(admin, sql);
    snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN IN ROLE %s", user, group);
    if (exec_ok(admin, sql)) return NULL;
    /* the later user= wins in a libpq conninfo string */
    snprintf(uci, sizeof uci, "%s user=%s", ci, user);
    return dbt_connect(uci);
}

static int denied(struct dsm_db *db, const char *sql) {
    struct dsm_err err = {0};
    int rc = db_exec(db, sql, 0, NULL, NULL, &err);
    if (rc == DSM_OK) fprintf(stderr, "not denied: %s\n", sql);
    return rc == DSM_EDB && !strcmp(db_last_sqlstate(db), "42501");
}

static void test_roles(struct dsm_db *admin, const char *ci) {
    struct dsm_db *alice = connect_as(admin, ci, "alice", "dsm_submitter");
    struct dsm_db *bob = connect_as(admin, ci, "bob", "dsm_submitter");
    struct dsm_db *worker = connect_as(admin, ci, "wally", "dsm_worker");
    CHECK(alice && bob && worker);
    if (!alice || !bob || !worker) goto done;
    struct dsm_err err = {0};
    const char *p[] = {"Show 1+1=2.", "1+1=2 by definition."};
    PGresult *r = NULL;
    CHECK_OK(db_exec(alice, "INSERT INTO submissions (problem, proof, n) VALUES ($1::text, $2::text, 8) RETURNING id, submitter",
                     2, p, &r, &err), &err);
    CHECK(r && PQntuples(r) == 1 && !strcmp(db_get(r, 0, "submitter"), "alice"));
    PQclear(r);
    CHECK(exec_ok(bob, "INSERT INTO submissions (problem, proof) VALUES ('q', 'p')") == 0);
    r = query(alice, "SELECT count(*) AS n FROM submissions");
    CHECK(r && db_get_i64(r, 0, "n", -1) == 1); /* only her own */
    PQclear(r);
    /* the submission became a job (trigger), which the submitter cannot see */
    r = query(admin, "SELECT count(*) AS n FROM jobs WHERE kind = 'submission'");
    CHECK(r && db_get_i64(r, 0, "n", -1) == 2);
    PQclear(r);
    CHECK(denied(alice, "SELECT * FROM jobs"));
    CHECK(denied(alice, "SELECT * FROM problems"));
    CHECK(denied(alice, "SELECT * FROM proofs"));
    CHECK(denied(alice, "SELECT * FROM labels"));
    CHECK(denied(alice, "SELECT * FROM labeled_proofs"));
    CHECK(denied(alice, "SELECT * FROM job_results"));
    CHECK(denied(alice, "INSERT INTO problems (source, source_key, statement) VALUES ('x', 'y', 'z')"));
    CHECK(denied(alice, "INSERT INTO jobs (kind) VALUES ('generate')"));
    CHECK(denied(alice, "UPDATE submissions SET n = 1"));
    CHECK(denied(alice, "DELETE FROM submissions"));
    CHECK(denied(alice, "INSERT INTO submissions (problem, proof, submitter) VALUES ('a', 'b', 'bob')"));
    CHECK(denied(alice, "INSERT INTO submissions (problem, proof, result) VALUES ('a', 'b', '{}')"));
    /* the worker reads and writes pipeline rows but never deletes */
    r = query(worker, "SELECT count(*) AS n FROM submissions");
    CHECK(r && db_get_i64(r, 0, "n", -1) == 2);
    PQclear(r);
    CHECK(exec_ok(worker, "UPDATE submissions SET status = 'done', result = '{\"mean\": 1}' WHERE submitter = 'alice'") == 0);
    r = query(alice, "SELECT status, result::text AS result FROM submissions");
    CHECK(r && PQntuples(r) == 1 && !strcmp(db_get(r, 0, "status"), "done"));
    PQclear(r);
    CHECK(exec_ok(worker, "SELECT * FROM verifier_agreement") == 0);
    CHECK(denied(worker, "DELETE FROM jobs"));
    CHECK(denied(worker, "DROP TABLE jobs") || !strcmp(db_last_sqlstate(worker), "42501"));
done:
    db_close(alice);
    db_close(bob);
    db_close(worker);
}

/* ---- CSV ----------------------------------------------------------------------------------------- */

struct rows {
    char out[2048];
    int n;
    int bad;
};

static int collect(char **f, int n, long line, const char *problem, void *ctx, struct dsm_err *err) {
    (void)err;
    struct rows *r = ctx;
    size_t len = strlen(r->out);
    snprintf(r->out + len, sizeof r->out - len, "%ld%s:", line, problem ? "!" : "");
    for (int i = 0; i < n; i++) {
        len = strlen(r->out);
        snprintf(r->out + len, sizeof r->out - len, "[%s]", f[i]);
    }
    len = strlen(r->out);
    snprintf(r->out + len, sizeof r->out - len, "\n");
    r->n++;
    r->bad += problem != NULL;
    return 0;
}

static void test_csv(void) {
    struct dsm_err err = {0};
    struct rows r = {0};
    const char *t = "id,text,n\r\n1,\"a, \"\"quoted\"\"\nsecond line\",3\n2,,\"\"\n3,plain,x";
    CHECK_OK(csv_parse(t, strlen(t), "t.csv", collect, &r, &err), &err);
    CHECK_MSG(!strcmp(r.out, "1:[id][text][n]\n2:[1][a, \"quoted\"\nsecond line][3]\n4:[2][][]\n5:[3][plain][x]\n"),
              "got:\n%s", r.out);
    memset(&r, 0, sizeof r);
    t = "a,\"b\"c,d\ne,f\n";
    CHECK_OK(csv_parse(t, strlen(t), "t.csv", collect, &r, &err), &err);
    CHECK(r.n == 2 && r.bad == 1);
    memset(&r, 0, sizeof r);
    t = "a,b\n1,\"never closed\n2,3\n";
    CHECK(csv_parse(t, strlen(t), "t.csv", collect, &r, &err) == DSM_EINVAL);
    CHECK_MSG(strstr(err.msg, "t.csv:2") != NULL, "%s", err.msg);
    memset(&r, 0, sizeof r);
    t = "x,y\n\n";
    CHECK_OK(csv_parse(t, strlen(t), "t.csv", collect, &r, &err), &err);
    CHECK(r.n == 2); /* the blank line is one record with one empty field */

    char *g = NULL;
    CHECK_OK(imp_last_boxed("so \\boxed{1} and then \\boxed{\\frac{1}{2}} done \\boxed{}", &g, &err), &err);
    CHECK(g && !strcmp(g, "\\frac{1}{2}"));
    free(g);
    CHECK_OK(imp_last_boxed("\\fbox{7} then \\boxed{unbalanced", &g, &err), &err);
    CHECK(g && !strcmp(g, "7"));
    free(g);
    CHECK(imp_format_detect("../shared/data/math/test.jsonl") && !strcmp(imp_format_detect("../shared/data/math/test.jsonl"), "math"));
    CHECK(!strcmp(imp_format_detect("/x/mr_gsm8k/first_error_steps.jsonl"), "mr-gsm8k"));
    CHECK(!strcmp(imp_format_detect("/x/gsm8k/test.jsonl"), "gsm8k"));
    CHECK(!strcmp(imp_format_detect("/x/math500/test.jsonl"), "math500"));
    CHECK(!strcmp(imp_format_detect("/x/imobench/proofbench_v2.csv"), "proofbench"));
    CHECK(imp_format_detect("/x/unknown.txt") == NULL);
}

int main(void) {
    test_csv();
    if (dbt_start(&cluster)) return 1;
    char ci[1500];
    CHECK(dbt_fresh_db(&cluster, "t_views", ci, sizeof ci) == 0);
    struct dsm_db *db = dbt_connect(ci);
    CHECK(db != NULL);
    if (db) {
        test_views(db);
        test_roles(db, ci);
        db_close(db);
    }
    dbt_stop(&cluster);
    return test_main_end();
}
