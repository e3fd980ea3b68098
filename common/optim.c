/* optim.c - AdamW, SGD, schedules and clipping over a list of tensors; see optim.h. */
#include "common/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

struct dsm_optim {
    struct dsm_backend *be;
    struct dsm_optim_cfg cfg;
    long steps;
    int n;
    struct dsm_optim_tensor *ts;
    float **mom;  /* (n, 2) moment pointers (AdamW) */
    void *slab;
    float *dev1;  /* one float of device memory for sumsq */
};

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

static size_t al64(size_t b) { return (b + 63) & ~(size_t)63; }

int dsm_optim_create(struct dsm_backend *be, const struct dsm_optim_tensor *ts, int n,
                     const struct dsm_optim_cfg *cfg, struct dsm_optim **out, struct dsm_err *err) {
    *out = NULL;
    struct dsm_optim *o = dsm_calloc(1, sizeof *o, err);
    if (!o) return DSM_ENOMEM;
    o->be = be;
    o->cfg = *cfg;
    o->n = n;
    o->ts = dsm_calloc((size_t)(n ? n : 1), sizeof *o->ts, err);
    o->mom = dsm_calloc((size_t)(n ? n : 1) * 2, sizeof *o->mom, err);
    if (!o->ts || !o->mom) goto fail;
    memcpy(o->ts, ts, sizeof *ts * (size_t)n);
    int moments = cfg->kind == DSM_OPTIM_ADAMW ? 2 : 0;
    size_t total = 64;
    for (int i = 0; i < n; i++) total += (size_t)moments * al64(4 * ts[i].n);
    o->slab = be->alloc(be, total);
    if (!o->slab) {
        dsm_errf(err, DSM_ENOMEM, "cannot allocate %zu bytes of optimizer state", total);
        goto fail;
    }
    be->zero(be, o->slab, total);
    char *q = o->slab;
    o->dev1 = (float *)q;
    q += 64;
    for (int i = 0; i < n; i++)
        for (int w = 0; w < moments; w++) {
            o->mom[2 * i + w] = (float *)q;
            q += al64(4 * ts[i].n);
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
    free(o->ts);
    free(o->mom);
    free(o);
}

long dsm_optim_steps(const struct dsm_optim *o) { return o->steps; }
void dsm_optim_set_steps(struct dsm_optim *o, long steps) { o->steps = steps; }
int dsm_optim_count(const struct dsm_optim *o) { return o->n; }
const struct dsm_optim_tensor *dsm_optim_tensor_at(const struct dsm_optim *o, int i) { return &o->ts[i]; }

float *dsm_optim_moment(struct dsm_optim *o, int i, int which) {
    if (i < 0 || i >= o->n || which < 0 || which > 1) return NULL;
    return o->mom[2 * i + which];
}

int dsm_optim_step(struct dsm_optim *o, double *grad_norm, double *lr_out, struct dsm_err *err) {
    struct dsm_backend *be = o->be;
    const struct dsm_optim_cfg *k = &o->cfg;
    double ss = 0.0;
    for (int i = 0; i < o->n; i++) {
        float v;
        be->sumsq(be, o->dev1, o->ts[i].g, o->ts[i].n);
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
    for (int i = 0; i < o->n; i++) {
        const struct dsm_optim_tensor *x = &o->ts[i];
        float wd = x->decay ? (float)k->weight_decay : 0.0f;
        if (k->kind == DSM_OPTIM_ADAMW)
            be->adamw(be, x->p, x->g, o->mom[2 * i], o->mom[2 * i + 1], x->n, (float)lr, (float)k->beta1, (float)k->beta2,
                      (float)k->eps, wd, bc1, bc2, gscale);
        else
            be->sgd(be, x->p, x->g, x->n, (float)lr, wd, gscale);
    }
    int rc = be->sync(be, err);
    if (!rc) o->steps++;
    return rc;
}
