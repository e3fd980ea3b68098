/* dist.c - data-parallel process groups (dist.h): the shm transport, and the NCCL transport
 * through the backend's collective ops (the CUDA module). */
#include "common/dist.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

#define SHM_MAGIC 0x64736d2d64697374ull /* "dsm-dist" */
#define SHM_CHUNK (1u << 20)            /* floats per rank slot: 4 MiB */
#define SHM_HDR 16384                   /* header bytes before the slots */
#define HOST_VALS 16                    /* doubles per rank for host all-reduces */
#define NCCL_ID_MAX 256

struct shm_hdr {
    uint64_t magic; /* written last by rank 0 (release) */
    int32_t world, chunk;
    int64_t epoch[DSM_DIST_MAX_WORLD];            /* barriers each rank has reached */
    uint64_t val[DSM_DIST_MAX_WORLD];             /* check_equal */
    double host[DSM_DIST_MAX_WORLD][HOST_VALS];   /* allreduce_host */
};
_Static_assert(sizeof(struct shm_hdr) <= SHM_HDR, "the shm header must fit its page");

struct dsm_dist {
    int rank, world, nccl;
    double timeout_s;
    struct dsm_backend *be;
    char path[1024];
    /* shm */
    struct shm_hdr *h;
    float *slots; /* world * chunk floats */
    size_t map_bytes;
    int64_t epoch; /* barriers this rank has passed */
    float *tmp;    /* chunk floats: the sum, staged on the host */
};

int dsm_dist_rank(const struct dsm_dist *d) { return d->rank; }
int dsm_dist_world(const struct dsm_dist *d) { return d->world; }

static void pause_a_little(long spins) {
    if (spins < 2000) sched_yield();
    else {
        struct timespec ts = {0, spins < 20000 ? 20000 : 200000};
        nanosleep(&ts, NULL);
    }
}

/* Wait until every rank has reached barrier number d->epoch + 1. */
static int barrier(struct dsm_dist *d, const char *what, struct dsm_err *err) {
    int64_t e = ++d->epoch;
    __atomic_store_n(&d->h->epoch[d->rank], e, __ATOMIC_RELEASE);
    double t0 = dsm_now();
    for (long spins = 0;; spins++) {
        int all = 1;
        for (int r = 0; r < d->world && all; r++) all = __atomic_load_n(&d->h->epoch[r], __ATOMIC_ACQUIRE) >= e;
        if (all) return DSM_OK;
        if ((spins & 255) == 0 && dsm_now() - t0 > d->timeout_s) {
            char miss[512] = "";
            size_t n = 0;
            for (int r = 0; r < d->world && n + 12 < sizeof miss; r++)
                if (__atomic_load_n(&d->h->epoch[r], __ATOMIC_ACQUIRE) < e)
                    n += (size_t)snprintf(miss + n, sizeof miss - n, "%s%d", n ? ", " : "", r);
            return dsm_errf(err, DSM_EIO, "data parallelism: rank %d waited %.0f s at %s for rank(s) %s (stopped or died?)",
                            d->rank, d->timeout_s, what, miss);
        }
        pause_a_little(spins);
    }
}

static int shm_open_group(struct dsm_dist *d, struct dsm_err *err) {
    d->map_bytes = SHM_HDR + (size_t)d->world * SHM_CHUNK * sizeof(float);
    int fd = -1;
    double t0 = dsm_now();
    if (d->rank == 0) {
        fd = open(d->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST)
            return dsm_errf(err, DSM_EIO,
                            "data parallelism: the rendezvous file %s exists (a group using it, or one that crashed while "
                            "starting: remove it)", d->path);
        if (fd < 0) return dsm_errf(err, DSM_EIO, "data parallelism: cannot create %s: %s", d->path, strerror(errno));
        if (ftruncate(fd, (off_t)d->map_bytes)) {
            int e = errno;
            close(fd);
            unlink(d->path);
            return dsm_errf(err, DSM_EIO, "data parallelism: cannot size %s to %zu bytes: %s", d->path, d->map_bytes, strerror(e));
        }
    } else {
        for (long spins = 0;; spins++) { /* wait for rank 0's file, fully sized and stamped */
            fd = open(d->path, O_RDWR | O_CLOEXEC);
            struct stat st;
            if (fd >= 0 && fstat(fd, &st) == 0 && (size_t)st.st_size >= SHM_HDR) {
                uint64_t magic = 0;
                if (pread(fd, &magic, sizeof magic, 0) == (ssize_t)sizeof magic && magic == SHM_MAGIC) break;
            }
            if (fd >= 0) close(fd);
            fd = -1;
            if (dsm_now() - t0 > d->timeout_s)
                return dsm_errf(err, DSM_EIO, "data parallelism: rank %d waited %.0f s for rank 0 to create %s", d->rank,
                                d->timeout_s, d->path);
            pause_a_little(spins + 20000);
        }
        struct stat st;
        if (fstat(fd, &st) || (size_t)st.st_size != d->map_bytes) {
            close(fd);
            return dsm_errf(err, DSM_EINVAL, "data parallelism: %s belongs to a group of another size (rank %d expects %d ranks)",
                            d->path, d->rank, d->world);
        }
    }
    void *p = mmap(NULL, d->map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return dsm_errf(err, DSM_EIO, "data parallelism: cannot map %s: %s", d->path, strerror(errno));
    d->h = p;
    d->slots = (float *)((char *)p + SHM_HDR);
    if (d->rank == 0) {
        d->h->world = d->world, d->h->chunk = SHM_CHUNK;
        __atomic_store_n(&d->h->magic, SHM_MAGIC, __ATOMIC_RELEASE);
    } else if (d->h->world != d->world) {
        return dsm_errf(err, DSM_EINVAL, "data parallelism: %s is a group of %d ranks, rank %d expects %d", d->path,
                        d->h->world, d->rank, d->world);
    }
    d->tmp = malloc(SHM_CHUNK * sizeof(float));
    if (!d->tmp) return dsm_errf(err, DSM_ENOMEM, "out of memory");
    int rc = barrier(d, "joining", err);
    if (!rc && d->rank == 0) unlink(d->path); /* everyone has it mapped: nothing is left behind */
    return rc;
}

/* NCCL: rank 0 publishes the unique id in the rendezvous file (write to a temporary, rename). */
static int nccl_open_group(struct dsm_dist *d, struct dsm_err *err) {
    struct dsm_backend *be = d->be;
    if (!be->coll_id || !be->coll_init || !be->coll_allreduce || !be->coll_fini)
        return dsm_errf(err, DSM_EUNSUPPORTED, "data parallelism: the nccl transport needs the CUDA backend with NCCL (backend %s has none)",
                        be->name);
    unsigned char id[NCCL_ID_MAX];
    size_t len = 0;
    double t0 = dsm_now();
    if (d->rank == 0) {
        int rc = be->coll_id(be, id, sizeof id, &len, err);
        if (rc) return rc;
        char tmp[1100];
        snprintf(tmp, sizeof tmp, "%s.tmp", d->path);
        if (access(d->path, F_OK) == 0)
            return dsm_errf(err, DSM_EIO, "data parallelism: the rendezvous file %s exists (left by another run: remove it)", d->path);
        FILE *f = fopen(tmp, "wb");
        if (!f || fwrite(id, 1, len, f) != len || fclose(f)) {
            if (f) fclose(f);
            return dsm_errf(err, DSM_EIO, "data parallelism: cannot write %s", tmp);
        }
        if (rename(tmp, d->path)) return dsm_errf(err, DSM_EIO, "data parallelism: cannot rename %s: %s", tmp, strerror(errno));
    } else {
        for (long spins = 20000;; spins++) {
            FILE *f = fopen(d->path, "rb");
            if (f) {
                len = fread(id, 1, sizeof id, f);
                fclose(f);
                if (len) break;
            }
            if (dsm_now() - t0 > d->timeout_s)
                return dsm_errf(err, DSM_EIO, "data parallelism: rank %d waited %.0f s for rank 0's NCCL id in %s", d->rank,
                                d->timeout_s, d->path);
            pause_a_little(spins);
        }
    }
    int rc = be->coll_init(be, id, len, d->rank, d->world, err);
    if (!rc && d->rank == 0) {
        /* every rank has read the id once NCCL's init returned (it is collective) */
        unlink(d->path);
    }
    return rc;
}

int dsm_dist_open(const struct dsm_dist_opts *o, struct dsm_backend *be, struct dsm_dist **out, struct dsm_err *err) {
    *out = NULL;
    if (!o->transport || (strcmp(o->transport, "shm") && strcmp(o->transport, "nccl")))
        return dsm_errf(err, DSM_EINVAL, "data parallelism: the transport must be shm or nccl, not '%s'",
                        o->transport ? o->transport : "");
    if (o->world < 1 || o->world > DSM_DIST_MAX_WORLD || o->rank < 0 || o->rank >= o->world)
        return dsm_errf(err, DSM_EINVAL, "data parallelism: rank %d of %d is out of range (1 <= world <= %d)", o->rank,
                        o->world, DSM_DIST_MAX_WORLD);
    if (!o->rendezvous || !*o->rendezvous || strlen(o->rendezvous) >= 1000)
        return dsm_errf(err, DSM_EINVAL, "data parallelism: a rendezvous path is needed");
    struct dsm_dist *d = calloc(1, sizeof *d);
    if (!d) return dsm_errf(err, DSM_ENOMEM, "out of memory");
    d->rank = o->rank, d->world = o->world, d->be = be;
    d->timeout_s = o->timeout_s > 0 ? o->timeout_s : 600;
    d->nccl = !strcmp(o->transport, "nccl");
    snprintf(d->path, sizeof d->path, "%s", o->rendezvous);
    int rc = d->nccl ? nccl_open_group(d, err) : shm_open_group(d, err);
    if (rc) {
        dsm_dist_close(d);
        return rc;
    }
    *out = d;
    return DSM_OK;
}

void dsm_dist_close(struct dsm_dist *d) {
    if (!d) return;
    if (d->h) munmap(d->h, d->map_bytes);
    if (d->nccl && d->be->coll_fini) d->be->coll_fini(d->be);
    free(d->tmp);
    free(d);
}

int dsm_dist_allreduce(struct dsm_dist *d, float *buf, size_t n, struct dsm_err *err) {
    if (d->world == 1) return DSM_OK;
    if (d->nccl) return d->be->coll_allreduce(d->be, buf, n, err);
    struct dsm_backend *be = d->be;
    for (size_t off = 0; off < n; off += SHM_CHUNK) {
        size_t c = n - off < SHM_CHUNK ? n - off : SHM_CHUNK;
        float *mine = d->slots + (size_t)d->rank * SHM_CHUNK;
        be->download(be, mine, buf + off, c * sizeof(float));
        int rc = barrier(d, "the gradient all-reduce", err);
        if (rc) return rc;
        /* every rank adds the slots in rank order: the same bits everywhere */
        memcpy(d->tmp, d->slots, c * sizeof(float));
        for (int r = 1; r < d->world; r++) {
            const float *s = d->slots + (size_t)r * SHM_CHUNK;
            for (size_t i = 0; i < c; i++) d->tmp[i] += s[i];
        }
        if ((rc = barrier(d, "the gradient all-reduce", err))) return rc; /* slots read: they may be reused */
        be->upload(be, buf + off, d->tmp, c * sizeof(float));
    }
    return DSM_OK;
}

int dsm_dist_allreduce_host(struct dsm_dist *d, double *x, int n, struct dsm_err *err) {
    if (d->world == 1) return DSM_OK;
    if (d->nccl) { /* through the device: float is enough for the losses and counts it carries */
        if (n > HOST_VALS) return dsm_errf(err, DSM_EINVAL, "data parallelism: at most %d host values", HOST_VALS);
        float *dev = d->be->alloc(d->be, HOST_VALS * sizeof(float));
        float h[HOST_VALS];
        if (!dev) return dsm_errf(err, DSM_ENOMEM, "out of device memory");
        for (int i = 0; i < n; i++) h[i] = (float)x[i];
        d->be->upload(d->be, dev, h, (size_t)n * sizeof(float));
        int rc = d->be->coll_allreduce(d->be, dev, (size_t)n, err);
        if (!rc) d->be->download(d->be, h, dev, (size_t)n * sizeof(float));
        d->be->free(d->be, dev);
        for (int i = 0; i < n && !rc; i++) x[i] = h[i];
        return rc;
    }
    for (int off = 0; off < n; off += HOST_VALS) {
        int c = n - off < HOST_VALS ? n - off : HOST_VALS;
        memcpy(d->h->host[d->rank], x + off, (size_t)c * sizeof(double));
        int rc = barrier(d, "a loss all-reduce", err);
        if (rc) return rc;
        for (int i = 0; i < c; i++) {
            double s = 0;
            for (int r = 0; r < d->world; r++) s += d->h->host[r][i];
            x[off + i] = s;
        }
        if ((rc = barrier(d, "a loss all-reduce", err))) return rc;
    }
    return DSM_OK;
}

int dsm_dist_check_equal(struct dsm_dist *d, uint64_t value, const char *what, struct dsm_err *err) {
    if (d->world == 1) return DSM_OK;
    if (d->nccl) { /* two float halves of 24 bits each would lose bits: compare 16-bit pieces */
        double v[4];
        for (int i = 0; i < 4; i++) v[i] = (double)((value >> (16 * i)) & 0xffff);
        double s[4];
        memcpy(s, v, sizeof s);
        int rc = dsm_dist_allreduce_host(d, s, 4, err);
        if (rc) return rc;
        for (int i = 0; i < 4; i++)
            if (s[i] != v[i] * d->world)
                return dsm_errf(err, DSM_EINVAL, "data parallelism: the ranks' %s differ (rank %d has %016llx)", what, d->rank,
                                (unsigned long long)value);
        return DSM_OK;
    }
    d->h->val[d->rank] = value;
    int rc = barrier(d, what, err);
    if (rc) return rc;
    char list[1024] = "";
    size_t n = 0;
    int same = 1;
    for (int r = 0; r < d->world; r++) {
        uint64_t v = d->h->val[r];
        same &= v == value;
        if (n + 40 < sizeof list) n += (size_t)snprintf(list + n, sizeof list - n, "%s%d: %016llx", r ? ", " : "", r, (unsigned long long)v);
    }
    if ((rc = barrier(d, what, err))) return rc;
    if (!same) return dsm_errf(err, DSM_EINVAL, "data parallelism: the ranks' %s differ (%s)", what, list);
    return DSM_OK;
}

uint64_t dsm_hash_device(struct dsm_backend *be, const void *p, size_t n, uint64_t h) {
    unsigned char buf[1 << 16];
    for (size_t off = 0; off < n; off += sizeof buf) {
        size_t c = n - off < sizeof buf ? n - off : sizeof buf;
        be->download(be, buf, (const char *)p + off, c);
        for (size_t i = 0; i < c; i++) h = (h ^ buf[i]) * 0x100000001b3ull;
    }
    return h;
}
