/* host_mem.h - the memory half of a backend whose device is host memory (cpu and ref). */
#ifndef DSM_KERNELS_HOST_MEM_H
#define DSM_KERNELS_HOST_MEM_H

#include "kernels/backend.h"

/* Fill be's memory members (alloc, free, upload, download, copy, zero, sync) with host versions. */
void host_mem_fill(struct dsm_backend *be);

#endif
