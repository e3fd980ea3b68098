/* grpo.c - GRPO advantages, the per-token loss and its gradient through the trainer; see grpo.h. */
#include "common/grpo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/train.h"
#include "common/util.h"

void grpo_opts_default(struct grpo_opts *o) {
    o->beta = 0.04;
    o->eps = 0.2;
}

void grpo_advantages(const double *r, int G, double *adv) {
    double mean = 0.0, ss = 0.0;
    for (int i = 0; i < G; i++) mean += r[i];
    if (G > 0) mean /= G;
    for (int i = 0; i < G; i++) ss += (r[i] - mean) * (r[i] - mean);
    double sd = G > 1 ? sqrt(ss / (G - 1)) : 0.0;
    for (int i = 0; i < G; i++) adv[i] = sd > 1e-12 ? (r[i] - mean) / sd : 0.0;
}

double grpo_k3(double logp, double ref_logp) {
    double lq = ref_logp - logp;
    return exp(lq) - lq - 1.0;
}

double grpo_token_loss(double logp, double old_logp, double ref_logp, double adv, const struct grpo_opts *o,
                       double *dlogp, int *clipped) {
    double rho = exp(logp - old_logp);
    double lo = 1.0 - o->eps, hi = 1.0 + o->eps;
    double rc = rho < lo ? lo : rho > hi ? hi : rho;
    double un = rho * adv, cl = rc * adv;
    /* min picks the clipped term only when it is strictly smaller; then rho is outside the range
     * (inside it the two terms are equal) and the clamp has no gradient. */
    int use_clipped = cl < un;
    double loss = -(use_clipped ? cl : un), g = use_clipped ? 0.0 : -un;
    if (o->beta != 0.0) {
        double q = exp(ref_logp - logp);
        loss += o->beta * (q - (ref_logp - logp) - 1.0);
        g += o->beta * (1.0 - q);
    }
    if (dlogp) *dlogp = g;
    if (clipped) *clipped = use_clipped;
    return loss;
}

/* One micro-batch: sequences seqs[first..first+B) padded to T columns. */
struct mb {
    const struct grpo_seq *seqs;
    int B, T;
    double scale;
    const struct grpo_opts *o;
    struct grpo_stats st;
};

static void mb_row_grad(void *ctx, const int *rows, const float *logp, int n, float *g) {
    struct mb *m = ctx;
    for (int i = 0; i < n; i++) {
        int b = rows[i] / m->T, p = rows[i] % m->T + 1;
        const struct grpo_seq *s = &m->seqs[b];
        int k = p - s->prompt_len, L = s->T - s->prompt_len;
        g[i] = 0.0f;
        if (k < 0 || p >= s->T) continue; /* prompt or padding: no label, ignored */
        double d;
        int clipped;
        double ref = s->ref_logp ? s->ref_logp[k] : logp[i];
        double l = grpo_token_loss(logp[i], s->old_logp[k], ref, s->adv, m->o, &d, &clipped);
        double w = m->scale / L;
        g[i] = (float)(w * d);
        m->st.loss += w * l;
        m->st.kl_sum += s->ref_logp ? grpo_k3(logp[i], ref) : 0.0;
        m->st.ratio_sum += exp((double)logp[i] - s->old_logp[k]);
        m->st.clipped += clipped;
        m->st.tokens++;
    }
}

static int check_seqs(const struct grpo_seq *seqs, int n, int max_seq, struct dsm_err *err) {
    for (int s = 0; s < n; s++) {
        if (seqs[s].T > max_seq)
            return dsm_errf(err, DSM_EINVAL, "GRPO sequence %d has %d tokens, more than the trainer's max_seq %d", s,
                            seqs[s].T, max_seq);
        if (seqs[s].prompt_len < 1 || seqs[s].T - seqs[s].prompt_len < 1)
            return dsm_errf(err, DSM_EINVAL, "GRPO sequence %d: prompt of %d tokens in %d needs >= 1 of each", s,
                            seqs[s].prompt_len, seqs[s].T);
    }
    return DSM_OK;
}

/* Sequences seqs[s0..*s1) that fit max_rows when padded to their longest; *T their longest. */
static void next_batch(const struct grpo_seq *seqs, int n, int s0, int max_rows, int *s1, int *T) {
    int t = 0, s = s0;
    while (s < n) {
        int tt = seqs[s].T > t ? seqs[s].T : t;
        if ((long)(s - s0 + 1) * tt > max_rows && s > s0) break;
        t = tt;
        s++;
    }
    *s1 = s;
    *T = t < 2 ? 2 : t;
}

/* ids and labels (B, T) of sequences seqs[s0..s0+B): labels on completion tokens only. */
static void pack(const struct grpo_seq *seqs, int s0, int B, int T, int32_t *ids, int32_t *labels) {
    for (int b = 0; b < B; b++) {
        const struct grpo_seq *s = &seqs[s0 + b];
        for (int i = 0; i < T; i++) {
            size_t r = (size_t)b * T + i;
            ids[r] = i < s->T ? s->ids[i] : 0;
            labels[r] = i < s->T && i >= s->prompt_len ? s->ids[i] : -100;
        }
    }
}

int grpo_backward(struct dsm_train *t, const struct grpo_seq *seqs, int n, double scale, const struct grpo_opts *o,
                  struct grpo_stats *st, struct dsm_err *err) {
    int max_rows, max_seq, rc;
    dsm_train_sizes(t, &max_rows, &max_seq);
    if ((rc = check_seqs(seqs, n, max_seq, err))) return rc;
    int32_t *ids = dsm_calloc((size_t)max_rows * 2, sizeof(int32_t), err);
    if (!ids) return DSM_ENOMEM;
    int32_t *labels = ids + max_rows;
    for (int s0 = 0, s1, T; s0 < n; s0 = s1) {
        next_batch(seqs, n, s0, max_rows, &s1, &T);
        struct mb m = {.seqs = seqs + s0, .B = s1 - s0, .T = T, .scale = scale, .o = o};
        pack(seqs, s0, m.B, T, ids, labels);
        if ((rc = dsm_train_batch_rowgrad(t, ids, labels, m.B, T, mb_row_grad, &m, err))) break;
        if (st) {
            st->loss += m.st.loss;
            st->kl_sum += m.st.kl_sum;
            st->ratio_sum += m.st.ratio_sum;
            st->clipped += m.st.clipped;
            st->tokens += m.st.tokens;
        }
    }
    free(ids);
    return rc;
}

int grpo_token_logp(struct dsm_train *t, const struct grpo_seq *seqs, int n, float *const *logp,
                    struct dsm_err *err) {
    int max_rows, max_seq, rc;
    dsm_train_sizes(t, &max_rows, &max_seq);
    if ((rc = check_seqs(seqs, n, max_seq, err))) return rc;
    int32_t *ids = dsm_calloc((size_t)max_rows * 2, sizeof(int32_t), err);
    float *lp = dsm_calloc((size_t)max_rows, sizeof(float), err);
    if (!ids || !lp) {
        free(ids);
        free(lp);
        return DSM_ENOMEM;
    }
    for (int s0 = 0, s1, T; s0 < n; s0 = s1) {
        next_batch(seqs, n, s0, max_rows, &s1, &T);
        pack(seqs, s0, s1 - s0, T, ids, ids + max_rows);
        if ((rc = dsm_train_token_logp(t, ids, s1 - s0, T, lp, err))) break;
        for (int b = 0; b < s1 - s0; b++) {
            const struct grpo_seq *s = &seqs[s0 + b];
            /* lp[b][i] predicts token i+1: completion token p is at i = p - 1 */
            for (int p = s->prompt_len; p < s->T; p++) logp[s0 + b][p - s->prompt_len] = lp[(size_t)b * (T - 1) + p - 1];
        }
    }
    free(ids);
    free(lp);
    return rc;
}
