/* test_train_data.c - SFT records to ids and labels (byte tokenizer, exact expected arrays), the
 * batch order and padding, and the eval split.
 *
 * Expected labels follow the Hugging Face convention: aligned with input_ids, -100 where no loss
 * is taken (BOS, prompt, chat markers of non-assistant turns and the assistant prefix); the
 * response / assistant content and its end marker (EOS) are labelled with their own ids.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/chat.h"
#include "common/sft_data.h"
#include "common/tokenizer.h"
#include "common/util.h"
#include "test.h"

static int eq(const int32_t *a, const int32_t *b, int n) { return !memcmp(a, b, sizeof(int32_t) * (size_t)n); }

int main(void) {
    char dir[] = "/tmp/dsm-sft-data.XXXXXX";
    if (!mkdtemp(dir)) TEST_SKIP("cannot make a temporary directory");
    struct dsm_err err = {0};
    struct dsm_tokenizer *tok = NULL;
    CHECK_OK(tok_byte_write(dir, &err), &err);
    CHECK_OK(tok_load_dir(dir, &tok, &err), &err);
    if (!tok) return test_main_end();
    char path[512];
    snprintf(path, sizeof path, "%s/d.jsonl", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"prompt\": \"ab\", \"response\": \"c\"}\n"
               "\n"
               "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"assistant\", \"content\": \"y\"}]}\n"
               "{\"input_ids\": [5, 6, 7], \"labels\": [-100, 6, 7]}\n"
               "{\"input_ids\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]}\n"
               "{\"prompt\": \"abcdefghijklmn\", \"response\": \"z\"}\n" /* supervised part cut off by max_len */
               "[1, 2]\n");
    fclose(f);
    struct sft_data d;
    struct sft_data_opts o = {.max_len = 10, .vocab_size = TOK_BYTE_VOCAB_SIZE, .tok = tok, .chat = chat_format_find("byte")};
    CHECK_OK(sft_data_load(path, &o, &d, &err), &err);
    CHECK(d.n == 4 && d.lines == 7 && d.truncated == 2 && d.no_labels == 1 && d.bad_json == 1);
    if (d.n == 4) {
        const int32_t ids0[] = {TOK_BYTE_BOS, 'a', 'b', 'c', TOK_BYTE_EOS}, lab0[] = {-100, -100, -100, 'c', TOK_BYTE_EOS};
        CHECK(d.ex[0].n == 5 && eq(d.ex[0].ids, ids0, 5) && eq(d.ex[0].labels, lab0, 5));
        const int32_t ids1[] = {TOK_BYTE_BOS, TOK_BYTE_USER, 'x', TOK_BYTE_ASSISTANT, 'y', TOK_BYTE_EOS};
        const int32_t lab1[] = {-100, -100, -100, -100, 'y', TOK_BYTE_EOS};
        CHECK(d.ex[1].n == 6 && eq(d.ex[1].ids, ids1, 6) && eq(d.ex[1].labels, lab1, 6));
        const int32_t ids2[] = {5, 6, 7}, lab2[] = {-100, 6, 7};
        CHECK(d.ex[2].n == 3 && eq(d.ex[2].ids, ids2, 3) && eq(d.ex[2].labels, lab2, 3));
        CHECK(d.ex[3].n == 10 && d.ex[3].labels[9] == 10); /* truncated to max_len, labels default to ids */
        /* a padded batch of examples 2 and 0 */
        int idx[2] = {2, 0}, T;
        int32_t bi[20], bl[20];
        sft_data_batch(&d, idx, 2, bi, bl, &T);
        CHECK(T == 5 && bi[0] == 5 && bi[3] == 0 && bl[3] == -100 && bl[4] == -100 && eq(bi + 5, ids0, 5));
    }
    /* epoch orders are permutations, reproducible, and differ between epochs */
    int p1[50], p2[50], p3[50], seen[50] = {0};
    sft_data_order(50, 9, 0, p1);
    sft_data_order(50, 9, 0, p2);
    sft_data_order(50, 9, 1, p3);
    for (int i = 0; i < 50; i++) seen[p1[i]]++;
    int perm = 1;
    for (int i = 0; i < 50; i++) perm &= seen[i] == 1;
    CHECK(perm && !memcmp(p1, p2, sizeof p1) && memcmp(p1, p3, sizeof p1));
    /* eval split */
    struct sft_data ev;
    CHECK_OK(sft_data_split(&d, 1, 3, &ev, &err), &err);
    CHECK(d.n == 3 && ev.n == 1);
    struct sft_data ev2;
    CHECK(sft_data_split(&d, 3, 3, &ev2, &err) == DSM_EINVAL);
    sft_data_free(&ev);
    sft_data_free(&d);
    /* no usable record: an error with the counts */
    f = fopen(path, "w");
    fprintf(f, "{\"prompt\": \"a\", \"response\": \"\"}\nnot json\n");
    fclose(f);
    CHECK(sft_data_load(path, &o, &d, &err) == DSM_EINVAL && strstr(err.msg, "1 invalid JSON") && strstr(err.msg, "1 empty response"));
    snprintf(path, sizeof path, "%s/missing.jsonl", dir);
    CHECK(sft_data_load(path, &o, &d, &err) == DSM_ENOTFOUND);
    tok_destroy(tok);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return test_main_end();
}
