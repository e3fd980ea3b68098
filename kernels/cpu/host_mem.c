/* host_mem.c - host memory management shared by the cpu and ref backends. */
#include "kernels/cpu/host_mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Allocations at least this large (weights, KV pools) are 2 MB-aligned and marked for
 * transparent huge pages: first touch of a multi-GB KV pool otherwise costs one page fault per
 * 4 KB (a fifth of a 64-sample generation's time in a profile). */
#define HUGE_MIN ((size_t)4 << 20)
#define HUGE_ALIGN ((size_t)2 << 20)

static void *host_alloc(struct dsm_backend *be, size_t bytes) {
    (void)be;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    void *p = NULL;
    if (rounded >= HUGE_MIN) {
        rounded = (rounded + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1);
        if (posix_memalign(&p, HUGE_ALIGN, rounded) != 0) return NULL;
        madvise(p, rounded, MADV_HUGEPAGE); /* advice only: failure changes nothing */
    } else if (posix_memalign(&p, 64, rounded ? rounded : 64) != 0) {
        return NULL;
    }
#ifndef NDEBUG
    memset(p, 0xA5, rounded); /* poison: reading uninitialised device memory shows up as garbage */
#endif
    return p;
}

static void host_advise_sparse(struct dsm_backend *be, void *p, size_t bytes) {
    (void)be;
    /* only what host_alloc marked for huge pages (2 MB-aligned, large); a 2 MB huge page is
     * zeroed whole at its first touch even when one row of it is written */
    size_t rounded = (bytes + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1);
    if (p && bytes >= HUGE_MIN && ((uintptr_t)p & (HUGE_ALIGN - 1)) == 0) madvise(p, rounded, MADV_NOHUGEPAGE);
}

static void host_free(struct dsm_backend *be, void *p) {
    (void)be;
    free(p);
}

static void host_copy(struct dsm_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memmove(dst, src, bytes);
}

static void host_zero(struct dsm_backend *be, void *dst, size_t bytes) {
    (void)be;
    if (bytes) memset(dst, 0, bytes);
}

static int host_sync(struct dsm_backend *be, struct dsm_err *err) {
    (void)be;
    (void)err;
    return DSM_OK;
}

/* MemAvailable and MemTotal of /proc/meminfo (kB lines). */
static int host_mem_info(struct dsm_backend *be, size_t *free_bytes, size_t *total_bytes) {
    (void)be;
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -1;
    char line[256];
    unsigned long long avail = 0, total = 0, v;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "MemAvailable: %llu kB", &v) == 1) avail = v;
        else if (sscanf(line, "MemTotal: %llu kB", &v) == 1) total = v;
    }
    fclose(f);
    if (!avail || !total) return -1;
    *free_bytes = (size_t)avail * 1024, *total_bytes = (size_t)total * 1024;
    return 0;
}

void host_mem_fill(struct dsm_backend *be) {
    be->mem_info = host_mem_info;
    be->alloc = host_alloc;
    be->free = host_free;
    be->advise_sparse = host_advise_sparse;
    be->upload = host_copy;
    be->download = host_copy;
    be->copy = host_copy;
    be->zero = host_zero;
    be->sync = host_sync;
}
