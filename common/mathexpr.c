/* mathexpr.c - the context and the LaTeX expression parser (see mathexpr.h).
 *
 * A recursive-descent parser reading characters directly (LaTeX arguments without braces are one
 * character: \frac 34 is 3/4 and x^23 is x^2*3, so a token-level lexer would be wrong). Grammar:
 *   sum     := ['+'|'-'] term (('+'|'-') term)*
 *   term    := unary (('*'|\cdot|\times|'/'|\div) unary | implicit-factor)*
 *   unary   := '-' unary | '+' unary | power
 *   power   := postfix ['^' arg]
 *   postfix := primary ('!' | '%' | \% | '_' arg)*
 *   primary := number | letter | ( sum ) | [ sum ] | { sum } | \{ sum \} | |sum| | command
 * Layout commands (\left \right \big.. \, \! \; \quad \displaystyle) count as white space.
 * Depth is bounded by MX_MAX_DEPTH and every function call charges one step.
 */
#include "common/mathexpr.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/mathexpr_impl.h"
#include "common/util.h"

struct parser {
    struct mx_ctx *ctx;
    const char *s;
    size_t len, pos;
    int depth;
    int abs_depth;
    const char *why; /* first syntax error, static text */
    size_t why_pos;
};

/* ---- context ---------------------------------------------------------------------------- */

int mx_ctx_create(int max_nodes, long max_steps, double time_limit_s, struct mx_ctx **out,
                  struct dsm_err *err) {
    *out = NULL;
    if (max_nodes < 16 || max_steps < 1 || time_limit_s < 0)
        return dsm_errf(err, DSM_EINVAL, "mathexpr: bad limits (nodes %d, steps %ld, time %g)",
                        max_nodes, max_steps, time_limit_s);
    struct mx_ctx *ctx = dsm_calloc(1, sizeof *ctx, err);
    if (!ctx) return DSM_ENOMEM;
    ctx->nodes = dsm_calloc((size_t)max_nodes, sizeof *ctx->nodes, err);
    ctx->mark = ctx->nodes ? dsm_calloc((size_t)max_nodes, 1, err) : NULL;
    if (!ctx->nodes || !ctx->mark) {
        free(ctx->nodes);
        free(ctx);
        return DSM_ENOMEM;
    }
    ctx->max_nodes = max_nodes;
    ctx->max_steps = max_steps;
    ctx->time_limit_s = time_limit_s;
    mx_ctx_reset(ctx);
    *out = ctx;
    return DSM_OK;
}

void mx_ctx_destroy(struct mx_ctx *ctx) {
    if (!ctx) return;
    free(ctx->nodes);
    free(ctx->mark);
    free(ctx);
}

void mx_ctx_reset(struct mx_ctx *ctx) {
    ctx->nnodes = 0;
    ctx->nvars = 0;
    ctx->steps_left = ctx->max_steps;
    ctx->deadline = ctx->time_limit_s > 0 ? dsm_now() + ctx->time_limit_s : 0;
    ctx->limit_hit = 0;
    ctx->eval_depth = 0;
    ctx->rng = 0x9E3779B97F4A7C15ull;
}

int mx_ctx_limit_hit(const struct mx_ctx *ctx) { return ctx->limit_hit; }

long mx_ctx_steps(const struct mx_ctx *ctx) { return ctx->max_steps - ctx->steps_left; }

int mx_step(struct mx_ctx *ctx) {
    if (ctx->limit_hit) return 0;
    if (--ctx->steps_left <= 0) {
        ctx->limit_hit = 1;
        return 0;
    }
    if (ctx->deadline > 0 && (ctx->steps_left & 1023) == 0 && dsm_now() > ctx->deadline) {
        ctx->limit_hit = 1;
        return 0;
    }
    return 1;
}

int mx_node_new(struct mx_ctx *ctx, enum mx_op op, int a, int b) {
    if (!mx_step(ctx) || ctx->nnodes >= ctx->max_nodes) {
        ctx->limit_hit = 1;
        return -1;
    }
    struct mx_node *n = &ctx->nodes[ctx->nnodes];
    memset(n, 0, sizeof *n);
    n->op = (uint8_t)op;
    n->a = a;
    n->b = b;
    n->d = 1;
    return ctx->nnodes++;
}

int mx_sub(struct mx_ctx *ctx, int a, int b) { return mx_node_new(ctx, MX_SUB, a, b); }

static int num_node(struct mx_ctx *ctx, int64_t n, int64_t d) {
    int k = mx_node_new(ctx, MX_NUM, -1, -1);
    if (k >= 0) {
        ctx->nodes[k].n = n;
        ctx->nodes[k].d = d;
    }
    return k;
}

int mx_scale(struct mx_ctx *ctx, int a, long num, long den) {
    int k = num_node(ctx, num, den);
    return k < 0 ? -1 : mx_node_new(ctx, MX_MUL, a, k);
}

uint32_t mx_mark_tree(struct mx_ctx *ctx, int root) {
    uint32_t ops = 0;
    if (root < 0 || root >= ctx->nnodes) return 0;
    memset(ctx->mark, 0, (size_t)root + 1);
    ctx->mark[root] = 1;
    for (int k = root; k >= 0; k--) {
        if (!ctx->mark[k]) continue;
        const struct mx_node *n = &ctx->nodes[k];
        ops |= 1u << n->op;
        if (n->a >= 0) ctx->mark[n->a] = 1;
        if (n->b >= 0) ctx->mark[n->b] = 1;
    }
    return ops;
}

int mx_has_vars(struct mx_ctx *ctx, int root) {
    return (mx_mark_tree(ctx, root) >> MX_VAR) & 1;
}

int mx_is_constant(struct mx_ctx *ctx, int root) {
    return !(mx_mark_tree(ctx, root) & ((1u << MX_VAR) | (1u << MX_I)));
}

/* ---- lexical helpers -------------------------------------------------------------------- */

static int fail(struct parser *p, const char *why) {
    if (!p->why) {
        p->why = why;
        p->why_pos = p->pos;
    }
    return -1;
}

static int at_end(const struct parser *p) { return p->pos >= p->len; }
static int cur(const struct parser *p) { return p->pos < p->len ? (unsigned char)p->s[p->pos] : 0; }
static int ahead(const struct parser *p, size_t k) {
    return p->pos + k < p->len ? (unsigned char)p->s[p->pos + k] : 0;
}

/* Length of the command name at pos (pos at '\'): letters, or one non-letter; 0 if not '\'. */
static size_t cmd_len(const struct parser *p, size_t pos) {
    if (pos >= p->len || p->s[pos] != '\\') return 0;
    size_t k = pos + 1;
    if (k >= p->len) return 1;
    if (!isalpha((unsigned char)p->s[k])) return 2;
    while (k < p->len && isalpha((unsigned char)p->s[k])) k++;
    return k - pos;
}

static int cmd_is(const struct parser *p, size_t pos, const char *name) {
    size_t n = cmd_len(p, pos), m = strlen(name);
    return n == m + 1 && !memcmp(p->s + pos + 1, name, m);
}

static const char *const layout_cmds[] = {
    "left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "biggl",
    "biggr", "Biggl", "Biggr", "displaystyle", "textstyle", "quad", "qquad", "limits", ",", "!",
    ";", ":", " ", "middle",
};

static void skip_ws(struct parser *p) {
    for (;;) {
        int c = cur(p);
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '~') {
            p->pos++;
            continue;
        }
        if (c == '\\') {
            size_t n = cmd_len(p, p->pos);
            int hit = 0;
            for (size_t i = 0; i < DSM_ARRAY_LEN(layout_cmds) && !hit; i++)
                hit = cmd_is(p, p->pos, layout_cmds[i]);
            /* "\left." is an invisible delimiter */
            if (hit) {
                int is_lr = cmd_is(p, p->pos, "left") || cmd_is(p, p->pos, "right");
                p->pos += n;
                if (is_lr && cur(p) == '.') p->pos++;
                continue;
            }
        }
        return;
    }
}

/* ---- command tables --------------------------------------------------------------------- */

struct fn_name {
    const char *name;
    int fn;
};

static const struct fn_name fn_names[] = {
    {"sin", MX_FN_SIN},     {"cos", MX_FN_COS},       {"tan", MX_FN_TAN},
    {"cot", MX_FN_COT},     {"sec", MX_FN_SEC},       {"csc", MX_FN_CSC},
    {"arcsin", MX_FN_ASIN}, {"arccos", MX_FN_ACOS},   {"arctan", MX_FN_ATAN},
    {"sinh", MX_FN_SINH},   {"cosh", MX_FN_COSH},     {"tanh", MX_FN_TANH},
    {"exp", MX_FN_EXP},     {"ln", -1},               {"log", -1},
    {"lg", -1},
};

static int fn_lookup(const struct parser *p, size_t pos) {
    for (size_t i = 0; i < DSM_ARRAY_LEN(fn_names); i++)
        if (cmd_is(p, pos, fn_names[i].name)) return (int)i;
    return -1;
}

/* Commands that cannot start a factor (operators, closers, relations). */
static const char *const non_factor_cmds[] = {
    "cdot", "times", "div", "ast", "right", "rfloor", "rceil", "pm", "mp", "le", "leq", "ge",
    "geq", "ne", "neq", "lt", "gt", "cup", "cap", "in", "to", "rightarrow", "implies", "}",
    "\\", "%", "end", "rangle", "rvert", "rVert", "setminus", "approx", "equiv", "sim",
};

/* 1 when the text at pos can begin an implicitly multiplied factor. */
static int starts_factor(struct parser *p) {
    skip_ws(p);
    int c = cur(p);
    if (isdigit(c) || isalpha(c) || c == '(' || c == '{' || c == '[') return 1;
    if (c == '.' && isdigit(ahead(p, 1))) return 1;
    if (c == '|') return p->abs_depth == 0;
    if (c == '\\') {
        for (size_t i = 0; i < DSM_ARRAY_LEN(non_factor_cmds); i++)
            if (cmd_is(p, p->pos, non_factor_cmds[i])) return 0;
        return cmd_len(p, p->pos) > 1 && (isalpha(ahead(p, 1)) || ahead(p, 1) == '{');
    }
    return 0;
}

/* ---- grammar ---------------------------------------------------------------------------- */

static int parse_sum(struct parser *p);
static int parse_unary(struct parser *p);
static int parse_power(struct parser *p);
static int parse_primary(struct parser *p);

static int enter(struct parser *p) {
    if (!mx_step(p->ctx)) return fail(p, "step or time limit reached");
    if (++p->depth > MX_MAX_DEPTH) return fail(p, "nested too deeply");
    return 0;
}

static int leave(struct parser *p, int node) {
    p->depth--;
    return node;
}

static int expect(struct parser *p, int c) {
    skip_ws(p);
    if (cur(p) != c) return fail(p, c == ')' ? "expected ')'" : c == '}' ? "expected '}'"
                                    : c == ']' ? "expected ']'" : "expected '|'");
    p->pos++;
    return 0;
}

static int parse_number(struct parser *p) {
    size_t start = p->pos;
    int64_t n = 0, d = 1;
    int exact = 1, digits = 0, frac = 0;
    while (isdigit(cur(p)) || (cur(p) == '.' && !frac && isdigit(ahead(p, 1)))) {
        int c = cur(p);
        p->pos++;
        if (c == '.') {
            frac = 1;
            continue;
        }
        digits++;
        if (exact && (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, c - '0', &n)))
            exact = 0;
        if (exact && frac && __builtin_mul_overflow(d, 10, &d)) exact = 0;
    }
    if (!digits) return fail(p, "bad number");
    int64_t e10 = 0;
    int sci = 0;
    if ((cur(p) == 'e' || cur(p) == 'E') &&
        (isdigit(ahead(p, 1)) || ((ahead(p, 1) == '-' || ahead(p, 1) == '+') && isdigit(ahead(p, 2))))) {
        sci = 1;
        p->pos++;
        int neg = 0;
        if (cur(p) == '-' || cur(p) == '+') neg = cur(p) == '-', p->pos++;
        while (isdigit(cur(p))) {
            if (e10 < 100000) e10 = e10 * 10 + (cur(p) - '0');
            p->pos++;
        }
        if (neg) e10 = -e10;
    }
    size_t end = p->pos;
    for (int64_t k = 0; exact && (n != 0 || e10 < 0) && k < (e10 < 0 ? -e10 : e10); k++)
        if (__builtin_mul_overflow(e10 < 0 ? d : n, 10, e10 < 0 ? &d : &n)) exact = 0;
    int k;
    if (exact) {
        k = num_node(p->ctx, n, d);
        if (k >= 0) p->ctx->nodes[k].literal_int = !frac && !sci;
    } else {
        char buf[64];
        size_t m = end - start < sizeof buf - 1 ? end - start : sizeof buf - 1;
        memcpy(buf, p->s + start, m);
        buf[m] = 0;
        k = mx_node_new(p->ctx, MX_FNUM, -1, -1);
        if (k >= 0) p->ctx->nodes[k].f = strtod(buf, NULL);
        /* a literal longer than 63 characters keeps only its leading digits: scale it */
        if (k >= 0 && end - start > m) {
            size_t int_digits = 0;
            for (size_t i = start; i < end && isdigit((unsigned char)p->s[i]); i++) int_digits++;
            if (int_digits > m) p->ctx->nodes[k].f *= pow(10.0, (double)(int_digits - m));
        }
    }
    return k < 0 ? fail(p, "step or size limit reached") : k;
}

static int intern_var(struct parser *p, const char *name, size_t n) {
    struct mx_ctx *ctx = p->ctx;
    if (n >= MX_VAR_NAME) n = MX_VAR_NAME - 1;
    int v = -1;
    for (int i = 0; i < ctx->nvars && v < 0; i++)
        if (strlen(ctx->var_names[i]) == n && !memcmp(ctx->var_names[i], name, n)) v = i;
    if (v < 0) {
        if (ctx->nvars >= MX_MAX_VARS) return fail(p, "too many variables");
        v = ctx->nvars++;
        memcpy(ctx->var_names[v], name, n);
        ctx->var_names[v][n] = 0;
    }
    int k = mx_node_new(ctx, MX_VAR, -1, -1);
    if (k < 0) return fail(p, "step or size limit reached");
    ctx->nodes[k].n = v;
    return k;
}

/* Append a subscript (raw text of a group or one character) and primes to name. */
static void read_decorations(struct parser *p, char *name, size_t *n) {
    for (;;) {
        if (cur(p) == '_') {
            p->pos++;
            skip_ws(p);
            size_t from = p->pos, to;
            if (cur(p) == '{') {
                int depth = 0;
                size_t k = p->pos;
                for (; k < p->len; k++) {
                    if (p->s[k] == '{') depth++;
                    else if (p->s[k] == '}' && --depth == 0) break;
                }
                if (k >= p->len) {
                    fail(p, "unbalanced subscript");
                    return;
                }
                from = p->pos + 1;
                to = k;
                p->pos = k + 1;
            } else if (cur(p) == '\\') {
                to = from + cmd_len(p, from);
                p->pos = to;
            } else if (!at_end(p)) {
                to = from + 1;
                p->pos++;
            } else {
                fail(p, "empty subscript");
                return;
            }
            if (*n + 1 < MX_VAR_NAME) name[(*n)++] = '_';
            for (size_t k = from; k < to; k++)
                if (p->s[k] != ' ' && *n + 1 < MX_VAR_NAME) name[(*n)++] = p->s[k];
        } else if (cur(p) == '\'') {
            p->pos++;
            if (*n + 1 < MX_VAR_NAME) name[(*n)++] = '\'';
        } else {
            return;
        }
    }
}

/* A command argument: {group}, a command primary, or one character. */
static int parse_arg(struct parser *p) {
    skip_ws(p);
    int c = cur(p);
    if (c == '{') {
        p->pos++;
        int k = parse_sum(p);
        if (k < 0 || expect(p, '}') < 0) return -1;
        return k;
    }
    if (c == '\\') return parse_primary(p);
    if (isdigit(c)) {
        p->pos++;
        int k = num_node(p->ctx, c - '0', 1);
        if (k >= 0) p->ctx->nodes[k].literal_int = 1;
        return k < 0 ? fail(p, "step or size limit reached") : k;
    }
    if (isalpha(c)) {
        p->pos++;
        if (c == 'e' || c == 'i') {
            int k = mx_node_new(p->ctx, c == 'e' ? MX_E : MX_I, -1, -1);
            return k < 0 ? fail(p, "step or size limit reached") : k;
        }
        char name[2] = {(char)c, 0};
        return intern_var(p, name, 1);
    }
    if (c == '(') return parse_primary(p);
    return fail(p, "missing argument");
}

/* Function application: \sin x, \sin^2(x), \log_2 8, \sin^{-1} x. */
static int parse_function(struct parser *p, int which) {
    const char *name = fn_names[which].name;
    p->pos += strlen(name) + 1;
    int base = -1, power = -1;
    skip_ws(p);
    int is_log = fn_names[which].fn < 0;
    if (is_log && cur(p) == '_') {
        p->pos++;
        base = parse_arg(p);
        if (base < 0) return -1;
        skip_ws(p);
    }
    if (cur(p) == '^') {
        p->pos++;
        skip_ws(p);
        if (cur(p) == '-' ) {
            p->pos++;
            int a = parse_arg(p);
            if (a < 0) return -1;
            power = mx_node_new(p->ctx, MX_NEG, a, -1);
        } else {
            power = parse_arg(p);
        }
        if (power < 0) return fail(p, "step or size limit reached");
        skip_ws(p);
    }
    int arg;
    if (cur(p) == '(') {
        arg = parse_primary(p);
    } else {
        /* implicit product of factors up to an operator or the next function: \sin 2x */
        arg = parse_power(p);
        while (arg >= 0 && starts_factor(p) && fn_lookup(p, p->pos) < 0) {
            int r = parse_power(p);
            if (r < 0) return -1;
            arg = mx_node_new(p->ctx, MX_MUL, arg, r);
        }
    }
    if (arg < 0) return fail(p, "missing function argument");
    int k;
    int fn = fn_names[which].fn;
    struct mx_node *pw = power >= 0 ? &p->ctx->nodes[power] : NULL;
    int inverse = pw && pw->op == MX_NEG && p->ctx->nodes[pw->a].op == MX_NUM &&
                  p->ctx->nodes[pw->a].n == 1 && p->ctx->nodes[pw->a].d == 1 && fn >= 0 &&
                  fn <= MX_FN_TAN;
    if (inverse) {
        fn = fn == MX_FN_SIN ? MX_FN_ASIN : fn == MX_FN_COS ? MX_FN_ACOS : MX_FN_ATAN;
        power = -1;
    }
    if (fn < 0) {
        if (!strcmp(name, "lg") && base < 0) base = num_node(p->ctx, 10, 1);
        k = mx_node_new(p->ctx, MX_LOG, arg, base);
    } else {
        k = mx_node_new(p->ctx, MX_FN, arg, -1);
        if (k >= 0) p->ctx->nodes[k].fn = (uint8_t)fn;
    }
    if (k >= 0 && power >= 0) k = mx_node_new(p->ctx, MX_POW, k, power);
    return k < 0 ? fail(p, "step or size limit reached") : k;
}

/* Read "{...}" raw and return 1 when its content is in the list of words. */
static int parse_command(struct parser *p) {
    struct mx_ctx *ctx = p->ctx;
    size_t n = cmd_len(p, p->pos);
    int fi = fn_lookup(p, p->pos);
    if (fi >= 0) return parse_function(p, fi);
    if (cmd_is(p, p->pos, "frac") || cmd_is(p, p->pos, "dfrac") || cmd_is(p, p->pos, "tfrac") ||
        cmd_is(p, p->pos, "cfrac")) {
        p->pos += n;
        int a = parse_arg(p);
        if (a < 0) return -1;
        int b = parse_arg(p);
        if (b < 0) return -1;
        int k = mx_node_new(ctx, MX_DIV, a, b);
        return k < 0 ? fail(p, "step or size limit reached") : k;
    }
    if (cmd_is(p, p->pos, "binom") || cmd_is(p, p->pos, "dbinom") || cmd_is(p, p->pos, "tbinom")) {
        p->pos += n;
        int a = parse_arg(p);
        if (a < 0) return -1;
        int b = parse_arg(p);
        if (b < 0) return -1;
        int k = mx_node_new(ctx, MX_BINOM, a, b);
        return k < 0 ? fail(p, "step or size limit reached") : k;
    }
    if (cmd_is(p, p->pos, "sqrt")) {
        p->pos += n;
        skip_ws(p);
        int index = -1;
        if (cur(p) == '[') {
            p->pos++;
            index = parse_sum(p);
            if (index < 0 || expect(p, ']') < 0) return -1;
        }
        int a = parse_arg(p);
        if (a < 0) return -1;
        int k = mx_node_new(ctx, MX_ROOT, a, index);
        return k < 0 ? fail(p, "step or size limit reached") : k;
    }
    if (cmd_is(p, p->pos, "lfloor") || cmd_is(p, p->pos, "lceil")) {
        int floor_ = cmd_is(p, p->pos, "lfloor");
        p->pos += n;
        int a = parse_sum(p);
        if (a < 0) return -1;
        skip_ws(p);
        if (!cmd_is(p, p->pos, floor_ ? "rfloor" : "rceil"))
            return fail(p, floor_ ? "expected \\rfloor" : "expected \\rceil");
        p->pos += cmd_len(p, p->pos);
        int k = mx_node_new(ctx, MX_FN, a, -1);
        if (k >= 0) ctx->nodes[k].fn = floor_ ? MX_FN_FLOOR : MX_FN_CEIL;
        return k < 0 ? fail(p, "step or size limit reached") : k;
    }
    if (cmd_is(p, p->pos, "{")) { /* \{ ... \} used as a group */
        p->pos += n;
        int a = parse_sum(p);
        if (a < 0) return -1;
        skip_ws(p);
        if (!cmd_is(p, p->pos, "}")) return fail(p, "expected '\\}'");
        p->pos += 2;
        return a;
    }
    if (cmd_is(p, p->pos, "pi") || cmd_is(p, p->pos, "infty") || cmd_is(p, p->pos, "infin")) {
        int pi = cmd_is(p, p->pos, "pi");
        p->pos += n;
        int k = mx_node_new(ctx, pi ? MX_PI : MX_INF, -1, -1);
        return k < 0 ? fail(p, "step or size limit reached") : k;
    }
    static const char *const wrappers[] = {"text", "textbf", "mathrm", "mathbf", "mbox", "mathit",
                                           "boldsymbol", "mathsf", "textit", "operatorname",
                                           "mathnormal", "bm", "boxed", "fbox", "hbox"};
    for (size_t i = 0; i < DSM_ARRAY_LEN(wrappers); i++) {
        if (!cmd_is(p, p->pos, wrappers[i])) continue;
        p->pos += n;
        skip_ws(p);
        if (cur(p) != '{') return fail(p, "expected '{' after a text command");
        p->pos++;
        int a = parse_sum(p);
        if (a < 0 || expect(p, '}') < 0) return -1;
        return a;
    }
    if (n < 2 || !isalpha(ahead(p, 1))) return fail(p, "unexpected symbol command");
    for (size_t i = 0; i < DSM_ARRAY_LEN(non_factor_cmds); i++)
        if (cmd_is(p, p->pos, non_factor_cmds[i])) return fail(p, "unexpected operator command");
    if (cmd_is(p, p->pos, "begin") || cmd_is(p, p->pos, "mathbb"))
        return fail(p, "unsupported command");
    /* any other command (\alpha, \theta, \ell, \angle ...) is a variable named by it */
    char name[MX_VAR_NAME];
    size_t m = n < MX_VAR_NAME ? n : MX_VAR_NAME - 1;
    memcpy(name, p->s + p->pos, m);
    p->pos += n;
    read_decorations(p, name, &m);
    if (p->why) return -1;
    return intern_var(p, name, m);
}

static int parse_primary(struct parser *p) {
    if (enter(p) < 0) return -1;
    skip_ws(p);
    int c = cur(p), k;
    if (isdigit(c) || (c == '.' && isdigit(ahead(p, 1)))) {
        k = parse_number(p);
    } else if (isalpha(c)) {
        p->pos++;
        char name[MX_VAR_NAME];
        size_t m = 1;
        name[0] = (char)c;
        if ((c == 'e' || c == 'i') && cur(p) != '_' && cur(p) != '\'') {
            k = mx_node_new(p->ctx, c == 'e' ? MX_E : MX_I, -1, -1);
            if (k < 0) fail(p, "step or size limit reached");
        } else {
            read_decorations(p, name, &m);
            k = p->why ? -1 : intern_var(p, name, m);
        }
    } else if (c == '(' || c == '[' || c == '{') {
        p->pos++;
        k = parse_sum(p);
        if (k >= 0 && expect(p, c == '(' ? ')' : c == '[' ? ']' : '}') < 0) k = -1;
    } else if (c == '|') {
        p->pos++;
        p->abs_depth++;
        k = parse_sum(p);
        p->abs_depth--;
        if (k >= 0 && expect(p, '|') < 0) k = -1;
        if (k >= 0) {
            k = mx_node_new(p->ctx, MX_FN, k, -1);
            if (k >= 0) p->ctx->nodes[k].fn = MX_FN_ABS;
            else fail(p, "step or size limit reached");
        }
    } else if (c == '\\') {
        k = parse_command(p);
    } else {
        k = fail(p, at_end(p) ? "unexpected end of expression" : "unexpected character");
    }
    return leave(p, k);
}

static int parse_postfix(struct parser *p) {
    int k = parse_primary(p);
    while (k >= 0) {
        skip_ws(p);
        if (cur(p) == '!') {
            p->pos++;
            k = mx_node_new(p->ctx, MX_FACT, k, -1);
        } else if (cur(p) == '%' || cmd_is(p, p->pos, "%")) {
            p->pos += cur(p) == '%' ? 1 : 2;
            k = mx_scale(p->ctx, k, 1, 100);
        } else if (cur(p) == '_') { /* subscript on a non-variable (a base, an index): ignored */
            p->pos++;
            int tmp = parse_arg(p);
            if (tmp < 0) return -1;
        } else {
            break;
        }
        if (k < 0) return fail(p, "step or size limit reached");
    }
    return k;
}

static int parse_power(struct parser *p) {
    if (enter(p) < 0) return -1;
    int base = parse_postfix(p);
    skip_ws(p);
    if (base >= 0 && cur(p) == '^') {
        p->pos++;
        skip_ws(p);
        int e;
        if (cur(p) == '-' || cur(p) == '+') {
            int neg = cur(p) == '-';
            p->pos++;
            e = parse_arg(p);
            if (e >= 0 && neg) e = mx_node_new(p->ctx, MX_NEG, e, -1);
        } else {
            e = parse_arg(p);
        }
        if (e < 0) return leave(p, fail(p, "bad exponent"));
        base = mx_node_new(p->ctx, MX_POW, base, e);
        if (base < 0) fail(p, "step or size limit reached");
        /* a factorial after a power applies to the power: (x^2)! is rare, x^2! never meant */
    }
    return leave(p, base);
}

static int parse_unary(struct parser *p) {
    if (enter(p) < 0) return -1;
    skip_ws(p);
    int k;
    if (cur(p) == '-') {
        p->pos++;
        k = parse_unary(p);
        if (k >= 0) k = mx_node_new(p->ctx, MX_NEG, k, -1);
        if (k < 0) fail(p, "step or size limit reached");
    } else if (cur(p) == '+') {
        p->pos++;
        k = parse_unary(p);
    } else {
        k = parse_power(p);
    }
    return leave(p, k);
}

static int is_literal_int(const struct parser *p, int k) {
    return k >= 0 && p->ctx->nodes[k].op == MX_NUM && p->ctx->nodes[k].literal_int;
}

/* 1 for a plain integer literal or its negation (the whole part of a mixed number). */
static int is_whole_part(const struct parser *p, int k) {
    if (is_literal_int(p, k)) return 1;
    return k >= 0 && p->ctx->nodes[k].op == MX_NEG && is_literal_int(p, p->ctx->nodes[k].a);
}

static int parse_term(struct parser *p) {
    if (enter(p) < 0) return -1;
    int k = parse_unary(p);
    int nfactors = 1;
    while (k >= 0) {
        skip_ws(p);
        int c = cur(p), op = -1;
        if (c == '*') op = MX_MUL, p->pos++;
        else if (c == '/') op = MX_DIV, p->pos++;
        else if (cmd_is(p, p->pos, "cdot") || cmd_is(p, p->pos, "times") || cmd_is(p, p->pos, "ast"))
            op = MX_MUL, p->pos += cmd_len(p, p->pos);
        else if (cmd_is(p, p->pos, "div"))
            op = MX_DIV, p->pos += cmd_len(p, p->pos);
        int r;
        if (op >= 0) {
            r = parse_unary(p);
        } else if (starts_factor(p)) {
            /* "10 080" is not 10 * 80: two numerals side by side are not a product */
            size_t b = p->pos;
            while (b > 0 && (p->s[b - 1] == ' ' || p->s[b - 1] == '~')) b--;
            if ((isdigit(cur(p)) || cur(p) == '.') && b < p->pos && b > 0 &&
                isdigit((unsigned char)p->s[b - 1]))
                return leave(p, fail(p, "two numbers side by side"));
            int mixed = nfactors == 1 && is_whole_part(p, k) && cmd_is(p, p->pos, "frac");
            r = parse_power(p);
            if (r >= 0 && mixed) {
                const struct mx_node *f = &p->ctx->nodes[r];
                if (f->op == MX_DIV && is_literal_int(p, f->a) && is_literal_int(p, f->b)) {
                    /* 4\frac{2}{3} = 4 + 2/3 and -4\frac{2}{3} = -(4 + 2/3) */
                    int neg = p->ctx->nodes[k].op == MX_NEG;
                    k = mx_node_new(p->ctx, MX_ADD, neg ? p->ctx->nodes[k].a : k, r);
                    if (k >= 0 && neg) k = mx_node_new(p->ctx, MX_NEG, k, -1);
                    if (k < 0) return leave(p, fail(p, "step or size limit reached"));
                    nfactors++;
                    continue;
                }
            }
            if (op < 0) op = MX_MUL;
        } else {
            break;
        }
        if (r < 0) return leave(p, -1);
        k = mx_node_new(p->ctx, (enum mx_op)op, k, r);
        if (k < 0) fail(p, "step or size limit reached");
        nfactors++;
    }
    return leave(p, k);
}

static int parse_sum(struct parser *p) {
    if (enter(p) < 0) return -1;
    int k = parse_term(p);
    while (k >= 0) {
        skip_ws(p);
        int c = cur(p);
        if (c != '+' && c != '-') break;
        p->pos++;
        int r = parse_term(p);
        if (r < 0) return leave(p, -1);
        k = mx_node_new(p->ctx, c == '+' ? MX_ADD : MX_SUB, k, r);
        if (k < 0) fail(p, "step or size limit reached");
    }
    return leave(p, k);
}

int mx_parse(struct mx_ctx *ctx, const char *s, size_t len, int *root, struct dsm_err *err) {
    struct parser p = {.ctx = ctx, .s = s, .len = len};
    *root = -1;
    if (ctx->limit_hit) return dsm_errf(err, DSM_EINVAL, "mathexpr: step or time limit reached");
    int k = parse_sum(&p);
    skip_ws(&p);
    if (k >= 0 && !at_end(&p)) k = fail(&p, "unexpected text after the expression");
    if (k < 0) {
        if (ctx->limit_hit) return dsm_errf(err, DSM_EINVAL, "mathexpr: step or time limit reached");
        return dsm_errf(err, DSM_EINVAL, "mathexpr: %s at offset %zu",
                        p.why ? p.why : "syntax error", p.why_pos);
    }
    *root = k;
    return DSM_OK;
}
