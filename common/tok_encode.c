/* tok_encode.c - text -> ids, following the Rust `tokenizers` pipeline step by step:
 *
 *   raw text --(non-normalized added tokens, leftmost-longest)--> gaps
 *   gap --normalizers--> --(normalized added tokens)--> pieces
 *   piece --pre-tokenizer steps (Split / ByteLevel prefix space), depth first--> words
 *   word --ByteLevel map + BPE by merge rank (cached for short words)--> ids
 *
 * Ids are appended to the caller's buffer; the count keeps running past its capacity so the
 * caller learns the size it needs (snprintf style).
 */
#include "common/tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "common/tok_impl.h"
#include "common/util.h"

#define CACHE_SLOTS (1u << 16)
#define CACHE_MAX_ENTRIES (1u << 15)
#define CACHE_KEYS_CAP (1u << 20)
#define CACHE_IDS_CAP (1u << 18)
#define CACHE_MAX_WORD 64 /* words longer than this (bytes) are not cached */

/* A piece of a split: [start, end) and whether the pattern matched it. */
struct span { size_t start, end; int match; };

/* Per-call state: output buffer, PCRE2 match data, BPE scratch. */
struct enc {
    const struct dsm_tokenizer *tok;
    int32_t *ids;
    size_t cap, n;
    pcre2_match_data *md;
    struct dsm_err *err;
    struct sym { int32_t id, prev, next; } *syms;
    size_t syms_cap;
    struct merge { uint32_t rank, pos; int32_t merged; } *heap;
    size_t heap_n, heap_cap;
    char *buf; /* ignore_merges: the mapped word */
    size_t buf_cap;
    struct span *spans[TOK_MAX_PRE]; /* one reusable span list per pre-tokenizer depth */
    size_t spans_cap[TOK_MAX_PRE];
};

/* ---- the word cache ---------------------------------------------------------------------------- */

int tok_cache_init(struct tok_cache *c, struct dsm_err *err) {
    memset(c, 0, sizeof *c);
    if (pthread_mutex_init(&c->lock, NULL))
        return dsm_errf(err, DSM_ENOMEM, "cannot create the tokenizer cache lock");
    c->slots = dsm_calloc(CACHE_SLOTS, sizeof *c->slots, err);
    c->entries = dsm_calloc(CACHE_MAX_ENTRIES, sizeof *c->entries, err);
    c->keys = malloc(CACHE_KEYS_CAP);
    c->ids = malloc(CACHE_IDS_CAP * sizeof *c->ids);
    if (!c->slots || !c->entries || !c->keys || !c->ids) {
        tok_cache_free(c);
        return dsm_errf(err, DSM_ENOMEM, "out of memory for the tokenizer cache");
    }
    c->mask = CACHE_SLOTS - 1;
    c->cap_entries = CACHE_MAX_ENTRIES;
    c->keys_cap = CACHE_KEYS_CAP;
    c->ids_cap = CACHE_IDS_CAP;
    return DSM_OK;
}

void tok_cache_free(struct tok_cache *c) {
    if (!c->slots && !c->entries && !c->keys && !c->ids) return;
    pthread_mutex_destroy(&c->lock);
    free(c->slots);
    free(c->entries);
    free(c->keys);
    free(c->ids);
    memset(c, 0, sizeof *c);
}

static void emit(struct enc *e, int32_t id) {
    if (e->n < e->cap) e->ids[e->n] = id;
    e->n++;
}

/* On a hit, emit the cached ids and return 1. */
static int cache_get(struct enc *e, const char *w, size_t n, uint64_t h) {
    struct tok_cache *c = (struct tok_cache *)&e->tok->cache; /* the one mutable part */
    int hit = 0;
    pthread_mutex_lock(&c->lock);
    for (size_t i = h & c->mask;; i = (i + 1) & c->mask) {
        uint32_t s = c->slots[i];
        if (!s) break;
        const struct tok_cache_entry *en = &c->entries[s - 1];
        if (en->hash == h && en->key_len == n && !memcmp(c->keys + en->key_off, w, n)) {
            for (uint32_t k = 0; k < en->ids_len; k++) emit(e, c->ids[en->ids_off + k]);
            hit = 1;
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

static void cache_put(struct enc *e, const char *w, size_t n, uint64_t h, const int32_t *ids,
                      size_t nids) {
    struct tok_cache *c = (struct tok_cache *)&e->tok->cache;
    pthread_mutex_lock(&c->lock);
    if (c->n_entries + 1 > c->cap_entries || c->keys_len + n > c->keys_cap ||
        c->ids_len + nids > c->ids_cap) { /* full: start over */
        memset(c->slots, 0, (c->mask + 1) * sizeof *c->slots);
        c->n_entries = c->keys_len = c->ids_len = 0;
    }
    size_t i = h & c->mask;
    while (c->slots[i]) {
        const struct tok_cache_entry *en = &c->entries[c->slots[i] - 1];
        if (en->hash == h && en->key_len == n && !memcmp(c->keys + en->key_off, w, n)) {
            pthread_mutex_unlock(&c->lock); /* another thread got there first */
            return;
        }
        i = (i + 1) & c->mask;
    }
    struct tok_cache_entry *en = &c->entries[c->n_entries];
    en->hash = h;
    en->key_off = (uint32_t)c->keys_len, en->key_len = (uint32_t)n;
    en->ids_off = (uint32_t)c->ids_len, en->ids_len = (uint32_t)nids;
    memcpy(c->keys + c->keys_len, w, n);
    memcpy(c->ids + c->ids_len, ids, nids * sizeof *ids);
    c->keys_len += n;
    c->ids_len += nids;
    c->slots[i] = (uint32_t)++c->n_entries;
    pthread_mutex_unlock(&c->lock);
}

/* ---- BPE ------------------------------------------------------------------------------------- */

static int grow(void **p, size_t *cap, size_t need, size_t elem, struct enc *e) {
    if (need <= *cap) return DSM_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return dsm_errf(e->err, DSM_ENOMEM, "out of memory encoding a %zu-byte word", need);
    *p = q;
    *cap = c;
    return DSM_OK;
}

/* Min-heap on (rank, pos): the lowest rank merges first, the leftmost on ties (as HF). */
static int merge_less(const struct merge *a, const struct merge *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(struct enc *e, struct merge m) {
    size_t i = e->heap_n++;
    e->heap[i] = m;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!merge_less(&e->heap[i], &e->heap[p])) break;
        struct merge t = e->heap[i];
        e->heap[i] = e->heap[p];
        e->heap[p] = t;
        i = p;
    }
}

static struct merge heap_pop(struct enc *e) {
    struct merge top = e->heap[0];
    e->heap[0] = e->heap[--e->heap_n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < e->heap_n && merge_less(&e->heap[l], &e->heap[m])) m = l;
        if (r < e->heap_n && merge_less(&e->heap[r], &e->heap[m])) m = r;
        if (m == i) break;
        struct merge t = e->heap[i];
        e->heap[i] = e->heap[m];
        e->heap[m] = t;
        i = m;
    }
    return top;
}

static void push_pair(struct enc *e, int32_t pos) {
    int32_t nx = e->syms[pos].next;
    if (nx < 0) return;
    uint32_t rank;
    int32_t merged;
    if (tok_pairmap_get(&e->tok->merges, e->syms[pos].id, e->syms[nx].id, &rank, &merged))
        heap_push(e, (struct merge){rank, (uint32_t)pos, merged});
}

/* BPE over one word w[0..n) (raw bytes; each byte is one ByteLevel symbol). */
static int bpe_word(struct enc *e, const char *w, size_t n) {
    const struct dsm_tokenizer *tok = e->tok;
    if (n == 0) return DSM_OK;
    if (tok->ignore_merges) { /* a word that is itself in the vocabulary is one token */
        if (grow((void **)&e->buf, &e->buf_cap, 2 * n, 1, e)) return DSM_ENOMEM;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) k += (size_t)tok_utf8_put(tok_bytelevel_cp((uint8_t)w[i]), e->buf + k);
        int32_t id = tok_strmap_get(tok, &tok->vocab, e->buf, k);
        if (id >= 0) {
            emit(e, id);
            return DSM_OK;
        }
    }
    uint64_t h = 0;
    if (n <= CACHE_MAX_WORD) {
        h = tok_hash(w, n);
        if (cache_get(e, w, n, h)) return DSM_OK;
    }
    if (grow((void **)&e->syms, &e->syms_cap, n, sizeof *e->syms, e) ||
        grow((void **)&e->heap, &e->heap_cap, 2 * n + 2, sizeof *e->heap, e))
        return DSM_ENOMEM;
    /* Initial symbols; a byte whose character is not in the vocabulary is dropped (no unk). */
    int32_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = tok->byte_id[(uint8_t)w[i]];
        if (id < 0) continue;
        e->syms[ns] = (struct sym){id, ns - 1, -1};
        if (ns > 0) e->syms[ns - 1].next = ns;
        ns++;
    }
    e->heap_n = 0;
    for (int32_t i = 0; i + 1 < ns; i++) push_pair(e, i);
    while (e->heap_n) {
        struct merge m = heap_pop(e);
        struct sym *s = &e->syms[m.pos];
        if (s->id < 0 || s->next < 0) continue; /* expired entry */
        int32_t r = s->next;
        uint32_t rank;
        int32_t merged;
        /* like HF, an entry is current when the pair at pos still merges into the same id */
        if (!tok_pairmap_get(&tok->merges, s->id, e->syms[r].id, &rank, &merged) || merged != m.merged)
            continue;
        s->id = merged;
        s->next = e->syms[r].next;
        if (s->next >= 0) e->syms[s->next].prev = (int32_t)m.pos;
        e->syms[r].id = -1;
        if (s->prev >= 0) push_pair(e, s->prev);
        push_pair(e, (int32_t)m.pos);
    }
    /* Emit (and cache) the surviving symbols, left to right. */
    int32_t out[CACHE_MAX_WORD];
    size_t cnt = 0;
    for (int32_t i = ns ? 0 : -1; i >= 0; i = e->syms[i].next) {
        emit(e, e->syms[i].id);
        if (n <= CACHE_MAX_WORD) out[cnt++] = e->syms[i].id; /* cnt <= n */
    }
    if (n <= CACHE_MAX_WORD && cnt > 0) cache_put(e, w, n, h, out, cnt);
    return DSM_OK;
}

/* ---- pre-tokenizers ---------------------------------------------------------------------------- */

static int pre_run(struct enc *e, int step, const char *s, size_t n);

/* Matches of re in s[0..n) as alternating gap/match spans covering s (HF find_matches with
 * Oniguruma's find_iter: after an empty match the search moves on one character, and an empty
 * match where the previous match ended is skipped). */
static int find_spans(struct enc *e, const struct tok_pre *p, const char *s, size_t n,
                      struct span **spans, size_t *nspans, size_t *cap) {
    size_t prev = 0, pos = 0, last_end = SIZE_MAX, k = 0;
    while (pos <= n) {
        int rc = pcre2_match(p->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, e->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return dsm_errf(e->err, DSM_EINVAL, "pre-tokenizer regex failed at byte %zu: %s", pos,
                            (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
        size_t ms = ov[0], me = ov[1];
        int empty = ms == me;
        if (!(empty && ms == last_end)) {
            if (grow((void **)spans, cap, k + 2, sizeof **spans, e)) return DSM_ENOMEM;
            if (prev != ms) (*spans)[k++] = (struct span){prev, ms, 0};
            (*spans)[k++] = (struct span){ms, me, 1};
            prev = me;
            last_end = me;
        }
        if (empty) {
            if (me >= n) break;
            size_t step = tok_utf8_seq((const unsigned char *)s + me, n - me, NULL);
            pos = me + (step ? step : 1);
        } else {
            pos = me;
        }
    }
    if (prev != n) {
        if (grow((void **)spans, cap, k + 1, sizeof **spans, e)) return DSM_ENOMEM;
        (*spans)[k++] = (struct span){prev, n, 0};
    }
    *nspans = k;
    return DSM_OK;
}

/* Apply a split behavior in place (the Rust SplitDelimiterBehavior folds); returns the new count.
 * Afterwards `match` is meaningless except for Removed, where matches are dropped. */
static size_t apply_behavior(enum tok_split_behavior b, struct span *sp, size_t n) {
    size_t k = 0;
    int prev_match = 0;
    switch (b) {
    case TOK_SPLIT_ISOLATED: return n;
    case TOK_SPLIT_REMOVED:
        for (size_t i = 0; i < n; i++)
            if (!sp[i].match) sp[k++] = sp[i];
        return k;
    case TOK_SPLIT_MERGED_PREV:
        for (size_t i = 0; i < n; i++) {
            int m = sp[i].match;
            if (m && !prev_match && k > 0) sp[k - 1].end = sp[i].end;
            else sp[k++] = sp[i];
            prev_match = m;
        }
        return k;
    case TOK_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < n; i++) {
            int m = sp[i].match;
            if (m == prev_match && k > 0) sp[k - 1].end = sp[i].end;
            else sp[k++] = sp[i];
            prev_match = m;
        }
        return k;
    case TOK_SPLIT_MERGED_NEXT: /* the same fold from the right */
        k = n;
        for (size_t i = n; i-- > 0;) {
            int m = sp[i].match;
            if (m && !prev_match && k < n) sp[k].start = sp[i].start;
            else sp[--k] = sp[i];
            prev_match = m;
        }
        memmove(sp, sp + k, (n - k) * sizeof *sp);
        return n - k;
    }
    return n;
}

static int pre_split(struct enc *e, int step, const char *s, size_t n) {
    const struct tok_pre *p = &e->tok->pre[step];
    size_t nsp = 0;
    int rc = find_spans(e, p, s, n, &e->spans[step], &nsp, &e->spans_cap[step]);
    if (rc) return rc;
    struct span *sp = e->spans[step];
    if (p->invert)
        for (size_t i = 0; i < nsp; i++) sp[i].match = !sp[i].match;
    nsp = apply_behavior(p->behavior, sp, nsp);
    /* deeper steps use their own span lists, so sp stays valid through the recursion */
    for (size_t i = 0; i < nsp && !rc; i++)
        if (sp[i].end > sp[i].start) rc = pre_run(e, step + 1, s + sp[i].start, sp[i].end - sp[i].start);
    return rc;
}

static int pre_run(struct enc *e, int step, const char *s, size_t n) {
    if (n == 0) return DSM_OK;
    if (step == e->tok->n_pre) return bpe_word(e, s, n);
    if (e->tok->pre[step].kind == TOK_PRE_SPLIT) return pre_split(e, step, s, n);
    /* TOK_PRE_PREFIX_SPACE */
    if (s[0] == ' ') return pre_run(e, step + 1, s, n);
    char *t = malloc(n + 1);
    if (!t) return dsm_errf(e->err, DSM_ENOMEM, "out of memory");
    t[0] = ' ';
    memcpy(t + 1, s, n);
    int rc = pre_run(e, step + 1, t, n + 1);
    free(t);
    return rc;
}

/* ---- added tokens ---------------------------------------------------------------------------- */

static uint32_t cp_at(const char *s, size_t n, size_t i) {
    utf8proc_int32_t cp = -1;
    utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
    return (uint32_t)cp;
}

/* Rust char::is_whitespace (Unicode White_Space). */
static int is_ws(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* Start of the code point that ends at byte i (s valid UTF-8, i > 0). */
static size_t cp_start_before(const char *s, size_t i) {
    do i--;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80);
    return i;
}

static int is_word_char(uint32_t c) {
    if (c == '_') return 1;
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
    return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
           (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

typedef int (*stage_fn)(struct enc *e, const char *s, size_t n);

/* Split s[0..n) on the added tokens of trie t (leftmost, then longest); tokens are emitted,
 * the text between them goes to next(). lstrip/rstrip/single_word as HF. */
static int split_added(struct enc *e, const struct tok_trie *t, const char *s, size_t n, stage_fn next) {
    const struct dsm_tokenizer *tok = e->tok;
    size_t gap = 0; /* start of the text not yet handed on */
    int rc;
    if (!t->nodes) return next(e, s, n);
    for (size_t i = 0; i < n;) {
        if (!t->first[(uint8_t)s[i]]) {
            i++;
            continue;
        }
        int32_t node = 0, best = -1;
        size_t best_end = 0;
        for (size_t j = i; j < n; j++) {
            int32_t c = t->nodes[node].child;
            while (c >= 0 && t->nodes[c].byte != (uint8_t)s[j]) c = t->nodes[c].sibling;
            if (c < 0) break;
            node = c;
            if (t->nodes[c].added >= 0) best = t->nodes[c].added, best_end = j + 1;
        }
        if (best < 0) {
            i++;
            continue;
        }
        const struct tok_added *a = &tok->added[best];
        size_t ms = i, me = best_end;
        if (a->single_word) {
            int left_word = ms > 0 && is_word_char(cp_at(s, n, cp_start_before(s, ms)));
            int right_word = me < n && is_word_char(cp_at(s, n, me));
            if (left_word || right_word) { /* not a match; the matcher moves past it */
                i = me;
                continue;
            }
        }
        if (a->lstrip)
            while (ms > gap) {
                size_t p = cp_start_before(s, ms);
                if (!is_ws(cp_at(s, n, p))) break;
                ms = p;
            }
        if (a->rstrip)
            while (me < n && is_ws(cp_at(s, n, me)))
                me += tok_utf8_seq((const unsigned char *)s + me, n - me, NULL);
        if (ms > gap && (rc = next(e, s + gap, ms - gap))) return rc;
        emit(e, a->id);
        gap = i = me;
    }
    return gap < n ? next(e, s + gap, n - gap) : DSM_OK;
}

static int stage_pre(struct enc *e, const char *s, size_t n) { return pre_run(e, 0, s, n); }

static int stage_normalize(struct enc *e, const char *s, size_t n) {
    const struct dsm_tokenizer *tok = e->tok;
    int ascii = 1;
    for (size_t i = 0; i < n && ascii; i++) ascii = (unsigned char)s[i] < 0x80;
    if (!tok->n_norm || ascii) /* every normal form leaves ASCII alone */
        return split_added(e, &tok->norm_trie, s, n, stage_pre);
    char *ns = NULL;
    size_t nn = 0;
    int rc = tok_normalize(tok, s, n, &ns, &nn, e->err);
    if (rc) return rc;
    rc = split_added(e, &tok->norm_trie, ns, nn, stage_pre);
    free(ns);
    return rc;
}

long tok_encode(const struct dsm_tokenizer *tok, const char *text, size_t len, int32_t *ids,
                size_t cap, struct dsm_err *err) {
    int rc = tok_utf8_check(text, len, err);
    if (rc) return rc;
    struct enc e = {.tok = tok, .ids = ids, .cap = ids ? cap : 0, .err = err};
    e.md = pcre2_match_data_create(1, NULL);
    if (!e.md) return dsm_errf(err, DSM_ENOMEM, "out of memory for regex match data");
    rc = split_added(&e, &tok->raw_trie, text, len, stage_normalize);
    pcre2_match_data_free(e.md);
    free(e.syms);
    free(e.heap);
    free(e.buf);
    for (int i = 0; i < TOK_MAX_PRE; i++) free(e.spans[i]);
    if (rc) return rc;
    return (long)e.n;
}

int tok_encode_alloc(const struct dsm_tokenizer *tok, const char *text, size_t len, int32_t **ids,
                     size_t *n, struct dsm_err *err) {
    *ids = NULL;
    *n = 0;
    /* len + 1 ids always suffice unless NFKC expands the text; then encode again */
    size_t cap = len + 1;
    for (int attempt = 0; attempt < 2; attempt++) {
        int32_t *buf = dsm_calloc(cap, sizeof *buf, err);
        if (!buf) return DSM_ENOMEM;
        long r = tok_encode(tok, text, len, buf, cap, err);
        if (r < 0) {
            free(buf);
            return (int)r;
        }
        if ((size_t)r <= cap) {
            *ids = buf;
            *n = (size_t)r;
            return DSM_OK;
        }
        free(buf);
        cap = (size_t)r;
    }
    return dsm_errf(err, DSM_EINVAL, "encoding did not settle on a length");
}
