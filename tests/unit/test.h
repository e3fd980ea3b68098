/* test.h - the tiny harness every C test uses.
 *
 * CHECK(cond) and CHECK_NEAR(a, b, tol) record a failure with file:line and keep going;
 * TEST_SKIP(why) exits 77 (CTest "skipped"); test_main_end() returns 1 when anything failed.
 * Each test binary is `int main(void) { ...; return test_main_end(); }`.
 */
#ifndef DSM_TEST_H
#define DSM_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int test_failures = 0;
static int test_checks = 0;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        test_checks++;                                                                  \
        if (!(cond)) {                                                                  \
            test_failures++;                                                            \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);              \
        }                                                                               \
    } while (0)

#define CHECK_MSG(cond, ...)                                                            \
    do {                                                                                \
        test_checks++;                                                                  \
        if (!(cond)) {                                                                  \
            test_failures++;                                                            \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);              \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
        }                                                                               \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                           \
    do {                                                                                \
        double a_ = (double)(a), b_ = (double)(b);                                      \
        test_checks++;                                                                  \
        if (!(fabs(a_ - b_) <= (tol))) {                                                \
            test_failures++;                                                            \
            fprintf(stderr, "FAIL %s:%d: %s = %.9g vs %s = %.9g (tol %g)\n", __FILE__,   \
                    __LINE__, #a, a_, #b, b_, (double)(tol));                           \
        }                                                                               \
    } while (0)

/* The status must be DSM_OK; prints the error message otherwise. */
#define CHECK_OK(expr, errp)                                                            \
    do {                                                                                \
        int rc_ = (expr);                                                               \
        test_checks++;                                                                  \
        if (rc_ != 0) {                                                                 \
            test_failures++;                                                            \
            fprintf(stderr, "FAIL %s:%d: %s returned %d: %s\n", __FILE__, __LINE__,      \
                    #expr, rc_, (errp)->msg);                                           \
        }                                                                               \
    } while (0)

#define TEST_SKIP(why)                                                                  \
    do {                                                                                \
        fprintf(stderr, "SKIP: %s\n", why);                                             \
        exit(77);                                                                       \
    } while (0)

/* Reproducible random inputs: xorshift64 state (a test may set it to its own seed first). */
static uint64_t test_rng_state = 0x9E3779B97F4A7C15ull;
static inline float test_frand(void) { /* uniform in [-1, 1) */
    test_rng_state ^= test_rng_state << 13;
    test_rng_state ^= test_rng_state >> 7;
    test_rng_state ^= test_rng_state << 17;
    return (float)((test_rng_state >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}
/* n uniform floats in a new array (the caller frees it). */
static inline float *test_rand_vec(size_t n) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) v[i] = test_frand();
    return v;
}

static inline int test_main_end(void) {
    fprintf(stderr, "%d checks, %d failures\n", test_checks, test_failures);
    return test_failures ? 1 : 0;
}

#endif
