/* cmd_tokenize.c - `dsm tokenize` (text -> ids) and `dsm detokenize` (ids -> text).
 *
 * tokenize:   --text T, or all of stdin as one text, -> one JSON array of ids;
 *             --jsonl: one JSON string per stdin line -> one JSON array per line;
 *             --json: {"ids": [...], "tokens": [...]} instead of the bare array;
 *             --chat: the text is a user message rendered with the model's chat format.
 * detokenize: --ids 1,2,3, or one JSON array on stdin, -> the text (raw, no newline added);
 *             --jsonl: one JSON array per stdin line -> one JSON string per line.
 * Bad input (invalid UTF-8, malformed JSON, unknown ids) is an error naming the line and byte.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/chat.h"
#include "common/tokenizer.h"
#include "common/util.h"

struct tok_args {
    const char *model, *tokenizer, *text, *ids, *chat_format, *system;
    int jsonl, json, chat, skip_special;
};

static int open_tokenizer(const char *cmd, const struct tok_args *a, struct dsm_tokenizer **tok,
                          struct dsm_err *err) {
    if (!!a->model == !!a->tokenizer)
        return cli_usage_error(cmd, "give exactly one of --model DIR or --tokenizer FILE");
    int rc = a->model ? tok_load_dir(a->model, tok, err) : tok_load(a->tokenizer, tok, err);
    return rc ? cli_fail(cmd, err) : 0;
}

/* Read all of f into a new buffer. */
static int read_all(FILE *f, char **out, size_t *len, struct dsm_err *err) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) return dsm_errf(err, DSM_ENOMEM, "out of memory reading stdin");
    for (;;) {
        if (n + 4096 > cap) {
            char *p = realloc(buf, cap *= 2);
            if (!p) {
                free(buf);
                return dsm_errf(err, DSM_ENOMEM, "out of memory reading stdin");
            }
            buf = p;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        return dsm_errf(err, DSM_EIO, "reading stdin failed");
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return DSM_OK;
}

static void print_ids(const int32_t *ids, size_t n) {
    putchar('[');
    for (size_t i = 0; i < n; i++) printf(i ? ",%ld" : "%ld", (long)ids[i]);
    putchar(']');
}

static void print_json_string(const char *s, size_t n) {
    json_t *j = json_stringn(s, n);
    char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    fputs(t ? t : "null", stdout);
    free(t);
    json_decref(j);
}

/* Encode one text and print its result line. */
static int encode_one(const struct dsm_tokenizer *tok, const struct tok_args *a,
                      const struct chat_format *fmt, const char *text, size_t len,
                      struct dsm_err *err) {
    char *chat = NULL;
    int rc;
    if (fmt) {
        if ((rc = tok_utf8_check(text, len, err))) return rc;
        if (strlen(text) != len) return dsm_errf(err, DSM_EINVAL, "a chat message cannot contain NUL bytes");
        struct chat_msg msgs[2] = {{"system", a->system}, {"user", text}};
        size_t off = a->system ? 0 : 1;
        if ((rc = chat_render(fmt, msgs + off, 2 - off, 1, &chat, &len, err))) return rc;
        text = chat;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    rc = tok_encode_alloc(tok, text, len, &ids, &n, err);
    free(chat);
    if (rc) return rc;
    if (a->json) {
        fputs("{\"ids\":", stdout);
        print_ids(ids, n);
        fputs(",\"tokens\":[", stdout);
        for (size_t i = 0; i < n; i++) {
            const char *t = tok_id_to_token(tok, ids[i]);
            if (i) putchar(',');
            print_json_string(t, strlen(t));
        }
        fputs("]}", stdout);
    } else {
        print_ids(ids, n);
    }
    putchar('\n');
    free(ids);
    return DSM_OK;
}

int cmd_tokenize(int argc, char **argv) {
    struct tok_args a = {0};
    const struct cli_opt opts[] = {
        {"--model", CLI_STR, &a.model, "DIR", "model directory (tokenizer.json + tokenizer_config.json)"},
        {"--tokenizer", CLI_STR, &a.tokenizer, "FILE", "a tokenizer.json file"},
        {"--text", CLI_STR, &a.text, "TEXT", "the text to encode (default: all of stdin)"},
        {"--jsonl", CLI_FLAG, &a.jsonl, NULL, "stdin has one JSON string per line; one array per line out"},
        {"--json", CLI_FLAG, &a.json, NULL, "print {\"ids\": [...], \"tokens\": [...]}"},
        {"--chat", CLI_FLAG, &a.chat, NULL, "encode the text as a user turn with the chat format"},
        {"--chat-format", CLI_STR, &a.chat_format, "NAME", "qwen, deepseek-math, deepseek-v3, deepseek-r1 or byte"},
        {"--system", CLI_STR, &a.system, "TEXT", "with --chat: a system message first"},
        {"--decode", CLI_STR, &a.ids, "IDS", "decode comma-separated ids instead (as detokenize)"},
    };
    const struct cli_cmd_spec spec = {
        "tokenize", "(--model DIR | --tokenizer FILE) [--text TEXT | --jsonl] [--json] [--chat]",
        "Encode UTF-8 text to token ids exactly as Hugging Face tokenizers does (no special tokens "
        "added; with --chat the chat format adds them). Prints a JSON array of ids.",
        opts, DSM_ARRAY_LEN(opts), 0};
    int prc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (prc) return prc < 0 ? 0 : prc;
    if (a.ids) {
        char *dargv[] = {"detokenize", "--ids", (char *)a.ids,
                         a.model ? "--model" : "--tokenizer", (char *)(a.model ? a.model : a.tokenizer)};
        if (!a.model && !a.tokenizer) return cli_usage_error("tokenize", "give --model DIR or --tokenizer FILE");
        return cmd_detokenize(5, dargv);
    }
    if (a.text && a.jsonl) return cli_usage_error("tokenize", "--text and --jsonl exclude each other");
    if ((a.chat_format || a.system) && !a.chat) return cli_usage_error("tokenize", "--chat-format and --system need --chat");
    struct dsm_err err = {0};
    struct dsm_tokenizer *tok = NULL;
    int rc = open_tokenizer("tokenize", &a, &tok, &err);
    if (rc) return rc;
    const struct chat_format *fmt = NULL;
    if (a.chat && chat_format_select(a.chat_format, tok, a.model, &fmt, &err)) goto fail;
    if (a.text) {
        if (encode_one(tok, &a, fmt, a.text, strlen(a.text), &err)) goto fail;
    } else if (!a.jsonl) {
        char *buf = NULL;
        size_t len = 0;
        if (read_all(stdin, &buf, &len, &err)) goto fail;
        rc = encode_one(tok, &a, fmt, buf, len, &err);
        free(buf);
        if (rc) {
            dsm_err_prefix(&err, rc, "stdin");
            goto fail;
        }
    } else {
        char *line = NULL;
        size_t cap = 0;
        long lineno = 0;
        ssize_t k;
        while ((k = getline(&line, &cap, stdin)) >= 0) {
            lineno++;
            json_error_t je;
            json_t *j = json_loadb(line, (size_t)k, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
            if (!json_is_string(j)) {
                dsm_errf(&err, DSM_EINVAL, "stdin line %ld: expected a JSON string%s%s", lineno,
                         j ? "" : ": ", j ? "" : je.text);
                json_decref(j);
                free(line);
                goto fail;
            }
            rc = encode_one(tok, &a, fmt, json_string_value(j), json_string_length(j), &err);
            json_decref(j);
            if (rc) {
                dsm_err_prefix(&err, rc, "stdin line %ld", lineno);
                free(line);
                goto fail;
            }
        }
        free(line);
    }
    tok_destroy(tok);
    return fflush(stdout) ? 3 : 0;
fail:
    tok_destroy(tok);
    return cli_fail("tokenize", &err);
}

/* Ids from a JSON array (jsonl line or stdin). */
static int ids_from_json(json_t *j, int32_t **ids, size_t *n, struct dsm_err *err) {
    if (!json_is_array(j)) return dsm_errf(err, DSM_EINVAL, "expected a JSON array of ids");
    size_t m = json_array_size(j);
    int32_t *v = dsm_calloc(m ? m : 1, sizeof *v, err);
    if (!v) return DSM_ENOMEM;
    for (size_t i = 0; i < m; i++) {
        json_t *e = json_array_get(j, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > INT32_MAX) {
            free(v);
            return dsm_errf(err, DSM_EINVAL, "element %zu is not a non-negative integer id", i);
        }
        v[i] = (int32_t)json_integer_value(e);
    }
    *ids = v;
    *n = m;
    return DSM_OK;
}

int cmd_detokenize(int argc, char **argv) {
    struct tok_args a = {0};
    const struct cli_opt opts[] = {
        {"--model", CLI_STR, &a.model, "DIR", "model directory"},
        {"--tokenizer", CLI_STR, &a.tokenizer, "FILE", "a tokenizer.json file"},
        {"--ids", CLI_STR, &a.ids, "IDS", "comma-separated ids (default: one JSON array on stdin)"},
        {"--jsonl", CLI_FLAG, &a.jsonl, NULL, "stdin has one JSON array per line; one JSON string per line out"},
        {"--skip-special", CLI_FLAG, &a.skip_special, NULL, "leave out special tokens"},
    };
    const struct cli_cmd_spec spec = {
        "detokenize", "(--model DIR | --tokenizer FILE) [--ids 1,2,3 | --jsonl] [--skip-special]",
        "Decode token ids to UTF-8 text (bytes that do not form valid UTF-8 become U+FFFD). "
        "Prints the text itself, or with --jsonl one JSON string per line.",
        opts, DSM_ARRAY_LEN(opts), 0};
    int prc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (prc) return prc < 0 ? 0 : prc;
    if (a.ids && a.jsonl) return cli_usage_error("detokenize", "--ids and --jsonl exclude each other");
    struct dsm_err err = {0};
    struct dsm_tokenizer *tok = NULL;
    int rc = open_tokenizer("detokenize", &a, &tok, &err);
    if (rc) return rc;
    int flags = a.skip_special ? TOK_DECODE_SKIP_SPECIAL : 0;
    int32_t *ids = NULL;
    size_t n = 0;
    char *text = NULL;
    size_t len = 0;
    if (a.ids || !a.jsonl) {
        if (a.ids) {
            int *v = NULL, m = 0;
            if (cli_parse_ids(a.ids, &v, &m, &err)) goto fail;
            ids = dsm_calloc(m ? (size_t)m : 1, sizeof *ids, &err);
            for (int i = 0; ids && i < m; i++) ids[i] = v[i];
            free(v);
            if (!ids) goto fail;
            n = (size_t)m;
        } else {
            char *buf = NULL;
            size_t blen = 0;
            if (read_all(stdin, &buf, &blen, &err)) goto fail;
            json_error_t je;
            json_t *j = json_loadb(buf, blen, 0, &je);
            free(buf);
            rc = j ? ids_from_json(j, &ids, &n, &err)
                   : dsm_errf(&err, DSM_EINVAL, "line %d column %d: %s", je.line, je.column, je.text);
            json_decref(j);
            if (rc) {
                dsm_err_prefix(&err, rc, "stdin");
                goto fail;
            }
        }
        if (tok_decode_alloc(tok, ids, n, flags, &text, &len, &err)) goto fail;
        fwrite(text, 1, len, stdout);
    } else {
        char *line = NULL;
        size_t cap = 0;
        long lineno = 0;
        ssize_t k;
        while ((k = getline(&line, &cap, stdin)) >= 0) {
            lineno++;
            json_error_t je;
            json_t *j = json_loadb(line, (size_t)k, 0, &je);
            rc = j ? ids_from_json(j, &ids, &n, &err)
                   : dsm_errf(&err, DSM_EINVAL, "column %d: %s", je.column, je.text);
            json_decref(j);
            if (!rc) rc = tok_decode_alloc(tok, ids, n, flags, &text, &len, &err);
            free(ids);
            ids = NULL;
            if (rc) {
                dsm_err_prefix(&err, rc, "stdin line %ld", lineno);
                free(line);
                goto fail;
            }
            print_json_string(text, len);
            putchar('\n');
            free(text);
            text = NULL;
        }
        free(line);
    }
    free(ids);
    free(text);
    tok_destroy(tok);
    return fflush(stdout) ? 3 : 0;
fail:
    free(ids);
    free(text);
    tok_destroy(tok);
    return cli_fail("detokenize", &err);
}
