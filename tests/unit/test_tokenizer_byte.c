/* test_tokenizer_byte.c - the byte tokenizer (tok_byte_write) and the chat formats.
 *
 * The files tok_byte_write produces must equal the committed golden copies in
 * tests/fixtures/tok/byte/ (regenerate them by copying a fresh output there when the format is
 * changed on purpose); they load through tok_load_dir; every byte and every special round-trips;
 * each chat format renders exactly the strings documented in docs/tokenizer.md. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/chat.h"
#include "common/tokenizer.h"
#include "common/util.h"
#include "test.h"

static void check_same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    struct dsm_err err = {0};
    CHECK_OK(dsm_file_read(a, &x, &nx, &err), &err);
    CHECK_OK(dsm_file_read(b, &y, &ny, &err), &err);
    CHECK_MSG(x && y && nx == ny && !memcmp(x, y, nx), "%s differs from the golden %s", a, b);
    free(x);
    free(y);
}

static void test_byte(const char *dir) {
    struct dsm_err err = {0};
    CHECK_OK(tok_byte_write(dir, &err), &err);
    char p[512], g[512];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    snprintf(g, sizeof g, "%s/tests/fixtures/tok/byte/tokenizer.json", DSM_SOURCE_DIR);
    check_same_file(p, g);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    snprintf(g, sizeof g, "%s/tests/fixtures/tok/byte/tokenizer_config.json", DSM_SOURCE_DIR);
    check_same_file(p, g);

    struct dsm_tokenizer *t = NULL;
    CHECK_OK(tok_load_dir(dir, &t, &err), &err);
    if (!t) return;
    CHECK(tok_vocab_size(t) == TOK_BYTE_VOCAB_SIZE);
    CHECK(tok_bos_id(t) == TOK_BYTE_BOS && tok_eos_id(t) == TOK_BYTE_EOS && tok_pad_id(t) == TOK_BYTE_PAD);
    CHECK(tok_token_to_id(t, "<|user|>") == TOK_BYTE_USER);
    CHECK(tok_token_to_id(t, "<|assistant|>") == TOK_BYTE_ASSISTANT);
    CHECK(tok_token_to_id(t, "<|system|>") == TOK_BYTE_SYSTEM);
    CHECK(tok_token_to_id(t, "<think>") == TOK_BYTE_THINK && tok_token_to_id(t, "</think>") == TOK_BYTE_THINK_END);
    CHECK(tok_is_special(t, TOK_BYTE_BOS) && !tok_is_special(t, TOK_BYTE_THINK) && !tok_is_special(t, 'a'));

    /* every byte value is its own id; a text of all 256 bytes round-trips when valid UTF-8 */
    const char *text = "x = 37 + 48\n\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\t\x01";
    int32_t ids[64];
    long n = tok_encode(t, text, strlen(text), ids, 64, &err);
    CHECK(n == (long)strlen(text));
    for (long i = 0; i < n; i++) CHECK(ids[i] == (unsigned char)text[i]);
    char out[128];
    CHECK(tok_decode(t, ids, (size_t)n, 0, out, sizeof out, &err) == n && !strcmp(out, text));
    int32_t all[256];
    for (int i = 0; i < 256; i++) all[i] = i;
    char bytes[1024];
    long k = tok_decode(t, all, 128, 0, bytes, sizeof bytes, &err);
    CHECK(k == 128);
    for (int i = 0; i < 128 && k == 128; i++) CHECK((unsigned char)bytes[i] == i);
    for (int i = 0; i < TOK_BYTE_VOCAB_SIZE; i++) CHECK(tok_id_to_token(t, i) != NULL);

    /* specials in text are matched; decode with skip-special drops the special ones only */
    const char *chat = "<|begin_of_text|><|user|>1+1?<|assistant|><think>2</think>2<|end_of_text|>";
    n = tok_encode(t, chat, strlen(chat), ids, 64, &err);
    const int32_t want[] = {256, 259, '1', '+', '1', '?', 260, 262, '2', 263, '2', 257};
    CHECK(n == (long)DSM_ARRAY_LEN(want) && !memcmp(ids, want, sizeof want));
    CHECK(tok_decode(t, ids, (size_t)n, TOK_DECODE_SKIP_SPECIAL, out, sizeof out, &err) > 0 &&
          !strcmp(out, "1+1?<think>2</think>2"));

    /* the chat format is found from tokenizer_config.json */
    const struct chat_format *f = NULL;
    CHECK_OK(chat_format_select(NULL, t, dir, &f, &err), &err);
    CHECK(f && !strcmp(f->name, "byte"));
    tok_destroy(t);
}

static void test_chat(void) {
    struct dsm_err err = {0};
    const struct chat_msg msgs[] = {
        {"system", "Be brief."}, {"user", "1+1?"}, {"assistant", "2"}, {"user", "2+2?"}};
    struct { const char *name, *want; } cases[] = {
        {"deepseek-math", "<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"
                          "Be brief.\n\nUser: 1+1?\n\nAssistant: 2<\xEF\xBD\x9C" "end\xE2\x96\x81of"
                          "\xE2\x96\x81sentence\xEF\xBD\x9C>User: 2+2?\n\nAssistant:"},
        {"qwen", "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n1+1?<|im_end|>\n"
                 "<|im_start|>assistant\n2<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
                 "<|im_start|>assistant\n"},
        {"deepseek-v3", "<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>Be brief."
                        "<\xEF\xBD\x9CUser\xEF\xBD\x9C>1+1?<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>2"
                        "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"
                        "<\xEF\xBD\x9CUser\xEF\xBD\x9C>2+2?<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>"},
        {"deepseek-r1", "<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>Be brief."
                        "<\xEF\xBD\x9CUser\xEF\xBD\x9C>1+1?<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>2"
                        "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"
                        "<\xEF\xBD\x9CUser\xEF\xBD\x9C>2+2?<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C><think>\n"},
        {"byte", "<|begin_of_text|><|system|>Be brief.<|user|>1+1?<|assistant|>2<|end_of_text|>"
                 "<|user|>2+2?<|assistant|>"},
    };
    size_t nf = 0;
    chat_format_list(&nf);
    CHECK(nf == DSM_ARRAY_LEN(cases));
    for (size_t i = 0; i < DSM_ARRAY_LEN(cases); i++) {
        const struct chat_format *f = chat_format_find(cases[i].name);
        CHECK(f != NULL);
        if (!f) continue;
        char *text = NULL;
        size_t len = 0;
        CHECK_OK(chat_render(f, msgs, 4, 1, &text, &len, &err), &err);
        CHECK_MSG(text && len == strlen(cases[i].want) && !strcmp(text, cases[i].want),
                  "%s rendered '%s'", cases[i].name, text ? text : "(null)");
        free(text);
    }
    const struct chat_format *f = NULL;
    CHECK(chat_format_select("nope", NULL, NULL, &f, &err) == DSM_EINVAL && strstr(err.msg, "nope"));
    CHECK(chat_format_select(NULL, NULL, "/models/unknown-model", &f, &err) == DSM_EINVAL &&
          strstr(err.msg, "--chat-format"));
    CHECK(chat_format_select(NULL, NULL, "/m/DeepSeek-R1-Distill-Qwen-1.5B/", &f, &err) == 0 &&
          !strcmp(f->name, "deepseek-r1"));
    CHECK(chat_format_select(NULL, NULL, "/m/deepseek-math-7b-instruct", &f, &err) == 0 &&
          !strcmp(f->name, "deepseek-math"));
    CHECK(chat_format_select(NULL, NULL, "Qwen2.5-Math-1.5B-Instruct", &f, &err) == 0 &&
          !strcmp(f->name, "qwen"));
    CHECK(chat_format_select("qwen", NULL, "/m/deepseek-math-7b", &f, &err) == 0 && !strcmp(f->name, "qwen"));
    char *text = NULL;
    size_t len = 0;
    const struct chat_msg bad[] = {{"tool", "x"}};
    CHECK(chat_render(chat_format_find("qwen"), bad, 1, 0, &text, &len, &err) == DSM_EINVAL &&
          strstr(err.msg, "tool") && text == NULL);
}

int main(void) {
    char dir[] = "/tmp/dsm-test-tok-XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "mkdtemp failed\n");
        return 1;
    }
    test_byte(dir);
    test_chat();
    char p[512];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    unlink(p);
    rmdir(dir);
    return test_main_end();
}
