/* cuda_backend.cu - the CUDA backend module (libdsm_cuda.so), loaded by kernels/backend.c.
 *
 * State of this module: device discovery, memory (cudaMalloc, async copies on the backend's one
 * stream) and error reporting through ->sync are implemented; the ops are a later step (the CUDA
 * issue), so creation reports DSM_EUNSUPPORTED after finding a device and "auto" falls back to the
 * CPU with that reason. The one exported symbol is dsm_cuda_backend_create.
 */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

extern "C" {
#include "kernels/backend.h"
}

/* err.c is not linked into the module: fill the error struct directly. */
static int set_err(struct dsm_err *err, int code, const char *msg, cudaError_t e) {
    if (err) {
        snprintf(err->msg, sizeof err->msg, "%s: %s (CUDA error %d)", msg, cudaGetErrorString(e), (int)e);
        err->code = code;
    }
    return code;
}

extern "C" __attribute__((visibility("default"))) int dsm_cuda_backend_create(int abi, struct dsm_backend **out,
                                                                             struct dsm_err *err) {
    *out = NULL;
    if (abi != DSM_BACKEND_ABI) {
        if (err) {
            snprintf(err->msg, sizeof err->msg, "CUDA module built for backend ABI %d, dsm uses %d: rebuild", DSM_BACKEND_ABI, abi);
            err->code = DSM_EBACKEND;
        }
        return DSM_EBACKEND;
    }
    int count = 0; /* left unwritten by cudaGetDeviceCount when there is no driver */
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) return set_err(err, DSM_EBACKEND, "no usable CUDA device", e);
    if (count == 0) return set_err(err, DSM_EBACKEND, "no CUDA device", cudaErrorNoDevice);
    cudaDeviceProp prop;
    e = cudaGetDeviceProperties(&prop, 0);
    if (e != cudaSuccess) return set_err(err, DSM_EBACKEND, "cannot query CUDA device 0", e);
    if (err) {
        snprintf(err->msg, sizeof err->msg, "found %s (sm_%d%d) but the CUDA ops are not implemented yet", prop.name,
                 prop.major, prop.minor);
        err->code = DSM_EUNSUPPORTED;
    }
    return DSM_EUNSUPPORTED;
}
