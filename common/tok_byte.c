/* tok_byte.c - the byte tokenizer of the tiny models, written as a Hugging Face tokenizer.json
 * (+ tokenizer_config.json) so that it loads through the same code as a real tokenizer.
 *
 * Layout: ids 0..255 are the bytes (spelled as their ByteLevel characters), no merges, then the
 * added tokens TOK_BYTE_BOS..TOK_BYTE_THINK_END (tokenizer.h). Pre-tokenizer: ByteLevel without
 * prefix space and without regex; decoder: ByteLevel. Any HF tool reads these files too.
 */
#include "common/tokenizer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/tok_impl.h"
#include "common/util.h"

/* The specials in id order from TOK_BYTE_BOS; `special` is the HF flag (think tags are not
 * special, as in Qwen3, so decode with skip-special keeps them). */
static const struct {
    const char *content;
    int special;
} byte_specials[TOK_BYTE_VOCAB_SIZE - 256] = {
    {"<|begin_of_text|>", 1}, {"<|end_of_text|>", 1}, {"<|pad|>", 1},  {"<|user|>", 1},
    {"<|assistant|>", 1},     {"<|system|>", 1},      {"<think>", 0}, {"</think>", 0},
};

/* The Jinja template equivalent to chat format "byte" (chat.c), for HF tools. */
static const char byte_chat_template[] =
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<|system|>' + message['content'] }}"
    "{% elif message['role'] == 'user' %}{{ '<|user|>' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>' + message['content'] + eos_token }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";

static json_t *bytelevel_obj(void) {
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0,
                     "trim_offsets", 0, "use_regex", 0);
}

static json_t *byte_tokenizer_json(void) {
    json_t *vocab = json_object();
    json_t *added = json_array();
    if (!vocab || !added) goto fail;
    for (int b = 0; b < 256; b++) {
        char key[8];
        int n = tok_utf8_put(tok_bytelevel_cp((uint8_t)b), key);
        key[n] = 0;
        if (json_object_set_new(vocab, key, json_integer(b))) goto fail;
    }
    for (int i = 0; i < TOK_BYTE_VOCAB_SIZE - 256; i++) {
        json_t *t = json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", 256 + i, "content",
                              byte_specials[i].content, "single_word", 0, "lstrip", 0, "rstrip", 0,
                              "normalized", 0, "special", byte_specials[i].special);
        if (!t || json_array_append_new(added, t)) goto fail;
    }
    json_t *model = json_pack("{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b, s:o, s:[]}", "type", "BPE",
                              "dropout", "unk_token", "continuing_subword_prefix",
                              "end_of_word_suffix", "fuse_unk", 0, "byte_fallback", 0,
                              "ignore_merges", 0, "vocab", vocab, "merges");
    vocab = NULL; /* stolen by json_pack's "o", even on failure */
    if (!model) goto fail;
    json_t *root = json_pack("{s:s, s:n, s:n, s:o, s:n, s:o, s:o, s:o, s:o}", "version", "1.0",
                             "truncation", "padding", "added_tokens", added, "normalizer",
                             "pre_tokenizer", bytelevel_obj(), "post_processor", bytelevel_obj(),
                             "decoder", bytelevel_obj(), "model", model);
    return root;
fail:
    json_decref(vocab);
    json_decref(added);
    return NULL;
}

static json_t *byte_config_json(void) {
    return json_pack("{s:b, s:b, s:s, s:s, s:s, s:s, s:s, s:i, s:s}", "add_bos_token", 0,
                     "add_eos_token", 0, "bos_token", byte_specials[0].content, "eos_token",
                     byte_specials[1].content, "pad_token", byte_specials[2].content,
                     "chat_template", byte_chat_template, "dsm_chat_format", "byte",
                     "model_max_length", 1 << 20, "tokenizer_class", "PreTrainedTokenizerFast");
}

static int write_json(const char *dir, const char *name, json_t *j, struct dsm_err *err) {
    char path[4096];
    int rc = dsm_path_join(path, sizeof path, dir, name, err);
    if (rc) return rc;
    if (!j) return dsm_errf(err, DSM_ENOMEM, "building %s: out of memory", path);
    char *text = json_dumps(j, JSON_INDENT(2));
    if (!text) return dsm_errf(err, DSM_ENOMEM, "serialising %s: out of memory", path);
    size_t n = strlen(text);
    rc = dsm_file_write_atomic(path, text, n, err);
    free(text);
    return rc;
}

int tok_byte_write(const char *dir, struct dsm_err *err) {
    json_t *tj = byte_tokenizer_json();
    int rc = write_json(dir, "tokenizer.json", tj, err);
    json_decref(tj);
    if (rc) return rc;
    json_t *cj = byte_config_json();
    rc = write_json(dir, "tokenizer_config.json", cj, err);
    json_decref(cj);
    return rc;
}
