/* err.c - errors as values; see err.h. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int dsm_errf(struct dsm_err *err, int code, const char *fmt, ...) {
    if (!err) return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

int dsm_err_prefix(struct dsm_err *err, int code, const char *fmt, ...) {
    if (!err) return code;
    char head[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    /* new message = head ": " old, truncated to fit (explicit copies: truncation is intended) */
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    size_t hl = strlen(head), ol = strlen(old), cap = sizeof err->msg - 1;
    size_t n = 0;
    memcpy(err->msg, head, hl < cap ? hl : cap);
    n = hl < cap ? hl : cap;
    if (n + 2 <= cap) {
        memcpy(err->msg + n, ": ", 2);
        n += 2;
    }
    size_t take = ol < cap - n ? ol : cap - n;
    memcpy(err->msg + n, old, take);
    err->msg[n + take] = '\0';
    if (err->code == DSM_OK) err->code = code;
    return err->code;
}

void dsm_err_clear(struct dsm_err *err) {
    if (!err) return;
    err->code = DSM_OK;
    err->msg[0] = '\0';
}

const char *dsm_status_name(int code) {
    switch (code) {
    case DSM_OK: return "ok";
    case DSM_EINVAL: return "invalid input";
    case DSM_EIO: return "I/O error";
    case DSM_ENOMEM: return "out of memory";
    case DSM_EUNSUPPORTED: return "unsupported";
    case DSM_EDB: return "database error";
    case DSM_ENOTFOUND: return "not found";
    case DSM_EBACKEND: return "backend error";
    case DSM_ENET: return "network error";
    default: return "error";
    }
}

int dsm_status_exit_code(int code) {
    switch (code) {
    case DSM_OK: return 0;
    case DSM_EINVAL:
    case DSM_EUNSUPPORTED:
    case DSM_ENOTFOUND: return 2;
    default: return 3;
    }
}
