/* chat.c - the chat format table and the renderer; see chat.h and docs/tokenizer.md. */
#include "common/chat.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/tokenizer.h"
#include "common/util.h"

#define DS_BOS "<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>" /* <｜begin▁of▁sentence｜> */
#define DS_EOS "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"   /* <｜end▁of▁sentence｜> */
#define DS_USER "<\xEF\xBD\x9CUser\xEF\xBD\x9C>"                                      /* <｜User｜> */
#define DS_ASSISTANT "<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>"                         /* <｜Assistant｜> */

/* One row per format; the strings are the chat templates' output (docs/tokenizer.md). */
static const struct chat_format formats[] = {
    {.name = "deepseek-math", /* deepseek-math-7b-instruct / deepseek-llm chat */
     .bos = DS_BOS,
     .system_prefix = "", .system_suffix = "\n\n",
     .user_prefix = "User: ", .user_suffix = "\n\n",
     .assistant_prefix = "Assistant: ", .assistant_suffix = DS_EOS,
     .generation_prompt = "Assistant:",
     .stop = DS_EOS},
    {.name = "qwen", /* Qwen2.5 / Qwen2.5-Math / Qwen3 ChatML (no default system prompt) */
     .bos = "",
     .system_prefix = "<|im_start|>system\n", .system_suffix = "<|im_end|>\n",
     .user_prefix = "<|im_start|>user\n", .user_suffix = "<|im_end|>\n",
     .assistant_prefix = "<|im_start|>assistant\n", .assistant_suffix = "<|im_end|>\n",
     .generation_prompt = "<|im_start|>assistant\n",
     .stop = "<|im_end|>"},
    {.name = "deepseek-v3", /* DeepSeek-V3 */
     .bos = DS_BOS,
     .system_prefix = "", .system_suffix = "",
     .user_prefix = DS_USER, .user_suffix = "",
     .assistant_prefix = DS_ASSISTANT, .assistant_suffix = DS_EOS,
     .generation_prompt = DS_ASSISTANT,
     .stop = DS_EOS},
    {.name = "deepseek-r1", /* DeepSeek-R1 and R1-Distill-Qwen/Llama: the answer opens with <think> */
     .bos = DS_BOS,
     .system_prefix = "", .system_suffix = "",
     .user_prefix = DS_USER, .user_suffix = "",
     .assistant_prefix = DS_ASSISTANT, .assistant_suffix = DS_EOS,
     .generation_prompt = DS_ASSISTANT "<think>\n",
     .stop = DS_EOS},
    {.name = "byte", /* the tiny models' byte tokenizer (tok_byte_write) */
     .bos = "<|begin_of_text|>",
     .system_prefix = "<|system|>", .system_suffix = "",
     .user_prefix = "<|user|>", .user_suffix = "",
     .assistant_prefix = "<|assistant|>", .assistant_suffix = "<|end_of_text|>",
     .generation_prompt = "<|assistant|>",
     .stop = "<|end_of_text|>"},
};

const struct chat_format *chat_format_find(const char *name) {
    for (size_t i = 0; i < DSM_ARRAY_LEN(formats); i++)
        if (!strcmp(formats[i].name, name)) return &formats[i];
    return NULL;
}

const struct chat_format *chat_format_list(size_t *n) {
    *n = DSM_ARRAY_LEN(formats);
    return formats;
}

/* A format name from a chat template's content; NULL when it matches none. */
static const char *from_template(const char *t) {
    const char *marker = strstr(t, "dsm_chat_format: ");
    if (marker) {
        marker += strlen("dsm_chat_format: ");
        for (size_t i = 0; i < DSM_ARRAY_LEN(formats); i++) {
            size_t k = strlen(formats[i].name);
            if (!strncmp(marker, formats[i].name, k) && marker[k] == ' ') return formats[i].name;
        }
    }
    if (strstr(t, "<|im_start|>")) return "qwen";
    if (strstr(t, DS_ASSISTANT)) return strstr(t, "<think>") ? "deepseek-r1" : "deepseek-v3";
    if (strstr(t, "User: ") && strstr(t, "Assistant:")) return "deepseek-math";
    if (strstr(t, "<|user|>") && strstr(t, "<|assistant|>")) return "byte";
    return NULL;
}

/* A format name from a model directory's name (lower-cased last path component). */
static const char *from_dir(const char *dir) {
    char base[256];
    const char *end = dir + strlen(dir);
    while (end > dir && end[-1] == '/') end--;
    const char *start = end;
    while (start > dir && start[-1] != '/') start--;
    size_t n = (size_t)(end - start) < sizeof base - 1 ? (size_t)(end - start) : sizeof base - 1;
    for (size_t i = 0; i < n; i++) base[i] = (char)tolower((unsigned char)start[i]);
    base[n] = 0;
    if (strstr(base, "deepseek-math")) return "deepseek-math";
    if (strstr(base, "r1")) return "deepseek-r1";
    if (strstr(base, "deepseek-v3") || strstr(base, "deepseek-v2")) return "deepseek-v3";
    if (strstr(base, "qwen")) return "qwen";
    return NULL;
}

int chat_format_select(const char *override, const struct dsm_tokenizer *tok, const char *dir,
                       const struct chat_format **out, struct dsm_err *err) {
    *out = NULL;
    const char *name = override;
    if (!name && tok && tok_chat_template(tok)) name = from_template(tok_chat_template(tok));
    if (!name && dir) name = from_dir(dir);
    if (!name)
        return dsm_errf(err, DSM_EINVAL, "cannot tell the chat format of %s from its "
                        "tokenizer_config.json or name; pass --chat-format (qwen, deepseek-math, "
                        "deepseek-v3, deepseek-r1, byte)", dir ? dir : "this tokenizer");
    *out = chat_format_find(name);
    if (!*out)
        return dsm_errf(err, DSM_EINVAL, "unknown chat format '%s' (known: qwen, deepseek-math, "
                        "deepseek-v3, deepseek-r1, byte)", name);
    return DSM_OK;
}

int chat_render(const struct chat_format *f, const struct chat_msg *msgs, size_t n,
                int add_generation_prompt, char **text, size_t *len, struct dsm_err *err) {
    *text = NULL;
    *len = 0;
    size_t total = strlen(f->bos) + strlen(f->generation_prompt) + 1;
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role || !msgs[i].content)
            return dsm_errf(err, DSM_EINVAL, "chat message %zu has no role or no content", i);
        total += strlen(msgs[i].content) + 64 + strlen(f->assistant_prefix) + strlen(f->assistant_suffix) +
                 strlen(f->system_prefix) + strlen(f->system_suffix) + strlen(f->user_prefix) +
                 strlen(f->user_suffix);
    }
    char *buf = malloc(total);
    if (!buf) return dsm_errf(err, DSM_ENOMEM, "out of memory rendering a chat");
    size_t o = 0;
#define PUT(s) do { size_t k_ = strlen(s); memcpy(buf + o, (s), k_); o += k_; } while (0)
    PUT(f->bos);
    for (size_t i = 0; i < n; i++) {
        const char *r = msgs[i].role;
        const char *pre, *post;
        if (!strcmp(r, "system")) pre = f->system_prefix, post = f->system_suffix;
        else if (!strcmp(r, "user")) pre = f->user_prefix, post = f->user_suffix;
        else if (!strcmp(r, "assistant")) pre = f->assistant_prefix, post = f->assistant_suffix;
        else {
            free(buf);
            return dsm_errf(err, DSM_EINVAL, "chat message %zu: unknown role '%s' (system, user, "
                            "assistant)", i, r);
        }
        PUT(pre);
        PUT(msgs[i].content);
        PUT(post);
    }
    if (add_generation_prompt) PUT(f->generation_prompt);
#undef PUT
    buf[o] = 0;
    *text = buf;
    *len = o;
    return DSM_OK;
}

int chat_encode(const struct chat_format *f, const struct dsm_tokenizer *tok, const struct chat_msg *msgs,
                size_t n, int add_bos, int32_t **ids, size_t *n_ids, struct dsm_err *err) {
    *ids = NULL;
    *n_ids = 0;
    char *rendered = NULL;
    size_t len = 0;
    int rc;
    if (f) {
        if ((rc = chat_render(f, msgs, n, 1, &rendered, &len, err))) return rc;
    } else if (n != 1 || !msgs[0].content) {
        return dsm_errf(err, DSM_EINVAL, "a plain-text prompt is one message (got %zu); give a chat format for more", n);
    }
    const char *text = f ? rendered : msgs[0].content;
    int32_t *enc = NULL;
    size_t ne = 0;
    rc = tok_encode_alloc(tok, text, f ? len : strlen(text), &enc, &ne, err);
    free(rendered);
    if (rc) return rc;
    int32_t bos = !f && add_bos ? tok_bos_id(tok) : -1;
    if (bos < 0) {
        *ids = enc;
        *n_ids = ne;
        return DSM_OK;
    }
    int32_t *out = malloc(sizeof *out * (ne + 1));
    if (!out) {
        free(enc);
        return dsm_errf(err, DSM_ENOMEM, "out of memory");
    }
    out[0] = bos;
    if (ne) memcpy(out + 1, enc, sizeof *out * ne);
    free(enc);
    *ids = out;
    *n_ids = ne + 1;
    return DSM_OK;
}
