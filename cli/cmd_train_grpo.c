/* cmd_train_grpo.c - `dsm train grpo`: one GRPO update of a generator or verifier from the rollouts
 * a loop round left in the store (SPEC §2, DESIGN "data path of one loop round").
 *
 * Groups (outputs sampled from one prompt by the policy being trained):
 *   verifier   the analyses (verifications of kind 'analysis') of one proof in the round; reward
 *              R_format · (1 − |s' − s|) · R_meta with s the proof's auto label of the round, or
 *              for a --human-share of the proofs (chosen by a hash of their seed) their human /
 *              ground-truth label (proofs with
 *              neither are not used), R_meta the mean rating of the analysis's
 *              meta-verifications (a failed one counts 0), 1 when it had none (scored 1);
 *   generator  the proofs of one problem in the round; reward R_format · (0.76 s + 0.24 (1 − |s' −
 *              s|) · ms) with s the proof's auto label, or for a --human-share of the proofs their
 *              human / ground-truth label (else its verifications' mean score rounded
 *              to the nearest of 0, 0.5, 1; 0 with none), s' the self-score, ms the mean rating of
 *              the meta-verifications of its self-evaluation (1 when it had none).
 * Token sequences are rebuilt as the service sampled them: the role's template renders the
 * prompt, the model's chat format and tokenizer encode it, then the raw output and EOS (finish
 * "stop"). The template must be the one recorded in the rows' sampling (checked).
 * The reference policy, full fine-tuning: the model at the start of the update (iterative GRPO
 * resets it each round), so old and reference log-probabilities are one forward pass of the
 * starting weights. With LoRA (--lora for a new adapter, --adapter to continue one) --model is the
 * frozen base and the reference is that base with the adapter switched off (no second copy of the
 * weights); the sampling policy is base + adapter. The output directory then holds the adapter
 * (PEFT files, for the next round's --adapter) and the merged model (what the services load).
 * See docs/loop.md. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/dp.h"
#include "common/answer.h"
#include "common/chat.h"
#include "common/db.h"
#include "common/grpo.h"
#include "common/log.h"
#include "common/lora.h"
#include "common/model.h"
#include "common/optim.h"
#include "common/role.h"
#include "common/synth.h"
#include "common/tokenizer.h"
#include "common/train.h"
#include "common/train_ckpt.h"
#include "common/util.h"
#include "generator/generator.h"
#include "verifier/verifier.h"

static const char *const ver_sql =
    "SELECT v.id, v.proof_id AS grp, v.raw_output, v.finish_reason, v.score, v.format_ok, v.sampling->>'prompt' AS tmpl, "
    "pr.statement, p.proof, l.value AS label, "
    "(SELECT count(*) FROM meta_verifications mv WHERE mv.verification_id = v.id) AS n_meta, "
    "(SELECT avg(coalesce(mv.score, 0)) FROM meta_verifications mv WHERE mv.verification_id = v.id)::float8 AS ms "
    "FROM verifications v JOIN proofs p ON p.id = v.proof_id JOIN problems pr ON pr.id = p.problem_id "
    "JOIN LATERAL (SELECT x.value FROM labels x WHERE x.proof_id = p.id AND x.value IS NOT NULL AND "
    " ((x.source = 'auto' AND x.origin = $3) OR (x.source IN ('human', 'ground_truth') AND "
    "  (hashtextextended(coalesce(p.seed, p.id)::text, 7) & 1023) < $4::float8 * 1024)) "
    " ORDER BY (x.source <> 'auto') DESC, x.id LIMIT 1) l ON true "
    "WHERE v.run_id = $1::bigint AND v.round = $2::int AND v.kind = 'analysis' AND v.raw_output IS NOT NULL "
    "ORDER BY v.proof_id, v.id";

static const char *const gen_sql =
    "SELECT p.id, p.problem_id AS grp, p.raw_output, p.finish_reason, p.self_score, "
    "coalesce((p.metadata->>'format_ok')::boolean, false) AS format_ok, p.sampling->>'prompt' AS tmpl, pr.statement, "
    "pr.gold_answer, "
    "l.value AS label, "
    "(SELECT avg(v.score) FROM verifications v WHERE v.proof_id = p.id AND v.kind = 'analysis')::float8 AS vmean, "
    "(SELECT count(*) FROM meta_verifications mv JOIN verifications v ON v.id = mv.verification_id "
    "  WHERE v.proof_id = p.id AND v.kind = 'self') AS n_meta, "
    "(SELECT avg(coalesce(mv.score, 0)) FROM meta_verifications mv JOIN verifications v ON v.id = mv.verification_id "
    "  WHERE v.proof_id = p.id AND v.kind = 'self')::float8 AS ms "
    "FROM proofs p JOIN problems pr ON pr.id = p.problem_id "
    "LEFT JOIN LATERAL (SELECT x.value FROM labels x WHERE x.proof_id = p.id AND x.value IS NOT NULL AND "
    " ((x.source = 'auto' AND x.origin = $3) OR (x.source IN ('human', 'ground_truth') AND "
    "  (hashtextextended(coalesce(p.seed, p.id)::text, 7) & 1023) < $4::float8 * 1024)) "
    " ORDER BY (x.source <> 'auto') DESC, x.id LIMIT 1) l ON true "
    "WHERE p.run_id = $1::bigint AND p.round = $2::int AND p.raw_output IS NOT NULL "
    "ORDER BY p.problem_id, p.id";

struct rollout {
    int64_t grp;
    int32_t *ids;
    int T, prompt_len;
    double reward;
};

struct grpo_args {
    const char *role, *model, *out, *label_origin, *template_path, *device, *reward, *lora, *adapter;
    long run_id, round, seed;
    int updates, batch, max_len, threads, dry_run;
    double beta, eps, lr, wd, max_grad_norm, human_share;
    struct cli_dp dp; /* data parallelism: each rank takes a contiguous share of the sequences */
};

static double snap_score(double x) { return x < 0.25 ? 0.0 : x < 0.75 ? 0.5 : 1.0; }

/* The rule reward (DeepSeekMath V1): 1 when the output's final answer equals the problem's gold
 * answer (common/answer.h), 0 otherwise or when the output was cut off. */
static int rule_reward(struct ans_checker *ck, const PGresult *r, int i, double *out, struct dsm_err *err) {
    const char *gold = db_get(r, i, "gold_answer"), *raw = db_get(r, i, "raw_output"), *fin = db_get(r, i, "finish_reason");
    if (!gold || !*gold)
        return dsm_errf(err, DSM_EINVAL, "proof %s: its problem has no gold answer (--reward rule needs answer problems)",
                        db_get(r, i, "id"));
    *out = 0.0;
    if (!fin || strcmp(fin, "stop")) return DSM_OK;
    struct ans_verdict v;
    int rc = ans_checker_grade(ck, gold, raw, strlen(raw), 0, &v, err);
    if (rc == DSM_OK) *out = v.equal ? 1.0 : 0.0;
    return rc;
}

/* The reward of row i of r (see the file comment). */
static double row_reward(int is_ver, const PGresult *r, int i) {
    int stop = db_get(r, i, "finish_reason") && !strcmp(db_get(r, i, "finish_reason"), "stop");
    int fmt = stop && db_get(r, i, "format_ok") && db_get(r, i, "format_ok")[0] == 't';
    double ms = db_get_i64(r, i, "n_meta", 0) > 0 ? db_get_f64(r, i, "ms", 0.0) : 1.0;
    if (is_ver) {
        if (!fmt || !db_get(r, i, "score")) return 0.0;
        return ver_reward(1, db_get_f64(r, i, "score", 0), db_get_f64(r, i, "label", 0), ms);
    }
    if (!fmt || !db_get(r, i, "self_score")) return 0.0;
    double s = db_get(r, i, "label") ? db_get_f64(r, i, "label", 0) : snap_score(db_get_f64(r, i, "vmean", 0));
    return gen_reward(1, s, db_get_f64(r, i, "self_score", 0), ms);
}

/* Token ids of prompt + output (+ EOS when it stopped) into ro. */
static int build_ids(const struct chat_format *fmt, const struct dsm_tokenizer *tok, const char *prompt, const char *out,
                     int stopped, struct rollout *ro, struct dsm_err *err) {
    struct chat_msg msg = {.role = "user", .content = prompt};
    int32_t *p = NULL, *o = NULL;
    size_t np = 0, no = 0;
    int rc = chat_encode(fmt, tok, &msg, 1, 0, &p, &np, err);
    if (!rc) rc = tok_encode_alloc(tok, out, strlen(out), &o, &no, err);
    if (!rc) {
        int eos = stopped ? tok_eos_id(tok) : -1;
        ro->T = (int)(np + no) + (eos >= 0);
        ro->prompt_len = (int)np;
        ro->ids = malloc(sizeof(int32_t) * (size_t)(ro->T ? ro->T : 1));
        if (!ro->ids) rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
        else {
            memcpy(ro->ids, p, sizeof(int32_t) * np);
            memcpy(ro->ids + np, o, sizeof(int32_t) * no);
            if (eos >= 0) ro->ids[np + no] = eos;
        }
    }
    free(p);
    free(o);
    return rc;
}

/* The updated policy into a->out: the weights, or with LoRA the adapter (PEFT files, to continue
 * it next round) and the base with the adapter merged in (the model the services load). */
static int write_out(const struct grpo_args *a, struct dsm_model *m, struct dsm_lora *lora, struct dsm_err *err) {
    int rc = DSM_OK;
    if (lora && ((rc = dsm_lora_save(lora, a->out, a->model, err)) || (rc = dsm_lora_merge(lora, err)))) return rc;
    return dsm_ckpt_write_weights(a->out, a->model, m, err);
}

static int run_grpo(struct grpo_args *a) {
    const char *cmd = "train grpo";
    int is_ver = !strcmp(a->role, "verifier");
    if (!is_ver && strcmp(a->role, "generator"))
        return cli_usage_error(cmd, "--role must be verifier or generator, not '%s'", a->role);
    if ((!a->dry_run && (!a->model || !a->out)) || a->run_id < 1 || a->round < 0)
        return cli_usage_error(cmd, "--model, --out (unless --dry-run), --run-id (>= 1) and --round (>= 0) are required");
    if (!(a->human_share >= 0 && a->human_share <= 1)) return cli_usage_error(cmd, "--human-share must be in [0, 1]");
    if (a->updates < 1 || a->batch < 1 || a->max_len < 2 || !(a->lr > 0) || a->beta < 0 || !(a->eps > 0) || a->wd < 0 ||
        a->max_grad_norm < 0)
        return cli_usage_error(cmd, "need --updates >= 1, --batch-size >= 1, --max-len >= 2, --lr > 0, --beta >= 0, "
                                    "--eps > 0, --weight-decay >= 0, --max-grad-norm >= 0");
    struct dsm_lora_cfg lcfg;
    if (a->lora && a->adapter) return cli_usage_error(cmd, "--lora starts a new adapter and --adapter continues one: give one");
    struct dsm_err err = {0};
    if (a->lora && dsm_lora_parse(a->lora, &lcfg, &err)) return cli_usage_error(cmd, "--lora: %s", err.msg);
    struct dsm_lora *lora = NULL;
    float **refp = NULL;
    struct role_template tmpl = {0};
    struct dsm_db *db = NULL;
    struct dsm_tokenizer *tok = NULL;
    struct dsm_backend *be = NULL;
    struct dsm_model *m = NULL;
    struct dsm_train *t = NULL;
    struct dsm_optim *o = NULL;
    struct dsm_optim_tensor *params = NULL;
    PGresult *r = NULL;
    struct rollout *ro = NULL;
    struct grpo_seq *seqs = NULL;
    float **old = NULL;
    int n_params = 0, n = 0, used = 0, rc = 0;
    const struct chat_format *fmt = NULL;
    struct ans_checker *ck = NULL;
    struct dsm_dist *dist = NULL;
    if (strcmp(a->reward, "v2") && strcmp(a->reward, "rule"))
        return cli_usage_error(cmd, "--reward must be v2 or rule, not '%s'", a->reward);
    if (!strcmp(a->reward, "rule")) {
        if (is_ver) return cli_usage_error(cmd, "--reward rule is for the generator (answer problems)");
        if ((rc = ans_checker_create(NULL, &ck, &err))) goto fail;
    }

    if (!a->template_path || !strcmp(a->template_path, "builtin")) {
        if (is_ver) ver_template_verify(&tmpl);
        else gen_template_generate(&tmpl);
    } else if (!strcmp(a->template_path, "synth")) {
        synth_template(is_ver ? SYNTH_ROLE_VERIFIER : SYNTH_ROLE_GENERATOR, &tmpl);
    } else if ((rc = role_template_load(a->template_path, &tmpl, &err))) {
        goto fail;
    }
    if (!a->dry_run &&
        ((rc = tok_load_dir(a->model, &tok, &err)) || (rc = chat_format_select(NULL, tok, a->model, &fmt, &err))))
        goto fail;
    struct db_open_opts dbo = {.migrate = 1};
    if ((rc = db_open(&dbo, &db, &err))) goto fail;
    char run_s[24], round_s[24], origin[200];
    snprintf(run_s, sizeof run_s, "%ld", a->run_id);
    snprintf(round_s, sizeof round_s, "%ld", a->round);
    if (a->label_origin) snprintf(origin, sizeof origin, "%s", a->label_origin);
    else snprintf(origin, sizeof origin, "loop:%ld:%ld", a->run_id, a->round);
    char share_s[32];
    snprintf(share_s, sizeof share_s, "%.6f", a->human_share);
    const char *qv[4] = {run_s, round_s, origin, share_s};
    if ((rc = db_exec(db, is_ver ? ver_sql : gen_sql, 4, qv, &r, &err))) goto fail;
    n = PQntuples(r);
    ro = calloc((size_t)(n ? n : 1), sizeof *ro);
    if (!ro) {
        rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
        goto fail;
    }
    /* rebuild every rollout's tokens; group rewards into advantages */
    long too_long = 0;
    for (int i = 0; i < n; i++) {
        const char *tid = db_get(r, i, "tmpl");
        if (!tid || strcmp(tid, tmpl.id)) {
            rc = dsm_errf(&err, DSM_EINVAL,
                          "row %s was sampled with prompt template '%s', but this update would rebuild it with '%s' "
                          "(pass the same --template)",
                          db_get(r, i, "id"), tid ? tid : "(none)", tmpl.id);
            goto fail;
        }
        if (a->dry_run) { /* rewards only: a stand-in sequence keeps the group bookkeeping */
            ro[i].T = 2, ro[i].prompt_len = 1;
        } else {
            char *prompt = NULL;
            rc = is_ver ? ver_prompt_build(&tmpl, db_get(r, i, "statement"), db_get(r, i, "proof"), &prompt, &err)
                        : gen_prompt_build(&tmpl, db_get(r, i, "statement"), &prompt, &err);
            const char *fin = db_get(r, i, "finish_reason");
            if (!rc) rc = build_ids(fmt, tok, prompt, db_get(r, i, "raw_output"), fin && !strcmp(fin, "stop"), &ro[i], &err);
            free(prompt);
            if (rc) goto fail;
        }
        ro[i].grp = db_get_i64(r, i, "grp", 0);
        if (ck) {
            if ((rc = rule_reward(ck, r, i, &ro[i].reward, &err))) goto fail;
        } else {
            ro[i].reward = row_reward(is_ver, r, i);
        }
        if (ro[i].T > a->max_len || ro[i].T - ro[i].prompt_len < 1) too_long++;
    }
    seqs = calloc((size_t)(n ? n : 1), sizeof *seqs);
    old = calloc((size_t)(n ? n : 1), sizeof *old);
    if (!seqs || !old) {
        rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
        goto fail;
    }
    double rsum = 0;
    int groups = 0, flat = 0;
    for (int i0 = 0, i1; i0 < n; i0 = i1) {
        for (i1 = i0; i1 < n && ro[i1].grp == ro[i0].grp; i1++) rsum += ro[i1].reward;
        int G = i1 - i0, ok = G >= 2;
        for (int i = i0; i < i1; i++) ok &= ro[i].T <= a->max_len && ro[i].T > ro[i].prompt_len;
        if (!ok) continue;
        double rw[1024], adv[1024];
        if (G > 1024) G = 1024;
        for (int k = 0; k < G; k++) rw[k] = ro[i0 + k].reward;
        grpo_advantages(rw, G, adv);
        if (adv[0] == 0.0 && adv[G - 1] == 0.0) { /* all rewards equal: no policy gradient */
            flat++;
            continue;
        }
        groups++;
        for (int k = 0; k < G; k++) {
            struct rollout *x = &ro[i0 + k];
            seqs[used] = (struct grpo_seq){x->ids, x->T, x->prompt_len, NULL, NULL, adv[k]};
            used++;
        }
    }
    LOG_INFO("%s GRPO, run %ld round %ld: %d rollouts, mean reward %.4f; %d groups used (%d sequences), %d with equal "
             "rewards skipped, %ld over --max-len %d",
             a->role, a->run_id, a->round, n, n ? rsum / n : 0.0, groups, used, flat, too_long, a->max_len);

    struct grpo_opts go = {.beta = a->beta, .eps = a->eps};
    struct grpo_stats st = {0};
    double gnorm = 0;
    if (a->dry_run) {
        /* rewards only: nothing is loaded, trained or written */
    } else if ((rc = dsm_backend_open(a->device, a->threads, &be, &err)) || (rc = cli_dp_open(&a->dp, be, &dist, &err))) {
        goto fail;
    }
    /* this rank's sequences [lo, hi); the loss is still normalised by all of them */
    int world = dist ? dsm_dist_world(dist) : 1, lead = !dist || dsm_dist_rank(dist) == 0;
    int lo = dist ? (int)((long)used * dsm_dist_rank(dist) / world) : 0;
    int hi = dist ? (int)((long)used * (dsm_dist_rank(dist) + 1) / world) : used;
    struct dsm_model_opts mo = {.max_tokens = 1, .max_seq = a->max_len, .wdtype = DSM_DT_F32};
    if (!a->dry_run && (rc = dsm_model_load(a->model, be, &mo, &m, &err))) goto fail;
    /* a fresh adapter's A is seeded from the run and round, so a rerun writes the same weights */
    if (!a->dry_run && a->adapter && (rc = dsm_lora_load(m, a->adapter, &lora, &err))) goto fail;
    if (!a->dry_run && a->lora && (rc = dsm_lora_create(m, &lcfg, (uint64_t)a->run_id * 1000003u + (uint64_t)a->round, &lora, &err)))
        goto fail;
    if (a->dry_run) {
    } else if (used) {
        struct dsm_train_opts to = {.max_rows = a->batch * a->max_len, .max_seq = a->max_len, .lora = lora};
        if ((rc = dsm_train_create(m, &to, &t, &err)) || (rc = dsm_train_params(t, &params, &n_params, &err))) goto fail;
        struct dsm_optim_cfg oc;
        dsm_optim_cfg_default(&oc);
        oc.lr = a->lr, oc.weight_decay = a->wd, oc.max_grad_norm = a->max_grad_norm, oc.sched = DSM_SCHED_CONSTANT;
        oc.total_steps = a->updates;
        if ((rc = dsm_optim_create(be, params, n_params, &oc, &o, &err))) goto fail;
        if (lora && !(refp = calloc((size_t)used, sizeof *refp))) {
            rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
            goto fail;
        }
        for (int s = 0; s < used; s++) {
            size_t L = sizeof(float) * (size_t)(seqs[s].T - seqs[s].prompt_len);
            if (!(old[s] = malloc(L)) || (lora && !(refp[s] = malloc(L)))) {
                rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
                goto fail;
            }
            seqs[s].old_logp = old[s];
            /* the reference: the base model (adapter off) with LoRA, else the round's starting policy */
            seqs[s].ref_logp = lora ? refp[s] : old[s];
        }
        if ((rc = grpo_token_logp(t, seqs + lo, hi - lo, old + lo, &err))) goto fail;
        if (lora) {
            dsm_train_lora_enable(t, 0);
            rc = grpo_token_logp(t, seqs + lo, hi - lo, refp + lo, &err);
            dsm_train_lora_enable(t, 1);
            if (rc) goto fail;
        }
        for (int u = 0; u < a->updates; u++) {
            memset(&st, 0, sizeof st);
            dsm_train_zero_grad(t);
            if ((rc = grpo_backward(t, seqs + lo, hi - lo, 1.0 / used, &go, &st, &err))) goto fail;
            if (dist) { /* sum the ranks' gradients and statistics: every rank then takes the same step */
                size_t ng;
                float *g = dsm_train_grad_slab(t, &ng);
                double v[5] = {st.loss, st.kl_sum, st.ratio_sum, (double)st.clipped, (double)st.tokens};
                if ((rc = dsm_dist_allreduce(dist, g, ng, &err)) || (rc = dsm_dist_allreduce_host(dist, v, 5, &err))) goto fail;
                st.loss = v[0], st.kl_sum = v[1], st.ratio_sum = v[2], st.clipped = (long)v[3], st.tokens = (long)v[4];
            }
            if ((rc = dsm_optim_step(o, &gnorm, NULL, &err))) goto fail;
            if (dist && ((a->dp.check_every && (u + 1) % a->dp.check_every == 0) || u + 1 == a->updates) &&
                (rc = cli_dp_check_weights(dist, be, params, n_params, u + 1, &err)))
                goto fail;
            LOG_INFO("update %d/%d: loss %.5f, kl %.2e, ratio %.4f, clipped %.3f, grad norm %.4f", u + 1, a->updates, st.loss,
                     st.tokens ? st.kl_sum / st.tokens : 0.0, st.tokens ? st.ratio_sum / st.tokens : 0.0,
                     st.tokens ? (double)st.clipped / st.tokens : 0.0, gnorm);
        }
        if (lead && (rc = write_out(a, m, lora, &err))) goto fail;
    } else {
        LOG_WARN("no group with different rewards: the model is written unchanged");
        if (lead && (rc = write_out(a, m, lora, &err))) goto fail;
    }
    json_t *sum = json_pack("{s:s,s:i,s:f,s:i,s:i,s:i,s:f,s:f,s:f,s:f,s:I,s:f,s:s?,s:s}", "role", a->role, "rollouts", n,
                            "mean_reward", n ? rsum / n : 0.0, "groups", groups, "groups_flat", flat, "sequences", used,
                            "loss", st.loss, "kl", st.tokens ? st.kl_sum / st.tokens : 0.0, "clip_frac",
                            st.tokens ? (double)st.clipped / st.tokens : 0.0, "grad_norm", gnorm, "tokens", (json_int_t)st.tokens,
                            "lr", a->lr, "out", a->dry_run ? NULL : a->out, "reference",
                            lora ? "base model (adapter off)" : "policy at the start of the update");
    char *s = sum ? json_dumps(sum, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(sum);
    if (dist && (rc = dsm_dist_check_equal(dist, 0, "the final barrier", &err))) goto fail; /* rank 0 wrote --out */
    if (s && lead) printf("%s\n", s);
    free(s);
    fflush(stdout);
    rc = 0;
    goto out;
fail:
    rc = cli_fail(cmd, &err);
out:
    for (int i = 0; ro && i < n; i++) free(ro[i].ids);
    for (int i = 0; old && i < used; i++) free(old[i]);
    for (int i = 0; refp && i < used; i++) free(refp[i]);
    free(refp);
    free(ro), free(seqs), free(old), free(params);
    PQclear(r);
    dsm_optim_destroy(o);
    dsm_train_destroy(t);
    dsm_lora_destroy(lora);
    dsm_model_destroy(m);
    dsm_dist_close(dist);
    dsm_backend_destroy(be);
    tok_destroy(tok);
    db_close(db);
    role_template_free(&tmpl);
    ans_checker_destroy(ck);
    return rc;
}

int cmd_train_grpo(int argc, char **argv) {
    struct grpo_args a = {.device = "auto", .reward = "v2", .updates = 1, .batch = 16, .max_len = 1024, .beta = 0.04, .eps = 0.2,
                          .lr = 1e-6, .max_grad_norm = 1.0, .round = -1, .dp = CLI_DP_DEFAULTS};
    const struct cli_opt opts[] = {
        {"--role", CLI_STR, &a.role, "R", "verifier or generator (required)"},
        {"--model", CLI_STR, &a.model, "DIR", "the policy that sampled the round (required)"},
        {"--out", CLI_STR, &a.out, "DIR", "where the updated model is written (required)"},
        {"--run-id", CLI_LONG, &a.run_id, "N", "the loop run whose rollouts are read (required)"},
        {"--round", CLI_LONG, &a.round, "N", "the round whose rollouts are read (required)"},
        {"--label-origin", CLI_STR, &a.label_origin, "TEXT", "origin of the auto labels used (default loop:RUN:ROUND)"},
        {"--reward", CLI_STR, &a.reward, "v2|rule", "v2: SPEC's model rewards (default); rule: the final answer against problems.gold_answer (generator)"},
        {"--human-share", CLI_DOUBLE, &a.human_share, "X",
         "for this share of proofs (chosen by id) a human or ground-truth label, when there is one, "
         "replaces the auto label (SPEC: the verifier trains on human labels plus auto labels; default 0)"},
        {"--template", CLI_STR, &a.template_path, "builtin|synth|FILE", "the prompt template the rollouts were sampled with"},
        {"--beta", CLI_DOUBLE, &a.beta, "B", "KL coefficient (default 0.04)"},
        {"--eps", CLI_DOUBLE, &a.eps, "E", "clip range (default 0.2)"},
        {"--lr", CLI_DOUBLE, &a.lr, "LR", "AdamW learning rate (default 1e-6)"},
        {"--updates", CLI_INT, &a.updates, "N", "optimizer updates on this rollout batch (mu, default 1)"},
        {"--weight-decay", CLI_DOUBLE, &a.wd, "W", "default 0"},
        {"--max-grad-norm", CLI_DOUBLE, &a.max_grad_norm, "N", "global-norm clipping, 0 = off (default 1)"},
        {"--batch-size", CLI_INT, &a.batch, "N", "sequences per micro-batch (default 16)"},
        {"--max-len", CLI_INT, &a.max_len, "N", "longest prompt + output in tokens; longer groups are left out (default 1024)"},
        {"--lora", CLI_STR, &a.lora, "SPEC",
         "train a new LoRA adapter on --model (r=8,alpha=16,targets=...; lora.h); the KL reference is --model itself"},
        {"--adapter", CLI_STR, &a.adapter, "DIR", "continue this LoRA adapter of --model (a previous round's --out)"},
        {"--device", CLI_STR, &a.device, "D", "auto, cpu or ref (default auto)"},
        {"--dry-run", CLI_FLAG, &a.dry_run, NULL, "compute and print the rewards only (no --model or --out needed; nothing trained)"},
        {"--threads", CLI_INT, &a.threads, "N", "CPU threads (default all)"},
        CLI_DP_OPTS(a.dp),
    };
    const struct cli_cmd_spec spec = {
        "train grpo", "--role verifier|generator --model DIR --out DIR --run-id N --round N [options]",
        "One GRPO update (SPEC §2) of a verifier or generator from the rollouts of a loop round in the\n"
        "store: groups are the analyses of one proof (verifier) or the proofs of one problem\n"
        "(generator), rewarded by SPEC's formulas from the round's auto labels and meta-verifications.\n"
        "Prints a JSON summary (mean reward, loss, KL, clipped share). docs/loop.md.",
        opts, DSM_ARRAY_LEN(opts), 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (!a.role) return cli_usage_error(spec.name, "--role is required (verifier or generator)");
    if ((rc = cli_dp_dispatch(spec.name, "train", &a.dp, a.threads, argc, argv)) >= 0) return rc;
    return run_grpo(&a);
}
