/* backend.h - the compute backend interface: a struct of function pointers.
 *
 * A backend owns a device (CPU memory, or one CUDA device with one stream) and provides memory
 * management and the ops the transformer needs. There is no model knowledge here.
 *
 * Conventions every backend follows:
 *  - Every tensor pointer passed to an op is *device memory* of that backend (from ->alloc).
 *    Host data enters with ->upload and leaves with ->download.
 *  - Ops are enqueued in order on the backend's single stream and may run asynchronously; they
 *    return nothing. Argument errors are programming errors (checked by DSM_ASSERT in the public
 *    wrappers of backend.c). Run-time failures of the device (a CUDA fault) surface from ->sync,
 *    which waits for all queued work. ->download is synchronous.
 *  - Tensors are row-major, contiguous, float32 unless a dtype argument says otherwise. Shape
 *    comments list outputs first, then inputs, then weights, then sizes.
 *  - Linear weights are stored (N, K) as Hugging Face stores them: y = x · Wᵀ + b.
 *  - Index tensors (token ids, positions) are int32 in device memory.
 *
 * Backends: "cpu" (OpenBLAS + OpenMP fast ops), "ref" (the naive reference ops from
 * kernels/cpu/ref.c on CPU memory: the oracle, never optimised), and "cuda" (libdsm_cuda.so,
 * loaded with dlopen by dsm_backend_open; its absence is not an error for "auto").
 */
#ifndef DSM_BACKEND_H
#define DSM_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum dsm_dtype { DSM_DT_F32 = 0, DSM_DT_F16 = 1, DSM_DT_BF16 = 2 };

/* Bytes per element of dt. */
size_t dsm_dtype_size(enum dsm_dtype dt);
/* "f32", "f16", "bf16". */
const char *dsm_dtype_name(enum dsm_dtype dt);

/* ABI version of struct dsm_backend; a CUDA module built against another version is refused. */
#define DSM_BACKEND_ABI 5

struct dsm_backend {
    const char *name; /* "cpu", "ref", "cuda" */
    char desc[160];   /* human description: device name, threads, BLAS core type */
    void *impl;       /* backend-private state */
    int abi;          /* DSM_BACKEND_ABI */
    int host_threads; /* CPU threads callers may use for host-side work beside it (sampling); 0 = 1 */

    /* ---- memory (all required) ---- */
    /* Allocate bytes of device memory, 64-byte aligned, uninitialised; NULL on failure. */
    void *(*alloc)(struct dsm_backend *be, size_t bytes);
    /* Free memory from alloc; NULL is a no-op. */
    void (*free)(struct dsm_backend *be, void *p);
    /* Host -> device, device -> host (synchronous), device -> device, zero fill. */
    void (*upload)(struct dsm_backend *be, void *dst, const void *src, size_t bytes);
    void (*download)(struct dsm_backend *be, void *dst, const void *src, size_t bytes);
    void (*copy)(struct dsm_backend *be, void *dst, const void *src, size_t bytes);
    void (*zero)(struct dsm_backend *be, void *dst, size_t bytes);
    /* Wait for all queued work; report any asynchronous device error. */
    int (*sync)(struct dsm_backend *be, struct dsm_err *err);
    /* Optional (may be NULL): p (from alloc, not yet written) will be written sparsely, e.g. a KV
     * pool whose slots mostly hold a few rows, so the backend should commit memory only where it
     * is written (the host backends: small pages instead of transparent huge pages). */
    void (*advise_sparse)(struct dsm_backend *be, void *p, size_t bytes);
    /* Release everything, including the struct itself. */
    void (*destroy)(struct dsm_backend *be);

    /* ---- forward ops (all required) ---- */

    /* out (M, N) = x (M, K) · w (N, K)ᵀ [+ bias (N)]; w has dtype wdt; bias may be NULL.
     * out must not alias x. */
    void (*linear)(struct dsm_backend *be, float *out, const float *x, const void *w,
                   enum dsm_dtype wdt, const float *bias, int M, int N, int K);

    /* out (T, C) = table[ids[t]] for table (V, C) of dtype dt. ids must be < V (checked by the
     * caller: models validate token ids before they reach a device). */
    void (*embedding)(struct dsm_backend *be, float *out, const int32_t *ids, const void *table,
                      enum dsm_dtype dt, int T, int C);

    /* out (T, C) = x / sqrt(mean(x²) + eps) * w (C); out may alias x. */
    void (*rmsnorm)(struct dsm_backend *be, float *out, const float *x, const float *w, int T,
                    int C, float eps);

    /* In place rotary embedding, Hugging Face rotate-half convention, on x (T, H, D) with row
     * stride `stride` floats between tokens: for i < D/2, with c = cos[pos[t]][i],
     * s = sin[pos[t]][i]: (x_i, x_{i+D/2}) <- (x_i c - x_{i+D/2} s, x_{i+D/2} c + x_i s).
     * cos, sin are (P, D/2) tables built by the model (they carry any rope scaling). */
    void (*rope)(struct dsm_backend *be, float *x, const int32_t *pos, const float *cos,
                 const float *sin, int T, int H, int D, int stride);

    /* Causal attention of T new queries over a KV cache.
     * out (T, Hq*D); q (T, Hq*D); k, v (S, Hkv*D) with rows 0..pos0+T-1 filled;
     * query t (absolute position pos0+t) attends keys 0..pos0+t; query head h uses kv head
     * h / (Hq/Hkv) (GQA; Hq % Hkv == 0). Scores are scaled by `scale` (1/sqrt(D) normally).
     * scratch: at least ->attention_scratch(be, T, pos0 + T, Hq) floats of device memory. */
    void (*attention)(struct dsm_backend *be, float *out, const float *q, const float *k,
                      const float *v, float *scratch, int T, int pos0, int Hq, int Hkv, int D,
                      float scale);

    /* Decode attention for B sequences with one new query each, over a pool of KV slots.
     * Pool layout: a slot holds, per layer, Hkv blocks of cap rows of D elements (head-major, so
     * that one head's rows are contiguous); k, v point at this layer's block of slot 0, of dtype
     * kvdt (f32 or f16); row s of kv head h of slot x is at (x * slot_stride + (h * cap + s) * D)
     * elements. out (B, Hq*D); q (B, Hq*D). Sequence b attends keys 0..len[b]-1 (its new key
     * included): keys 0..plen[b]-1 are read from slot pslot[b] (a prompt prefix shared by the
     * samples of one request, stored once), keys plen[b]..len[b]-1 from slot[b] at the same
     * positions; plen[b] = 0 when the sequence's own slot holds it all. The result does not depend
     * on where the keys are stored. slot, len, pslot and plen are int32 device arrays (B).
     * scratch: at least B * Hq * cap floats of device memory. */
    void (*attention_decode)(struct dsm_backend *be, float *out, const float *q, const void *k,
                             const void *v, enum dsm_dtype kvdt, const int32_t *slot,
                             const int32_t *len, const int32_t *pslot, const int32_t *plen,
                             size_t slot_stride, int cap, float *scratch, int B, int Hq, int Hkv,
                             int D, float scale);

    /* Write B rows into a slot pool laid out as for attention_decode, of dtype kvdt (f32, or f16
     * rounded to nearest even): head h of src row b (src (B, Hkv*D) f32) goes to row pos[b] of
     * head h of slot slot[b]. slot and pos are int32 device arrays (B). */
    void (*kv_scatter)(struct dsm_backend *be, void *pool, enum dsm_dtype kvdt, const float *src,
                       const int32_t *slot, const int32_t *pos, size_t slot_stride, int cap, int B,
                       int Hkv, int D);

    /* One layer of a prefilled prompt into a slot: src (n, Hkv*D) f32, as the model's KV cache
     * holds it, to rows 0..n-1 of each head of dst (one slot's layer block, Hkv x cap x D, dtype
     * dt: f32 or f16 rounded to nearest even). */
    void (*kv_store)(struct dsm_backend *be, void *dst, enum dsm_dtype dt, const float *src, int n, int cap,
                     int Hkv, int D);

    /* Floats of scratch ->attention needs for T queries over S = pos0 + T keys with Hq heads.
     * Monotone in each argument, so callers may size for the largest call once. */
    size_t (*attention_scratch)(struct dsm_backend *be, int T, int S, int Hq);

    /* out (n) = silu(gate (n)) * up (n); silu(x) = x / (1 + e^-x). out may alias gate or up. */
    void (*swiglu)(struct dsm_backend *be, float *out, const float *gate, const float *up,
                   size_t n);

    /* out (n) = a (n) + b (n); out may alias a or b. */
    void (*add)(struct dsm_backend *be, float *out, const float *a, const float *b, size_t n);

    /* Row-wise softmax and log-softmax: out (R, C) from x (R, C); out may alias x. */
    void (*softmax)(struct dsm_backend *be, float *out, const float *x, int R, int C);
    void (*log_softmax)(struct dsm_backend *be, float *out, const float *x, int R, int C);

    /* ---- training ops (optional: NULL on a backend that cannot train; the cpu and ref backends
     * have them all). Gradients are float32. "+=" marks outputs that accumulate into what the
     * caller holds (zero them first), "=" outputs that are overwritten. Inputs are those the
     * matching forward op saw. ---- */

    /* Backward of linear, for dout (M, N) the gradient of out:
     * dx (M, K) = dout · w  (or += when accumulate_dx); dw (N, K) += doutᵀ · x;
     * db (N) += column sums of dout. Any of dx, dw, db may be NULL (not wanted). w has dtype wdt. */
    void (*linear_backward)(struct dsm_backend *be, float *dx, float *dw, float *db,
                            const float *dout, const float *x, const void *w, enum dsm_dtype wdt,
                            int M, int N, int K, int accumulate_dx);

    /* dtable (V, C) += dout (T, C) scattered to rows ids[t] (repeated ids add up). */
    void (*embedding_backward)(struct dsm_backend *be, float *dtable, const float *dout,
                               const int32_t *ids, int T, int C);

    /* Backward of rmsnorm out = x * r * w, r = 1/sqrt(mean(x²) + eps):
     * dx (T, C) += r * (dout*w) - x * r³ * mean(dout*w*x); dw (C) += Σ_t dout * x * r.
     * dw may be NULL. dx must not alias dout or x. */
    void (*rmsnorm_backward)(struct dsm_backend *be, float *dx, float *dw, const float *dout,
                             const float *x, const float *w, int T, int C, float eps);

    /* Backward of rope in place on g (T, H, D) (row stride `stride`): the transposed rotation,
     * (g_i, g_{i+D/2}) <- (g_i c + g_{i+D/2} s, g_{i+D/2} c - g_i s). */
    void (*rope_backward)(struct dsm_backend *be, float *g, const int32_t *pos, const float *cos,
                          const float *sin, int T, int H, int D, int stride);

    /* Backward of causal self-attention of one sequence of T tokens (pos0 = 0, keys = the T rows):
     * dq (T, Hq*D) =, dk (T, Hkv*D) =, dv (T, Hkv*D) = from dout (T, Hq*D) and the forward's
     * q (T, Hq*D), k, v (T, Hkv*D) (after rope). Probabilities are recomputed from q and k.
     * GQA as in attention: the gradients of the query heads of a group add up in their kv head. */
    void (*attention_backward)(struct dsm_backend *be, float *dq, float *dk, float *dv,
                               const float *dout, const float *q, const float *k, const float *v,
                               int T, int Hq, int Hkv, int D, float scale);

    /* Backward of out = silu(gate) * up: dgate (n) =, dup (n) =. dgate may alias dout. */
    void (*swiglu_backward)(struct dsm_backend *be, float *dgate, float *dup, const float *dout,
                            const float *gate, const float *up, size_t n);

    /* Softmax cross-entropy over rows of logits (R, V) with targets (R) (int32 device array;
     * a target < 0 masks the row). logp (R) = log_softmax(logits)[r, target[r]] (0 when masked).
     * When dlogits is not NULL: dlogits (R, V) = grad_scale * (softmax(logits) - onehot(target))
     * for kept rows, 0 for masked rows; dlogits may alias logits. */
    void (*cross_entropy)(struct dsm_backend *be, float *logp, float *dlogits, const float *logits,
                          const int32_t *targets, int R, int V, float grad_scale);

    /* out[0] = Σ x² over n floats (out: one float of device memory; accumulated in double). */
    void (*sumsq)(struct dsm_backend *be, float *out, const float *x, size_t n);

    /* One AdamW step on n parameters, with gradient g scaled by gscale first (clipping and
     * accumulation averages), moments m, v updated in place:
     * m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²; p -= lr (wd p + (m/bc1) / (sqrt(v/bc2) + eps)),
     * bc1 = 1 - b1^t, bc2 = 1 - b2^t given by the caller (t = step number from 1). */
    void (*adamw)(struct dsm_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                  float lr, float b1, float b2, float eps, float wd, float bc1, float bc2,
                  float gscale);

    /* Inverted dropout with a counter-based mask: out[i] = x[i] / (1 - p) when
     * dsm_dropout_keep(seed, i, p), else 0; out may alias x. The mask depends only on (seed, i), so
     * the backward pass is the same call on the gradient with the same seed. */
    void (*dropout)(struct dsm_backend *be, float *out, const float *x, size_t n, float p,
                    uint64_t seed);

    /* x (n) *= alpha, in place. */
    void (*scale)(struct dsm_backend *be, float *x, size_t n, float alpha);

    /* One SGD step: p -= lr (gscale g + wd p) over n parameters. */
    void (*sgd)(struct dsm_backend *be, float *p, const float *g, size_t n, float lr, float wd,
                float gscale);

    /* ---- collectives (optional, NULL when absent: the CUDA module's NCCL; common/dist.h) ---- */
    /* Rank 0: a new communicator id (*len bytes of id[cap]) to hand to every rank. */
    int (*coll_id)(struct dsm_backend *be, void *id, size_t cap, size_t *len, struct dsm_err *err);
    /* Join the communicator `id` as rank of world (collective: returns when all ranks joined). */
    int (*coll_init)(struct dsm_backend *be, const void *id, size_t len, int rank, int world,
                     struct dsm_err *err);
    /* buf (n floats of device memory) = its sum over the ranks, in place. */
    int (*coll_allreduce)(struct dsm_backend *be, float *buf, size_t n, struct dsm_err *err);
    /* Leave the communicator (no-op when none). */
    void (*coll_fini)(struct dsm_backend *be);

    /* Optional: memory the backend can still allocate and its total, in bytes (host: the
     * kernel's MemAvailable and MemTotal; CUDA: cudaMemGetInfo). 0 on success. */
    int (*mem_info)(struct dsm_backend *be, size_t *free_bytes, size_t *total_bytes);
};

/* The dropout mask every backend uses: element i is kept when a splitmix64 hash of (seed, i),
 * as a uniform number in [0, 1), is >= p. */
#ifdef __CUDACC__
#define DSM_HOST_DEVICE __host__ __device__ /* the CUDA module's kernels call it too */
#else
#define DSM_HOST_DEVICE
#endif
static inline DSM_HOST_DEVICE int dsm_dropout_keep(uint64_t seed, uint64_t i, float p) {
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0) >= (double)p;
}

/* Open a backend by name: "cpu", "ref", "cuda" or "auto" (CUDA when a module and a device are
 * available, else CPU with one info line saying why). n_threads: CPU threads, 0 = all cores.
 * On success *out is a new backend the caller destroys with dsm_backend_destroy.
 * Errors: DSM_EINVAL for an unknown name; DSM_EBACKEND when "cuda" was asked for and cannot be had
 * (the message says why: module not built, library missing, no device). */
int dsm_backend_open(const char *name, int n_threads, struct dsm_backend **out, struct dsm_err *err);

/* Destroy a backend; NULL is a no-op. */
void dsm_backend_destroy(struct dsm_backend *be);

/* The constructors behind dsm_backend_open (kernels/cpu/). */
int dsm_backend_cpu_create(int n_threads, struct dsm_backend **out, struct dsm_err *err);
int dsm_backend_ref_create(struct dsm_backend **out, struct dsm_err *err);

/* The one symbol a CUDA module exports (extern "C", default visibility). */
typedef int (*dsm_cuda_create_fn)(int abi, struct dsm_backend **out, struct dsm_err *err);
#define DSM_CUDA_CREATE_SYMBOL "dsm_cuda_backend_create"

#endif
