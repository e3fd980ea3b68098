/* test_grpo.c - GRPO: advantages, the k3 estimator and the per-token loss against hand-computed
 * values and finite differences; the whole loss and every parameter's gradient against PyTorch.
 *
 * The PyTorch case (tests/ref/make_grpo_fixtures.py, grpo_case.json + grpo_grads.safetensors in
 * the llama_mha_f32 and qwen2_gqa_f32 fixtures): G = 4 outputs of one prompt, completions of
 * different lengths, sampling and reference log-probabilities perturbed so that tokens are
 * clipped on both sides for positive and negative advantages; float64 autograd through the
 * independent decoder. Tolerances: loss 1e-5 relative, gradients 1e-4 relative to each tensor's
 * largest (as test_train_grad: float32 against float64 on the same weights), and the clipped
 * share exactly (no token sits within float32 rounding of a clip edge: the script keeps them away).
 *
 * GRPO with LoRA (llama_gqa_tied_bias_f32 and its lora/ adapter, nonzero B; the token ids of the
 * llama_mha_f32 case): the reference policy is the same
 * trainer with the adapter switched off, and its log-probabilities equal a separately loaded base
 * model's bit for bit; the KL and loss of an update against that reference equal the values
 * computed here from the two forwards; d loss / d B against central differences; a backward with
 * the adapter off is refused.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/grpo.h"
#include "common/lora.h"
#include "common/model.h"
#include "common/optim.h"
#include "common/train.h"
#include "grad_check.h"
#include "test.h"

static void test_advantages(void) {
    double r[4] = {1.0, 0.0, 0.5, 0.0}, a[4];
    grpo_advantages(r, 4, a);
    /* mean 0.375, unbiased std sqrt((0.625² + 0.375² + 0.125² + 0.375²) / 3) = 0.478713553878169 */
    CHECK_NEAR(a[0], 1.3055824196677337, 1e-12);
    CHECK_NEAR(a[1], -0.7833494518006403, 1e-12);
    CHECK_NEAR(a[2], 0.26111648393354675, 1e-12);
    CHECK_NEAR(a[3], -0.7833494518006403, 1e-12);
    double r3[3] = {1, 1, 0}, a3[3];
    grpo_advantages(r3, 3, a3);
    CHECK_NEAR(a3[0], 0.5773502691896258, 1e-12);
    CHECK_NEAR(a3[2], -1.1547005383792515, 1e-12);
    double same[5] = {0.5, 0.5, 0.5, 0.5, 0.5}, z[5];
    grpo_advantages(same, 5, z);
    for (int i = 0; i < 5; i++) CHECK(z[i] == 0.0);
    double one = 1.0, z1 = 7.0;
    grpo_advantages(&one, 1, &z1);
    CHECK(z1 == 0.0);
}

static void test_k3(void) {
    CHECK(grpo_k3(-1.25, -1.25) == 0.0);
    /* log q = ref - logp = 0.5: e^0.5 - 0.5 - 1; log q = -0.5: e^-0.5 + 0.5 - 1 */
    CHECK_NEAR(grpo_k3(-1.0, -0.5), 0.1487212707001282, 1e-12);
    CHECK_NEAR(grpo_k3(-1.0, -1.5), 0.10653065971263342, 1e-12);
    for (int i = 0; i < 100; i++) CHECK(grpo_k3(test_frand() * 5, test_frand() * 5) >= 0.0);
}

static void test_token_loss(void) {
    struct grpo_opts o = {.beta = 0.0, .eps = 0.2};
    double d;
    int cl;
    /* rho = 1: -A, gradient -A (both terms equal) */
    CHECK_NEAR(grpo_token_loss(-2.0, -2.0, -2.0, 0.5, &o, &d, &cl), -0.5, 1e-15);
    CHECK(cl == 0 && fabs(d + 0.5) < 1e-15);
    /* A > 0, rho = 1.5 > 1.2: the clipped term (1.2 A) is smaller: loss -1.2 A, no gradient */
    CHECK_NEAR(grpo_token_loss(log(1.5), 0.0, 0.0, 1.0, &o, &d, &cl), -1.2, 1e-12);
    CHECK(cl == 1 && d == 0.0);
    /* A > 0, rho = 0.5 < 0.8: the unclipped term is smaller: loss -0.5 A, gradient -rho A */
    CHECK_NEAR(grpo_token_loss(log(0.5), 0.0, 0.0, 2.0, &o, &d, &cl), -1.0, 1e-12);
    CHECK(cl == 0 && fabs(d + 1.0) < 1e-12);
    /* A < 0, rho = 0.5 < 0.8: min(rho A, 0.8 A) = min(-0.5, -0.8) picks the clipped term: loss 0.8 */
    CHECK_NEAR(grpo_token_loss(log(0.5), 0.0, 0.0, -1.0, &o, &d, &cl), 0.8, 1e-12);
    CHECK(cl == 1 && d == 0.0);
    /* A < 0, rho = 1.5: min(-1.5, -1.2) = -1.5, unclipped, gradient -rho A = 1.5 */
    CHECK_NEAR(grpo_token_loss(log(1.5), 0.0, 0.0, -1.0, &o, &d, &cl), 1.5, 1e-12);
    CHECK(cl == 0 && fabs(d - 1.5) < 1e-12);
    /* A = 0: only the KL term is left */
    o.beta = 0.04;
    CHECK_NEAR(grpo_token_loss(-1.0, -3.0, -0.5, 0.0, &o, &d, &cl), 0.04 * 0.1487212707001282, 1e-12);
    CHECK_NEAR(d, 0.04 * (1.0 - exp(0.5)), 1e-12);
    /* central differences away from the clip edges */
    test_rng_state = 99;
    int n = 0;
    for (int i = 0; i < 2000; i++) {
        double lp = -3.0 + test_frand(), old = lp + 0.6 * test_frand(), ref = lp + test_frand(), A = 2.0 * test_frand();
        double rho = exp(lp - old);
        if (fabs(rho - 0.8) < 1e-3 || fabs(rho - 1.2) < 1e-3) continue;
        double h = 1e-6, g;
        grpo_token_loss(lp, old, ref, A, &o, &g, NULL);
        double fd = (grpo_token_loss(lp + h, old, ref, A, &o, NULL, NULL) - grpo_token_loss(lp - h, old, ref, A, &o, NULL, NULL)) /
                    (2 * h);
        CHECK_MSG(fabs(fd - g) <= 1e-6 * (1 + fabs(g)), "d l/d logp at lp %g old %g ref %g A %g: %g vs fd %g", lp, old, ref,
                  A, g, fd);
        n++;
    }
    CHECK(n > 1900);
}

/* ---- the PyTorch case ------------------------------------------------------------------------ */

struct gcase {
    int G, T;
    int32_t *ids;            /* (G, T) */
    int *plen, *len;         /* prompt length and full length per sequence */
    float *old, *ref;        /* (G, T) per position */
    double *adv;
    double beta, eps, loss, kl_mean, clip_frac;
};

static double jnum(json_t *j) { return json_is_integer(j) ? (double)json_integer_value(j) : json_real_value(j); }

static int gcase_read(json_t *j, struct gcase *c) {
    json_t *ids = json_object_get(j, "input_ids"), *mask = json_object_get(j, "mask");
    json_t *old = json_object_get(j, "old_logp"), *ref = json_object_get(j, "ref_logp"), *adv = json_object_get(j, "advantages");
    if (!json_is_array(ids) || !json_is_array(mask) || !json_is_array(old) || !json_is_array(ref) || !json_is_array(adv)) return -1;
    c->G = (int)json_array_size(ids);
    c->T = (int)json_array_size(json_array_get(ids, 0));
    c->ids = calloc((size_t)c->G * c->T, sizeof(int32_t));
    c->old = calloc((size_t)c->G * c->T, sizeof(float));
    c->ref = calloc((size_t)c->G * c->T, sizeof(float));
    c->plen = calloc((size_t)c->G, sizeof(int));
    c->len = calloc((size_t)c->G, sizeof(int));
    c->adv = calloc((size_t)c->G, sizeof(double));
    for (int g = 0; g < c->G; g++) {
        c->plen[g] = -1;
        for (int t = 0; t < c->T; t++) {
            size_t k = (size_t)g * c->T + t;
            c->ids[k] = (int32_t)json_integer_value(json_array_get(json_array_get(ids, g), t));
            c->old[k] = (float)jnum(json_array_get(json_array_get(old, g), t));
            c->ref[k] = (float)jnum(json_array_get(json_array_get(ref, g), t));
            if (json_integer_value(json_array_get(json_array_get(mask, g), t))) {
                if (c->plen[g] < 0) c->plen[g] = t;
                c->len[g] = t + 1;
            }
        }
        c->adv[g] = jnum(json_array_get(adv, g));
    }
    c->beta = jnum(json_object_get(j, "beta"));
    c->eps = jnum(json_object_get(j, "eps"));
    c->loss = jnum(json_object_get(j, "loss"));
    c->kl_mean = jnum(json_object_get(j, "kl_mean"));
    c->clip_frac = jnum(json_object_get(j, "clip_frac"));
    return 0;
}

static void gcase_free(struct gcase *c) {
    free(c->ids), free(c->old), free(c->ref), free(c->plen), free(c->len), free(c->adv);
}

static void run_fixture(const char *name, const char *bename, json_t *j, const char *grads) {
    char dir[1024], gpath[1400], what[256];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/models/%s", DSM_SOURCE_DIR, name);
    snprintf(gpath, sizeof gpath, "%s/%s", dir, grads);
    snprintf(what, sizeof what, "%s %s on %s", name, grads, bename);
    struct gcase c = {0};
    CHECK_MSG(gcase_read(j, &c) == 0, "%s: malformed case", what);
    if (!c.G) return;
    struct dsm_err err = {0};
    struct dsm_backend *be = NULL;
    struct dsm_model *m = NULL;
    struct dsm_train *t = NULL;
    struct dsm_model_opts mo = {.max_tokens = 16, .max_seq = 64, .wdtype = DSM_DT_F32};
    CHECK_OK(dsm_backend_open(bename, 2, &be, &err), &err);
    if (be) CHECK_OK(dsm_model_load(dir, be, &mo, &m, &err), &err);
    /* max_rows 2T: the group goes through in two micro-batches, which must not matter */
    struct dsm_train_opts to = {.max_rows = 2 * c.T, .max_seq = c.T};
    if (m) CHECK_OK(dsm_train_create(m, &to, &t, &err), &err);
    if (t) {
        struct grpo_seq *s = calloc((size_t)c.G, sizeof *s);
        for (int g = 0; g < c.G; g++) {
            size_t row = (size_t)g * c.T;
            s[g] = (struct grpo_seq){c.ids + row, c.len[g], c.plen[g], c.old + row + c.plen[g], c.ref + row + c.plen[g], c.adv[g]};
        }
        struct grpo_opts o = {.beta = c.beta, .eps = c.eps};
        struct grpo_stats st = {0};
        CHECK_OK(grpo_backward(t, s, c.G, 1.0 / c.G, &o, &st, &err), &err);
        CHECK_MSG(fabs(st.loss - c.loss) <= 1e-5 * fmax(fabs(c.loss), 1e-3), "%s: loss %.9f vs %.9f", what, st.loss, c.loss);
        double kl = st.kl_sum / st.tokens, cf = (double)st.clipped / st.tokens;
        CHECK_MSG(fabs(kl - c.kl_mean) <= 1e-5 * fmax(c.kl_mean, 1e-3), "%s: kl %.9f vs %.9f", what, kl, c.kl_mean);
        CHECK_MSG(fabs(cf - c.clip_frac) < 1e-12, "%s: clipped share %.4f vs %.4f", what, cf, c.clip_frac);
        double worst = compare_grads(t, dsm_model_config(m), gpath, what, 1e-4);
        fprintf(stderr, "%-40s loss %.8f (ref %.8f) kl %.3e clipped %.3f  max rel grad err %.2e\n", what, st.loss, c.loss,
                kl, cf, worst);
        /* the live log-probabilities of the completion tokens, as grpo_token_logp reads them */
        if (!strcmp(grads, "grpo_grads.safetensors")) {
            float **lp = calloc((size_t)c.G, sizeof *lp);
            for (int g = 0; g < c.G; g++) lp[g] = calloc((size_t)c.T, sizeof(float));
            CHECK_OK(grpo_token_logp(t, s, c.G, lp, &err), &err);
            json_t *jl = json_object_get(j, "logp");
            double e = 0;
            for (int g = 0; g < c.G; g++)
                for (int p = c.plen[g]; p < c.len[g]; p++)
                    e = fmax(e, fabs(lp[g][p - c.plen[g]] - jnum(json_array_get(json_array_get(jl, g), p))));
            CHECK_MSG(e <= 1e-4, "%s: completion log-probs differ by %g", what, e);
            for (int g = 0; g < c.G; g++) free(lp[g]);
            free(lp);
            /* a sequence with no completion token is refused by name */
            struct grpo_seq bad = s[1];
            bad.prompt_len = bad.T;
            CHECK(grpo_backward(t, &bad, 1, 1.0, &o, NULL, &err) == DSM_EINVAL && strstr(err.msg, "sequence 0"));
        }
        free(s);
    }
    dsm_train_destroy(t);
    dsm_model_destroy(m);
    dsm_backend_destroy(be);
    gcase_free(&c);
}

/* Log-probabilities of every sequence's completion, as one flat array (lp[g] at off[g]). */
static void completion_logp(struct dsm_train *t, const struct grpo_seq *s, int G, float *flat, const int *off) {
    struct dsm_err err = {0};
    float *lp[16];
    for (int g = 0; g < G; g++) lp[g] = flat + off[g];
    CHECK_OK(grpo_token_logp(t, s, G, lp, &err), &err);
}

/* GRPO loss (no gradient kept) of t's current weights against fixed old/ref log-probs. */
static double lora_loss(struct dsm_train *t, const struct grpo_seq *s, int G, const struct grpo_opts *o) {
    struct dsm_err err = {0};
    struct grpo_stats st = {0};
    dsm_train_zero_grad(t);
    CHECK_OK(grpo_backward(t, s, G, 1.0 / G, o, &st, &err), &err);
    return st.loss;
}

static void test_lora_reference(const char *bename, json_t *j) {
    char dir[1024], adir[1100];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/models/llama_gqa_tied_bias_f32", DSM_SOURCE_DIR);
    snprintf(adir, sizeof adir, "%s/lora", dir);
    struct gcase c = {0};
    CHECK(gcase_read(j, &c) == 0 && c.G <= 16);
    struct dsm_err err = {0};
    struct dsm_backend *be = NULL;
    struct dsm_model *m = NULL, *m0 = NULL;
    struct dsm_lora *lo = NULL;
    struct dsm_train *t = NULL, *t0 = NULL;
    struct dsm_model_opts mo = {.max_tokens = 16, .max_seq = 64, .wdtype = DSM_DT_F32};
    CHECK_OK(dsm_backend_open(bename, 2, &be, &err), &err);
    if (be) CHECK_OK(dsm_model_load(dir, be, &mo, &m, &err), &err);
    if (be) CHECK_OK(dsm_model_load(dir, be, &mo, &m0, &err), &err);
    if (m) CHECK_OK(dsm_lora_load(m, adir, &lo, &err), &err);
    struct dsm_train_opts to = {.max_rows = 2 * c.T, .max_seq = c.T, .lora = lo}, to0 = {.max_rows = 2 * c.T, .max_seq = c.T};
    if (lo) CHECK_OK(dsm_train_create(m, &to, &t, &err), &err);
    if (m0) CHECK_OK(dsm_train_create(m0, &to0, &t0, &err), &err);
    if (t && t0) {
        struct grpo_seq s[16];
        int off[16], tot = 0;
        for (int g = 0; g < c.G; g++) {
            s[g] = (struct grpo_seq){c.ids + (size_t)g * c.T, c.len[g], c.plen[g], NULL, NULL, c.adv[g]};
            off[g] = tot, tot += c.len[g] - c.plen[g];
        }
        float *on = calloc((size_t)tot, sizeof(float)), *off_ = calloc((size_t)tot, sizeof(float)),
              *base = calloc((size_t)tot, sizeof(float));
        completion_logp(t, s, c.G, on, off);
        dsm_train_lora_enable(t, 0);
        completion_logp(t, s, c.G, off_, off);
        /* a training batch with the adapter off would train nothing it could use: refused */
        struct grpo_opts o = {.beta = c.beta, .eps = c.eps};
        for (int g = 0; g < c.G; g++) s[g].old_logp = on + off[g], s[g].ref_logp = off_ + off[g];
        CHECK(grpo_backward(t, s, c.G, 1.0 / c.G, &o, NULL, &err) == DSM_EINVAL && strstr(err.msg, "adapter"));
        dsm_train_lora_enable(t, 1);
        completion_logp(t0, s, c.G, base, off);
        CHECK_MSG(!memcmp(off_, base, sizeof(float) * (size_t)tot), "%s: adapter-off log-probs differ from the base model's",
                  bename);
        double dmax = 0;
        for (int i = 0; i < tot; i++) dmax = fmax(dmax, fabs(on[i] - base[i]));
        CHECK_MSG(dmax > 1e-3, "%s: the adapter changes no log-prob (max %g)", bename, dmax);
        /* at the sampling policy the ratio is 1: loss = mean_g mean_t (-A_g + beta k3(ref - logp)) */
        double want = 0, klw = 0;
        for (int g = 0; g < c.G; g++) {
            double sum = 0;
            int L = c.len[g] - c.plen[g];
            for (int i = 0; i < L; i++) {
                double d = (double)base[off[g] + i] - (double)on[off[g] + i], k3 = exp(d) - d - 1;
                sum += -c.adv[g] + c.beta * k3, klw += k3;
            }
            want += sum / L / c.G;
        }
        klw /= tot;
        struct grpo_stats st = {0};
        dsm_train_zero_grad(t);
        CHECK_OK(grpo_backward(t, s, c.G, 1.0 / c.G, &o, &st, &err), &err);
        CHECK_MSG(fabs(st.loss - want) <= 1e-5 * fmax(fabs(want), 1e-3), "%s: LoRA loss %.9f vs %.9f", bename, st.loss, want);
        CHECK_MSG(fabs(st.kl_sum / st.tokens - klw) <= 1e-5 * fmax(klw, 1e-6) && klw > 1e-6, "%s: LoRA kl %.9g vs %.9g",
                  bename, st.kl_sum / st.tokens, klw);
        /* d loss / d B at B's largest-gradient entry of the first adapted matrix, by central differences */
        struct dsm_optim_tensor *ps = NULL;
        int np = 0;
        CHECK_OK(dsm_train_params(t, &ps, &np, &err), &err);
        for (int i = 0; i < np; i++) {
            if (!strstr(ps[i].name, "lora_B") || strcmp(bename, "cpu")) continue; /* host memory: the cpu backend */
            size_t k = 0;
            for (size_t e = 1; e < ps[i].n; e++)
                if (fabs(ps[i].g[e]) > fabs(ps[i].g[k])) k = e;
            double g = ps[i].g[k], h = 1e-2, w0 = ps[i].p[k];
            ps[i].p[k] = (float)(w0 + h);
            double lp = lora_loss(t, s, c.G, &o);
            ps[i].p[k] = (float)(w0 - h);
            double lm = lora_loss(t, s, c.G, &o);
            ps[i].p[k] = (float)w0;
            double fd = (lp - lm) / (2 * h);
            CHECK_MSG(fabs(fd - g) <= 2e-2 * fabs(g) + 1e-5, "%s: d loss / d %s[%zu] %.6g vs differences %.6g", bename,
                      ps[i].name, k, g, fd);
            fprintf(stderr, "LoRA GRPO on %s: loss %.8f (computed %.8f), kl %.4e, d/d %s[%zu] %.5g (differences %.5g)\n",
                    bename, st.loss, want, klw, ps[i].name, k, g, fd);
            break;
        }
        free(ps);
        free(on), free(off_), free(base);
    }
    dsm_train_destroy(t);
    dsm_train_destroy(t0);
    dsm_lora_destroy(lo);
    dsm_model_destroy(m);
    dsm_model_destroy(m0);
    dsm_backend_destroy(be);
    gcase_free(&c);
}

int main(void) {
    test_advantages();
    test_k3();
    test_token_loss();
    const char *fixtures[] = {"llama_mha_f32", "qwen2_gqa_f32"};
    int cases = 0;
    for (int f = 0; f < 2; f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/tests/fixtures/models/%s/grpo_case.json", DSM_SOURCE_DIR, fixtures[f]);
        json_error_t je;
        json_t *j = json_load_file(path, 0, &je);
        CHECK_MSG(j != NULL, "%s: %s", path, je.text);
        if (!j) continue;
        json_t *z = json_object_get(j, "zero_std");
        for (int b = 0; b < 2; b++) {
            const char *bename = b ? "ref" : "cpu";
            run_fixture(fixtures[f], bename, j, "grpo_grads.safetensors");
            if (z) run_fixture(fixtures[f], bename, z, "grpo_grads_zero_std.safetensors");
            if (f == 0) test_lora_reference(bename, j);
            cases++;
        }
        json_decref(j);
    }
    CHECK(cases == 4);
    return test_main_end();
}
