/* cmd_train.c - `dsm train sft`: supervised fine-tuning of a model directory on JSONL records,
 * with AdamW/SGD, schedules, gradient accumulation, clipping, checkpoints, resume and metrics.
 * See docs/training.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/dp.h"
#include "common/chat.h"
#include "common/log.h"
#include "common/lora.h"
#include "common/model.h"
#include "common/optim.h"
#include "common/sft_data.h"
#include "common/tokenizer.h"
#include "common/train.h"
#include "common/train_ckpt.h"
#include "common/util.h"

struct sft_args {
    const char *model, *data, *out, *optim, *schedule, *resume, *device, *lora, *chat, *metrics, *base_dtype;
    double lr, wd, max_grad_norm, eval_split, beta1, beta2, eps;
    int warmup, batch, accum, max_len, save_every, eval_every, threads, recompute, quiet, stop_after;
    struct cli_dp dp; /* data parallelism (cli/dp.h) */
    long steps, seed;
    double epochs;
};

/* The stream of examples: epoch permutations one after another. */
struct stream {
    const struct sft_data *d;
    unsigned long long seed;
    long epoch, cursor;
    int *perm;
};

static void stream_seek(struct stream *s, long epoch, long cursor) {
    s->epoch = epoch;
    s->cursor = cursor;
    sft_data_order(s->d->n, s->seed, epoch, s->perm);
}

static int stream_next(struct stream *s) {
    if (s->cursor >= s->d->n) stream_seek(s, s->epoch + 1, 0);
    return s->perm[s->cursor++];
}

/* Mean loss over a whole data set in batches of B (no gradients). */
static int eval_loss(struct dsm_train *t, const struct sft_data *d, int B, int max_len, double *loss, struct dsm_err *err) {
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)B * max_len), *lab = malloc(sizeof(int32_t) * (size_t)B * max_len);
    int *idx = malloc(sizeof(int) * (size_t)B);
    int rc = (!ids || !lab || !idx) ? dsm_errf(err, DSM_ENOMEM, "out of memory") : DSM_OK;
    double nll_all = 0;
    long n_all = 0;
    for (int i = 0; !rc && i < d->n; i += B) {
        int b = d->n - i < B ? d->n - i : B, T, nv;
        double nll;
        for (int k = 0; k < b; k++) idx[k] = i + k;
        sft_data_batch(d, idx, b, ids, lab, &T);
        rc = dsm_train_batch(t, ids, lab, b, T, 0.0f, 0, &nll, &nv, err);
        nll_all += nll;
        n_all += nv;
    }
    *loss = n_all ? nll_all / (double)n_all : 0.0;
    free(ids), free(lab), free(idx);
    return rc;
}

static void progress(int tty, long step, long total, double loss, double lr, double tps, double eta) {
    if (tty) {
        int width = 24, fill = total ? (int)((double)width * step / total) : width;
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\r[%s] %ld/%ld loss %.4f lr %.2e %.0f tok/s ETA %.0fs   ", bar, step, total, loss, lr, tps, eta);
        if (step == total) fputc('\n', stderr);
    } else {
        fprintf(stderr, "dsm train sft: step %ld/%ld loss %.4f lr %.3e %.1f tok/s ETA %.0fs\n", step, total, loss, lr, tps, eta);
    }
}

static int run_sft(struct sft_args *a) {
    const char *cmd = "train sft";
    struct dsm_err err = {0};
    struct dsm_backend *be = NULL;
    struct dsm_model *m = NULL;
    struct dsm_tokenizer *tok = NULL;
    struct dsm_train *t = NULL;
    struct dsm_optim *o = NULL;
    struct dsm_dist *dist = NULL;
    int world = a->dp.world > 1 ? a->dp.world : 1, lead = a->dp.rank == 0;
    struct sft_data data = {0}, eval = {0};
    struct stream st = {0};
    FILE *mf = NULL;
    int32_t *ids = NULL, *lab = NULL;
    int *idx = NULL, rc = 0;
    char resume_dir[4096] = "", path[4200];

    struct dsm_lora_cfg lc;
    struct dsm_lora *lora = NULL;
    struct dsm_optim_tensor *params = NULL;
    int n_params = 0;
    if (a->lora && dsm_lora_parse(a->lora, &lc, &err)) return cli_usage_error(cmd, "--lora: %s", err.msg);
    struct dsm_optim_cfg oc;
    dsm_optim_cfg_default(&oc);
    if (!strcmp(a->optim, "adamw")) oc.kind = DSM_OPTIM_ADAMW;
    else if (!strcmp(a->optim, "sgd")) oc.kind = DSM_OPTIM_SGD;
    else return cli_usage_error(cmd, "--optim must be adamw or sgd, not '%s'", a->optim);
    if (!strcmp(a->schedule, "cosine")) oc.sched = DSM_SCHED_COSINE;
    else if (!strcmp(a->schedule, "constant")) oc.sched = DSM_SCHED_CONSTANT;
    else return cli_usage_error(cmd, "--schedule must be cosine or constant, not '%s'", a->schedule);
    if (!(a->lr > 0) || a->wd < 0 || a->max_grad_norm < 0 || a->warmup < 0 || a->batch < 1 || a->accum < 1 || a->max_len < 2 ||
        a->steps < 0 || a->epochs < 0 || a->save_every < 0 || a->eval_every < 0 || a->stop_after < 0 || a->eval_split < 0 || a->beta1 < 0 ||
        a->beta1 >= 1 || a->beta2 < 0 || a->beta2 >= 1 || !(a->eps > 0))
        return cli_usage_error(cmd, "out-of-range option: need --lr > 0, --batch-size/--grad-accum >= 1, --max-len >= 2, "
                                    "betas in [0, 1), and non-negative --weight-decay, --max-grad-norm, --warmup-steps, "
                                    "--steps, --epochs, --save-every, --eval-every, --eval-split");
    oc.lr = a->lr, oc.weight_decay = a->wd, oc.max_grad_norm = a->max_grad_norm, oc.warmup_steps = a->warmup;
    oc.beta1 = a->beta1, oc.beta2 = a->beta2, oc.eps = a->eps;

    if (a->resume) {
        if (!strcmp(a->resume, "auto")) {
            if ((rc = dsm_ckpt_latest(a->out, resume_dir, sizeof resume_dir, &err))) goto fail;
        } else {
            snprintf(resume_dir, sizeof resume_dir, "%s", a->resume);
        }
    }
    /* tokenizer (optional: pre-tokenized data needs none) and data */
    snprintf(path, sizeof path, "%s/tokenizer.json", a->model);
    if (access(path, R_OK) == 0 && (rc = tok_load_dir(a->model, &tok, &err))) goto fail;
    const struct chat_format *chat = NULL;
    if (tok) {
        struct dsm_err cerr = {0};
        if (chat_format_select(a->chat, tok, a->model, &chat, &cerr) && a->chat) {
            err = cerr;
            rc = cerr.code;
            goto fail;
        }
    }
    struct dsm_model_config cfg;
    if ((rc = dsm_config_load(a->model, &cfg, &err))) goto fail;
    if (a->max_len > cfg.max_position_embeddings) {
        rc = cli_usage_error(cmd, "--max-len %d exceeds the model's max_position_embeddings %d", a->max_len,
                             cfg.max_position_embeddings);
        goto out;
    }
    struct sft_data_opts so = {.max_len = a->max_len, .vocab_size = cfg.vocab_size, .tok = tok, .chat = chat};
    if ((rc = sft_data_load(a->data, &so, &data, &err))) goto fail;
    char sum[512];
    sft_data_summary(&data, sum, sizeof sum);
    LOG_INFO("%s: %s", a->data, sum);
    int n_eval = a->eval_split <= 0 ? 0 : a->eval_split < 1 ? (int)ceil(a->eval_split * data.n) : (int)a->eval_split;
    if ((rc = sft_data_split(&data, n_eval, (unsigned long long)a->seed, &eval, &err))) goto fail;

    /* model, trainer, optimizer */
    if ((rc = dsm_backend_open(a->device, a->threads, &be, &err))) goto fail;
    if ((rc = cli_dp_open(&a->dp, be, &dist, &err))) goto fail;
    struct dsm_model_opts mo = {.max_tokens = 1, .max_seq = a->max_len, .wdtype = DSM_DT_F32};
    if (!strcmp(a->base_dtype, "bf16")) mo.wdtype = DSM_DT_BF16;
    else if (!strcmp(a->base_dtype, "f16")) mo.wdtype = DSM_DT_F16;
    else if (strcmp(a->base_dtype, "f32")) {
        rc = cli_usage_error(cmd, "--base-dtype must be f32, bf16 or f16, not '%s'", a->base_dtype);
        goto out;
    }
    if (mo.wdtype != DSM_DT_F32 && !a->lora) {
        rc = cli_usage_error(cmd, "--base-dtype %s needs --lora (full fine-tuning keeps float32 master weights)", a->base_dtype);
        goto out;
    }
    /* full fine-tuning resumes the checkpoint's weights; LoRA the base model plus the checkpoint's adapter */
    if ((rc = dsm_model_load(resume_dir[0] && !a->lora ? resume_dir : a->model, be, &mo, &m, &err))) goto fail;
    if (a->lora) {
        if (resume_dir[0]) rc = dsm_lora_load(m, resume_dir, &lora, &err);
        else rc = dsm_lora_create(m, &lc, (uint64_t)a->seed, &lora, &err);
        if (rc) goto fail;
    }
    struct dsm_train_opts to = {.max_rows = a->batch * a->max_len, .max_seq = a->max_len, .recompute = a->recompute, .lora = lora};
    if ((rc = dsm_train_create(m, &to, &t, &err)) || (rc = dsm_train_params(t, &params, &n_params, &err))) goto fail;
    long per_step = (long)a->batch * a->accum * world; /* sequences per optimizer step, all ranks */
    long per_epoch = (data.n + per_step - 1) / per_step;
    long total = a->steps ? a->steps : (long)ceil((a->epochs > 0 ? a->epochs : 1.0) * (double)per_epoch);
    oc.total_steps = total;
    if ((rc = dsm_optim_create(be, params, n_params, &oc, &o, &err))) goto fail;
    struct dsm_ckpt_state cs = {.seed = (unsigned long long)a->seed};
    st.d = &data;
    st.seed = (unsigned long long)a->seed;
    st.perm = malloc(sizeof(int) * (size_t)data.n);
    ids = malloc(sizeof(int32_t) * (size_t)a->batch * a->max_len);
    lab = malloc(sizeof(int32_t) * (size_t)a->batch * a->max_len);
    idx = malloc(sizeof(int) * (size_t)per_step);
    if (!st.perm || !ids || !lab || !idx) {
        rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
        goto fail;
    }
    if (resume_dir[0]) {
        if ((rc = dsm_ckpt_load_state(resume_dir, be, o, &cs, &err))) goto fail;
        if (cs.seed != st.seed) LOG_WARN("resuming with --seed %llu but the checkpoint was trained with %llu", st.seed, cs.seed);
        dsm_optim_set_steps(o, cs.step);
        LOG_INFO("resuming from %s at step %ld", resume_dir, cs.step);
    }
    stream_seek(&st, cs.epoch, cs.cursor);
    if ((rc = dsm_mkdir_p(a->out, &err))) goto fail;
    if (a->metrics) snprintf(path, sizeof path, "%s", a->metrics);
    else snprintf(path, sizeof path, "%s/metrics.jsonl", a->out);
    mf = fopen(lead ? path : "/dev/null", resume_dir[0] ? "a" : "w"); /* rank 0 writes the metrics */
    if (!mf) {
        rc = dsm_errf(&err, DSM_EIO, "cannot open the metrics file %s", path);
        goto fail;
    }
    size_t act_b, grad_b;
    dsm_train_memory(t, &act_b, &grad_b);
    if (lora) {
        char tg[200];
        dsm_lora_targets_str(lc.targets, tg, sizeof tg);
        long long np = 0;
        for (int i = 0; i < n_params; i++) np += (long long)params[i].n;
        LOG_INFO("LoRA r=%d alpha=%g targets=%s: %lld trainable parameters", dsm_lora_config(lora)->r, dsm_lora_config(lora)->alpha, tg, np);
    }
    LOG_INFO("%s: %lld parameters, %d train / %d eval records, %ld steps of %d x %d x %d sequences, activations %.1f MB%s, gradients %.1f MB",
             a->model, dsm_config_n_params(&cfg), data.n, eval.n, total, a->batch, a->accum, world, act_b / 1e6,
             a->recompute ? " (recompute)" : "", grad_b / 1e6);
    size_t n_grad = 0;
    float *gslab = dsm_train_grad_slab(t, &n_grad);
    {   /* the memory estimate of the run, beside what the device has */
        long long trainable = 0;
        for (int i = 0; i < n_params; i++) trainable += (long long)params[i].n;
        double wmb = (double)dsm_config_n_params(&cfg) * (mo.wdtype == DSM_DT_F32 ? 4 : 2) / 1e6;
        double omb = oc.kind == DSM_OPTIM_ADAMW ? 8.0 * (double)trainable / 1e6 : 0.0;
        size_t fb = 0, tb = 0;
        char dev[96] = "";
        if (be->mem_info && be->mem_info(be, &fb, &tb) == 0)
            snprintf(dev, sizeof dev, "; %s has %.0f MB free of %.0f MB", be->name, fb / 1e6, tb / 1e6);
        LOG_INFO("memory: weights %.1f MB + gradients %.1f MB + optimizer %.1f MB + activations %.1f MB = %.1f MB%s", wmb,
                 grad_b / 1e6, omb, act_b / 1e6, wmb + grad_b / 1e6 + omb + act_b / 1e6, dev);
    }

    if (eval.n && cs.step == 0) { /* the starting point of the eval curve */
        double el;
        if ((rc = eval_loss(t, &eval, a->batch, a->max_len, &el, &err))) goto fail;
        fprintf(mf, "{\"step\": 0, \"eval_loss\": %.6f, \"eval_records\": %d}\n", el, eval.n);
        fflush(mf);
        LOG_INFO("step 0: eval loss %.4f over %d records", el, eval.n);
    }
    int tty = isatty(2) && !a->quiet && lead;
    long log_every = tty ? 1 : (total / 50 > 1 ? total / 50 : 1);
    double t_run = dsm_now();
    long tokens_run = 0, start_step = cs.step;
    for (long step = cs.step; step < total; step++) {
        double t0 = dsm_now();
        int B = a->batch, n_valid = 0;
        /* every rank draws the whole step's sequences (the same stream) and trains its share */
        for (int k = 0; k < per_step; k++) idx[k] = stream_next(&st);
        for (int k = 0; k < per_step; k++) {
            const struct sft_example *e = &data.ex[idx[k]];
            for (int i = 1; i < e->n; i++) n_valid += e->labels[i] >= 0;
        }
        dsm_train_zero_grad(t);
        double nll = 0;
        long tokens = 0;
        for (int mb = 0; mb < a->accum; mb++) {
            int T, g = a->dp.rank * a->accum + mb; /* the micro-batch's place in the step */
            double part;
            sft_data_batch(&data, idx + (long)g * B, B, ids, lab, &T);
            dsm_train_set_seed(t, (uint64_t)a->seed * 0x100000001B3ull + (uint64_t)step * 1024 + (uint64_t)g);
            for (int k = 0; k < B; k++) tokens += data.ex[idx[(long)g * B + k]].n;
            if ((rc = dsm_train_batch(t, ids, lab, B, T, 1.0f / (float)n_valid, 1, &part, NULL, &err))) goto fail;
            nll += part;
        }
        if (dist) { /* sum the ranks' gradients and losses: then every rank takes the same step */
            double sums[2] = {nll, (double)tokens};
            if ((rc = dsm_dist_allreduce(dist, gslab, n_grad, &err)) || (rc = dsm_dist_allreduce_host(dist, sums, 2, &err)))
                goto fail;
            nll = sums[0], tokens = (long)sums[1];
        }
        double gnorm, lr;
        if ((rc = dsm_optim_step(o, &gnorm, &lr, &err))) goto fail;
        if (dist && ((a->dp.check_every && (step + 1) % a->dp.check_every == 0) || step + 1 == total) &&
            (rc = cli_dp_check_weights(dist, be, params, n_params, step + 1, &err)))
            goto fail;
        double dt = dsm_now() - t0;
        cs.step = step + 1, cs.epoch = st.epoch, cs.cursor = st.cursor, cs.tokens += tokens, cs.elapsed_s += dt;
        tokens_run += tokens;
        double loss = nll / n_valid, tps = tokens_run / (dsm_now() - t_run);
        fprintf(mf, "{\"step\": %ld, \"epoch\": %.4f, \"loss\": %.6f, \"lr\": %.6e, \"grad_norm\": %.6f, \"tokens\": %ld, "
                    "\"step_tokens\": %ld, \"tok_per_s\": %.2f, \"step_s\": %.4f, \"elapsed_s\": %.3f}\n",
                cs.step, (double)st.epoch + (double)st.cursor / data.n, loss, lr, gnorm, cs.tokens, tokens, tokens / dt, dt,
                cs.elapsed_s);
        fflush(mf);
        if (!a->quiet && lead && (cs.step % log_every == 0 || cs.step == total))
            progress(tty, cs.step, total, loss, lr, tps, (total - cs.step) * (dsm_now() - t_run) / (double)(cs.step - start_step));
        int last = cs.step == total;
        if (lead && eval.n && ((a->eval_every && cs.step % a->eval_every == 0) || last)) {
            double el;
            if ((rc = eval_loss(t, &eval, a->batch, a->max_len, &el, &err))) goto fail;
            fprintf(mf, "{\"step\": %ld, \"eval_loss\": %.6f, \"eval_records\": %d}\n", cs.step, el, eval.n);
            fflush(mf);
            LOG_INFO("step %ld: eval loss %.4f over %d records", cs.step, el, eval.n);
        }
        int stop = a->stop_after && cs.step - start_step >= a->stop_after && !last;
        if (lead && ((a->save_every && cs.step % a->save_every == 0 && !last) || stop)) {
            char ck[4300];
            snprintf(ck, sizeof ck, "%s/checkpoint-%ld", a->out, cs.step);
            if ((rc = dsm_ckpt_save(ck, a->model, t, o, &cs, &err))) goto fail;
            LOG_INFO("saved %s", ck);
        }
        if (stop) {
            if (dist && (rc = dsm_dist_check_equal(dist, 0, "checkpoint barrier", &err))) goto fail; /* rank 0 saved it */
            if (lead) fprintf(stderr, "dsm train sft: stopped after %d steps at step %ld of %ld (continue with --resume auto)\n",
                    a->stop_after, cs.step, total);
            rc = 0;
            goto out;
        }
    }
    if (lead) {
        char ck[4300];
        snprintf(ck, sizeof ck, "%s/checkpoint-%ld", a->out, cs.step);
        if ((rc = dsm_ckpt_save(ck, a->model, t, o, &cs, &err)) || (rc = dsm_ckpt_write_model(a->out, a->model, t, &err)))
            goto fail;
    }
    if (dist && (rc = dsm_dist_check_equal(dist, 0, "the final barrier", &err))) goto fail;
    if (lead) fprintf(stderr, "dsm train sft: wrote %s (%ld steps, %ld tokens, %.1f s)\n", a->out, cs.step, cs.tokens, cs.elapsed_s);
    rc = 0;
    goto out;
fail:
    rc = cli_fail(cmd, &err);
out:
    if (mf) fclose(mf);
    free(ids), free(lab), free(idx), free(st.perm);
    sft_data_free(&data);
    sft_data_free(&eval);
    dsm_optim_destroy(o);
    free(params);
    dsm_train_destroy(t);
    dsm_lora_destroy(lora);
    dsm_model_destroy(m);
    dsm_dist_close(dist);
    dsm_backend_destroy(be);
    tok_destroy(tok);
    return rc;
}

static int train_sft(int argc, char **argv) {
    struct sft_args a = {.optim = "adamw", .schedule = "cosine", .device = "cpu", .base_dtype = "f32", .lr = 1e-4, .max_grad_norm = 1.0,
                         .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .batch = 1, .accum = 1, .max_len = 512, .seed = 42,
                         .dp = CLI_DP_DEFAULTS};
    const struct cli_opt opts[] = {
        {"--model", CLI_STR, &a.model, "DIR", "model directory to fine-tune (required)"},
        {"--data", CLI_STR, &a.data, "FILE", "JSONL records: prompt/response, messages, or input_ids/labels (required)"},
        {"--out", CLI_STR, &a.out, "DIR", "output directory: final model, checkpoint-N/, metrics.jsonl (required)"},
        {"--optim", CLI_STR, &a.optim, "adamw|sgd", "optimizer (default adamw)"},
        {"--lr", CLI_DOUBLE, &a.lr, "X", "peak learning rate (default 1e-4)"},
        {"--weight-decay", CLI_DOUBLE, &a.wd, "X", "decoupled weight decay on weight matrices (default 0)"},
        {"--adam-beta1", CLI_DOUBLE, &a.beta1, "X", "AdamW beta1 (default 0.9)"},
        {"--adam-beta2", CLI_DOUBLE, &a.beta2, "X", "AdamW beta2 (default 0.999)"},
        {"--adam-eps", CLI_DOUBLE, &a.eps, "X", "AdamW epsilon (default 1e-8)"},
        {"--warmup-steps", CLI_INT, &a.warmup, "N", "linear warmup steps (default 0)"},
        {"--schedule", CLI_STR, &a.schedule, "cosine|constant", "learning-rate schedule after warmup (default cosine)"},
        {"--steps", CLI_LONG, &a.steps, "N", "optimizer steps (default: --epochs worth)"},
        {"--epochs", CLI_DOUBLE, &a.epochs, "X", "passes over the training records when --steps is not given (default 1)"},
        {"--batch-size", CLI_INT, &a.batch, "N", "sequences per micro-batch (default 1)"},
        {"--grad-accum", CLI_INT, &a.accum, "N", "micro-batches per optimizer step (default 1)"},
        {"--max-grad-norm", CLI_DOUBLE, &a.max_grad_norm, "X", "clip the global gradient norm (default 1.0; 0 = off)"},
        {"--max-len", CLI_INT, &a.max_len, "N", "longer sequences are truncated (counted; default 512)"},
        {"--eval-split", CLI_DOUBLE, &a.eval_split, "X", "held-out records: a fraction (<1) or a count (default 0)"},
        {"--eval-every", CLI_INT, &a.eval_every, "N", "eval loss every N steps (default: at the end)"},
        {"--save-every", CLI_INT, &a.save_every, "N", "write OUT/checkpoint-N every N steps (default: only at the end)"},
        {"--seed", CLI_LONG, &a.seed, "N", "data order and split seed (default 42)"},
        {"--resume", CLI_STR, &a.resume, "auto|DIR", "continue from a checkpoint (auto: the latest under --out)"},
        {"--base-dtype", CLI_STR, &a.base_dtype, "f32|bf16|f16", "with --lora: keep the frozen base weights in this dtype (default f32)"},
        {"--recompute", CLI_FLAG, &a.recompute, NULL, "activation recomputation per layer (less memory, ~1/3 more compute)"},
        {"--threads", CLI_INT, &a.threads, "N", "CPU threads (default: all cores)"},
        {"--device", CLI_STR, &a.device, "cpu|ref", "compute backend (default cpu)"},
        {"--chat-format", CLI_STR, &a.chat, "NAME", "chat format for messages records (default: from the model)"},
        {"--metrics", CLI_STR, &a.metrics, "FILE", "metrics JSONL (default OUT/metrics.jsonl)"},
        {"--lora", CLI_STR, &a.lora, "SPEC", "train a LoRA adapter: r=16,alpha=32,dropout=0,targets=q_proj+k_proj+... (default all 7 projections)"},
        {"--stop-after", CLI_INT, &a.stop_after, "N", "save a checkpoint and exit after N steps of this run (time slicing)"},
        {"--quiet", CLI_FLAG, &a.quiet, NULL, "no progress output"},
        CLI_DP_OPTS(a.dp),
    };
    const struct cli_cmd_spec spec = {
        "train sft", "--model DIR --data FILE.jsonl --out DIR [options]",
        "Supervised fine-tuning (full parameters, or a LoRA adapter with --lora) with masked cross-entropy:\n"
        "the loss covers response / assistant tokens only. Writes OUT/checkpoint-N/ (HF layout, or PEFT\n"
        "layout for an adapter, + optimizer state; atomic), the final model or adapter in OUT/ and one\n"
        "JSON line per step in OUT/metrics.jsonl.",
        opts, DSM_ARRAY_LEN(opts), 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (!a.model || !a.data || !a.out) return cli_usage_error(spec.name, "--model, --data and --out are required");
    if ((rc = cli_dp_dispatch(spec.name, "train", &a.dp, a.threads, argc, argv)) >= 0) return rc;
    return run_sft(&a);
}

int cmd_train_merge_lora(int argc, char **argv) {
    const char *model = NULL, *adapter = NULL, *out = NULL;
    const struct cli_opt opts[] = {
        {"--model", CLI_STR, &model, "DIR", "base model directory (required)"},
        {"--adapter", CLI_STR, &adapter, "DIR", "LoRA adapter directory, PEFT layout (required)"},
        {"--out", CLI_STR, &out, "DIR", "output model directory (required)"},
    };
    const struct cli_cmd_spec spec = {"merge-lora", "--model DIR --adapter DIR --out DIR",
                                      "Write a model whose weights are W + (alpha/r) B A for every adapted matrix:\n"
                                      "the base model with the LoRA adapter merged in (float32, HF layout).",
                                      opts, DSM_ARRAY_LEN(opts), 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (!model || !adapter || !out) return cli_usage_error(spec.name, "--model, --adapter and --out are required");
    struct dsm_err err = {0};
    struct dsm_backend *be = NULL;
    struct dsm_model *m = NULL;
    struct dsm_lora *lo = NULL;
    struct dsm_model_opts mo = {.max_tokens = 1, .max_seq = 1, .wdtype = DSM_DT_F32};
    if ((rc = dsm_backend_open("cpu", 0, &be, &err)) || (rc = dsm_model_load(model, be, &mo, &m, &err)) ||
        (rc = dsm_lora_load(m, adapter, &lo, &err)) || (rc = dsm_lora_merge(lo, &err)) ||
        (rc = dsm_ckpt_write_weights(out, model, m, &err)))
        rc = cli_fail(spec.name, &err);
    else
        fprintf(stderr, "dsm merge-lora: wrote %s (%s merged into %s)\n", out, adapter, model);
    dsm_lora_destroy(lo);
    dsm_model_destroy(m);
    dsm_backend_destroy(be);
    return rc;
}

int cmd_train(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "sft")) return train_sft(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "merge-lora")) return cmd_train_merge_lora(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "grpo")) return cmd_train_grpo(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: dsm train sft|grpo|merge-lora [options]\n  sft         supervised fine-tuning on JSONL records\n"
               "  grpo        one GRPO update from a loop round's rollouts in the store\n"
               "  merge-lora  merge a LoRA adapter into its base model\n");
        return 0;
    }
    fprintf(stderr, "dsm train: expected 'sft', 'grpo' or 'merge-lora'%s%s (try 'dsm train --help')\n", argc >= 2 ? ", got " : "", argc >= 2 ? argv[1] : "");
    return 2;
}
