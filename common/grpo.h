/* grpo.h - Group Relative Policy Optimization (DeepSeekMath, arXiv 2402.03300; SPEC §2).
 *
 * For a group of G outputs o_1..o_G of one prompt with rewards r_i:
 *   advantage   A_i = (r_i - mean(r)) / std(r)   (std with n-1; every A_i = 0 when std == 0),
 *               given to every token of o_i;
 *   per token   l = -min(rho·A, clip(rho, 1-eps, 1+eps)·A) + beta·(q - log q - 1),
 *               rho = pi/pi_old (the sampling policy), q = pi_ref/pi (k3 estimator of KL(pi||ref));
 *   loss        (1/G) Σ_i (1/|o_i|) Σ_t l_{i,t}.
 * pi is the live policy (differentiated), pi_old and pi_ref are constants given as per-token
 * log-probabilities of the output's tokens.
 *
 * d l / d log pi = -rho·A when the unclipped term is the one min picks (always when rho is
 * inside the clip range), 0 when the clipped term is picked and rho is outside the range, plus
 * beta·(1 - q). grpo_backward turns these into gradients through dsm_train_batch_rowgrad.
 *
 * Pure functions except grpo_backward (one call at a time per trainer).
 */
#ifndef DSM_GRPO_H
#define DSM_GRPO_H

#include <stdint.h>

#include "common/err.h"

struct dsm_train;

struct grpo_opts {
    double beta; /* KL coefficient, >= 0 (SPEC default 0.04) */
    double eps;  /* clip range, > 0 (SPEC default 0.2) */
};

/* beta 0.04, eps 0.2. */
void grpo_opts_default(struct grpo_opts *o);

/* adv[i] = (r[i] - mean) / std over r[0..G) with the unbiased std; all 0 when G < 2 or std == 0
 * (also when the spread is below 1e-12, so rounding noise never becomes a signal). */
void grpo_advantages(const double *r, int G, double *adv);

/* k3 = q - log q - 1 with log q = ref_logp - logp (>= 0; 0 when the two agree). */
double grpo_k3(double logp, double ref_logp);

/* The per-token loss l and, in *dlogp, d l / d logp (see above). *clipped (may be NULL) is 1 when
 * the clipped term decides the surrogate (its gradient is then zero). */
double grpo_token_loss(double logp, double old_logp, double ref_logp, double adv, const struct grpo_opts *o,
                       double *dlogp, int *clipped);

/* One output of a group, for the trainer: the whole sequence ids[0..T) = prompt then completion,
 * completion tokens at positions prompt_len..T-1 (T - prompt_len >= 1 of them). old_logp and
 * ref_logp hold one value per completion token (index t - prompt_len); ref_logp may be NULL when
 * beta == 0. */
struct grpo_seq {
    const int32_t *ids;
    int T;
    int prompt_len;
    const float *old_logp;
    const float *ref_logp;
    double adv;
};

struct grpo_stats {
    double loss;      /* Σ over the sequences of (1/|o|) Σ_t l, times scale */
    double kl_sum;    /* Σ k3 over tokens */
    double ratio_sum; /* Σ rho over tokens */
    long clipped;     /* tokens whose surrogate gradient was clipped to 0 */
    long tokens;      /* completion tokens */
};

/* Add to the trainer's gradients d/dθ of scale · Σ_s (1/|o_s|) Σ_t l_{s,t} over seqs[0..n), in
 * micro-batches that fit the trainer (max_rows / max_seq); stats are added into *st (may be
 * NULL; zero it first). The loss of a group is scale = 1/G. Errors: a sequence longer than the
 * trainer's max_seq or with no completion token (names it), trainer errors. */
int grpo_backward(struct dsm_train *t, const struct grpo_seq *seqs, int n, double scale, const struct grpo_opts *o,
                  struct grpo_stats *st, struct dsm_err *err);

/* The log-probabilities under t's model of every sequence's completion tokens, into
 * logp[s][0..T_s - prompt_len_s) (the caller's arrays; logp[s] must hold that many floats).
 * Only ids, T and prompt_len of seqs are read. */
int grpo_token_logp(struct dsm_train *t, const struct grpo_seq *seqs, int n, float *const *logp,
                    struct dsm_err *err);

#endif
