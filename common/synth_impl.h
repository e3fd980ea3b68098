/* synth_impl.h - what the synth*.c files share and nothing else sees: the seeded generator (a
 * splitmix64 stream, so that every item is a pure function of its seeds), a bounded text writer,
 * and the small number parsers. */
#ifndef DSM_SYNTH_IMPL_H
#define DSM_SYNTH_IMPL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "common/synth.h"

struct synth_rng {
    uint64_t s;
};

/* splitmix64's finaliser: a bijective mix of x. */
static inline uint64_t synth_mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* A stream for the tuple (a, b, c): different tuples give unrelated streams. */
static inline void synth_rng_init(struct synth_rng *r, uint64_t a, uint64_t b, uint64_t c) {
    r->s = synth_mix(synth_mix(synth_mix(a + 0x9e3779b97f4a7c15ULL) ^ b) + 0x632be59bd9b4e019ULL * (c + 1));
}

static inline uint64_t synth_rng_next(struct synth_rng *r) {
    r->s += 0x9e3779b97f4a7c15ULL;
    return synth_mix(r->s);
}

/* Uniform in [lo, hi] (lo <= hi; the modulo bias is below 2^-40 for our ranges). */
static inline long long synth_rng_range(struct synth_rng *r, long long lo, long long hi) {
    uint64_t span = (uint64_t)(hi - lo) + 1;
    return lo + (long long)(synth_rng_next(r) % span);
}

/* Uniform in [0, 1). */
static inline double synth_rng_unit(struct synth_rng *r) {
    return (double)(synth_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Index drawn with probability proportional to w[0..n) (a positive sum). */
int synth_rng_pick(struct synth_rng *r, const double *w, int n);

/* A bounded writer: appends until cap is reached, then remembers the overflow. */
struct synth_buf {
    char *p;
    size_t cap, len;
    int overflow;
};

void synth_buf_init(struct synth_buf *b, char *out, size_t cap);
void synth_buf_put(struct synth_buf *b, const char *s, size_t n);
void synth_buf_str(struct synth_buf *b, const char *s);
void synth_buf_printf(struct synth_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The length written, or -1 on overflow (then out is ""). */
int synth_buf_end(struct synth_buf *b);

/* Write "a op b op c" (the left value and n terms) to b. */
void synth_buf_expr(struct synth_buf *b, long long left, const char *op, const long long *term, int n);

/* Parse an expression "N (op N)* = N" at s[*i..n) with optional blanks; numbers of at most
 * SYNTH_MAX_DIGITS digits, the left value and result may carry a '-'. Returns 1 and advances *i
 * past the result on success (filling the fields), 0 otherwise (*i unchanged). */
struct synth_expr {
    long long left, result;
    int n_terms;
    char op[SYNTH_MAX_OPS];
    long long term[SYNTH_MAX_OPS];
};
int synth_expr_parse(const char *s, size_t n, size_t *i, struct synth_expr *e);

/* The true value of an expression's left side. */
long long synth_expr_value(const struct synth_expr *e);

#endif
