/* test_engine.c - the batched generation engine (common/engine.h) on a tiny random model with the
 * byte tokenizer:
 *  - greedy decoding reproduces, step by step, the argmax of full-forward logits, and the
 *    reported log-probs are those of the full forward;
 *  - a sample's tokens are the same alone and inside a batch of 64 mixed prompts;
 *  - prefix sharing (copying a sibling's prompt KV) changes no output, also when the sample that
 *    prefilled the prompt finishes first and later samples read its held slot;
 *  - sampled first-token frequencies match the computed distribution (chi-square);
 *  - top-k / top-p keep exactly the tokens they should;
 *  - stop strings split across tokens are caught; EOS and length finish reasons;
 *  - a KV budget smaller than the batch makes samples wait, not fail;
 *  - bad requests are refused with a message naming the problem.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/engine.h"
#include "common/model.h"
#include "common/model_init.h"
#include "common/sampler.h"
#include "common/tokenizer.h"
#include "common/util.h"
#include "test.h"

#define MAXC 4096

struct got {
    int n;
    int32_t ids[MAXC][48];
    float lps[MAXC][48];
    int len[MAXC];
    char text[MAXC][256];
    char finish[MAXC][8];
    int req[MAXC], sample[MAXC];
};

static struct got G;

static int collect(void *user, const struct dsm_completion *c) {
    (void)user;
    if (G.n >= MAXC) return 1;
    int i = G.n++;
    G.req[i] = c->request, G.sample[i] = c->sample, G.len[i] = c->n_ids;
    for (int t = 0; t < c->n_ids && t < 48; t++) G.ids[i][t] = c->ids[t], G.lps[i][t] = c->logprobs[t];
    snprintf(G.text[i], sizeof G.text[i], "%s", c->text ? c->text : "");
    snprintf(G.finish[i], sizeof G.finish[i], "%s", c->finish_reason);
    return 0;
}

/* Index in G of (request r, sample s), or -1. */
static int find(int r, int s) {
    for (int i = 0; i < G.n; i++)
        if (G.req[i] == r && G.sample[i] == s) return i;
    return -1;
}

static struct dsm_gen_settings settings(float temp, int max_tokens, uint64_t seed) {
    struct dsm_gen_settings s = {temp, 0, 1.0f, max_tokens, seed, NULL, 0, 1};
    return s;
}

/* The KV dtype of the engines the tests below create themselves (the sharing tests run twice). */
static enum dsm_dtype g_kvdt = DSM_DT_F32;

static int run(struct dsm_engine *e, const struct dsm_gen_request *r, int n, struct dsm_err *err) {
    G.n = 0;
    return dsm_engine_run(e, r, n, collect, NULL, err);
}

/* The last run's first completion (greedy, 24 tokens after prompt) against a full forward over
 * prompt + generated: *bad argmax mismatches, the largest log-prob error, and the first token's. */
static void against_forward(struct dsm_model *m, const int32_t *prompt, int np, int *bad, double *lp_err,
                            double *first_err) {
    struct dsm_err err = {0};
    int V = dsm_model_config(m)->vocab_size, T = np + 24;
    int32_t all[64];
    memcpy(all, prompt, sizeof(int32_t) * (size_t)np);
    memcpy(all + np, G.ids[0], sizeof(int32_t) * 24);
    float *lg = malloc(sizeof(float) * (size_t)T * V);
    CHECK_OK(dsm_model_logits(m, all, T, lg, &err), &err);
    *bad = 0, *lp_err = 0, *first_err = 0;
    for (int t = 0; t < 24; t++) {
        const float *row = lg + (size_t)(np + t - 1) * V;
        int best = 0;
        double sum = 0;
        for (int i = 1; i < V; i++)
            if (row[i] > row[best]) best = i;
        for (int i = 0; i < V; i++) sum += exp(row[i] - row[best]);
        *bad += best != G.ids[0][t];
        double d = fabs(row[G.ids[0][t]] - row[best] - log(sum) - G.lps[0][t]);
        if (t == 0) *first_err = d;
        *lp_err = fmax(*lp_err, d);
    }
    free(lg);
}

static void test_greedy_matches_forward(struct dsm_model *m, struct dsm_engine *e) {
    struct dsm_err err = {0};
    int32_t prompt[] = {256, 49, 50, 32, 43, 32, 51, 48, 32, 61};
    struct dsm_gen_request r = {prompt, 10, 1, settings(0.0f, 24, 0)};
    CHECK_OK(run(e, &r, 1, &err), &err);
    CHECK(G.n == 1 && G.len[0] == 24 && !strcmp(G.finish[0], "length"));
    /* full forward over prompt + generated: argmax at position p-1 is token p */
    int bad;
    double lp_err, first_err;
    against_forward(m, prompt, 10, &bad, &lp_err, &first_err);
    CHECK_MSG(bad == 0, "%d greedy tokens differ from the full-forward argmax", bad);
    CHECK_MSG(lp_err < 1e-4, "log-prob error %g", lp_err);
}

/* An f16 KV pool: greedy log-probs close to (not equal to) the f32 full forward's for the same
 * tokens, half the pool bytes, and a dtype it cannot keep refused by name. */
static void test_f16_kv(struct dsm_model *m, struct dsm_engine *e32, struct dsm_engine *e16) {
    struct dsm_err err = {0};
    int32_t prompt[] = {256, 49, 50, 32, 43, 32, 51, 48, 32, 61};
    struct dsm_gen_request r = {prompt, 10, 1, settings(0.0f, 24, 0)};
    CHECK_OK(run(e32, &r, 1, &err), &err);
    size_t b32 = dsm_engine_stats(e32)->kv_bytes;
    CHECK_OK(run(e16, &r, 1, &err), &err);
    CHECK_MSG(dsm_engine_stats(e16)->kv_bytes * 2 == b32, "f16 pool %zu bytes, f32 pool %zu", dsm_engine_stats(e16)->kv_bytes, b32);
    CHECK(G.n == 1 && G.len[0] == 24);
    int bad;
    double lp_err, first_err;
    against_forward(m, prompt, 10, &bad, &lp_err, &first_err);
    fprintf(stderr, "f16 KV: greedy log-prob error against the f32 forward %.3g (first token %.3g), %d argmax differ\n",
            lp_err, first_err, bad);
    CHECK_MSG(first_err < 1e-4, "the first token comes from the f32 prefill, error %g", first_err);
    CHECK_MSG(lp_err > 1e-7 && lp_err < 1e-2, "f16 KV log-prob error %g, expected in (1e-7, 1e-2)", lp_err);
    struct dsm_engine *bad_e = NULL;
    struct dsm_engine_opts o = {.kv_dtype = DSM_DT_BF16};
    CHECK(dsm_engine_create(m, NULL, &o, &bad_e, &err) == DSM_EINVAL && bad_e == NULL && strstr(err.msg, "f16"));
}

/* 64 mixed prompts with various settings; then each sample again alone. */
static void test_batch_independence(struct dsm_engine *e) {
    struct dsm_err err = {0};
    static int32_t prompts[64][20];
    struct dsm_gen_request r[64];
    for (int i = 0; i < 64; i++) {
        int len = 3 + i % 17;
        prompts[i][0] = 256;
        for (int t = 1; t < len; t++) prompts[i][t] = (i * 31 + t * 7) % 256;
        r[i] = (struct dsm_gen_request){prompts[i], len, 1 + (i % 3 == 0), settings(i % 4 == 0 ? 0.0f : 0.8f, 8 + i % 9, 1000 + (uint64_t)i)};
        r[i].s.top_k = i % 5 == 1 ? 12 : 0;
        r[i].s.top_p = i % 5 == 2 ? 0.9f : 1.0f;
    }
    CHECK_OK(run(e, r, 64, &err), &err);
    int total = 0;
    for (int i = 0; i < 64; i++) total += r[i].n;
    CHECK(G.n == total);
    static struct got batch;
    memcpy(&batch, &G, sizeof G);
    int differ = 0;
    for (int i = 0; i < 64; i++)
        for (int s = 0; s < r[i].n; s++) {
            struct dsm_gen_request one = r[i];
            one.n = 1;
            one.s.seed = r[i].s.seed + (uint64_t)s; /* sample s of a request uses seed + s */
            CHECK_OK(run(e, &one, 1, &err), &err);
            int b = -1;
            for (int k = 0; k < batch.n; k++)
                if (batch.req[k] == i && batch.sample[k] == s) b = k;
            if (b < 0 || G.len[0] != batch.len[b] || memcmp(G.ids[0], batch.ids[b], sizeof(int32_t) * (size_t)G.len[0]))
                differ++;
        }
    CHECK_MSG(differ == 0, "%d samples differ between the batch of 64 prompts and running alone", differ);
}

/* How many of samples 0..n-1 of request 0 have other tokens in G than in ref. */
static int samples_differ(const struct got *ref, int n) {
    int differ = 0;
    for (int smp = 0; smp < n; smp++) {
        int a = -1, b = find(0, smp);
        for (int k = 0; k < ref->n; k++)
            if (ref->req[k] == 0 && ref->sample[k] == smp) a = k;
        if (a < 0 || b < 0 || ref->len[a] != G.len[b] || memcmp(ref->ids[a], G.ids[b], sizeof(int32_t) * (size_t)G.len[b]))
            differ++;
    }
    return differ;
}

static void test_prefix_sharing(struct dsm_model *m, struct dsm_engine *e) {
    struct dsm_err err = {0};
    int32_t prompt[40];
    for (int t = 0; t < 40; t++) prompt[t] = t ? (t * 13) % 256 : 256;
    struct dsm_gen_request r = {prompt, 40, 8, settings(1.0f, 16, 77)};
    CHECK_OK(run(e, &r, 1, &err), &err);
    const struct dsm_engine_stats *st = dsm_engine_stats(e);
    CHECK_MSG(st->prefills == 1 && st->kv_shared == 7, "shared run: %ld prefills, %ld sharing", st->prefills, st->kv_shared);
    static struct got shared;
    memcpy(&shared, &G, sizeof G);
    /* one slot at a time: no sibling is ever live, so every sample prefills its own prompt */
    struct dsm_engine *solo = NULL;
    struct dsm_engine_opts o = {.max_batch = 1, .kv_dtype = g_kvdt};
    CHECK_OK(dsm_engine_create(m, NULL, &o, &solo, &err), &err);
    G.n = 0;
    CHECK_OK(dsm_engine_run(solo, &r, 1, collect, NULL, &err), &err);
    CHECK_MSG(dsm_engine_stats(solo)->prefills == 8, "solo run: %ld prefills", dsm_engine_stats(solo)->prefills);
    int differ = samples_differ(&shared, 8);
    CHECK_MSG(differ == 0, "%d samples differ between shared and recomputed prompt KV", differ);
    dsm_engine_destroy(solo);
}

/* The prompt's owner (the sample that prefilled it) finishes first while two siblings still read
 * its KV, and later samples of the prompt are admitted after that: the held slot keeps serving
 * them (one prefill in all) and every sample's tokens equal those of a one-at-a-time run.
 * Single-letter stop strings make the lengths vary; the seed is chosen (by the one-at-a-time run)
 * so that sample 0 is shorter than samples 1 and 2. */
static void test_held_prefix(struct dsm_model *m, const struct dsm_tokenizer *tok) {
    struct dsm_err err = {0};
    int32_t prompt[40];
    for (int t = 0; t < 40; t++) prompt[t] = t ? (t * 29) % 256 : 256;
    static const char *const stops[] = {"a", "e", "i", "o", "u", "s", "t", "n", "r", "l", " ", "m"};
    struct dsm_gen_request r = {prompt, 40, 7, settings(1.0f, 40, 0)};
    r.s.stop = stops, r.s.n_stop = (int)DSM_ARRAY_LEN(stops);
    struct dsm_engine *solo = NULL, *three = NULL;
    struct dsm_engine_opts o1 = {.max_batch = 1, .kv_dtype = g_kvdt}, o3 = {.max_batch = 3, .kv_dtype = g_kvdt};
    CHECK_OK(dsm_engine_create(m, tok, &o1, &solo, &err), &err);
    CHECK_OK(dsm_engine_create(m, tok, &o3, &three, &err), &err);
    if (!solo || !three) return;
    static struct got alone;
    int found = 0;
    for (uint64_t seed = 1; seed <= 300 && !found; seed++) {
        r.s.seed = seed;
        G.n = 0;
        CHECK_OK(dsm_engine_run(solo, &r, 1, collect, NULL, &err), &err);
        int l0 = G.len[find(0, 0)], l1 = G.len[find(0, 1)], l2 = G.len[find(0, 2)];
        if (l0 + 2 < l1 && l0 + 2 < l2) found = 1, memcpy(&alone, &G, sizeof G);
    }
    CHECK_MSG(found, "no seed in 1..300 makes sample 0 finish first");
    if (found) {
        long p0 = dsm_engine_stats(three)->prefills, s0 = dsm_engine_stats(three)->kv_shared;
        CHECK_OK(run(three, &r, 1, &err), &err);
        long prefills = dsm_engine_stats(three)->prefills - p0, shared = dsm_engine_stats(three)->kv_shared - s0;
        CHECK_MSG(prefills == 1 && shared == 6, "held prefix: %ld prefills, %ld sharing (want 1, 6)", prefills, shared);
        /* sample 0 finished before sample 3 was admitted: its completion came first */
        CHECK(G.n == 7 && G.sample[0] == 0);
        int differ = samples_differ(&alone, 7);
        CHECK_MSG(differ == 0, "%d of 7 samples differ when the prompt's owner finishes first (seed %llu)", differ,
                  (unsigned long long)r.s.seed);
        fprintf(stderr, "held prefix: seed %llu, lengths alone %d %d %d ..., %ld prefill, %ld sharing, %d differ\n",
                (unsigned long long)r.s.seed, alone.len[0], alone.len[1], alone.len[2], prefills, shared, differ);
    }
    dsm_engine_destroy(solo);
    dsm_engine_destroy(three);
}

/* Upper critical value of chi-square with df degrees of freedom at significance 0.001
 * (Wilson-Hilferty: z = 3.0902). */
static double chi2_crit(int df) {
    double z = 3.0902, h = 2.0 / (9.0 * df);
    return df * pow(1 - h + z * sqrt(h), 3);
}

/* Draw many first tokens and compare with the distribution the settings imply. */
static void test_distribution(struct dsm_model *m, struct dsm_engine *e, float temp, int top_k, float top_p) {
    struct dsm_err err = {0};
    int V = dsm_model_config(m)->vocab_size;
    int32_t prompt[] = {256, 72, 105};
    int N = MAXC;
    float *lg = malloc(sizeof(float) * V);
    CHECK_OK(dsm_model_logits(m, prompt, 1, lg, &err), &err); /* scratch to size; recomputed below */
    float *full = malloc(sizeof(float) * 3 * V);
    CHECK_OK(dsm_model_logits(m, prompt, 3, full, &err), &err);
    const float *row = full + 2 * V;
    /* expected distribution: softmax(row / temp) restricted to top-k and top-p, renormalised */
    double *p = malloc(sizeof(double) * V), mx = -INFINITY, z = 0;
    int *order = malloc(sizeof(int) * V);
    for (int i = 0; i < V; i++) mx = fmax(mx, row[i]);
    for (int i = 0; i < V; i++) z += p[i] = exp((row[i] - mx) / temp), order[i] = i;
    for (int i = 0; i < V; i++) p[i] /= z;
    for (int i = 0; i < V; i++) /* selection sort by probability, descending */
        for (int j = i + 1; j < V; j++)
            if (p[order[j]] > p[order[i]]) {
                int t = order[i];
                order[i] = order[j], order[j] = t;
            }
    int keep = top_k > 0 ? top_k : V;
    double acc = 0;
    for (int i = 0; i < keep; i++) {
        acc += p[order[i]];
        if (top_p < 1.0f && acc >= top_p) {
            keep = i + 1;
            break;
        }
    }
    double kept = 0;
    for (int i = 0; i < keep; i++) kept += p[order[i]];
    struct dsm_gen_request r = {prompt, 3, N, settings(temp, 1, 12345)};
    r.s.top_k = top_k, r.s.top_p = top_p;
    CHECK_OK(run(e, &r, 1, &err), &err);
    int *count = calloc((size_t)V, sizeof(int)), outside = 0;
    for (int i = 0; i < G.n; i++) count[G.ids[i][0]]++;
    int *in = calloc((size_t)V, sizeof(int));
    for (int i = 0; i < keep; i++) in[order[i]] = 1;
    for (int i = 0; i < V; i++) outside += !in[i] && count[i];
    CHECK_MSG(outside == 0, "T=%g k=%d p=%g: %d tokens drawn outside the kept set", temp, top_k, top_p, outside);
    /* chi-square over kept tokens, pooling bins with expected count < 5 */
    double chi = 0, pool_e = 0, pool_o = 0;
    int df = -1;
    for (int i = 0; i < keep; i++) {
        double ex = N * p[order[i]] / kept;
        if (ex < 5) {
            pool_e += ex, pool_o += count[order[i]];
            continue;
        }
        chi += (count[order[i]] - ex) * (count[order[i]] - ex) / ex, df++;
    }
    if (pool_e > 0) chi += (pool_o - pool_e) * (pool_o - pool_e) / pool_e, df++;
    if (df < 1) df = 1;
    fprintf(stderr, "distribution T=%g k=%d p=%g: %d kept tokens, chi2 = %.1f, df = %d, critical(0.001) = %.1f\n", temp,
            top_k, top_p, keep, chi, df, chi2_crit(df));
    CHECK_MSG(chi < chi2_crit(df), "chi2 %.1f >= %.1f", chi, chi2_crit(df));
    free(lg), free(full), free(p), free(order), free(count), free(in);
}

/* top-k and top-p on hand-made logits: the support is exactly the expected set. */
static void test_truncation_exact(void) {
    float logits[6] = {0.0f, 3.0f, 1.0f, 2.0f, -1.0f, 2.0f}; /* order: 1, 3 (tie with 5, lower id first), 5, 2, 0, 4 */
    float ps[6];
    int32_t idx[6];
    struct dsm_rng rng;
    dsm_rng_seed(&rng, 9);
    int seen[6] = {0};
    struct dsm_sampling k3 = {1.0f, 3, 1.0f};
    for (int i = 0; i < 4000; i++) seen[dsm_sample(logits, 6, &k3, &rng, ps, idx, NULL)]++;
    CHECK(seen[1] && seen[3] && seen[5] && !seen[0] && !seen[2] && !seen[4]);
    /* probabilities e^3, e^2, e^2, e^1, ... / Z: the top token alone has 0.53 of the mass;
     * top-p 0.5 keeps only it, top-p 0.6 keeps it and the next (id 3) */
    memset(seen, 0, sizeof seen);
    struct dsm_sampling p5 = {1.0f, 0, 0.5f};
    for (int i = 0; i < 2000; i++) seen[dsm_sample(logits, 6, &p5, &rng, ps, idx, NULL)]++;
    CHECK(seen[1] == 2000);
    memset(seen, 0, sizeof seen);
    struct dsm_sampling p6 = {1.0f, 0, 0.6f};
    for (int i = 0; i < 4000; i++) seen[dsm_sample(logits, 6, &p6, &rng, ps, idx, NULL)]++;
    CHECK(seen[1] && seen[3] && !seen[5] && !seen[2] && !seen[0] && !seen[4]);
    /* greedy: the argmax, log-prob of the untempered distribution */
    struct dsm_sampling g = {0.0f, 0, 1.0f};
    float lp;
    CHECK(dsm_sample(logits, 6, &g, &rng, ps, idx, &lp) == 1);
    double z = 0;
    for (int i = 0; i < 6; i++) z += exp(logits[i] - 3.0);
    CHECK_NEAR(lp, -log(z), 1e-6);
}

/* dsm_sample_keep (which sorts only the tokens above a lowered threshold) against sorting the
 * whole vocabulary: the same ids in the same order, on peaked, flat, tied and underflowing
 * distributions over 32000 tokens. */
static const float *g_keep_p;
static int keep_ref_cmp(const void *a, const void *b) {
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (g_keep_p[i] != g_keep_p[j]) return g_keep_p[i] > g_keep_p[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

static int keep_ref(const float *p, int V, double tsum, int top_k, float top_p, int32_t *idx) {
    for (int i = 0; i < V; i++) idx[i] = i;
    g_keep_p = p;
    qsort(idx, (size_t)V, sizeof *idx, keep_ref_cmp);
    int n = top_k > 0 && top_k < V ? top_k : V;
    if (top_p > 0.0f && top_p < 1.0f) {
        double acc = 0.0;
        for (int i = 0; i < n; i++) {
            acc += p[idx[i]] / tsum;
            if (acc >= top_p) return i + 1;
        }
    }
    return n;
}

static void test_keep_large_vocab(void) {
    enum { V = 32000 };
    float *p = malloc(sizeof(float) * V);
    int32_t *a = malloc(sizeof(int32_t) * V), *b = malloc(sizeof(int32_t) * V);
    struct dsm_rng rng;
    dsm_rng_seed(&rng, 5);
    struct { int k; float p; } set[] = {{40, 1.0f}, {0, 0.9f}, {50, 0.95f}, {0, 0.999f}, {1, 1.0f}, {0, 0.5f}, {V - 1, 0.99f}};
    int cases = 0, mismatches = 0, big = 0, lowered = 0;
    for (int shape = 0; shape < 6; shape++) {
        double tsum = 0.0;
        for (int i = 0; i < V; i++) {
            double u = dsm_rng_uniform(&rng), x;
            switch (shape) {
            case 0: x = 12.0 * u; break;                      /* peaked: a few tokens dominate */
            case 1: x = 0.01 * u; break;                      /* nearly flat: the nucleus is most of V */
            case 2: x = (double)(int)(4 * u); break;          /* four levels: long runs of ties */
            case 3: x = i < 100 ? 0.0 : -200.0 + u; break;    /* the tail underflows to 0 */
            case 4: x = 40.0 * u; break;                      /* spread over many thresholds */
            default: x = i == 7 ? 40.0 : 30.0 - u; break;     /* one token above a flat rest */
            }
            p[i] = (float)exp(x - 40.0);
            tsum += p[i];
        }
        for (size_t c = 0; c < sizeof set / sizeof set[0]; c++) {
            int n1 = dsm_sample_keep(p, V, tsum, set[c].k, set[c].p, a);
            int n2 = keep_ref(p, V, tsum, set[c].k, set[c].p, b);
            cases++;
            if (n1 != n2 || memcmp(a, b, sizeof(int32_t) * (size_t)n1) != 0) {
                mismatches++;
                fprintf(stderr, "keep: shape %d k=%d p=%g: %d kept, brute force %d\n", shape, set[c].k, set[c].p, n1, n2);
            }
            big += n2 > 1000;
            lowered += shape == 5 && n2 > 1; /* beyond the first threshold's single candidate */
        }
    }
    CHECK_MSG(mismatches == 0, "%d of %d truncations differ from sorting the whole vocabulary", mismatches, cases);
    CHECK_MSG(lowered >= 3, "only %d cases needed tokens below the first threshold", lowered);
    CHECK_MSG(big >= 2, "only %d cases kept more than 1000 tokens: the lowered threshold went untested", big);
    /* both off: every id, in id order */
    CHECK(dsm_sample_keep(p, V, 1.0, 0, 1.0f, a) == V && a[0] == 0 && a[V - 1] == V - 1);
    free(p), free(a), free(b);
}

static void test_stop_and_eos(struct dsm_engine *e) {
    struct dsm_err err = {0};
    int32_t prompt[] = {256, 83, 104, 111, 119};
    struct dsm_gen_request r = {prompt, 5, 1, settings(0.0f, 40, 0)};
    CHECK_OK(run(e, &r, 1, &err), &err);
    /* choose a stop string from the middle of the greedy text: it spans several byte tokens */
    const char *full = G.text[0];
    size_t flen = strlen(full);
    int start = -1;
    for (size_t i = 4; i + 3 < flen && start < 0; i++)
        if ((unsigned char)full[i] < 0x80 && (unsigned char)full[i + 1] < 0x80 && (unsigned char)full[i + 2] < 0x80 &&
            full[i] && full[i + 1] && full[i + 2])
            start = (int)i;
    CHECK_MSG(start >= 0, "no run of three ASCII bytes in the greedy text '%s' to build a stop string from", full);
    if (start < 0) return;
    char stop[4] = {full[start], full[start + 1], full[start + 2], 0};
    const char *stops[] = {"\x01\x02never", stop};
    const char *first = strstr(full, stop);
    r.s.stop = stops, r.s.n_stop = 2;
    CHECK_OK(run(e, &r, 1, &err), &err);
    CHECK(!strcmp(G.finish[0], "stop"));
    CHECK_MSG(strlen(G.text[0]) == (size_t)(first - full) && !strncmp(G.text[0], full, (size_t)(first - full)),
              "stop '%s': text '%s' should be the first %d bytes of '%s'", stop, G.text[0], (int)(first - full), full);
    /* EOS: with EOS allowed, a greedy run that samples EOS stops there and keeps the EOS id */
    r.s.stop = NULL, r.s.n_stop = 0, r.s.ignore_eos = 0, r.s.temperature = 1.0f, r.n = 200, r.s.max_tokens = 40;
    CHECK_OK(run(e, &r, 1, &err), &err);
    int eos_seen = 0, ok = 1;
    for (int i = 0; i < G.n; i++) {
        int last = G.ids[i][G.len[i] - 1];
        if (!strcmp(G.finish[i], "stop")) eos_seen++, ok &= last == TOK_BYTE_EOS;
        else ok &= G.len[i] == 40;
        for (int t = 0; t < G.len[i] - 1; t++) ok &= G.ids[i][t] != TOK_BYTE_EOS;
    }
    CHECK(ok);
    fprintf(stderr, "EOS ended %d of %d samples\n", eos_seen, G.n);
}

static void test_budget_and_errors(struct dsm_model *m) {
    struct dsm_err err = {0};
    const struct dsm_model_config *c = dsm_model_config(m);
    size_t per_token = 2u * c->n_layers * c->n_kv_heads * c->head_dim * sizeof(float);
    int32_t prompt[] = {256, 1, 2};
    struct dsm_gen_request r = {prompt, 3, 6, settings(1.0f, 10, 4)};
    /* room for exactly two sequences of 13 tokens */
    struct dsm_engine_opts o = {.max_batch = 64, .kv_budget_bytes = 2 * 13 * per_token + 100};
    struct dsm_engine *e = NULL;
    CHECK_OK(dsm_engine_create(m, NULL, &o, &e, &err), &err);
    G.n = 0;
    CHECK_OK(dsm_engine_run(e, &r, 1, collect, NULL, &err), &err);
    CHECK(G.n == 6 && dsm_engine_stats(e)->slots == 2 && dsm_engine_stats(e)->peak_live <= 2);
    o.kv_budget_bytes = 12 * per_token; /* less than one sequence */
    dsm_engine_destroy(e);
    CHECK_OK(dsm_engine_create(m, NULL, &o, &e, &err), &err);
    CHECK(dsm_engine_run(e, &r, 1, collect, NULL, &err) == DSM_EINVAL && strstr(err.msg, "KV budget"));
    struct dsm_gen_request b = r;
    b.n = 0;
    CHECK(dsm_engine_run(e, &b, 1, collect, NULL, &err) == DSM_EINVAL && strstr(err.msg, "n = 0"));
    b = r, b.s.temperature = -0.5f;
    CHECK(dsm_engine_run(e, &b, 1, collect, NULL, &err) == DSM_EINVAL && strstr(err.msg, "temperature"));
    b = r, b.s.top_p = 0.0f;
    CHECK(dsm_engine_run(e, &b, 1, collect, NULL, &err) == DSM_EINVAL && strstr(err.msg, "top_p"));
    b = r, b.s.top_p = 1.5f;
    CHECK(dsm_engine_run(e, &b, 1, collect, NULL, &err) == DSM_EINVAL && strstr(err.msg, "top_p"));
    b = r, b.s.max_tokens = 100000;
    CHECK(dsm_engine_run(e, &b, 1, collect, NULL, &err) == DSM_EINVAL && strstr(err.msg, "exceeds the context"));
    int32_t badp[] = {256, 999};
    b = r, b.prompt = badp, b.n_prompt = 2;
    CHECK(dsm_engine_run(e, &b, 1, collect, NULL, &err) == DSM_EINVAL && strstr(err.msg, "id 999"));
    const char *stops[] = {"x"};
    b = r, b.s.stop = stops, b.s.n_stop = 1; /* this engine has no tokenizer */
    CHECK(dsm_engine_run(e, &b, 1, collect, NULL, &err) == DSM_EINVAL && strstr(err.msg, "tokenizer"));
    dsm_engine_destroy(e);
}

int main(void) {
    char dir[] = "/tmp/dsm-test-engine-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    struct dsm_err err = {0};
    struct dsm_model_config cfg;
    CHECK_OK(dsm_preset_config("tiny", DSM_ARCH_QWEN2, &cfg, &err), &err);
    cfg.n_layers = 2;
    CHECK_OK(dsm_model_init_random(&cfg, dir, DSM_DT_F32, 3, &err), &err);
    CHECK_OK(tok_byte_write(dir, &err), &err);
    /* a random model with std 0.02 is nearly uniform: the distribution tests use low temperatures
     * so that the sampled distributions are far from uniform */
    struct dsm_backend *be = NULL;
    struct dsm_model *m = NULL;
    struct dsm_tokenizer *tok = NULL;
    struct dsm_engine *e = NULL;
    struct dsm_model_opts mo = {.max_seq = 256};
    CHECK_OK(dsm_backend_open("cpu", 2, &be, &err), &err);
    CHECK_OK(dsm_model_load(dir, be, &mo, &m, &err), &err);
    CHECK_OK(tok_load_dir(dir, &tok, &err), &err);
    CHECK_OK(dsm_engine_create(m, tok, NULL, &e, &err), &err);
    if (test_failures) return test_main_end();
    test_greedy_matches_forward(m, e);
    test_batch_independence(e);
    test_prefix_sharing(m, e);
    test_held_prefix(m, tok);
    test_distribution(m, e, 0.05f, 0, 1.0f);
    test_distribution(m, e, 0.03f, 20, 0.9f);
    test_truncation_exact();
    test_keep_large_vocab();
    {
        /* the sharing and batch guarantees hold for a 16-bit KV pool too */
        struct dsm_engine *e16 = NULL;
        struct dsm_engine_opts o16 = {.kv_dtype = DSM_DT_F16};
        CHECK_OK(dsm_engine_create(m, tok, &o16, &e16, &err), &err);
        if (e16) {
            test_f16_kv(m, e, e16);
            g_kvdt = DSM_DT_F16;
            test_batch_independence(e16);
            test_prefix_sharing(m, e16);
            test_held_prefix(m, tok);
            g_kvdt = DSM_DT_F32;
            dsm_engine_destroy(e16);
        }
    }
    test_stop_and_eos(e);
    test_budget_and_errors(m);
    dsm_engine_destroy(e);
    tok_destroy(tok);
    dsm_model_destroy(m);
    dsm_backend_destroy(be);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_main_end();
}
