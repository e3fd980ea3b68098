/* cmd_parse.c - `dsm parse generator|verifier|metaverifier`: read one model output (stdin or
 * --input) and print what the role's parser makes of it as JSON; with --jsonl, one output per
 * input line. The parsing rules are the role libraries' (docs/roles.md). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/role_json.h"
#include "common/role.h"
#include "common/tokenizer.h"
#include "common/util.h"
#include "generator/generator.h"
#include "metaverifier/metaverifier.h"
#include "verifier/verifier.h"

static int read_stream(FILE *f, const char *what, char **out, size_t *len, struct dsm_err *err) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) return dsm_errf(err, DSM_ENOMEM, "out of memory reading %s", what);
    for (;;) {
        if (n + 1 >= cap) {
            char *q = realloc(buf, cap *= 2);
            if (!q) {
                free(buf);
                return dsm_errf(err, DSM_ENOMEM, "out of memory reading %s", what);
            }
            buf = q;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        return dsm_errf(err, DSM_EIO, "reading %s failed", what);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return DSM_OK;
}

int role_which_parse(const char *name, enum role_which *w) {
    if (!strcmp(name, "generator")) *w = W_GENERATOR;
    else if (!strcmp(name, "verifier")) *w = W_VERIFIER;
    else if (!strcmp(name, "metaverifier")) *w = W_METAVERIFIER;
    else return -1;
    return 0;
}

static json_t *span_json(struct role_span s) { return s.p ? json_stringn(s.p, s.n) : json_null(); }
static json_t *score_json(double s) { return s == ROLE_NO_SCORE ? json_null() : json_real(s); }
static json_t *fail_json(enum role_fail f) { return f == ROLE_OK ? json_null() : json_string(role_fail_name(f)); }

json_t *role_output_json(enum role_which w, const char *text, size_t len, int truncated) {
    json_t *o = NULL;
    if (w == W_GENERATOR) {
        struct gen_parsed p;
        gen_parse(text, len, truncated, &p);
        o = json_pack("{s:s, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "role", "generator", "format_ok",
                      p.fail == ROLE_OK, "error", fail_json(p.fail), "score", score_json(p.self_score), "analysis",
                      span_json(p.analysis), "proof", span_json(p.proof), "self_evaluation",
                      span_json(p.self_evaluation), "self_score", score_json(p.self_score), "box",
                      p.box[0] ? json_string(p.box) : json_null());
    } else if (w == W_VERIFIER) {
        struct ver_parsed p;
        ver_parse(text, len, truncated, &p);
        o = json_pack("{s:s, s:b, s:o, s:o, s:o, s:o}", "role", "verifier", "format_ok", p.fail == ROLE_OK, "error",
                      fail_json(p.fail), "score", score_json(p.score), "analysis", span_json(p.analysis), "box",
                      p.box[0] ? json_string(p.box) : json_null());
    } else {
        struct mver_parsed p;
        mver_parse(text, len, truncated, &p);
        o = json_pack("{s:s, s:b, s:o, s:o, s:o, s:o}", "role", "metaverifier", "format_ok", p.fail == ROLE_OK,
                      "error", fail_json(p.fail), "score", score_json(p.score), "analysis", span_json(p.analysis),
                      "box", p.box[0] ? json_string(p.box) : json_null());
    }
    return o;
}

static int emit(json_t *o, int pretty, struct dsm_err *err) {
    if (!o) return dsm_errf(err, DSM_ENOMEM, "out of memory building the JSON output");
    char *s = json_dumps(o, JSON_PRESERVE_ORDER | (pretty ? JSON_INDENT(2) : JSON_COMPACT));
    json_decref(o);
    if (!s) return dsm_errf(err, DSM_ENOMEM, "out of memory writing the JSON output");
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
    return DSM_OK;
}

/* --jsonl: each line a JSON string (the output) or {"text": ..., "finish_reason": ...}. */
static int parse_lines(enum role_which w, char *buf, size_t len, const char *what, int pretty, struct dsm_err *err) {
    int line = 0;
    char *save = NULL;
    for (char *l = buf; l && l < buf + len; l = save) {
        char *nl = memchr(l, '\n', (size_t)(buf + len - l));
        save = nl ? nl + 1 : NULL;
        size_t ll = nl ? (size_t)(nl - l) : (size_t)(buf + len - l);
        line++;
        if (strspn(l, " \t\r") >= ll) continue;
        json_error_t je;
        json_t *j = json_loadb(l, ll, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!j) return dsm_errf(err, DSM_EINVAL, "%s:%d: invalid JSON at column %d: %s", what, line, je.column, je.text);
        json_t *t = json_is_string(j) ? j : json_object_get(j, "text");
        json_t *f = json_is_object(j) ? json_object_get(j, "finish_reason") : NULL;
        if (!json_is_string(t) || (f && !json_is_string(f) && !json_is_null(f))) {
            json_decref(j);
            return dsm_errf(err, DSM_EINVAL, "%s:%d: expected a JSON string or {\"text\": string, \"finish_reason\": "
                            "\"stop\"|\"length\"}", what, line);
        }
        int truncated = json_is_string(f) && strcmp(json_string_value(f), "stop") != 0;
        int rc = emit(role_output_json(w, json_string_value(t), json_string_length(t), truncated), pretty, err);
        json_decref(j);
        if (rc) return rc;
    }
    return DSM_OK;
}

int cmd_parse(int argc, char **argv) {
    const char *finish = "stop", *input = NULL;
    int jsonl = 0, pretty = 0;
    const struct cli_opt opts[] = {
        {"--finish", CLI_STR, &finish, "REASON", "the generation's finish reason: stop (default) or length (cut off: never scored)"},
        {"--input", CLI_STR, &input, "FILE", "read the output from FILE instead of stdin"},
        {"--jsonl", CLI_FLAG, &jsonl, NULL, "one output per line: a JSON string or {\"text\", \"finish_reason\"}"},
        {"--pretty", CLI_FLAG, &pretty, NULL, "indent the JSON"},
    };
    const struct cli_cmd_spec spec = {
        "parse", "generator|verifier|metaverifier [options] < OUTPUT",
        "Read a model output as the given role's parser does (SPEC §2, docs/roles.md) and print JSON:\n"
        "format_ok, error (why not well formed, or null), score (null when absent), analysis, box (the\n"
        "last box as read) and, for the generator, proof, self_evaluation and self_score.",
        opts, DSM_ARRAY_LEN(opts), 1};
    char *pos[1] = {0};
    int npos = 0;
    int rc = cli_parse(&spec, argc, argv, pos, 1, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if (npos != 1) return cli_usage_error(spec.name, "name the role: generator, verifier or metaverifier");
    enum role_which w;
    if (role_which_parse(pos[0], &w)) return cli_usage_error(spec.name, "unknown role '%s' (generator, verifier or metaverifier)", pos[0]);
    if (strcmp(finish, "stop") && strcmp(finish, "length"))
        return cli_usage_error(spec.name, "--finish must be stop or length (got '%s')", finish);
    if (jsonl && strcmp(finish, "stop"))
        return cli_usage_error(spec.name, "--finish does not apply to --jsonl (give \"finish_reason\" per line)");

    struct dsm_err err = {0};
    char *buf = NULL;
    size_t len = 0;
    const char *what = input ? input : "stdin";
    if (input) rc = dsm_file_read(input, &buf, &len, &err);
    else rc = read_stream(stdin, "stdin", &buf, &len, &err);
    if (rc) return cli_fail(spec.name, &err);
    if (jsonl) {
        rc = parse_lines(w, buf, len, what, pretty, &err);
    } else if ((rc = tok_utf8_check(buf, len, &err))) {
        dsm_err_prefix(&err, rc, "%s is not valid UTF-8", what);
    } else {
        rc = emit(role_output_json(w, buf, len, strcmp(finish, "stop") != 0), pretty, &err);
    }
    free(buf);
    return rc ? cli_fail(spec.name, &err) : 0;
}
