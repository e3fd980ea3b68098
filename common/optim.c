/* optim.c - AdamW, SGD, schedules and clipping over the parameter table; see optim.h. */
#include "common/optim.h"

#include <math.h>
#include <stdlib.h>

#include "common/model_impl.h"
#include "common/train.h"
#include "common/util.h"

struct dsm_optim {
    struct dsm_train *t;
    struct dsm_model *m;
    struct dsm_backend *be;
    struct dsm_optim_cfg cfg;
    long steps;
    void *slab;
    float **st;  /* (L + 1) * DSM_P_COUNT * 2 moment pointers */
    float *dev1; /* one float of device memory for sumsq */
};

/* Every present (param, layer) pair. */
#define FOR_EACH_PRESENT(cfg, p, l)                                                        \
    for (int p = 0; p < DSM_P_COUNT; p++)                                                  \
        for (int l = 0; l < (dsm_param_table[p].per_layer ? (cfg)->n_layers : 1); l++)     \
            if (dsm_param_present((cfg), (enum dsm_param)p))

void dsm_optim_cfg_default(struct dsm_optim_cfg *c) {
    *c = (struct dsm_optim_cfg){.kind = DSM_OPTIM_ADAMW, .lr = 1e-4, .weight_decay = 0.0, .beta1 = 0.9, .beta2 = 0.999,
                                .eps = 1e-8, .max_grad_norm = 1.0, .sched = DSM_SCHED_COSINE};
}

double dsm_sched_lr(const struct dsm_optim_cfg *c, long step) {
    if (step < c->warmup_steps) return c->lr * (double)step / (double)(c->warmup_steps > 1 ? c->warmup_steps : 1);
    if (c->sched == DSM_SCHED_CONSTANT) return c->lr;
    long span = c->total_steps - c->warmup_steps;
    if (span <= 0) return c->lr;
    double progress = (double)(step - c->warmup_steps) / (double)span;
    if (progress > 1.0) progress = 1.0;
    return c->lr * 0.5 * (1.0 + cos(M_PI * progress));
}

static float **state_slot(struct dsm_optim *o, enum dsm_param p, int layer, int which) {
    int row = dsm_param_table[p].per_layer ? layer + 1 : 0;
    return &o->st[((size_t)row * DSM_P_COUNT + p) * 2 + which];
}

int dsm_optim_create(struct dsm_train *t, const struct dsm_optim_cfg *cfg, struct dsm_optim **out,
                     struct dsm_err *err) {
    *out = NULL;
    struct dsm_optim *o = dsm_calloc(1, sizeof *o, err);
    if (!o) return DSM_ENOMEM;
    o->t = t;
    o->m = dsm_train_model(t);
    o->be = o->m->be;
    o->cfg = *cfg;
    const struct dsm_model_config *c = &o->m->cfg;
    o->st = dsm_calloc((size_t)(c->n_layers + 1) * DSM_P_COUNT * 2, sizeof *o->st, err);
    if (!o->st) goto fail;
    size_t total = 64;
    int moments = cfg->kind == DSM_OPTIM_ADAMW ? 2 : 0;
    FOR_EACH_PRESENT(c, p, l) total += (size_t)moments * ((4 * dsm_param_numel(c, (enum dsm_param)p) + 63) & ~(size_t)63);
    o->slab = o->be->alloc(o->be, total);
    if (!o->slab) {
        dsm_errf(err, DSM_ENOMEM, "cannot allocate %zu bytes of optimizer state", total);
        goto fail;
    }
    o->be->zero(o->be, o->slab, total);
    char *q = o->slab;
    o->dev1 = (float *)q;
    q += 64;
    FOR_EACH_PRESENT(c, p, l)
        for (int w = 0; w < moments; w++) {
            *state_slot(o, (enum dsm_param)p, l, w) = (float *)q;
            q += (4 * dsm_param_numel(c, (enum dsm_param)p) + 63) & ~(size_t)63;
        }
    *out = o;
    return DSM_OK;
fail:
    dsm_optim_destroy(o);
    return DSM_ENOMEM;
}

void dsm_optim_destroy(struct dsm_optim *o) {
    if (!o) return;
    if (o->be) o->be->free(o->be, o->slab);
    free(o->st);
    free(o);
}

struct dsm_model *dsm_optim_model(struct dsm_optim *o) { return o->m; }

long dsm_optim_steps(const struct dsm_optim *o) { return o->steps; }
void dsm_optim_set_steps(struct dsm_optim *o, long steps) { o->steps = steps; }

float *dsm_optim_state(struct dsm_optim *o, enum dsm_param p, int layer, int which) {
    if (!dsm_param_present(&o->m->cfg, p) || which < 0 || which > 1) return NULL;
    return *state_slot(o, p, layer, which);
}

int dsm_optim_step(struct dsm_optim *o, double *grad_norm, double *lr_out, struct dsm_err *err) {
    struct dsm_backend *be = o->be;
    const struct dsm_model_config *c = &o->m->cfg;
    const struct dsm_optim_cfg *k = &o->cfg;
    double ss = 0.0;
    FOR_EACH_PRESENT(c, p, l) {
        float v;
        be->sumsq(be, o->dev1, dsm_train_grad(o->t, (enum dsm_param)p, l), dsm_param_numel(c, (enum dsm_param)p));
        be->download(be, &v, o->dev1, sizeof v);
        ss += v;
    }
    double norm = sqrt(ss);
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm)) return dsm_errf(err, DSM_EINVAL, "gradient norm is %g at step %ld: not updating (lower --lr?)", norm, o->steps + 1);
    float gscale = 1.0f;
    if (k->max_grad_norm > 0 && norm > k->max_grad_norm) gscale = (float)(k->max_grad_norm / (norm + 1e-6));
    double lr = dsm_sched_lr(k, o->steps);
    if (lr_out) *lr_out = lr;
    long t = o->steps + 1;
    float bc1 = (float)(1.0 - pow(k->beta1, (double)t)), bc2 = (float)(1.0 - pow(k->beta2, (double)t));
    FOR_EACH_PRESENT(c, p, l) {
        float *w = *dsm_model_wslot(o->m, (enum dsm_param)p, l);
        float *g = dsm_train_grad(o->t, (enum dsm_param)p, l);
        size_t n = dsm_param_numel(c, (enum dsm_param)p);
        float wd = dsm_param_is_matrix((enum dsm_param)p) ? (float)k->weight_decay : 0.0f;
        if (k->kind == DSM_OPTIM_ADAMW)
            be->adamw(be, w, g, *state_slot(o, (enum dsm_param)p, l, 0), *state_slot(o, (enum dsm_param)p, l, 1), n,
                      (float)lr, (float)k->beta1, (float)k->beta2, (float)k->eps, wd, bc1, bc2, gscale);
        else
            be->sgd(be, w, g, n, (float)lr, wd, gscale);
    }
    int rc = be->sync(be, err);
    if (!rc) o->steps++;
    return rc;
}
