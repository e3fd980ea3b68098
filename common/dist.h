/* dist.h - data parallelism: a group of `world` training processes (ranks) that each compute the
 * gradients of their share of a batch, sum them (all-reduce) and take the same optimizer step, so
 * every rank holds the same weights after every step (checked by a hash of the weights).
 *
 * Transports:
 *   shm   processes on one machine: a shared-memory file (the rendezvous path, on a local file
 *         system; /dev/shm is best) holds one staging slot per rank and a barrier. Works with any
 *         backend (device memory is staged through the host).
 *   nccl  one process per GPU, on one or several machines: the CUDA module's NCCL communicator.
 *         Rank 0 writes the NCCL unique id into the rendezvous path, which must be a file every
 *         rank can read (a shared file system across machines); the others wait for it.
 *
 * Determinism: the shm all-reduce adds the ranks' values in rank order (0, 1, ..., world-1) in
 * float32 on every rank, so all ranks get the same bits, and the same bits on every run.
 *
 * Failure: every wait has a timeout (opts.timeout_s); a rank that died or never came makes the
 * others fail with a message that names the missing ranks, never hang.
 */
#ifndef DSM_DIST_H
#define DSM_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "kernels/backend.h"

struct dsm_dist;

struct dsm_dist_opts {
    const char *transport;  /* "shm" or "nccl" */
    const char *rendezvous; /* a path; rank 0 creates it (it must not exist), the others open it */
    int rank, world;        /* 0 <= rank < world <= DSM_DIST_MAX_WORLD */
    double timeout_s;       /* longest wait for the other ranks (0: 600 s) */
};

#define DSM_DIST_MAX_WORLD 64

/* Join the group (waits until all ranks joined). be: the backend whose memory the collectives
 * see. Errors: DSM_EINVAL (bad rank/world/transport, a rendezvous of another group),
 * DSM_EIO (the rendezvous cannot be made), DSM_EUNSUPPORTED (nccl without the CUDA module's
 * NCCL), DSM_ETIMEOUT-like DSM_EIO with the missing ranks named. */
int dsm_dist_open(const struct dsm_dist_opts *o, struct dsm_backend *be, struct dsm_dist **out, struct dsm_err *err);

/* Leave the group (rank 0 removes the rendezvous file); NULL is a no-op. */
void dsm_dist_close(struct dsm_dist *d);

int dsm_dist_rank(const struct dsm_dist *d);
int dsm_dist_world(const struct dsm_dist *d);

/* buf (n floats of device memory) = the sum over ranks of every rank's buf, the same bits on
 * every rank. All ranks call it with the same n. */
int dsm_dist_allreduce(struct dsm_dist *d, float *buf, size_t n, struct dsm_err *err);

/* The same for n doubles of host memory (losses, token counts). */
int dsm_dist_allreduce_host(struct dsm_dist *d, double *x, int n, struct dsm_err *err);

/* Every rank passes its value; DSM_EINVAL on every rank when they differ (the message lists
 * each rank's value), DSM_OK when all are equal. */
int dsm_dist_check_equal(struct dsm_dist *d, uint64_t value, const char *what, struct dsm_err *err);

/* FNV-1a 64 of n bytes of device memory on be, continuing from h (start with DSM_HASH_INIT). */
#define DSM_HASH_INIT 0xcbf29ce484222325ull
uint64_t dsm_hash_device(struct dsm_backend *be, const void *p, size_t n, uint64_t h);

#endif
