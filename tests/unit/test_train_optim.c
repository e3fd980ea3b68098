/* test_train_optim.c - optimizers, schedules and clipping.
 *
 * 1. Two AdamW steps and two SGD steps on the qwen2_gqa_f32 fixture, fed the reference gradients
 *    of grads.safetensors, against torch.optim.AdamW / torch.optim.SGD run by
 *    tests/ref/make_grad_fixtures.py on the same float32 weights and gradients (weight decay 0.1
 *    on 2-D weights only). Both sides compute in float32 with the same formula, so weights agree
 *    to rounding: we demand max |w - w_torch| <= 2e-6 (updates are ~1e-2 per step, so a wrong bias
 *    correction, a coupled instead of decoupled decay or decay on a norm weight is >= 1e-4 off).
 * 2. Schedules: warmup starts at 0 and ramps linearly; cosine is lr at the end of warmup, lr/2
 *    half way and 0 at the end; constant stays at lr.
 * 3. Clipping: with max_grad_norm below the global norm, an SGD step moves weights by exactly
 *    lr * g * max_norm / (norm + 1e-6); the reported norm is the unclipped one.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/model.h"
#include "common/optim.h"
#include "common/safetensors.h"
#include "common/train.h"
#include "common/util.h"
#include "test.h"

#define FIXTURE DSM_SOURCE_DIR "/tests/fixtures/models/qwen2_gqa_f32"

static void load_grads(struct dsm_backend *be, struct dsm_optim_tensor *ps, int n) {
    struct st_file *f = NULL;
    struct dsm_err err = {0};
    CHECK_OK(st_open(FIXTURE "/grads.safetensors", &f, &err), &err);
    for (int i = 0; f && i < n; i++) {
        const struct st_tensor *t = st_find(f, ps[i].name);
        CHECK_MSG(t && t->nbytes == 4 * ps[i].n, "gradient %s", ps[i].name);
        if (t && t->nbytes == 4 * ps[i].n) be->upload(be, ps[i].g, t->data, 4 * ps[i].n);
    }
    st_close(f);
}

static double compare(struct dsm_optim_tensor *ps, int n, const char *file) {
    struct st_file *f = NULL;
    struct dsm_err err = {0};
    double worst = 0;
    CHECK_OK(st_open(file, &f, &err), &err);
    for (int i = 0; f && i < n; i++) {
        const struct st_tensor *t = st_find(f, ps[i].name);
        CHECK_MSG(t && t->nbytes == 4 * ps[i].n, "%s: tensor %s", file, ps[i].name);
        if (!t || t->nbytes != 4 * ps[i].n) continue;
        for (size_t k = 0; k < ps[i].n; k++) {
            float r;
            memcpy(&r, (const char *)t->data + 4 * k, 4);
            double d = fabs((double)ps[i].p[k] - r);
            if (!(d <= worst)) worst = isnan(d) ? INFINITY : d;
        }
    }
    st_close(f);
    return worst;
}

static void two_steps(const char *bename, enum dsm_optim_kind kind) {
    struct dsm_err err = {0};
    struct dsm_backend *be = NULL;
    struct dsm_model *m = NULL;
    struct dsm_train *t = NULL;
    struct dsm_optim *o = NULL;
    struct dsm_optim_tensor *ps = NULL;
    int n = 0;
    struct dsm_model_opts mo = {.max_tokens = 4, .max_seq = 16, .wdtype = DSM_DT_F32};
    struct dsm_train_opts to = {.max_rows = 16, .max_seq = 16};
    CHECK_OK(dsm_backend_open(bename, 2, &be, &err), &err);
    if (be) CHECK_OK(dsm_model_load(FIXTURE, be, &mo, &m, &err), &err);
    if (m) CHECK_OK(dsm_train_create(m, &to, &t, &err), &err);
    if (t) CHECK_OK(dsm_train_params(t, &ps, &n, &err), &err);
    struct dsm_optim_cfg oc;
    dsm_optim_cfg_default(&oc);
    oc.kind = kind;
    oc.sched = DSM_SCHED_CONSTANT;
    oc.max_grad_norm = 0;
    oc.weight_decay = 0.1;
    if (kind == DSM_OPTIM_ADAMW) oc.lr = 1e-2, oc.beta1 = 0.9, oc.beta2 = 0.95, oc.eps = 1e-8;
    else oc.lr = 0.5;
    if (ps) CHECK_OK(dsm_optim_create(be, ps, n, &oc, &o, &err), &err);
    if (o) {
        load_grads(be, ps, n);
        double gn, lr;
        CHECK_OK(dsm_optim_step(o, &gn, &lr, &err), &err);
        CHECK_OK(dsm_optim_step(o, NULL, NULL, &err), &err);
        CHECK(dsm_optim_steps(o) == 2 && lr == oc.lr && gn > 0);
        double e = compare(ps, n, kind == DSM_OPTIM_ADAMW ? FIXTURE "/adamw_2steps.safetensors" : FIXTURE "/sgd_2steps.safetensors");
        CHECK_MSG(e <= 2e-6, "%s %s: max |w - w_torch| = %g", bename, kind == DSM_OPTIM_ADAMW ? "adamw" : "sgd", e);
        fprintf(stderr, "%-4s %-5s 2 steps vs torch.optim: max |dw| %.2e\n", bename, kind == DSM_OPTIM_ADAMW ? "adamw" : "sgd", e);
    }
    dsm_optim_destroy(o);
    free(ps);
    dsm_train_destroy(t);
    dsm_model_destroy(m);
    dsm_backend_destroy(be);
}

static void schedules(void) {
    struct dsm_optim_cfg c;
    dsm_optim_cfg_default(&c);
    c.lr = 1.0, c.warmup_steps = 10, c.total_steps = 110, c.sched = DSM_SCHED_COSINE;
    CHECK(dsm_sched_lr(&c, 0) == 0.0);
    CHECK_NEAR(dsm_sched_lr(&c, 5), 0.5, 1e-12);
    CHECK_NEAR(dsm_sched_lr(&c, 10), 1.0, 1e-12);
    CHECK_NEAR(dsm_sched_lr(&c, 60), 0.5, 1e-12);
    CHECK_NEAR(dsm_sched_lr(&c, 110), 0.0, 1e-12);
    CHECK_NEAR(dsm_sched_lr(&c, 35), 0.5 * (1 + cos(M_PI * 0.25)), 1e-12);
    c.sched = DSM_SCHED_CONSTANT;
    CHECK_NEAR(dsm_sched_lr(&c, 3), 0.3, 1e-12);
    CHECK(dsm_sched_lr(&c, 10) == 1.0 && dsm_sched_lr(&c, 1000) == 1.0);
    c.warmup_steps = 0;
    CHECK(dsm_sched_lr(&c, 0) == 1.0);
}

static void clipping(void) {
    struct dsm_err err = {0};
    struct dsm_backend *be = NULL;
    CHECK_OK(dsm_backend_open("cpu", 2, &be, &err), &err);
    if (!be) return;
    float p[4] = {1, 2, 3, 4}, g[4] = {3, 0, 4, 0}; /* |g| = 5 */
    struct dsm_optim_tensor ts = {.p = p, .g = g, .n = 4, .ndim = 1, .shape = {4, 0}, .decay = 1, .name = "w"};
    struct dsm_optim_cfg oc;
    dsm_optim_cfg_default(&oc);
    oc.kind = DSM_OPTIM_SGD, oc.lr = 0.1, oc.max_grad_norm = 1.0, oc.sched = DSM_SCHED_CONSTANT, oc.weight_decay = 0;
    struct dsm_optim *o = NULL;
    CHECK_OK(dsm_optim_create(be, &ts, 1, &oc, &o, &err), &err);
    double gn;
    if (o) CHECK_OK(dsm_optim_step(o, &gn, NULL, &err), &err);
    CHECK_NEAR(gn, 5.0, 1e-6);
    double k = 1.0 / (5.0 + 1e-6);
    CHECK_NEAR(p[0], 1 - 0.1 * 3 * k, 1e-6);
    CHECK_NEAR(p[2], 3 - 0.1 * 4 * k, 1e-6);
    CHECK(p[1] == 2 && p[3] == 4);
    CHECK(dsm_optim_moment(o, 0, 0) == NULL); /* SGD keeps no moments */
    g[0] = NAN;
    CHECK(dsm_optim_step(o, NULL, NULL, &err) == DSM_EINVAL && strstr(err.msg, "gradient norm"));
    dsm_optim_destroy(o);
    dsm_backend_destroy(be);
}

int main(void) {
    two_steps("cpu", DSM_OPTIM_ADAMW);
    two_steps("ref", DSM_OPTIM_ADAMW);
    two_steps("cpu", DSM_OPTIM_SGD);
    two_steps("ref", DSM_OPTIM_SGD);
    schedules();
    clipping();
    return test_main_end();
}
