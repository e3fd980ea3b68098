/* blas.c - load OpenBLAS with the fastest correct core type; see blas.h. The loaded library is
 * process-wide by nature, so the table is filled once under pthread_once and never changes. */
#include "kernels/cpu/blas.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static struct blas_api g_api;
static int g_ok;
static char g_why[300];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void choose_coretype(void) {
    const char *force = getenv("DSM_OPENBLAS_CORETYPE");
    if (force && *force) {
        setenv("OPENBLAS_CORETYPE", force, 1);
        return;
    }
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        setenv("OPENBLAS_CORETYPE", "SKYLAKEX", 1);
}

static void load_once(void) {
    static const char *names[] = {"libopenblas.so.0", "libopenblas.so"};
    choose_coretype();
    void *h = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(g_why, sizeof g_why, "cannot load OpenBLAS (%s); install libopenblas-dev (scripts/setup.sh)", dlerror());
        return;
    }
    *(void **)&g_api.sgemm = dlsym(h, "cblas_sgemm");
    *(void **)&g_api.set_num_threads = dlsym(h, "openblas_set_num_threads");
    *(void **)&g_api.get_corename = dlsym(h, "openblas_get_corename");
    if (!g_api.sgemm || !g_api.set_num_threads) {
        snprintf(g_why, sizeof g_why, "the loaded OpenBLAS lacks cblas_sgemm or openblas_set_num_threads");
        return;
    }
    g_ok = 1;
    LOG_DEBUG("OpenBLAS core: %s", g_api.get_corename ? g_api.get_corename() : "?");
}

const struct blas_api *blas_get(struct dsm_err *err) {
    pthread_once(&g_once, load_once);
    if (!g_ok) {
        dsm_errf(err, DSM_EBACKEND, "%s", g_why);
        return NULL;
    }
    return &g_api;
}
