/* tok_text.c - text helpers of the tokenizer: strict UTF-8 validation and the Unicode
 * normalizers (utf8proc). Pure functions, thread-safe. */
#include "common/tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "common/tok_impl.h"

/* ---- UTF-8 --------------------------------------------------------------------------------- */

size_t tok_utf8_seq(const unsigned char *s, size_t n, int *incomplete) {
    if (incomplete) *incomplete = 0;
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t need;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 0;
    for (size_t i = 1; i < need; i++) {
        if (i >= n) {
            if (incomplete) *incomplete = 1;
            return 0;
        }
        unsigned lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xBF;
        if (s[i] < lo_i || s[i] > hi_i) return 0;
    }
    return need;
}

int tok_utf8_check(const char *s, size_t len, struct dsm_err *err) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        int inc = 0;
        size_t k = tok_utf8_seq(u + i, len - i, &inc);
        if (!k)
            return dsm_errf(err, DSM_EINVAL, "invalid UTF-8 at byte %zu (0x%02x)%s", i, u[i],
                            inc ? ": the text ends inside a multi-byte character" : "");
        i += k;
    }
    return DSM_OK;
}

/* Normalize s[0..n) with one utf8proc normal form into a new buffer (*out, *out_len). */
static int norm_apply(enum tok_norm_kind kind, const char *s, size_t n, char **out, size_t *out_len,
                      struct dsm_err *err) {
    int opts = UTF8PROC_STABLE;
    switch (kind) {
    case TOK_NORM_NFC: opts |= UTF8PROC_COMPOSE; break;
    case TOK_NORM_NFD: opts |= UTF8PROC_DECOMPOSE; break;
    case TOK_NORM_NFKC: opts |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case TOK_NORM_NFKD: opts |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst,
                                      (utf8proc_option_t)opts);
    if (r < 0) return dsm_errf(err, DSM_EINVAL, "normalizing text: %s", utf8proc_errmsg(r));
    *out = (char *)dst;
    *out_len = (size_t)r;
    return DSM_OK;
}

int tok_normalize(const struct dsm_tokenizer *tok, const char *s, size_t n, char **out,
                  size_t *out_len, struct dsm_err *err) {
    char *cur = NULL;
    size_t cur_len = n;
    for (int i = 0; i < tok->n_norm; i++) {
        char *next = NULL;
        size_t next_len = 0;
        int rc = norm_apply(tok->norm[i], cur ? cur : s, cur_len, &next, &next_len, err);
        free(cur);
        if (rc) return rc;
        cur = next;
        cur_len = next_len;
    }
    if (!cur) {
        cur = malloc(n + 1);
        if (!cur) return dsm_errf(err, DSM_ENOMEM, "out of memory normalizing text");
        memcpy(cur, s, n);
        cur[n] = 0;
    }
    *out = cur;
    *out_len = cur_len;
    return DSM_OK;
}
