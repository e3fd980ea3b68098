/* bench_train.c - training throughput of the decoder on the CPU (full fine-tuning, fp32).
 *
 * One training step = zero_grad + forward + backward (masked cross-entropy over every position) +
 * one AdamW update, on B sequences of T random tokens, random weights. Reports the median step
 * time over --steps steps after one warm-up step, tokens/s (B*T per step), achieved GFLOP/s as
 * ../shared/BENCHMARKS.md counts it (6 x parameters x tokens/s), and the process's peak RSS.
 *
 * Shapes (LLaMA, SwiGLU):
 *   110m  llama2.c "110M": dim 768, 12 layers, 12 heads, ffn 2048, vocab 32000, tied (109.5M)
 *   gpt2  GPT-2-124M-sized: dim 768, 12 layers, 12 heads, ffn 2048 (= the parameters of GPT-2's
 *         4x MLP in a 3-matrix SwiGLU), vocab 50257, tied embeddings (123.6M parameters)
 *   15m   llama2.c "15M"
 * llm.c's train_gpt2 (CPU) figures on GPT-2 124M in BENCHMARKS.md: 65.4 tok/s at 4x64, 53.7 at 4x256.
 *
 *   build/tests/bench_train [--shape 110m|gpt2|15m] [--bt 4x64,4x256] [--threads N] [--steps N]
 *                           [--recompute] [--lora R]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/model.h"
#include "common/model_init.h"
#include "common/lora.h"
#include "common/optim.h"
#include "common/train.h"
#include "common/util.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

int main(int argc, char **argv) {
    const char *shape = "gpt2", *bts = "4x64,4x256";
    int threads = 2, steps = 3, recompute = 0, lora_r = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--shape") && i + 1 < argc) shape = argv[++i];
        else if (!strcmp(argv[i], "--bt") && i + 1 < argc) bts = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--recompute")) recompute = 1;
        else if (!strcmp(argv[i], "--lora") && i + 1 < argc) lora_r = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_train [--shape 110m|gpt2|15m] [--bt BxT,...] [--threads N] [--steps N] [--recompute]\n");
            return 2;
        }
    }
    if (steps < 1 || steps > 64) steps = 3;
    struct dsm_err err = {0};
    struct dsm_model_config cfg;
    int gpt2 = !strcmp(shape, "gpt2");
    if (dsm_preset_config(gpt2 ? "110m" : shape, DSM_ARCH_LLAMA, &cfg, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 2;
    }
    if (gpt2) cfg.vocab_size = 50257;
    cfg.tie_word_embeddings = 1;
    if (cfg.max_position_embeddings < 1024) cfg.max_position_embeddings = 1024;
    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/dsm-bench-train-%s-%ld", shape, (long)getpid());
    if (dsm_model_init_random(&cfg, dir, DSM_DT_F32, 1, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 3;
    }
    int maxB = 1, maxT = 2;
    for (const char *p = bts; *p;) {
        int b = 0, t = 0;
        if (sscanf(p, "%dx%d", &b, &t) != 2 || b < 1 || t < 2) {
            fprintf(stderr, "bench_train: bad --bt element at '%s'\n", p);
            return 2;
        }
        maxB = b * t > maxB * maxT ? b : maxB;
        maxT = t > maxT ? t : maxT;
        p = strchr(p, ',') ? strchr(p, ',') + 1 : p + strlen(p);
    }
    struct dsm_backend *be = NULL;
    struct dsm_model *m = NULL;
    struct dsm_model_opts mo = {.max_tokens = 1, .max_seq = 1024, .wdtype = DSM_DT_F32};
    if (dsm_backend_open("cpu", threads, &be, &err) || dsm_model_load(dir, be, &mo, &m, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 3;
    }
    struct dsm_lora *lora = NULL;
    if (lora_r > 0) {
        struct dsm_lora_cfg lc;
        char spec[64];
        snprintf(spec, sizeof spec, "r=%d", lora_r);
        if (dsm_lora_parse(spec, &lc, &err) || dsm_lora_create(m, &lc, 1, &lora, &err)) {
            fprintf(stderr, "bench_train: %s\n", err.msg);
            return 3;
        }
    }
    long long P = dsm_config_n_params(&cfg);
    printf("# %s, %lld parameters, %s, recompute %s, %s\n", shape, P, be->desc, recompute ? "on" : "off",
           lora ? "LoRA (all 7 projections; GFLOP/s still counts 6*P)" : "full fine-tuning");
    printf("%-8s %10s %10s %10s %10s %12s\n", "BxT", "step_s", "tok/s", "GFLOP/s", "act_MB", "peak_rss_MB");
    int rc = 0;
    for (const char *p = bts; *p && !rc;) {
        int B, T;
        sscanf(p, "%dx%d", &B, &T);
        p = strchr(p, ',') ? strchr(p, ',') + 1 : p + strlen(p);
        struct dsm_train *t = NULL;
        struct dsm_optim *o = NULL;
        struct dsm_train_opts to = {.max_rows = B * T, .max_seq = T, .recompute = recompute};
        struct dsm_optim_cfg oc;
        dsm_optim_cfg_default(&oc);
        oc.total_steps = steps + 1;
        struct dsm_optim_tensor *params = NULL;
        int np = 0;
        to.lora = lora;
        if ((rc = dsm_train_create(m, &to, &t, &err)) || (rc = dsm_train_params(t, &params, &np, &err)) ||
            (rc = dsm_optim_create(be, params, np, &oc, &o, &err))) {
            fprintf(stderr, "bench_train: %s\n", err.msg);
            dsm_train_destroy(t);
            free(params);
            break;
        }
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)B * T);
        for (int i = 0; i < B * T; i++) ids[i] = (int32_t)(((long)i * 7919 + 13) % cfg.vocab_size);
        double times[65];
        for (int s = 0; s <= steps && !rc; s++) {
            double t0 = dsm_now();
            dsm_train_zero_grad(t);
            rc = dsm_train_batch(t, ids, ids, B, T, 1.0f / (float)(B * (T - 1)), 1, NULL, NULL, &err);
            if (!rc) rc = dsm_optim_step(o, NULL, NULL, &err);
            times[s] = dsm_now() - t0;
        }
        if (rc) fprintf(stderr, "bench_train: %s\n", err.msg);
        qsort(times + 1, (size_t)steps, sizeof(double), cmp_double);
        double med = times[1 + steps / 2], tps = B * T / med;
        size_t act;
        dsm_train_memory(t, &act, NULL);
        printf("%dx%-6d %10.3f %10.1f %10.1f %10.1f %12.1f\n", B, T, med, tps, 6.0 * (double)P * tps / 1e9, act / 1e6,
               peak_rss_mb());
        fflush(stdout);
        free(ids);
        dsm_optim_destroy(o);
        free(params);
        dsm_train_destroy(t);
    }
    dsm_lora_destroy(lora);
    dsm_model_destroy(m);
    dsm_backend_destroy(be);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "bench_train: could not remove %s\n", dir);
    return rc ? 3 : 0;
}
