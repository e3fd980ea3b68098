/* bench_forward.c - prefill and single-sequence decode speed of the decoder on the CPU.
 *
 * Shapes are llama2.c's (../shared/BENCHMARKS.md): "15M" dim 288 / 6 layers / 6 heads / ffn 768,
 * "110M" dim 768 / 12 layers / 12 heads / ffn 2048, vocab 32000, random weights, LLaMA.
 * Prefill: one forward of 512 tokens into an empty cache (logits of the last position only, as
 * llama-bench's pp512). Decode: 128 single-token steps from an empty cache, each with full logits
 * (as llama-bench's tg128). Median of --reps runs (default 5).
 *
 * --device cuda runs it on the GPU (shape 1.5b, Qwen2-1.5B's, is meant for that).
 *
 *   build/tests/bench_forward [--threads N] [--reps N] [--shapes 15m,110m] [--weights f32,bf16] [--device cpu]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/model.h"
#include "common/model_init.h"
#include "common/util.h"

static const char *g_device = "cpu";

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int run_shape(const char *shape, enum dsm_dtype wdt, int threads, int reps, struct dsm_err *err) {
    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/dsm-bench-%s-%ld", shape, (long)getpid());
    struct dsm_model_config cfg;
    int rc = dsm_preset_config(shape, !strcmp(shape, "1.5b") ? DSM_ARCH_QWEN2 : DSM_ARCH_LLAMA, &cfg, err);
    if (rc || (rc = dsm_model_init_random(&cfg, dir, DSM_DT_F32, 1, err))) return rc;
    struct dsm_backend *be = NULL;
    struct dsm_model *m = NULL;
    struct dsm_kv *kv = NULL;
    float *logits = NULL;
    struct dsm_model_opts mo = {.max_tokens = 512, .max_seq = 1024, .wdtype = wdt};
    if ((rc = dsm_backend_open(g_device, threads, &be, err)) || (rc = dsm_model_load(dir, be, &mo, &m, err)) ||
        (rc = dsm_kv_create(m, 1024, &kv, err)))
        goto done;
    int V = cfg.vocab_size;
    logits = malloc(sizeof(float) * V);
    int32_t ids[512];
    for (int i = 0; i < 512; i++) ids[i] = (int32_t)((i * 7919 + 13) % V);
    double pre[32], dec[32];
    if (reps > 32) reps = 32;
    /* warm-up: one prefill and a few decode steps */
    if ((rc = dsm_model_forward(m, kv, ids, 512, logits, 0, err))) goto done;
    for (int r = 0; r < reps; r++) {
        dsm_kv_reset(kv);
        double t0 = dsm_now();
        if ((rc = dsm_model_forward(m, kv, ids, 512, logits, 0, err))) goto done;
        pre[r] = 512.0 / (dsm_now() - t0);
        dsm_kv_reset(kv);
        t0 = dsm_now();
        for (int i = 0; i < 128; i++)
            if ((rc = dsm_model_forward(m, kv, &ids[i], 1, logits, 0, err))) goto done;
        dec[r] = 128.0 / (dsm_now() - t0);
    }
    printf("| %-5s | %-4s | %7.1fM | %8.0f | %8.1f | %s |\n", shape, dsm_dtype_name(wdt),
           dsm_config_n_params(&cfg) / 1e6, median(pre, reps), median(dec, reps), be->desc);
    fflush(stdout);
done:
    free(logits);
    dsm_kv_destroy(kv);
    dsm_model_destroy(m);
    dsm_backend_destroy(be);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}

int main(int argc, char **argv) {
    int threads = 2, reps = 5;
    const char *shapes = "15m,110m", *weights = "f32,bf16";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--shapes")) shapes = argv[i + 1];
        else if (!strcmp(argv[i], "--weights")) weights = argv[i + 1];
        else if (!strcmp(argv[i], "--device")) g_device = argv[i + 1];
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    printf("dsm forward benchmark: %d threads, median of %d runs; prefill = pp512 tok/s, decode = tg128 tok/s\n\n",
           threads, reps);
    printf("| shape | weights | params | prefill | decode | backend |\n|---|---|---|---|---|---|\n");
    char buf[256];
    snprintf(buf, sizeof buf, "%s", shapes);
    for (char *s = strtok(buf, ","); s; s = strtok(NULL, ",")) {
        char wbuf[64];
        snprintf(wbuf, sizeof wbuf, "%s", weights);
        char *save = NULL;
        for (char *w = strtok_r(wbuf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
            enum dsm_dtype dt = !strcmp(w, "bf16") ? DSM_DT_BF16 : DSM_DT_F32;
            struct dsm_err err = {0};
            if (run_shape(s, dt, threads, reps, &err)) {
                fprintf(stderr, "bench_forward: %s %s: %s\n", s, w, err.msg);
                return 1;
            }
        }
    }
    return 0;
}
