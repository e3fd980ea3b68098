/* test_tokenizer.c - the tokenizer on small hand-written tokenizer.json files and the byte
 * tokenizer: merge order and both merge spellings, every split behavior, added-token flags,
 * normalizers, ignore_merges, ByteLevel prefix space and regex, bad input errors, the stream
 * decoder against whole decoding, caller-buffer semantics, threads. Exactness on the real
 * DeepSeek-V3 and Qwen3 tokenizers is tests/cli/test_tokenize_exact.sh. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/tokenizer.h"
#include "common/util.h"
#include "test.h"

/* The GPT-2 ByteLevel character of byte b, written independently of the library's table. */
static unsigned bytelevel(unsigned b) {
    unsigned n = 0;
    for (unsigned c = 0; c < 256; c++) {
        int printable = (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE;
        if (c == b) return printable ? c : 256 + n;
        if (!printable) n++;
    }
    return 0;
}

/* Build a tokenizer.json: ids 0..255 are the bytes (so a byte's id is its value), then `extra`
 * vocabulary entries (a JSON fragment, ids from 256), merges, added tokens, normalizer and
 * pre-tokenizer (JSON fragments; NULL for none). */
static struct dsm_tokenizer *make(const char *extra, const char *merges, const char *added,
                                  const char *normalizer, const char *pre, const char *model_opts,
                                  struct dsm_err *err) {
    static char json[65536];
    size_t o = 0;
    o += (size_t)snprintf(json + o, sizeof json - o,
                          "{\"version\":\"1.0\",\"added_tokens\":[%s],\"normalizer\":%s,"
                          "\"pre_tokenizer\":%s,\"decoder\":{\"type\":\"ByteLevel\"},\"model\":"
                          "{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,"
                          "\"byte_fallback\":false%s,\"vocab\":{",
                          added ? added : "", normalizer ? normalizer : "null", pre ? pre : "null",
                          model_opts ? model_opts : "");
    for (unsigned b = 0; b < 256; b++)
        o += (size_t)snprintf(json + o, sizeof json - o, "\"\\u%04x\":%u,", bytelevel(b), b);
    if (!extra[0]) o--; /* drop the last comma */
    o += (size_t)snprintf(json + o, sizeof json - o, "%s},\"merges\":[%s]}}", extra, merges);
    struct dsm_tokenizer *t = NULL;
    int rc = tok_load_json(json, o, "test.json", &t, err);
    return rc ? NULL : t;
}

/* Encode text (n bytes) and compare with the expected ids. */
static int enc_is_n(const struct dsm_tokenizer *t, const char *text, size_t len, const int32_t *want,
                    size_t n) {
    int32_t got[1024];
    struct dsm_err err = {0};
    long r = tok_encode(t, text, len, got, 1024, &err);
    if (r < 0) {
        fprintf(stderr, "  encode(\"%s\") failed: %s\n", text, err.msg);
        return 0;
    }
    int ok = (size_t)r == n && (n == 0 || !memcmp(got, want, n * sizeof *want));
    if (!ok) {
        fprintf(stderr, "  encode(\"%s\") = [", text);
        for (long i = 0; i < r && i < 1024; i++) fprintf(stderr, "%s%d", i ? "," : "", got[i]);
        fprintf(stderr, "]\n");
    }
    return ok;
}
static int enc_is(const struct dsm_tokenizer *t, const char *text, const int32_t *want, size_t n) {
    return enc_is_n(t, text, strlen(text), want, n);
}
#define ENC(t, text, ...)                                                                  \
    do {                                                                                   \
        const int32_t want_[] = {__VA_ARGS__};                                             \
        CHECK_MSG(enc_is(t, text, want_, DSM_ARRAY_LEN(want_)), "%s", text);             \
    } while (0)
#define ENC_NONE(t, text) CHECK_MSG(enc_is(t, text, NULL, 0), "%s", text)

/* ab=256 bc=257 abc=258 a-=259 -b=260 --=261 (a=97 b=98 c=99 -=45 x=120 space=32) */
#define ABC "\"ab\":256,\"bc\":257,\"abc\":258,\"a-\":259,\"-b\":260,\"--\":261"

static void test_merges(void) {
    struct dsm_err err = {0};
    /* "b c" has the lowest rank, so abc = a + bc, never ab + c */
    struct dsm_tokenizer *s = make(ABC, "\"b c\",\"a b\",\"a bc\"", NULL, NULL, NULL, NULL, &err);
    struct dsm_tokenizer *p = make(ABC, "[\"b\",\"c\"],[\"a\",\"b\"],[\"a\",\"bc\"]", NULL, NULL, NULL, NULL, &err);
    CHECK_MSG(s && p, "%s", err.msg);
    if (!s || !p) return;
    struct dsm_tokenizer *both[2] = {s, p};
    for (int k = 0; k < 2; k++) {
        ENC(both[k], "abc", 258);
        ENC(both[k], "ab", 256);
        ENC(both[k], "aab", 97, 256);
        ENC(both[k], "abab", 256, 256);
        ENC(both[k], "cab", 99, 256);
        ENC(both[k], "abcabc", 258, 258);
        ENC(both[k], "ab c", 256, 32, 99); /* no pre-tokenizer: the space is just a byte */
        ENC_NONE(both[k], "");
    }
    /* ties go to the leftmost pair */
    struct dsm_tokenizer *t = make("\"bb\":256,\"bc\":257", "\"b c\",\"b b\"", NULL, NULL, NULL, NULL, &err);
    CHECK(t != NULL);
    if (t) {
        ENC(t, "bbc", 98, 257);
        ENC(t, "bbbb", 256, 256);
        ENC(t, "bbb", 256, 98);
    }
    /* long words (past the cache limit) go through the same heap */
    char longw[301];
    memset(longw, 'b', 300);
    longw[300] = 0;
    int32_t want[150];
    for (int i = 0; i < 150; i++) want[i] = 256;
    if (t) CHECK(enc_is(t, longw, want, 150));
    CHECK(tok_vocab_size(s) == 262);
    CHECK(tok_token_to_id(s, "abc") == 258);
    CHECK(tok_token_to_id(s, "\xC4\xA0") == 32); /* "Ġ" */
    CHECK(tok_token_to_id(s, "zzz") == -1);
    CHECK(!strcmp(tok_id_to_token(s, 257), "bc"));
    CHECK(tok_id_to_token(s, 262) == NULL && tok_id_to_token(s, -1) == NULL);
    CHECK(tok_bos_id(s) == -1 && tok_eos_id(s) == -1 && tok_pad_id(s) == -1);
    tok_destroy(s);
    tok_destroy(p);
    tok_destroy(t);
}

static void test_ignore_merges(void) {
    struct dsm_err err = {0};
    /* "abc" is in the vocabulary but no merge builds it */
    struct dsm_tokenizer *t = make(ABC, "\"a b\"", NULL, NULL, NULL, ",\"ignore_merges\":true", &err);
    struct dsm_tokenizer *u = make(ABC, "\"a b\"", NULL, NULL, NULL, ",\"ignore_merges\":false", &err);
    CHECK_MSG(t && u, "%s", err.msg);
    if (t) ENC(t, "abc", 258);
    if (u) ENC(u, "abc", 256, 99);
    tok_destroy(t);
    tok_destroy(u);
}

static void test_split_behaviors(void) {
    struct dsm_err err = {0};
    const char *merges = "\"a -\",\"- b\",\"- -\"";
    const char *fmt = "{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},\"behavior\":\"%s\",\"invert\":%s}";
    char pre[256];
    struct dsm_tokenizer *t = make(ABC, merges, NULL, NULL, NULL, NULL, &err);
    CHECK(t != NULL);
    if (t) ENC(t, "a-b", 259, 98); /* no split: a- wins (rank 0) */
    tok_destroy(t);
    struct { const char *behavior, *invert, *text; int32_t want[4]; size_t n; } cases[] = {
        {"Isolated", "false", "a-b", {97, 45, 98}, 3},
        {"Removed", "false", "a-b", {97, 98}, 2},
        {"MergedWithPrevious", "false", "a-b", {259, 98}, 2},
        {"MergedWithNext", "false", "a-b", {97, 260}, 2},
        {"Isolated", "false", "a--b", {97, 45, 45, 98}, 4},
        {"Contiguous", "false", "a--b", {97, 261, 98}, 3},
        {"Removed", "true", "a-b", {45}, 1},
        {"MergedWithPrevious", "true", "a-b", {97, 260}, 2}, /* inverted: a and b are matches */
        {"MergedWithNext", "true", "a-b", {259, 98}, 2},
        {"Contiguous", "true", "a--b", {97, 261, 98}, 3},
    };
    for (size_t i = 0; i < DSM_ARRAY_LEN(cases); i++) {
        snprintf(pre, sizeof pre, fmt, cases[i].behavior, cases[i].invert);
        t = make(ABC, merges, NULL, NULL, pre, NULL, &err);
        CHECK_MSG(t != NULL, "%s", err.msg);
        if (!t) continue;
        CHECK_MSG(enc_is(t, cases[i].text, cases[i].want, cases[i].n), "%s invert=%s",
                  cases[i].behavior, cases[i].invert);
        tok_destroy(t);
    }
    /* a Regex split inside a Sequence, then ByteLevel with its regex and prefix space:
     * "Ġab" = 263 */
    t = make(ABC ",\"\\u0120ab\":263", "\"a b\",\"\\u0120 ab\"", NULL, NULL,
             "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
             "\"x+\"},\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\","
             "\"add_prefix_space\":true,\"use_regex\":true}]}", NULL, &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (t) {
        ENC(t, "ab ab", 263, 263);          /* " ab" " ab": the prefix space is added */
        ENC(t, "abxxab", 263, 32, 120, 120, 263); /* x+ split first; every piece gets a space */
        ENC(t, "ab  ab", 263, 32, 263);      /* GPT-2 regex: \s+(?!\S) keeps one space for "ab" */
    }
    tok_destroy(t);
}

static void test_added_tokens(void) {
    struct dsm_err err = {0};
    const char *added =
        "{\"id\":300,\"content\":\"<s>\",\"special\":true,\"normalized\":false},"
        "{\"id\":301,\"content\":\"<ss>\",\"special\":true},"
        "{\"id\":302,\"content\":\"<l>\",\"lstrip\":true,\"rstrip\":true},"
        "{\"id\":303,\"content\":\"<w>\",\"single_word\":true},"
        "{\"id\":304,\"content\":\"e\\u0301!\",\"normalized\":true},"
        "{\"id\":305,\"content\":\"o\\u0301!\",\"normalized\":false}";
    struct dsm_tokenizer *t = make(ABC, "\"a b\"", added, "{\"type\":\"NFC\"}", NULL, NULL, &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (!t) return;
    ENC(t, "ab<s>ab", 256, 300, 256);
    ENC(t, "<ss><s>", 301, 300);       /* the longest match at a start */
    ENC(t, "<s", 60, 115);             /* an unfinished token is text */
    ENC(t, "a  <l>  b", 97, 302, 98);  /* lstrip and rstrip absorb the spaces */
    ENC(t, "a<w> b", 97, 60, 119, 62, 32, 98); /* single_word: a word character before */
    ENC(t, "a <w> b", 97, 32, 303, 32, 98);
    /* normalized tokens are matched after NFC (their content is normalized too); others before */
    ENC(t, "\xC3\xA9!", 304);          /* é! precomposed */
    ENC(t, "e\xCC\x81!", 304);         /* e + combining acute: NFC makes it é! */
    ENC(t, "o\xCC\x81!", 305);         /* raw match before normalization */
    ENC(t, "\xC3\xB3!", 0xC3, 0xB3, 33); /* ó! precomposed does not match o+U+0301 */
    CHECK(tok_is_special(t, 300) && !tok_is_special(t, 302) && !tok_is_special(t, 97));
    CHECK(tok_token_to_id(t, "<l>") == 302);
    /* decode: added tokens are their content; skip-special drops only special ones */
    int32_t ids[] = {256, 300, 302, 301, 99};
    char out[64];
    long n = tok_decode(t, ids, 5, 0, out, sizeof out, &err);
    CHECK(n == 13 && !strcmp(out, "ab<s><l><ss>c"));
    n = tok_decode(t, ids, 5, TOK_DECODE_SKIP_SPECIAL, out, sizeof out, &err);
    CHECK(n == 6 && !strcmp(out, "ab<l>c"));
    tok_destroy(t);
}

static void test_nfc(void) {
    struct dsm_err err = {0};
    struct dsm_tokenizer *t = make("", "", NULL, "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"}]}", NULL, NULL, &err);
    struct dsm_tokenizer *k = make("", "", NULL, "{\"type\":\"NFKC\"}", NULL, NULL, &err);
    CHECK_MSG(t && k, "%s", err.msg);
    if (!t || !k) return;
    ENC(t, "e\xCC\x81", 0xC3, 0xA9);           /* é */
    ENC(t, "\xE2\x84\xAB", 0xC3, 0x85);        /* Angstrom sign -> Å */
    ENC(t, "\xEF\xAC\x81", 0xEF, 0xAC, 0x81);  /* ﬁ stays under NFC */
    ENC(k, "\xEF\xAC\x81", 'f', 'i');          /* ... and becomes fi under NFKC */
    tok_destroy(t);
    tok_destroy(k);
}

/* Every malformed or unsupported file is an error naming the field, never a crash. */
static void test_bad_files(void) {
    struct dsm_err err = {0};
    struct dsm_tokenizer *t = NULL;
    struct { const char *json; int code; const char *needle; } cases[] = {
        {"{", DSM_EINVAL, "malformed JSON"},
        {"[]", DSM_EINVAL, "JSON object"},
        {"{}", DSM_EINVAL, "\"model\""},
        {"{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", DSM_EUNSUPPORTED, "model.type"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a b\"]},\"decoder\":{\"type\":\"ByteLevel\"}}", DSM_EINVAL, "model.merges[0]"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a a a\"]}}", DSM_EINVAL, "model.merges[0]"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[[\"a\"]]}}", DSM_EINVAL, "model.merges[0]"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1},\"merges\":[]}}", DSM_EINVAL, "model.vocab"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":[],\"merges\":[]}}", DSM_EINVAL, "model.vocab"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":{}}}", DSM_EINVAL, "model.merges"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[],\"byte_fallback\":true}}", DSM_EUNSUPPORTED, "byte_fallback"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[],\"dropout\":0.1}}", DSM_EUNSUPPORTED, "dropout"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[],\"unk_token\":\"<unk>\"}}", DSM_EUNSUPPORTED, "unk_token"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[],\"continuing_subword_prefix\":\"##\"}}", DSM_EUNSUPPORTED, "continuing_subword_prefix"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]},\"normalizer\":{\"type\":\"Lowercase\"}}", DSM_EUNSUPPORTED, "normalizer"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Whitespace\"}}", DSM_EUNSUPPORTED, "pre_tokenizer"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},\"behavior\":\"Isolated\"}]}}", DSM_EINVAL, "pre_tokenizer.pretokenizers[0].pattern.Regex"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},\"behavior\":\"Sideways\"}}", DSM_EUNSUPPORTED, "behavior"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{},\"behavior\":\"Isolated\"}}", DSM_EINVAL, "pattern"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]},\"decoder\":{\"type\":\"WordPiece\"}}", DSM_EUNSUPPORTED, "decoder"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}", DSM_EUNSUPPORTED, "decoder"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]},\"added_tokens\":[{\"id\":1}]}", DSM_EINVAL, "added_tokens[0]"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]},\"added_tokens\":[{\"id\":1,\"content\":\"x\",\"special\":1}]}", DSM_EINVAL, "added_tokens[0]"},
    };
    for (size_t i = 0; i < DSM_ARRAY_LEN(cases); i++) {
        dsm_err_clear(&err);
        int rc = tok_load_json(cases[i].json, strlen(cases[i].json), "bad.json", &t, &err);
        CHECK_MSG(rc == cases[i].code && t == NULL && strstr(err.msg, cases[i].needle) &&
                      strstr(err.msg, "bad.json"),
                  "case %zu: rc %d, message '%s' (wanted '%s')", i, rc, err.msg, cases[i].needle);
        tok_destroy(t);
        t = NULL;
    }
    CHECK(tok_load("/nonexistent/tokenizer.json", &t, &err) == DSM_ENOTFOUND && t == NULL);
    CHECK(tok_load_dir("/nonexistent", &t, &err) == DSM_ENOTFOUND && t == NULL);
    tok_destroy(NULL);
}

static void test_bad_utf8(void) {
    struct dsm_err err = {0};
    struct dsm_tokenizer *t = make("", "", NULL, NULL, NULL, NULL, &err);
    if (!t) return;
    struct { const char *s; size_t n; const char *needle; } cases[] = {
        {"ab\xff" "cd", 5, "byte 2"},
        {"\xe4\xbd", 2, "byte 0"},         /* truncated */
        {"x\xc0\x80", 3, "byte 1"},        /* overlong NUL */
        {"\xed\xa0\x80", 3, "byte 0"},     /* a surrogate */
        {"ok\xf4\x90\x80\x80", 6, "byte 2"}, /* above U+10FFFF */
        {"\x80", 1, "byte 0"},             /* a lone continuation byte */
    };
    int32_t ids[16];
    for (size_t i = 0; i < DSM_ARRAY_LEN(cases); i++) {
        long r = tok_encode(t, cases[i].s, cases[i].n, ids, 16, &err);
        CHECK_MSG(r == DSM_EINVAL && strstr(err.msg, cases[i].needle) && strstr(err.msg, "UTF-8"),
                  "case %zu: %ld '%s'", i, r, err.msg);
    }
    /* NUL bytes are ordinary characters */
    CHECK(enc_is_n(t, "a\0b", 3, (const int32_t[]){97, 0, 98}, 3));
    /* caller buffer: the count runs past cap, only cap ids are written */
    int32_t small[2] = {-7, -7};
    CHECK(tok_encode(t, "hello", 5, small, 1, &err) == 5 && small[0] == 'h' && small[1] == -7);
    CHECK(tok_encode(t, "hello", 5, NULL, 0, &err) == 5);
    int32_t *all = NULL;
    size_t n = 0;
    CHECK_OK(tok_encode_alloc(t, "hello", 5, &all, &n, &err), &err);
    CHECK(n == 5 && all && all[4] == 'o');
    free(all);
    tok_destroy(t);
}

/* The stream decoder against whole decoding over random byte-token sequences. */
static void test_stream(void) {
    struct dsm_err err = {0};
    struct dsm_tokenizer *t = make("\"\\u00e2\\u0124\\u00ac\":256", "", NULL, NULL, NULL, NULL, &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (!t) return;
    struct tok_stream *s = NULL;
    CHECK_OK(tok_stream_create(t, 0, &s, &err), &err);
    if (!s) return;
    /* € = E2 82 AC, split across tokens: nothing comes out until it is complete */
    const char *piece;
    size_t len;
    int32_t euro[] = {0xE2, 0x82, 0xAC};
    CHECK_OK(tok_stream_push(s, euro[0], &piece, &len, &err), &err);
    CHECK(len == 0);
    CHECK_OK(tok_stream_push(s, euro[1], &piece, &len, &err), &err);
    CHECK(len == 0);
    CHECK_OK(tok_stream_push(s, euro[2], &piece, &len, &err), &err);
    CHECK(len == 3 && !memcmp(piece, "\xE2\x82\xAC", 3));
    /* id 256 decodes to E2 84 AC... no: its characters unmap to bytes E2 04 AC (Ą = byte 4) */
    CHECK(tok_stream_push(s, 99999, &piece, &len, &err) == DSM_EINVAL);
    tok_stream_finish(s, &piece, &len);
    CHECK(len == 0);
    uint64_t rng = 12345;
    int bad_pieces = 0, mismatches = 0;
    for (int round = 0; round < 2000; round++) {
        int32_t ids[12];
        int n = 1 + round % 12;
        for (int i = 0; i < n; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            unsigned r = (unsigned)(rng >> 33);
            /* mostly bytes that form or break multi-byte sequences */
            static const int32_t pool[] = {0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80, 0xC3, 0xA9, 'a', 0xFF, 0xED, 0xA0, 0xC0, 0xF4, 0x90, 256};
            ids[i] = pool[r % DSM_ARRAY_LEN(pool)];
        }
        char whole[256], streamed[256];
        long wn = tok_decode(t, ids, (size_t)n, 0, whole, sizeof whole, &err);
        size_t sn = 0;
        for (int i = 0; i < n; i++) {
            tok_stream_push(s, ids[i], &piece, &len, &err);
            if (tok_utf8_check(piece, len, NULL)) bad_pieces++;
            memcpy(streamed + sn, piece, len);
            sn += len;
        }
        tok_stream_finish(s, &piece, &len);
        if (tok_utf8_check(piece, len, NULL)) bad_pieces++;
        memcpy(streamed + sn, piece, len);
        sn += len;
        if (wn < 0 || (size_t)wn != sn || memcmp(whole, streamed, sn)) mismatches++;
        if (tok_utf8_check(whole, (size_t)wn, NULL)) bad_pieces++;
    }
    CHECK(bad_pieces == 0);
    CHECK(mismatches == 0);
    /* lossy decoding as from_utf8_lossy: one U+FFFD per maximal invalid subpart */
    int32_t bad1[] = {0xE2, 0x82, 'a'}, bad2[] = {0xFF, 0xFE}, bad3[] = {0xF0, 0x9F, 0x98};
    char out[64];
    CHECK(tok_decode(t, bad1, 3, 0, out, sizeof out, &err) == 4 && !strcmp(out, "\xEF\xBF\xBD" "a"));
    CHECK(tok_decode(t, bad2, 2, 0, out, sizeof out, &err) == 6);
    CHECK(tok_decode(t, bad3, 3, 0, out, sizeof out, &err) == 3 && !strcmp(out, "\xEF\xBF\xBD"));
    /* snprintf-like: cut output is NUL-terminated and the full length returned */
    int32_t hi[] = {'h', 'i', '!'};
    CHECK(tok_decode(t, hi, 3, 0, out, 2, &err) == 3 && !strcmp(out, "h"));
    int32_t oob[] = {'h', 4000};
    CHECK(tok_decode(t, oob, 2, 0, out, sizeof out, &err) == DSM_EINVAL && strstr(err.msg, "index 1"));
    tok_stream_destroy(s);
    tok_stream_destroy(NULL);
    tok_destroy(t);
}

struct thread_arg { const struct dsm_tokenizer *t; int ok; };

static void *encode_many(void *p) {
    struct thread_arg *a = p;
    a->ok = 1;
    for (int i = 0; i < 3000 && a->ok; i++) {
        char text[64];
        int n = snprintf(text, sizeof text, "ab abc %d bcab-ab%d", i, i % 7);
        int32_t ids[64];
        long r = tok_encode(a->t, text, (size_t)n, ids, 64, NULL);
        a->ok = r > 0 && ids[0] == 256;
    }
    return NULL;
}

static void test_threads(void) {
    struct dsm_err err = {0};
    struct dsm_tokenizer *t = make(ABC, "\"b c\",\"a b\",\"a bc\"", NULL, NULL,
                                   "{\"type\":\"ByteLevel\",\"add_prefix_space\":false}", NULL, &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (!t) return;
    pthread_t th[3];
    struct thread_arg args[3] = {{t, 0}, {t, 0}, {t, 0}};
    for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, encode_many, &args[i]);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    CHECK(args[0].ok && args[1].ok && args[2].ok);
    tok_destroy(t);
}

int main(void) {
    test_merges();
    test_ignore_merges();
    test_split_behaviors();
    test_added_tokens();
    test_nfc();
    test_bad_files();
    test_bad_utf8();
    test_stream();
    test_threads();
    return test_main_end();
}
