/* grad_check.h - compare a trainer's gradients with a reference file (tests only). */
#ifndef DSM_TEST_GRAD_CHECK_H
#define DSM_TEST_GRAD_CHECK_H

#include <math.h>
#include <string.h>

#include "common/params.h"
#include "common/safetensors.h"
#include "common/train.h"
#include "test.h"

/* Compare every gradient of t (host memory: cpu/ref backends) with the reference safetensors file
 * at path (HF names, float32): max |g - g_ref| / max |g_ref| per tensor <= tol. Returns the worst
 * relative error (INFINITY when the file cannot be read). */
static inline double compare_grads(struct dsm_train *t, const struct dsm_model_config *cfg, const char *path, const char *what,
                                   double tol) {
    char name[256];
    struct st_file *f = NULL;
    struct dsm_err err = {0};
    CHECK_OK(st_open(path, &f, &err), &err);
    if (!f) return INFINITY;
    double worst = 0.0;
    int seen = 0;
    for (int p = 0; p < DSM_P_COUNT; p++) {
        if (!dsm_param_present(cfg, (enum dsm_param)p)) continue;
        for (int l = 0; l < (dsm_param_table[p].per_layer ? cfg->n_layers : 1); l++) {
            dsm_param_name((enum dsm_param)p, l, name, sizeof name);
            const struct st_tensor *rt = st_find(f, name);
            size_t n = dsm_param_numel(cfg, (enum dsm_param)p);
            CHECK_MSG(rt && rt->dtype == DSM_DT_F32 && rt->nbytes == 4 * n, "%s: reference gradient %s missing or misshapen", what, name);
            if (!rt || rt->nbytes != 4 * n) continue;
            const float *g = dsm_train_grad(t, (enum dsm_param)p, l); /* host memory on cpu/ref */
            double mx = 0.0, md = 0.0;
            for (size_t i = 0; i < n; i++) {
                float r;
                memcpy(&r, (const char *)rt->data + 4 * i, 4);
                mx = fmax(mx, fabs(r));
                double d = fabs((double)g[i] - r);
                if (!(d <= md)) md = isnan(d) ? INFINITY : d;
            }
            double rel = md / (mx > 0 ? mx : 1.0);
            CHECK_MSG(rel <= tol, "%s: gradient of %s: max err %.3g relative to max |g| %.3g", what, name, rel, mx);
            if (rel > worst) worst = rel;
            seen++;
        }
    }
    CHECK_MSG(seen == st_count(f), "%s: compared %d gradients, reference has %d", what, seen, st_count(f));
    st_close(f);
    return worst;
}

#endif
