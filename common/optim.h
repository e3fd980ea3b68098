/* optim.h - optimizers (AdamW, SGD), learning-rate schedules and global-norm gradient clipping
 * for a list of float32 parameter tensors and their gradients (dsm_train_params gives the list
 * of a training run: every model weight, or only the LoRA matrices).
 *
 * AdamW follows PyTorch's torch.optim.AdamW (decoupled weight decay, bias correction):
 *   m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²; p -= lr (wd p + (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)).
 * SGD is plain SGD with L2 weight decay: p -= lr (g + wd p). As Hugging Face's Trainer does, weight
 * decay applies to weight matrices only, never to biases or norm weights. Parameters and moments
 * are float32 (the model's weights are the master copy; moments live on the same backend).
 *
 * Schedules (Hugging Face get_*_schedule_with_warmup): during warmup lr(step) = lr * step / warmup
 * (step counted from 0, so the first update uses lr 0 when warmup > 0); then constant, or cosine
 * lr * 0.5 (1 + cos(pi * (step - warmup) / (total - warmup))) reaching 0 at total.
 *
 * Clipping (torch.nn.utils.clip_grad_norm_): with max_grad_norm > 0 and global L2 norm n of all
 * gradients above it, gradients are scaled by max_grad_norm / (n + 1e-6).
 */
#ifndef DSM_OPTIM_H
#define DSM_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "kernels/backend.h"

enum dsm_optim_kind { DSM_OPTIM_ADAMW = 0, DSM_OPTIM_SGD = 1 };
enum dsm_sched_kind { DSM_SCHED_CONSTANT = 0, DSM_SCHED_COSINE = 1 };

struct dsm_optim_cfg {
    enum dsm_optim_kind kind;
    double lr, weight_decay, beta1, beta2, eps;
    double max_grad_norm; /* 0 = no clipping */
    enum dsm_sched_kind sched;
    long warmup_steps, total_steps;
};

/* AdamW, lr 1e-4, wd 0, betas (0.9, 0.999), eps 1e-8, clip 1.0, cosine, no warmup. */
void dsm_optim_cfg_default(struct dsm_optim_cfg *c);

/* Learning rate of (0-based) optimizer step `step` under c's schedule. */
double dsm_sched_lr(const struct dsm_optim_cfg *c, long step);

/* One parameter tensor the optimizer updates. */
struct dsm_optim_tensor {
    float *p, *g;      /* device memory: the parameter (updated in place) and its gradient */
    size_t n;          /* elements */
    int ndim;          /* 1 or 2, with shape: for checkpoints */
    int64_t shape[2];
    int decay;         /* 1: weight decay applies (weight matrices, LoRA matrices) */
    char name[160];    /* Hugging Face / PEFT tensor name */
};

struct dsm_optim;

/* Optimizer state (moments zero, step counter 0) for the n tensors ts (copied; the memory they
 * point to is borrowed and must outlive the optimizer) on be. cfg is copied. Caller destroys
 * *out. Errors: DSM_ENOMEM. */
int dsm_optim_create(struct dsm_backend *be, const struct dsm_optim_tensor *ts, int n,
                     const struct dsm_optim_cfg *cfg, struct dsm_optim **out, struct dsm_err *err);
void dsm_optim_destroy(struct dsm_optim *o);

/* One update from the gradients (scaled by clipping when needed), with the scheduled learning
 * rate; increments the step counter. *grad_norm receives the global norm before clipping and *lr
 * the rate used (either may be NULL). Does not zero the gradients. Errors: a backend failure; a
 * non-finite gradient norm (DSM_EINVAL, nothing updated). */
int dsm_optim_step(struct dsm_optim *o, double *grad_norm, double *lr, struct dsm_err *err);

/* Steps done so far; set it when resuming. */
long dsm_optim_steps(const struct dsm_optim *o);
void dsm_optim_set_steps(struct dsm_optim *o, long steps);

/* The tensors, and the device pointers of tensor i's first (which 0) and second (which 1)
 * moment (NULL for SGD, which keeps none). */
int dsm_optim_count(const struct dsm_optim *o);
const struct dsm_optim_tensor *dsm_optim_tensor_at(const struct dsm_optim *o, int i);
float *dsm_optim_moment(struct dsm_optim *o, int i, int which);

#endif
