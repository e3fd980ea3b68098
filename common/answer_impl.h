/* answer_impl.h - internals shared by answer.c (comparison) and answer_value.c (reading an
 * answer string into a value tree). See answer.c for the value kinds.
 *
 * Invariants: values live in c->vals and refer to each other by index (kid, next); every text
 * pointer in a value points into c->gold, c->pred, c->scratch or a string literal, all alive
 * until the next comparison through the same checker resets them.
 */
#ifndef DSM_ANSWER_IMPL_H
#define DSM_ANSWER_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "common/answer.h"
#include "common/mathexpr.h"

#define AV_MAX 2048          /* value nodes per comparison */
#define AV_MAX_DEPTH 8       /* nesting of lists/tuples/matrices */
#define AV_MAX_KIDS 256      /* elements of one list, tuple, set or matrix */
#define AV_SCRATCH (64 * 1024)
#define NORM_CAP (3 * ANS_MAX_LEN + 64)

enum av_kind { AV_EXPR, AV_TEXT, AV_LIST, AV_SET, AV_TUPLE, AV_UNION, AV_MATRIX, AV_EQ, AV_REL };

struct aval {
    uint8_t kind;
    char open, close; /* tuple brackets */
    char rel;         /* '<', 'L' (\le), 'N' (\ne) */
    uint8_t percent;
    int kid, next;    /* first child, next sibling (-1 = none) */
    int nkids, rows, cols;
    int expr, lhs, rhs;
    const char *s; /* source text (normalised), for text comparison */
    size_t len;
    const char *label;
    size_t label_len;
};

struct ans_checker {
    struct ans_opts opts;
    struct mx_ctx *mx;
    struct aval vals[AV_MAX];
    int nvals;
    char scratch[AV_SCRATCH];
    size_t scratch_used;
    char gold[NORM_CAP], pred[NORM_CAP];
    char extract[ANS_MAX_LEN + 1];
    enum ans_reason reason;
    int limit;
};

/* Read s[0..n) (normalised text) into a value tree in c; returns its index, or -1 when the value
 * pool or the expression limits ran out (c->limit is then set). depth: nesting so far (0). */
int ans_value_parse(struct ans_checker *c, const char *s, size_t n, int depth);

#endif
