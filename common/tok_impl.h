/* tok_impl.h - the tokenizer's internal structures, shared by tok_*.c only (not a public header).
 *
 * Invariants: every id in [0, n_ids) either has a spelling (tok_off/tok_len into `strs`) or is a
 * hole (tok_len == TOK_NONE); `dec` holds, per id, the bytes decode emits for it; the merge table
 * maps a pair of ids to (rank, merged id) and every merged id exists in the vocabulary.
 */
#ifndef DSM_TOK_IMPL_H
#define DSM_TOK_IMPL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/err.h"

#define TOK_NONE UINT32_MAX

/* The ByteLevel alphabet (GPT-2): printable Latin-1 bytes stand for themselves, the other 68
 * bytes (0x00-0x20, 0x7F-0xA0, 0xAD) are moved, in order, to U+0100..U+0143. */
static inline uint32_t tok_bytelevel_cp(uint8_t b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    if (b <= 0x20) return 256u + b;
    if (b >= 0x7F && b <= 0xA0) return 256u + 33u + (uint32_t)(b - 0x7F);
    return 256u + 33u + 34u; /* 0xAD */
}

/* Write code point cp as UTF-8 into out (4 bytes of room); returns the byte count. */
static inline int tok_utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F)); return 4;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when s does not start one. When
 * `incomplete` is not NULL it is set to 1 if the bytes are a valid but unfinished prefix. */
size_t tok_utf8_seq(const unsigned char *s, size_t n, int *incomplete);

/* Open-addressing string -> id map; keys live in the tokenizer's string arena. */
struct tok_strmap {
    struct tok_strmap_slot { uint32_t off, len; int32_t id; } *slots; /* id -1 = empty */
    size_t mask;
};

/* (left id, right id) -> (rank, merged id). */
struct tok_pairmap {
    uint64_t *keys; /* (left << 32 | right) + 1, 0 = empty */
    uint32_t *rank;
    int32_t *merged;
    size_t mask;
};

/* A byte trie over added-token contents; node 0 is the root. */
struct tok_trie_node {
    int32_t child;   /* first child, -1 none */
    int32_t sibling; /* next sibling, -1 none */
    int32_t added;   /* index into tok->added when a token ends here, else -1 */
    uint8_t byte;
};
struct tok_trie {
    struct tok_trie_node *nodes;
    size_t n, cap;
    uint8_t first[256]; /* 1 when some token starts with this byte */
};

struct tok_added {
    int32_t id;
    uint32_t off, len; /* content (normalized when `normalized`), in tok->strs */
    uint8_t special, normalized, lstrip, rstrip, single_word;
};

enum tok_norm_kind { TOK_NORM_NFC, TOK_NORM_NFD, TOK_NORM_NFKC, TOK_NORM_NFKD };

enum tok_split_behavior {
    TOK_SPLIT_REMOVED,
    TOK_SPLIT_ISOLATED,
    TOK_SPLIT_MERGED_PREV,
    TOK_SPLIT_MERGED_NEXT,
    TOK_SPLIT_CONTIGUOUS,
};

enum tok_pre_kind { TOK_PRE_SPLIT, TOK_PRE_PREFIX_SPACE };

/* One pre-tokenizer step. ByteLevel becomes an optional TOK_PRE_PREFIX_SPACE step followed by an
 * optional Split (its GPT-2 regex, Isolated); the byte mapping itself happens inside BPE. */
struct tok_pre {
    enum tok_pre_kind kind;
    pcre2_code *re;
    int jit; /* pcre2_jit_compile succeeded */
    enum tok_split_behavior behavior;
    int invert;
};

#define TOK_MAX_NORM 8
#define TOK_MAX_PRE 16

/* The word cache: BPE results of short words, cleared wholesale when full. */
struct tok_cache {
    pthread_mutex_t lock;
    uint32_t *slots;    /* entry index + 1, 0 = empty */
    size_t mask;
    struct tok_cache_entry { uint64_t hash; uint32_t key_off, key_len, ids_off, ids_len; } *entries;
    size_t n_entries, cap_entries;
    char *keys; size_t keys_len, keys_cap;
    int32_t *ids; size_t ids_len, ids_cap;
};

struct dsm_tokenizer {
    char *strs; size_t strs_len, strs_cap; /* every spelling, NUL-terminated */
    int32_t n_ids;
    uint32_t *tok_off, *tok_len; /* spelling of each id (added content wins) */
    uint8_t *is_special;         /* per id */
    char *dec; uint32_t *dec_off, *dec_len; /* decoded bytes of each id */
    struct tok_strmap vocab;     /* model vocabulary spelling -> id */
    struct tok_strmap lookup;    /* tok_token_to_id: added contents and model vocabulary */
    struct tok_pairmap merges;
    int ignore_merges;
    int32_t byte_id[256];        /* id of each byte's ByteLevel character, -1 if absent */
    struct tok_added *added; size_t n_added;
    struct tok_trie raw_trie, norm_trie;
    enum tok_norm_kind norm[TOK_MAX_NORM]; int n_norm;
    struct tok_pre pre[TOK_MAX_PRE]; int n_pre;
    int32_t bos, eos, pad;
    char *chat_template;
    struct tok_cache cache;
};

/* Hash of a byte string (64-bit FNV-1a folded with a multiply). */
uint64_t tok_hash(const void *p, size_t n);

/* Look s[0..n) up in map; -1 when absent. */
int32_t tok_strmap_get(const struct dsm_tokenizer *tok, const struct tok_strmap *m, const char *s,
                       size_t n);

/* The (rank, merged id) of a pair; returns 0 when the pair has no merge. */
int tok_pairmap_get(const struct tok_pairmap *m, int32_t a, int32_t b, uint32_t *rank, int32_t *merged);

/* Apply the tokenizer's normalizers to s[0..n) (valid UTF-8) into a new NUL-terminated buffer
 * (*out, *out_len); the caller frees *out. With no normalizers it is a copy. (tok_text.c) */
int tok_normalize(const struct dsm_tokenizer *tok, const char *s, size_t n, char **out,
                  size_t *out_len, struct dsm_err *err);

/* Cache helpers (tok_encode.c). */
int tok_cache_init(struct tok_cache *c, struct dsm_err *err);
void tok_cache_free(struct tok_cache *c);

#endif
