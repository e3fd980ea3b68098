/* bench_generate.c - generation throughput of the batched engine on the CPU.
 *
 * For llama2.c's "15M" and "110M" LLaMA shapes (random weights, f32): a 256-token prompt and 256
 * new tokens per sample (EOS ignored), n = 1, 8, 32, 64 samples of that one prompt. Each
 * configuration runs in a freshly exec'd process (fork, then exec at once: a forked child of a
 * process whose OpenMP/OpenBLAS thread pools exist would inherit them broken), so that its peak
 * resident memory is its own.
 * Reports aggregate new tokens/s (wall time including the one prefill) and the speed-up over n = 1.
 *
 * --kv f32,f16 repeats the table with each KV cache dtype (the engine's kv_dtype; f32 by default,
 * f16 halves the bytes decode attention reads, as llama.cpp's default KV cache type does).
 *
 * --device cuda runs it on the GPU (shape 1.5b, Qwen2-1.5B's, is meant for that).
 *
 *   build/tests/bench_generate [--threads N] [--shapes 15m,110m] [--ns 1,8,32,64] [--new 256] [--kv f32] [--device cpu]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/engine.h"
#include "common/model.h"
#include "common/model_init.h"
#include "common/util.h"

struct result {
    double tok_s, seconds, prefill_s;
    long tokens;
    double kv_mb;
};

static int child(const char *dir, int threads, int n, int new_tokens, int fd, enum dsm_dtype kvdt, const char *device) {
    struct dsm_err err = {0};
    struct dsm_backend *be = NULL;
    struct dsm_model *m = NULL;
    struct dsm_engine *e = NULL;
    struct dsm_model_opts mo = {.max_seq = 256 + new_tokens, .max_tokens = 512};
    if (dsm_backend_open(device, threads, &be, &err) || dsm_model_load(dir, be, &mo, &m, &err)) {
        fprintf(stderr, "bench_generate: %s\n", err.msg);
        return 1;
    }
    int V = dsm_model_config(m)->vocab_size;
    int32_t prompt[256];
    for (int i = 0; i < 256; i++) prompt[i] = (int32_t)((i * 7919 + 13) % V);
    /* time the prefill alone once, to separate it from decode */
    float *lg = malloc(sizeof(float) * V);
    struct dsm_kv *kv = NULL;
    double t0 = dsm_now();
    if (dsm_kv_create(m, 256, &kv, &err) || dsm_model_forward(m, kv, prompt, 256, lg, 0, &err)) {
        fprintf(stderr, "bench_generate: %s\n", err.msg);
        return 1;
    }
    double prefill = dsm_now() - t0;
    dsm_kv_destroy(kv);
    free(lg);
    struct dsm_engine_opts eo = {.max_batch = 64, .kv_budget_bytes = (size_t)8 << 30, .kv_dtype = kvdt};
    struct dsm_gen_request r = {prompt, 256, n, {0.8f, 0, 1.0f, new_tokens, 1, NULL, 0, 1}};
    if (dsm_engine_create(m, NULL, &eo, &e, &err) || dsm_engine_run(e, &r, 1, NULL, NULL, &err)) {
        fprintf(stderr, "bench_generate: %s\n", err.msg);
        return 1;
    }
    const struct dsm_engine_stats *st = dsm_engine_stats(e);
    struct result res = {st->generated_tokens / st->seconds, st->seconds, prefill, st->generated_tokens, st->kv_bytes / 1048576.0};
    if (write(fd, &res, sizeof res) != sizeof res) return 1;
    dsm_engine_destroy(e);
    dsm_model_destroy(m);
    dsm_backend_destroy(be);
    return 0;
}

int main(int argc, char **argv) {
    /* child mode: bench_generate --child DIR THREADS N NEW FD KV DEVICE */
    if (argc == 9 && !strcmp(argv[1], "--child"))
        return child(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]),
                     !strcmp(argv[7], "f16") ? DSM_DT_F16 : DSM_DT_F32, argv[8]);
    int threads = 2, new_tokens = 256;
    const char *shapes = "15m,110m", *ns = "1,8,32,64", *kvs = "f32", *device = "cpu";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--shapes")) shapes = argv[i + 1];
        else if (!strcmp(argv[i], "--ns")) ns = argv[i + 1];
        else if (!strcmp(argv[i], "--new")) new_tokens = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--kv")) kvs = argv[i + 1];
        else if (!strcmp(argv[i], "--device")) device = argv[i + 1];
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    char kbuf[64];
    snprintf(kbuf, sizeof kbuf, "%s", kvs);
    for (char *k = kbuf; *k; k++) if (*k == ',') *k = ' ';
    char kcheck[64], *s0 = NULL;
    snprintf(kcheck, sizeof kcheck, "%s", kbuf);
    for (char *kv = strtok_r(kcheck, " ", &s0); kv; kv = strtok_r(NULL, " ", &s0))
        if (strcmp(kv, "f32") && strcmp(kv, "f16")) {
            fprintf(stderr, "--kv: '%s' is not f32 or f16\n", kv);
            return 2;
        }
    printf("dsm generation benchmark: %d threads, f32 weights, prompt 256, %d new tokens per sample, temperature 0.8\n\n",
           threads, new_tokens);
    printf("| shape | KV | n | new tokens | seconds | aggregate tok/s | x n=1 | prefill 256 (s) | KV pool MB | peak RSS MB |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|\n");
    char sbuf[128];
    snprintf(sbuf, sizeof sbuf, "%s", shapes);
    char *s1 = NULL;
    for (char *shape = strtok_r(sbuf, ",", &s1); shape; shape = strtok_r(NULL, ",", &s1)) {
        char dir[256];
        snprintf(dir, sizeof dir, "/tmp/dsm-bench-gen-%s-%ld", shape, (long)getpid());
        struct dsm_model_config cfg;
        struct dsm_err err = {0};
        if (dsm_preset_config(shape, !strcmp(shape, "1.5b") ? DSM_ARCH_QWEN2 : DSM_ARCH_LLAMA, &cfg, &err) || dsm_model_init_random(&cfg, dir, DSM_DT_F32, 1, &err)) {
            fprintf(stderr, "bench_generate: %s\n", err.msg);
            return 1;
        }
        char kv_list[64], *s3 = NULL;
        snprintf(kv_list, sizeof kv_list, "%s", kbuf);
        for (char *kv = strtok_r(kv_list, " ", &s3); kv; kv = strtok_r(NULL, " ", &s3)) {
        double base = 0;
        char nbuf[128];
        snprintf(nbuf, sizeof nbuf, "%s", ns);
        char *s2 = NULL;
        for (char *nt = strtok_r(nbuf, ",", &s2); nt; nt = strtok_r(NULL, ",", &s2)) {
            int n = atoi(nt), fds[2];
            if (n < 1 || pipe(fds) != 0) return 2;
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                close(fds[0]);
                char a_threads[16], a_n[16], a_new[16], a_fd[16];
                snprintf(a_threads, sizeof a_threads, "%d", threads);
                snprintf(a_n, sizeof a_n, "%d", n);
                snprintf(a_new, sizeof a_new, "%d", new_tokens);
                snprintf(a_fd, sizeof a_fd, "%d", fds[1]);
                execl("/proc/self/exe", argv[0], "--child", dir, a_threads, a_n, a_new, a_fd, kv, device, (char *)NULL);
                _exit(127);
            }
            close(fds[1]);
            struct result r;
            ssize_t got = read(fds[0], &r, sizeof r);
            close(fds[0]);
            int status = 0;
            struct rusage ru;
            wait4(pid, &status, 0, &ru);
            if (got != sizeof r || !WIFEXITED(status) || WEXITSTATUS(status)) {
                fprintf(stderr, "bench_generate: %s n=%d failed\n", shape, n);
                return 1;
            }
            if (n == 1) base = r.tok_s;
            printf("| %s | %s | %d | %ld | %.2f | %.1f | %.1f | %.3f | %.0f | %.0f |\n", shape, kv, n, r.tokens, r.seconds,
                   r.tok_s, base > 0 ? r.tok_s / base : 0.0, r.prefill_s, r.kv_mb, ru.ru_maxrss / 1024.0);
        }
        }
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    }
    return 0;
}
