/* cuda_backend.cu - the CUDA backend module (libdsm_cuda.so), loaded by kernels/backend.c.
 *
 * State of this module: memory, the forward (inference) ops, the training ops (backward passes,
 * cross-entropy, reductions, optimizer steps) and error reporting through ->sync. All of them were
 * written and compiled on machines without a GPU and have not yet run on one,
 * so creation refuses (DSM_EUNSUPPORTED: "auto" falls back to the CPU and says why) unless
 * DSM_CUDA_UNVERIFIED=1; tests/unit/test_cuda.c sets it and compares every op with the CPU
 * backend. The one exported symbol is dsm_cuda_backend_create.
 *
 * Conventions: one stream per backend, every launch on it; ops are asynchronous and record the
 * first failure, which ->sync reports. Matrix products are cuBLAS: f32 weights through
 * cublasSgemm (pedantic f32, no TF32), bf16/f16 weights through cublasGemmEx with the input rows
 * rounded to the weights' dtype and f32 accumulation. Reductions run one block per row in a
 * fixed order, so results do not depend on the batch.
 */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern "C" {
#include "kernels/backend.h"
}

struct cuda_impl {
    cudaStream_t stream;
    cublasHandle_t blas;
    void *conv;           /* x rounded to 16 bits for bf16/f16 products */
    size_t conv_bytes;
    void *wide;           /* 16-bit weights widened to f32 for the backward products */
    size_t wide_bytes;
    void *work;           /* per-op scratch of the training ops */
    size_t work_bytes;
    int first_error;      /* a recorded failure: code, and its message below */
    char error[160];
    void *nccl_lib;       /* libnccl.so.2, opened at the first collective (dlopen: optional) */
    void *nccl_comm;      /* ncclComm_t of the data-parallel group, NULL outside one */
};

#define IMPL(be) ((struct cuda_impl *)(be)->impl)
#define THREADS 256

/* err.c is not linked into the module: fill the error struct directly. */
static int set_err(struct dsm_err *err, int code, const char *msg, cudaError_t e) {
    if (err) {
        snprintf(err->msg, sizeof err->msg, "%s: %s (CUDA error %d)", msg, cudaGetErrorString(e), (int)e);
        err->code = code;
    }
    return code;
}

/* Keep the first failure of an asynchronous op for ->sync. */
static void note(struct dsm_backend *be, const char *what, cudaError_t e) {
    struct cuda_impl *ci = IMPL(be);
    if (e == cudaSuccess || ci->first_error) return;
    ci->first_error = DSM_EBACKEND;
    snprintf(ci->error, sizeof ci->error, "%s: %s", what, cudaGetErrorString(e));
}

static void note_blas(struct dsm_backend *be, const char *what, cublasStatus_t s) {
    struct cuda_impl *ci = IMPL(be);
    if (s == CUBLAS_STATUS_SUCCESS || ci->first_error) return;
    ci->first_error = DSM_EBACKEND;
    snprintf(ci->error, sizeof ci->error, "%s: cuBLAS status %d", what, (int)s);
}

#define LAUNCHED(be, what) note((be), (what), cudaGetLastError())

static unsigned blocks_for(size_t n) { return (unsigned)((n + THREADS - 1) / THREADS); }

/* ---- element access ---- */

__device__ __forceinline__ float load_el(const void *p, size_t i, int dt) {
    if (dt == DSM_DT_BF16) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    if (dt == DSM_DT_F16) return __half2float(((const __half *)p)[i]);
    return ((const float *)p)[i];
}

__device__ __forceinline__ void store_el(void *p, size_t i, int dt, float x) {
    if (dt == DSM_DT_F16) ((__half *)p)[i] = __float2half_rn(x);
    else if (dt == DSM_DT_BF16) ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(x);
    else ((float *)p)[i] = x;
}

/* Block-wide reductions over THREADS threads; every thread gets the result. */
__device__ float block_sum(float x, float *sh) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    int w = threadIdx.x / 32, l = threadIdx.x % 32;
    __syncthreads();
    if (l == 0) sh[w] = x;
    __syncthreads();
    float t = 0.0f;
    for (int i = 0; i < THREADS / 32; i++) t += sh[i];
    return t;
}

__device__ float block_max(float x, float *sh) {
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    int w = threadIdx.x / 32, l = threadIdx.x % 32;
    __syncthreads();
    if (l == 0) sh[w] = x;
    __syncthreads();
    float t = -INFINITY;
    for (int i = 0; i < THREADS / 32; i++) t = fmaxf(t, sh[i]);
    return t;
}

/* ---- memory ---- */

static void *cu_alloc(struct dsm_backend *be, size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 64);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* an out-of-memory is the caller's NULL, not a sticky failure */
        return NULL;
    }
    (void)be;
    return p;
}

static void cu_free(struct dsm_backend *be, void *p) {
    if (!p) return;
    cudaStreamSynchronize(IMPL(be)->stream); /* kernels still reading p finish first */
    note(be, "cudaFree", cudaFree(p));
}

static void cu_upload(struct dsm_backend *be, void *dst, const void *src, size_t bytes) {
    note(be, "upload", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, IMPL(be)->stream));
    note(be, "upload", cudaStreamSynchronize(IMPL(be)->stream));
}

static void cu_download(struct dsm_backend *be, void *dst, const void *src, size_t bytes) {
    note(be, "download", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, IMPL(be)->stream));
    note(be, "download", cudaStreamSynchronize(IMPL(be)->stream));
}

static void cu_copy(struct dsm_backend *be, void *dst, const void *src, size_t bytes) {
    note(be, "copy", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, IMPL(be)->stream));
}

static void cu_zero(struct dsm_backend *be, void *dst, size_t bytes) {
    note(be, "zero", cudaMemsetAsync(dst, 0, bytes, IMPL(be)->stream));
}

static int cu_sync(struct dsm_backend *be, struct dsm_err *err) {
    struct cuda_impl *ci = IMPL(be);
    note(be, "stream", cudaStreamSynchronize(ci->stream));
    if (!ci->first_error) return DSM_OK;
    int code = ci->first_error;
    if (err) {
        snprintf(err->msg, sizeof err->msg, "CUDA: %s", ci->error);
        err->code = code;
    }
    ci->first_error = 0;
    return code;
}

/* ---- collectives: NCCL, loaded with dlopen so that the module starts where NCCL is not
 * installed (the types come from nccl.h; the functions are looked up by name). ---- */
#include <nccl.h>

struct nccl_api {
    ncclResult_t (*get_unique_id)(ncclUniqueId *);
    ncclResult_t (*comm_init_rank)(ncclComm_t *, int, ncclUniqueId, int);
    ncclResult_t (*all_reduce)(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t);
    ncclResult_t (*comm_destroy)(ncclComm_t);
    const char *(*get_error_string)(ncclResult_t);
};
static struct nccl_api g_nccl;

static int nccl_load(struct cuda_impl *ci, struct dsm_err *err) {
    if (ci->nccl_lib) return DSM_OK;
    void *h = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        if (err) snprintf(err->msg, sizeof err->msg, "NCCL is not installed (libnccl.so.2: %s)", dlerror()), err->code = DSM_EUNSUPPORTED;
        return DSM_EUNSUPPORTED;
    }
    g_nccl.get_unique_id = (ncclResult_t(*)(ncclUniqueId *))dlsym(h, "ncclGetUniqueId");
    g_nccl.comm_init_rank = (ncclResult_t(*)(ncclComm_t *, int, ncclUniqueId, int))dlsym(h, "ncclCommInitRank");
    g_nccl.all_reduce = (ncclResult_t(*)(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t,
                                         cudaStream_t))dlsym(h, "ncclAllReduce");
    g_nccl.comm_destroy = (ncclResult_t(*)(ncclComm_t))dlsym(h, "ncclCommDestroy");
    g_nccl.get_error_string = (const char *(*)(ncclResult_t))dlsym(h, "ncclGetErrorString");
    if (!g_nccl.get_unique_id || !g_nccl.comm_init_rank || !g_nccl.all_reduce || !g_nccl.comm_destroy ||
        !g_nccl.get_error_string) {
        dlclose(h);
        if (err) snprintf(err->msg, sizeof err->msg, "libnccl.so.2 lacks the NCCL 2 functions dsm needs"), err->code = DSM_EUNSUPPORTED;
        return DSM_EUNSUPPORTED;
    }
    ci->nccl_lib = h;
    return DSM_OK;
}

static int nccl_err(struct dsm_err *err, const char *what, ncclResult_t r) {
    if (err) snprintf(err->msg, sizeof err->msg, "%s: %s (NCCL %d)", what, g_nccl.get_error_string(r), (int)r), err->code = DSM_EBACKEND;
    return DSM_EBACKEND;
}

static int cu_coll_id(struct dsm_backend *be, void *id, size_t cap, size_t *len, struct dsm_err *err) {
    int rc = nccl_load(IMPL(be), err);
    if (rc) return rc;
    ncclUniqueId u;
    if (cap < sizeof u) {
        if (err) snprintf(err->msg, sizeof err->msg, "an NCCL id needs %zu bytes", sizeof u), err->code = DSM_EINVAL;
        return DSM_EINVAL;
    }
    ncclResult_t r = g_nccl.get_unique_id(&u);
    if (r != ncclSuccess) return nccl_err(err, "ncclGetUniqueId", r);
    memcpy(id, &u, sizeof u);
    *len = sizeof u;
    return DSM_OK;
}

static int cu_coll_init(struct dsm_backend *be, const void *id, size_t len, int rank, int world, struct dsm_err *err) {
    struct cuda_impl *ci = IMPL(be);
    int rc = nccl_load(ci, err);
    if (rc) return rc;
    ncclUniqueId u;
    if (len != sizeof u) {
        if (err) snprintf(err->msg, sizeof err->msg, "the NCCL id has %zu bytes, not %zu", len, sizeof u), err->code = DSM_EINVAL;
        return DSM_EINVAL;
    }
    memcpy(&u, id, sizeof u);
    ncclComm_t comm;
    ncclResult_t r = g_nccl.comm_init_rank(&comm, world, u, rank);
    if (r != ncclSuccess) return nccl_err(err, "ncclCommInitRank", r);
    ci->nccl_comm = comm;
    return DSM_OK;
}

/* Sum in place; NCCL's ring order is fixed for a fixed group and size, so every rank gets the
 * same bits (NCCL documents all-reduce results as identical across ranks). */
static int cu_coll_allreduce(struct dsm_backend *be, float *buf, size_t n, struct dsm_err *err) {
    struct cuda_impl *ci = IMPL(be);
    if (!ci->nccl_comm) {
        if (err) snprintf(err->msg, sizeof err->msg, "no NCCL group: join one first"), err->code = DSM_EINVAL;
        return DSM_EINVAL;
    }
    ncclResult_t r = g_nccl.all_reduce(buf, buf, n, ncclFloat32, ncclSum, (ncclComm_t)ci->nccl_comm, ci->stream);
    if (r != ncclSuccess) return nccl_err(err, "ncclAllReduce", r);
    cudaError_t e = cudaStreamSynchronize(ci->stream);
    return e == cudaSuccess ? DSM_OK : set_err(err, DSM_EBACKEND, "the NCCL all-reduce failed", e);
}

static void cu_coll_fini(struct dsm_backend *be) {
    struct cuda_impl *ci = IMPL(be);
    if (ci->nccl_comm) g_nccl.comm_destroy((ncclComm_t)ci->nccl_comm);
    ci->nccl_comm = NULL; /* the library stays loaded: NCCL keeps threads and handlers */
}

static int cu_mem_info(struct dsm_backend *be, size_t *free_bytes, size_t *total_bytes) {
    (void)be;
    return cudaMemGetInfo(free_bytes, total_bytes) == cudaSuccess ? 0 : -1;
}

static void cu_destroy(struct dsm_backend *be) {
    if (!be) return;
    struct cuda_impl *ci = IMPL(be);
    if (ci) {
        cu_coll_fini(be);
        cudaStreamSynchronize(ci->stream);
        cudaFree(ci->conv), cudaFree(ci->wide), cudaFree(ci->work);
        cublasDestroy(ci->blas);
        cudaStreamDestroy(ci->stream);
        free(ci);
    }
    free(be);
}

/* A device buffer of at least need bytes in *buf (grown, contents lost); NULL (and a recorded
 * failure naming what) when the device has no room. */
static void *grow(struct dsm_backend *be, void **buf, size_t *cap, size_t need, const char *what) {
    if (need <= *cap) return *buf;
    cudaStreamSynchronize(IMPL(be)->stream);
    cudaFree(*buf);
    *buf = NULL, *cap = 0;
    if (cudaMalloc(buf, need) != cudaSuccess) {
        (void)cudaGetLastError();
        *buf = NULL;
        char msg[120];
        snprintf(msg, sizeof msg, "no device memory for %s (%zu bytes)", what, need);
        note(be, msg, cudaErrorMemoryAllocation);
        return NULL;
    }
    *cap = need;
    return *buf;
}

/* ---- linear ---- */

__global__ void k_round16(void *dst, const float *src, size_t n, int dt) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) store_el(dst, i, dt, src[i]);
}

__global__ void k_add_bias(float *out, const float *bias, int M, int N) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (size_t)M * N) out[i] += bias[i % N];
}

static void cu_linear(struct dsm_backend *be, float *out, const float *x, const void *w, enum dsm_dtype wdt,
                      const float *bias, int M, int N, int K) {
    struct cuda_impl *ci = IMPL(be);
    const float one = 1.0f, zero = 0.0f;
    /* row-major out (M, N) = x (M, K) · w (N, K)ᵀ is column-major outᵀ (N, M) = wᵀᵀ · xᵀ: w read
     * as a (K, N) column-major matrix, transposed; x as (K, M), not transposed. */
    if (wdt == DSM_DT_F32) {
        note_blas(be, "sgemm", cublasSgemm(ci->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, (const float *)w, K, x, K,
                                           &zero, out, N));
    } else {
        if (!grow(be, &ci->conv, &ci->conv_bytes, (size_t)M * K * 2, "linear: the 16-bit input rows")) return;
        size_t n = (size_t)M * K;
        k_round16<<<blocks_for(n), THREADS, 0, ci->stream>>>(ci->conv, x, n, (int)wdt);
        LAUNCHED(be, "linear: round");
        cudaDataType t = wdt == DSM_DT_BF16 ? CUDA_R_16BF : CUDA_R_16F;
        note_blas(be, "gemm", cublasGemmEx(ci->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, w, t, K, ci->conv, t, K,
                                           &zero, out, CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
    if (bias) {
        k_add_bias<<<blocks_for((size_t)M * N), THREADS, 0, ci->stream>>>(out, bias, M, N);
        LAUNCHED(be, "linear: bias");
    }
}

/* ---- row ops ---- */

__global__ void k_embedding(float *out, const int32_t *ids, const void *table, int dt, int T, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)T * C) return;
    size_t t = i / C, c = i % C;
    out[i] = load_el(table, (size_t)ids[t] * C + c, dt);
}

static void cu_embedding(struct dsm_backend *be, float *out, const int32_t *ids, const void *table, enum dsm_dtype dt,
                         int T, int C) {
    k_embedding<<<blocks_for((size_t)T * C), THREADS, 0, IMPL(be)->stream>>>(out, ids, table, (int)dt, T, C);
    LAUNCHED(be, "embedding");
}

__global__ void k_rmsnorm(float *out, const float *x, const float *w, int C, float eps) {
    __shared__ float sh[THREADS / 32];
    const float *xr = x + (size_t)blockIdx.x * C;
    float *o = out + (size_t)blockIdx.x * C;
    float ss = 0.0f;
    for (int c = threadIdx.x; c < C; c += THREADS) ss += xr[c] * xr[c];
    ss = block_sum(ss, sh); /* every read of x is done before any write: out may alias x */
    float inv = 1.0f / sqrtf(ss / (float)C + eps);
    for (int c = threadIdx.x; c < C; c += THREADS) o[c] = (xr[c] * inv) * w[c];
}

static void cu_rmsnorm(struct dsm_backend *be, float *out, const float *x, const float *w, int T, int C, float eps) {
    if (T <= 0) return;
    k_rmsnorm<<<T, THREADS, 0, IMPL(be)->stream>>>(out, x, w, C, eps);
    LAUNCHED(be, "rmsnorm");
}

/* The rotation of rope, or (sgn = -1, the sine negated) its transpose for the backward pass. */
__global__ void k_rope(float *x, const int32_t *pos, const float *cs, const float *sn, int T, int H, int D,
                       int stride, float sgn) {
    int half = D / 2;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)T * H * half) return;
    int t = (int)(i / ((size_t)H * half)), h = (int)(i / half % H), j = (int)(i % half);
    float c = cs[(size_t)pos[t] * half + j], s = sgn * sn[(size_t)pos[t] * half + j];
    float *r = x + (size_t)t * stride + (size_t)h * D;
    float a = r[j], b = r[j + half];
    r[j] = a * c - b * s;
    r[j + half] = b * c + a * s;
}

static void cu_rope(struct dsm_backend *be, float *x, const int32_t *pos, const float *cs, const float *sn, int T,
                    int H, int D, int stride) {
    size_t n = (size_t)T * H * (D / 2);
    if (!n) return;
    k_rope<<<blocks_for(n), THREADS, 0, IMPL(be)->stream>>>(x, pos, cs, sn, T, H, D, stride, 1.0f);
    LAUNCHED(be, "rope");
}

/* ---- attention ----
 * One block per (query, head): scores of the n keys into p (global scratch), a block-wide
 * softmax, then each thread owns output elements d and sums p[s] v[s][d] over s in order. */

__device__ void attend(float *o, float *p, const float *q, int n, const void *k1, const void *v1, int n1,
                       const void *k2, const void *v2, size_t stride, int dt, int D, float scale) {
    __shared__ float sh[THREADS / 32];
    for (int s = threadIdx.x; s < n; s += THREADS) {
        const void *kb = s < n1 ? k1 : k2;
        size_t row = (size_t)(s < n1 ? s : s - n1) * stride;
        float d = 0.0f;
        for (int i = 0; i < D; i++) d += q[i] * load_el(kb, row + i, dt);
        p[s] = d * scale;
    }
    float mx = -INFINITY;
    for (int s = threadIdx.x; s < n; s += THREADS) mx = fmaxf(mx, p[s]);
    mx = block_max(mx, sh);
    float sum = 0.0f;
    for (int s = threadIdx.x; s < n; s += THREADS) {
        float e = expf(p[s] - mx);
        p[s] = e;
        sum += e;
    }
    sum = block_sum(sum, sh); /* also orders the writes to p before the reads below */
    float inv = 1.0f / sum;
    for (int i = threadIdx.x; i < D; i += THREADS) {
        float acc = 0.0f;
        for (int s = 0; s < n; s++) {
            const void *vb = s < n1 ? v1 : v2;
            size_t row = (size_t)(s < n1 ? s : s - n1) * stride;
            acc += p[s] * load_el(vb, row + i, dt);
        }
        o[i] = acc * inv;
    }
}

__global__ void k_attention(float *out, const float *q, const float *k, const float *v, float *scratch, int pos0,
                            int S, int Hq, int Hkv, int D, float scale) {
    int t = blockIdx.x, h = blockIdx.y, kh = h / (Hq / Hkv);
    size_t KV = (size_t)Hkv * D;
    int n = pos0 + t + 1;
    const float *kb = k + (size_t)kh * D, *vb = v + (size_t)kh * D;
    attend(out + ((size_t)t * Hq + h) * D, scratch + ((size_t)t * Hq + h) * S, q + ((size_t)t * Hq + h) * D, n, kb, vb,
           n, kb, vb, KV, DSM_DT_F32, D, scale);
}

static size_t cu_attention_scratch(struct dsm_backend *be, int T, int S, int Hq) {
    (void)be;
    return (size_t)T * S * Hq;
}

static void cu_attention(struct dsm_backend *be, float *out, const float *q, const float *k, const float *v,
                         float *scratch, int T, int pos0, int Hq, int Hkv, int D, float scale) {
    if (T <= 0) return;
    dim3 grid((unsigned)T, (unsigned)Hq);
    k_attention<<<grid, THREADS, 0, IMPL(be)->stream>>>(out, q, k, v, scratch, pos0, pos0 + T, Hq, Hkv, D, scale);
    LAUNCHED(be, "attention");
}

__global__ void k_attention_decode(float *out, const float *q, const void *k, const void *v, int dt,
                                   const int32_t *slot, const int32_t *len, const int32_t *pslot,
                                   const int32_t *plen, size_t slot_stride, int cap, float *scratch, int Hq, int Hkv,
                                   int D, float scale) {
    int b = blockIdx.x, h = blockIdx.y, kh = h / (Hq / Hkv);
    size_t es = dt == DSM_DT_F16 ? 2 : 4, head = (size_t)kh * cap * D;
    size_t pre = ((size_t)pslot[b] * slot_stride + head) * es, own = ((size_t)slot[b] * slot_stride + head) * es;
    int n1 = plen[b];
    /* the own slot's rows continue at position n1 */
    const char *k2 = (const char *)k + own + (size_t)n1 * D * es, *v2 = (const char *)v + own + (size_t)n1 * D * es;
    attend(out + ((size_t)b * Hq + h) * D, scratch + ((size_t)b * Hq + h) * cap, q + ((size_t)b * Hq + h) * D, len[b],
           (const char *)k + pre, (const char *)v + pre, n1, k2, v2, (size_t)D, dt, D, scale);
}

static void cu_attention_decode(struct dsm_backend *be, float *out, const float *q, const void *k, const void *v,
                                enum dsm_dtype kvdt, const int32_t *slot, const int32_t *len, const int32_t *pslot,
                                const int32_t *plen, size_t slot_stride, int cap, float *scratch, int B, int Hq,
                                int Hkv, int D, float scale) {
    if (B <= 0) return;
    dim3 grid((unsigned)B, (unsigned)Hq);
    k_attention_decode<<<grid, THREADS, 0, IMPL(be)->stream>>>(out, q, k, v, (int)kvdt, slot, len, pslot, plen,
                                                               slot_stride, cap, scratch, Hq, Hkv, D, scale);
    LAUNCHED(be, "attention_decode");
}

__global__ void k_kv_scatter(void *pool, int dt, const float *src, const int32_t *slot, const int32_t *pos,
                             size_t slot_stride, int cap, int B, int Hkv, int D) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)B * Hkv * D) return;
    int b = (int)(i / ((size_t)Hkv * D)), h = (int)(i / D % Hkv), d = (int)(i % D);
    store_el(pool, (size_t)slot[b] * slot_stride + ((size_t)h * cap + pos[b]) * D + d, dt, src[i]);
}

static void cu_kv_scatter(struct dsm_backend *be, void *pool, enum dsm_dtype kvdt, const float *src,
                          const int32_t *slot, const int32_t *pos, size_t slot_stride, int cap, int B, int Hkv,
                          int D) {
    size_t n = (size_t)B * Hkv * D;
    if (!n) return;
    k_kv_scatter<<<blocks_for(n), THREADS, 0, IMPL(be)->stream>>>(pool, (int)kvdt, src, slot, pos, slot_stride, cap, B,
                                                                   Hkv, D);
    LAUNCHED(be, "kv_scatter");
}

__global__ void k_kv_store(void *dst, int dt, const float *src, int n, int cap, int Hkv, int D) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)n * Hkv * D) return;
    int t = (int)(i / ((size_t)Hkv * D)), h = (int)(i / D % Hkv), d = (int)(i % D);
    store_el(dst, ((size_t)h * cap + t) * D + d, dt, src[i]);
}

static void cu_kv_store(struct dsm_backend *be, void *dst, enum dsm_dtype dt, const float *src, int n, int cap,
                        int Hkv, int D) {
    size_t total = (size_t)n * Hkv * D;
    if (!total) return;
    k_kv_store<<<blocks_for(total), THREADS, 0, IMPL(be)->stream>>>(dst, (int)dt, src, n, cap, Hkv, D);
    LAUNCHED(be, "kv_store");
}

/* ---- elementwise and softmax ---- */

__global__ void k_swiglu(float *out, const float *g, const float *u, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void cu_swiglu(struct dsm_backend *be, float *out, const float *gate, const float *up, size_t n) {
    if (!n) return;
    k_swiglu<<<blocks_for(n), THREADS, 0, IMPL(be)->stream>>>(out, gate, up, n);
    LAUNCHED(be, "swiglu");
}

__global__ void k_add(float *out, const float *a, const float *b, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = a[i] + b[i];
}

static void cu_add(struct dsm_backend *be, float *out, const float *a, const float *b, size_t n) {
    if (!n) return;
    k_add<<<blocks_for(n), THREADS, 0, IMPL(be)->stream>>>(out, a, b, n);
    LAUNCHED(be, "add");
}

__global__ void k_softmax(float *out, const float *x, int C, int log_out) {
    __shared__ float sh[THREADS / 32];
    const float *xr = x + (size_t)blockIdx.x * C;
    float *o = out + (size_t)blockIdx.x * C;
    float mx = -INFINITY;
    for (int c = threadIdx.x; c < C; c += THREADS) mx = fmaxf(mx, xr[c]);
    mx = block_max(mx, sh);
    float sum = 0.0f;
    for (int c = threadIdx.x; c < C; c += THREADS) sum += expf(xr[c] - mx);
    sum = block_sum(sum, sh); /* all reads of x precede the writes: out may alias x */
    if (log_out) {
        float lse = mx + logf(sum);
        for (int c = threadIdx.x; c < C; c += THREADS) o[c] = xr[c] - lse;
    } else {
        float inv = 1.0f / sum;
        for (int c = threadIdx.x; c < C; c += THREADS) o[c] = expf(xr[c] - mx) * inv;
    }
}

static void cu_softmax(struct dsm_backend *be, float *out, const float *x, int R, int C) {
    if (R <= 0) return;
    k_softmax<<<R, THREADS, 0, IMPL(be)->stream>>>(out, x, C, 0);
    LAUNCHED(be, "softmax");
}

static void cu_log_softmax(struct dsm_backend *be, float *out, const float *x, int R, int C) {
    if (R <= 0) return;
    k_softmax<<<R, THREADS, 0, IMPL(be)->stream>>>(out, x, C, 1);
    LAUNCHED(be, "log_softmax");
}

/* ---- training ops ----
 * Every reduction has one owner thread or block that sums in a fixed order (no atomics), so a
 * run is bit-reproducible; "+=" outputs accumulate into what the caller holds, as backend.h says. */

__global__ void k_widen(float *dst, const void *src, size_t n, int dt) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = load_el(src, i, dt);
}

__global__ void k_colsum_add(float *db, const float *dout, int M, int N) {
    int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    float s = 0.0f;
    for (int m = 0; m < M; m++) s += dout[(size_t)m * N + n];
    db[n] += s;
}

static void cu_linear_backward(struct dsm_backend *be, float *dx, float *dw, float *db, const float *dout,
                               const float *x, const void *w, enum dsm_dtype wdt, int M, int N, int K,
                               int accumulate_dx) {
    struct cuda_impl *ci = IMPL(be);
    const float one = 1.0f, zero = 0.0f;
    if (dx) { /* row-major dx (M, K) = dout (M, N) · w (N, K): column-major dxᵀ = wᵀ · doutᵀ */
        const float *wf = (const float *)w;
        if (wdt != DSM_DT_F32) {
            size_t n = (size_t)N * K;
            if (!grow(be, &ci->wide, &ci->wide_bytes, n * sizeof(float), "linear_backward: widened weights")) return;
            k_widen<<<blocks_for(n), THREADS, 0, ci->stream>>>((float *)ci->wide, w, n, (int)wdt);
            LAUNCHED(be, "linear_backward: widen");
            wf = (const float *)ci->wide;
        }
        note_blas(be, "linear_backward dx", cublasSgemm(ci->blas, CUBLAS_OP_N, CUBLAS_OP_N, K, M, N, &one, wf, K, dout,
                                                        N, accumulate_dx ? &one : &zero, dx, K));
    }
    if (dw) /* dw (N, K) += doutᵀ · x: column-major dwᵀ (K, N) += xᵀ (K, M) · dout (M, N) */
        note_blas(be, "linear_backward dw",
                  cublasSgemm(ci->blas, CUBLAS_OP_N, CUBLAS_OP_T, K, N, M, &one, x, K, dout, N, &one, dw, K));
    if (db) {
        k_colsum_add<<<blocks_for((size_t)N), THREADS, 0, ci->stream>>>(db, dout, M, N);
        LAUNCHED(be, "linear_backward db");
    }
}

__global__ void k_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int T, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    for (int t = 0; t < T; t++) dtable[(size_t)ids[t] * C + c] += dout[(size_t)t * C + c];
}

static void cu_embedding_backward(struct dsm_backend *be, float *dtable, const float *dout, const int32_t *ids, int T,
                                  int C) {
    if (T <= 0) return;
    k_embedding_backward<<<blocks_for((size_t)C), THREADS, 0, IMPL(be)->stream>>>(dtable, dout, ids, T, C);
    LAUNCHED(be, "embedding_backward");
}

/* dx rows, and r (T) for the dw pass */
__global__ void k_rmsnorm_backward(float *dx, float *rs, const float *dout, const float *x, const float *w, int C,
                                   float eps) {
    __shared__ float sh[THREADS / 32];
    size_t off = (size_t)blockIdx.x * C;
    float ss = 0.0f, dot = 0.0f;
    for (int c = threadIdx.x; c < C; c += THREADS) {
        ss += x[off + c] * x[off + c];
        dot += dout[off + c] * w[c] * x[off + c];
    }
    ss = block_sum(ss, sh);
    dot = block_sum(dot, sh);
    float r = 1.0f / sqrtf(ss / (float)C + eps), k = r * r * r * dot / (float)C;
    for (int c = threadIdx.x; c < C; c += THREADS) dx[off + c] += r * dout[off + c] * w[c] - x[off + c] * k;
    if (threadIdx.x == 0) rs[blockIdx.x] = r;
}

__global__ void k_rmsnorm_dw(float *dw, const float *rs, const float *dout, const float *x, int T, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float s = 0.0f;
    for (int t = 0; t < T; t++) s += dout[(size_t)t * C + c] * x[(size_t)t * C + c] * rs[t];
    dw[c] += s;
}

static void cu_rmsnorm_backward(struct dsm_backend *be, float *dx, float *dw, const float *dout, const float *x,
                                const float *w, int T, int C, float eps) {
    struct cuda_impl *ci = IMPL(be);
    if (T <= 0) return;
    float *rs = (float *)grow(be, &ci->work, &ci->work_bytes, sizeof(float) * (size_t)T, "rmsnorm_backward");
    if (!rs) return;
    k_rmsnorm_backward<<<T, THREADS, 0, ci->stream>>>(dx, rs, dout, x, w, C, eps);
    LAUNCHED(be, "rmsnorm_backward");
    if (dw) {
        k_rmsnorm_dw<<<blocks_for((size_t)C), THREADS, 0, ci->stream>>>(dw, rs, dout, x, T, C);
        LAUNCHED(be, "rmsnorm_backward dw");
    }
}

static void cu_rope_backward(struct dsm_backend *be, float *g, const int32_t *pos, const float *cs, const float *sn,
                             int T, int H, int D, int stride) {
    size_t n = (size_t)T * H * (D / 2);
    if (!n) return;
    k_rope<<<blocks_for(n), THREADS, 0, IMPL(be)->stream>>>(g, pos, cs, sn, T, H, D, stride, -1.0f);
    LAUNCHED(be, "rope_backward");
}

/* Attention backward, pass 1, one block per (query t, head h): P row (softmax of the causal
 * scores) and dS row = P ∘ (dP − Σ P∘dP) · scale into scratch (Hq, T, T), and dq row = dS · K. */
__global__ void k_attn_bwd_rows(float *dq, float *P, float *dS, const float *dout, const float *q, const float *k,
                                const float *v, int T, int Hq, int Hkv, int D, float scale) {
    __shared__ float sh[THREADS / 32];
    int t = blockIdx.x, h = blockIdx.y, kh = h / (Hq / Hkv), n = t + 1;
    size_t Q = (size_t)Hq * D, KV = (size_t)Hkv * D;
    const float *qr = q + (size_t)t * Q + (size_t)h * D, *dr = dout + (size_t)t * Q + (size_t)h * D;
    float *p = P + ((size_t)h * T + t) * T, *ds = dS + ((size_t)h * T + t) * T;
    float mx = -INFINITY;
    for (int s = threadIdx.x; s < n; s += THREADS) {
        const float *kr = k + (size_t)s * KV + (size_t)kh * D, *vr = v + (size_t)s * KV + (size_t)kh * D;
        float a = 0.0f, b = 0.0f;
        for (int i = 0; i < D; i++) a += qr[i] * kr[i], b += dr[i] * vr[i];
        p[s] = a * scale;
        ds[s] = b; /* dP for now */
        mx = fmaxf(mx, p[s]);
    }
    mx = block_max(mx, sh);
    float sum = 0.0f;
    for (int s = threadIdx.x; s < n; s += THREADS) sum += (p[s] = expf(p[s] - mx));
    sum = block_sum(sum, sh);
    float inv = 1.0f / sum, rowdot = 0.0f;
    for (int s = threadIdx.x; s < n; s += THREADS) {
        p[s] *= inv;
        rowdot += p[s] * ds[s];
    }
    rowdot = block_sum(rowdot, sh);
    for (int s = threadIdx.x; s < T; s += THREADS) {
        if (s < n) ds[s] = p[s] * (ds[s] - rowdot) * scale;
        else p[s] = ds[s] = 0.0f;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < D; i += THREADS) {
        float a = 0.0f;
        for (int s = 0; s < n; s++) a += ds[s] * k[(size_t)s * KV + (size_t)kh * D + i];
        dq[(size_t)t * Q + (size_t)h * D + i] = a;
    }
}

/* Pass 2, one block per (key s, kv head kh): dv = Σ_h Σ_t P[h][t][s] dout[t][h], dk = Σ_h Σ_t dS q. */
__global__ void k_attn_bwd_cols(float *dk, float *dv, const float *P, const float *dS, const float *dout,
                                const float *q, int T, int Hq, int Hkv, int D) {
    int s = blockIdx.x, kh = blockIdx.y, group = Hq / Hkv;
    size_t Q = (size_t)Hq * D, KV = (size_t)Hkv * D;
    for (int i = threadIdx.x; i < D; i += THREADS) {
        float a = 0.0f, b = 0.0f;
        for (int j = 0; j < group; j++) {
            int h = kh * group + j;
            for (int t = s; t < T; t++) {
                size_t pt = ((size_t)h * T + t) * T + s, qt = (size_t)t * Q + (size_t)h * D + i;
                a += P[pt] * dout[qt];
                b += dS[pt] * q[qt];
            }
        }
        dv[(size_t)s * KV + (size_t)kh * D + i] = a;
        dk[(size_t)s * KV + (size_t)kh * D + i] = b;
    }
}

static void cu_attention_backward(struct dsm_backend *be, float *dq, float *dk, float *dv, const float *dout,
                                  const float *q, const float *k, const float *v, int T, int Hq, int Hkv, int D,
                                  float scale) {
    struct cuda_impl *ci = IMPL(be);
    if (T <= 0) return;
    size_t tt = (size_t)Hq * T * T;
    float *P = (float *)grow(be, &ci->work, &ci->work_bytes, 2 * tt * sizeof(float), "attention_backward (2 Hq T² floats)");
    if (!P) return;
    k_attn_bwd_rows<<<dim3((unsigned)T, (unsigned)Hq), THREADS, 0, ci->stream>>>(dq, P, P + tt, dout, q, k, v, T, Hq,
                                                                                  Hkv, D, scale);
    LAUNCHED(be, "attention_backward rows");
    k_attn_bwd_cols<<<dim3((unsigned)T, (unsigned)Hkv), THREADS, 0, ci->stream>>>(dk, dv, P, P + tt, dout, q, T, Hq,
                                                                                   Hkv, D);
    LAUNCHED(be, "attention_backward cols");
}

__global__ void k_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                                  size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g = gate[i], u = up[i], d = dout[i];
    float s = 1.0f / (1.0f + expf(-g));
    dup[i] = d * g * s;
    dgate[i] = d * u * s * (1.0f + g * (1.0f - s));
}

static void cu_swiglu_backward(struct dsm_backend *be, float *dgate, float *dup, const float *dout, const float *gate,
                               const float *up, size_t n) {
    if (!n) return;
    k_swiglu_backward<<<blocks_for(n), THREADS, 0, IMPL(be)->stream>>>(dgate, dup, dout, gate, up, n);
    LAUNCHED(be, "swiglu_backward");
}

__global__ void k_cross_entropy(float *logp, float *dlogits, const float *logits, const int32_t *targets, int V,
                                float grad_scale) {
    __shared__ float sh[THREADS / 32];
    int r = blockIdx.x, tg = targets[r];
    const float *x = logits + (size_t)r * V;
    float mx = -INFINITY;
    for (int c = threadIdx.x; c < V; c += THREADS) mx = fmaxf(mx, x[c]);
    mx = block_max(mx, sh);
    float sum = 0.0f;
    for (int c = threadIdx.x; c < V; c += THREADS) sum += expf(x[c] - mx);
    sum = block_sum(sum, sh); /* every read of x precedes the writes of d, which may alias it */
    float lse = mx + logf(sum);
    if (threadIdx.x == 0) logp[r] = tg >= 0 ? x[tg] - lse : 0.0f;
    if (!dlogits) return;
    __syncthreads(); /* thread 0 has read x[tg] before its owner overwrites it */
    float *d = dlogits + (size_t)r * V;
    for (int c = threadIdx.x; c < V; c += THREADS)
        d[c] = tg < 0 ? 0.0f : grad_scale * expf(x[c] - lse) - (c == tg ? grad_scale : 0.0f);
}

static void cu_cross_entropy(struct dsm_backend *be, float *logp, float *dlogits, const float *logits,
                             const int32_t *targets, int R, int V, float grad_scale) {
    if (R <= 0) return;
    k_cross_entropy<<<R, THREADS, 0, IMPL(be)->stream>>>(logp, dlogits, logits, targets, V, grad_scale);
    LAUNCHED(be, "cross_entropy");
}

#define SUMSQ_BLOCKS 256
__global__ void k_sumsq_part(double *part, const float *x, size_t n) {
    __shared__ double sh[THREADS];
    double s = 0.0;
    size_t lo = n * blockIdx.x / SUMSQ_BLOCKS, hi = n * (blockIdx.x + 1) / SUMSQ_BLOCKS;
    for (size_t i = lo + threadIdx.x; i < hi; i += THREADS) s += (double)x[i] * x[i];
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int o = THREADS / 2; o > 0; o >>= 1) {
        if (threadIdx.x < o) sh[threadIdx.x] += sh[threadIdx.x + o];
        __syncthreads();
    }
    if (threadIdx.x == 0) part[blockIdx.x] = sh[0];
}

__global__ void k_sumsq_total(float *out, const double *part) {
    double s = 0.0;
    for (int i = 0; i < SUMSQ_BLOCKS; i++) s += part[i];
    out[0] = (float)s;
}

static void cu_sumsq(struct dsm_backend *be, float *out, const float *x, size_t n) {
    struct cuda_impl *ci = IMPL(be);
    double *part = (double *)grow(be, &ci->work, &ci->work_bytes, sizeof(double) * SUMSQ_BLOCKS, "sumsq");
    if (!part) return;
    k_sumsq_part<<<SUMSQ_BLOCKS, THREADS, 0, ci->stream>>>(part, x, n);
    k_sumsq_total<<<1, 1, 0, ci->stream>>>(out, part);
    LAUNCHED(be, "sumsq");
}

__global__ void k_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2, float eps,
                        float wd, float ib1, float isb2, float gscale) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float gi = g[i] * gscale;
    float mi = b1 * m[i] + (1.0f - b1) * gi;
    float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= lr * (wd * p[i] + (mi * ib1) / (sqrtf(vi) * isb2 + eps));
}

static void cu_adamw(struct dsm_backend *be, float *p, const float *g, float *m, float *v, size_t n, float lr, float b1,
                     float b2, float eps, float wd, float bc1, float bc2, float gscale) {
    if (!n) return;
    k_adamw<<<blocks_for(n), THREADS, 0, IMPL(be)->stream>>>(p, g, m, v, n, lr, b1, b2, eps, wd, 1.0f / bc1,
                                                             1.0f / sqrtf(bc2), gscale);
    LAUNCHED(be, "adamw");
}

__global__ void k_sgd(float *p, const float *g, size_t n, float lr, float wd, float gscale) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) p[i] -= lr * (gscale * g[i] + wd * p[i]);
}

static void cu_sgd(struct dsm_backend *be, float *p, const float *g, size_t n, float lr, float wd, float gscale) {
    if (!n) return;
    k_sgd<<<blocks_for(n), THREADS, 0, IMPL(be)->stream>>>(p, g, n, lr, wd, gscale);
    LAUNCHED(be, "sgd");
}

__global__ void k_scale(float *x, size_t n, float alpha) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= alpha;
}

static void cu_scale(struct dsm_backend *be, float *x, size_t n, float alpha) {
    if (!n) return;
    k_scale<<<blocks_for(n), THREADS, 0, IMPL(be)->stream>>>(x, n, alpha);
    LAUNCHED(be, "scale");
}

__global__ void k_dropout(float *out, const float *x, size_t n, float p, float k, uint64_t seed) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = dsm_dropout_keep(seed, i, p) ? x[i] * k : 0.0f;
}

static void cu_dropout(struct dsm_backend *be, float *out, const float *x, size_t n, float p, uint64_t seed) {
    if (!n) return;
    k_dropout<<<blocks_for(n), THREADS, 0, IMPL(be)->stream>>>(out, x, n, p, (float)(1.0 / (1.0 - p)), seed);
    LAUNCHED(be, "dropout");
}

/* ---- creation ---- */

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
    const char *ok = getenv("DSM_CUDA_UNVERIFIED");
    if (!ok || strcmp(ok, "1") != 0) {
        if (err) {
            snprintf(err->msg, sizeof err->msg,
                     "found %s (sm_%d%d), but the CUDA ops have not been verified on a device yet "
                     "(DSM_CUDA_UNVERIFIED=1 uses them)",
                     prop.name, prop.major, prop.minor);
            err->code = DSM_EUNSUPPORTED;
        }
        return DSM_EUNSUPPORTED;
    }
    struct dsm_backend *be = (struct dsm_backend *)calloc(1, sizeof *be);
    struct cuda_impl *ci = (struct cuda_impl *)calloc(1, sizeof *ci);
    if (!be || !ci) {
        free(be), free(ci);
        if (err) snprintf(err->msg, sizeof err->msg, "out of memory"), err->code = DSM_ENOMEM;
        return DSM_ENOMEM;
    }
    if ((e = cudaSetDevice(0)) != cudaSuccess || (e = cudaStreamCreate(&ci->stream)) != cudaSuccess) {
        free(be), free(ci);
        return set_err(err, DSM_EBACKEND, "cannot start CUDA device 0", e);
    }
    cublasStatus_t bs = cublasCreate(&ci->blas);
    if (bs != CUBLAS_STATUS_SUCCESS || cublasSetStream(ci->blas, ci->stream) != CUBLAS_STATUS_SUCCESS ||
        cublasSetMathMode(ci->blas, CUBLAS_PEDANTIC_MATH) != CUBLAS_STATUS_SUCCESS) {
        cudaStreamDestroy(ci->stream);
        free(be), free(ci);
        if (err) snprintf(err->msg, sizeof err->msg, "cuBLAS did not start (status %d)", (int)bs), err->code = DSM_EBACKEND;
        return DSM_EBACKEND;
    }
    be->name = "cuda";
    be->impl = ci;
    be->abi = DSM_BACKEND_ABI;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    be->host_threads = ncpu < 1 ? 1 : ncpu > 16 ? 16 : (int)ncpu; /* sampling the downloaded logits */
    be->alloc = cu_alloc, be->free = cu_free, be->upload = cu_upload, be->download = cu_download;
    be->copy = cu_copy, be->zero = cu_zero, be->sync = cu_sync, be->destroy = cu_destroy;
    be->linear = cu_linear, be->embedding = cu_embedding, be->rmsnorm = cu_rmsnorm, be->rope = cu_rope;
    be->attention = cu_attention, be->attention_scratch = cu_attention_scratch;
    be->attention_decode = cu_attention_decode, be->kv_scatter = cu_kv_scatter, be->kv_store = cu_kv_store;
    be->swiglu = cu_swiglu, be->add = cu_add, be->softmax = cu_softmax, be->log_softmax = cu_log_softmax;
    be->linear_backward = cu_linear_backward, be->embedding_backward = cu_embedding_backward;
    be->rmsnorm_backward = cu_rmsnorm_backward, be->rope_backward = cu_rope_backward;
    be->attention_backward = cu_attention_backward, be->swiglu_backward = cu_swiglu_backward;
    be->cross_entropy = cu_cross_entropy, be->sumsq = cu_sumsq, be->adamw = cu_adamw, be->sgd = cu_sgd;
    be->scale = cu_scale, be->dropout = cu_dropout;
    be->mem_info = cu_mem_info;
    be->coll_id = cu_coll_id, be->coll_init = cu_coll_init, be->coll_allreduce = cu_coll_allreduce, be->coll_fini = cu_coll_fini;
    snprintf(be->desc, sizeof be->desc, "CUDA %s (sm_%d%d, %.0f GiB), cuBLAS (unverified)", prop.name,
             prop.major, prop.minor, (double)prop.totalGlobalMem / (1u << 30));
    *out = be;
    return DSM_OK;
}
