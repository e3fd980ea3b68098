/* backend.c - opening backends by name, and the CUDA module loader.
 *
 * The CUDA backend lives in libdsm_cuda.so next to the executable (or in DSM_CUDA_MODULE). It is
 * loaded with dlopen so that one dsm binary runs on machines with no GPU, no driver and no CUDA
 * libraries; "auto" falls back to the CPU with one log line saying why.
 */
#include "kernels/backend.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

size_t dsm_dtype_size(enum dsm_dtype dt) {
    switch (dt) {
    case DSM_DT_F32: return 4;
    case DSM_DT_F16:
    case DSM_DT_BF16: return 2;
    }
    return 0;
}

const char *dsm_dtype_name(enum dsm_dtype dt) {
    switch (dt) {
    case DSM_DT_F32: return "f32";
    case DSM_DT_F16: return "f16";
    case DSM_DT_BF16: return "bf16";
    }
    return "?";
}

/* Path of the CUDA module: $DSM_CUDA_MODULE, else libdsm_cuda.so beside /proc/self/exe. */
static int cuda_module_path(char *out, size_t cap) {
    const char *env = getenv("DSM_CUDA_MODULE");
    if (env && *env) return snprintf(out, cap, "%s", env) < (int)cap ? 0 : -1;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return -1;
    *slash = '\0';
    return snprintf(out, cap, "%s/libdsm_cuda.so", exe) < (int)cap ? 0 : -1;
}

static int open_cuda(struct dsm_backend **out, struct dsm_err *err) {
    char path[PATH_MAX];
    if (cuda_module_path(path, sizeof path) != 0)
        return dsm_errf(err, DSM_EBACKEND, "cannot locate the CUDA module (set DSM_CUDA_MODULE)");
    if (access(path, R_OK) != 0)
        return dsm_errf(err, DSM_EBACKEND, "CUDA module %s not found (built without CUDA?)", path);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) return dsm_errf(err, DSM_EBACKEND, "cannot load CUDA module: %s", dlerror());
    dsm_cuda_create_fn create = NULL;
    *(void **)&create = dlsym(h, DSM_CUDA_CREATE_SYMBOL);
    if (!create) {
        dlclose(h);
        return dsm_errf(err, DSM_EBACKEND, "%s does not export %s", path, DSM_CUDA_CREATE_SYMBOL);
    }
    /* The module stays loaded for the life of the process: its code backs the vtable. It stays
     * loaded when it declines too: the libraries it pulls in (cuBLAS, the C++ runtime) allocate
     * when they load, and unloading them would leave those blocks unreachable (leak checkers
     * report them); a second open finds the same handle. */
    return create(DSM_BACKEND_ABI, out, err);
}

int dsm_backend_open(const char *name, int n_threads, struct dsm_backend **out, struct dsm_err *err) {
    *out = NULL;
    if (!name || !strcmp(name, "auto")) {
        struct dsm_err why = {0};
        if (open_cuda(out, &why) == DSM_OK) return DSM_OK;
        LOG_INFO("using the CPU: %s", why.msg);
        return dsm_backend_cpu_create(n_threads, out, err);
    }
    if (!strcmp(name, "cpu")) return dsm_backend_cpu_create(n_threads, out, err);
    if (!strcmp(name, "ref")) return dsm_backend_ref_create(out, err);
    if (!strcmp(name, "cuda")) return open_cuda(out, err);
    return dsm_errf(err, DSM_EINVAL, "unknown device '%s' (expected auto, cpu, cuda or ref)", name);
}

void dsm_backend_destroy(struct dsm_backend *be) {
    if (be) be->destroy(be);
}
