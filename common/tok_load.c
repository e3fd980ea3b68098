/* tok_load.c - build a struct dsm_tokenizer from tokenizer.json (+ tokenizer_config.json).
 *
 * Every field we read is validated; every error names the file and the JSON path of the field
 * ("model.merges[17]", "pre_tokenizer.pretokenizers[2].pattern.Regex"). A component or option we
 * do not implement is DSM_EUNSUPPORTED naming its type, never silently ignored.
 */
#include "common/tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "common/tok_impl.h"
#include "common/util.h"

#define TOK_MAX_IDS (1 << 24) /* sanity bound on ids read from a file */

/* The GPT-2 regex ByteLevel uses when use_regex is true (as in the Rust library). */
static const char bytelevel_regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ---- hashing and maps -------------------------------------------------------------------------- */

uint64_t tok_hash(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

static int strmap_init(struct tok_strmap *m, size_t n, struct dsm_err *err) {
    size_t cap = pow2_at_least(n * 2 + 1);
    m->slots = dsm_calloc(cap, sizeof *m->slots, err);
    if (!m->slots) return DSM_ENOMEM;
    for (size_t i = 0; i < cap; i++) m->slots[i].id = -1;
    m->mask = cap - 1;
    return DSM_OK;
}

/* Insert (off,len)->id; an existing key is overwritten when `overwrite`. The map never fills:
 * it is sized for every key at init. */
static void strmap_put(struct dsm_tokenizer *tok, struct tok_strmap *m, uint32_t off, uint32_t len,
                       int32_t id, int overwrite) {
    size_t i = tok_hash(tok->strs + off, len) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        struct tok_strmap_slot *s = &m->slots[i];
        if (s->id < 0) {
            s->off = off, s->len = len, s->id = id;
            return;
        }
        if (s->len == len && !memcmp(tok->strs + s->off, tok->strs + off, len)) {
            if (overwrite) s->id = id;
            return;
        }
    }
}

int32_t tok_strmap_get(const struct dsm_tokenizer *tok, const struct tok_strmap *m, const char *s,
                       size_t n) {
    if (!m->slots) return -1;
    size_t i = tok_hash(s, n) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        const struct tok_strmap_slot *e = &m->slots[i];
        if (e->id < 0) return -1;
        if (e->len == n && !memcmp(tok->strs + e->off, s, n)) return e->id;
    }
}

static uint64_t pair_key(int32_t a, int32_t b) { return (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1; }

static size_t pair_slot(uint64_t key, size_t mask) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & mask;
}

int tok_pairmap_get(const struct tok_pairmap *m, int32_t a, int32_t b, uint32_t *rank, int32_t *merged) {
    if (!m->keys) return 0;
    uint64_t key = pair_key(a, b);
    for (size_t i = pair_slot(key, m->mask);; i = (i + 1) & m->mask) {
        if (m->keys[i] == 0) return 0;
        if (m->keys[i] == key) {
            *rank = m->rank[i];
            *merged = m->merged[i];
            return 1;
        }
    }
}

/* ---- the string arena ---------------------------------------------------------------------- */

static int strs_add(struct dsm_tokenizer *tok, const char *s, size_t n, uint32_t *off,
                    struct dsm_err *err) {
    if (tok->strs_len + n + 1 > tok->strs_cap) {
        size_t cap = tok->strs_cap ? tok->strs_cap : 1 << 16;
        while (cap < tok->strs_len + n + 1) cap *= 2;
        if (cap > UINT32_MAX) return dsm_errf(err, DSM_EINVAL, "vocabulary strings exceed 4 GiB");
        char *p = realloc(tok->strs, cap);
        if (!p) return dsm_errf(err, DSM_ENOMEM, "out of memory for vocabulary strings");
        tok->strs = p;
        tok->strs_cap = cap;
    }
    memcpy(tok->strs + tok->strs_len, s, n);
    tok->strs[tok->strs_len + n] = 0;
    *off = (uint32_t)tok->strs_len;
    tok->strs_len += n + 1;
    return DSM_OK;
}

/* ---- JSON helpers ---------------------------------------------------------------------------- */

/* A string member, or NULL when absent or not a string. */
static const char *jstr(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A boolean member (absent/null = dflt); returns -1 when it is present with another type. */
static int jbool(json_t *o, const char *key, int dflt) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return dflt;
    if (!json_is_boolean(v)) return -1;
    return json_is_true(v);
}

/* ---- trie ------------------------------------------------------------------------------------ */

static int trie_insert(struct tok_trie *t, const char *s, size_t n, int32_t added,
                       struct dsm_err *err) {
    if (!t->nodes) {
        t->cap = 64;
        t->nodes = malloc(t->cap * sizeof *t->nodes);
        if (!t->nodes) return dsm_errf(err, DSM_ENOMEM, "out of memory for added tokens");
        t->nodes[0] = (struct tok_trie_node){.child = -1, .sibling = -1, .added = -1};
        t->n = 1;
    }
    int32_t cur = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        int32_t c = t->nodes[cur].child;
        while (c >= 0 && t->nodes[c].byte != b) c = t->nodes[c].sibling;
        if (c < 0) {
            if (t->n == t->cap) {
                struct tok_trie_node *p = realloc(t->nodes, 2 * t->cap * sizeof *p);
                if (!p) return dsm_errf(err, DSM_ENOMEM, "out of memory for added tokens");
                t->nodes = p;
                t->cap *= 2;
            }
            c = (int32_t)t->n++;
            t->nodes[c] = (struct tok_trie_node){
                .child = -1, .sibling = t->nodes[cur].child, .added = -1, .byte = b};
            t->nodes[cur].child = c;
        }
        cur = c;
    }
    if (t->nodes[cur].added < 0) t->nodes[cur].added = added; /* the first token wins */
    t->first[(uint8_t)s[0]] = 1;
    return DSM_OK;
}

/* ---- regexes --------------------------------------------------------------------------------- */

/* Rewrite an Oniguruma pattern for PCRE2 where the two differ on the patterns tokenizers use:
 * Oniguruma's \s is Unicode White_Space, which includes U+0085 that PCRE2's \s lacks; \h is a hex
 * digit in Oniguruma but horizontal space in PCRE2; \uHHHH is Oniguruma syntax only.
 * Returns a new string (caller frees) or NULL when out of memory. */
static char *regex_translate(const char *re) {
    size_t n = strlen(re);
    char *out = malloc(n * 6 + 1);
    if (!out) return NULL;
    size_t o = 0;
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = re[i];
        if (c == '\\' && i + 1 < n) {
            char d = re[i + 1];
            const char *rep = NULL;
            if (d == 's') rep = in_class ? "\\s\\x{85}" : "[\\s\\x{85}]";
            else if (d == 'S' && !in_class) rep = "[^\\s\\x{85}]";
            else if (d == 'h') rep = in_class ? "0-9a-fA-F" : "[0-9a-fA-F]";
            else if (d == 'H' && !in_class) rep = "[^0-9a-fA-F]";
            if (rep) {
                memcpy(out + o, rep, strlen(rep));
                o += strlen(rep);
                i++;
                continue;
            }
            if (d == 'u' && strspn(re + i + 2, "0123456789abcdefABCDEF") >= 4) {
                o += (size_t)sprintf(out + o, "\\x{%.4s}", re + i + 2);
                i += 5;
                continue;
            }
            out[o++] = c;
            out[o++] = d;
            i++;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = 1;
            out[o++] = c;
            if (re[i + 1] == '^') out[o++] = re[++i];
            if (re[i + 1] == ']') out[o++] = re[++i]; /* a leading ] is literal */
            continue;
        }
        if (in_class && c == '[' && re[i + 1] == ':') { /* POSIX class [:name:] */
            const char *end = strstr(re + i + 2, ":]");
            if (end) {
                size_t k = (size_t)(end + 2 - (re + i));
                memcpy(out + o, re + i, k);
                o += k;
                i += k - 1;
                continue;
            }
        }
        if (in_class && c == ']') in_class = 0;
        out[o++] = c;
    }
    out[o] = 0;
    return out;
}

static int regex_compile(struct tok_pre *p, const char *pattern, int literal, const char *what,
                         const char *field, struct dsm_err *err) {
    char *tr = literal ? strdup(pattern) : regex_translate(pattern);
    if (!tr) return dsm_errf(err, DSM_ENOMEM, "out of memory compiling %s", field);
    int ec = 0;
    PCRE2_SIZE eo = 0;
    uint32_t opts = literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP;
    p->re = pcre2_compile((PCRE2_SPTR)tr, PCRE2_ZERO_TERMINATED, opts, &ec, &eo, NULL);
    free(tr);
    if (!p->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return dsm_errf(err, DSM_EINVAL, "%s: %s: PCRE2 rejects the regex near offset %zu: %s",
                        what, field, (size_t)eo, (const char *)msg);
    }
    p->jit = pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE) == 0;
    return DSM_OK;
}

/* ---- components ------------------------------------------------------------------------------ */

static int parse_normalizer(struct dsm_tokenizer *tok, json_t *n, const char *field,
                            const char *what, struct dsm_err *err) {
    if (!n || json_is_null(n)) return DSM_OK;
    const char *type = jstr(n, "type");
    if (!type) return dsm_errf(err, DSM_EINVAL, "%s: %s: missing \"type\"", what, field);
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(n, "normalizers");
        if (!json_is_array(arr))
            return dsm_errf(err, DSM_EINVAL, "%s: %s.normalizers: expected an array", what, field);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.normalizers[%zu]", field, i);
            int rc = parse_normalizer(tok, json_array_get(arr, i), sub, what, err);
            if (rc) return rc;
        }
        return DSM_OK;
    }
    enum tok_norm_kind k;
    if (!strcmp(type, "NFC")) k = TOK_NORM_NFC;
    else if (!strcmp(type, "NFD")) k = TOK_NORM_NFD;
    else if (!strcmp(type, "NFKC")) k = TOK_NORM_NFKC;
    else if (!strcmp(type, "NFKD")) k = TOK_NORM_NFKD;
    else
        return dsm_errf(err, DSM_EUNSUPPORTED, "%s: %s: normalizer type \"%s\" is not supported "
                        "(supported: NFC, NFD, NFKC, NFKD, Sequence)", what, field, type);
    if (tok->n_norm == TOK_MAX_NORM)
        return dsm_errf(err, DSM_EUNSUPPORTED, "%s: %s: more than %d normalizers", what, field,
                        TOK_MAX_NORM);
    tok->norm[tok->n_norm++] = k;
    return DSM_OK;
}

static int pre_slot(struct dsm_tokenizer *tok, const char *field, const char *what,
                    struct tok_pre **out, struct dsm_err *err) {
    if (tok->n_pre == TOK_MAX_PRE)
        return dsm_errf(err, DSM_EUNSUPPORTED, "%s: %s: more than %d pre-tokenizer steps", what,
                        field, TOK_MAX_PRE);
    *out = &tok->pre[tok->n_pre++];
    memset(*out, 0, sizeof **out);
    return DSM_OK;
}

static int parse_pre(struct dsm_tokenizer *tok, json_t *p, const char *field, const char *what,
                     struct dsm_err *err) {
    if (!p || json_is_null(p)) return DSM_OK;
    const char *type = jstr(p, "type");
    if (!type) return dsm_errf(err, DSM_EINVAL, "%s: %s: missing \"type\"", what, field);
    char sub[256];
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(p, "pretokenizers");
        if (!json_is_array(arr))
            return dsm_errf(err, DSM_EINVAL, "%s: %s.pretokenizers: expected an array", what, field);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", field, i);
            int rc = parse_pre(tok, json_array_get(arr, i), sub, what, err);
            if (rc) return rc;
        }
        return DSM_OK;
    }
    if (!strcmp(type, "ByteLevel")) {
        int aps = jbool(p, "add_prefix_space", 1), ur = jbool(p, "use_regex", 1);
        if (aps < 0 || ur < 0)
            return dsm_errf(err, DSM_EINVAL, "%s: %s: add_prefix_space and use_regex must be "
                            "booleans", what, field);
        struct tok_pre *s = NULL;
        int rc;
        if (aps) {
            if ((rc = pre_slot(tok, field, what, &s, err))) return rc;
            s->kind = TOK_PRE_PREFIX_SPACE;
        }
        if (ur) {
            if ((rc = pre_slot(tok, field, what, &s, err))) return rc;
            s->kind = TOK_PRE_SPLIT;
            s->behavior = TOK_SPLIT_ISOLATED;
            snprintf(sub, sizeof sub, "%s (ByteLevel regex)", field);
            if ((rc = regex_compile(s, bytelevel_regex, 0, what, sub, err))) return rc;
        }
        return DSM_OK;
    }
    if (!strcmp(type, "Split")) {
        json_t *pat = json_object_get(p, "pattern");
        const char *re = jstr(pat, "Regex"), *lit = jstr(pat, "String");
        if (!re && !lit)
            return dsm_errf(err, DSM_EINVAL, "%s: %s.pattern: expected {\"Regex\": ...} or "
                            "{\"String\": ...}", what, field);
        const char *beh = jstr(p, "behavior");
        enum tok_split_behavior b;
        if (!beh) return dsm_errf(err, DSM_EINVAL, "%s: %s.behavior: missing", what, field);
        if (!strcmp(beh, "Isolated")) b = TOK_SPLIT_ISOLATED;
        else if (!strcmp(beh, "Removed")) b = TOK_SPLIT_REMOVED;
        else if (!strcmp(beh, "MergedWithPrevious")) b = TOK_SPLIT_MERGED_PREV;
        else if (!strcmp(beh, "MergedWithNext")) b = TOK_SPLIT_MERGED_NEXT;
        else if (!strcmp(beh, "Contiguous")) b = TOK_SPLIT_CONTIGUOUS;
        else
            return dsm_errf(err, DSM_EUNSUPPORTED, "%s: %s.behavior: \"%s\" is not a split "
                            "behavior we know", what, field, beh);
        int inv = jbool(p, "invert", 0);
        if (inv < 0) return dsm_errf(err, DSM_EINVAL, "%s: %s.invert: expected a boolean", what, field);
        struct tok_pre *s = NULL;
        int rc = pre_slot(tok, field, what, &s, err);
        if (rc) return rc;
        s->kind = TOK_PRE_SPLIT;
        s->behavior = b;
        s->invert = inv;
        snprintf(sub, sizeof sub, "%s.pattern.%s", field, re ? "Regex" : "String");
        return regex_compile(s, re ? re : lit, !re, what, sub, err);
    }
    return dsm_errf(err, DSM_EUNSUPPORTED, "%s: %s: pre-tokenizer type \"%s\" is not supported "
                    "(supported: Split, ByteLevel, Sequence)", what, field, type);
}

static int parse_decoder(json_t *d, const char *what, struct dsm_err *err) {
    const char *type = jstr(d, "type");
    if (type && !strcmp(type, "ByteLevel")) return DSM_OK;
    return dsm_errf(err, DSM_EUNSUPPORTED, "%s: decoder: type %s%s%s is not supported (only "
                    "ByteLevel)", what, type ? "\"" : "", type ? type : "null", type ? "\"" : "");
}

/* Check the BPE options we do not implement. */
static int check_bpe_options(json_t *m, const char *what, struct dsm_err *err) {
    const char *type = jstr(m, "type");
    if (type && strcmp(type, "BPE"))
        return dsm_errf(err, DSM_EUNSUPPORTED, "%s: model.type: \"%s\" is not supported (only BPE)",
                        what, type);
    if (!type && !json_object_get(m, "merges"))
        return dsm_errf(err, DSM_EUNSUPPORTED, "%s: model: no type and no merges (only BPE is "
                        "supported)", what);
    json_t *v = json_object_get(m, "dropout");
    if (v && !json_is_null(v) && !(json_is_number(v) && json_number_value(v) == 0.0))
        return dsm_errf(err, DSM_EUNSUPPORTED, "%s: model.dropout: BPE dropout is not supported", what);
    if (jbool(m, "byte_fallback", 0) != 0)
        return dsm_errf(err, DSM_EUNSUPPORTED, "%s: model.byte_fallback: only false is supported", what);
    const char *keys[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t i = 0; i < 2; i++) {
        v = json_object_get(m, keys[i]);
        if (v && !json_is_null(v) && !(json_is_string(v) && !json_string_value(v)[0]))
            return dsm_errf(err, DSM_EUNSUPPORTED, "%s: model.%s: only null or \"\" is supported",
                            what, keys[i]);
    }
    return DSM_OK;
}

/* Decoded bytes of a spelling: every character mapped back through the ByteLevel alphabet, or,
 * when some character is outside it, the spelling's own bytes (the Rust decoder's rule). */
static size_t spelling_decode(const char *s, size_t n, const int16_t *unmap, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0 || cp < 0 || cp >= 324 || unmap[cp] < 0) {
            memcpy(out, s, n);
            return n;
        }
        out[o++] = (char)unmap[cp];
        i += (size_t)k;
    }
    return o;
}

/* ---- the loader ------------------------------------------------------------------------------ */

static int load_vocab(struct dsm_tokenizer *tok, json_t *vocab, const char *what, int32_t *max_id,
                      struct dsm_err *err) {
    if (!json_is_object(vocab))
        return dsm_errf(err, DSM_EINVAL, "%s: model.vocab: expected an object of token -> id", what);
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        json_int_t id = json_is_integer(val) ? json_integer_value(val) : -1;
        if (id < 0 || id >= TOK_MAX_IDS)
            return dsm_errf(err, DSM_EINVAL, "%s: model.vocab[\"%.64s\"]: expected an id in [0, %d)",
                            what, key, TOK_MAX_IDS);
        if ((int32_t)id > *max_id) *max_id = (int32_t)id;
    }
    return DSM_OK;
}

static int load_added(struct dsm_tokenizer *tok, json_t *arr, const char *what, int32_t *max_id,
                      struct dsm_err *err) {
    if (!arr || json_is_null(arr)) return DSM_OK;
    if (!json_is_array(arr)) return dsm_errf(err, DSM_EINVAL, "%s: added_tokens: expected an array", what);
    size_t n = json_array_size(arr);
    tok->added = dsm_calloc(n ? n : 1, sizeof *tok->added, err);
    if (!tok->added) return DSM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(arr, i);
        json_t *jid = json_object_get(t, "id");
        const char *content = jstr(t, "content");
        json_int_t id = json_is_integer(jid) ? json_integer_value(jid) : -1;
        if (!content || !content[0] || id < 0 || id >= TOK_MAX_IDS)
            return dsm_errf(err, DSM_EINVAL, "%s: added_tokens[%zu]: expected a non-empty "
                            "\"content\" string and an \"id\" in [0, %d)", what, i, TOK_MAX_IDS);
        struct tok_added *a = &tok->added[i];
        a->id = (int32_t)id;
        int f[5] = {jbool(t, "special", 0), jbool(t, "normalized", 0), jbool(t, "lstrip", 0),
                    jbool(t, "rstrip", 0), jbool(t, "single_word", 0)};
        for (int k = 0; k < 5; k++)
            if (f[k] < 0)
                return dsm_errf(err, DSM_EINVAL, "%s: added_tokens[%zu]: flags must be booleans", what, i);
        a->special = (uint8_t)f[0], a->normalized = (uint8_t)f[1], a->lstrip = (uint8_t)f[2];
        a->rstrip = (uint8_t)f[3], a->single_word = (uint8_t)f[4];
        int rc = strs_add(tok, content, strlen(content), &a->off, err);
        if (rc) return rc;
        a->len = (uint32_t)strlen(content);
        if ((int32_t)id > *max_id) *max_id = (int32_t)id;
        tok->n_added = i + 1;
    }
    return DSM_OK;
}

static int load_merges(struct dsm_tokenizer *tok, json_t *merges, const char *what,
                       struct dsm_err *err) {
    if (!json_is_array(merges))
        return dsm_errf(err, DSM_EINVAL, "%s: model.merges: expected an array", what);
    size_t n = json_array_size(merges);
    size_t cap = pow2_at_least(n * 2 + 1);
    struct tok_pairmap *m = &tok->merges;
    m->keys = dsm_calloc(cap, sizeof *m->keys, err);
    m->rank = dsm_calloc(cap, sizeof *m->rank, err);
    m->merged = dsm_calloc(cap, sizeof *m->merged, err);
    if (!m->keys || !m->rank || !m->merged) return DSM_ENOMEM;
    m->mask = cap - 1;
    char buf[1024];
    for (size_t r = 0; r < n; r++) {
        json_t *e = json_array_get(merges, r);
        const char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        if (json_is_string(e)) {
            const char *s = json_string_value(e);
            const char *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' '))
                return dsm_errf(err, DSM_EINVAL, "%s: model.merges[%zu]: \"%.64s\" is not two "
                                "tokens separated by one space", what, r, s);
            a = s, la = (size_t)(sp - s), b = sp + 1, lb = strlen(b);
        } else if (json_is_array(e) && json_array_size(e) == 2 &&
                   json_is_string(json_array_get(e, 0)) && json_is_string(json_array_get(e, 1))) {
            a = json_string_value(json_array_get(e, 0)), la = strlen(a);
            b = json_string_value(json_array_get(e, 1)), lb = strlen(b);
        } else {
            return dsm_errf(err, DSM_EINVAL, "%s: model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]",
                            what, r);
        }
        if (la + lb > sizeof buf)
            return dsm_errf(err, DSM_EINVAL, "%s: model.merges[%zu]: token too long", what, r);
        int32_t ia = tok_strmap_get(tok, &tok->vocab, a, la);
        int32_t ib = tok_strmap_get(tok, &tok->vocab, b, lb);
        memcpy(buf, a, la);
        memcpy(buf + la, b, lb);
        int32_t im = tok_strmap_get(tok, &tok->vocab, buf, la + lb);
        if (ia < 0 || ib < 0 || im < 0)
            return dsm_errf(err, DSM_EINVAL, "%s: model.merges[%zu]: \"%.*s\" names a token that is "
                            "not in model.vocab", what, r,
                            (int)(ia < 0 ? la : ib < 0 ? lb : la + lb),
                            ia < 0 ? a : ib < 0 ? b : buf);
        uint64_t key = pair_key(ia, ib);
        size_t i = pair_slot(key, m->mask);
        while (m->keys[i] && m->keys[i] != key) i = (i + 1) & m->mask;
        if (m->keys[i] == key) continue; /* a repeated merge keeps its first (lowest) rank */
        m->keys[i] = key;
        m->rank[i] = (uint32_t)r;
        m->merged[i] = im;
    }
    return DSM_OK;
}

static int build(struct dsm_tokenizer *tok, json_t *root, const char *what, struct dsm_err *err) {
    int rc;
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) return dsm_errf(err, DSM_EINVAL, "%s: missing \"model\" object", what);
    if ((rc = check_bpe_options(model, what, err))) return rc;
    int im = jbool(model, "ignore_merges", 0);
    if (im < 0) return dsm_errf(err, DSM_EINVAL, "%s: model.ignore_merges: expected a boolean", what);
    tok->ignore_merges = im;
    json_t *unk = json_object_get(model, "unk_token");
    if (unk && !json_is_null(unk))
        return dsm_errf(err, DSM_EUNSUPPORTED, "%s: model.unk_token: only null is supported "
                        "(byte-level BPE needs no unknown token)", what);

    json_t *vocab = json_object_get(model, "vocab");
    int32_t max_id = -1;
    if ((rc = load_vocab(tok, vocab, what, &max_id, err))) return rc;
    if ((rc = load_added(tok, json_object_get(root, "added_tokens"), what, &max_id, err))) return rc;
    tok->n_ids = max_id + 1;
    tok->tok_off = dsm_calloc((size_t)tok->n_ids + 1, sizeof *tok->tok_off, err);
    tok->tok_len = dsm_calloc((size_t)tok->n_ids + 1, sizeof *tok->tok_len, err);
    tok->is_special = dsm_calloc((size_t)tok->n_ids + 1, 1, err);
    if (!tok->tok_off || !tok->tok_len || !tok->is_special) return DSM_ENOMEM;
    for (int32_t i = 0; i < tok->n_ids; i++) tok->tok_len[i] = TOK_NONE;

    size_t nv = json_object_size(vocab);
    if ((rc = strmap_init(&tok->vocab, nv, err))) return rc;
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        int32_t id = (int32_t)json_integer_value(val);
        uint32_t off;
        size_t len = strlen(key);
        if ((rc = strs_add(tok, key, len, &off, err))) return rc;
        strmap_put(tok, &tok->vocab, off, (uint32_t)len, id, 1);
        if (tok->tok_len[id] == TOK_NONE) tok->tok_off[id] = off, tok->tok_len[id] = (uint32_t)len;
    }
    for (size_t i = 0; i < tok->n_added; i++) { /* added contents win, as in HF */
        struct tok_added *a = &tok->added[i];
        tok->tok_off[a->id] = a->off, tok->tok_len[a->id] = a->len;
        tok->is_special[a->id] = a->special;
    }
    if ((rc = strmap_init(&tok->lookup, (size_t)tok->n_ids, err))) return rc;
    for (int32_t id = 0; id < tok->n_ids; id++)
        if (tok->tok_len[id] != TOK_NONE)
            strmap_put(tok, &tok->lookup, tok->tok_off[id], tok->tok_len[id], id, 0);
    for (size_t i = 0; i < tok->n_added; i++) /* an added content always finds its own id */
        strmap_put(tok, &tok->lookup, tok->added[i].off, tok->added[i].len, tok->added[i].id, 1);

    for (int b = 0; b < 256; b++) {
        char ch[4];
        int n = tok_utf8_put(tok_bytelevel_cp((uint8_t)b), ch);
        tok->byte_id[b] = tok_strmap_get(tok, &tok->vocab, ch, (size_t)n);
    }
    if ((rc = load_merges(tok, json_object_get(model, "merges"), what, err))) return rc;

    if ((rc = parse_normalizer(tok, json_object_get(root, "normalizer"), "normalizer", what, err)))
        return rc;
    if ((rc = parse_pre(tok, json_object_get(root, "pre_tokenizer"), "pre_tokenizer", what, err)))
        return rc;
    if ((rc = parse_decoder(json_object_get(root, "decoder"), what, err))) return rc;

    /* Added-token tries; normalized contents are matched after normalization, so they are
     * normalized here too (as the Rust library does). */
    for (size_t i = 0; i < tok->n_added; i++) {
        struct tok_added *a = &tok->added[i];
        if (a->normalized && tok->n_norm) {
            char *nc = NULL;
            size_t nl = 0;
            if ((rc = tok_normalize(tok, tok->strs + a->off, a->len, &nc, &nl, err))) return rc;
            uint32_t off = 0;
            rc = nl ? strs_add(tok, nc, nl, &off, err) : DSM_OK;
            free(nc);
            if (rc) return rc;
            if (nl) a->off = off, a->len = (uint32_t)nl;
        }
        struct tok_trie *t = a->normalized ? &tok->norm_trie : &tok->raw_trie;
        if ((rc = trie_insert(t, tok->strs + a->off, a->len, (int32_t)i, err))) return rc;
    }

    /* Decoded bytes per id. */
    int16_t unmap[324];
    for (int i = 0; i < 324; i++) unmap[i] = -1;
    for (int b = 0; b < 256; b++) unmap[tok_bytelevel_cp((uint8_t)b)] = (int16_t)b;
    tok->dec_off = dsm_calloc((size_t)tok->n_ids + 1, sizeof *tok->dec_off, err);
    tok->dec_len = dsm_calloc((size_t)tok->n_ids + 1, sizeof *tok->dec_len, err);
    tok->dec = malloc(tok->strs_len + 1);
    if (!tok->dec_off || !tok->dec_len || !tok->dec)
        return dsm_errf(err, DSM_ENOMEM, "out of memory for the decode table");
    size_t o = 0;
    for (int32_t id = 0; id < tok->n_ids; id++) {
        tok->dec_off[id] = (uint32_t)o;
        if (tok->tok_len[id] == TOK_NONE) continue;
        size_t k = spelling_decode(tok->strs + tok->tok_off[id], tok->tok_len[id], unmap, tok->dec + o);
        tok->dec_len[id] = (uint32_t)k;
        o += k;
    }
    tok->bos = tok->eos = tok->pad = -1;
    return tok_cache_init(&tok->cache, err);
}

int tok_load_json(const char *json, size_t len, const char *what, struct dsm_tokenizer **out,
                  struct dsm_err *err) {
    *out = NULL;
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_ALLOW_NUL, &je);
    if (!root)
        return dsm_errf(err, DSM_EINVAL, "%s: malformed JSON at line %d column %d: %s", what,
                        je.line, je.column, je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return dsm_errf(err, DSM_EINVAL, "%s: expected a JSON object at the top", what);
    }
    struct dsm_tokenizer *tok = dsm_calloc(1, sizeof *tok, err);
    if (!tok) {
        json_decref(root);
        return DSM_ENOMEM;
    }
    int rc = build(tok, root, what, err);
    json_decref(root);
    if (rc) {
        tok_destroy(tok);
        return rc;
    }
    *out = tok;
    return DSM_OK;
}

int tok_load(const char *path, struct dsm_tokenizer **out, struct dsm_err *err) {
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = dsm_file_read(path, &text, &len, err);
    if (rc) return rc;
    rc = tok_load_json(text, len, path, out, err);
    free(text);
    return rc;
}

/* A special token entry of tokenizer_config.json: a string, {"content": "..."} or null. */
static int config_special(struct dsm_tokenizer *tok, json_t *cfg, const char *key,
                          const char *path, int32_t *id, struct dsm_err *err) {
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v)) return DSM_OK;
    const char *s = json_is_string(v) ? json_string_value(v) : jstr(v, "content");
    if (!s) return dsm_errf(err, DSM_EINVAL, "%s: %s: expected a string or {\"content\": ...}", path, key);
    *id = tok_token_to_id(tok, s);
    if (*id < 0)
        return dsm_errf(err, DSM_EINVAL, "%s: %s: \"%s\" is not in the tokenizer's vocabulary",
                        path, key, s);
    return DSM_OK;
}

int tok_load_dir(const char *dir, struct dsm_tokenizer **out, struct dsm_err *err) {
    *out = NULL;
    char path[4096];
    int rc = dsm_path_join(path, sizeof path, dir, "tokenizer.json", err);
    if (rc) return rc;
    struct dsm_tokenizer *tok = NULL;
    if ((rc = tok_load(path, &tok, err))) return rc;
    if ((rc = dsm_path_join(path, sizeof path, dir, "tokenizer_config.json", err))) goto fail;
    char *text = NULL;
    size_t len = 0;
    rc = dsm_file_read(path, &text, &len, err);
    if (rc == DSM_ENOTFOUND) {
        dsm_err_clear(err);
        *out = tok;
        return DSM_OK;
    }
    if (rc) goto fail;
    json_error_t je;
    json_t *cfg = json_loadb(text, len, 0, &je);
    free(text);
    if (!json_is_object(cfg)) {
        rc = dsm_errf(err, DSM_EINVAL, "%s: malformed JSON at line %d column %d: %s", path,
                      je.line, je.column, cfg ? "expected an object" : je.text);
        json_decref(cfg);
        goto fail;
    }
    if ((rc = config_special(tok, cfg, "bos_token", path, &tok->bos, err)) ||
        (rc = config_special(tok, cfg, "eos_token", path, &tok->eos, err)) ||
        (rc = config_special(tok, cfg, "pad_token", path, &tok->pad, err))) {
        json_decref(cfg);
        goto fail;
    }
    /* chat_template: a string, or a list of {name, template} (the "default" one, else the
     * first); dsm_chat_format (our own key) names a format directly and is kept in front. */
    json_t *ct = json_object_get(cfg, "chat_template");
    const char *tmpl = json_is_string(ct) ? json_string_value(ct) : NULL;
    if (json_is_array(ct)) {
        for (size_t i = 0; i < json_array_size(ct); i++) {
            json_t *e = json_array_get(ct, i);
            const char *name = jstr(e, "name");
            if (!tmpl || (name && !strcmp(name, "default"))) tmpl = jstr(e, "template");
        }
    }
    const char *fmt = jstr(cfg, "dsm_chat_format");
    if (tmpl || fmt) {
        size_t n = (tmpl ? strlen(tmpl) : 0) + (fmt ? strlen(fmt) : 0) + 64;
        tok->chat_template = malloc(n);
        if (!tok->chat_template) {
            json_decref(cfg);
            rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
            goto fail;
        }
        snprintf(tok->chat_template, n, "%s%s%s%s", fmt ? "{# dsm_chat_format: " : "",
                 fmt ? fmt : "", fmt ? " #}" : "", tmpl ? tmpl : "");
    }
    json_decref(cfg);
    *out = tok;
    return DSM_OK;
fail:
    tok_destroy(tok);
    return rc;
}

void tok_destroy(struct dsm_tokenizer *tok) {
    if (!tok) return;
    for (int i = 0; i < tok->n_pre; i++) pcre2_code_free(tok->pre[i].re);
    tok_cache_free(&tok->cache);
    free(tok->strs);
    free(tok->tok_off);
    free(tok->tok_len);
    free(tok->is_special);
    free(tok->dec);
    free(tok->dec_off);
    free(tok->dec_len);
    free(tok->vocab.slots);
    free(tok->lookup.slots);
    free(tok->merges.keys);
    free(tok->merges.rank);
    free(tok->merges.merged);
    free(tok->added);
    free(tok->raw_trie.nodes);
    free(tok->norm_trie.nodes);
    free(tok->chat_template);
    free(tok);
}

/* ---- vocabulary queries ---------------------------------------------------------------------- */

int32_t tok_vocab_size(const struct dsm_tokenizer *tok) { return tok->n_ids; }

int32_t tok_token_to_id(const struct dsm_tokenizer *tok, const char *token) {
    size_t n = strlen(token);
    int32_t id = tok_strmap_get(tok, &tok->lookup, token, n);
    return id >= 0 ? id : tok_strmap_get(tok, &tok->vocab, token, n);
}

const char *tok_id_to_token(const struct dsm_tokenizer *tok, int32_t id) {
    if (id < 0 || id >= tok->n_ids || tok->tok_len[id] == TOK_NONE) return NULL;
    return tok->strs + tok->tok_off[id];
}

int tok_is_special(const struct dsm_tokenizer *tok, int32_t id) {
    return id >= 0 && id < tok->n_ids && tok->is_special[id];
}

int32_t tok_bos_id(const struct dsm_tokenizer *tok) { return tok->bos; }
int32_t tok_eos_id(const struct dsm_tokenizer *tok) { return tok->eos; }
int32_t tok_pad_id(const struct dsm_tokenizer *tok) { return tok->pad; }
const char *tok_chat_template(const struct dsm_tokenizer *tok) { return tok->chat_template; }
