/* mathexpr_eval.c - evaluation and comparison of parsed expressions (see mathexpr.h).
 *
 * Two evaluators over the same tree:
 *   exact: rationals n/d in int64 (d > 0, reduced); any overflow, irrational value or transcendental
 *          function answers "not exact" and the caller falls back to floating point;
 *   float: complex doubles (so sqrt(-4), i and complex roots just work); domain errors give NaN.
 * Comparison evaluates both trees at up to MX_TRIES points (variables get the same random value on
 * both sides), exactly where both sides allow (rationals k/m), else in floating point at small
 * values (+-[0.25, 2.25]) with a relative tolerance.
 * Recursion depth equals tree depth, which the parser bounds by MX_MAX_DEPTH (x3 for the grammar
 * levels); nodes built by mx_sub/mx_scale add at most one level each.
 */
#include <complex.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/mathexpr.h"
#include "common/mathexpr_impl.h"

#define MX_POINTS 6  /* valid points needed for "equal" with variables */
#define MX_MIN_POINTS 3
#define MX_TRIES 16

enum ex_status { EX_OK = 0, EX_NO = 1, EX_UNDEF = 2, EX_LIMIT = 3 };

struct rat {
    int64_t n, d;
};

/* ---- exact rationals -------------------------------------------------------------------- */

static int64_t gcd64(int64_t a, int64_t b) {
    if (a < 0) a = -a;
    if (b < 0) b = -b;
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int rat_make(int64_t n, int64_t d, struct rat *out) {
    if (d == 0) return EX_UNDEF;
    if (n == INT64_MIN || d == INT64_MIN) return EX_NO;
    if (d < 0) n = -n, d = -d;
    int64_t g = gcd64(n, d);
    if (g > 1) n /= g, d /= g;
    out->n = n;
    out->d = d;
    return EX_OK;
}

static int rat_add(struct rat a, struct rat b, struct rat *out) {
    int64_t g = gcd64(a.d, b.d), x, y, n, d;
    if (__builtin_mul_overflow(a.n, b.d / g, &x) || __builtin_mul_overflow(b.n, a.d / g, &y) ||
        __builtin_add_overflow(x, y, &n) || __builtin_mul_overflow(a.d / g, b.d, &d))
        return EX_NO;
    return rat_make(n, d, out);
}

static int rat_mul(struct rat a, struct rat b, struct rat *out) {
    int64_t g1 = gcd64(a.n, b.d), g2 = gcd64(b.n, a.d), n, d;
    if (g1 == 0) g1 = 1;
    if (g2 == 0) g2 = 1;
    if (__builtin_mul_overflow(a.n / g1, b.n / g2, &n) ||
        __builtin_mul_overflow(a.d / g2, b.d / g1, &d))
        return EX_NO;
    return rat_make(n, d, out);
}

static int rat_inv(struct rat a, struct rat *out) { return rat_make(a.d, a.n, out); }

/* x^e for an integer e, by squaring, failing on overflow. */
static int rat_ipow(struct mx_ctx *ctx, struct rat x, int64_t e, struct rat *out) {
    if (e < 0) {
        if (x.n == 0) return EX_UNDEF;
        if (e == INT64_MIN) return EX_NO;
        int rc = rat_inv(x, &x);
        if (rc) return rc;
        e = -e;
    }
    struct rat r = {1, 1};
    if (x.n == 0) {
        *out = e == 0 ? r : x;
        return EX_OK;
    }
    if (x.d == 1 && (x.n == 1 || x.n == -1)) {
        r.n = (x.n == -1 && (e & 1)) ? -1 : 1;
        *out = r;
        return EX_OK;
    }
    if (e > 128) return EX_NO; /* |x| >= 2 or <= 1/2: 2^128 overflows anyway */
    while (e) {
        if (!mx_step(ctx)) return EX_LIMIT;
        if (e & 1 && rat_mul(r, x, &r)) return EX_NO;
        e >>= 1;
        if (e && rat_mul(x, x, &x)) return EX_NO;
    }
    *out = r;
    return EX_OK;
}

/* The exact k-th root of a non-negative integer, or -1. */
static int64_t iroot(int64_t v, int64_t k) {
    if (v < 2) return v;
    double g = pow((double)v, 1.0 / (double)k);
    for (int64_t c = (int64_t)g - 1; c <= (int64_t)g + 1; c++) {
        if (c < 0) continue;
        int64_t p = 1;
        int over = 0;
        for (int64_t i = 0; i < k && !over; i++) over = __builtin_mul_overflow(p, c, &p);
        if (!over && p == v) return c;
    }
    return -1;
}

static int rat_root(struct rat x, int64_t k, struct rat *out) {
    if (k <= 0 || k > 64) return EX_NO;
    int neg = x.n < 0;
    if (neg && !(k & 1)) return EX_NO; /* imaginary: the float path handles it */
    int64_t rn = iroot(neg ? -x.n : x.n, k), rd = iroot(x.d, k);
    if (rn < 0 || rd < 0) return EX_NO;
    return rat_make(neg ? -rn : rn, rd, out);
}

static int is_int(struct rat x) { return x.d == 1; }

static int eval_exact_node(struct mx_ctx *ctx, int k, const struct rat *vars, struct rat *out);

static int eval_exact(struct mx_ctx *ctx, int k, const struct rat *vars, struct rat *out) {
    if (ctx->eval_depth >= MX_MAX_EVAL_DEPTH) return EX_NO;
    ctx->eval_depth++;
    int rc = eval_exact_node(ctx, k, vars, out);
    ctx->eval_depth--;
    return rc;
}

static int eval_exact_node(struct mx_ctx *ctx, int k, const struct rat *vars, struct rat *out) {
    if (!mx_step(ctx)) return EX_LIMIT;
    const struct mx_node *nd = &ctx->nodes[k];
    struct rat a, b;
    int rc;
    switch ((enum mx_op)nd->op) {
    case MX_NUM: return rat_make(nd->n, nd->d, out);
    case MX_VAR: *out = vars[nd->n]; return EX_OK;
    case MX_FNUM:
    case MX_PI:
    case MX_E:
    case MX_I:
    case MX_INF:
    case MX_LOG: return EX_NO;
    default: break;
    }
    if ((rc = eval_exact(ctx, nd->a, vars, &a))) return rc;
    if (nd->b >= 0 && nd->op != MX_ROOT && (rc = eval_exact(ctx, nd->b, vars, &b))) return rc;
    switch ((enum mx_op)nd->op) {
    case MX_ADD: return rat_add(a, b, out);
    case MX_SUB: b.n = -b.n; return rat_add(a, b, out);
    case MX_MUL: return rat_mul(a, b, out);
    case MX_DIV:
        if ((rc = rat_inv(b, &b))) return rc;
        return rat_mul(a, b, out);
    case MX_NEG: a.n = -a.n; *out = a; return EX_OK;
    case MX_POW:
        if (is_int(b)) return rat_ipow(ctx, a, b.n, out);
        if (b.d > 64) return EX_NO;
        if ((rc = rat_root(a, b.d, &a))) return rc;
        return rat_ipow(ctx, a, b.n, out);
    case MX_ROOT: {
        int64_t idx = 2;
        if (nd->b >= 0) {
            if ((rc = eval_exact(ctx, nd->b, vars, &b))) return rc;
            if (!is_int(b) || b.n < 1) return EX_NO;
            idx = b.n;
        }
        return rat_root(a, idx, out);
    }
    case MX_FACT: {
        if (!is_int(a) || a.n < 0) return EX_NO;
        if (a.n > 20) return EX_NO;
        int64_t f = 1;
        for (int64_t i = 2; i <= a.n; i++) f *= i;
        out->n = f, out->d = 1;
        return EX_OK;
    }
    case MX_BINOM: {
        if (!is_int(a) || !is_int(b) || a.n < 0) return EX_NO;
        if (b.n < 0 || b.n > a.n) {
            out->n = 0, out->d = 1;
            return EX_OK;
        }
        int64_t kk = b.n < a.n - b.n ? b.n : a.n - b.n;
        struct rat r = {1, 1};
        for (int64_t i = 1; i <= kk; i++) {
            if (!mx_step(ctx)) return EX_LIMIT;
            struct rat f = {a.n - kk + i, i};
            if (rat_mul(r, f, &r)) return EX_NO;
        }
        *out = r;
        return EX_OK;
    }
    case MX_FN:
        switch (nd->fn) {
        case MX_FN_ABS: if (a.n < 0) a.n = -a.n; *out = a; return EX_OK;
        case MX_FN_FLOOR:
        case MX_FN_CEIL: {
            int64_t q = a.n / a.d, r = a.n % a.d;
            if (r != 0 && a.n < 0 && nd->fn == MX_FN_FLOOR) q--;
            if (r != 0 && a.n > 0 && nd->fn == MX_FN_CEIL) q++;
            out->n = q, out->d = 1;
            return EX_OK;
        }
        default: return EX_NO;
        }
    default: return EX_NO;
    }
}

/* ---- complex floating point ------------------------------------------------------------- */

static double complex cpow_int(double complex x, long e) {
    double complex r = 1;
    int neg = e < 0;
    unsigned long u = neg ? (unsigned long)(-(e + 1)) + 1 : (unsigned long)e;
    while (u) {
        if (u & 1) r *= x;
        u >>= 1;
        if (u) x *= x;
    }
    return neg ? 1 / r : r;
}

static int real_like(double complex z) { return fabs(cimag(z)) <= 1e-12 * (1 + fabs(creal(z))); }

static double complex eval_float_node(struct mx_ctx *ctx, int k, const double complex *vars);

static double complex eval_float(struct mx_ctx *ctx, int k, const double complex *vars) {
    if (ctx->eval_depth >= MX_MAX_EVAL_DEPTH) return NAN;
    ctx->eval_depth++;
    double complex r = eval_float_node(ctx, k, vars);
    ctx->eval_depth--;
    /* a signed-zero imaginary part would put sqrt(-2) on the wrong side of the branch cut */
    if (cimag(r) == 0) r = creal(r);
    return r;
}

static double complex eval_float_node(struct mx_ctx *ctx, int k, const double complex *vars) {
    if (!mx_step(ctx)) return NAN;
    const struct mx_node *nd = &ctx->nodes[k];
    switch ((enum mx_op)nd->op) {
    case MX_NUM: return (double)nd->n / (double)nd->d;
    case MX_FNUM: return nd->f;
    case MX_VAR: return vars[nd->n];
    case MX_PI: return M_PI;
    case MX_E: return M_E;
    case MX_I: return I;
    case MX_INF: return INFINITY;
    default: break;
    }
    double complex a = eval_float(ctx, nd->a, vars);
    double complex b = 0;
    if (nd->b >= 0) b = eval_float(ctx, nd->b, vars);
    if (ctx->limit_hit) return NAN;
    switch ((enum mx_op)nd->op) {
    case MX_ADD: return a + b;
    case MX_SUB: return a - b;
    case MX_MUL: return a * b;
    case MX_DIV: {
        if (b == 0) return NAN;
        double complex q = a / b;
        return q == 0 && a != 0 ? NAN : q; /* underflow (1/2004!): not a real zero */
    }
    case MX_NEG: return -a;
    case MX_POW: {
        double complex r;
        if (real_like(b) && fabs(creal(b)) <= 64 && creal(b) == floor(creal(b)))
            r = cpow_int(a, (long)creal(b));
        else if (a == 0) return creal(b) > 0 ? 0 : NAN;
        else if (real_like(a) && real_like(b) && creal(a) > 0) r = pow(creal(a), creal(b));
        else r = cpow(a, b);
        return r == 0 && a != 0 ? NAN : r; /* underflow (2^{-5000}): not a real zero */
    }
    case MX_ROOT: {
        double n = nd->b >= 0 ? creal(b) : 2;
        if (nd->b >= 0 && !real_like(b)) return NAN;
        if (n == 2) return real_like(a) && creal(a) >= 0 ? sqrt(creal(a)) : csqrt(a);
        if (real_like(a) && n == floor(n) && fmod(n, 2) != 0)
            return creal(a) < 0 ? -pow(-creal(a), 1 / n) : pow(creal(a), 1 / n);
        if (real_like(a) && creal(a) >= 0) return pow(creal(a), 1 / n);
        return cpow(a, 1 / n);
    }
    case MX_FACT:
        if (!real_like(a) || creal(a) < 0) return NAN;
        return tgamma(creal(a) + 1);
    case MX_BINOM: {
        if (!real_like(b) || creal(b) != floor(creal(b))) return NAN;
        double kk = creal(b);
        if (kk < 0) return 0;
        if (kk > 1000) return real_like(a) ? exp(lgamma(creal(a) + 1) - lgamma(kk + 1) -
                                                 lgamma(creal(a) - kk + 1))
                                           : NAN;
        double complex r = 1;
        for (int i = 1; i <= (int)kk; i++) {
            if (!mx_step(ctx)) return NAN;
            r *= (a - kk + i) / i;
        }
        return r;
    }
    case MX_LOG: {
        if (a == 0) return NAN;
        double complex la = real_like(a) && creal(a) > 0 ? log(creal(a)) : clog(a);
        if (nd->b < 0) return la;
        if (b == 0 || b == 1) return NAN;
        return la / (real_like(b) && creal(b) > 0 ? log(creal(b)) : clog(b));
    }
    case MX_FN:
        switch (nd->fn) {
        case MX_FN_SIN: return csin(a);
        case MX_FN_COS: return ccos(a);
        case MX_FN_TAN: return ctan(a);
        case MX_FN_COT: return 1 / ctan(a);
        case MX_FN_SEC: return 1 / ccos(a);
        case MX_FN_CSC: return 1 / csin(a);
        case MX_FN_ASIN: return casin(a);
        case MX_FN_ACOS: return cacos(a);
        case MX_FN_ATAN: return catan(a);
        case MX_FN_SINH: return csinh(a);
        case MX_FN_COSH: return ccosh(a);
        case MX_FN_TANH: return ctanh(a);
        case MX_FN_EXP: {
            double complex r = cexp(a);
            return r == 0 ? NAN : r;
        }
        case MX_FN_ABS: return cabs(a);
        case MX_FN_FLOOR: return real_like(a) ? floor(creal(a)) : NAN;
        case MX_FN_CEIL: return real_like(a) ? ceil(creal(a)) : NAN;
        default: return NAN;
        }
    default: return NAN;
    }
}

/* ---- comparison ------------------------------------------------------------------------- */

static uint64_t rng_next(struct mx_ctx *ctx) {
    uint64_t x = ctx->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    ctx->rng = x;
    return x;
}

static int bad(double complex z) { return isnan(creal(z)) || isnan(cimag(z)); }

/* 1 close, 0 not close, -1 undecidable at this point (NaN, or infinities we cannot order).
 * inf_ok: 1 when both trees contain \infty, so an infinite value is meant, not an overflow. */
static int close_enough(double complex a, double complex b, double rel_tol, int inf_ok) {
    if (bad(a) || bad(b)) return -1;
    int ia = isinf(creal(a)) || isinf(cimag(a)), ib = isinf(creal(b)) || isinf(cimag(b));
    if (ia || ib) {
        if (!inf_ok) return -1;
        if (ia && ib && cimag(a) == 0 && cimag(b) == 0) return creal(a) == creal(b);
        return ia && ib ? -1 : 0;
    }
    double m = fmax(cabs(a), cabs(b));
    if (isinf(m)) return -1;
    /* purely relative, except against an exact zero: sin(pi) = 1.2e-16 must equal 0, but
     * 2.88e-19 must not equal 3.88e-19 */
    if (a == 0 || b == 0) return m <= 1e-12 ? 1 : 0;
    return cabs(a - b) <= rel_tol * m ? 1 : 0;
}

/* Set bit v of *used for each variable v in the tree; returns 1 when it contains \infty. */
static int mark_vars(struct mx_ctx *ctx, int root, uint64_t *used) {
    uint32_t ops = mx_mark_tree(ctx, root);
    if ((ops >> MX_VAR) & 1)
        for (int k = 0; k <= root; k++)
            if (ctx->mark[k] && ctx->nodes[k].op == MX_VAR) *used |= 1ull << ctx->nodes[k].n;
    return (ops >> MX_INF) & 1;
}

int mx_compare(struct mx_ctx *ctx, int a, int b, int proportional, double rel_tol,
               enum mx_verdict *verdict, enum mx_how *how, struct dsm_err *err) {
    struct rat rv[MX_MAX_VARS];
    double complex fv[MX_MAX_VARS];
    uint64_t used = 0;
    enum mx_how how_ = MX_HOW_EXACT;
    *verdict = MX_UNKNOWN;
    if (a < 0 || b < 0 || a >= ctx->nnodes || b >= ctx->nnodes)
        return dsm_errf(err, DSM_EINVAL, "mathexpr: compare of a node that does not exist");
    int inf_ok = mark_vars(ctx, a, &used) & mark_vars(ctx, b, &used);
    int valid = 0, need = used ? MX_POINTS : 1;
    double complex ratio = 0;
    int have_ratio = 0;
    for (int t = 0; t < MX_TRIES && valid < need; t++) {
        for (int v = 0; v < ctx->nvars; v++) {
            /* values k/m with k in [2,41], m in [1,3], sign mostly positive: exact-friendly */
            int64_t kk = 2 + (int64_t)(rng_next(ctx) % 40), m = 1 + (int64_t)(rng_next(ctx) % 3);
            if (t >= MX_TRIES / 2 && rng_next(ctx) % 3 == 0) kk = -kk;
            rat_make(kk, m, &rv[v]);
            /* the floating-point path uses small magnitudes instead, in +-[0.25, 2.25], so that
             * exponentials do not swamp the other terms (e^41 would hide a difference of e^-2t) */
            fv[v] = 0.25 + 2.0 * (double)(rng_next(ctx) >> 11) * 0x1p-53;
            if (kk < 0) fv[v] = -fv[v];
        }
        int verdict_here = -1;
        if (!proportional) {
            struct rat ea, eb;
            int ra = eval_exact(ctx, a, rv, &ea);
            int rb = ra == EX_OK ? eval_exact(ctx, b, rv, &eb) : EX_NO;
            if (ra == EX_LIMIT || rb == EX_LIMIT || ctx->limit_hit) break;
            if (ra == EX_OK && rb == EX_OK) verdict_here = ea.n == eb.n && ea.d == eb.d;
        }
        if (verdict_here < 0) {
            double complex fa = eval_float(ctx, a, fv), fb = eval_float(ctx, b, fv);
            if (ctx->limit_hit) break;
            if (!proportional) {
                verdict_here = close_enough(fa, fb, rel_tol, inf_ok);
            } else {
                int za = close_enough(fa, 0, rel_tol, 0) == 1, zb = close_enough(fb, 0, rel_tol, 0) == 1;
                if (bad(fa) || bad(fb) || isinf(cabs(fa)) || isinf(cabs(fb))) verdict_here = -1;
                else if (za || zb) verdict_here = za && zb;
                else if (!have_ratio) ratio = fa / fb, have_ratio = 1, verdict_here = 1;
                else verdict_here = close_enough(fa / fb, ratio, rel_tol, 0);
            }
            if (verdict_here >= 0) how_ = used ? MX_HOW_POINTS : MX_HOW_FLOAT;
        } else if (used) {
            how_ = how_ == MX_HOW_EXACT ? MX_HOW_POINTS : how_;
        }
        if (verdict_here == 0) {
            *verdict = MX_DIFFERENT;
            if (how) *how = how_;
            return DSM_OK;
        }
        if (verdict_here == 1) valid++;
        if (!used) break; /* a constant evaluates the same at every point */
    }
    if (ctx->limit_hit) return dsm_errf(err, DSM_EINVAL, "mathexpr: step or time limit reached");
    if (proportional && !have_ratio && valid) valid = 0; /* 0 = 0 everywhere: nothing to compare */
    *verdict = valid >= (used ? MX_MIN_POINTS : 1) ? MX_EQUAL : MX_UNKNOWN;
    if (how) *how = how_;
    return DSM_OK;
}
