/* err.h - errors as values.
 *
 * Every fallible function returns an int status (DSM_OK = 0, or a negative DSM_E* code) and fills
 * a caller-provided struct dsm_err with a message that says what was wrong, where, and when it
 * helps, what to do. Library code never prints and never exits; main() decides. A NULL err is
 * allowed everywhere: the message is then dropped but the status is still returned.
 */
#ifndef DSM_ERR_H
#define DSM_ERR_H

#include <stddef.h>

enum dsm_status {
    DSM_OK = 0,
    DSM_EINVAL = -1,       /* bad argument or bad input data (file contents, JSON, flags) */
    DSM_EIO = -2,          /* the operating system refused: open, read, write, mmap, rename */
    DSM_ENOMEM = -3,       /* an allocation failed */
    DSM_EUNSUPPORTED = -4, /* well-formed input asking for something we do not implement */
    DSM_EDB = -5,          /* the database failed or refused */
    DSM_ENOTFOUND = -6,    /* a named thing (file, tensor, row) does not exist */
    DSM_EBACKEND = -7,     /* a compute backend failed (CUDA error, BLAS missing) */
    DSM_ENET = -8,         /* a network peer failed */
};

struct dsm_err {
    int code;       /* the last status set; DSM_OK when clean */
    char msg[512];  /* NUL-terminated message */
};

/* Set err to code and a printf-style message; returns code so callers can `return dsm_errf(...)`.
 * err may be NULL. */
int dsm_errf(struct dsm_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix the message already in err with "<prefix>: " (context as the error travels up);
 * returns err->code (or code when err is NULL). */
int dsm_err_prefix(struct dsm_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reset err to DSM_OK with an empty message. err may be NULL. */
void dsm_err_clear(struct dsm_err *err);

/* A short name for a status code ("invalid input", "I/O error", ...). Never NULL. */
const char *dsm_status_name(int code);

/* The process exit code the CLI uses for a status (documented in README, "Exit codes"):
 * 0 ok, 2 usage or bad input (EINVAL, EUNSUPPORTED, ENOTFOUND), 3 system or service failure. */
int dsm_status_exit_code(int code);

#endif
