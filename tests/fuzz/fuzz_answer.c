/* fuzz_answer.c - libFuzzer target for answer extraction, normalisation, the expression parser and
 * the comparison. The input is split at its first tab into gold and prediction (no tab: both are
 * the input). Any crash, sanitizer report or slow input is a finding; a comparison must also end
 * within its time limit. Built by hand with clang (see docs/answer-checking.md, "Fuzzing"), never
 * by CMake; the bounded in-tree fuzz run is tests/unit/test_answer_fuzz.c. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/answer.h"
#include "common/mathexpr.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct ans_checker *c;
    static struct mx_ctx *mx;
    if (!c) {
        struct ans_opts o;
        ans_opts_default(&o);
        o.time_limit_s = 0.5;
        if (ans_checker_create(&o, &c, NULL) || mx_ctx_create(4096, 200000, 0.5, &mx, NULL)) abort();
    }
    if (size > 2 * ANS_MAX_LEN) return 0;
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    char *tab = memchr(buf, '\t', size);
    const char *gold = buf, *pred = buf;
    if (tab) *tab = 0, pred = tab + 1;
    char out[ANS_MAX_LEN + 1];
    enum ans_found found;
    ans_extract(buf, strlen(buf), ANS_EXTRACT_LAST_NUMBER, out, sizeof out, &found, NULL);
    ans_normalize(gold, strlen(gold), out, sizeof out, NULL);
    mx_ctx_reset(mx);
    int root;
    enum mx_verdict verdict;
    if (mx_parse(mx, gold, strlen(gold), &root, NULL) == DSM_OK)
        mx_compare(mx, root, root, 0, 1e-8, &verdict, NULL, NULL);
    struct ans_verdict v;
    double t0 = dsm_now();
    ans_checker_compare(c, gold, pred, &v, NULL);
    if (dsm_now() - t0 > 2.0) abort();
    free(buf);
    return 0;
}
