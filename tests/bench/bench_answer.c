/* bench_answer.c - answer comparisons per second on the MATH-500 regression corpus.
 *
 *   build-DIR/tests/bench_answer [DATA_DIR] [SECONDS]
 *
 * Loads MATH-500 (DATA_DIR, default $DSM_DATA_DIR or ../shared/data next to the source tree),
 * extracts the last box of every solution, then times these workloads over the 500 pairs:
 *   gold vs box          the regression check (string shortcut on, as in eval)
 *   gold vs box, strict  string shortcut off: every pair goes through the structured comparison
 *   gold vs next gold    mostly different pairs (the common case in a reward computation)
 *   extract + compare    ans_checker_grade on the full solution text
 * and prints one table row per workload: comparisons, seconds, comparisons per second, equal.
 * Single thread, one checker per workload. Exit 2 when the data cannot be read.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/answer.h"
#include "common/util.h"

#define N_MAX 600

static char *golds[N_MAX], *boxes[N_MAX], *sols[N_MAX];
static int n;

static int load(const char *dir) {
    char path[1200];
    snprintf(path, sizeof path, "%s/math500/test.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "bench_answer: cannot open %s\n", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    while (n < N_MAX && getline(&line, &cap, f) > 0) {
        json_t *r = json_loads(line, 0, NULL);
        const char *g = json_string_value(json_object_get(r, "answer"));
        const char *s = json_string_value(json_object_get(r, "solution"));
        char box[ANS_MAX_LEN + 1];
        enum ans_found found;
        if (g && s && ans_extract(s, strlen(s), 0, box, sizeof box, &found, NULL) == DSM_OK &&
            found == ANS_FOUND_BOXED) {
            golds[n] = strdup(g);
            boxes[n] = strdup(box);
            sols[n] = strdup(s);
            n++;
        }
        json_decref(r);
    }
    free(line);
    fclose(f);
    return n > 0 ? 0 : -1;
}

enum workload { W_BOX, W_STRICT, W_NEXT, W_GRADE };

static void run(const char *name, enum workload w, double seconds) {
    struct ans_opts o;
    ans_opts_default(&o);
    if (w == W_STRICT) o.flags |= ANS_NO_STRING_SHORTCUT;
    struct ans_checker *c = NULL;
    struct dsm_err err = {0};
    if (ans_checker_create(&o, &c, &err)) {
        fprintf(stderr, "bench_answer: %s\n", err.msg);
        return;
    }
    long count = 0, equal = 0;
    double t0 = dsm_now(), t;
    do {
        for (int i = 0; i < n; i++) {
            struct ans_verdict v;
            switch (w) {
            case W_BOX:
            case W_STRICT: ans_checker_compare(c, golds[i], boxes[i], &v, &err); break;
            case W_NEXT: ans_checker_compare(c, golds[i], golds[(i + 1) % n], &v, &err); break;
            case W_GRADE: ans_checker_grade(c, golds[i], sols[i], strlen(sols[i]), 0, &v, &err); break;
            }
            count++;
            equal += v.equal;
        }
        t = dsm_now() - t0;
    } while (t < seconds);
    printf("| %-28s | %8ld | %6.2f | %10.0f | %5.1f%% |\n", name, count, t, count / t,
           100.0 * equal / count);
    ans_checker_destroy(c);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : getenv("DSM_DATA_DIR");
    if (!dir || !*dir) dir = DSM_SOURCE_DIR "/../shared/data";
    double seconds = argc > 2 ? atof(argv[2]) : 2.0;
    if (load(dir)) return 2;
    printf("MATH-500: %d gold/box pairs, %.1f s per workload, one thread\n\n", n, seconds);
    printf("| %-28s | %8s | %6s | %10s | %6s |\n", "workload", "compares", "s", "per second", "equal");
    printf("|------------------------------|----------|--------|------------|--------|\n");
    run("gold vs box", W_BOX, seconds);
    run("gold vs box, no shortcut", W_STRICT, seconds);
    run("gold vs next gold", W_NEXT, seconds);
    run("extract + compare (grade)", W_GRADE, seconds);
    for (int i = 0; i < n; i++) free(golds[i]), free(boxes[i]), free(sols[i]);
    return 0;
}
