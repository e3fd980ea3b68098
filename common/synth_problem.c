/* synth_problem.c - seeded arithmetic-chain problems with graded difficulty, their text form and
 * its parser. See synth.h. */
#include <string.h>

#include "common/synth.h"
#include "common/synth_impl.h"

/* Steps and operand digits per difficulty (index difficulty-1). */
static const struct {
    int ops, dig_lo, dig_hi;
} levels[SYNTH_MAX_DIFFICULTY] = {
    {2, 1, 1}, /* 1: "Show that 7 + 5 - 3 = 9." */
    {2, 2, 2}, /* 2: "Show that 37 + 48 - 19 = 66." */
    {3, 2, 2}, /* 3 */
    {4, 2, 3}, /* 4 */
    {5, 3, 3}, /* 5 */
};

static long long pow10ll(int d) {
    long long v = 1;
    while (d-- > 0) v *= 10;
    return v;
}

long long synth_problem_value(const struct synth_problem *p, int k) {
    long long v = p->operand[0];
    for (int i = 1; i <= k && i <= p->n_ops; i++) v = p->op[i] == '+' ? v + p->operand[i] : v - p->operand[i];
    return v;
}

int synth_problem_is_true(const struct synth_problem *p) {
    return synth_problem_value(p, p->n_ops) == p->claim;
}

/* 1 when the values v_0..v_n are pairwise distinct (a line's left value then names one place). */
static int values_distinct(const struct synth_problem *p) {
    long long v[SYNTH_MAX_OPS + 1];
    for (int i = 0; i <= p->n_ops; i++) {
        v[i] = synth_problem_value(p, i);
        for (int j = 0; j < i; j++)
            if (v[j] == v[i]) return 0;
    }
    return 1;
}

static void draw(struct synth_rng *r, int difficulty, struct synth_problem *p) {
    int lvl = difficulty - 1;
    memset(p, 0, sizeof *p);
    p->difficulty = difficulty;
    p->n_ops = levels[lvl].ops;
    int d = (int)synth_rng_range(r, levels[lvl].dig_lo, levels[lvl].dig_hi);
    long long lo = d == 1 ? 1 : pow10ll(d - 1), hi = pow10ll(d) - 1;
    long long v = synth_rng_range(r, d == 1 ? 2 : lo, hi);
    p->operand[0] = v;
    for (int i = 1; i <= p->n_ops; i++) {
        d = (int)synth_rng_range(r, levels[lvl].dig_lo, levels[lvl].dig_hi);
        lo = d == 1 ? 1 : pow10ll(d - 1);
        hi = pow10ll(d) - 1;
        int minus = synth_rng_next(r) & 1;
        if (minus && v <= lo) minus = 0; /* keep every value positive */
        long long a = synth_rng_range(r, lo, minus ? (v - 1 < hi ? v - 1 : hi) : hi);
        p->op[i] = minus ? '-' : '+';
        p->operand[i] = a;
        v = minus ? v - a : v + a;
    }
    p->claim = v;
}

int synth_problem_generate(uint64_t seed, uint64_t index, int difficulty, struct synth_problem *p,
                           struct dsm_err *err) {
    if (difficulty < 1 || difficulty > SYNTH_MAX_DIFFICULTY)
        return dsm_errf(err, DSM_EINVAL, "difficulty %d is outside 1..%d", difficulty, SYNTH_MAX_DIFFICULTY);
    struct synth_rng r;
    synth_rng_init(&r, seed, index, (uint64_t)difficulty);
    /* A repeated value makes a line's place ambiguous: draw again (a bounded number of times). */
    for (int attempt = 0; attempt < 64; attempt++) {
        draw(&r, difficulty, p);
        if (values_distinct(p)) break;
    }
    return DSM_OK;
}

int synth_difficulty_pick(uint64_t seed, uint64_t index, int lo, int hi) {
    if (hi <= lo) return lo;
    struct synth_rng r;
    synth_rng_init(&r, seed ^ 0x5eed0d1ffULL, index, 7);
    return (int)synth_rng_range(&r, lo, hi);
}

int synth_problem_text(const struct synth_problem *p, char *out, size_t cap) {
    struct synth_buf b;
    synth_buf_init(&b, out, cap);
    synth_buf_str(&b, "Show that ");
    synth_buf_expr(&b, p->operand[0], p->op + 1, p->operand + 1, p->n_ops);
    synth_buf_printf(&b, " = %lld.", p->claim);
    return synth_buf_end(&b);
}

int synth_problem_parse(const char *text, size_t len, struct synth_problem *p, struct dsm_err *err) {
    static const char head[] = "Show that";
    size_t i = 0, n = len;
    while (i < n && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) i++;
    while (n > i && (text[n - 1] == ' ' || text[n - 1] == '\t' || text[n - 1] == '\n' || text[n - 1] == '\r')) n--;
    if (n - i < sizeof head - 1 || memcmp(text + i, head, sizeof head - 1))
        return dsm_errf(err, DSM_EINVAL, "a problem must start with 'Show that' (e.g. 'Show that 37 + 48 - 19 = 66.')");
    i += sizeof head - 1;
    if (n > i && text[n - 1] == '.') n--;
    struct synth_expr e;
    size_t at = i;
    if (!synth_expr_parse(text, n, &i, &e) || e.n_terms == 0)
        return dsm_errf(err, DSM_EINVAL,
                        "problem: expected 'a + b - c ... = v' with 1..%d operations and numbers of at "
                        "most %d digits after byte %zu", SYNTH_MAX_OPS, SYNTH_MAX_DIGITS, at);
    while (i < n && (text[i] == ' ' || text[i] == '\t')) i++;
    if (i != n) return dsm_errf(err, DSM_EINVAL, "problem: unexpected text at byte %zu", i);
    if (e.left < 0) return dsm_errf(err, DSM_EINVAL, "problem: the start value must not be negative");
    long long v = e.left, lim = 999999999999999LL; /* SYNTH_MAX_DIGITS nines */
    for (int k = 0; k < e.n_terms; k++) {
        v = e.op[k] == '+' ? v + e.term[k] : v - e.term[k];
        if (v > lim || v < -lim)
            return dsm_errf(err, DSM_EINVAL, "problem: the value after operation %d has more than %d digits",
                            k + 1, SYNTH_MAX_DIGITS);
    }
    memset(p, 0, sizeof *p);
    p->n_ops = e.n_terms;
    p->operand[0] = e.left;
    for (int k = 0; k < e.n_terms; k++) {
        p->op[k + 1] = e.op[k];
        p->operand[k + 1] = e.term[k];
    }
    p->claim = e.result;
    return DSM_OK;
}
