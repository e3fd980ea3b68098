/* cmd_loop.c - `dsm loop`: the self-verification training loop of SPEC §1-2 as a resumable batch
 * job over the store (DESIGN "the data path of one loop round").
 *
 * The loop is an orchestrator: every piece of model work is a `dsm` child process that is also a
 * command of its own (train sft, serve, label, train grpo), and every artefact is rows in
 * PostgreSQL. Round r (1..rounds, then one evaluation round without training):
 *   problems    P problems (synthetic, or the next P of a problem source in the store)
 *   generate    G proofs per problem      jobs 'generate' -> `dsm serve generator --once`
 *   selfeval    each well-formed proof's self-evaluation scoring < 1 becomes a verification of
 *               kind 'self', so the meta-verifier rates it (the generator's reward needs it)
 *   verify      n analyses per proof      jobs 'verify'   -> `dsm serve verifier --once`
 *   metaverify  m ratings per analysis (and self-evaluation) scoring < 1
 *   label       the V2 vote               `dsm label --run-id --round` (+ ground truth: synth)
 *   metrics     verifier accuracy, label accuracy, meta-verification, generator validity
 *   grpo_verifier, grpo_generator         `dsm train grpo` -> new checkpoints, in `models`
 * Round 0 is the bootstrap: SFT of tiny models on synthetic data for the roles not configured.
 * Each finished stage is a loop_stages row; jobs are enqueued with dedup keys; a killed loop run
 * again skips finished stages and re-enqueues nothing that exists. docs/loop.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/child.h"
#include "cli/cli.h"
#include "common/db.h"
#include "common/log.h"
#include "common/lora.h"
#include "common/synth.h"
#include "common/train_ckpt.h"
#include "common/util.h"
#include "generator/generator.h"

enum { R_GEN = 0, R_VER, R_MVER, R_N };
static const char *const role_names[R_N] = {"generator", "verifier", "metaverifier"};
static const char *const role_kinds[R_N] = {"generate", "verify", "metaverify"};

struct loop_cfg {
    long seed;
    int rounds, diff_lo, diff_hi;
    int problems, proofs, analyses, metas, k;
    double temperature, top_p;
    int max_tokens[R_N];
    int concurrency, threads;
    char problem_source[128]; /* "synth" or a problems.source in the store */
    char template_[1024];     /* "synth", "builtin" or a template file (absolute path) */
    char models[R_N][1024];   /* configured models: DIR or native:DIR, or http:URL ("" = bootstrap one) */
    /* bootstrap */
    char preset[32];
    int boot_records[R_N], boot_steps[R_N], boot_max_len[R_N], boot_batch, boot_warmup;
    int boot_from[R_N];       /* the role whose bootstrap model a role's SFT starts from (-1: a new model) */
    double boot_lr;
    double boot_flawed;       /* generator SFT: share of proofs with a planted error */
    double boot_carry;        /* generator SFT: share of the others with the first carry dropped */
    double boot_plants[SYNTH_PLANT_COUNT_]; /* generator SFT: weights of the planted kinds (NONE unused) */
    /* GRPO */
    double grpo_lr, beta, eps;
    int updates, grpo_batch, grpo_max_len, train[R_N];
    char gen_reward[8];       /* "v2" (model rewards) or "rule" (answer problems, DeepSeekMath V1) */
    double human_share;       /* share of proofs whose human/ground-truth label trains the verifier */
    double gen_human_share;   /* the same for the generator's reward (0: auto labels only) */
    int heldout;              /* problems of the fixed held-out set the generator is measured on (0: off) */
    char grpo_lora[128];      /* "" full fine-tuning; else a LoRA spec: GRPO trains an adapter of the
                               * role's starting model, which stays the KL reference */
};

struct loop {
    struct loop_cfg c;
    struct dsm_db *db;
    char dir[2048], self[PATH_MAX], run_name[128];
    int64_t run_id;
    char run_s[24];
    char cur[R_N][2400]; /* the current model directory of each role (remote: its http: spec) */
    char base[R_N][2400]; /* the model each role started the rounds with (the LoRA base) */
    int remote[R_N];     /* 1: served by an OpenAI-compatible endpoint (never trained here) */
    int booted[R_N];     /* 1: the role's model is this run's bootstrap (others may start from it) */
    int tty, quiet;
    json_t *summary;     /* stages and their seconds, for --summary */
    double t0;
};

/* The DeepSeekMath V1 path: the generator trained on rule rewards, no verifier trained. Then the
 * rounds skip self-evaluation, verification, meta-verification and labels, and no verifier or
 * meta-verifier is bootstrapped. */
static int answers_only(const struct loop *L) { return !strcmp(L->c.gen_reward, "rule") && !L->c.train[R_VER]; }

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
    g_stop = sig;
    if (cli_child_pid > 0) kill(cli_child_pid, SIGTERM);
}

static void cfg_default(struct loop_cfg *c) {
    memset(c, 0, sizeof *c);
    c->seed = 1, c->rounds = 2, c->diff_lo = 1, c->diff_hi = 1;
    c->problems = 12, c->proofs = 8, c->analyses = 4, c->metas = 3, c->k = 2;
    /* cooler than V2's 1.0: the tiny models' arithmetic does not survive temperature 1 (docs/loop.md) */
    c->temperature = 0.7, c->top_p = 0.95;
    c->max_tokens[R_GEN] = 320, c->max_tokens[R_VER] = 320, c->max_tokens[R_MVER] = 320;
    c->concurrency = 64;
    snprintf(c->problem_source, sizeof c->problem_source, "synth");
    snprintf(c->template_, sizeof c->template_, "synth");
    snprintf(c->preset, sizeof c->preset, "tiny");
    c->boot_records[R_GEN] = 12000, c->boot_records[R_VER] = 4000, c->boot_records[R_MVER] = 4800;
    /* ten minutes on two cores: the generator needs ~600-800 steps before it reads the problem
     * (copying appears abruptly); the verifier and meta-verifier start from the previous role's
     * model (bootstrap_from), which already copies and checks lines, so they need fewer.
     * docs/loop.md "Measured" */
    c->boot_steps[R_GEN] = 700, c->boot_steps[R_VER] = 150, c->boot_steps[R_MVER] = 150;
    c->boot_max_len[R_GEN] = 448, c->boot_max_len[R_VER] = 448, c->boot_max_len[R_MVER] = 640;
    c->boot_batch = 16, c->boot_warmup = 20, c->boot_lr = 5e-3;
    {
        struct synth_sft_opts so;
        synth_sft_opts_default(&so);
        c->boot_flawed = so.gen_flawed;
        memcpy(c->boot_plants, so.plant_w, sizeof c->boot_plants);
    }
    /* the generator's self-evaluations are analyses in the verifier's format, and the meta-verifier
     * reads analyses: each starts from the previous role's model instead of from scratch */
    c->boot_from[R_GEN] = -1, c->boot_from[R_VER] = R_GEN, c->boot_from[R_MVER] = R_VER;
    c->grpo_lr = 1e-4, c->beta = 0.04, c->eps = 0.2, c->updates = 2, c->grpo_batch = 16, c->grpo_max_len = 768;
    c->train[R_GEN] = c->train[R_VER] = 1;
    snprintf(c->gen_reward, sizeof c->gen_reward, "v2");
    c->human_share = 0.5;
    c->heldout = 64;
}

/* ---- configuration file -------------------------------------------------------------------- */

static int cfg_int(json_t *v, const char *key, int lo, int hi, int *out, struct dsm_err *err) {
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return dsm_errf(err, DSM_EINVAL, "\"%s\" must be an integer in [%d, %d]", key, lo, hi);
    *out = (int)json_integer_value(v);
    return DSM_OK;
}

static int cfg_num(json_t *v, const char *key, double lo, double hi, double *out, struct dsm_err *err) {
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi)
        return dsm_errf(err, DSM_EINVAL, "\"%s\" must be a number in [%g, %g]", key, lo, hi);
    *out = json_number_value(v);
    return DSM_OK;
}

static int cfg_str(json_t *v, const char *key, char *out, size_t cap, struct dsm_err *err) {
    if (!json_is_string(v) || !*json_string_value(v) || strlen(json_string_value(v)) >= cap)
        return dsm_errf(err, DSM_EINVAL, "\"%s\" must be a non-empty string shorter than %zu bytes", key, cap);
    snprintf(out, cap, "%s", json_string_value(v));
    return DSM_OK;
}

/* A per-role object {"generator": x, "verifier": y, "metaverifier": z} (any subset) of ints. */
static int cfg_roles_int(json_t *v, const char *key, int lo, int hi, int *out, struct dsm_err *err) {
    if (!json_is_object(v)) return dsm_errf(err, DSM_EINVAL, "\"%s\" must be an object keyed by role", key);
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
        int r = 0;
        while (r < R_N && strcmp(k, role_names[r])) r++;
        if (r == R_N) return dsm_errf(err, DSM_EINVAL, "\"%s\": unknown role \"%s\"", key, k);
        char name[160];
        snprintf(name, sizeof name, "%s.%s", key, k);
        if (cfg_int(x, name, lo, hi, &out[r], err)) return DSM_EINVAL;
    }
    return DSM_OK;
}

static int cfg_load(const char *path, struct loop_cfg *c, json_t **raw, struct dsm_err *err) {
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) return dsm_errf(err, DSM_EINVAL, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return dsm_errf(err, DSM_EINVAL, "%s: the configuration must be a JSON object", path);
    }
    const char *k;
    json_t *v;
    int rc = DSM_OK;
    json_object_foreach(j, k, v) {
        if (!strcmp(k, "seed")) {
            double s;
            if (!(rc = cfg_num(v, k, 0, 1e15, &s, err))) c->seed = (long)s;
        } else if (!strcmp(k, "rounds")) rc = cfg_int(v, k, 0, 1000, &c->rounds, err);
        else if (!strcmp(k, "difficulty")) {
            const char *s = json_string_value(v);
            if (!s || sscanf(s, "%d..%d", &c->diff_lo, &c->diff_hi) != 2 || c->diff_lo < 1 || c->diff_hi > SYNTH_MAX_DIFFICULTY ||
                c->diff_lo > c->diff_hi)
                rc = dsm_errf(err, DSM_EINVAL, "\"difficulty\" must be a string \"A..B\" with 1 <= A <= B <= %d", SYNTH_MAX_DIFFICULTY);
        } else if (!strcmp(k, "problems")) rc = cfg_int(v, k, 1, 100000, &c->problems, err);
        else if (!strcmp(k, "proofs")) rc = cfg_int(v, k, 2, 1024, &c->proofs, err);
        else if (!strcmp(k, "analyses")) rc = cfg_int(v, k, 1, 1024, &c->analyses, err);
        else if (!strcmp(k, "metas")) rc = cfg_int(v, k, 1, 64, &c->metas, err);
        else if (!strcmp(k, "k")) rc = cfg_int(v, k, 1, 1024, &c->k, err);
        else if (!strcmp(k, "temperature")) rc = cfg_num(v, k, 0, 10, &c->temperature, err);
        else if (!strcmp(k, "top_p")) rc = cfg_num(v, k, 1e-6, 1, &c->top_p, err);
        else if (!strcmp(k, "max_tokens")) rc = cfg_roles_int(v, k, 1, 1 << 20, c->max_tokens, err);
        else if (!strcmp(k, "concurrency")) rc = cfg_int(v, k, 1, 64, &c->concurrency, err);
        else if (!strcmp(k, "threads")) rc = cfg_int(v, k, 0, 1024, &c->threads, err);
        else if (!strcmp(k, "problem_source")) rc = cfg_str(v, k, c->problem_source, sizeof c->problem_source, err);
        else if (!strcmp(k, "template")) {
            if (!(rc = cfg_str(v, k, c->template_, sizeof c->template_, err)) && strcmp(c->template_, "synth") &&
                strcmp(c->template_, "builtin") && (c->template_[0] != '/' || access(c->template_, R_OK)))
                rc = dsm_errf(err, DSM_EINVAL, "\"template\" must be \"synth\", \"builtin\" or the absolute path of a readable template file");
        } else if (!strcmp(k, "models")) {
            if (!json_is_object(v)) rc = dsm_errf(err, DSM_EINVAL, "\"models\" must be an object keyed by role");
            const char *rk;
            json_t *x;
            json_object_foreach(v, rk, x) {
                int r = 0;
                while (r < R_N && strcmp(rk, role_names[r])) r++;
                if (!rc && r == R_N) rc = dsm_errf(err, DSM_EINVAL, "\"models\": unknown role \"%s\"", rk);
                if (!rc) rc = cfg_str(x, "models.<role>", c->models[r], sizeof c->models[r], err);
            }
        } else if (!strcmp(k, "preset")) rc = cfg_str(v, k, c->preset, sizeof c->preset, err);
        else if (!strcmp(k, "bootstrap_records")) rc = cfg_roles_int(v, k, 1, 10000000, c->boot_records, err);
        else if (!strcmp(k, "bootstrap_steps")) rc = cfg_roles_int(v, k, 0, 10000000, c->boot_steps, err);
        else if (!strcmp(k, "bootstrap_max_len")) rc = cfg_roles_int(v, k, 16, 1 << 20, c->boot_max_len, err);
        else if (!strcmp(k, "bootstrap_from")) {
            const char *rk;
            json_t *x;
            if (!json_is_object(v)) rc = dsm_errf(err, DSM_EINVAL, "\"bootstrap_from\" must be an object keyed by role");
            json_object_foreach(v, rk, x) {
                int r = 0, src = 0;
                while (r < R_N && strcmp(rk, role_names[r])) r++;
                const char *sv = json_is_null(x) ? "" : json_string_value(x);
                while (sv && src < R_N && strcmp(sv, role_names[src])) src++;
                if (rc) break;
                if (r == R_N) rc = dsm_errf(err, DSM_EINVAL, "\"bootstrap_from\": unknown role \"%s\"", rk);
                else if (!sv || (*sv && src >= r))
                    rc = dsm_errf(err, DSM_EINVAL,
                                  "\"bootstrap_from.%s\" must be \"\" (a new model) or a role bootstrapped before it (%s)", rk,
                                  r == R_GEN ? "none" : r == R_VER ? "generator" : "generator or verifier");
                else c->boot_from[r] = *sv ? src : -1;
            }
        } else if (!strcmp(k, "bootstrap_batch")) rc = cfg_int(v, k, 1, 4096, &c->boot_batch, err);
        else if (!strcmp(k, "bootstrap_warmup")) rc = cfg_int(v, k, 0, 1000000, &c->boot_warmup, err);
        else if (!strcmp(k, "bootstrap_lr")) rc = cfg_num(v, k, 1e-12, 10, &c->boot_lr, err);
        else if (!strcmp(k, "bootstrap_flawed")) rc = cfg_num(v, k, 0, 1, &c->boot_flawed, err);
        else if (!strcmp(k, "bootstrap_carry_drop")) rc = cfg_num(v, k, 0, 1, &c->boot_carry, err);
        else if (!strcmp(k, "bootstrap_plants")) {
            /* {"skip": 60, "arith": 10, ...}: the listed kinds get these weights, the others 0 */
            const char *pk;
            json_t *x;
            if (!json_is_object(v) || !json_object_size(v))
                rc = dsm_errf(err, DSM_EINVAL, "\"bootstrap_plants\" must be a non-empty object keyed by plant kind");
            else memset(c->boot_plants, 0, sizeof c->boot_plants);
            double sum = 0;
            json_object_foreach(v, pk, x) {
                if (rc) break;
                int kind = synth_plant_from_name(pk);
                char name[160];
                snprintf(name, sizeof name, "bootstrap_plants.%s", pk);
                if (kind <= SYNTH_PLANT_NONE)
                    rc = dsm_errf(err, DSM_EINVAL, "\"bootstrap_plants\": \"%s\" is not a planted error kind (docs/synth.md)", pk);
                else if (!(rc = cfg_num(x, name, 0, 1e9, &c->boot_plants[kind], err))) sum += c->boot_plants[kind];
            }
            if (!rc && !(sum > 0)) rc = dsm_errf(err, DSM_EINVAL, "\"bootstrap_plants\" needs a positive weight");
        }
        else if (!strcmp(k, "grpo_lr")) rc = cfg_num(v, k, 1e-12, 10, &c->grpo_lr, err);
        else if (!strcmp(k, "beta")) rc = cfg_num(v, k, 0, 100, &c->beta, err);
        else if (!strcmp(k, "eps")) rc = cfg_num(v, k, 1e-6, 10, &c->eps, err);
        else if (!strcmp(k, "updates")) rc = cfg_int(v, k, 1, 1000, &c->updates, err);
        else if (!strcmp(k, "grpo_batch")) rc = cfg_int(v, k, 1, 4096, &c->grpo_batch, err);
        else if (!strcmp(k, "grpo_max_len")) rc = cfg_int(v, k, 16, 1 << 20, &c->grpo_max_len, err);
        else if (!strcmp(k, "train")) rc = cfg_roles_int(v, k, 0, 1, c->train, err);
        else if (!strcmp(k, "human_share")) rc = cfg_num(v, k, 0, 1, &c->human_share, err);
        else if (!strcmp(k, "generator_human_share")) rc = cfg_num(v, k, 0, 1, &c->gen_human_share, err);
        else if (!strcmp(k, "heldout")) rc = cfg_int(v, k, 0, 100000, &c->heldout, err);
        else if (!strcmp(k, "grpo_lora")) {
            struct dsm_lora_cfg lc;
            if (!(rc = cfg_str(v, k, c->grpo_lora, sizeof c->grpo_lora, err)) && c->grpo_lora[0] &&
                dsm_lora_parse(c->grpo_lora, &lc, err)) {
                char msg[sizeof err->msg];
                snprintf(msg, sizeof msg, "%s", err->msg);
                rc = dsm_errf(err, DSM_EINVAL, "\"grpo_lora\": %s", msg);
            }
        } else if (!strcmp(k, "generator_reward")) {
            if (!(rc = cfg_str(v, k, c->gen_reward, sizeof c->gen_reward, err)) && strcmp(c->gen_reward, "v2") &&
                strcmp(c->gen_reward, "rule"))
                rc = dsm_errf(err, DSM_EINVAL, "\"generator_reward\" must be \"v2\" or \"rule\"");
        }
        else rc = dsm_errf(err, DSM_EINVAL, "unknown key \"%s\" (docs/loop.md lists the keys)", k);
        if (rc) break;
    }
    if (rc) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        dsm_errf(err, DSM_EINVAL, "%s: %s", path, msg);
        json_decref(j);
        return DSM_EINVAL;
    }
    if (strcmp(c->problem_source, "synth") && !strcmp(c->template_, "synth"))
        LOG_WARN("%s: problems from '%s' with the synthetic domain's compact templates", path, c->problem_source);
    *raw = j;
    return DSM_OK;
}

/* ---- children --------------------------------------------------------------------------------- */

/* Run `dsm argv...` with stdout to out_path (NULL: the log) and stderr to the stage log. */
static int run_child(struct loop *L, const char *label, const char *log_name, char *const *argv, const char *out_path) {
    char logp[2300];
    snprintf(logp, sizeof logp, "%s/logs/%s.log", L->dir, log_name);
    struct cli_child c = {L->self, logp, out_path, label, L->tty && !L->quiet, &g_stop};
    return cli_child_run(&c, argv);
}

/* ---- stage bookkeeping --------------------------------------------------------------------------- */

static int stage_get(struct loop *L, int round, const char *stage, json_t **detail, struct dsm_err *err) {
    char rs[16];
    snprintf(rs, sizeof rs, "%d", round);
    const char *v[3] = {L->run_s, rs, stage};
    PGresult *r = NULL;
    int rc = db_exec(L->db, "SELECT detail::text AS d FROM loop_stages WHERE run_id = $1::bigint AND round = $2::int AND stage = $3", 3,
                     v, &r, err);
    if (rc) return -1;
    int found = PQntuples(r) > 0;
    if (found && detail) *detail = json_loads(db_get(r, 0, "d"), 0, NULL);
    PQclear(r);
    return found;
}

static int stage_mark(struct loop *L, int round, const char *stage, json_t *detail, double seconds, struct dsm_err *err) {
    char rs[16];
    snprintf(rs, sizeof rs, "%d", round);
    json_t *d = detail ? json_incref(detail) : json_object();
    json_object_set_new(d, "seconds", json_real(seconds));
    char *txt = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    const char *v[4] = {L->run_s, rs, stage, txt};
    int rc = db_exec(L->db,
                     "INSERT INTO loop_stages (run_id, round, stage, detail) VALUES ($1::bigint, $2::int, $3, $4::jsonb) "
                     "ON CONFLICT (run_id, round, stage) DO UPDATE SET detail = EXCLUDED.detail, finished_at = now()",
                     4, v, NULL, err);
    free(txt);
    return rc;
}

static int metric_put(struct loop *L, int round, const char *name, double value, struct dsm_err *err) {
    char rs[16], vs[40];
    snprintf(rs, sizeof rs, "%d", round);
    snprintf(vs, sizeof vs, "%.17g", value);
    const char *v[4] = {L->run_s, rs, name, vs};
    return db_exec(L->db,
                   "WITH d AS (DELETE FROM metrics WHERE run_id = $1::bigint AND round = $2::int AND name = $3) "
                   "INSERT INTO metrics (run_id, round, name, value) VALUES ($1::bigint, $2::int, $3, $4::float8)",
                   4, v, NULL, err);
}

/* Register a checkpoint directory as a models row of this run and round. */
static int model_register(struct loop *L, int role, int round, const char *path, const char *what, struct dsm_err *err) {
    char name[300], rs[16];
    snprintf(name, sizeof name, "loop-%s-%s-%s", L->run_name, role_names[role], what);
    snprintf(rs, sizeof rs, "%d", round);
    const char *v[5] = {name, role_names[role], path, L->run_s, rs};
    return db_exec(L->db,
                   "INSERT INTO models (name, kind, role, path, run_id, round) VALUES ($1, 'checkpoint', $2, $3, $4::bigint, "
                   "$5::int) ON CONFLICT (name) DO UPDATE SET path = EXCLUDED.path",
                   5, v, NULL, err);
}

/* ---- bootstrap ------------------------------------------------------------------------------------ */

static int write_sft_data(struct loop *L, int role, const char *path, struct dsm_err *err) {
    if (access(path, R_OK) == 0) return DSM_OK;
    struct synth_sft_opts o;
    synth_sft_opts_default(&o);
    o.diff_lo = L->c.diff_lo, o.diff_hi = L->c.diff_hi;
    if (role == R_GEN) {
        o.gen_flawed = L->c.boot_flawed;
        o.gen_carry_drop = L->c.boot_carry;
        memcpy(o.plant_w + 1, L->c.boot_plants + 1, sizeof o.plant_w - sizeof o.plant_w[0]);
    }
    char tmp[2400];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return dsm_errf(err, DSM_EIO, "cannot write %s: %s", tmp, strerror(errno));
    int rc = DSM_OK;
    for (int i = 0; i < L->c.boot_records[role] && !rc; i++) {
        json_t *j = NULL;
        /* the bootstrap stream (seed + 7) never meets the loop's problem stream (seed) */
        if (!(rc = synth_sft_record((enum synth_role)role, (uint64_t)L->c.seed + 7, (uint64_t)i, &o, &j, err)) &&
            !(rc = synth_sft_to_messages(j, err))) {
            char *s = json_dumps(j, JSON_COMPACT);
            if (!s || fprintf(f, "%s\n", s) < 0) rc = dsm_errf(err, DSM_EIO, "writing %s failed", tmp);
            free(s);
        }
        json_decref(j);
    }
    if (fclose(f) && !rc) rc = dsm_errf(err, DSM_EIO, "writing %s failed", tmp);
    if (!rc && rename(tmp, path)) rc = dsm_errf(err, DSM_EIO, "cannot rename %s: %s", tmp, strerror(errno));
    return rc;
}

static int bootstrap(struct loop *L, int role, struct dsm_err *err) {
    char stage[64], data[2300], init[2300], boot[2300], cfgp[2400], label[96];
    snprintf(stage, sizeof stage, "boot_%s", role_names[role]);
    snprintf(boot, sizeof boot, "%s/models/%s/boot", L->dir, role_names[role]);
    json_t *det = NULL;
    int done = stage_get(L, 0, stage, &det, err);
    if (done < 0) return err->code;
    snprintf(L->cur[role], sizeof L->cur[role], "%s", boot);
    L->booted[role] = 1;
    if (done) {
        const char *out = json_string_value(json_object_get(det, "out"));
        if (out) snprintf(L->cur[role], sizeof L->cur[role], "%s", out);
        json_decref(det);
        return DSM_OK;
    }
    double t0 = dsm_now();
    snprintf(data, sizeof data, "%s/data/sft-%s.jsonl", L->dir, role_names[role]);
    snprintf(init, sizeof init, "%s/models/%s/init", L->dir, role_names[role]);
    int rc = write_sft_data(L, role, data, err);
    if (rc) return rc;
    snprintf(cfgp, sizeof cfgp, "%s/config.json", init);
    char seed[32], steps[16], batch[16], lr[32], warm[16], maxlen[16], thr[16];
    snprintf(seed, sizeof seed, "%ld", L->c.seed + 100 + role);
    int from = L->c.boot_from[role];
    if (from >= 0 && L->booted[from]) { /* fine-tune the earlier role's bootstrap model */
        snprintf(init, sizeof init, "%s", L->cur[from]);
    } else if (access(cfgp, R_OK) != 0) {
        char *av[] = {"dsm", "model", "init", "--preset", L->c.preset, "--seed", seed, "--out", init, NULL};
        if (run_child(L, "bootstrap: model init", stage, av, NULL)) return dsm_errf(err, DSM_EIO, "model init failed");
    }
    snprintf(steps, sizeof steps, "%d", L->c.boot_steps[role]);
    snprintf(batch, sizeof batch, "%d", L->c.boot_batch);
    snprintf(lr, sizeof lr, "%g", L->c.boot_lr);
    snprintf(warm, sizeof warm, "%d", L->c.boot_warmup);
    snprintf(maxlen, sizeof maxlen, "%d", L->c.boot_max_len[role]);
    snprintf(thr, sizeof thr, "%d", L->c.threads);
    char ck[2400];
    struct dsm_err e2 = {0};
    int resume = dsm_ckpt_latest(boot, ck, sizeof ck, &e2) == DSM_OK;
    char *av[40] = {"dsm", "train", "sft", "--model", init, "--data", data, "--out", boot, "--steps", steps, "--batch-size", batch,
                    "--lr", lr, "--warmup-steps", warm, "--max-len", maxlen, "--seed", seed, "--save-every", "100", "--threads", thr,
                    "--quiet"};
    int ac = 26;
    if (resume) av[ac++] = "--resume", av[ac++] = "auto";
    av[ac] = NULL;
    if (L->c.boot_steps[role] > 0) {
        snprintf(label, sizeof label, "bootstrap: SFT %s, %s steps", role_names[role], steps);
        if (run_child(L, label, stage, av, NULL)) return g_stop ? DSM_EIO : dsm_errf(err, DSM_EIO, "SFT of the %s failed", role_names[role]);
    } else {
        snprintf(L->cur[role], sizeof L->cur[role], "%s", init); /* no SFT: the random model */
    }
    if ((rc = model_register(L, role, 0, L->cur[role], "boot", err))) return rc;
    json_t *d = json_pack("{s:s,s:i,s:i}", "out", L->cur[role], "steps", L->c.boot_steps[role], "records", L->c.boot_records[role]);
    rc = stage_mark(L, 0, stage, d, dsm_now() - t0, err);
    json_decref(d);
    if (!rc && !L->quiet)
        fprintf(stderr, "round 0 · bootstrap %-12s %d SFT steps on %d records  %6.1f s\n", role_names[role], L->c.boot_steps[role],
                L->c.boot_records[role], dsm_now() - t0);
    return rc;
}

/* ---- one round ------------------------------------------------------------------------------------ */

/* The payloads of a stage's jobs, built in SQL ($1 run, $2 round, $3 count per item, $4 base seed).
 * Seeds are hashes of stable things -- the configuration's seed, the round, the problem's key, the
 * seed of the row judged, the sample's index -- never of row ids, so the same configuration gives
 * the same samples in any database ("same seed, same numbers"). */
static const char *const payload_sql[R_N] = {
    /* generate: G per problem of the round */
    "SELECT coalesce(jsonb_agg(jsonb_build_object('problem_id', p.id, 'round', $2::int, 'run_id', $1::bigint, "
    "'seed', hashtextextended(concat_ws(':', $4::text, $2, p.source, p.source_key, g), 0) & 9007199254740991, "
    "'key', concat_ws(':', $1, $2, p.id, g)) ORDER BY p.id, g), '[]')::text AS payloads "
    "FROM problems p CROSS JOIN generate_series(1, $3::int) g WHERE p.id = ANY($5::bigint[])",
    /* verify: n per proof of the round that is well formed */
    "SELECT coalesce(jsonb_agg(jsonb_build_object('proof_id', p.id, 'round', $2::int, 'run_id', $1::bigint, "
    "'seed', hashtextextended(concat_ws(':', $4::text, p.seed, g), 0) & 9007199254740991, "
    "'key', concat_ws(':', $1, $2, p.id, g)) ORDER BY p.id, g), '[]')::text AS payloads "
    "FROM proofs p CROSS JOIN generate_series(1, $3::int) g WHERE p.run_id = $1::bigint AND p.round = $2::int "
    "AND p.finish_reason = 'stop' AND coalesce((p.metadata->>'format_ok')::boolean, false) AND p.proof <> '' "
    "AND $5::bigint[] IS NOT NULL",
    /* metaverify: m per analysis or self-evaluation of the round scoring below 1 */
    "SELECT coalesce(jsonb_agg(jsonb_build_object('verification_id', v.id, 'round', $2::int, 'run_id', $1::bigint, "
    "'seed', hashtextextended(concat_ws(':', $4::text, v.kind, v.seed, g), 0) & 9007199254740991, "
    "'key', concat_ws(':', $1, $2, v.id, g)) ORDER BY v.id, g), '[]')::text AS payloads "
    "FROM verifications v CROSS JOIN generate_series(1, $3::int) g WHERE v.run_id = $1::bigint AND v.round = $2::int "
    "AND v.score < 1 AND $5::bigint[] IS NOT NULL",
};

static const char *const pending_sql =
    "SELECT count(*) FILTER (WHERE state IN ('queued', 'running')) AS n, count(*) FILTER (WHERE state = 'dead') AS dead, "
    "count(*) AS total FROM jobs WHERE run_id = $1::bigint AND kind = $2 AND (payload->>'round')::int = $3::int";

/* Enqueue the stage's jobs (idempotent by key) and run the role's service until none is pending. */
static int serve_stage(struct loop *L, int round, int role, const char *problem_ids, int64_t *jobs, int64_t *dead,
                       struct dsm_err *err) {
    char rs[16], per[16], seed[32], label[120];
    int per_item = role == R_GEN ? L->c.proofs : role == R_VER ? L->c.analyses : L->c.metas;
    snprintf(rs, sizeof rs, "%d", round);
    snprintf(per, sizeof per, "%d", per_item);
    snprintf(seed, sizeof seed, "%lld", (long long)(L->c.seed * 1000003LL + round * 7919LL + role) * 65536LL);
    const char *v[5] = {L->run_s, rs, per, seed, problem_ids};
    PGresult *r = NULL;
    int rc = db_exec(L->db, payload_sql[role], 5, v, &r, err);
    if (rc) return rc;
    struct db_enqueue_opts eo = {.run_id = L->run_id, .dedup_field = "key"};
    rc = db_job_enqueue(L->db, role_kinds[role], db_get(r, 0, "payloads"), &eo, NULL, err);
    PQclear(r);
    if (rc) return rc;
    char mt[16], conc[16], temp[32], topp[32], thr[16], backend[2300], worker[64], ctx[16];
    snprintf(mt, sizeof mt, "%d", L->c.max_tokens[role]);
    snprintf(ctx, sizeof ctx, "%d", L->c.max_tokens[role] + 1024); /* the longest prompt + output */
    snprintf(conc, sizeof conc, "%d", L->c.concurrency);
    snprintf(temp, sizeof temp, "%g", L->c.temperature);
    snprintf(topp, sizeof topp, "%g", L->c.top_p);
    snprintf(thr, sizeof thr, "%d", L->c.threads);
    snprintf(backend, sizeof backend, "%s%s", L->remote[role] ? "" : "native:", L->cur[role]);
    snprintf(worker, sizeof worker, "loop-%s-%ld", role_names[role], (long)getpid());
    char *av[] = {"dsm", "serve", (char *)role_names[role], "--backend", backend, "--template", L->c.template_, "--once",
                  "--concurrency", conc, "--temperature", temp, "--top-p", topp, "--max-tokens", mt, "--lease", "10",
                  "--idle-wait", "1", "--worker", worker, "--threads", thr, "--max-batch", "64", "--max-context", ctx, NULL};
    const char *pv[3] = {L->run_s, role_kinds[role], rs};
    double waited = 0;
    for (int attempt = 0;; attempt++) {
        if (g_stop) return dsm_errf(err, DSM_EIO, "interrupted");
        if ((rc = db_exec(L->db, pending_sql, 3, pv, &r, err))) return rc;
        int64_t pending = db_get_i64(r, 0, "n", 0);
        *jobs = db_get_i64(r, 0, "total", 0), *dead = db_get_i64(r, 0, "dead", 0);
        PQclear(r);
        if (pending == 0) break;
        if (attempt > 0) { /* jobs under an old lease (a killed run) or waiting to be retried */
            if (waited > 120) return dsm_errf(err, DSM_EIO, "%lld %s job(s) of round %d are still pending after 120 s", (long long)pending, role_kinds[role], round);
            sleep(1);
            waited += 1;
        }
        snprintf(label, sizeof label, "round %d: %s (%lld jobs)", round, role_kinds[role], (long long)*jobs);
        int code = run_child(L, label, role_kinds[role], av, NULL);
        if (code) return g_stop ? dsm_errf(err, DSM_EIO, "interrupted") : dsm_errf(err, DSM_EIO, "dsm serve %s failed (exit %d)", role_names[role], code);
    }
    return DSM_OK;
}

/* The problems of round r: P synthetic ones (fresh indices every round) or the next P of a source. */
static int stage_problems(struct loop *L, int round, char **ids_out, struct dsm_err *err) {
    json_t *det = NULL;
    int done = stage_get(L, round, "problems", &det, err);
    if (done < 0) return err->code;
    if (done) {
        *ids_out = strdup(json_string_value(json_object_get(det, "ids")) ? json_string_value(json_object_get(det, "ids")) : "{}");
        json_decref(det);
        return DSM_OK;
    }
    double t0 = dsm_now();
    char *list = malloc((size_t)L->c.problems * 24 + 4);
    size_t len = 0;
    int rc = DSM_OK, n = 0;
    list[len++] = '{';
    if (!strcmp(L->c.problem_source, "synth")) {
        for (int i = 0; i < L->c.problems && !rc; i++) {
            uint64_t idx = (uint64_t)(round - 1) * (uint64_t)L->c.problems + (uint64_t)i;
            int d = synth_difficulty_pick((uint64_t)L->c.seed, idx, L->c.diff_lo, L->c.diff_hi);
            struct synth_problem p;
            char text[512], key[96], meta[128];
            if ((rc = synth_problem_generate((uint64_t)L->c.seed, idx, d, &p, err))) break;
            synth_problem_text(&p, text, sizeof text);
            snprintf(key, sizeof key, "%ld:%llu:%d", L->c.seed, (unsigned long long)idx, d);
            snprintf(meta, sizeof meta, "{\"difficulty\": %d, \"seed\": %ld, \"index\": %llu}", d, L->c.seed, (unsigned long long)idx);
            const char *v[3] = {key, text, meta};
            PGresult *r = NULL;
            if (!(rc = db_exec(L->db,
                               "INSERT INTO problems (source, source_key, statement, metadata) VALUES ('synth', $1, $2, $3::jsonb) "
                               "ON CONFLICT (source, source_key) DO UPDATE SET statement = EXCLUDED.statement RETURNING id",
                               3, v, &r, err)))
                len += (size_t)sprintf(list + len, "%s%s", n++ ? "," : "", db_get(r, 0, "id"));
            PQclear(r);
        }
    } else {
        char off[24], lim[16];
        snprintf(off, sizeof off, "%lld", (long long)(round - 1) * L->c.problems);
        snprintf(lim, sizeof lim, "%d", L->c.problems);
        const char *v[3] = {L->c.problem_source, off, lim};
        PGresult *r = NULL;
        if (!(rc = db_exec(L->db, "SELECT id FROM problems WHERE source = $1 ORDER BY id OFFSET $2::bigint LIMIT $3::int", 3, v, &r, err))) {
            for (int i = 0; i < PQntuples(r); i++) len += (size_t)sprintf(list + len, "%s%s", n++ ? "," : "", db_get(r, i, "id"));
            if (n == 0) rc = dsm_errf(err, DSM_ENOTFOUND, "no problems left in source '%s' for round %d (import more with `dsm import`)", L->c.problem_source, round);
        }
        PQclear(r);
    }
    list[len++] = '}';
    list[len] = 0;
    if (!rc) {
        json_t *d = json_pack("{s:s,s:i}", "ids", list, "n", n);
        rc = stage_mark(L, round, "problems", d, dsm_now() - t0, err);
        json_decref(d);
    }
    if (rc) {
        free(list);
        return rc;
    }
    *ids_out = list;
    return DSM_OK;
}

/* Self-evaluations scoring below 1 as verifications of kind 'self' (idempotent). */
static int stage_selfeval(struct loop *L, int round, int64_t *n, struct dsm_err *err) {
    char rs[16];
    snprintf(rs, sizeof rs, "%d", round);
    const char *v[2] = {L->run_s, rs};
    PGresult *r = NULL;
    int rc = db_exec(L->db,
                     "INSERT INTO verifications (proof_id, model_id, analysis, score, format_ok, raw_output, finish_reason, "
                     "sampling, seed, round, run_id, kind) SELECT p.id, p.model_id, p.self_evaluation, p.self_score, true, "
                     "p.self_evaluation, 'stop', jsonb_build_object('self_evaluation_of', p.id, 'prompt', p.sampling->'prompt'), "
                     "p.seed, p.round, p.run_id, 'self' FROM proofs p WHERE p.run_id = $1::bigint AND p.round = $2::int "
                     "AND p.self_score < 1 AND p.finish_reason = 'stop' AND coalesce((p.metadata->>'format_ok')::boolean, false) "
                     "AND NOT EXISTS (SELECT 1 FROM verifications x WHERE x.proof_id = p.id AND x.kind = 'self')",
                     2, v, &r, err);
    if (!rc) *n = atoll(PQcmdTuples(r));
    PQclear(r);
    return rc;
}

/* The V2 vote for the round's proofs, then (synthetic problems) the checker's ground truth. */
static int stage_label(struct loop *L, int round, json_t *det, struct dsm_err *err) {
    char n[16], m[16], k[16], rs[16], origin[96];
    snprintf(n, sizeof n, "%d", L->c.analyses);
    snprintf(m, sizeof m, "%d", L->c.metas);
    snprintf(k, sizeof k, "%d", L->c.k);
    snprintf(rs, sizeof rs, "%d", round);
    snprintf(origin, sizeof origin, "loop:%lld:%d", (long long)L->run_id, round);
    char *av[] = {"dsm", "label", "--n", n, "--m", m, "--k", k, "--origin", origin, "--run-id", L->run_s, "--round", rs, NULL};
    char label[64];
    snprintf(label, sizeof label, "round %d: label (V2 vote)", round);
    if (run_child(L, label, "label", av, NULL)) return g_stop ? dsm_errf(err, DSM_EIO, "interrupted") : dsm_errf(err, DSM_EIO, "dsm label failed");
    const char *v[3] = {L->run_s, rs, origin};
    int rc = db_exec(L->db, "UPDATE labels SET run_id = $1::bigint, round = $2::int WHERE origin = $3 AND run_id IS NULL", 3, v, NULL, err);
    if (rc || strcmp(L->c.problem_source, "synth")) return rc;
    PGresult *r = NULL;
    if ((rc = db_exec(L->db,
                      "SELECT p.id, p.proof, pr.statement FROM proofs p JOIN problems pr ON pr.id = p.problem_id "
                      "WHERE p.run_id = $1::bigint AND p.round = $2::int AND NOT EXISTS (SELECT 1 FROM labels l "
                      "WHERE l.proof_id = p.id AND l.source = 'ground_truth')",
                      2, v, &r, err)))
        return rc;
    int written = 0;
    for (int i = 0; i < PQntuples(r) && !rc; i++) {
        struct synth_problem p;
        struct synth_verdict vd;
        const char *st = db_get(r, i, "statement"), *pf = db_get(r, i, "proof");
        if (synth_problem_parse(st, strlen(st), &p, err)) {
            rc = dsm_errf(err, DSM_EINVAL, "problem of proof %s is not a synthetic claim: %s", db_get(r, i, "id"), err->msg);
            break;
        }
        synth_check(&p, pf ? pf : "", pf ? strlen(pf) : 0, &vd);
        char val[24], detail[160];
        snprintf(val, sizeof val, "%g", vd.score);
        snprintf(detail, sizeof detail, "{\"defect\": \"%s\", \"line\": %d}", synth_defect_name(vd.defect), vd.line);
        const char *lv[5] = {db_get(r, i, "id"), val, detail, L->run_s, rs};
        rc = db_exec(L->db,
                     "INSERT INTO labels (proof_id, value, source, rule, detail, origin, run_id, round) VALUES ($1::bigint, "
                     "$2::numeric, 'ground_truth', 'synth-checker', $3::jsonb, 'synth-checker', $4::bigint, $5::int) "
                     "ON CONFLICT (proof_id, source, origin) DO NOTHING",
                     5, lv, NULL, err);
        written++;
    }
    PQclear(r);
    json_object_set_new(det, "ground_truth_labels", json_integer(written));
    return rc;
}

/* Ground-truth measurements of the round (synthetic problems only): see docs/loop.md "Metrics". */
struct msum {
    double sum;
    long n;
};
static void madd(struct msum *m, double x) { m->sum += x, m->n++; }
static double mval(const struct msum *m) { return m->n ? m->sum / (double)m->n : NAN; }

/* The mean reward of a role's rollouts in the round, by SPEC's formulas: `dsm train grpo
 * --dry-run` (one definition of the rewards). */
static int round_reward(struct loop *L, int round, int role, json_t *out, struct dsm_err *err) {
    char rs[16], path[2400], hs[32], label[96], name[64];
    snprintf(rs, sizeof rs, "%d", round);
    snprintf(hs, sizeof hs, "%g", role == R_GEN ? L->c.gen_human_share : L->c.human_share);
    snprintf(path, sizeof path, "%s/logs/reward-%s-round-%d.json", L->dir, role_names[role], round);
    char *av[] = {"dsm", "train", "grpo", "--dry-run", "--role", (char *)role_names[role], "--run-id", L->run_s, "--round", rs,
                  "--template", L->c.template_, "--human-share", hs, "--reward", role == R_GEN ? L->c.gen_reward : "v2", NULL};
    snprintf(label, sizeof label, "round %d: %s rewards", round, role_names[role]);
    if (run_child(L, label, "rewards", av, path)) return g_stop ? dsm_errf(err, DSM_EIO, "interrupted") : dsm_errf(err, DSM_EIO, "computing the %s rewards failed", role_names[role]);
    json_error_t je;
    json_t *s = json_load_file(path, 0, &je);
    if (!s) return dsm_errf(err, DSM_EIO, "%s: %s", path, je.text);
    double v = json_number_value(json_object_get(s, "mean_reward"));
    int n = (int)json_integer_value(json_object_get(s, "rollouts"));
    json_decref(s);
    snprintf(name, sizeof name, "%s.mean_reward", role_names[role]);
    json_object_set_new(out, name, n ? json_real(v) : json_null());
    return n ? metric_put(L, round, name, v, err) : DSM_OK;
}

/* The generator that sampled this round, greedy on a fixed held-out set of synthetic problems
 * (stream seed + 13, which neither the rounds' problems (seed) nor the SFT data (seed + 7) use),
 * scored by the checker: the same problems every round, so the rounds compare paired, unlike
 * generator.validity whose problems are new each round. A child `dsm generate` samples them. */
static int heldout_problem(const struct loop *L, int i, struct synth_problem *p, struct dsm_err *err) {
    uint64_t hseed = (uint64_t)L->c.seed + 13;
    return synth_problem_generate(hseed, (uint64_t)i, synth_difficulty_pick(hseed, (uint64_t)i, L->c.diff_lo, L->c.diff_hi), p, err);
}

static int heldout_validity(struct loop *L, int round, json_t *out, struct dsm_err *err) {
    if (!L->c.heldout || L->remote[R_GEN]) return DSM_OK;
    char prompts[2400], res[2400], mt[16], thr[16], label[96];
    snprintf(prompts, sizeof prompts, "%s/data/heldout-prompts.jsonl", L->dir);
    snprintf(res, sizeof res, "%s/logs/heldout-round-%d.jsonl", L->dir, round);
    struct role_template t = {0};
    int rc = DSM_OK;
    if (!strcmp(L->c.template_, "synth")) synth_template(SYNTH_ROLE_GENERATOR, &t);
    else if (!strcmp(L->c.template_, "builtin")) gen_template_generate(&t);
    else rc = role_template_load(L->c.template_, &t, err);
    FILE *f = rc ? NULL : fopen(prompts, "w");
    if (!rc && !f) rc = dsm_errf(err, DSM_EIO, "cannot write %s: %s", prompts, strerror(errno));
    for (int i = 0; f && !rc && i < L->c.heldout; i++) {
        struct synth_problem p;
        char text[512], *prompt = NULL;
        if ((rc = heldout_problem(L, i, &p, err))) break;
        synth_problem_text(&p, text, sizeof text);
        if ((rc = gen_prompt_build(&t, text, &prompt, err))) break;
        json_t *j = json_pack("{s:[{s:s,s:s}]}", "messages", "role", "user", "content", prompt);
        char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (!line || fprintf(f, "%s\n", line) < 0) rc = dsm_errf(err, DSM_EIO, "writing %s failed", prompts);
        free(line), free(prompt);
        json_decref(j);
    }
    if (f && fclose(f) && !rc) rc = dsm_errf(err, DSM_EIO, "writing %s failed", prompts);
    role_template_free(&t);
    if (rc) return rc;
    snprintf(mt, sizeof mt, "%d", L->c.max_tokens[R_GEN]);
    snprintf(thr, sizeof thr, "%d", L->c.threads);
    snprintf(label, sizeof label, "round %d: held-out proofs", round);
    char *av[] = {"dsm", "generate", "--model", L->cur[R_GEN], "--prompts", prompts, "--json", "--temperature", "0",
                  "--max-tokens", mt, "--threads", thr, NULL};
    if (run_child(L, label, "heldout", av, res)) return g_stop ? dsm_errf(err, DSM_EIO, "interrupted") : dsm_errf(err, DSM_EIO, "the held-out generation failed");
    f = fopen(res, "r");
    if (!f) return dsm_errf(err, DSM_EIO, "cannot read %s: %s", res, strerror(errno));
    double sum = 0;
    int n = 0, lineno = 0;
    char *line = NULL;
    size_t cap = 0;
    while (!rc && getline(&line, &cap, f) > 0) {
        lineno++;
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        const char *txt = json_string_value(json_object_get(j, "text")), *fin = json_string_value(json_object_get(j, "finish_reason"));
        json_int_t req = json_integer_value(json_object_get(j, "request"));
        struct synth_problem p;
        if (!txt || !fin || req < 0 || req >= L->c.heldout) {
            rc = dsm_errf(err, DSM_EIO, "%s: line %d is not a completion of this set", res, lineno);
        } else if (!(rc = heldout_problem(L, (int)req, &p, err))) {
            struct gen_parsed g;
            gen_parse(txt, strlen(txt), strcmp(fin, "stop") != 0, &g);
            double score = 0;
            if (g.fail == ROLE_OK) {
                struct synth_verdict vd;
                synth_check(&p, g.proof.p, g.proof.n, &vd);
                score = vd.score;
            }
            sum += score, n++;
        }
        json_decref(j);
    }
    free(line);
    fclose(f);
    if (!rc && n != L->c.heldout) rc = dsm_errf(err, DSM_EIO, "%s: %d completions for %d problems", res, n, L->c.heldout);
    if (rc) return rc;
    json_object_set_new(out, "generator.heldout_validity", json_real(sum / n));
    return metric_put(L, round, "generator.heldout_validity", sum / n, err);
}

static int stage_metrics(struct loop *L, int round, json_t *out, struct dsm_err *err) {
    char rs[16], origin[96];
    snprintf(rs, sizeof rs, "%d", round);
    snprintf(origin, sizeof origin, "loop:%lld:%d", (long long)L->run_id, round);
    const char *v[3] = {L->run_s, rs, origin};
    PGresult *r = NULL;
    int rc;
    for (int role = R_GEN; role <= (answers_only(L) ? R_GEN : R_VER); role++)
        if ((rc = round_reward(L, round, role, out, err))) return rc;
    if (strcmp(L->c.problem_source, "synth")) return DSM_OK; /* no ground truth */
    if ((rc = heldout_validity(L, round, out, err))) return rc;
    struct msum g_format = {0}, g_valid = {0}, g_correct = {0}, g_honest = {0};
    struct msum v_format = {0}, v_acc = {0}, v_right = {0}, maj = {0}, lab_acc = {0}, lab_cov = {0};
    struct msum m_rej_prec = {0}, m_conf_prec = {0}, m_acc = {0}, m_format = {0};
    /* proofs */
    if ((rc = db_exec(L->db,
                      "SELECT p.id, p.proof, p.self_score, coalesce((p.metadata->>'format_ok')::boolean, false) "
                      "AND p.finish_reason = 'stop' AS ok, pr.statement, l.value AS label FROM proofs p JOIN problems pr ON "
                      "pr.id = p.problem_id LEFT JOIN labels l ON l.proof_id = p.id AND l.source = 'auto' AND l.origin = $3 "
                      "WHERE p.run_id = $1::bigint AND p.round = $2::int ORDER BY p.id",
                      3, v, &r, err)))
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        struct synth_problem p;
        struct synth_verdict vd;
        const char *st = db_get(r, i, "statement"), *pf = db_get(r, i, "proof");
        if (synth_problem_parse(st, strlen(st), &p, err)) continue;
        synth_check(&p, pf ? pf : "", pf ? strlen(pf) : 0, &vd);
        int ok = db_get(r, i, "ok")[0] == 't';
        madd(&g_format, ok);
        madd(&g_valid, ok ? vd.score : 0.0);
        madd(&g_correct, ok && vd.score == 1.0);
        if (ok) madd(&g_honest, db_get(r, i, "self_score") && db_get_f64(r, i, "self_score", -1) == vd.score);
        if (db_get(r, i, "label")) madd(&lab_acc, db_get_f64(r, i, "label", -1) == vd.score);
    }
    PQclear(r);
    /* analyses, their meta ratings, and the vote's coverage */
    if ((rc = db_exec(L->db,
                      "SELECT v.id, v.proof_id, v.score, v.raw_output, p.proof, pr.statement, "
                      "(SELECT count(*) FROM meta_verifications mv WHERE mv.verification_id = v.id) AS nm, "
                      "(SELECT count(*) FROM meta_verifications mv WHERE mv.verification_id = v.id AND mv.score = 1) AS n1, "
                      "(SELECT string_agg(coalesce(mv.score::text, 'x'), ',' ORDER BY mv.id) FROM meta_verifications mv "
                      " WHERE mv.verification_id = v.id) AS ratings, "
                      "EXISTS (SELECT 1 FROM labels l WHERE l.proof_id = v.proof_id AND l.source = 'auto' AND l.origin = $3 "
                      " AND l.value IS NOT NULL) AS labeled "
                      "FROM verifications v JOIN proofs p ON p.id = v.proof_id JOIN problems pr ON pr.id = p.problem_id "
                      "WHERE v.run_id = $1::bigint AND v.round = $2::int AND v.kind = 'analysis' ORDER BY v.proof_id, v.id",
                      3, v, &r, err)))
        return rc;
    int64_t cur = -1;
    int hist[3] = {0, 0, 0};
    double truth = 0;
    for (int i = 0; i <= PQntuples(r); i++) {
        int64_t pid = i < PQntuples(r) ? db_get_i64(r, i, "proof_id", 0) : -2;
        if (pid != cur && cur >= 0) { /* close the previous proof: majority of its analyses */
            int best = 0;
            for (int b = 1; b < 3; b++)
                if (hist[b] > hist[best]) best = b;
            if (hist[0] + hist[1] + hist[2]) madd(&maj, best * 0.5 == truth);
            hist[0] = hist[1] = hist[2] = 0;
        }
        if (i == PQntuples(r)) break;
        if (pid != cur) madd(&lab_cov, db_get(r, i, "labeled")[0] == 't');
        cur = pid;
        struct synth_problem p;
        struct synth_verdict vd;
        struct synth_analysis_verdict av;
        const char *st = db_get(r, i, "statement"), *pf = db_get(r, i, "proof"), *raw = db_get(r, i, "raw_output");
        if (synth_problem_parse(st, strlen(st), &p, err)) continue;
        synth_check(&p, pf ? pf : "", pf ? strlen(pf) : 0, &vd);
        truth = vd.score;
        synth_analysis_check(&vd, raw ? raw : "", raw ? strlen(raw) : 0, &av);
        int scored = db_get(r, i, "score") != NULL;
        double s = db_get_f64(r, i, "score", -1);
        madd(&v_format, scored);
        madd(&v_acc, scored && s == vd.score);
        madd(&v_right, av.right);
        if (scored) hist[s == 0 ? 0 : s == 0.5 ? 1 : 2]++;
        int64_t nm = db_get_i64(r, i, "nm", 0), n1 = db_get_i64(r, i, "n1", 0);
        if (scored && s < 1 && nm > 0) {
            int rejected = !(2 * n1 > nm);
            if (rejected) madd(&m_rej_prec, !av.right);
            else madd(&m_conf_prec, av.right);
            const char *rt = db_get(r, i, "ratings");
            for (const char *q = rt; q && *q;) { /* each rating against the judge's meta score */
                madd(&m_format, *q != 'x');
                madd(&m_acc, *q != 'x' && atof(q) == av.ms);
                q = strchr(q, ',');
                if (q) q++;
            }
        }
    }
    PQclear(r);
    struct {
        const char *name;
        struct msum *m;
    } rows[] = {
        {"generator.format_ok", &g_format},   {"generator.validity", &g_valid},     {"generator.correct", &g_correct},
        {"generator.honest", &g_honest},      {"verifier.format_ok", &v_format},    {"verifier.accuracy", &v_acc},
        {"verifier.fully_right", &v_right},   {"vote.majority_accuracy", &maj},     {"label.accuracy", &lab_acc},
        {"label.coverage", &lab_cov},         {"meta.reject_precision", &m_rej_prec}, {"meta.confirm_precision", &m_conf_prec},
        {"meta.accuracy", &m_acc},            {"meta.format_ok", &m_format},
    };
    for (size_t i = 0; i < DSM_ARRAY_LEN(rows) && !rc; i++) {
        double x = mval(rows[i].m);
        json_object_set_new(out, rows[i].name, isnan(x) ? json_null() : json_real(x));
        char cnt[96];
        snprintf(cnt, sizeof cnt, "%s.n", rows[i].name);
        json_object_set_new(out, cnt, json_integer(rows[i].m->n));
        if (!isnan(x)) rc = metric_put(L, round, rows[i].name, x, err);
    }
    return rc;
}

/* One GRPO update of a role from the round's rollouts: a new checkpoint, registered. */
static int stage_grpo(struct loop *L, int round, int role, json_t *det, struct dsm_err *err) {
    char out[2300], sum[2400], rs[16], lr[32], beta[32], eps[32], upd[16], bs[16], ml[16], thr[16], label[96], stage[32],
        hs[32];
    snprintf(hs, sizeof hs, "%g", role == R_GEN ? L->c.gen_human_share : L->c.human_share);
    snprintf(stage, sizeof stage, "grpo_%s", role_names[role]);
    snprintf(out, sizeof out, "%s/models/%s/round-%d", L->dir, role_names[role], round);
    snprintf(sum, sizeof sum, "%s/logs/%s-round-%d.json", L->dir, stage, round);
    snprintf(rs, sizeof rs, "%d", round);
    snprintf(lr, sizeof lr, "%g", L->c.grpo_lr);
    snprintf(beta, sizeof beta, "%g", L->c.beta);
    snprintf(eps, sizeof eps, "%g", L->c.eps);
    snprintf(upd, sizeof upd, "%d", L->c.updates);
    snprintf(bs, sizeof bs, "%d", L->c.grpo_batch);
    snprintf(ml, sizeof ml, "%d", L->c.grpo_max_len);
    snprintf(thr, sizeof thr, "%d", L->c.threads);
    /* LoRA: the base stays --model (the KL reference); round 1 starts the adapter, later rounds continue it */
    int lora = L->c.grpo_lora[0] != 0, first = !strcmp(L->cur[role], L->base[role]);
    char *av[] = {"dsm", "train", "grpo", "--role", (char *)role_names[role], "--model", lora ? L->base[role] : L->cur[role], "--out", out,
                  "--run-id", L->run_s, "--round", rs, "--template", L->c.template_, "--lr", lr, "--beta", beta, "--eps", eps,
                  "--updates", upd, "--batch-size", bs, "--max-len", ml, "--threads", thr, "--reward",
                  role == R_GEN ? L->c.gen_reward : "v2", "--human-share", hs,
                  lora ? (first ? "--lora" : "--adapter") : NULL, first ? L->c.grpo_lora : L->cur[role], NULL};
    snprintf(label, sizeof label, "round %d: GRPO %s", round, role_names[role]);
    if (run_child(L, label, stage, av, sum)) return g_stop ? dsm_errf(err, DSM_EIO, "interrupted") : dsm_errf(err, DSM_EIO, "GRPO of the %s failed", role_names[role]);
    json_error_t je;
    json_t *s = json_load_file(sum, 0, &je);
    if (!s) return dsm_errf(err, DSM_EIO, "%s: %s", sum, je.text);
    const char *keys[] = {"mean_reward", "loss", "kl", "clip_frac", "grad_norm", "groups", "sequences"};
    int rc = DSM_OK;
    for (size_t i = 0; i < DSM_ARRAY_LEN(keys) && !rc; i++) {
        json_t *x = json_object_get(s, keys[i]);
        char name[96];
        snprintf(name, sizeof name, "grpo.%s.%s", role_names[role], keys[i]);
        if (json_is_number(x)) rc = metric_put(L, round, name, json_number_value(x), err);
        json_object_set(det, keys[i], x);
    }
    json_decref(s);
    char what[32];
    snprintf(what, sizeof what, "round-%d", round);
    if (!rc) rc = model_register(L, role, round, out, what, err);
    json_object_set_new(det, "out", json_string(out));
    if (!rc) snprintf(L->cur[role], sizeof L->cur[role], "%s", out);
    return rc;
}

/* ---- the driver -------------------------------------------------------------------------------- */

enum { S_GENERATE, S_SELFEVAL, S_VERIFY, S_METAVERIFY, S_LABEL, S_METRICS, S_GRPO_VER, S_GRPO_GEN, S_COUNT };
static const char *const stage_names[S_COUNT] = {"generate", "selfeval", "verify", "metaverify",
                                                 "label",    "metrics",  "grpo_verifier", "grpo_generator"};

static int run_round(struct loop *L, int round, int train, struct dsm_err *err) {
    char *ids = NULL;
    int rc = stage_problems(L, round, &ids, err);
    if (rc) return rc;
    json_t *rj = json_object();
    json_object_set_new(rj, "round", json_integer(round));
    json_object_set_new(rj, "training", json_boolean(train));
    for (int s = 0; s < S_COUNT && !rc; s++) {
        int grpo_role = s == S_GRPO_VER ? R_VER : s == S_GRPO_GEN ? R_GEN : -1;
        if (answers_only(L) && s >= S_SELFEVAL && s <= S_LABEL) continue; /* no verifier in the V1 path */
        if (grpo_role >= 0 && (!train || !L->c.train[grpo_role] || L->remote[grpo_role])) continue;
        json_t *det = NULL;
        int done = stage_get(L, round, stage_names[s], &det, err);
        if (done < 0) {
            rc = err->code;
            break;
        }
        if (done) {
            if (grpo_role >= 0 && json_string_value(json_object_get(det, "out")))
                snprintf(L->cur[grpo_role], sizeof L->cur[grpo_role], "%s", json_string_value(json_object_get(det, "out")));
            json_object_set_new(rj, stage_names[s], det);
            continue;
        }
        det = json_object();
        double t0 = dsm_now();
        int64_t jobs = 0, dead = 0, n = 0;
        switch (s) {
        case S_GENERATE: rc = serve_stage(L, round, R_GEN, ids, &jobs, &dead, err); break;
        case S_SELFEVAL: rc = stage_selfeval(L, round, &n, err); break;
        case S_VERIFY: rc = serve_stage(L, round, R_VER, ids, &jobs, &dead, err); break;
        case S_METAVERIFY: rc = serve_stage(L, round, R_MVER, ids, &jobs, &dead, err); break;
        case S_LABEL: rc = stage_label(L, round, det, err); break;
        case S_METRICS: rc = stage_metrics(L, round, det, err); break;
        default: rc = stage_grpo(L, round, grpo_role, det, err); break;
        }
        if (s == S_GENERATE || s == S_VERIFY || s == S_METAVERIFY) {
            json_object_set_new(det, "jobs", json_integer(jobs));
            json_object_set_new(det, "dead", json_integer(dead));
        }
        if (s == S_SELFEVAL) json_object_set_new(det, "self_evaluations", json_integer(n));
        double dt = dsm_now() - t0;
        if (!rc) rc = stage_mark(L, round, stage_names[s], det, dt, err);
        if (!rc && !L->quiet) {
            char what[160] = "";
            if (s == S_GENERATE || s == S_VERIFY || s == S_METAVERIFY)
                snprintf(what, sizeof what, "%lld jobs%s", (long long)jobs, dead ? " (some dead: see jobs.last_error)" : "");
            else if (s == S_SELFEVAL) snprintf(what, sizeof what, "%lld self-evaluations to rate", (long long)n);
            else if (s == S_METRICS)
                snprintf(what, sizeof what, "verifier acc %.3f, label acc %.3f, generator validity %.3f",
                         json_number_value(json_object_get(det, "verifier.accuracy")),
                         json_number_value(json_object_get(det, "label.accuracy")),
                         json_number_value(json_object_get(det, "generator.validity")));
            else if (grpo_role >= 0)
                snprintf(what, sizeof what, "mean reward %.3f over %lld groups", json_number_value(json_object_get(det, "mean_reward")),
                         (long long)json_integer_value(json_object_get(det, "groups")));
            fprintf(stderr, "round %d · %-15s %-60s %6.1f s\n", round, stage_names[s], what, dt);
        }
        json_object_set_new(rj, stage_names[s], det);
    }
    free(ids);
    if (!rc) {
        char rs[16];
        snprintf(rs, sizeof rs, "%d", round);
        const char *v[2] = {L->run_s, rs};
        rc = db_exec(L->db, "UPDATE runs SET round = greatest(round, $2::int) WHERE id = $1::bigint", 2, v, NULL, err);
    }
    json_array_append_new(json_object_get(L->summary, "rounds"), rj);
    return rc;
}

/* The run of this name (resumed when its configuration is the same), or a new one. */
static int run_open(struct loop *L, const char *config_text, int fresh, struct dsm_err *err) {
    const char *v[2] = {L->run_name, config_text};
    PGresult *r = NULL;
    int rc = db_exec(L->db, "SELECT id, config::text AS c, status FROM runs WHERE name = $1 AND kind = 'loop' ORDER BY id DESC LIMIT 1", 1,
                     v, &r, err);
    if (rc) return rc;
    if (PQntuples(r) && !fresh) {
        /* compare as jsonb: key order and spacing do not matter */
        const char *cv[2] = {db_get(r, 0, "c"), config_text};
        PGresult *e = NULL;
        rc = db_exec(L->db, "SELECT $1::jsonb = $2::jsonb AS same", 2, cv, &e, err);
        int same = !rc && db_get(e, 0, "same")[0] == 't';
        PQclear(e);
        if (!rc && !same)
            rc = dsm_errf(err, DSM_EINVAL,
                          "run '%s' (id %s) exists with another configuration; resume it with the same one, name a new run "
                          "with --run, or start it over with --fresh",
                          L->run_name, db_get(r, 0, "id"));
        if (!rc) {
            L->run_id = db_get_i64(r, 0, "id", 0);
            LOG_INFO("loop: resuming run '%s' (id %lld)", L->run_name, (long long)L->run_id);
        }
        PQclear(r);
        return rc;
    }
    PQclear(r);
    if ((rc = db_exec(L->db, "INSERT INTO runs (name, kind, config) VALUES ($1, 'loop', $2::jsonb) RETURNING id", 2, v, &r, err)))
        return rc;
    L->run_id = db_get_i64(r, 0, "id", 0);
    PQclear(r);
    return DSM_OK;
}

/* The metrics of the run as a table on stderr, round by round. */
static void print_table(struct loop *L) {
    static const char *const cols[][2] = {
        {"verifier.accuracy", "ver acc"},        {"vote.majority_accuracy", "maj acc"}, {"label.accuracy", "label acc"},
        {"label.coverage", "labeled"},           {"meta.reject_precision", "meta rej"}, {"generator.validity", "gen valid"},
        {"generator.heldout_validity", "gen heldout"},
        {"generator.honest", "gen honest"},      {"verifier.mean_reward", "R ver"},     {"generator.mean_reward", "R gen"},
    };
    const char *v[1] = {L->run_s};
    PGresult *r = NULL;
    struct dsm_err err = {0};
    if (db_exec(L->db, "SELECT round, name, value FROM metrics WHERE run_id = $1::bigint ORDER BY round", 1, v, &r, &err)) return;
    fprintf(stderr, "\n%-6s", "round");
    for (size_t c = 0; c < DSM_ARRAY_LEN(cols); c++) fprintf(stderr, " %10s", cols[c][1]);
    fputc('\n', stderr);
    int nr = PQntuples(r);
    for (int i = 0; i < nr;) {
        int64_t round = db_get_i64(r, i, "round", 0);
        int j = i;
        while (j < nr && db_get_i64(r, j, "round", 0) == round) j++;
        fprintf(stderr, "%-6lld", (long long)round);
        for (size_t c = 0; c < DSM_ARRAY_LEN(cols); c++) {
            int k = i;
            while (k < j && strcmp(db_get(r, k, "name"), cols[c][0])) k++;
            if (k < j) fprintf(stderr, " %10.3f", db_get_f64(r, k, "value", 0));
            else fprintf(stderr, " %10s", "-");
        }
        fputc('\n', stderr);
        i = j;
    }
    PQclear(r);
}

/* --summary: {"seconds", "run", "run_id", "rounds": [...], "stages": [...], "final_models", ...}.
 * rounds[i] is the state after i GRPO rounds (i = 0: right after the bootstrap), measured by loop
 * round i + 1, with the headline figures and every metric of that round. */
static int write_summary(struct loop *L, const char *path, struct dsm_err *err) {
    static const char *const keys[][2] = {
        {"verifier_accuracy", "verifier.accuracy"},        {"label_accuracy", "label.accuracy"},
        {"label_coverage", "label.coverage"},              {"meta_reject_precision", "meta.reject_precision"},
        {"generator_validity", "generator.validity"},      {"mean_reward", "generator.mean_reward"},
        {"generator_heldout_validity", "generator.heldout_validity"},
        {"verifier_mean_reward", "verifier.mean_reward"},  {"majority_accuracy", "vote.majority_accuracy"},
    };
    const char *v[1] = {L->run_s};
    PGresult *r = NULL;
    int rc = db_exec(L->db,
                     "SELECT round, jsonb_object_agg(name, value ORDER BY name)::text AS m FROM metrics "
                     "WHERE run_id = $1::bigint GROUP BY round ORDER BY round",
                     1, v, &r, err);
    if (rc) return rc;
    json_t *rounds = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *m = json_loads(db_get(r, i, "m"), 0, NULL);
        int lr = (int)db_get_i64(r, i, "round", 0);
        json_t *e = json_pack("{s:i,s:i,s:b}", "round", lr - 1, "loop_round", lr, "trained_after", lr <= L->c.rounds);
        for (size_t k = 0; k < DSM_ARRAY_LEN(keys); k++) {
            json_t *x = m ? json_object_get(m, keys[k][1]) : NULL;
            json_object_set(e, keys[k][0], x ? x : json_null());
        }
        json_object_set_new(e, "metrics", m ? m : json_object());
        json_array_append_new(rounds, e);
    }
    PQclear(r);
    json_object_set_new(L->summary, "stages", json_incref(json_object_get(L->summary, "rounds")));
    json_object_set_new(L->summary, "rounds", rounds);
    json_object_set_new(L->summary, "seconds", json_real(dsm_now() - L->t0));
    json_t *models = json_object();
    for (int i = 0; i < R_N; i++) json_object_set_new(models, role_names[i], json_string(L->cur[i]));
    json_object_set_new(L->summary, "final_models", models);
    char *s = json_dumps(L->summary, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    rc = s ? dsm_file_write_atomic(path, s, strlen(s), err) : dsm_errf(err, DSM_ENOMEM, "out of memory");
    free(s);
    return rc;
}

int cmd_loop(int argc, char **argv) {
    const char *config = NULL, *summary = NULL, *dir = NULL, *run = "default";
    int rounds = -1, fresh = 0, quiet = 0;
    const struct cli_opt opts[] = {
        {"--config", CLI_STR, &config, "FILE", "JSON configuration (docs/loop.md; default: the embedded default)"},
        {"--summary", CLI_STR, &summary, "FILE", "write the run's stages and metrics as JSON"},
        {"--run", CLI_STR, &run, "NAME", "run name: the same name resumes it (default \"default\")"},
        {"--dir", CLI_STR, &dir, "DIR", "models, data and logs (default $DSM_HOME/loop/NAME, or var/loop/NAME)"},
        {"--rounds", CLI_INT, &rounds, "N", "training rounds (overrides the configuration)"},
        {"--fresh", CLI_FLAG, &fresh, NULL, "start the run over under a new id (the old one stays in the store)"},
        {"--quiet", CLI_FLAG, &quiet, NULL, "no progress lines"},
    };
    const struct cli_cmd_spec spec = {
        "loop", "[--config FILE] [--summary FILE.json] [--run NAME] [--rounds N]",
        "The self-verification training loop (SPEC §1-2) as a resumable batch job through the store:\n"
        "bootstrap SFT of tiny models on the synthetic proof domain (roles not configured), then\n"
        "rounds of generate -> verify (n per proof) -> meta-verify (m per issue) -> vote -> labels ->\n"
        "GRPO verifier -> GRPO generator -> metrics, and a final evaluation round. Kill it at any\n"
        "point and run the same command again: it continues. docs/loop.md.",
        opts, DSM_ARRAY_LEN(opts), 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    struct loop *L = calloc(1, sizeof *L);
    if (!L) return 1;
    struct dsm_err err = {0};
    cfg_default(&L->c);
    json_t *raw = NULL;
    if (config && cfg_load(config, &L->c, &raw, &err)) {
        free(L);
        return cli_usage_error(spec.name, "%s", err.msg);
    }
    if (!raw) raw = json_object();
    if (rounds >= 0) {
        L->c.rounds = rounds;
        json_object_set_new(raw, "rounds", json_integer(rounds));
    }
    if (strlen(run) >= sizeof L->run_name || !*run || strspn(run, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != strlen(run)) {
        json_decref(raw);
        free(L);
        return cli_usage_error(spec.name, "--run must be 1-127 letters, digits, '_', '-' or '.'");
    }
    snprintf(L->run_name, sizeof L->run_name, "%s", run);
    L->tty = isatty(2);
    L->quiet = quiet;
    L->t0 = dsm_now();
    L->summary = json_pack("{s:s,s:[]}", "run", run, "rounds");
    char *config_text = json_dumps(raw, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(raw);
    if (dir) snprintf(L->dir, sizeof L->dir, "%s", dir);
    else if (getenv("DSM_HOME") && *getenv("DSM_HOME")) snprintf(L->dir, sizeof L->dir, "%s/loop/%s", getenv("DSM_HOME"), run);
    else snprintf(L->dir, sizeof L->dir, "var/loop/%s", run);
    ssize_t sl = readlink("/proc/self/exe", L->self, sizeof L->self - 1);
    if (sl <= 0) {
        rc = dsm_errf(&err, DSM_EIO, "cannot find the dsm executable (/proc/self/exe)");
        goto fail;
    }
    L->self[sl] = 0;
    char sub[2300];
    const char *subs[] = {"logs", "data", "models"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(sub, sizeof sub, "%s/%s", L->dir, subs[i]);
        if ((rc = dsm_mkdir_p(sub, &err))) goto fail;
    }
    struct db_open_opts dbo = {.migrate = 1};
    if ((rc = db_open(&dbo, &L->db, &err))) goto fail;
    if ((rc = run_open(L, config_text, fresh, &err))) goto fail;
    snprintf(L->run_s, sizeof L->run_s, "%lld", (long long)L->run_id);
    {
        const char *v[1] = {L->run_s};
        if ((rc = db_exec(L->db, "UPDATE runs SET status = 'running', finished_at = NULL WHERE id = $1::bigint", 1, v, NULL, &err)))
            goto fail;
    }
    json_object_set_new(L->summary, "run_id", json_integer(L->run_id));
    json_object_set_new(L->summary, "dir", json_string(L->dir));
    json_object_set_new(L->summary, "database", json_string(db_conninfo(L->db)));
    if (!quiet)
        fprintf(stderr, "dsm loop: run '%s' (id %lld), %d training round(s) + 1 evaluation round; models, data and logs in %s\n",
                run, (long long)L->run_id, L->c.rounds, L->dir);
    cli_catch_stop_signals(on_signal);
    for (int r = 0; r < R_N && !rc; r++) {
        const char *mspec = L->c.models[r];
        if (!strncmp(mspec, "http:", 5) || !strncmp(mspec, "https:", 6)) {
            L->remote[r] = 1;
            snprintf(L->cur[r], sizeof L->cur[r], "%s", mspec);
        } else if (mspec[0]) {
            snprintf(L->cur[r], sizeof L->cur[r], "%s", !strncmp(mspec, "native:", 7) ? mspec + 7 : mspec);
        } else if (r == R_GEN || !answers_only(L)) {
            rc = bootstrap(L, r, &err);
        }
    }
    for (int r = 0; r < R_N; r++) snprintf(L->base[r], sizeof L->base[r], "%s", L->cur[r]);
    for (int round = 1; round <= L->c.rounds + 1 && !rc && !g_stop; round++) rc = run_round(L, round, round <= L->c.rounds, &err);
    if (g_stop) {
        fprintf(stderr, "dsm loop: interrupted; run the same command again to continue from the last finished stage\n");
        rc = 130;
        goto out;
    }
    if (rc) goto fail;
    {
        const char *v[1] = {L->run_s};
        if ((rc = db_exec(L->db, "UPDATE runs SET status = 'done', finished_at = now() WHERE id = $1::bigint", 1, v, NULL, &err)))
            goto fail;
    }
    if (!quiet) {
        print_table(L);
        fprintf(stderr,
                "\nwhere the numbers are: SELECT round, name, value FROM metrics WHERE run_id = %lld ORDER BY round, name;\n"
                "  stages: loop_stages (run_id %lld); proofs, verifications, meta_verifications, labels: run_id %lld\n"
                "  final models: generator %s, verifier %s, metaverifier %s\n  logs: %s/logs; %.1f s in all\n",
                (long long)L->run_id, (long long)L->run_id, (long long)L->run_id, L->cur[R_GEN], L->cur[R_VER], L->cur[R_MVER], L->dir,
                dsm_now() - L->t0);
    }
    if (summary && (rc = write_summary(L, summary, &err))) goto fail;
    {
        char rp[2400], used[1200];
        snprintf(rp, sizeof rp, "%s/report.html", L->dir);
        struct dsm_err rerr = {0};
        if (report_run_write(L->db, (long long)L->run_id, NULL, rp, used, sizeof used, &rerr))
            LOG_WARN("loop: the report could not be written: %s", rerr.msg);
        else if (!quiet)
            fprintf(stderr, "report: %s\n", used);
    }
    rc = 0;
    goto out;
fail:
    if (L->db && L->run_id) {
        const char *v[1] = {L->run_s};
        struct dsm_err e2 = {0};
        db_exec(L->db, "UPDATE runs SET status = 'failed' WHERE id = $1::bigint", 1, v, NULL, &e2);
    }
    rc = cli_fail(spec.name, &err);
out:
    free(config_text);
    json_decref(L->summary);
    db_close(L->db);
    free(L);
    return rc;
}
