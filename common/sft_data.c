/* sft_data.c - JSONL SFT records to ids and labels; see sft_data.h. */
#include "common/sft_data.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/chat.h"
#include "common/log.h"
#include "common/tokenizer.h"
#include "common/util.h"

#define LOG_FIRST 5
#define IGNORE -100

/* A growable (ids, labels) pair. */
struct seq {
    int32_t *ids, *labels;
    int n, cap;
};

static int seq_push(struct seq *s, int32_t id, int32_t label) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 256;
        int32_t *a = realloc(s->ids, sizeof(int32_t) * cap), *b;
        if (!a) return -1;
        s->ids = a;
        b = realloc(s->labels, sizeof(int32_t) * cap);
        if (!b) return -1;
        s->labels = b;
        s->cap = cap;
    }
    s->ids[s->n] = id;
    s->labels[s->n++] = label;
    return 0;
}

/* Encode text and append it, labelled or not. */
static int seq_text(struct seq *s, const struct dsm_tokenizer *tok, const char *text, int labelled, struct dsm_err *err) {
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = tok_encode_alloc(tok, text, strlen(text), &ids, &n, err);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++)
        if (seq_push(s, ids[i], labelled ? ids[i] : IGNORE)) {
            free(ids);
            return dsm_errf(err, DSM_ENOMEM, "out of memory");
        }
    free(ids);
    return DSM_OK;
}

enum verdict { REC_OK, REC_BAD_FORM, REC_EMPTY, REC_BAD_IDS, REC_NO_LABELS };

static enum verdict parse_record(json_t *j, const struct sft_data_opts *o, struct seq *s, char *why, size_t cap) {
    struct dsm_err err = {0};
    json_t *prompt = json_object_get(j, "prompt"), *resp = json_object_get(j, "response");
    json_t *msgs = json_object_get(j, "messages"), *ids = json_object_get(j, "input_ids");
    if (json_is_string(prompt) && json_is_string(resp)) {
        if (!o->tok) return snprintf(why, cap, "prompt/response records need a tokenizer in the model directory"), REC_BAD_FORM;
        if (!*json_string_value(resp)) return snprintf(why, cap, "empty response"), REC_EMPTY;
        int32_t bos = tok_bos_id(o->tok), eos = tok_eos_id(o->tok);
        if ((bos >= 0 && seq_push(s, bos, IGNORE)) || seq_text(s, o->tok, json_string_value(prompt), 0, &err) ||
            seq_text(s, o->tok, json_string_value(resp), 1, &err) || (eos >= 0 && seq_push(s, eos, eos)))
            return snprintf(why, cap, "%.250s", err.msg[0] ? err.msg : "out of memory"), REC_BAD_FORM;
        return REC_OK;
    }
    if (json_is_array(msgs)) {
        if (!o->tok || !o->chat)
            return snprintf(why, cap, "messages records need a tokenizer and a chat format"), REC_BAD_FORM;
        const struct chat_format *f = o->chat;
        int any_assistant = 0;
        if (*f->bos && seq_text(s, o->tok, f->bos, 0, &err)) return snprintf(why, cap, "%.250s", err.msg), REC_BAD_FORM;
        for (size_t i = 0; i < json_array_size(msgs); i++) {
            json_t *m = json_array_get(msgs, i);
            const char *role = json_string_value(json_object_get(m, "role"));
            const char *content = json_string_value(json_object_get(m, "content"));
            if (!role || !content) return snprintf(why, cap, "message %zu has no string role or content", i), REC_BAD_FORM;
            const char *pre, *post;
            int lab = 0;
            if (!strcmp(role, "system")) pre = f->system_prefix, post = f->system_suffix;
            else if (!strcmp(role, "user")) pre = f->user_prefix, post = f->user_suffix;
            else if (!strcmp(role, "assistant")) pre = f->assistant_prefix, post = f->assistant_suffix, lab = 1;
            else return snprintf(why, cap, "message %zu: unknown role '%s'", i, role), REC_BAD_FORM;
            if (lab && !*content) return snprintf(why, cap, "message %zu: empty assistant content", i), REC_EMPTY;
            any_assistant |= lab;
            if ((*pre && seq_text(s, o->tok, pre, 0, &err)) || seq_text(s, o->tok, content, lab, &err) ||
                (*post && seq_text(s, o->tok, post, lab, &err)))
                return snprintf(why, cap, "%.250s", err.msg), REC_BAD_FORM;
        }
        if (!any_assistant) return snprintf(why, cap, "no assistant message"), REC_EMPTY;
        return REC_OK;
    }
    if (json_is_array(ids)) {
        json_t *labels = json_object_get(j, "labels");
        size_t n = json_array_size(ids);
        if (labels && !json_is_null(labels) && (!json_is_array(labels) || json_array_size(labels) != n))
            return snprintf(why, cap, "labels must be an array as long as input_ids (%zu)", n), REC_BAD_FORM;
        if (json_is_null(labels)) labels = NULL;
        for (size_t i = 0; i < n; i++) {
            json_t *a = json_array_get(ids, i), *b = labels ? json_array_get(labels, i) : a;
            if (!json_is_integer(a) || !json_is_integer(b))
                return snprintf(why, cap, "input_ids/labels element %zu is not an integer", i), REC_BAD_IDS;
            json_int_t id = json_integer_value(a), lab = json_integer_value(b);
            if (id < 0 || id >= o->vocab_size || (lab != IGNORE && (lab < 0 || lab >= o->vocab_size)))
                return snprintf(why, cap, "element %zu: id %lld / label %lld outside [0, %d) (labels may be -100)", i,
                                (long long)id, (long long)lab, o->vocab_size), REC_BAD_IDS;
            if (seq_push(s, (int32_t)id, (int32_t)lab)) return snprintf(why, cap, "out of memory"), REC_BAD_FORM;
        }
        return REC_OK;
    }
    return snprintf(why, cap, "expected {\"prompt\",\"response\"}, {\"messages\"} or {\"input_ids\"[,\"labels\"]}"), REC_BAD_FORM;
}

int sft_data_load(const char *path, const struct sft_data_opts *o, struct sft_data *d, struct dsm_err *err) {
    memset(d, 0, sizeof *d);
    FILE *f = fopen(path, "r");
    if (!f) return dsm_errf(err, DSM_ENOTFOUND, "cannot open training data %s", path);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    int cap = 0, logged = 0;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        d->lines++;
        size_t k = 0;
        while (k < (size_t)len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\n' || line[k] == '\r')) k++;
        if (k == (size_t)len) continue; /* blank line */
        json_error_t je;
        json_t *j = json_loadb(line, (size_t)len, 0, &je);
        char why[300] = "";
        enum verdict v;
        struct seq s = {0};
        if (!j || !json_is_object(j)) {
            d->bad_json++;
            if (logged++ < LOG_FIRST) LOG_WARN("%s:%d: not a JSON object (%s); skipped", path, d->lines, j ? "not an object" : je.text);
            json_decref(j);
            continue;
        }
        v = parse_record(j, o, &s, why, sizeof why);
        json_decref(j);
        if (v == REC_OK && s.n > o->max_len) {
            s.n = o->max_len;
            d->truncated++;
        }
        int kept = 0;
        for (int i = 1; i < s.n; i++) kept += s.labels[i] >= 0;
        if (v == REC_OK && kept == 0) {
            v = REC_NO_LABELS;
            snprintf(why, sizeof why, "no supervised token within %d tokens", o->max_len);
        }
        if (v != REC_OK) {
            if (v == REC_BAD_FORM) d->bad_form++;
            else if (v == REC_EMPTY) d->empty_response++;
            else if (v == REC_BAD_IDS) d->bad_ids++;
            else d->no_labels++;
            if (logged++ < LOG_FIRST) LOG_WARN("%s:%d: %s; skipped", path, d->lines, why);
            free(s.ids), free(s.labels);
            continue;
        }
        if (d->n == cap) {
            cap = cap ? 2 * cap : 256;
            struct sft_example *e = realloc(d->ex, sizeof *e * (size_t)cap);
            if (!e) {
                free(s.ids), free(s.labels), free(line), fclose(f);
                sft_data_free(d);
                return dsm_errf(err, DSM_ENOMEM, "out of memory loading %s", path);
            }
            d->ex = e;
        }
        d->ex[d->n++] = (struct sft_example){s.ids, s.labels, s.n};
        d->tokens += s.n;
        d->label_tokens += kept;
    }
    free(line);
    int ioerr = ferror(f);
    fclose(f);
    if (ioerr) {
        sft_data_free(d);
        return dsm_errf(err, DSM_EIO, "read error in %s", path);
    }
    if (d->n == 0) {
        char sum[400];
        sft_data_summary(d, sum, sizeof sum);
        int rc = dsm_errf(err, DSM_EINVAL, "%s: no usable training record (%s)", path, sum);
        sft_data_free(d);
        return rc;
    }
    return DSM_OK;
}

void sft_data_free(struct sft_data *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) free(d->ex[i].ids), free(d->ex[i].labels);
    free(d->ex);
    memset(d, 0, sizeof *d);
}

void sft_data_summary(const struct sft_data *d, char *buf, size_t cap) {
    snprintf(buf, cap,
             "%d records used of %d lines, %ld tokens (%ld supervised); skipped: %d invalid JSON, %d unknown form, "
             "%d empty response, %d bad ids, %d without supervised tokens; %d truncated",
             d->n, d->lines, d->tokens, d->label_tokens, d->bad_json, d->bad_form, d->empty_response, d->bad_ids,
             d->no_labels, d->truncated);
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void sft_data_order(int n, uint64_t seed, long epoch, int *perm) {
    uint64_t s = seed * 0x2545F4914F6CDD1Dull + (uint64_t)epoch * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int j = (int)(splitmix(&s) % (uint64_t)(i + 1));
        int tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}

int sft_data_split(struct sft_data *d, int n_eval, uint64_t seed, struct sft_data *eval, struct dsm_err *err) {
    memset(eval, 0, sizeof *eval);
    if (n_eval <= 0) return DSM_OK;
    if (n_eval >= d->n)
        return dsm_errf(err, DSM_EINVAL, "an eval split of %d records leaves nothing to train on (%d records)", n_eval, d->n);
    int *perm = malloc(sizeof(int) * (size_t)d->n);
    struct sft_example *ex = malloc(sizeof *ex * (size_t)d->n);
    eval->ex = malloc(sizeof *ex * (size_t)n_eval);
    if (!perm || !ex || !eval->ex) {
        free(perm), free(ex), free(eval->ex);
        eval->ex = NULL;
        return dsm_errf(err, DSM_ENOMEM, "out of memory splitting data");
    }
    sft_data_order(d->n, seed ^ 0xE7A1ull, -1, perm);
    int nt = d->n - n_eval;
    for (int i = 0; i < d->n; i++) {
        if (i < nt) ex[i] = d->ex[perm[i]];
        else eval->ex[i - nt] = d->ex[perm[i]];
    }
    free(d->ex);
    free(perm);
    d->ex = ex;
    d->n = nt;
    eval->n = n_eval;
    return DSM_OK;
}

void sft_data_batch(const struct sft_data *d, const int *idx, int B, int32_t *ids, int32_t *labels, int *T) {
    int t = 2;
    for (int b = 0; b < B; b++) t = d->ex[idx[b]].n > t ? d->ex[idx[b]].n : t;
    for (int b = 0; b < B; b++) {
        const struct sft_example *e = &d->ex[idx[b]];
        for (int i = 0; i < t; i++) {
            ids[(size_t)b * t + i] = i < e->n ? e->ids[i] : 0;
            labels[(size_t)b * t + i] = i < e->n ? e->labels[i] : IGNORE;
        }
    }
    *T = t;
}
