/* test_train_grad.c - whole-decoder gradients against PyTorch.
 *
 * For every fixture directory with a train_case.json (written by tests/ref/make_grad_fixtures.py:
 * LLaMA MHA, LLaMA GQA with tied embeddings and q/k/v/o biases, Qwen2 GQA with q/k/v biases,
 * Qwen2 tied bf16 weights, linear rope scaling, explicit head_dim), on the cpu and ref backends:
 *
 *  1. the loss of the 2-sequence batch (masked labels, HF shift) matches the float64 reference
 *     within 1e-5 relative;
 *  2. every parameter's gradient matches grads.safetensors: max |g - g_ref| / max |g_ref| per
 *     tensor <= TOL_GRAD;
 *  3. per-token log-probabilities of the given tokens match within 1e-4 absolute;
 *  4. (cpu) activation recomputation gives bit-identical gradients, and gradient accumulation
 *     over two half-batches equals the whole batch within 1e-6 relative;
 *  5. where the fixture has a lora/ adapter (PEFT layout, from the same script): the adapted loss
 *     and d/dA, d/dB of every adapter matrix against lora/lora_grads.safetensors (same tolerance;
 *     base weights get no gradient); merging the adapter into the weights gives the adapted
 *     model's log-probabilities; a save/load round trip is exact; an adapter for another model
 *     is refused with a message; with LoRA dropout 0.3 (no PyTorch counterpart: its masks come
 *     from another generator) the largest gradients of A and B match central finite differences
 *     of the loss under the same masks (h = 1e-2 on float32: within 2e-2 relative).
 *
 * Tolerance TOL_GRAD = 1e-4 relative to the tensor's largest gradient: the engine computes in
 * float32 and the reference in float64 from the very same weights; float32 rounding through two
 * layers, softmaxes and sums of <= 300 terms gives 1e-6..1e-5, while a wrong backward formula
 * (a missed residual path, a GQA head mapping, a tied-embedding term, a bias) is off by 1e-2..1.
 * The largest error seen per fixture is printed.
 */
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lora.h"
#include "common/model.h"
#include "common/optim.h"
#include "common/params.h"
#include "common/safetensors.h"
#include "common/train.h"
#include "common/util.h"
#include "test.h"
#include "grad_check.h"

#define TOL_GRAD 1e-4
#define TOL_LOSS 1e-5
#define TOL_LOGP 1e-4
#define MIN_CASES 6

struct tcase {
    int B, T, n_valid;
    int32_t *ids, *labels; /* (B, T) */
    double loss;
    float *logp;           /* (B, T-1) */
};

static int read_int_matrix(json_t *arr, int32_t **out, int *B, int *T) {
    if (!json_is_array(arr) || !json_array_size(arr)) return -1;
    *B = (int)json_array_size(arr);
    *T = (int)json_array_size(json_array_get(arr, 0));
    *out = malloc(sizeof(int32_t) * (size_t)*B * *T);
    for (int b = 0; b < *B; b++)
        for (int i = 0; i < *T; i++) (*out)[(size_t)b * *T + i] = (int32_t)json_integer_value(json_array_get(json_array_get(arr, b), i));
    return 0;
}

static int case_read(const char *dir, struct tcase *c) {
    char path[1400];
    snprintf(path, sizeof path, "%s/train_case.json", dir);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) return -1;
    int B2, T2;
    int rc = read_int_matrix(json_object_get(j, "input_ids"), &c->ids, &c->B, &c->T) ||
             read_int_matrix(json_object_get(j, "labels"), &c->labels, &B2, &T2);
    c->loss = json_real_value(json_object_get(j, "loss"));
    c->n_valid = (int)json_integer_value(json_object_get(j, "n_valid"));
    json_t *lp = json_object_get(j, "token_logp");
    c->logp = malloc(sizeof(float) * (size_t)c->B * (c->T - 1));
    for (int b = 0; b < c->B; b++)
        for (int i = 0; i < c->T - 1; i++) c->logp[(size_t)b * (c->T - 1) + i] = (float)json_real_value(json_array_get(json_array_get(lp, b), i));
    json_decref(j);
    return rc;
}

static size_t grad_total(const struct dsm_model_config *cfg) {
    size_t n = 0;
    for (int p = 0; p < DSM_P_COUNT; p++)
        if (dsm_param_present(cfg, (enum dsm_param)p))
            n += (dsm_param_table[p].per_layer ? (size_t)cfg->n_layers : 1) * dsm_param_numel(cfg, (enum dsm_param)p);
    return n;
}

/* Copy all gradients into one host array (order of the parameter table). */
static float *grads_flat(struct dsm_train *t, const struct dsm_model_config *cfg) {
    float *out = malloc(sizeof(float) * grad_total(cfg)), *o = out;
    for (int p = 0; p < DSM_P_COUNT; p++) {
        if (!dsm_param_present(cfg, (enum dsm_param)p)) continue;
        for (int l = 0; l < (dsm_param_table[p].per_layer ? cfg->n_layers : 1); l++) {
            size_t n = dsm_param_numel(cfg, (enum dsm_param)p);
            memcpy(o, dsm_train_grad(t, (enum dsm_param)p, l), 4 * n);
            o += n;
        }
    }
    return out;
}

static void run_case(const char *dir, const char *fname, const char *bename, struct tcase *c) {
    struct dsm_err err = {0};
    struct dsm_backend *be = NULL;
    struct dsm_model *m = NULL;
    struct dsm_train *t = NULL;
    char what[512];
    snprintf(what, sizeof what, "%s on %s", fname, bename);
    struct dsm_model_opts mo = {.max_tokens = 16, .max_seq = 64, .wdtype = DSM_DT_F32};
    CHECK_OK(dsm_backend_open(bename, 2, &be, &err), &err);
    if (be) CHECK_OK(dsm_model_load(dir, be, &mo, &m, &err), &err);
    struct dsm_train_opts to = {.max_rows = c->B * c->T, .max_seq = c->T, .recompute = 0};
    if (m) CHECK_OK(dsm_train_create(m, &to, &t, &err), &err);
    if (!t) goto done;
    const struct dsm_model_config *cfg = dsm_model_config(m);
    double nll = 0;
    int nv = 0;
    CHECK_OK(dsm_train_batch(t, c->ids, c->labels, c->B, c->T, 1.0f / c->n_valid, 1, &nll, &nv, &err), &err);
    CHECK_MSG(nv == c->n_valid, "%s: %d unmasked targets, reference %d", what, nv, c->n_valid);
    double loss = nll / nv;
    CHECK_MSG(fabs(loss - c->loss) <= TOL_LOSS * c->loss, "%s: loss %.8f vs reference %.8f", what, loss, c->loss);
    char gpath[1400];
    snprintf(gpath, sizeof gpath, "%s/grads.safetensors", dir);
    double worst = compare_grads(t, cfg, gpath, what, TOL_GRAD);

    float *lp = malloc(sizeof(float) * (size_t)c->B * (c->T - 1));
    CHECK_OK(dsm_train_token_logp(t, c->ids, c->B, c->T, lp, &err), &err);
    double lpe = 0;
    for (int i = 0; i < c->B * (c->T - 1); i++) lpe = fmax(lpe, fabs((double)lp[i] - c->logp[i]));
    CHECK_MSG(lpe <= TOL_LOGP, "%s: token log-prob max err %g", what, lpe);
    fprintf(stderr, "%-26s %-4s loss %.7f (ref %.7f)  max rel grad err %.2e  max logp err %.2e\n", fname, bename, loss,
            c->loss, worst, lpe);
    free(lp);

    if (!strcmp(bename, "cpu")) {
        size_t n = grad_total(cfg);
        float *g_full = grads_flat(t, cfg);
        /* recomputation: bit-identical */
        struct dsm_train *t2 = NULL;
        struct dsm_train_opts ro = to;
        ro.recompute = 1;
        CHECK_OK(dsm_train_create(m, &ro, &t2, &err), &err);
        if (t2) {
            CHECK_OK(dsm_train_batch(t2, c->ids, c->labels, c->B, c->T, 1.0f / c->n_valid, 1, NULL, NULL, &err), &err);
            float *g2 = grads_flat(t2, cfg);
            CHECK_MSG(!memcmp(g2, g_full, 4 * n), "%s: recomputation changed the gradients", what);
            free(g2);
            /* accumulation over the two sequences one at a time */
            dsm_train_zero_grad(t2);
            for (int b = 0; b < c->B; b++)
                CHECK_OK(dsm_train_batch(t2, c->ids + (size_t)b * c->T, c->labels + (size_t)b * c->T, 1, c->T,
                                         1.0f / c->n_valid, 1, NULL, NULL, &err), &err);
            g2 = grads_flat(t2, cfg);
            double mx = 0, md = 0;
            for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(g_full[i])), md = fmax(md, fabs(g_full[i] - g2[i]));
            CHECK_MSG(md <= 1e-6 * mx, "%s: accumulated gradients differ by %g (max %g)", what, md, mx);
            free(g2);
            dsm_train_destroy(t2);
        }
        free(g_full);
        /* bad input is refused */
        int32_t bad[4] = {1, 2, cfg->vocab_size, 3};
        CHECK(dsm_train_batch(t, bad, NULL, 1, 4, 1.0f, 1, NULL, NULL, &err) == DSM_EINVAL && strstr(err.msg, "position 2"));
        CHECK(dsm_train_batch(t, bad, NULL, 1, c->T + 1, 1.0f, 1, NULL, NULL, &err) == DSM_EINVAL);
    }
done:
    dsm_train_destroy(t);
    dsm_model_destroy(m);
    dsm_backend_destroy(be);
}

/* The LoRA case of fixture dir on backend bename. */
static void run_lora(const char *dir, const char *fname, const char *bename, struct tcase *c) {
    struct dsm_err err = {0};
    struct dsm_backend *be = NULL;
    struct dsm_model *m = NULL;
    struct dsm_lora *lo = NULL;
    struct dsm_train *t = NULL;
    struct dsm_optim_tensor *ps = NULL;
    struct st_file *f = NULL;
    int np = 0;
    char what[512], path[1400];
    snprintf(what, sizeof what, "%s LoRA on %s", fname, bename);
    snprintf(path, sizeof path, "%s/lora/lora_case.json", dir);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    CHECK_MSG(j != NULL, "%s: %s", path, je.text);
    double ref_loss = json_real_value(json_object_get(j, "loss"));
    json_decref(j);
    struct dsm_model_opts mo = {.max_tokens = 16, .max_seq = 64, .wdtype = DSM_DT_F32};
    CHECK_OK(dsm_backend_open(bename, 2, &be, &err), &err);
    if (be) CHECK_OK(dsm_model_load(dir, be, &mo, &m, &err), &err);
    snprintf(path, sizeof path, "%s/lora", dir);
    if (m) CHECK_OK(dsm_lora_load(m, path, &lo, &err), &err);
    struct dsm_train_opts to = {.max_rows = c->B * c->T, .max_seq = c->T, .lora = lo};
    if (lo) CHECK_OK(dsm_train_create(m, &to, &t, &err), &err);
    if (!t) goto done;
    CHECK(dsm_train_grad(t, DSM_P_Q, 0) == NULL && dsm_train_grad(t, DSM_P_EMBED, 0) == NULL);
    double nll;
    int nv;
    CHECK_OK(dsm_train_batch(t, c->ids, c->labels, c->B, c->T, 1.0f / c->n_valid, 1, &nll, &nv, &err), &err);
    CHECK_MSG(fabs(nll / nv - ref_loss) <= TOL_LOSS * ref_loss, "%s: loss %.8f vs %.8f", what, nll / nv, ref_loss);
    CHECK_OK(dsm_train_params(t, &ps, &np, &err), &err);
    snprintf(path, sizeof path, "%s/lora/lora_grads.safetensors", dir);
    CHECK_OK(st_open(path, &f, &err), &err);
    double worst = 0;
    CHECK_MSG(f && np == st_count(f), "%s: %d adapter tensors, reference %d", what, np, f ? st_count(f) : -1);
    for (int i = 0; f && i < np; i++) {
        const struct st_tensor *rt = st_find(f, ps[i].name);
        CHECK_MSG(rt && rt->nbytes == 4 * ps[i].n, "%s: no reference gradient %s", what, ps[i].name);
        if (!rt || rt->nbytes != 4 * ps[i].n) continue;
        double mx = 0, md = 0;
        for (size_t k = 0; k < ps[i].n; k++) {
            float r;
            memcpy(&r, (const char *)rt->data + 4 * k, 4);
            mx = fmax(mx, fabs(r));
            double d = fabs((double)ps[i].g[k] - r);
            if (!(d <= md)) md = isnan(d) ? INFINITY : d;
        }
        double rel = md / (mx > 0 ? mx : 1);
        CHECK_MSG(rel <= TOL_GRAD, "%s: gradient of %s: rel err %.3g", what, ps[i].name, rel);
        worst = fmax(worst, rel);
    }
    fprintf(stderr, "%-26s %-4s LoRA loss %.7f (ref %.7f)  max rel grad err %.2e\n", fname, bename, nll / nv, ref_loss, worst);
    if (!strcmp(bename, "cpu")) {
        /* merge: the plain model with W + s B A computes what base + adapter computed */
        int n = c->B * (c->T - 1);
        float *lp1 = malloc(sizeof(float) * n), *lp2 = malloc(sizeof(float) * n);
        CHECK_OK(dsm_train_token_logp(t, c->ids, c->B, c->T, lp1, &err), &err);
        /* save/load round trip */
        char tmp[] = "/tmp/dsm-lora-test.XXXXXX";
        if (mkdtemp(tmp)) {
            struct dsm_lora *lo2 = NULL;
            CHECK_OK(dsm_lora_save(lo, tmp, "base", &err), &err);
            CHECK_OK(dsm_lora_load(m, tmp, &lo2, &err), &err);
            if (lo2) {
                int same = 1;
                for (int p = 0; p < DSM_P_COUNT; p++)
                    for (int l = 0; l < dsm_model_config(m)->n_layers; l++) {
                        const float *a1 = dsm_lora_a(lo, (enum dsm_param)p, l), *a2 = dsm_lora_a(lo2, (enum dsm_param)p, l);
                        const float *b1 = dsm_lora_b(lo, (enum dsm_param)p, l), *b2 = dsm_lora_b(lo2, (enum dsm_param)p, l);
                        if ((a1 == NULL) != (a2 == NULL)) same = 0;
                        if (a1 && a2 && b1 && b2) {
                            int N, K, nd;
                            int64_t sh[2];
                            dsm_param_shape(dsm_model_config(m), (enum dsm_param)p, &nd, sh);
                            N = (int)sh[0], K = (int)sh[1];
                            int r = dsm_lora_config(lo)->r;
                            same &= !memcmp(a1, a2, 4 * (size_t)r * K) && !memcmp(b1, b2, 4 * (size_t)N * r);
                        }
                    }
                CHECK_MSG(same, "%s: adapter save/load round trip changed values", what);
            }
            dsm_lora_destroy(lo2);
            snprintf(path, sizeof path, "rm -rf '%s'", tmp);
            CHECK(system(path) == 0);
        }
        /* dropout: analytic vs finite differences with the masks held fixed by the seed */
        dsm_lora_set_dropout(lo, 0.3);
        struct dsm_train *td = NULL;
        CHECK_OK(dsm_train_create(m, &to, &td, &err), &err);
        struct dsm_optim_tensor *pd = NULL;
        int npd = 0;
        if (td) CHECK_OK(dsm_train_params(td, &pd, &npd, &err), &err);
        if (pd) {
            float sc = 1.0f / c->n_valid;
            dsm_train_set_seed(td, 1234);
            double nll0;
            CHECK_OK(dsm_train_batch(td, c->ids, c->labels, c->B, c->T, sc, 1, &nll0, NULL, &err), &err);
            double nll_nodrop = nll;
            CHECK_MSG(fabs(nll0 - nll_nodrop) > 1e-3, "%s: dropout did not change the loss", what);
            for (int which = 0; which < 2; which++) {
                struct dsm_optim_tensor *x = &pd[which ? 13 : 6]; /* a B and an A matrix */
                size_t best = 0;
                dsm_train_zero_grad(td); /* the finite-difference batches below accumulate */
                CHECK_OK(dsm_train_batch(td, c->ids, c->labels, c->B, c->T, sc, 1, NULL, NULL, &err), &err);
                float *g0 = malloc(4 * x->n);
                memcpy(g0, x->g, 4 * x->n);
                for (size_t k = 0; k < x->n; k++) best = fabsf(g0[k]) > fabsf(g0[best]) ? k : best;
                float keep = x->p[best], h = 1e-2f;
                double lp, lm;
                x->p[best] = keep + h;
                CHECK_OK(dsm_train_batch(td, c->ids, c->labels, c->B, c->T, sc, 1, &lp, NULL, &err), &err);
                x->p[best] = keep - h;
                CHECK_OK(dsm_train_batch(td, c->ids, c->labels, c->B, c->T, sc, 1, &lm, NULL, &err), &err);
                x->p[best] = keep;
                double fd = (lp - lm) / (2.0 * h) * sc;
                CHECK_MSG(fabs(fd - g0[best]) <= 2e-2 * fabs(g0[best]), "%s dropout: d/d %s[%zu] analytic %g vs fd %g", what, x->name,
                          best, g0[best], fd);
                fprintf(stderr, "%-26s cpu  LoRA dropout 0.3: %s[%zu] analytic %.6g, finite difference %.6g\n", fname, x->name, best,
                        g0[best], fd);
                free(g0);
            }
        }
        free(pd);
        dsm_train_destroy(td);
        dsm_lora_set_dropout(lo, 0.0);
        CHECK_OK(dsm_lora_merge(lo, &err), &err);
        struct dsm_train *t2 = NULL;
        struct dsm_train_opts fo = {.max_rows = c->B * c->T, .max_seq = c->T};
        CHECK_OK(dsm_train_create(m, &fo, &t2, &err), &err);
        if (t2) CHECK_OK(dsm_train_token_logp(t2, c->ids, c->B, c->T, lp2, &err), &err);
        double e = 0;
        for (int i = 0; i < n; i++) e = fmax(e, fabs((double)lp1[i] - lp2[i]));
        CHECK_MSG(e <= 1e-4, "%s: merged model log-probs differ by %g", what, e);
        dsm_train_destroy(t2);
        free(lp1), free(lp2);
    }
done:
    st_close(f);
    free(ps);
    dsm_train_destroy(t);
    dsm_lora_destroy(lo);
    dsm_model_destroy(m);
    dsm_backend_destroy(be);
}

/* LoRA on bf16 base weights (qwen2_tied_bf16, stored in bf16) against the same model upcast to
 * float32: the weights are the same numbers, so gradients agree to float32 rounding (1e-5). */
static void lora_bf16(const char *root, struct tcase *c) {
    struct dsm_err err = {0};
    struct dsm_backend *be = NULL;
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/qwen2_tied_bf16", root);
    CHECK_OK(dsm_backend_open("cpu", 2, &be, &err), &err);
    float *g[2] = {NULL, NULL};
    size_t ng = 0;
    for (int k = 0; be && k < 2; k++) {
        struct dsm_model *m = NULL;
        struct dsm_lora *lo = NULL;
        struct dsm_train *t = NULL;
        struct dsm_optim_tensor *ps = NULL;
        int np = 0;
        struct dsm_model_opts mo = {.max_tokens = 4, .max_seq = 32, .wdtype = k ? DSM_DT_BF16 : DSM_DT_F32};
        struct dsm_lora_cfg lc;
        CHECK_OK(dsm_lora_parse("r=4,alpha=8", &lc, &err), &err);
        CHECK_OK(dsm_model_load(dir, be, &mo, &m, &err), &err);
        if (m) CHECK_OK(dsm_lora_create(m, &lc, 5, &lo, &err), &err);
        struct dsm_train_opts to = {.max_rows = c->B * c->T, .max_seq = c->T, .lora = lo};
        if (lo) CHECK_OK(dsm_train_create(m, &to, &t, &err), &err);
        if (t) CHECK_OK(dsm_train_params(t, &ps, &np, &err), &err);
        if (ps) {
            for (int i = 0; i < np; i++) /* B nonzero so that d/dA is too */
                for (size_t j = 0; j < ps[i].n; j++)
                    if (strstr(ps[i].name, "lora_B")) ps[i].p[j] = 0.01f * (float)((j * 7 + (size_t)i) % 13) - 0.06f;
            CHECK_OK(dsm_train_batch(t, c->ids, c->labels, c->B, c->T, 1.0f / c->n_valid, 1, NULL, NULL, &err), &err);
            ng = 0;
            for (int i = 0; i < np; i++) ng += ps[i].n;
            g[k] = malloc(4 * ng);
            size_t o = 0;
            for (int i = 0; i < np; i++) memcpy(g[k] + o, ps[i].g, 4 * ps[i].n), o += ps[i].n;
        }
        free(ps);
        dsm_train_destroy(t);
        dsm_lora_destroy(lo);
        dsm_model_destroy(m);
    }
    if (g[0] && g[1]) {
        double mx = 0, md = 0;
        for (size_t i = 0; i < ng; i++) mx = fmax(mx, fabs(g[0][i])), md = fmax(md, fabs(g[0][i] - g[1][i]));
        CHECK_MSG(mx > 0 && md <= 1e-5 * mx, "LoRA on bf16 vs f32 base: max diff %g of %g", md, mx);
        fprintf(stderr, "qwen2_tied_bf16            cpu  LoRA on bf16 base vs f32: max rel diff %.2e\n", md / mx);
    }
    free(g[0]), free(g[1]);
    dsm_backend_destroy(be);
}

/* An adapter made for one fixture refused by another model, with a message. */
static void lora_mismatch(const char *root) {
    struct dsm_err err = {0};
    struct dsm_backend *be = NULL;
    struct dsm_model *m = NULL;
    struct dsm_lora *lo = NULL;
    char dir[1200], ad[1200];
    snprintf(dir, sizeof dir, "%s/llama_mha_f32", root);
    snprintf(ad, sizeof ad, "%s/qwen2_gqa_f32/lora", root);
    CHECK_OK(dsm_backend_open("cpu", 2, &be, &err), &err);
    struct dsm_model_opts mo = {.max_tokens = 4, .max_seq = 32, .wdtype = DSM_DT_F32};
    if (be) CHECK_OK(dsm_model_load(dir, be, &mo, &m, &err), &err);
    if (m) {
        CHECK(dsm_lora_load(m, ad, &lo, &err) == DSM_EINVAL && lo == NULL);
        CHECK_MSG(strstr(err.msg, "another model") != NULL, "mismatch message: %s", err.msg);
        CHECK(dsm_lora_load(m, root, &lo, &err) == DSM_ENOTFOUND && strstr(err.msg, "adapter_config.json"));
        struct dsm_lora_cfg lc;
        CHECK(dsm_lora_parse("r=0", &lc, &err) == DSM_EINVAL);
        CHECK(dsm_lora_parse("r=8,alpha=16,targets=q_proj:v_proj", &lc, &err) == DSM_OK && lc.r == 8 && lc.alpha == 16 &&
              lc.targets == ((1u << DSM_P_Q) | (1u << DSM_P_V)));
        CHECK(dsm_lora_parse("r=8,bogus=1", &lc, &err) == DSM_EINVAL && strstr(err.msg, "bogus"));
        CHECK(dsm_lora_parse("r=8", &lc, &err) == DSM_OK && lc.alpha == 16 && lc.dropout == 0);
    }
    dsm_model_destroy(m);
    dsm_backend_destroy(be);
}

int main(void) {
    const char *root = DSM_SOURCE_DIR "/tests/fixtures/models";
    DIR *d = opendir(root);
    CHECK(d != NULL);
    if (!d) return test_main_end();
    char *names[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s/train_case.json", root, e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            fclose(f);
            names[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    CHECK_MSG(n >= MIN_CASES, "found %d gradient fixtures, expected at least %d", n, MIN_CASES);
    int n_lora = 0;
    for (int i = 0; i < n; i++) {
        char dir[1200];
        snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
        struct tcase c = {0};
        CHECK_MSG(case_read(dir, &c) == 0, "%s: cannot read train_case.json", names[i]);
        if (c.ids && c.labels) {
            run_case(dir, names[i], "cpu", &c);
            run_case(dir, names[i], "ref", &c);
            char lp[1400];
            snprintf(lp, sizeof lp, "%s/lora/lora_case.json", dir);
            FILE *lf = fopen(lp, "r");
            if (!strcmp(names[i], "qwen2_tied_bf16")) lora_bf16(root, &c);
            if (lf) {
                fclose(lf);
                n_lora++;
                run_lora(dir, names[i], "cpu", &c);
                run_lora(dir, names[i], "ref", &c);
            }
        }
        free(c.ids), free(c.labels), free(c.logp), free(names[i]);
    }
    CHECK_MSG(n_lora >= 2, "found %d LoRA fixtures, expected 2", n_lora);
    lora_mismatch(root);
    return test_main_end();
}
