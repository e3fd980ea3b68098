/* tok_decode.c - ids -> text: whole sequences (tok_decode) and a streaming decoder (tok_stream).
 *
 * Each id's decoded bytes are precomputed at load (ByteLevel unmapping, tok_load.c). Decoding
 * concatenates them and converts to UTF-8 the way Rust's String::from_utf8_lossy does: every
 * maximal invalid subpart becomes one U+FFFD. The stream holds back only a trailing sequence
 * that is still a valid prefix of a character, so its pieces concatenate to tok_decode's text.
 */
#include "common/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "common/tok_impl.h"
#include "common/util.h"

static const char replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD}; /* U+FFFD */

/* Length of the maximal invalid subpart at s[0..n) (s does not start a valid sequence): the lead
 * byte plus the continuation bytes that still fit some valid sequence, at least 1. */
static size_t utf8_bad_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) need = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) need = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return 1;
    size_t k = 1;
    while (k < need && k < n) {
        unsigned l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (s[k] < l || s[k] > h) break;
        k++;
    }
    return k;
}

/* Append the lossy UTF-8 conversion of b[0..n) to a sink. When `hold` is set, a trailing valid
 * but unfinished sequence is not converted; the number of bytes consumed is returned. */
struct sink { char *out; size_t cap, len; };

static void sink_put(struct sink *k, const char *s, size_t n) {
    if (k->len < k->cap) {
        size_t m = k->cap - k->len < n ? k->cap - k->len : n;
        memcpy(k->out + k->len, s, m);
    }
    k->len += n;
}

static size_t lossy(struct sink *k, const unsigned char *b, size_t n, int hold) {
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && b[run] < 0x80) run++;
        if (run > i) {
            sink_put(k, (const char *)b + i, run - i);
            i = run;
            continue;
        }
        int inc = 0;
        size_t q = tok_utf8_seq(b + i, n - i, &inc);
        if (q) {
            sink_put(k, (const char *)b + i, q);
            i += q;
        } else if (inc && hold) {
            break;
        } else {
            sink_put(k, replacement, 3);
            i += utf8_bad_len(b + i, n - i);
        }
    }
    return i;
}

static int check_id(const struct dsm_tokenizer *tok, int32_t id, size_t index, struct dsm_err *err) {
    if (id < 0 || id >= tok->n_ids || tok->tok_len[id] == TOK_NONE)
        return dsm_errf(err, DSM_EINVAL, "token id %ld at index %zu is not in the vocabulary "
                        "(ids are 0..%ld)", (long)id, index, (long)tok->n_ids - 1);
    return DSM_OK;
}

long tok_decode(const struct dsm_tokenizer *tok, const int32_t *ids, size_t n, int flags, char *out,
                size_t cap, struct dsm_err *err) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = check_id(tok, ids[i], i, err);
        if (rc) return rc;
        if (!((flags & TOK_DECODE_SKIP_SPECIAL) && tok->is_special[ids[i]])) total += tok->dec_len[ids[i]];
    }
    unsigned char *bytes = malloc(total + 1);
    if (!bytes) return dsm_errf(err, DSM_ENOMEM, "out of memory decoding %zu ids", n);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if ((flags & TOK_DECODE_SKIP_SPECIAL) && tok->is_special[id]) continue;
        memcpy(bytes + o, tok->dec + tok->dec_off[id], tok->dec_len[id]);
        o += tok->dec_len[id];
    }
    struct sink k = {out, cap ? cap - 1 : 0, 0};
    lossy(&k, bytes, o, 0);
    free(bytes);
    if (cap) out[k.len < cap - 1 ? k.len : cap - 1] = 0;
    return (long)k.len;
}

int tok_decode_alloc(const struct dsm_tokenizer *tok, const int32_t *ids, size_t n, int flags,
                     char **text, size_t *len, struct dsm_err *err) {
    *text = NULL;
    *len = 0;
    long need = tok_decode(tok, ids, n, flags, NULL, 0, err);
    if (need < 0) return (int)need;
    char *buf = malloc((size_t)need + 1);
    if (!buf) return dsm_errf(err, DSM_ENOMEM, "out of memory decoding %zu ids", n);
    tok_decode(tok, ids, n, flags, buf, (size_t)need + 1, err);
    *text = buf;
    *len = (size_t)need;
    return DSM_OK;
}

/* ---- streaming ------------------------------------------------------------------------------- */

struct tok_stream {
    const struct dsm_tokenizer *tok;
    int flags;
    unsigned char *pend; /* bytes not yet converted (a held-back partial character + new bytes) */
    size_t pend_len, pend_cap;
    char *out; /* the last piece returned */
    size_t out_cap;
};

int tok_stream_create(const struct dsm_tokenizer *tok, int flags, struct tok_stream **out,
                      struct dsm_err *err) {
    struct tok_stream *s = dsm_calloc(1, sizeof *s, err);
    if (!s) return DSM_ENOMEM;
    s->tok = tok;
    s->flags = flags;
    *out = s;
    return DSM_OK;
}

static int ensure(void **p, size_t *cap, size_t need, struct dsm_err *err) {
    if (need <= *cap) return DSM_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c);
    if (!q) return dsm_errf(err, DSM_ENOMEM, "out of memory in the stream decoder");
    *p = q;
    *cap = c;
    return DSM_OK;
}

int tok_stream_push(struct tok_stream *s, int32_t id, const char **text, size_t *len,
                    struct dsm_err *err) {
    *text = "";
    *len = 0;
    int rc = check_id(s->tok, id, 0, err);
    if (rc) return rc;
    if ((s->flags & TOK_DECODE_SKIP_SPECIAL) && s->tok->is_special[id]) return DSM_OK;
    uint32_t dl = s->tok->dec_len[id];
    if ((rc = ensure((void **)&s->pend, &s->pend_cap, s->pend_len + dl, err))) return rc;
    memcpy(s->pend + s->pend_len, s->tok->dec + s->tok->dec_off[id], dl);
    s->pend_len += dl;
    /* at most 3 output bytes per input byte (each bad byte can become U+FFFD) */
    if ((rc = ensure((void **)&s->out, &s->out_cap, 3 * s->pend_len + 1, err))) return rc;
    struct sink k = {s->out, s->out_cap, 0};
    size_t used = lossy(&k, s->pend, s->pend_len, 1);
    memmove(s->pend, s->pend + used, s->pend_len - used);
    s->pend_len -= used;
    *text = s->out;
    *len = k.len;
    return DSM_OK;
}

void tok_stream_finish(struct tok_stream *s, const char **text, size_t *len) {
    *text = "";
    *len = 0;
    if (!s->pend_len) return;
    /* a held-back tail is at most 3 bytes and becomes one U+FFFD: room is there from the push */
    struct sink k = {s->out, s->out_cap, 0};
    lossy(&k, s->pend, s->pend_len, 0);
    s->pend_len = 0;
    *text = s->out;
    *len = k.len < s->out_cap ? k.len : s->out_cap;
}

void tok_stream_destroy(struct tok_stream *s) {
    if (!s) return;
    free(s->pend);
    free(s->out);
    free(s);
}
