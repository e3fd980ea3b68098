/* synth_proof.c - proof writers: the correct proof of a chain problem and proofs with one planted
 * error of a chosen kind (where and how much from a seed). See synth.h. */
#include <string.h>

#include "common/synth.h"
#include "common/synth_impl.h"

static const char *const plant_names[SYNTH_PLANT_COUNT_] = {
    "none", "arith", "copy", "skip", "merge", "conclusion", "no_conclusion", "force",
};

const char *synth_plant_name(enum synth_plant k) {
    return (int)k >= 0 && k < SYNTH_PLANT_COUNT_ ? plant_names[k] : "?";
}

int synth_plant_from_name(const char *s) {
    for (int i = 0; i < SYNTH_PLANT_COUNT_; i++)
        if (!strcmp(s, plant_names[i])) return i;
    return -1;
}

double synth_plant_score(enum synth_plant k) {
    switch (k) {
    case SYNTH_PLANT_NONE: return 1;
    case SYNTH_PLANT_SKIP:
    case SYNTH_PLANT_MERGE: return 0.5;
    default: return 0;
    }
}

/* A slip of the kind people make: off by one or two, a carry (9, 10, 11), a hundred. */
static long long slip(struct synth_rng *r, long long v) {
    static const long long d[] = {1, 1, 2, 9, 10, 10, 11, 100};
    long long x = d[synth_rng_next(r) % (sizeof d / sizeof d[0])];
    if (x == 100 && v < 100) x = 10;
    int down = (int)(synth_rng_next(r) & 1);
    if (down && v - x >= 0) return v - x;
    return v + x;
}

static long long units(long long v) { return (v < 0 ? -v : v) % 10; }

int synth_proof_write_carry(const struct synth_problem *p, char *out, size_t cap, int *dropped) {
    struct synth_buf b;
    synth_buf_init(&b, out, cap);
    long long cur = p->operand[0];
    *dropped = 0;
    for (int i = 1; i <= p->n_ops; i++) {
        long long a = p->operand[i];
        long long v = p->op[i] == '+' ? cur + a : cur - a;
        if (!*dropped && cur >= 0) {
            if (p->op[i] == '+' && units(cur) + units(a) >= 10) v -= 10, *dropped = 1;
            else if (p->op[i] == '-' && units(cur) < units(a)) v += 10, *dropped = 1;
        }
        synth_buf_printf(&b, "%lld %c %lld = %lld\n", cur, p->op[i], a, v);
        cur = v;
    }
    synth_buf_str(&b, "So ");
    synth_buf_expr(&b, p->operand[0], p->op + 1, p->operand + 1, p->n_ops);
    synth_buf_printf(&b, " = %lld.\n", p->claim);
    return synth_buf_end(&b);
}

int synth_proof_write(const struct synth_problem *p, enum synth_plant plant, uint64_t seed,
                      char *out, size_t cap, enum synth_plant *planted) {
    int n = p->n_ops;
    if ((int)plant < 0 || plant >= SYNTH_PLANT_COUNT_) plant = SYNTH_PLANT_NONE;
    if (n < 2 && (plant == SYNTH_PLANT_SKIP || plant == SYNTH_PLANT_MERGE)) plant = SYNTH_PLANT_ARITH;
    if (n < 3 && plant == SYNTH_PLANT_MERGE) plant = SYNTH_PLANT_SKIP;
    if (n < 2 && plant == SYNTH_PLANT_FORCE) plant = SYNTH_PLANT_ARITH;
    if (planted) *planted = plant;
    struct synth_rng r;
    synth_rng_init(&r, seed, 0x70f00d, (uint64_t)plant);
    /* The step that carries the error (MERGE joins s and s+1; FORCE keeps the last step to force). */
    int s = (int)synth_rng_range(&r, 1, plant == SYNTH_PLANT_MERGE || plant == SYNTH_PLANT_FORCE ? n - 1 : n);
    int force_copy = plant == SYNTH_PLANT_FORCE && (synth_rng_next(&r) & 1); /* else an arithmetic slip */
    struct synth_buf b;
    synth_buf_init(&b, out, cap);
    long long cur = p->operand[0];
    for (int i = 1; i <= n; i++) {
        char op = p->op[i];
        long long a = p->operand[i];
        if (i == s && plant == SYNTH_PLANT_SKIP) {
            cur = synth_problem_value(p, i);
            continue;
        }
        if (i == s && plant == SYNTH_PLANT_MERGE) {
            long long v = synth_problem_value(p, i + 1);
            synth_buf_printf(&b, "%lld %c %lld %c %lld = %lld\n", cur, op, a, p->op[i + 1], p->operand[i + 1], v);
            cur = v;
            i++;
            continue;
        }
        if (i == s && (plant == SYNTH_PLANT_COPY || force_copy)) {
            long long a2 = slip(&r, a);
            if (a2 < 1 || a2 == a || (op == '-' && cur - a2 < 0)) a2 = a + 1;
            a = a2;
        }
        long long v = op == '+' ? cur + a : cur - a;
        if (i == s && (plant == SYNTH_PLANT_ARITH || (plant == SYNTH_PLANT_FORCE && !force_copy))) v = slip(&r, v);
        if (i == n && plant == SYNTH_PLANT_FORCE) v = synth_problem_value(p, n); /* "reaches" the claim */
        synth_buf_printf(&b, "%lld %c %lld = %lld\n", cur, op, a, v);
        cur = v;
    }
    if (plant != SYNTH_PLANT_NO_CONCLUSION) {
        long long c = p->claim;
        if (plant == SYNTH_PLANT_CONCLUSION) c = slip(&r, c);
        synth_buf_str(&b, "So ");
        synth_buf_expr(&b, p->operand[0], p->op + 1, p->operand + 1, n);
        synth_buf_printf(&b, " = %lld.\n", c);
    }
    return synth_buf_end(&b);
}
