/* bench_tokenizer.c - encode and decode throughput of dsm's tokenizer on a JSONL corpus.
 *
 *   bench_tokenizer TOKENIZER_JSON CORPUS_JSONL [ROUNDS]
 *
 * Prints one JSON line: load time, then encode and decode MB/s (bytes of input text per second)
 * for the first round (cold word cache) and the best of ROUNDS (default 3). Single-threaded.
 * tests/bench/bench_tokenizer.sh runs it next to tokenizers.js on the same corpus. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tokenizer.h"
#include "common/util.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_tokenizer TOKENIZER_JSON CORPUS_JSONL [ROUNDS]\n");
        return 2;
    }
    int rounds = argc > 3 ? atoi(argv[3]) : 3;
    if (rounds < 1) rounds = 1;
    struct dsm_err err = {0};
    double t0 = dsm_now();
    struct dsm_tokenizer *tok = NULL;
    if (tok_load(argv[1], &tok, &err)) {
        fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
        return 2;
    }
    double load_s = dsm_now() - t0;

    FILE *f = fopen(argv[2], "r");
    if (!f) {
        fprintf(stderr, "bench_tokenizer: cannot open %s\n", argv[2]);
        return 2;
    }
    size_t cap = 1024, n = 0, bytes = 0;
    char **texts = malloc(cap * sizeof *texts);
    size_t *lens = malloc(cap * sizeof *lens);
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) >= 0) {
        json_t *j = json_loads(line, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (!json_is_string(j)) {
            fprintf(stderr, "bench_tokenizer: %s line %zu is not a JSON string\n", argv[2], n + 1);
            return 2;
        }
        if (n == cap) {
            cap *= 2;
            texts = realloc(texts, cap * sizeof *texts);
            lens = realloc(lens, cap * sizeof *lens);
        }
        lens[n] = json_string_length(j);
        texts[n] = malloc(lens[n] + 1);
        memcpy(texts[n], json_string_value(j), lens[n] + 1);
        bytes += lens[n];
        n++;
        json_decref(j);
    }
    free(line);
    fclose(f);

    int32_t **ids = calloc(n, sizeof *ids);
    size_t *nids = calloc(n, sizeof *nids);
    size_t tokens = 0;
    double enc_first = 0, enc_best = 1e30, dec_first = 0, dec_best = 1e30;
    char *out = NULL;
    size_t out_cap = 0;
    for (int r = 0; r < rounds; r++) {
        tokens = 0;
        t0 = dsm_now();
        for (size_t i = 0; i < n; i++) {
            free(ids[i]);
            if (tok_encode_alloc(tok, texts[i], lens[i], &ids[i], &nids[i], &err)) {
                fprintf(stderr, "bench_tokenizer: text %zu: %s\n", i + 1, err.msg);
                return 1;
            }
            tokens += nids[i];
        }
        double e = dsm_now() - t0;
        t0 = dsm_now();
        for (size_t i = 0; i < n; i++) {
            long need = tok_decode(tok, ids[i], nids[i], 0, out, out_cap, &err);
            if (need >= 0 && (size_t)need >= out_cap) {
                out_cap = (size_t)need + 1;
                out = realloc(out, out_cap);
                need = tok_decode(tok, ids[i], nids[i], 0, out, out_cap, &err);
            }
            if (need < 0) {
                fprintf(stderr, "bench_tokenizer: decode %zu: %s\n", i + 1, err.msg);
                return 1;
            }
        }
        double d = dsm_now() - t0;
        if (r == 0) enc_first = e, dec_first = d;
        if (e < enc_best) enc_best = e;
        if (d < dec_best) dec_best = d;
    }
    printf("{\"impl\":\"dsm\",\"tokenizer\":\"%s\",\"texts\":%zu,\"bytes\":%zu,\"tokens\":%zu,"
           "\"load_s\":%.3f,\"encode_mb_s_cold\":%.2f,\"encode_mb_s\":%.2f,\"decode_mb_s_cold\":%.2f,"
           "\"decode_mb_s\":%.2f}\n",
           argv[1], n, bytes, tokens, load_s, bytes / enc_first / 1e6, bytes / enc_best / 1e6,
           bytes / dec_first / 1e6, bytes / dec_best / 1e6);
    for (size_t i = 0; i < n; i++) {
        free(texts[i]);
        free(ids[i]);
    }
    free(texts);
    free(lens);
    free(ids);
    free(nids);
    free(out);
    tok_destroy(tok);
    return 0;
}
