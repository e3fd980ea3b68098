/* mathexpr.h - a small LaTeX math expression parser and evaluator, for answer checking.
 *
 * Parses the expressions that final answers are written in (numbers, variables, + - * / ^,
 * implicit multiplication, \frac, \sqrt[n]{}, \binom, n!, \pi, e, i, \infty, trigonometric and
 * hyperbolic functions and their inverses, \log_b, \ln, \exp, |x|, \lfloor\rfloor, \lceil\rceil,
 * mixed numbers like 4\frac{2}{3}, scientific notation 1.5e3) into a tree held by a context, and
 * decides whether two trees denote the same value or function: exact rational arithmetic (int64
 * with overflow detection) where it applies, otherwise evaluation in complex doubles at random
 * points shared by both sides.
 *
 * Conventions: the letter e is Euler's number and i the imaginary unit; every other letter (with
 * its subscript and primes) and every unknown command (\alpha, \theta, ...) is a variable; a run
 * of letters is a product (xy = x*y); \log without a base is the natural logarithm.
 *
 * Limits: every context has a node capacity, a step budget and a wall-clock limit; parsing or
 * comparing past them fails with DSM_EINVAL and mx_ctx_limit_hit() returns 1. Nesting deeper than
 * MX_MAX_DEPTH is a syntax error. Nothing here can hang, recurse without bound or overflow.
 *
 * Thread safety: a context is used by one thread at a time; distinct contexts are independent.
 */
#ifndef DSM_MATHEXPR_H
#define DSM_MATHEXPR_H

#include <stddef.h>

#include "common/err.h"

#define MX_MAX_DEPTH 96

struct mx_ctx;

enum mx_verdict { MX_DIFFERENT = 0, MX_EQUAL = 1, MX_UNKNOWN = 2 };

/* How a verdict was reached (for reporting). */
enum mx_how { MX_HOW_EXACT = 0, MX_HOW_FLOAT = 1, MX_HOW_POINTS = 2 };

/* Create a context holding at most max_nodes nodes and charging at most max_steps steps and
 * time_limit_s seconds (0 = no time limit) between two mx_ctx_reset() calls. *out is new; free it
 * with mx_ctx_destroy(). Errors: DSM_EINVAL for max_nodes < 16 or max_steps < 1, DSM_ENOMEM. */
int mx_ctx_create(int max_nodes, long max_steps, double time_limit_s, struct mx_ctx **out,
                  struct dsm_err *err);

/* Free ctx and everything it holds. NULL is fine. */
void mx_ctx_destroy(struct mx_ctx *ctx);

/* Drop every node and variable and restore the full step and time budget. */
void mx_ctx_reset(struct mx_ctx *ctx);

/* 1 when the step budget or the time limit was exhausted since the last reset. */
int mx_ctx_limit_hit(const struct mx_ctx *ctx);

/* Steps charged since the last reset. */
long mx_ctx_steps(const struct mx_ctx *ctx);

/* Parse s[0..len) (need not be NUL-terminated) as one expression; *root receives the node.
 * Variables are interned in ctx, so two expressions parsed into one context share them.
 * Errors: DSM_EINVAL naming the offset of a syntax error, or saying the limit was hit. The input
 * is not kept. */
int mx_parse(struct mx_ctx *ctx, const char *s, size_t len, int *root, struct dsm_err *err);

/* New node a - b (for comparing equations lhs - rhs); -1 when the context is full. */
int mx_sub(struct mx_ctx *ctx, int a, int b);

/* New node a * num / den; -1 when the context is full. */
int mx_scale(struct mx_ctx *ctx, int a, long num, long den);

/* 1 when the tree at root contains a variable. */
int mx_has_vars(struct mx_ctx *ctx, int root);

/* 1 when root is a plain real constant: no variables and no i (used to tell numbers apart from
 * expressions in reports). Both walks use the context's scratch, hence the non-const ctx. */
int mx_is_constant(struct mx_ctx *ctx, int root);

/* Decide whether trees a and b are equal. With proportional = 1, decide whether a = c*b for some
 * constant c != 0 (equations written as lhs - rhs). rel_tol is the relative tolerance used
 * whenever a side is not an exact rational. *verdict is MX_UNKNOWN when too few evaluation points
 * were defined (division by zero everywhere, overflow to infinity). *how says which method
 * decided (may be NULL). Errors: DSM_EINVAL when the limit was hit. Deterministic: the random
 * points come from a fixed seed. */
int mx_compare(struct mx_ctx *ctx, int a, int b, int proportional, double rel_tol,
               enum mx_verdict *verdict, enum mx_how *how, struct dsm_err *err);

#endif
