/* test_synth_fuzz.c - the synthetic domain's checkers on hostile input (run under ASan/UBSan in
 * the test build): random bytes, mutations of valid proofs and analyses, huge inputs, random
 * problem texts, random parsed problems with large and negative values. Every verdict must be
 * well formed (score in {0, 0.5, 1} matching its defect's kind, line numbers in range),
 * deterministic, and fast on huge inputs. Seeded: a failure reproduces. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/synth.h"
#include "common/util.h"
#include "test.h"

static uint64_t rs = 0x243f6a8885a308d3ULL;
static uint64_t rnd(void) {
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}
static int rn(int n) { return (int)(rnd() % (uint64_t)n); }

static int verdict_ok(const struct synth_verdict *v) {
    if (v->score != 0 && v->score != 0.5 && v->score != 1) return 0;
    if (v->n_rec < 0 || v->n_rec > SYNTH_MAX_RECS) return 0;
    if (v->score == 1 && (v->defect != SYNTH_DEFECT_NONE || v->line != 0)) return 0;
    if (v->score == 0.5 && (v->defect != SYNTH_DEFECT_SKIPPED && v->defect != SYNTH_DEFECT_MERGED)) return 0;
    if (v->score == 0 && !synth_defect_is_fatal(v->defect)) return 0;
    if (v->defect != SYNTH_DEFECT_NONE && (v->line < 1 || v->line > v->n_lines + 1)) return 0;
    for (int i = 0; i < v->n_rec; i++)
        if (v->rec[i].defect < 0 || v->rec[i].defect >= SYNTH_DEFECT_COUNT_) return 0;
    return 1;
}

/* Check text twice (determinism) and check the verdict's shape; 1 when fine. */
static int check_text(const struct synth_problem *p, const char *text, size_t len, struct synth_verdict *v) {
    struct synth_verdict w;
    synth_check(p, text, len, v);
    synth_check(p, text, len, &w);
    if (memcmp(v, &w, sizeof w)) return 0;
    if (!verdict_ok(v)) return 0;
    /* a full score means exactly one line per operation plus the conclusion */
    if (v->score == 1 && v->n_lines != p->n_ops + 1) return 0;
    return 1;
}

static void mutate(char *buf, size_t *len, size_t cap) {
    static const char alphabet[] = "0123456789 +-=\n.So,\r\t\x00\xff";
    int kind = rn(7);
    size_t n = *len;
    if (n == 0) kind = 1;
    size_t at = n ? (size_t)rn((int)n) : 0;
    switch (kind) {
    case 0: buf[at] = alphabet[rn((int)sizeof alphabet - 1)]; break;         /* replace */
    case 1:                                                                  /* insert */
        if (n + 1 < cap) {
            memmove(buf + at + 1, buf + at, n - at);
            buf[at] = alphabet[rn((int)sizeof alphabet - 1)];
            n++;
        }
        break;
    case 2: memmove(buf + at, buf + at + 1, n - at - 1), n--; break;          /* delete */
    case 3: n = at; break;                                                   /* truncate */
    case 4: buf[at] = (char)('0' + (buf[at] - '0' + 1 + rn(8)) % 10); break; /* a digit */
    case 5: {                                                                /* duplicate a span */
        size_t m = (size_t)rn(20);
        if (at + m > n) m = n - at;
        if (n + m < cap) {
            memmove(buf + n, buf + at, m);
            n += m;
        }
        break;
    }
    default: buf[at] = (char)rnd(); break; /* any byte */
    }
    *len = n;
}

static void test_random_bytes(void) {
    struct synth_problem p;
    struct dsm_err err = {0};
    char buf[700];
    int bad = 0, scored[3] = {0};
    for (int it = 0; it < 100000; it++) {
        synth_problem_generate(9, (uint64_t)it, 1 + it % 5, &p, &err);
        size_t n = (size_t)rn((int)sizeof buf);
        int structured = it & 1;
        for (size_t i = 0; i < n; i++) {
            if (!structured) buf[i] = (char)rnd();
            else buf[i] = "0123456789 +-=\nSo."[rn(18)];
        }
        struct synth_verdict v;
        if (!check_text(&p, buf, n, &v)) bad++;
        scored[(int)(v.score * 2)]++;
        struct synth_analysis_verdict av;
        synth_analysis_check(&v, buf, n, &av);
        if (av.format_ok || av.ms != 0 || av.right) bad++;
        synth_problem_parse(buf, n, &p, &err);
    }
    CHECK(bad == 0);
    fprintf(stderr, "random bytes: 100000 texts, %d bad verdicts (scores 0/0.5/1: %d/%d/%d)\n", bad, scored[0],
            scored[1], scored[2]);
}

static void test_mutations(void) {
    struct synth_problem p;
    struct dsm_err err = {0};
    char proof[SYNTH_TEXT_CAP], an[SYNTH_TEXT_CAP], buf[SYNTH_TEXT_CAP * 2];
    int bad = 0, n_items = 0, changed = 0, still_full = 0;
    for (int it = 0; it < 50000; it++) {
        synth_problem_generate(11, (uint64_t)it, 1 + it % 5, &p, &err);
        enum synth_plant k = (enum synth_plant)(it % SYNTH_PLANT_COUNT_);
        int len = synth_proof_write(&p, k, (uint64_t)it, proof, sizeof proof, NULL);
        struct synth_verdict v0, v;
        synth_check(&p, proof, (size_t)len, &v0);
        int alen = synth_analysis_write(&p, &v0, (enum synth_aflaw)(it % SYNTH_AFLAW_COUNT_), (uint64_t)it, an,
                                        sizeof an, NULL);
        if (alen < 0) alen = synth_analysis_write(&p, &v0, SYNTH_AFLAW_NONE, 0, an, sizeof an, NULL);
        /* the proof, mutated 1..4 times */
        size_t n = (size_t)len;
        memcpy(buf, proof, n);
        int m = 1 + rn(4);
        for (int j = 0; j < m; j++) mutate(buf, &n, sizeof buf);
        if (!check_text(&p, buf, n, &v)) bad++;
        n_items++;
        if (v.score != v0.score) changed++;
        if (v.score == 1) still_full++;
        /* the analysis, mutated, judged against both verdicts */
        size_t an_n = (size_t)alen;
        memcpy(buf, an, an_n);
        m = 1 + rn(4);
        for (int j = 0; j < m; j++) mutate(buf, &an_n, sizeof buf);
        struct synth_analysis_verdict av;
        synth_analysis_check(&v, buf, an_n, &av);
        if (av.ms != 0 && av.ms != 0.5 && av.ms != 1) bad++;
        if (av.right != (av.ms == 1) || (!av.format_ok && av.ms != 0)) bad++;
        if (av.n_false > av.n_flagged) bad++;
        char meta[SYNTH_TEXT_CAP];
        if (synth_meta_write(&p, &v, &av, meta, sizeof meta) <= 0) bad++;
        /* writers on the mutated proof's verdict */
        for (int f = 0; f < SYNTH_AFLAW_COUNT_; f++) {
            int r = synth_analysis_write(&p, &v, (enum synth_aflaw)f, (uint64_t)it, an, sizeof an, NULL);
            if (r == -1) bad++;
            if (r > 0) {
                synth_analysis_check(&v, an, (size_t)r, &av);
                double want = f == SYNTH_AFLAW_NONE ? 1 : f <= SYNTH_AFLAW_MISSED ? 0 : 0.5;
                if (!av.format_ok || av.ms != want) {
                    bad++;
                    if (bad < 5) fprintf(stderr, "flaw %d on mutated proof:\n%.*s\n---\n%s\n", f, (int)n, buf, an);
                }
            }
        }
    }
    CHECK(bad == 0);
    fprintf(stderr, "mutations: %d proofs and analyses, %d bad; %d changed score, %d still score 1\n", n_items, bad,
            changed, still_full);
}

static void test_huge(void) {
    struct synth_problem p;
    struct dsm_err err = {0};
    synth_problem_generate(1, 1, 3, &p, &err);
    size_t big = 8u << 20;
    char *buf = malloc(big + 1);
    CHECK(buf != NULL);
    if (!buf) return;
    char proof[SYNTH_TEXT_CAP];
    int len = synth_proof_write(&p, SYNTH_PLANT_NONE, 1, proof, sizeof proof, NULL);
    struct synth_verdict v;
    struct synth_analysis_verdict av;
    double t0 = dsm_now();
    /* 8 MB of blank lines, then a valid proof: everything is read, the proof still scores 1 */
    memset(buf, ' ', big);
    for (size_t i = 0; i < big; i += 64) buf[i] = '\n';
    memcpy(buf + big - (size_t)len, proof, (size_t)len);
    CHECK(check_text(&p, buf, big, &v) && v.score == 1);
    /* one 8 MB line of digits */
    memset(buf, '7', big);
    CHECK(check_text(&p, buf, big, &v) && v.defect == SYNTH_DEFECT_UNPARSABLE);
    /* 8 MB of repeated steps: the walk stops at the first off-chain line */
    for (size_t i = 0; i + 10 <= big; i += 10) memcpy(buf + i, "1 + 1 = 2\n", 10);
    CHECK(check_text(&p, buf, big, &v) && v.score == 0 && v.line == 1);
    /* an 8 MB analysis of flagged lines and false equations */
    for (size_t i = 0; i + 20 <= big; i += 20) memcpy(buf + i, "Line 2: 1+1=3 Wrong\n", 20);
    static const char head[] = "Here is my evaluation of the solution:\n";
    static const char tail[] = "\nBased on my evaluation, the final overall score should be:\n\\boxed{0}";
    memcpy(buf, head, sizeof head - 1);
    memcpy(buf + big - (sizeof tail - 1), tail, sizeof tail - 1);
    synth_analysis_check(&v, buf, big, &av);
    CHECK(av.format_ok && av.n_flagged > 400000 && av.n_expr_errors > 400000 && av.ms == 0);
    /* digits separated by huge blank runs (the equation scan must stay linear) */
    memset(buf, ' ', big);
    for (size_t i = 0; i < big; i += 4096) buf[i] = (char)('1' + (i / 4096) % 9);
    memcpy(buf, head, sizeof head - 1);
    memcpy(buf + big - (sizeof tail - 1), tail, sizeof tail - 1);
    synth_analysis_check(&v, buf, big, &av);
    CHECK(av.format_ok && av.n_expr_errors == 0);
    buf[big] = 0;
    CHECK(synth_problem_parse(buf, big, &p, &err) == DSM_EINVAL);
    double dt = dsm_now() - t0;
    fprintf(stderr, "huge inputs: 6 texts of 8 MiB in %.2f s\n", dt);
    CHECK(dt < 30);
    free(buf);
}

/* Random problems typed by a user: 1..8 operations, up to 12 digits, negative values allowed. */
static void test_parsed_problems(void) {
    struct dsm_err err = {0};
    char text[512], proof[SYNTH_TEXT_CAP];
    int items = 0, agree = 0;
    for (int it = 0; it < 5000; it++) {
        int n = 1 + rn(SYNTH_MAX_OPS), d = 1 + rn(12);
        long long lim = 1;
        for (int j = 0; j < d; j++) lim *= 10;
        int len = snprintf(text, sizeof text, "Show that %lld", (long long)(rnd() % (uint64_t)lim));
        long long v = 0;
        for (int j = 0; j < n; j++)
            len += snprintf(text + len, sizeof text - (size_t)len, " %c %lld", rn(2) ? '+' : '-',
                            1 + (long long)(rnd() % (uint64_t)lim));
        struct synth_problem p;
        /* the claim: the true value (parse once to compute it) */
        len += snprintf(text + len, sizeof text - (size_t)len, " = 0.");
        if (synth_problem_parse(text, (size_t)len, &p, &err) != DSM_OK) {
            CHECK_MSG(0, "parse '%s': %s", text, err.msg);
            continue;
        }
        v = synth_problem_value(&p, p.n_ops);
        p.claim = v;
        int distinct = 1;
        for (int a = 0; a <= p.n_ops; a++)
            for (int b = 0; b < a; b++)
                if (synth_problem_value(&p, a) == synth_problem_value(&p, b)) distinct = 0;
        if (!distinct) continue;
        for (int k = 0; k < SYNTH_PLANT_COUNT_; k++) {
            enum synth_plant planted;
            int pl = synth_proof_write(&p, (enum synth_plant)k, (uint64_t)it, proof, sizeof proof, &planted);
            struct synth_verdict vd;
            CHECK(pl > 0 && check_text(&p, proof, (size_t)pl, &vd));
            items++;
            int ok = vd.score == synth_plant_score(planted);
            agree += ok;
            CHECK_MSG(ok, "plant %s: %g %s\n%s", synth_plant_name(planted), vd.score, synth_defect_name(vd.defect),
                      proof);
        }
    }
    fprintf(stderr, "parsed problems (1-8 ops, up to 12 digits, signs): %d/%d planted scores agree\n", agree, items);
    CHECK(items > 20000 && agree == items);
}

int main(void) {
    test_random_bytes();
    test_mutations();
    test_huge();
    test_parsed_problems();
    return test_main_end();
}
