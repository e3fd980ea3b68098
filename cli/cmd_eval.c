/* cmd_eval.c - `dsm eval`: sample answers to an answer-checked set with a native model and report
 * greedy accuracy, maj@k and pass@k overall, per subject and per level (common/eval.h).
 *
 * Set files: JSONL (or one JSON array) in the shipped forms (../shared/data/README.md): the problem
 * from "problem" or "question"; the gold from "answer" (GSM8K: the text after the last "#### "),
 * else "final_answer" (first element of a list), else the last \boxed{} of "solution"; the subject
 * from "subject" or "type"; the level from "level" (3 or "Level 3").
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/answer.h"
#include "common/chat.h"
#include "common/engine.h"
#include "common/eval.h"
#include "common/model.h"
#include "common/tokenizer.h"
#include "common/util.h"

struct problem {
    char *text, *gold, *subject;
    int level;
    int32_t *ids;
    int n_ids;
    struct eval_output greedy;
    struct eval_output *samples;
    int got_greedy, got;
};

struct run_ctx {
    struct problem *ps;
    int np, k, with_greedy, done, total, terminal;
};

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Gold answer of a record, newly allocated, or NULL. */
static char *record_gold(json_t *o) {
    json_t *a = json_object_get(o, "answer");
    char buf[64];
    if (json_is_string(a)) {
        const char *s = json_string_value(a), *h = strstr(s, "####");
        if (h) { /* GSM8K: reasoning, then "#### gold" (the last one) */
            const char *last = h;
            while ((h = strstr(last + 4, "####"))) last = h;
            last += 4;
            while (*last == ' ') last++;
            return strdup(last);
        }
        return strdup(s);
    }
    if (json_is_number(a)) {
        snprintf(buf, sizeof buf, "%.15g", json_number_value(a));
        return strdup(buf);
    }
    json_t *f = json_object_get(o, "final_answer");
    if (json_is_array(f) && json_is_string(json_array_get(f, 0))) return strdup(json_string_value(json_array_get(f, 0)));
    json_t *sol = json_object_get(o, "solution");
    if (json_is_string(sol)) {
        char ans[ANS_MAX_LEN];
        enum ans_found found;
        if (ans_extract(json_string_value(sol), strlen(json_string_value(sol)), 0, ans, sizeof ans, &found, NULL) == DSM_OK &&
            found == ANS_FOUND_BOXED)
            return strdup(ans);
    }
    return NULL;
}

static int record_level(json_t *o) {
    json_t *l = json_object_get(o, "level");
    if (json_is_integer(l)) return (int)json_integer_value(l);
    if (json_is_string(l)) {
        const char *s = json_string_value(l);
        while (*s && (*s < '0' || *s > '9')) s++;
        return *s ? atoi(s) : -1;
    }
    return -1;
}

static int load_set(const char *path, int limit, struct problem **out, int *n, struct dsm_err *err) {
    char *text = NULL;
    size_t len = 0;
    int rc = dsm_file_read(path, &text, &len, err);
    if (rc) return rc;
    int cap = 64, count = 0, line = 0;
    struct problem *ps = calloc((size_t)cap, sizeof *ps);
    if (!ps) rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
    char *save = NULL;
    for (char *l = text; rc == DSM_OK && l && l < text + len && (limit <= 0 || count < limit); l = save) {
        char *nl = strchr(l, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl) *nl = '\0';
        line++;
        if (strspn(l, " \t\r") == strlen(l)) continue;
        json_error_t je;
        json_t *o = json_loads(l, 0, &je);
        if (!o || !json_is_object(o)) {
            rc = dsm_errf(err, DSM_EINVAL, "%s:%d: not a JSON object%s%s", path, line, o ? "" : ": ", o ? "" : je.text);
            json_decref(o);
            break;
        }
        json_t *pt = json_object_get(o, "problem");
        if (!json_is_string(pt)) pt = json_object_get(o, "question");
        char *gold = record_gold(o);
        if (!json_is_string(pt) || !gold || !gold[0]) {
            free(gold);
            json_decref(o);
            rc = dsm_errf(err, DSM_EINVAL, "%s:%d: a record needs a \"problem\" (or \"question\") and a gold answer "
                                           "(\"answer\", \"final_answer\" or a \\boxed{} in \"solution\")", path, line);
            break;
        }
        if (count == cap) {
            struct problem *np = realloc(ps, sizeof *ps * (size_t)(cap *= 2));
            if (!np) {
                free(gold);
                json_decref(o);
                rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
                break;
            }
            ps = np;
        }
        struct problem *p = &ps[count++];
        memset(p, 0, sizeof *p);
        json_t *subj = json_object_get(o, "subject");
        if (!json_is_string(subj)) subj = json_object_get(o, "type");
        p->text = strdup(json_string_value(pt));
        p->gold = gold;
        p->subject = dup_or_null(json_is_string(subj) ? json_string_value(subj) : NULL);
        p->level = record_level(o);
        json_decref(o);
    }
    free(text);
    if (rc == DSM_OK && count == 0) rc = dsm_errf(err, DSM_EINVAL, "%s: no problems", path);
    *out = ps;
    *n = count;
    return rc;
}

static int on_done(void *user, const struct dsm_completion *c) {
    struct run_ctx *r = user;
    /* requests are laid out problem by problem: [greedy,] sampled */
    int per = r->with_greedy ? 2 : 1;
    struct problem *p = &r->ps[c->request / per];
    int is_greedy = r->with_greedy && c->request % per == 0;
    char *copy = malloc(c->text_len + 1);
    if (!copy) return 1;
    memcpy(copy, c->text, c->text_len);
    copy[c->text_len] = '\0';
    struct eval_output o = {copy, c->text_len, !strcmp(c->finish_reason, "length")};
    if (is_greedy) p->greedy = o, p->got_greedy = 1;
    else p->samples[c->sample] = o, p->got++;
    r->done++;
    if (r->terminal) fprintf(stderr, "\r[eval] %d/%d samples ", r->done, r->total);
    return 0;
}

int cmd_eval(int argc, char **argv) {
    const char *set = NULL, *dir = NULL, *device = "auto", *chat = NULL, *json_out = NULL;
    int k = 8, max_tokens = 512, limit = 0, threads = 0, no_greedy = 0, last_number = 0, max_batch = 64;
    long seed = 0;
    double temperature = 0.7, top_p = 0.95;
    const struct cli_opt opts[] = {
        {"--set", CLI_STR, &set, "FILE", "problems with gold answers (JSONL in the shipped forms; required)"},
        {"--model", CLI_STR, &dir, "DIR", "native model directory (required)"},
        {"-k", CLI_INT, &k, "K", "samples per problem for maj@k and pass@k (default 8)"},
        {"--no-greedy", CLI_FLAG, &no_greedy, NULL, "skip the greedy sample"},
        {"--temperature", CLI_DOUBLE, &temperature, "T", "sampling temperature (default 0.7)"},
        {"--top-p", CLI_DOUBLE, &top_p, "P", "nucleus mass (default 0.95)"},
        {"--max-tokens", CLI_INT, &max_tokens, "N", "new tokens per sample (default 512)"},
        {"--seed", CLI_LONG, &seed, "N", "sampling seed (default 0)"},
        {"--limit", CLI_INT, &limit, "N", "only the first N problems"},
        {"--last-number", CLI_FLAG, &last_number, NULL, "fall back to the last number when no answer is marked"},
        {"--chat-format", CLI_STR, &chat, "NAME", "chat format (default: from the model directory; plain text if none)"},
        {"--json-out", CLI_STR, &json_out, "FILE", "write one JSON record per problem with every sample"},
        {"--max-batch", CLI_INT, &max_batch, "N", "sequences decoded together (default 64)"},
        {"--device", CLI_STR, &device, "NAME", "auto (default), cpu, cuda or ref"},
        {"--threads", CLI_INT, &threads, "N", "CPU threads (default: all cores)"},
    };
    const struct cli_cmd_spec spec = {"eval", "--set FILE --model DIR [-k K] [options]",
                                      "Sample answers with a native model and report greedy accuracy, maj@k and pass@k,\n"
                                      "overall and per subject and level, as a table on stdout.",
                                      opts, DSM_ARRAY_LEN(opts), 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (!set || !dir) return cli_usage_error(spec.name, "--set FILE and --model DIR are required");
    if (k < 1 || max_tokens < 1) return cli_usage_error(spec.name, "-k and --max-tokens must be at least 1");
    if (temperature < 0 || !(top_p > 0 && top_p <= 1)) return cli_usage_error(spec.name, "need --temperature >= 0 and 0 < --top-p <= 1");

    struct dsm_err err = {0};
    struct problem *ps = NULL;
    int np = 0;
    struct dsm_tokenizer *tok = NULL;
    const struct chat_format *fmt = NULL;
    struct dsm_backend *be = NULL;
    struct dsm_model *m = NULL;
    struct dsm_engine *eng = NULL;
    struct dsm_gen_request *reqs = NULL;
    struct ans_checker *ac = NULL;
    FILE *jf = NULL;
    if ((rc = load_set(set, limit, &ps, &np, &err)) || (rc = tok_load_dir(dir, &tok, &err))) goto done;
    if (chat_format_select(chat, tok, dir, &fmt, &err) != DSM_OK) {
        if (chat) {
            rc = DSM_EINVAL;
            goto done;
        }
        fmt = NULL; /* no chat format known: plain text after BOS */
    }
    int longest = 0;
    for (int i = 0; i < np; i++) {
        struct problem *p = &ps[i];
        static const char instruction[] = "\nPlease reason step by step, and put your final answer within \\boxed{}.";
        size_t plen = strlen(p->text);
        char *prompt = malloc(plen + sizeof instruction);
        if (!prompt) {
            rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
            goto done;
        }
        memcpy(prompt, p->text, plen);
        memcpy(prompt + plen, instruction, sizeof instruction);
        struct chat_msg msg = {"user", prompt};
        size_t nids = 0;
        rc = chat_encode(fmt, tok, &msg, 1, 1, &p->ids, &nids, &err);
        free(prompt);
        if (rc) goto done;
        p->n_ids = (int)nids;
        p->samples = calloc((size_t)k, sizeof *p->samples);
        if (!p->samples) {
            rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
            goto done;
        }
        longest = p->n_ids > longest ? p->n_ids : longest;
    }
    struct dsm_model_opts mo = {.max_seq = longest + max_tokens};
    if ((rc = dsm_backend_open(device, threads, &be, &err)) || (rc = dsm_model_load(dir, be, &mo, &m, &err))) goto done;
    struct dsm_engine_opts eo = {.max_batch = max_batch};
    if ((rc = dsm_engine_create(m, tok, &eo, &eng, &err))) goto done;
    int per = no_greedy ? 1 : 2;
    reqs = calloc((size_t)np * per, sizeof *reqs);
    if (!reqs) {
        rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < np; i++) {
        struct dsm_gen_settings s = {(float)temperature, 0, (float)top_p, max_tokens, (uint64_t)seed + (uint64_t)i * 100003u, NULL, 0, 0};
        if (!no_greedy) {
            struct dsm_gen_settings g = s;
            g.temperature = 0.0f;
            reqs[i * per] = (struct dsm_gen_request){ps[i].ids, ps[i].n_ids, 1, g};
        }
        reqs[i * per + per - 1] = (struct dsm_gen_request){ps[i].ids, ps[i].n_ids, k, s};
    }
    struct run_ctx rctx = {ps, np, k, !no_greedy, 0, np * (k + !no_greedy), isatty(2)};
    if ((rc = dsm_engine_run(eng, reqs, np * per, on_done, &rctx, &err))) goto done;
    if (rctx.terminal) fputc('\n', stderr);

    /* score: groups are "all", "subject: X" and "level: N" */
    if ((rc = ans_checker_create(NULL, &ac, &err))) goto done;
    if (json_out && !(jf = fopen(json_out, "w"))) {
        rc = dsm_errf(&err, DSM_EIO, "%s: cannot create", json_out);
        goto done;
    }
    int ngroups = 0, gcap = 16;
    char **gname = calloc((size_t)gcap, sizeof *gname);
    struct eval_totals *gt = calloc((size_t)gcap, sizeof *gt);
    unsigned flags = last_number ? ANS_EXTRACT_LAST_NUMBER : 0;
    for (int i = 0; i < np && rc == DSM_OK; i++) {
        struct problem *p = &ps[i];
        struct eval_item item = {p->gold, p->got_greedy ? &p->greedy : NULL, p->samples, k};
        struct eval_item_result r;
        if ((rc = eval_score_item(ac, &item, k, flags, &r, &err))) {
            dsm_err_prefix(&err, rc, "%s: problem %d", set, i + 1);
            break;
        }
        char names[3][160];
        snprintf(names[0], sizeof names[0], "all");
        snprintf(names[1], sizeof names[1], "subject: %s", p->subject ? p->subject : "-");
        snprintf(names[2], sizeof names[2], "level: %d", p->level);
        for (int gi = 0; gi < 3; gi++) {
            if (gi == 1 && !p->subject) continue;
            if (gi == 2 && p->level < 0) continue;
            int found = -1;
            for (int j = 0; j < ngroups; j++)
                if (!strcmp(gname[j], names[gi])) found = j;
            if (found < 0) {
                if (ngroups == gcap) {
                    gcap *= 2;
                    gname = realloc(gname, sizeof *gname * (size_t)gcap);
                    gt = realloc(gt, sizeof *gt * (size_t)gcap);
                    if (!gname || !gt) {
                        rc = dsm_errf(&err, DSM_ENOMEM, "out of memory");
                        break;
                    }
                }
                found = ngroups++;
                gname[found] = strdup(names[gi]);
                memset(&gt[found], 0, sizeof gt[found]);
            }
            eval_totals_add(&gt[found], &r, k, k);
        }
        if (jf) {
            json_t *samples = json_array();
            for (int s = 0; s < k; s++)
                json_array_append_new(samples, json_pack("{s:s, s:b}", "text", p->samples[s].text ? p->samples[s].text : "",
                                                         "truncated", p->samples[s].truncated));
            json_t *rec = json_pack("{s:i, s:s, s:s, s:o, s:i, s:i, s:b, s:o}", "index", i, "problem", p->text, "gold", p->gold,
                                    "greedy_correct", r.greedy_correct < 0 ? json_null() : json_boolean(r.greedy_correct),
                                    "n_correct", r.n_correct, "answered", r.answered, "maj_correct", r.maj_correct, "samples", samples);
            char *line = json_dumps(rec, JSON_COMPACT);
            if (line) fprintf(jf, "%s\n", line);
            free(line);
            json_decref(rec);
        }
    }
    /* "all" first, then subjects, then levels, each by name */
    for (int a = 1; a < ngroups; a++)
        for (int b = a; b > 0; b--) {
            int ka = gname[b][0] == 'a' ? 0 : gname[b][0] == 's' ? 1 : 2, kb = gname[b - 1][0] == 'a' ? 0 : gname[b - 1][0] == 's' ? 1 : 2;
            if (ka > kb || (ka == kb && strcmp(gname[b], gname[b - 1]) >= 0)) break;
            char *tn = gname[b];
            gname[b] = gname[b - 1], gname[b - 1] = tn;
            struct eval_totals tt = gt[b];
            gt[b] = gt[b - 1], gt[b - 1] = tt;
        }
    if (rc == DSM_OK) {
        printf("| group | problems | greedy acc %% | maj@%d %% | pass@1 %% | pass@%d %% |\n|---|---|---|---|---|---|\n", k, k);
        for (int j = 0; j < ngroups; j++) {
            const struct eval_totals *t = &gt[j];
            char greedy[32] = "-";
            if (t->greedy_scored) snprintf(greedy, sizeof greedy, "%.1f", 100.0 * t->greedy_correct / t->greedy_scored);
            printf("| %s | %d | %s | %.1f | %.1f | %.1f |\n", gname[j], t->problems, greedy,
                   100.0 * t->maj_correct / t->problems, 100.0 * t->pass1_sum / t->problems,
                   100.0 * t->pass_sum / t->problems);
        }
    }
    for (int j = 0; j < ngroups; j++) free(gname[j]);
    free(gname);
    free(gt);
done:
    if (jf) fclose(jf);
    for (int i = 0; ps && i < np; i++) {
        free(ps[i].text), free(ps[i].gold), free(ps[i].subject), free(ps[i].ids);
        free((void *)ps[i].greedy.text);
        for (int s = 0; ps[i].samples && s < k; s++) free((void *)ps[i].samples[s].text);
        free(ps[i].samples);
    }
    free(ps);
    free(reqs);
    ans_checker_destroy(ac);
    dsm_engine_destroy(eng);
    dsm_model_destroy(m);
    dsm_backend_destroy(be);
    tok_destroy(tok);
    return rc ? cli_fail(spec.name, &err) : 0;
}
