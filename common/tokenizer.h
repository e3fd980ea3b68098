/* tokenizer.h - Hugging Face byte-level BPE tokenizers loaded from tokenizer.json, exact to the ids
 * the Rust `tokenizers` library produces, and the byte tokenizer of the tiny models.
 *
 * Supported tokenizer.json subset (anything else is a DSM_EUNSUPPORTED error naming the field):
 *   model        BPE: vocab, merges ("a b" strings or ["a","b"] pairs), ignore_merges,
 *                byte_fallback=false, dropout=null, empty/null subword prefix and suffix.
 *   added_tokens content, id, special, normalized, lstrip, rstrip, single_word.
 *   normalizer   null, NFC, NFD, NFKC, NFKD (utf8proc), Sequence of those.
 *   pre_tokenizer null, Split (Regex or String pattern; Isolated, Removed, MergedWithPrevious,
 *                MergedWithNext, Contiguous; invert), ByteLevel (add_prefix_space, use_regex),
 *                Sequence of those. Regexes run on PCRE2 in UTF+UCP mode with Oniguruma's \s.
 *   decoder      ByteLevel.
 *   post_processor, truncation, padding: ignored (special tokens such as BOS are the chat
 *                format's business, see chat.h).
 *
 * Encoding follows the Rust library step by step: non-normalized added tokens are split out of the
 * raw text (leftmost-longest), the rest is normalized, normalized added tokens are split out, the
 * pre-tokenizers cut the rest into words, each word is byte-level mapped and merged by BPE merge
 * rank (lowest rank first, leftmost on ties). Encoding is add_special_tokens=false: nothing is
 * added that is not in the text.
 *
 * Thread safety: a loaded tokenizer is immutable except for its word cache, which is guarded by a
 * mutex; every function below may be called from several threads on one tokenizer. A stream
 * decoder belongs to one thread.
 */
#ifndef DSM_TOKENIZER_H
#define DSM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* ---- the byte tokenizer of the tiny models ----------------------------------------------------
 * ids 0..255 are the bytes 0..255 (written in tokenizer.json as their ByteLevel characters, so the
 * file loads through the same code as a real one), then the specials below. No merges. */
#define TOK_BYTE_VOCAB_SIZE 264
#define TOK_BYTE_BOS 256       /* "<|begin_of_text|>" */
#define TOK_BYTE_EOS 257       /* "<|end_of_text|>" */
#define TOK_BYTE_PAD 258       /* "<|pad|>" */
#define TOK_BYTE_USER 259      /* "<|user|>" */
#define TOK_BYTE_ASSISTANT 260 /* "<|assistant|>" */
#define TOK_BYTE_SYSTEM 261    /* "<|system|>" */
#define TOK_BYTE_THINK 262     /* "<think>" (not special: kept by decode with skip_special) */
#define TOK_BYTE_THINK_END 263 /* "</think>" (not special) */

/* Write the byte tokenizer's tokenizer.json and tokenizer_config.json (bos/eos/pad tokens and a
 * chat template naming the "byte" chat format) into dir, which must exist. Files are written
 * atomically and replace existing ones. Errors: DSM_EIO naming the file. */
int tok_byte_write(const char *dir, struct dsm_err *err);

/* ---- loading -------------------------------------------------------------------------------- */

struct dsm_tokenizer;

/* Load a tokenizer.json file. Errors name the file and the JSON field: DSM_ENOTFOUND (missing
 * file), DSM_EINVAL (malformed JSON, a merge naming an unknown token, a regex PCRE2 rejects, an
 * added token id clash), DSM_EUNSUPPORTED (a component type or option we do not implement).
 * Special ids (bos/eos/pad) are unknown (-1) after this call. Caller destroys *out. */
int tok_load(const char *tokenizer_json_path, struct dsm_tokenizer **out, struct dsm_err *err);

/* Load a model directory: dir/tokenizer.json, plus dir/tokenizer_config.json when present for the
 * bos/eos/pad tokens (a string or an {"content": ...} object each) and the chat template (used by
 * chat_format_detect). Errors as tok_load, and for a malformed tokenizer_config.json or a special
 * token it names that the vocabulary lacks. Caller destroys *out. */
int tok_load_dir(const char *dir, struct dsm_tokenizer **out, struct dsm_err *err);

/* Load from tokenizer.json text in memory (len bytes; `what` names it in errors, e.g. a path). */
int tok_load_json(const char *json, size_t len, const char *what, struct dsm_tokenizer **out,
                  struct dsm_err *err);

/* Free everything; NULL is a no-op. */
void tok_destroy(struct dsm_tokenizer *tok);

/* ---- encoding ------------------------------------------------------------------------------- */

/* Encode len bytes of UTF-8 text (need not be NUL-terminated; NUL bytes are ordinary characters).
 * Writes at most cap ids to ids (ids may be NULL when cap is 0) and returns the total number of
 * ids the text encodes to (like snprintf: a result > cap means only the first cap were written;
 * cap >= len suffices unless a normalizer or ByteLevel's prefix space lengthens the text). Returns a negative
 * DSM_E* status on error: DSM_EINVAL for invalid UTF-8 (the message gives the byte offset),
 * DSM_ENOMEM. Thread-safe. */
long tok_encode(const struct dsm_tokenizer *tok, const char *text, size_t len, int32_t *ids,
                size_t cap, struct dsm_err *err);

/* Encode into a new array (*ids, *n); the caller frees *ids. Errors as tok_encode. */
int tok_encode_alloc(const struct dsm_tokenizer *tok, const char *text, size_t len, int32_t **ids,
                     size_t *n, struct dsm_err *err);

/* ---- decoding ------------------------------------------------------------------------------- */

enum tok_decode_flags {
    TOK_DECODE_SKIP_SPECIAL = 1, /* drop added tokens whose "special" flag is true */
};

/* Decode n ids to UTF-8 text into out (cap bytes, always NUL-terminated when cap > 0) and return
 * the full length excluding the NUL (snprintf-like: a result >= cap means the text was cut).
 * Byte sequences that are not valid UTF-8 become U+FFFD, one per maximal invalid subpart (as
 * Rust's from_utf8_lossy). Returns DSM_EINVAL (naming the index) for an id outside the vocabulary.
 * Thread-safe. */
long tok_decode(const struct dsm_tokenizer *tok, const int32_t *ids, size_t n, int flags, char *out,
                size_t cap, struct dsm_err *err);

/* Decode into a new NUL-terminated string (*text, *len); the caller frees *text. */
int tok_decode_alloc(const struct dsm_tokenizer *tok, const int32_t *ids, size_t n, int flags,
                     char **text, size_t *len, struct dsm_err *err);

/* Incremental decoder for streaming generation: push ids one at a time and get the text that is
 * now complete. A multi-byte character split across tokens is held back until its last byte
 * arrives, so every piece returned is valid UTF-8; bytes that can never become valid are emitted
 * as U+FFFD. The concatenation of all pieces plus tok_stream_finish equals tok_decode. */
struct tok_stream;

/* Create a stream over tok (borrowed: must outlive the stream). flags as tok_decode. */
int tok_stream_create(const struct dsm_tokenizer *tok, int flags, struct tok_stream **out,
                      struct dsm_err *err);

/* Add one id. *text (borrowed, valid until the next call on s) and *len receive the newly
 * complete text, possibly empty. Errors: DSM_EINVAL for an id outside the vocabulary. */
int tok_stream_push(struct tok_stream *s, int32_t id, const char **text, size_t *len,
                    struct dsm_err *err);

/* End of stream: returns what is still held back (an incomplete sequence, as U+FFFD) and resets
 * the stream for reuse. */
void tok_stream_finish(struct tok_stream *s, const char **text, size_t *len);

void tok_stream_destroy(struct tok_stream *s);

/* ---- vocabulary ----------------------------------------------------------------------------- */

/* Number of ids: one more than the largest id of the model vocabulary and the added tokens. */
int32_t tok_vocab_size(const struct dsm_tokenizer *tok);

/* The id of a token given in its vocabulary spelling (ByteLevel characters, e.g. "Ġthe", or an
 * added token's content, e.g. "<|im_end|>"); -1 when absent. Added tokens win over the model
 * vocabulary, as in Hugging Face. */
int32_t tok_token_to_id(const struct dsm_tokenizer *tok, const char *token);

/* The vocabulary spelling of id (borrowed, NUL-terminated, lives as long as tok); NULL when id is
 * out of range or unassigned. */
const char *tok_id_to_token(const struct dsm_tokenizer *tok, int32_t id);

/* 1 when id is an added token flagged special, else 0. */
int tok_is_special(const struct dsm_tokenizer *tok, int32_t id);

/* Special ids from tokenizer_config.json (tok_load_dir) or the byte tokenizer; -1 when unknown. */
int32_t tok_bos_id(const struct dsm_tokenizer *tok);
int32_t tok_eos_id(const struct dsm_tokenizer *tok);
int32_t tok_pad_id(const struct dsm_tokenizer *tok);

/* The chat template text from tokenizer_config.json (borrowed), or NULL when none was loaded. */
const char *tok_chat_template(const struct dsm_tokenizer *tok);

/* Check that s[0..len) is valid UTF-8 (no overlongs, surrogates or values above U+10FFFF).
 * Returns DSM_OK or DSM_EINVAL with a message giving the offset of the first bad byte. */
int tok_utf8_check(const char *s, size_t len, struct dsm_err *err);

#endif
