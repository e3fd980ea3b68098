/* mathexpr_impl.h - internals shared by mathexpr.c (parser) and mathexpr_eval.c (evaluation).
 *
 * Invariants: nodes live in one array owned by the context and are referred to by index; a child
 * index is always smaller than its parent's (trees are built bottom-up), so no cycles exist and
 * every walk terminates. Every parse and evaluation step is charged to ctx->steps_left; once it
 * reaches zero (or the deadline passes) ctx->limit_hit is set and every call fails fast.
 */
#ifndef DSM_MATHEXPR_IMPL_H
#define DSM_MATHEXPR_IMPL_H

#include <stdint.h>

#include "common/mathexpr.h"

enum mx_op {
    MX_NUM,   /* exact rational n/d */
    MX_FNUM,  /* a literal too long for int64: double f only */
    MX_VAR,   /* variable number n */
    MX_PI,
    MX_E,
    MX_I,
    MX_INF,
    MX_ADD,
    MX_SUB,
    MX_MUL,
    MX_DIV,
    MX_POW,
    MX_NEG,
    MX_FACT,  /* a! */
    MX_BINOM, /* binom(a, b) */
    MX_ROOT,  /* a^(1/b); b = -1 means square root */
    MX_FN,    /* fn(a), fn in enum mx_fn */
    MX_LOG,   /* log of a in base b; b = -1 means natural */
};

enum mx_fn {
    MX_FN_SIN, MX_FN_COS, MX_FN_TAN, MX_FN_COT, MX_FN_SEC, MX_FN_CSC,
    MX_FN_ASIN, MX_FN_ACOS, MX_FN_ATAN,
    MX_FN_SINH, MX_FN_COSH, MX_FN_TANH,
    MX_FN_EXP, MX_FN_ABS, MX_FN_FLOOR, MX_FN_CEIL,
};

struct mx_node {
    uint8_t op;
    uint8_t fn;
    uint8_t literal_int; /* an integer written as plain digits (for mixed numbers 4\frac{2}{3}) */
    int a, b;
    int64_t n, d;
    double f;
};

#define MX_MAX_VARS 48
#define MX_VAR_NAME 24

struct mx_ctx {
    struct mx_node *nodes;
    uint8_t *mark; /* max_nodes bytes: reachability scratch for tree walks */
    int eval_depth; /* current recursion depth of an evaluator */
    int nnodes, max_nodes;
    char var_names[MX_MAX_VARS][MX_VAR_NAME];
    int nvars;
    long max_steps, steps_left;
    double time_limit_s, deadline;
    int limit_hit;
    uint64_t rng;
};

/* Charge one step; returns 0 when the budget or the deadline is exhausted (limit_hit set). */
int mx_step(struct mx_ctx *ctx);

/* A new node (fields zeroed except op, a, b); -1 when the pool or the budget is exhausted. */
int mx_node_new(struct mx_ctx *ctx, enum mx_op op, int a, int b);

/* Mark in ctx->mark every node reachable from root (children have smaller indices, so one pass
 * from root down suffices); returns the OR of (1 << op) over the marked nodes. */
uint32_t mx_mark_tree(struct mx_ctx *ctx, int root);

/* Evaluator recursion bound: trees built by loops (a+b+c+...) can be as deep as the pool. */
#define MX_MAX_EVAL_DEPTH 4096

#endif
