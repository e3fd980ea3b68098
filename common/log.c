/* log.c - levelled logging; see log.h. The level is the one piece of process-wide state: it is
 * set once at start-up and only read afterwards. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum dsm_log_level g_level = DSM_LOG_INFO;

void dsm_log_init(void) {
    const char *s = getenv("DSM_LOG");
    if (!s) return;
    if (!strcmp(s, "error")) g_level = DSM_LOG_ERROR;
    else if (!strcmp(s, "warn")) g_level = DSM_LOG_WARN;
    else if (!strcmp(s, "info")) g_level = DSM_LOG_INFO;
    else if (!strcmp(s, "debug")) g_level = DSM_LOG_DEBUG;
    else fprintf(stderr, "dsm: warn: DSM_LOG=%s is not one of error|warn|info|debug; using info\n", s);
}

void dsm_log_set_level(enum dsm_log_level level) { g_level = level; }
enum dsm_log_level dsm_log_get_level(void) { return g_level; }

void dsm_log_write(enum dsm_log_level level, const char *func, const char *fmt, ...) {
    static const char *names[] = {"error", "warn", "info", "debug"};
    if (level > g_level) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (level == DSM_LOG_DEBUG) fprintf(stderr, "dsm: %s: %s: %s\n", names[level], func, line);
    else fprintf(stderr, "dsm: %s: %s\n", names[level], line);
}
