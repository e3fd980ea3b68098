/* test_roles_real.c - the role parsers on DeepSeekMath-V2's released final proofs (the .jsonl
 * files in ../shared/data/v2/outputs, not copied into the repository; DSM_DATA_DIR overrides the
 * data directory; skips when it is absent).
 *
 * The release holds the proof part only (model_prediction.proof: no "## Solution" / "## Self
 * Evaluation" sections, no </think>), so as raw generator outputs every one must be a format
 * failure (no Solution heading) and as verifier outputs none may be scored. Wrapped into the
 * generator's two-section form with a self-evaluation, every one must parse, and the proof span
 * must be the proof byte for byte: their own \boxed answers, headings, code and LaTeX braces must
 * not confuse the splitter or the score. Each is also rendered into the verifier and
 * meta-verifier prompts (LaTeX braces are not placeholders). Prints the counts. */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/role.h"
#include "generator/generator.h"
#include "metaverifier/metaverifier.h"
#include "test.h"
#include "verifier/verifier.h"

static int n_records, n_raw_ok, n_raw_no_solution, n_wrapped_ok, n_proof_exact, n_ver_scored, n_prompts, n_boxed;

static void one(const char *proof, size_t len, const char *where) {
    n_records++;
    struct gen_parsed g;
    gen_parse(proof, len, 0, &g);
    n_raw_ok += g.fail == ROLE_OK;
    n_raw_no_solution += g.fail == ROLE_FAIL_NO_SOLUTION;
    struct ver_parsed v;
    ver_parse(proof, len, 0, &v);
    n_ver_scored += v.score != ROLE_NO_SCORE;
    n_boxed += strstr(proof, "\\boxed") != NULL;

    static const char head[] = "## Solution\n\n";
    static const char tail[] = "\n\n## Self Evaluation\n\n" VER_MARKER_BEGIN "\nEvery step checked.\n\n" VER_MARKER_SCORE_ALT
                               "\n\\boxed{1}\n";
    size_t n = sizeof head - 1 + len + sizeof tail - 1;
    char *w = malloc(n + 1);
    if (!w) {
        CHECK(0);
        return;
    }
    memcpy(w, head, sizeof head - 1);
    memcpy(w + sizeof head - 1, proof, len);
    memcpy(w + sizeof head - 1 + len, tail, sizeof tail);
    gen_parse(w, n, 0, &g);
    struct role_span want = role_trim((struct role_span){proof, len});
    int exact = g.proof.p && g.proof.n == want.n && !memcmp(g.proof.p, want.p, want.n);
    n_wrapped_ok += g.fail == ROLE_OK && g.self_score == 1;
    n_proof_exact += exact;
    CHECK_MSG(g.fail == ROLE_OK && g.self_score == 1 && exact && g.analysis.n > 0, "%s: %s", where,
              role_fail_name(g.fail));
    free(w);

    char *p1 = NULL, *p2 = NULL;
    struct dsm_err err = {0};
    int ok = !ver_prompt_build(NULL, "A problem.", proof, &p1, &err) &&
             !mver_prompt_build(NULL, "A problem.", proof, "An analysis.", &p2, &err) && strstr(p1, proof) &&
             strstr(p2, proof);
    n_prompts += ok;
    CHECK_MSG(ok, "%s: prompt: %s", where, err.msg);
    free(p1);
    free(p2);
}

int main(void) {
    char dir[4096];
    const char *env = getenv("DSM_DATA_DIR");
    snprintf(dir, sizeof dir, "%s/v2/outputs", env ? env : DSM_SOURCE_DIR "/../shared/data");
    struct stat st;
    if (stat(dir, &st) != 0) TEST_SKIP("no DeepSeekMath-V2 outputs (set DSM_DATA_DIR to the data directory)");
    DIR *d = opendir(dir);
    if (!d) return 1;
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        if (nl < 7 || strcmp(e->d_name + nl - 6, ".jsonl")) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) {
            CHECK_MSG(0, "cannot open %s", path);
            continue;
        }
        files++;
        json_error_t je;
        int line = 0;
        char *buf = NULL;
        size_t cap = 0;
        ssize_t got;
        while ((got = getline(&buf, &cap, f)) > 0) {
            line++;
            json_t *r = json_loadb(buf, (size_t)got, 0, &je);
            json_t *p = json_object_get(json_object_get(r, "model_prediction"), "proof");
            char where[8300];
            snprintf(where, sizeof where, "%s:%d", e->d_name, line);
            CHECK_MSG(json_is_string(p), "%s: no model_prediction.proof", where);
            if (json_is_string(p)) one(json_string_value(p), json_string_length(p), where);
            json_decref(r);
        }
        free(buf);
        fclose(f);
    }
    closedir(d);
    fprintf(stderr,
            "V2 released proofs: %d records in %d files; %d contain \\boxed. As raw generator outputs: %d well formed, "
            "%d without a Solution heading; as verifier outputs: %d scored. Wrapped in the two-section form: %d "
            "parse with self-score 1, %d proofs recovered byte for byte; %d rendered into both prompts.\n",
            n_records, files, n_boxed, n_raw_ok, n_raw_no_solution, n_ver_scored, n_wrapped_ok, n_proof_exact, n_prompts);
    CHECK(files == 5 && n_records == 84);
    CHECK(n_raw_ok == 0 && n_raw_no_solution == n_records && n_ver_scored == 0);
    CHECK(n_wrapped_ok == n_records && n_proof_exact == n_records && n_prompts == n_records);
    return test_main_end();
}
