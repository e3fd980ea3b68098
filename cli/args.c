/* args.c - the declarative flag parser shared by every dsm command; see cli.h. */
#include "cli/cli.h"

#include <errno.h>
#include <signal.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

void cli_usage(const struct cli_cmd_spec *spec) {
    printf("usage: dsm %s %s\n\n%s\n", spec->name, spec->synopsis ? spec->synopsis : "",
           spec->summary ? spec->summary : "");
    if (spec->nopts) printf("\noptions:\n");
    for (size_t i = 0; i < spec->nopts; i++) {
        const struct cli_opt *o = &spec->opts[i];
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        printf("  %-28s %s\n", left, o->help);
    }
    printf("  %-28s %s\n", "-h, --help", "show this help");
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "dsm %s: %s (try 'dsm %s --help')\n", cmd, msg, cmd);
    return 2;
}

int cli_fail(const char *cmd, const struct dsm_err *err) {
    fprintf(stderr, "dsm %s: %s\n", cmd, err->msg[0] ? err->msg : dsm_status_name(err->code));
    return dsm_status_exit_code(err->code ? err->code : DSM_EINVAL);
}

static int set_value(const char *cmd, const struct cli_opt *o, const char *v) {
    char *end = NULL;
    errno = 0;
    switch (o->kind) {
    case CLI_STR: *(const char **)o->dst = v; return 0;
    case CLI_INT: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || x < INT_MIN || x > INT_MAX)
            return cli_usage_error(cmd, "%s expects an integer, got '%s'", o->name, v);
        *(int *)o->dst = (int)x;
        return 0;
    }
    case CLI_LONG: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end)
            return cli_usage_error(cmd, "%s expects an integer, got '%s'", o->name, v);
        *(long *)o->dst = x;
        return 0;
    }
    case CLI_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end)
            return cli_usage_error(cmd, "%s expects a number, got '%s'", o->name, v);
        *(double *)o->dst = x;
        return 0;
    }
    case CLI_FLAG: *(int *)o->dst = 1; return 0;
    case CLI_STR_LIST: {
        struct cli_str_list *l = o->dst;
        if (l->n >= CLI_LIST_MAX) return cli_usage_error(cmd, "%s given more than %d times", o->name, CLI_LIST_MAX);
        l->v[l->n++] = v;
        return 0;
    }
    }
    return 2;
}

int cli_parse(const struct cli_cmd_spec *spec, int argc, char **argv, char **pos, int posc, int *npos) {
    int np = 0;
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (!only_positional && (!strcmp(a, "--help") || !strcmp(a, "-h"))) {
            cli_usage(spec);
            return -1;
        }
        if (!only_positional && !strcmp(a, "--")) {
            only_positional = 1;
            continue;
        }
        int is_short = a[0] == '-' && a[1] && a[1] != '-' && !(a[1] >= '0' && a[1] <= '9');
        if (!only_positional && ((a[0] == '-' && a[1] == '-') || is_short)) {
            const char *eq = strchr(a, '=');
            size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
            const struct cli_opt *o = NULL;
            for (size_t k = 0; k < spec->nopts; k++)
                if (strlen(spec->opts[k].name) == nlen && !strncmp(spec->opts[k].name, a, nlen))
                    o = &spec->opts[k];
            if (!o) return cli_usage_error(spec->name, "unknown option %.*s", (int)nlen, a);
            const char *v;
            if (o->kind == CLI_FLAG) {
                if (eq) return cli_usage_error(spec->name, "%s takes no value", o->name);
                v = "1";
            } else if (eq) {
                v = eq + 1;
            } else {
                if (i + 1 >= argc) return cli_usage_error(spec->name, "%s needs a value (%s)", o->name, o->arg ? o->arg : "VALUE");
                v = argv[++i];
            }
            int rc = set_value(spec->name, o, v);
            if (rc) return rc;
            continue;
        }
        if (spec->max_positional >= 0 && np >= spec->max_positional)
            return cli_usage_error(spec->name, "unexpected argument '%s'", a);
        if (np >= posc) return cli_usage_error(spec->name, "too many arguments");
        pos[np++] = a;
    }
    if (npos) *npos = np;
    return 0;
}

int cli_parse_ids(const char *s, int **out, int *n, struct dsm_err *err) {
    *out = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += (*p == ',');
    int *ids = dsm_calloc(cap, sizeof *ids, err);
    if (!ids) return DSM_ENOMEM;
    int count = 0;
    const char *p = s;
    for (;;) {
        char *end = NULL;
        errno = 0;
        while (*p == ' ') p++;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT_MAX) {
            free(ids);
            return dsm_errf(err, DSM_EINVAL, "token id list '%s': element %d is not a non-negative integer", s, count + 1);
        }
        ids[count++] = (int)v;
        p = end;
        while (*p == ' ') p++;
        if (*p == '\0') break;
        if (*p != ',') {
            free(ids);
            return dsm_errf(err, DSM_EINVAL, "token id list '%s': unexpected '%c' after element %d", s, *p, count);
        }
        p++;
    }
    *out = ids;
    *n = count;
    return DSM_OK;
}

void cli_catch_stop_signals(void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}
