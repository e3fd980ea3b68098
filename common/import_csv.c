/* import_csv.c - an RFC 4180 CSV reader (see import.h). The whole input is in memory; fields are
 * copied out unescaped, so quoted fields may span lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/import.h"
#include "common/util.h"

struct csv_buf {
    char **fields;
    int n, cap;
    char *field; /* the field being built */
    size_t flen, fcap;
};

static int field_push_char(struct csv_buf *b, char c, struct dsm_err *err) {
    if (b->flen + 2 > b->fcap) {
        size_t cap = b->fcap ? b->fcap * 2 : 64;
        char *p = realloc(b->field, cap);
        if (!p) return dsm_errf(err, DSM_ENOMEM, "out of memory reading CSV");
        b->field = p;
        b->fcap = cap;
    }
    b->field[b->flen++] = c;
    return DSM_OK;
}

static int field_end(struct csv_buf *b, struct dsm_err *err) {
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 16;
        char **p = realloc(b->fields, (size_t)cap * sizeof *p);
        if (!p) return dsm_errf(err, DSM_ENOMEM, "out of memory reading CSV");
        b->fields = p;
        b->cap = cap;
    }
    char *f = malloc(b->flen + 1);
    if (!f) return dsm_errf(err, DSM_ENOMEM, "out of memory reading CSV");
    if (b->flen) memcpy(f, b->field, b->flen);
    f[b->flen] = '\0';
    b->fields[b->n++] = f;
    b->flen = 0;
    return DSM_OK;
}

static void record_clear(struct csv_buf *b) {
    for (int i = 0; i < b->n; i++) free(b->fields[i]);
    b->n = 0;
}

int csv_parse(const char *text, size_t len, const char *where, csv_record_fn fn, void *ctx, struct dsm_err *err) {
    enum { START, UNQUOTED, QUOTED, AFTER_QUOTE } state = START;
    struct csv_buf b = {0};
    long line = 1, rec_line = 1, quote_line = 1;
    int in_record = 0, rc = DSM_OK;
    char problem[128] = "";
    for (size_t i = 0; i < len && !rc; i++) {
        char c = text[i];
        int newline = c == '\n' || (c == '\r' && i + 1 < len && text[i + 1] == '\n');
        if (!in_record) {
            in_record = 1;
            rec_line = line;
        }
        switch (state) {
        case START:
        case UNQUOTED:
        case AFTER_QUOTE:
            if (c == ',') {
                rc = field_end(&b, err);
                state = START;
            } else if (newline) {
                if (c == '\r') i++;
                rc = field_end(&b, err);
                if (!rc) rc = fn(b.fields, b.n, rec_line, problem[0] ? problem : NULL, ctx, err);
                problem[0] = '\0';
                record_clear(&b);
                line++;
                in_record = 0;
                state = START;
            } else if (state == AFTER_QUOTE) {
                /* malformed: keep the text (as most readers do) and flag the record */
                if (!problem[0]) snprintf(problem, sizeof problem, "line %ld: text after the closing quote of a field", line);
                rc = field_push_char(&b, c, err);
                state = UNQUOTED;
            } else if (c == '"' && state == START) {
                state = QUOTED;
                quote_line = line;
            } else if (c == '"') {
                if (!problem[0]) snprintf(problem, sizeof problem, "line %ld: quote inside an unquoted field", line);
                rc = field_push_char(&b, c, err);
            } else {
                rc = field_push_char(&b, c, err);
                state = UNQUOTED;
            }
            break;
        case QUOTED:
            if (c == '"' && i + 1 < len && text[i + 1] == '"') {
                rc = field_push_char(&b, '"', err);
                i++;
            } else if (c == '"') {
                state = AFTER_QUOTE;
            } else {
                if (c == '\n') line++;
                rc = field_push_char(&b, c, err);
            }
            break;
        }
    }
    if (!rc && state == QUOTED)
        rc = dsm_errf(err, DSM_EINVAL, "%s:%ld: quoted field never closed", where, quote_line);
    if (!rc && in_record) {
        rc = field_end(&b, err);
        if (!rc) rc = fn(b.fields, b.n, rec_line, problem[0] ? problem : NULL, ctx, err);
    }
    record_clear(&b);
    free(b.fields);
    free(b.field);
    return rc;
}
