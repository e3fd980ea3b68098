/* cmd_role.c - `dsm role prompt|sample`: one model role without the store. `prompt` prints the
 * prompt a service would send (and its template id on stderr); `sample` sends it to a backend
 * through the lm interface (native:DIR or http:URL) and prints each completion with its parse --
 * the quickest check that a model server, a template and the parsers work together. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/lm_flags.h"
#include "cli/role_json.h"
#include "common/lm.h"
#include "common/role.h"
#include "common/util.h"
#include "generator/generator.h"
#include "metaverifier/metaverifier.h"
#include "verifier/verifier.h"

enum prompt_kind { P_GENERATE, P_REFINE, P_VERIFY, P_METAVERIFY };

struct role_args {
    const char *problem, *proof, *template_path;
    struct cli_str_list analyses;
};

static void free_texts(char **t, int n) {
    for (int i = 0; i < n; i++) free(t[i]);
}

/* Build the prompt of kind k from the files in a; *id receives the template id. */
static int build_prompt(enum prompt_kind k, const struct role_args *a, char **out, char *id, size_t idcap,
                        struct dsm_err *err) {
    char *problem = NULL, *proof = NULL, *an[CLI_LIST_MAX] = {0};
    size_t len;
    int rc = DSM_OK, na = 0;
    struct role_template t = {0}, builtin;
    *out = NULL;
    if ((rc = dsm_file_read(a->problem, &problem, &len, err))) goto done;
    if (a->proof && (rc = dsm_file_read(a->proof, &proof, &len, err))) goto done;
    for (na = 0; na < a->analyses.n; na++)
        if ((rc = dsm_file_read(a->analyses.v[na], &an[na], &len, err))) goto done;
    if (a->template_path && (rc = role_template_load(a->template_path, &t, err))) goto done;
    const struct role_template *tp = a->template_path ? &t : NULL;
    switch (k) {
    case P_GENERATE:
        rc = gen_prompt_build(tp, problem, out, err);
        if (!tp) gen_template_generate(&builtin);
        break;
    case P_REFINE: {
        struct gen_candidate c = {proof, (const char *const *)an, na};
        rc = gen_prompt_build_refine(NULL, tp, problem, &c, 1, out, err);
        if (!tp) gen_template_refine(&builtin);
        break;
    }
    case P_VERIFY:
        rc = ver_prompt_build(tp, problem, proof, out, err);
        if (!tp) ver_template_verify(&builtin);
        break;
    case P_METAVERIFY:
        rc = mver_prompt_build(tp, problem, proof, na ? an[0] : NULL, out, err);
        if (!tp) mver_template_metaverify(&builtin);
        break;
    }
    snprintf(id, idcap, "%s", tp ? tp->id : builtin.id);
done:
    role_template_free(&t);
    free(problem);
    free(proof);
    free_texts(an, na);
    return rc;
}

/* Check the inputs kind k needs; returns 0 or prints a usage error and returns 2. */
static int check_inputs(const char *cmd, enum prompt_kind k, const struct role_args *a) {
    if (!a->problem) return cli_usage_error(cmd, "--problem FILE is required");
    if (k != P_GENERATE && !a->proof) return cli_usage_error(cmd, "--proof FILE is required for this role");
    if (k == P_GENERATE && (a->proof || a->analyses.n))
        return cli_usage_error(cmd, "the generator takes only --problem");
    if (k == P_VERIFY && a->analyses.n) return cli_usage_error(cmd, "the verifier takes no --analysis");
    if (k == P_METAVERIFY && a->analyses.n != 1)
        return cli_usage_error(cmd, "the metaverifier needs exactly one --analysis FILE");
    return 0;
}

static int kind_parse(const char *s, enum prompt_kind *k) {
    if (!strcmp(s, "generator")) *k = P_GENERATE;
    else if (!strcmp(s, "refine")) *k = P_REFINE;
    else if (!strcmp(s, "verifier")) *k = P_VERIFY;
    else if (!strcmp(s, "metaverifier")) *k = P_METAVERIFY;
    else return -1;
    return 0;
}

static int role_prompt(int argc, char **argv) {
    struct role_args a = {0};
    int json = 0;
    const struct cli_opt opts[] = {
        {"--problem", CLI_STR, &a.problem, "FILE", "the problem statement (required)"},
        {"--proof", CLI_STR, &a.proof, "FILE", "the proof (verifier, metaverifier, refine)"},
        {"--analysis", CLI_STR_LIST, &a.analyses, "FILE", "a verifier analysis (metaverifier: one; refine: repeatable)"},
        {"--template", CLI_STR, &a.template_path, "FILE", "use this template instead of the built-in one"},
        {"--json", CLI_FLAG, &json, NULL, "print {\"template\": ID, \"prompt\": TEXT}"},
    };
    const struct cli_cmd_spec spec = {
        "role prompt", "generator|refine|verifier|metaverifier --problem FILE [--proof FILE] [--analysis FILE]...",
        "Print the prompt a role's service would send (the template id goes to stderr).", opts, DSM_ARRAY_LEN(opts), 1};
    char *pos[1] = {0};
    int npos = 0, rc = cli_parse(&spec, argc, argv, pos, 1, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    enum prompt_kind k;
    if (npos != 1 || kind_parse(pos[0], &k))
        return cli_usage_error(spec.name, "name the role: generator, refine, verifier or metaverifier");
    if ((rc = check_inputs(spec.name, k, &a))) return rc;
    struct dsm_err err = {0};
    char *prompt = NULL, id[160];
    if ((rc = build_prompt(k, &a, &prompt, id, sizeof id, &err))) return cli_fail(spec.name, &err);
    if (json) {
        json_t *o = json_pack("{s:s, s:s}", "template", id, "prompt", prompt);
        char *s = o ? json_dumps(o, JSON_PRESERVE_ORDER) : NULL;
        if (s) printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        fputs(prompt, stdout);
        fprintf(stderr, "dsm role prompt: template %s\n", id);
    }
    free(prompt);
    return 0;
}

static int role_sample(int argc, char **argv) {
    struct role_args a = {0};
    struct cli_lm_flags lf = {0};
    int n = 1, top_k = 0, max_tokens = 4096;
    long seed = 0;
    double temperature = 1.0, top_p = 0.95;
    const struct cli_opt opts[] = {
        {"--problem", CLI_STR, &a.problem, "FILE", "the problem statement (required)"},
        {"--proof", CLI_STR, &a.proof, "FILE", "the proof (verifier, metaverifier, refine)"},
        {"--analysis", CLI_STR_LIST, &a.analyses, "FILE", "a verifier analysis (metaverifier: one; refine: repeatable)"},
        {"--template", CLI_STR, &a.template_path, "FILE", "use this template instead of the built-in one"},
        {"-n", CLI_INT, &n, "N", "completions (default 1)"},
        {"--temperature", CLI_DOUBLE, &temperature, "T", "default 1 (the V2 setting)"},
        {"--top-p", CLI_DOUBLE, &top_p, "P", "default 0.95 (the V2 setting)"},
        {"--top-k", CLI_INT, &top_k, "K", "0 = off (default)"},
        {"--max-tokens", CLI_INT, &max_tokens, "N", "new tokens at most (default 4096)"},
        {"--seed", CLI_LONG, &seed, "N", "sampling seed (default 0)"},
        CLI_LM_OPTS(lf),
    };
    const struct cli_cmd_spec spec = {
        "role sample",
        "generator|refine|verifier|metaverifier --backend SPEC --problem FILE [--proof FILE] [--analysis FILE]... [options]",
        "Build the role's prompt, sample completions from the backend and print one JSON object per\n"
        "completion: sample, seed, finish_reason, tokens, text and \"parsed\" (what `dsm parse` prints).\n"
        "A summary goes to stderr. Exit 3 when the backend failed.",
        opts, DSM_ARRAY_LEN(opts), 1};
    char *pos[1] = {0};
    int npos = 0, rc = cli_parse(&spec, argc, argv, pos, 1, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    enum prompt_kind k;
    if (npos != 1 || kind_parse(pos[0], &k))
        return cli_usage_error(spec.name, "name the role: generator, refine, verifier or metaverifier");
    if ((rc = check_inputs(spec.name, k, &a))) return rc;
    if (!lf.backend) return cli_usage_error(spec.name, "--backend SPEC is required (native:DIR or http:URL)");
    if (n < 1 || max_tokens < 1) return cli_usage_error(spec.name, "-n and --max-tokens must be at least 1");
    if (temperature < 0 || !(top_p > 0 && top_p <= 1) || top_k < 0)
        return cli_usage_error(spec.name, "need --temperature >= 0, --top-p in (0, 1], --top-k >= 0");

    struct dsm_err err = {0};
    char *prompt = NULL, id[160];
    struct dsm_lm *lm = NULL;
    struct lm_result r = {0};
    if ((rc = build_prompt(k, &a, &prompt, id, sizeof id, &err))) goto done;
    int xc = cli_lm_open(spec.name, &lf, &lm);
    if (xc) {
        free(prompt);
        return xc;
    }
    struct chat_msg msg = {"user", prompt};
    struct lm_request q = {&msg, 1, {0}};
    lm_settings_default(&q.s);
    q.s.n = n;
    q.s.temperature = (float)temperature;
    q.s.top_p = (float)top_p;
    q.s.top_k = top_k;
    q.s.max_tokens = max_tokens;
    q.s.seed = (uint64_t)seed;
    if ((rc = lm_sample(lm, &q, 1, &r, &err))) goto done;
    if (r.status) {
        rc = dsm_errf(&err, r.status, "%s", r.error);
        goto done;
    }
    enum role_which w = k == P_VERIFY ? W_VERIFIER : k == P_METAVERIFY ? W_METAVERIFIER : W_GENERATOR;
    int well = 0;
    for (int i = 0; i < r.n; i++) {
        struct lm_completion *c = &r.c[i];
        json_t *parsed = role_output_json(w, c->text, c->text_len, c->finish != LM_FINISH_STOP);
        well += parsed && json_is_true(json_object_get(parsed, "format_ok"));
        json_t *o2 = json_pack("{s:i, s:I, s:s, s:i, s:s%, s:o}", "sample", i, "seed", (json_int_t)c->seed,
                               "finish_reason", c->finish_raw, "tokens", c->n_tokens, "text", c->text, c->text_len,
                               "parsed", parsed ? parsed : json_null());
        char *s = o2 ? json_dumps(o2, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
        if (s) printf("%s\n", s);
        free(s);
        json_decref(o2);
    }
    fprintf(stderr, "dsm role sample: %s via %s (%s), template %s: %d of %d completions well formed, %.2f s, %d attempt(s)\n",
            pos[0], lm_kind(lm), lm_model_name(lm), id, well, r.n, r.seconds, r.attempts);
done:
    lm_result_free(&r);
    lm_destroy(lm);
    free(prompt);
    return rc ? cli_fail(spec.name, &err) : 0;
}

int cmd_role(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "prompt")) {
        argv[1] = "role prompt";
        return role_prompt(argc - 1, argv + 1);
    }
    if (argc >= 2 && !strcmp(argv[1], "sample")) {
        argv[1] = "role sample";
        return role_sample(argc - 1, argv + 1);
    }
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: dsm role prompt|sample ROLE ...\n\n"
               "A model role (generator, refine, verifier, metaverifier) without the store:\n"
               "  prompt   print the prompt its service would send\n"
               "  sample   send it to a backend (native:DIR or http:URL) and parse each completion\n");
        return 0;
    }
    return cli_usage_error("role", "expected 'prompt' or 'sample'");
}
