/* util.h - small shared helpers: always-on assertions, checked allocation, whole-file reads and
 * atomic writes (write to a temporary, fsync, rename, fsync the directory). */
#ifndef DSM_UTIL_H
#define DSM_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Checks our own invariants (never input). Always on: prints where and aborts. */
#define DSM_ASSERT(cond)                                                                      \
    do {                                                                                      \
        if (!(cond)) dsm_assert_fail(#cond, __FILE__, __LINE__, __func__);                    \
    } while (0)
_Noreturn void dsm_assert_fail(const char *cond, const char *file, int line, const char *func);

#define DSM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* calloc(n, size) that checks n*size for overflow and reports failure in err. Returns NULL on
 * failure. The caller owns the result (free()). */
void *dsm_calloc(size_t n, size_t size, struct dsm_err *err);

/* Read the whole file at path into a new NUL-terminated buffer (*out, *len excluding the NUL).
 * Errors: DSM_ENOTFOUND when missing, DSM_EIO otherwise, each naming the path. Caller frees. */
int dsm_file_read(const char *path, char **out, size_t *len, struct dsm_err *err);

/* Write len bytes to path atomically: path.tmp.<pid>, fsync, rename over path, fsync the
 * directory. On failure the old file is untouched and the temporary removed. */
int dsm_file_write_atomic(const char *path, const void *data, size_t len, struct dsm_err *err);

/* mkdir -p path (mode 0755). Existing directories are fine. */
int dsm_mkdir_p(const char *path, struct dsm_err *err);

/* Join dir and name into out (cap bytes); error when it does not fit. */
int dsm_path_join(char *out, size_t cap, const char *dir, const char *name, struct dsm_err *err);

/* Monotonic clock in seconds. */
double dsm_now(void);

/* bf16 / f16 conversions (round-to-nearest-even for f32 -> bf16). */
float dsm_bf16_to_f32(uint16_t h);
uint16_t dsm_f32_to_bf16(float f);
float dsm_f16_to_f32(uint16_t h);
uint16_t dsm_f32_to_f16(float f);

#endif
