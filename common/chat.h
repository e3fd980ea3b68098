/* chat.h - chat formats: how a conversation becomes the text a model was trained on.
 *
 * A small table of our own (no Jinja engine) reproducing the chat templates of the model families
 * we serve; docs/tokenizer.md lists the exact strings. The rendered text contains special-token
 * strings (BOS, turn markers) that tok_encode matches as added tokens, exactly as Hugging Face's
 * apply_chat_template(..., tokenize=True) does. Formats are chosen from the model directory's
 * tokenizer_config.json (chat_template content, or our "dsm_chat_format" key), else from the
 * directory name, and can always be overridden by name. All functions are pure and thread-safe.
 */
#ifndef DSM_CHAT_H
#define DSM_CHAT_H

#include <stddef.h>

#include <stdint.h>

#include "common/err.h"

struct dsm_tokenizer;

/* One chat format; every string is literal text ("" when the format has none). */
struct chat_format {
    const char *name;           /* "qwen", "deepseek-math", "deepseek-v3", "deepseek-r1", "byte" */
    const char *bos;            /* put first, once */
    const char *system_prefix, *system_suffix;
    const char *user_prefix, *user_suffix;
    const char *assistant_prefix, *assistant_suffix; /* around a finished assistant turn */
    const char *generation_prompt; /* appended to ask the model for the next assistant turn */
    const char *stop;           /* the token text that ends an assistant turn */
};

struct chat_msg {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content; /* UTF-8 text */
};

/* The format called name, or NULL. */
const struct chat_format *chat_format_find(const char *name);

/* All formats (borrowed static table) and their count in *n. */
const struct chat_format *chat_format_list(size_t *n);

/* Pick a format: `override` (a name) when not NULL; else from the tokenizer's chat template
 * (tok_chat_template; tok may be NULL); else from the model directory name `dir` (may be NULL).
 * Errors: DSM_EINVAL for an unknown override name (the message lists the names) or when nothing
 * identifies the format (the message says to pass --chat-format). */
int chat_format_select(const char *override, const struct dsm_tokenizer *tok, const char *dir,
                       const struct chat_format **out, struct dsm_err *err);

/* Render n messages with format f into a new NUL-terminated string (*text, *len; caller frees).
 * When add_generation_prompt, the text ends with the format's generation prompt. Errors:
 * DSM_EINVAL for an unknown role or a NULL content (naming the message index). */
int chat_render(const struct chat_format *f, const struct chat_msg *msgs, size_t n,
                int add_generation_prompt, char **text, size_t *len, struct dsm_err *err);

/* Token ids of a prompt, as new array *ids (*n of them; the caller frees it). With a format f, the
 * messages are rendered with the generation prompt (the format writes its own BOS) and encoded.
 * With f NULL the prompt is plain text: msgs must be one message whose content is encoded as it
 * is, after tok's BOS when add_bos and tok has one. Errors as chat_render and tok_encode;
 * DSM_EINVAL for several messages without a format. */
int chat_encode(const struct chat_format *f, const struct dsm_tokenizer *tok, const struct chat_msg *msgs,
                size_t n, int add_bos, int32_t **ids, size_t *n_ids, struct dsm_err *err);

#endif
