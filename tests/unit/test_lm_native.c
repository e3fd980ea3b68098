/* test_lm_native.c - the native lm backend (common/lm_native.c) on a tiny random model with the
 * byte tokenizer: chat rendering through the model's format, n completions per request, several
 * requests per call, seeds (sample i uses seed + i, reproducible across calls and batches),
 * log-probs only when asked, per-request failure for a prompt that does not fit, and the whole
 * role loop (prompt -> lm -> parse) on random text (every output is a format failure, never a
 * crash). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lm.h"
#include "common/model_init.h"
#include "common/tokenizer.h"
#include "test.h"
#include "verifier/verifier.h"

int main(void) {
    char dir[] = "/tmp/dsm-test-lm-native-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    struct dsm_err err = {0};
    struct dsm_model_config cfg;
    CHECK_OK(dsm_preset_config("tiny", DSM_ARCH_QWEN2, &cfg, &err), &err);
    cfg.n_layers = 2;
    CHECK_OK(dsm_model_init_random(&cfg, dir, DSM_DT_F32, 5, &err), &err);
    CHECK_OK(tok_byte_write(dir, &err), &err);
    struct lm_open_opts o = {.device = "cpu", .threads = 2, .max_context = 2560};
    char spec[64];
    snprintf(spec, sizeof spec, "native:%s", dir);
    struct dsm_lm *lm = NULL;
    CHECK_OK(lm_open(spec, &o, &lm, &err), &err);
    if (!lm) return test_main_end();
    CHECK(!strcmp(lm_kind(lm), "native") && !strcmp(lm_model_name(lm), dir));

    struct chat_msg m1[] = {{"user", "Show that 2 + 2 = 4."}};
    struct chat_msg m2[] = {{"system", "Be brief."}, {"user", "Grade: 1 + 1 = 2."}};
    struct lm_request q[3];
    for (int i = 0; i < 3; i++) lm_settings_default(&q[i].s);
    q[0] = (struct lm_request){m1, 1, q[0].s};
    q[0].s.n = 2, q[0].s.max_tokens = 12, q[0].s.seed = 7, q[0].s.logprobs = 1;
    q[1] = (struct lm_request){m2, 2, q[1].s};
    q[1].s.n = 3, q[1].s.max_tokens = 9, q[1].s.seed = 100, q[1].s.temperature = 0.8f;
    q[2] = (struct lm_request){m1, 1, q[2].s};
    q[2].s.max_tokens = 2560; /* does not fit in 2560 with the prompt */
    struct lm_result r[3];
    CHECK_OK(lm_sample(lm, q, 3, r, &err), &err);
    CHECK(r[0].status == DSM_OK && r[0].n == 2 && r[1].status == DSM_OK && r[1].n == 3);
    CHECK_MSG(r[2].status == DSM_EINVAL && strstr(r[2].error, "exceeds the context"), "%d %s", r[2].status, r[2].error);
    for (int i = 0; i < 2 && r[0].status == DSM_OK; i++) {
        struct lm_completion *c = &r[0].c[i];
        CHECK(c->n_tokens >= 1 && c->n_tokens <= 12 && c->ids && c->logprobs && c->seed == 7u + (unsigned)i);
        CHECK(c->finish == LM_FINISH_LENGTH || c->finish == LM_FINISH_STOP);
        CHECK(c->text && c->text[c->text_len] == 0); /* random bytes may include NUL */
        for (int t = 0; t < c->n_tokens; t++) CHECK(c->logprobs[t] <= 0);
    }
    CHECK(r[1].status != DSM_OK || (r[1].c[0].logprobs == NULL && r[1].c[2].seed == 102));
    CHECK(r[0].prompt_tokens > 10 && r[0].completion_tokens >= 2);

    /* reproducible: the same request alone gives the same completions */
    struct lm_result again;
    CHECK_OK(lm_sample(lm, &q[1], 1, &again, &err), &err);
    CHECK(again.status == DSM_OK && again.n == 3);
    for (int i = 0; i < 3 && again.status == DSM_OK && r[1].status == DSM_OK; i++)
        CHECK(again.c[i].n_tokens == r[1].c[i].n_tokens &&
              !memcmp(again.c[i].ids, r[1].c[i].ids, sizeof(int32_t) * (size_t)again.c[i].n_tokens) &&
              !strcmp(again.c[i].text, r[1].c[i].text));
    lm_result_free(&again);
    for (int i = 0; i < 3; i++) lm_result_free(&r[i]);

    /* the role loop: build a verifier prompt, sample, parse; random text is never well formed */
    char *prompt = NULL;
    CHECK_OK(ver_prompt_build(NULL, "Show that 2 + 2 = 4.", "2 + 2 = 4 by counting.", &prompt, &err), &err);
    struct chat_msg pm[] = {{"user", prompt ? prompt : ""}};
    struct lm_request vq = {pm, 1, {0}};
    lm_settings_default(&vq.s);
    vq.s.n = 4;
    vq.s.max_tokens = 16;
    struct lm_result vr;
    CHECK_OK(lm_sample(lm, &vq, 1, &vr, &err), &err);
    CHECK_MSG(vr.status == DSM_OK && vr.n == 4, "%d %s", vr.status, vr.error);
    for (int i = 0; i < vr.n; i++) {
        struct ver_parsed p;
        ver_parse(vr.c[i].text, vr.c[i].text_len, vr.c[i].finish != LM_FINISH_STOP, &p);
        CHECK(p.fail != ROLE_OK && p.score == ROLE_NO_SCORE);
    }
    lm_result_free(&vr);
    free(prompt);
    /* cancelled before the run: every request fails as cancelled, nothing is generated */
    volatile int stop = 1;
    lm_set_cancel(lm, &stop);
    CHECK_OK(lm_sample(lm, &q[1], 1, &vr, &err), &err);
    CHECK(vr.status == DSM_EIO && vr.cancelled && vr.c == NULL);
    lm_result_free(&vr);
    lm_destroy(lm);

    /* opening errors name the problem */
    CHECK(lm_open("native:/nonexistent/model", &o, &lm, &err) != DSM_OK && strstr(err.msg, "/nonexistent/model"));
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    return test_main_end();
}
