/* test_synth.c - the synthetic proof domain: golden proofs of every defect kind, agreement between
 * the writers and the checkers over thousands of seeded items (every planted error and every
 * analysis flaw gets its intended score), every output read back with the role parsers
 * (ver_parse, mver_parse, gen_parse: SPEC §2's markers, </think> and box rules), the judge of
 * analyses on hand-written cases, prompts equal to the role libraries' builders given the synth
 * templates, determinism of problems and SFT records. Prints the agreement counts it measured. */
#include <jansson.h>
#include <string.h>

#include "common/role.h"
#include "common/synth.h"
#include "generator/generator.h"
#include "metaverifier/metaverifier.h"
#include "test.h"
#include "verifier/verifier.h"

static struct synth_problem parse_ok(const char *text) {
    struct synth_problem p;
    struct dsm_err err = {0};
    memset(&p, 0, sizeof p);
    CHECK_OK(synth_problem_parse(text, strlen(text), &p, &err), &err);
    return p;
}

static void expect_check(const char *problem, const char *proof, double score, enum synth_defect d, int line) {
    struct synth_problem p = parse_ok(problem);
    struct synth_verdict v;
    synth_check(&p, proof, strlen(proof), &v);
    CHECK_MSG(v.score == score && v.defect == d && v.line == line,
              "%s | %s: got score %g %s line %d, want %g %s line %d", problem, proof, v.score,
              synth_defect_name(v.defect), v.line, score, synth_defect_name(d), line);
}

static void test_golden(void) {
    const char *P = "Show that 37 + 48 - 19 = 66.";
    expect_check(P, "37 + 48 = 85\n85 - 19 = 66\nSo 37 + 48 - 19 = 66.\n", 1, SYNTH_DEFECT_NONE, 0);
    expect_check(P, "  37+48=85 \r\n\n85 -19= 66.\r\nHence, 37 + 48 - 19 = 66\n\n", 1, SYNTH_DEFECT_NONE, 0);
    expect_check(P, "37 + 48 = 85\n85 - 19 = 66\ntherefore 37 + 48 - 19 = 66", 1, SYNTH_DEFECT_NONE, 0);
    /* wrong steps */
    expect_check(P, "37 + 48 = 85\n85 - 19 = 67\nSo 37 + 48 - 19 = 66.\n", 0, SYNTH_DEFECT_ARITH, 2);
    expect_check(P, "37 + 48 = 86\n86 - 19 = 67\nSo 37 + 48 - 19 = 66.\n", 0, SYNTH_DEFECT_ARITH, 1);
    expect_check(P, "37 + 49 = 86\n86 - 19 = 67\nSo 37 + 48 - 19 = 66.\n", 0, SYNTH_DEFECT_OFF_CHAIN, 1);
    expect_check(P, "37 - 48 = -11\n", 0, SYNTH_DEFECT_OFF_CHAIN, 1);
    expect_check(P, "37 + 48 = 85\n80 - 19 = 61\n", 0, SYNTH_DEFECT_OFF_CHAIN, 2);
    expect_check(P, "37 + 48 = 85\n85 - 19 = 66\n66 + 0 = 66\nSo 37 + 48 - 19 = 66.\n", 0,
                 SYNTH_DEFECT_OFF_CHAIN, 3);
    /* omissions: one costs half, more cost all */
    expect_check(P, "37 + 48 = 85\nSo 37 + 48 - 19 = 66.\n", 0.5, SYNTH_DEFECT_SKIPPED, 2);
    expect_check(P, "85 - 19 = 66\nSo 37 + 48 - 19 = 66.\n", 0.5, SYNTH_DEFECT_SKIPPED, 1);
    expect_check(P, "37 + 48 - 19 = 66\nSo 37 + 48 - 19 = 66.\n", 0, SYNTH_DEFECT_MISSING, 2);
    expect_check(P, "So 37 + 48 - 19 = 66.\n", 0, SYNTH_DEFECT_MISSING, 1);
    const char *Q = "Show that 12 + 30 - 7 + 15 = 50.";
    expect_check(Q, "12 + 30 = 42\n42 - 7 + 15 = 50\nSo 12 + 30 - 7 + 15 = 50.\n", 0.5, SYNTH_DEFECT_MERGED, 2);
    expect_check(Q, "12 + 30 - 7 = 35\n35 + 15 = 50\nSo 12 + 30 - 7 + 15 = 50.\n", 0.5, SYNTH_DEFECT_MERGED, 1);
    expect_check(Q, "12 + 30 - 7 + 15 = 50\nSo 12 + 30 - 7 + 15 = 50.\n", 0, SYNTH_DEFECT_MISSING, 1);
    expect_check(Q, "12 + 30 = 42\n35 + 15 = 50\nSo 12 + 30 - 7 + 15 = 50.\n", 0.5, SYNTH_DEFECT_SKIPPED, 2);
    expect_check(Q, "12 + 30 = 42\nSo 12 + 30 - 7 + 15 = 50.\n", 0, SYNTH_DEFECT_MISSING, 2);
    expect_check(Q, "12 + 30 - 7 = 35\nSo 12 + 30 - 7 + 15 = 50.\n", 0, SYNTH_DEFECT_MISSING, 2);
    expect_check(Q, "42 - 7 = 35\n35 + 15 = 50\nSo 12 + 30 - 7 + 15 = 50.\n", 0.5, SYNTH_DEFECT_SKIPPED, 1);
    expect_check(Q, "12 + 30 = 42\n42 - 7 = 35\n35 + 15 = 51\nSo 12 + 30 - 7 + 15 = 50.\n", 0, SYNTH_DEFECT_ARITH, 3);
    /* a fatal defect after an omission decides */
    expect_check(Q, "12 + 30 - 7 = 35\n35 + 15 = 51\nSo 12 + 30 - 7 + 15 = 50.\n", 0, SYNTH_DEFECT_ARITH, 2);
    /* conclusions */
    expect_check(P, "37 + 48 = 85\n85 - 19 = 66\nSo 37 + 48 - 19 = 67.\n", 0, SYNTH_DEFECT_WRONG_CONCLUSION, 3);
    expect_check(P, "37 + 48 = 85\n85 - 19 = 66\nSo 37 + 48 = 66.\n", 0, SYNTH_DEFECT_WRONG_CONCLUSION, 3);
    expect_check(P, "37 + 48 = 85\n85 - 19 = 66\nSo 37 + 48 - 18 = 66.\n", 0, SYNTH_DEFECT_WRONG_CONCLUSION, 3);
    expect_check(P, "37 + 48 = 85\n85 - 19 = 66\n", 0, SYNTH_DEFECT_NO_CONCLUSION, 3);
    expect_check(P, "37 + 48 = 85\n85 - 19 = 66\nSo 37 + 48 - 19 = 66.\nQED\n", 0, SYNTH_DEFECT_EXTRA, 4);
    expect_check(P, "37 + 48 = 85\n85 - 19 = 66\nSo 37 + 48 - 19 = 66.\nSo 37 + 48 - 19 = 66.\n", 0,
                 SYNTH_DEFECT_EXTRA, 4);
    /* not steps */
    expect_check(P, "", 0, SYNTH_DEFECT_EMPTY, 1);
    expect_check(P, " \n\t\r\n", 0, SYNTH_DEFECT_EMPTY, 1);
    expect_check(P, "We add 37 and 48.\n", 0, SYNTH_DEFECT_UNPARSABLE, 1);
    expect_check(P, "37 + 48 = 85 because\n", 0, SYNTH_DEFECT_UNPARSABLE, 1);
    expect_check(P, "85 = 85\n", 0, SYNTH_DEFECT_UNPARSABLE, 1);
    expect_check(P, "So\n", 0, SYNTH_DEFECT_UNPARSABLE, 1);
    expect_check(P, "37 + 48 = 1234567890123456\n", 0, SYNTH_DEFECT_UNPARSABLE, 1);
    expect_check(P, "37 + 48 = 85\n85 \xe2\x88\x92 19 = 66\n", 0, SYNTH_DEFECT_UNPARSABLE, 2);
    /* a false claim: no proof can score */
    const char *F = "Show that 37 + 48 - 19 = 67.";
    expect_check(F, "37 + 48 = 85\n85 - 19 = 66\nSo 37 + 48 - 19 = 67.\n", 0, SYNTH_DEFECT_WRONG_CONCLUSION, 3);
    expect_check(F, "37 + 48 = 85\n85 - 19 = 66\nSo 37 + 48 - 19 = 66.\n", 0, SYNTH_DEFECT_WRONG_CONCLUSION, 3);
    /* one operation */
    expect_check("Show that 5 + 3 = 8", "5 + 3 = 8\nThus 5 + 3 = 8\n", 1, SYNTH_DEFECT_NONE, 0);
    expect_check("Show that 5 + 3 = 8", "So 5 + 3 = 8\n", 0, SYNTH_DEFECT_MISSING, 1);
}

static void test_problems(void) {
    struct dsm_err err = {0};
    struct synth_problem p, q;
    char text[256];
    const struct {
        const char *s;
    } bad[] = {{""}, {"Show that"}, {"Prove 1 + 2 = 3."}, {"Show that 1 = 1."}, {"Show that 1 + 2 = 3. x"},
               {"Show that 1 + + 2 = 3."}, {"Show that 1 * 2 = 2."}, {"Show that -1 + 2 = 1."},
               {"Show that 1+1+1+1+1+1+1+1+1+1 = 10."}, {"Show that 1234567890123456 + 1 = 2."}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dsm_err_clear(&err);
        CHECK_MSG(synth_problem_parse(bad[i].s, strlen(bad[i].s), &p, &err) == DSM_EINVAL && err.msg[0],
                  "'%s' should be rejected", bad[i].s);
    }
    CHECK(synth_problem_generate(1, 0, 0, &p, &err) == DSM_EINVAL);
    CHECK(synth_problem_generate(1, 0, 6, &p, &err) == DSM_EINVAL);
    static const int want_ops[6] = {0, 2, 2, 3, 4, 5};
    static const int dig_lo[6] = {0, 1, 2, 2, 2, 3}, dig_hi[6] = {0, 1, 2, 2, 3, 3};
    int distinct_fail = 0;
    long total_bytes = 0, n = 0;
    for (int d = 1; d <= 5; d++)
        for (uint64_t i = 0; i < 2000; i++) {
            CHECK_OK(synth_problem_generate(7, i, d, &p, &err), &err);
            CHECK(p.n_ops == want_ops[d] && p.difficulty == d);
            CHECK(synth_problem_is_true(&p));
            for (int k = 1; k <= p.n_ops; k++) {
                CHECK(synth_problem_value(&p, k) > 0);
                long long a = p.operand[k];
                int digits = a >= 100 ? 3 : a >= 10 ? 2 : 1;
                CHECK_MSG(digits >= dig_lo[d] && digits <= dig_hi[d], "d%d operand %lld", d, a);
            }
            for (int a = 0; a <= p.n_ops; a++)
                for (int b = 0; b < a; b++)
                    if (synth_problem_value(&p, a) == synth_problem_value(&p, b)) distinct_fail++;
            int len = synth_problem_text(&p, text, sizeof text);
            CHECK(len > 0);
            total_bytes += len;
            n++;
            CHECK_OK(synth_problem_parse(text, (size_t)len, &q, &err), &err);
            CHECK(q.n_ops == p.n_ops && q.claim == p.claim && !memcmp(q.operand, p.operand, sizeof p.operand) &&
                  !memcmp(q.op + 1, p.op + 1, (size_t)p.n_ops));
            struct synth_problem again;
            synth_problem_generate(7, i, d, &again, &err);
            CHECK(!memcmp(&again, &p, sizeof p));
        }
    CHECK(distinct_fail == 0);
    synth_problem_generate(7, 0, 2, &p, &err);
    synth_problem_generate(8, 0, 2, &q, &err);
    CHECK(memcmp(&p, &q, sizeof p) != 0);
    fprintf(stderr, "problems: %ld generated, %.1f bytes each on average, %d repeated values\n", n,
            (double)total_bytes / (double)n, distinct_fail);
    int hist[6] = {0};
    for (uint64_t i = 0; i < 3000; i++) hist[synth_difficulty_pick(3, i, 2, 4)]++;
    CHECK(hist[1] == 0 && hist[5] == 0 && hist[2] > 900 && hist[3] > 900 && hist[4] > 900);
}

/* The line a planted error should be reported at, for an n-operation problem whose proof has the
 * plant at step s (unknown here: derived from the proof text instead). */
static enum synth_defect want_defect(enum synth_plant k) {
    switch (k) {
    case SYNTH_PLANT_NONE: return SYNTH_DEFECT_NONE;
    case SYNTH_PLANT_ARITH: return SYNTH_DEFECT_ARITH;
    case SYNTH_PLANT_COPY: return SYNTH_DEFECT_OFF_CHAIN;
    case SYNTH_PLANT_SKIP: return SYNTH_DEFECT_SKIPPED;
    case SYNTH_PLANT_MERGE: return SYNTH_DEFECT_MERGED;
    case SYNTH_PLANT_CONCLUSION: return SYNTH_DEFECT_WRONG_CONCLUSION;
    case SYNTH_PLANT_NO_CONCLUSION: return SYNTH_DEFECT_NO_CONCLUSION;
    default: return SYNTH_DEFECT_COUNT_;
    }
}

static double want_ms(enum synth_aflaw f) {
    return f == SYNTH_AFLAW_NONE ? 1 : f == SYNTH_AFLAW_FALSE_ISSUE || f == SYNTH_AFLAW_MISSED ? 0 : 0.5;
}

static void test_agreement(void) {
    struct dsm_err err = {0};
    int items = 0, agree = 0, an_items = 0, an_agree = 0, meta_items = 0, meta_agree = 0, gen_items = 0,
        gen_agree = 0;
    int per_plant[SYNTH_PLANT_COUNT_] = {0}, per_flaw[SYNTH_AFLAW_COUNT_] = {0};
    long proof_bytes = 0, an_bytes = 0, meta_bytes = 0;
    char proof[SYNTH_TEXT_CAP], an[SYNTH_TEXT_CAP], meta[SYNTH_TEXT_CAP], gen[SYNTH_TEXT_CAP];
    for (uint64_t i = 0; i < 600; i++) {
        int d = 1 + (int)(i % 5);
        struct synth_problem p;
        CHECK_OK(synth_problem_generate(42, i, d, &p, &err), &err);
        for (int k = 0; k < SYNTH_PLANT_COUNT_; k++) {
            enum synth_plant planted;
            int len = synth_proof_write(&p, (enum synth_plant)k, i * 31 + (uint64_t)k, proof, sizeof proof, &planted);
            CHECK(len > 0);
            proof_bytes += len;
            struct synth_verdict v;
            synth_check(&p, proof, (size_t)len, &v);
            items++;
            per_plant[planted]++;
            int ok = v.score == synth_plant_score(planted) && v.defect == want_defect(planted);
            if (planted == SYNTH_PLANT_FORCE) { /* a slip or a mis-copy, and the last step still ends at the claim */
                char tail[64];
                snprintf(tail, sizeof tail, " = %lld\nSo ", p.claim);
                ok = v.score == 0 && (v.defect == SYNTH_DEFECT_ARITH || v.defect == SYNTH_DEFECT_OFF_CHAIN) &&
                     strstr(proof, tail) != NULL && v.line < p.n_ops;
            }
            if (planted == SYNTH_PLANT_CONCLUSION || planted == SYNTH_PLANT_NO_CONCLUSION)
                ok = ok && v.line == v.n_lines + (planted == SYNTH_PLANT_NO_CONCLUSION);
            agree += ok;
            CHECK_MSG(ok, "plant %s on '%s' gave %g %s line %d:\n%s", synth_plant_name(planted),
                      "problem", v.score, synth_defect_name(v.defect), v.line, proof);
            if (k == SYNTH_PLANT_MERGE && p.n_ops < 3) CHECK(planted == SYNTH_PLANT_SKIP);
            else CHECK(planted == (enum synth_plant)k);
            /* every analysis flaw that applies */
            for (int f = 0; f < SYNTH_AFLAW_COUNT_; f++) {
                double s = -1;
                int alen = synth_analysis_write(&p, &v, (enum synth_aflaw)f, i + 1000 * (uint64_t)k, an, sizeof an, &s);
                if (!synth_aflaw_applies(&v, (enum synth_aflaw)f)) {
                    CHECK(alen == -2 && an[0] == 0);
                    continue;
                }
                CHECK(alen > 0);
                an_bytes += alen;
                an_items++;
                per_flaw[f]++;
                struct ver_parsed vp;
                ver_parse(an, (size_t)alen, 0, &vp);
                CHECK(vp.fail == ROLE_OK && vp.score == s);
                if (f == SYNTH_AFLAW_NONE) CHECK(s == v.score);
                struct synth_analysis_verdict av;
                synth_analysis_check(&v, an, (size_t)alen, &av);
                int aok = av.format_ok && av.ms == want_ms((enum synth_aflaw)f) && av.right == (f == SYNTH_AFLAW_NONE);
                an_agree += aok;
                CHECK_MSG(aok, "flaw %s (plant %s): format %d ms %g flagged %d false %d expr %d:\n%s---\n%s",
                          synth_aflaw_name((enum synth_aflaw)f), synth_plant_name(planted), av.format_ok, av.ms,
                          av.n_flagged, av.n_false, av.n_expr_errors, proof, an);
                /* the meta-verifier output carries the true ms in SPEC's markers */
                int mlen = synth_meta_write(&p, &v, &av, meta, sizeof meta);
                CHECK(mlen > 0);
                meta_bytes += mlen;
                struct mver_parsed mp;
                mver_parse(meta, (size_t)mlen, 0, &mp);
                int mok = mp.fail == ROLE_OK && mp.score == av.ms && mp.analysis.n > 10;
                meta_items++;
                meta_agree += mok;
                CHECK_MSG(mok, "meta output:\n%s", meta);
            }
            /* generator outputs: honest and dishonest */
            for (int honest = 0; honest <= 1; honest++) {
                int glen = synth_gen_write(&p, proof, (size_t)len, &v, honest, gen, sizeof gen);
                CHECK(glen > 0);
                struct gen_parsed gp;
                gen_parse(gen, (size_t)glen, 0, &gp);
                CHECK(gp.fail == ROLE_OK);
                struct synth_verdict v2;
                synth_check(&p, gp.proof.p, gp.proof.n, &v2);
                struct synth_analysis_verdict av;
                synth_analysis_check(&v2, gp.self_evaluation.p, gp.self_evaluation.n, &av);
                int gok = gp.fail == ROLE_OK && gp.self_score == av.score && v2.score == v.score &&
                          v2.defect == v.defect && av.format_ok &&
                          (honest || v.score == 1 ? av.right && av.score == v.score : av.ms == 0 && av.score == 1);
                gen_items++;
                gen_agree += gok;
                CHECK_MSG(gok, "generator output (honest %d):\n%s", honest, gen);
            }
        }
    }
    fprintf(stderr, "proofs: %d/%d planted scores and defects agree with the checker (%.1f bytes each)\n", agree,
            items, (double)proof_bytes / items);
    for (int k = 0; k < SYNTH_PLANT_COUNT_; k++)
        fprintf(stderr, "  %-14s %d\n", synth_plant_name((enum synth_plant)k), per_plant[k]);
    fprintf(stderr, "analyses: %d/%d flaw kinds get their intended meta score (%.1f bytes each)\n", an_agree,
            an_items, (double)an_bytes / an_items);
    for (int f = 0; f < SYNTH_AFLAW_COUNT_; f++)
        fprintf(stderr, "  %-14s %d\n", synth_aflaw_name((enum synth_aflaw)f), per_flaw[f]);
    fprintf(stderr, "meta outputs: %d/%d carry the true rating in SPEC markers (%.1f bytes each)\n", meta_agree,
            meta_items, (double)meta_bytes / meta_items);
    fprintf(stderr, "generator outputs: %d/%d split, checked and self-judged as written\n", gen_agree, gen_items);
    CHECK(items >= 4000 && agree == items && an_agree == an_items && meta_agree == meta_items &&
          gen_agree == gen_items);
    for (int f = 0; f < SYNTH_AFLAW_COUNT_; f++) CHECK(per_flaw[f] > 300);
}

static void test_judge(void) {
    /* the judge reads analyses with the role parser: bad formats are format failures (ms 0) */
    struct synth_problem p = parse_ok("Show that 37 + 48 - 19 = 66.");
    const char *proof = "37 + 48 = 85\n85 - 19 = 67\nSo 37 + 48 - 19 = 66.\n";
    struct synth_verdict v;
    synth_check(&p, proof, strlen(proof), &v);
    struct synth_analysis_verdict av;
    const struct {
        const char *text;
        int format_ok;
        double ms;
        int flagged, nfalse, expr;
    } cases[] = {
        /* the box before the score marker */
        {"Here is my evaluation of the solution:\nLine 2: x. Wrong.\n\\boxed{0}\n"
         "Based on my evaluation, the final overall score should be:\n", 0, 0, 0, 0, 0},
        /* markers swapped */
        {"Based on my evaluation, the final overall score should be:\nHere is my evaluation of the "
         "solution:\nLine 2: x. Wrong.\n\\boxed{0}", 0, 0, 0, 0, 0},
        /* a score that is not 0, 0.5 or 1; a truncated last box */
        {"Here is my evaluation of the solution:\nLine 2: x. Wrong.\n"
         "Based on my evaluation, the final overall score should be:\n\\boxed{0.25}", 0, 0, 0, 0, 0},
        {"Here is my evaluation of the solution:\nLine 2: x. Wrong.\n"
         "Based on my evaluation, the final overall score should be:\n\\boxed{0} \\boxed{1", 0, 0, 0, 0, 0},
        /* an unclosed <think> */
        {"<think>Here is my evaluation of the solution:\nLine 2: x. Wrong.\n"
         "Based on my evaluation, the final overall score should be:\n\\boxed{0}", 0, 0, 0, 0, 0},
        /* right: only the text after </think> counts, "overal", case of the verdict */
        {"<think>Line 1: wrong. Wrong.</think>Here is my evaluation of the solution:\n"
         "line 1 is fine\nLine 2: 85 - 19 = 66, not 67. WRONG\n"
         "Based on my evaluation, the final overal score should be: \\boxed{0}", 1, 1, 1, 0, 0},
        /* one false and one real issue, with an expression error */
        {"Here is my evaluation of the solution:\nLine 1: 37 + 48 = 84. Wrong.\n"
         "Line 2: 85 - 19 = 66, not 67. Wrong.\n"
         "Based on my evaluation, the final overall score should be:\n\\boxed{0}", 1, 0.5, 2, 1, 1},
        /* a negative number is read with its sign */
        {"Here is my evaluation of the solution:\nLine 2: 5 - 19 = -14, not 67. Wrong.\n"
         "Based on my evaluation, the final overall score should be:\n\\boxed{0}", 1, 1, 1, 0, 0},
        /* real issue, a score that does not follow */
        {"Here is my evaluation of the solution:\nLine 2: 85 - 19 = 66, not 67. Wrong.\n"
         "Based on my evaluation, the final overall score should be:\n\\boxed{0.5}", 1, 0.5, 1, 0, 0},
        /* vouches for the wrong step */
        {"Here is my evaluation of the solution:\nLine 1: 37 + 48 = 85. Correct.\n"
         "Based on my evaluation, the final overall score should be:\n\\boxed{1}", 1, 0, 0, 0, 0},
        /* only a false issue */
        {"Here is my evaluation of the solution:\nLine 3: the steps give 65, not 66. Wrong.\n"
         "Based on my evaluation, the final overall score should be:\n\\boxed{0}", 1, 0, 1, 1, 0},
        /* a low score with nothing blamed */
        {"Here is my evaluation of the solution:\nLooks off.\n"
         "Based on my evaluation, the final overall score should be:\n\\boxed{0}", 1, 0.5, 0, 0, 0},
        /* markers inside a code fence do not count */
        {"```\nHere is my evaluation of the solution:\n```\nLine 2: 85 - 19 = 66, not 67. Wrong.\n"
         "Based on my evaluation, the final overall score should be:\n\\boxed{0}", 0, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        synth_analysis_check(&v, cases[i].text, strlen(cases[i].text), &av);
        CHECK_MSG(av.format_ok == cases[i].format_ok && av.ms == cases[i].ms && av.right == (cases[i].ms == 1) &&
                      av.n_flagged == cases[i].flagged && av.n_false == cases[i].nfalse &&
                      av.n_expr_errors == cases[i].expr,
                  "judge case %zu: format %d ms %g flagged %d false %d expr %d", i, av.format_ok, av.ms,
                  av.n_flagged, av.n_false, av.n_expr_errors);
    }
    synth_analysis_check(&v, cases[6].text, strlen(cases[6].text), &av);
    CHECK(av.first_false == 1 && av.first_real == 2 && !strcmp(av.expr_bad, "37 + 48 = 84"));
}

static void test_prompts(void) {
    const char *problem = "Show that 37 + 48 - 19 = 66.";
    const char *proof = "37 + 48 = 85\n85 - 19 = 66\nSo 37 + 48 - 19 = 66.\n";
    const char *an = "Here is my evaluation of the solution:\nLine 1: 37 + 48 = 85. Correct.\n"
                     "Based on my evaluation, the final overall score should be:\n\\boxed{1}\n";
    char mine[SYNTH_TEXT_CAP];
    struct role_template t;
    struct dsm_err err = {0};
    char *theirs = NULL;
    for (int role = 0; role < 3; role++) {
        int n = synth_prompt((enum synth_role)role, problem, proof, an, mine, sizeof mine);
        CHECK(n > 0 && (size_t)n == strlen(mine));
        synth_template((enum synth_role)role, &t);
        CHECK(!strncmp(t.id, "synth_", 6) && strstr(t.id, ".v1@"));
        /* the role libraries get trimmed spans from their parsers: pass the same */
        const char *tp = "37 + 48 = 85\n85 - 19 = 66\nSo 37 + 48 - 19 = 66.";
        const char *ta = "Here is my evaluation of the solution:\nLine 1: 37 + 48 = 85. Correct.\n"
                         "Based on my evaluation, the final overall score should be:\n\\boxed{1}";
        int rc = role == 0 ? gen_prompt_build(&t, problem, &theirs, &err)
                 : role == 1 ? ver_prompt_build(&t, problem, tp, &theirs, &err)
                             : mver_prompt_build(&t, problem, tp, ta, &theirs, &err);
        CHECK_OK(rc, &err);
        CHECK_MSG(theirs && !strcmp(theirs, mine), "role %d prompt:\n%s---\n%s", role, mine, theirs ? theirs : "");
        free(theirs);
        theirs = NULL;
    }
    CHECK(synth_prompt(SYNTH_ROLE_VERIFIER, problem, proof, NULL, mine, 20) == -1 && mine[0] == 0);
    synth_prompt(SYNTH_ROLE_VERIFIER, problem, proof, NULL, mine, sizeof mine);
    CHECK(!strcmp(mine, "Task: evaluate the solution.\nProblem: Show that 37 + 48 - 19 = 66.\nSolution:\n"
                        "37 + 48 = 85\n85 - 19 = 66\nSo 37 + 48 - 19 = 66.\n"));
}

static void test_sft(void) {
    struct synth_sft_opts o;
    synth_sft_opts_default(&o);
    struct dsm_err err = {0};
    CHECK_OK(synth_sft_opts_check(&o, &err), &err);
    for (int role = 0; role < 3; role++) {
        long bytes = 0;
        int n = 400, wrong = 0, flawed_proofs = 0;
        for (int i = 0; i < n; i++) {
            json_t *a = NULL, *b = NULL;
            CHECK_OK(synth_sft_record((enum synth_role)role, 5, (uint64_t)i, &o, &a, &err), &err);
            CHECK_OK(synth_sft_record((enum synth_role)role, 5, (uint64_t)i, &o, &b, &err), &err);
            if (!a || !b) {
                json_decref(a);
                json_decref(b);
                continue;
            }
            CHECK(json_equal(a, b));
            const char *prompt = json_string_value(json_object_get(a, "prompt"));
            const char *resp = json_string_value(json_object_get(a, "response"));
            json_t *meta = json_object_get(a, "meta");
            CHECK(prompt && resp && json_is_object(meta));
            if (prompt && resp) {
                bytes += (long)(strlen(prompt) + strlen(resp));
                double s = -1;
                if (role == SYNTH_ROLE_GENERATOR) {
                    struct gen_parsed gp;
                    gen_parse(resp, strlen(resp), 0, &gp);
                    CHECK(gp.fail == ROLE_OK);
                    s = gp.self_score;
                } else if (role == SYNTH_ROLE_VERIFIER) {
                    struct ver_parsed vp;
                    ver_parse(resp, strlen(resp), 0, &vp);
                    CHECK(vp.fail == ROLE_OK);
                    s = vp.score;
                } else {
                    struct mver_parsed mp;
                    mver_parse(resp, strlen(resp), 0, &mp);
                    CHECK(mp.fail == ROLE_OK);
                    s = mp.score;
                }
                double truth = json_real_value(json_object_get(meta, "score"));
                if (truth < 1) flawed_proofs++;
                if (role == SYNTH_ROLE_METAVERIFIER) {
                    CHECK(s == json_real_value(json_object_get(meta, "ms")));
                    wrong += s != 1;
                } else {
                    wrong += s != truth;
                }
            }
            json_decref(a);
            json_decref(b);
        }
        fprintf(stderr, "sft %s: %d records, %.0f bytes each, %d%% flawed proofs, %d%% responses %s\n",
                synth_role_name((enum synth_role)role), n, (double)bytes / n, 100 * flawed_proofs / n, 100 * wrong / n,
                role == SYNTH_ROLE_METAVERIFIER ? "rating an analysis below 1" : "whose score is not the truth");
        if (role == SYNTH_ROLE_VERIFIER) CHECK(wrong > n / 20 && wrong < n / 4);
        if (role == SYNTH_ROLE_GENERATOR) CHECK(wrong > n / 40 && wrong < n / 5);
        CHECK(flawed_proofs > n / 5);
    }
    o.diff_lo = 4;
    o.diff_hi = 2;
    CHECK(synth_sft_opts_check(&o, &err) == DSM_EINVAL);
    synth_sft_opts_default(&o);
    o.ver_noise = 1.5;
    CHECK(synth_sft_opts_check(&o, &err) == DSM_EINVAL);
    synth_sft_opts_default(&o);
    for (int i = 0; i < SYNTH_PLANT_COUNT_; i++) o.plant_w[i] = 0;
    CHECK(synth_sft_opts_check(&o, &err) == DSM_EINVAL);
    json_t *r = NULL;
    CHECK(synth_sft_record(SYNTH_ROLE_VERIFIER, 1, 1, &o, &r, &err) == DSM_EINVAL && !r);
}

/* The carry-dropping writer (the generator's systematic error): score 0 with a wrong step at the
 * first carry or borrow, a correct proof when nothing carries; the SFT mix uses it only when asked. */
static void test_carry_drop(void) {
    int dropped_n = 0, clean_n = 0;
    for (uint64_t i = 0; i < 2000; i++) {
        struct synth_problem p;
        struct dsm_err err = {0};
        CHECK(synth_problem_generate(5, i, 1 + (int)(i % 5), &p, &err) == DSM_OK);
        char proof[SYNTH_TEXT_CAP];
        int dropped = -1, len = synth_proof_write_carry(&p, proof, sizeof proof, &dropped);
        CHECK(len > 0 && (dropped == 0 || dropped == 1));
        /* where the first carry or borrow is, from the problem alone */
        int first = 0;
        long long cur = p.operand[0];
        for (int k = 1; k <= p.n_ops && !first; k++) {
            long long a = p.operand[k];
            if (p.op[k] == '+' ? cur % 10 + a % 10 >= 10 : cur % 10 < a % 10) first = k;
            cur = p.op[k] == '+' ? cur + a : cur - a;
        }
        struct synth_verdict v;
        synth_check(&p, proof, (size_t)len, &v);
        if (first) {
            dropped_n++;
            CHECK(dropped == 1 && v.score == 0 && v.defect == SYNTH_DEFECT_ARITH && v.line == first);
        } else {
            clean_n++;
            CHECK(dropped == 0 && v.score == 1);
        }
    }
    CHECK(dropped_n > 500 && clean_n > 50);
    struct synth_problem p;
    struct dsm_err err = {0};
    CHECK(synth_problem_parse("Show that 8 + 9 + 1 = 18.", 25, &p, &err) == DSM_OK);
    char proof[SYNTH_TEXT_CAP];
    int dropped;
    CHECK(synth_proof_write_carry(&p, proof, sizeof proof, &dropped) > 0 && dropped);
    CHECK(!strcmp(proof, "8 + 9 = 7\n7 + 1 = 8\nSo 8 + 9 + 1 = 18.\n"));
    /* the generator's mix: with the share at 1 every record whose problem carries drops it and
     * claims the proof right; at 0 (the default) the records are those of before */
    struct synth_sft_opts o;
    synth_sft_opts_default(&o);
    o.diff_lo = o.diff_hi = 1;
    int carried = 0, same = 1;
    for (uint64_t i = 0; i < 200; i++) {
        json_t *a = NULL, *b = NULL;
        o.gen_flawed = 0, o.gen_carry_drop = 1;
        CHECK(synth_sft_record(SYNTH_ROLE_GENERATOR, 3, i, &o, &a, &err) == DSM_OK);
        o.gen_carry_drop = 0;
        CHECK(synth_sft_record(SYNTH_ROLE_GENERATOR, 3, i, &o, &b, &err) == DSM_OK);
        json_t *ma = json_object_get(a, "meta");
        if (!strcmp(json_string_value(json_object_get(ma, "plant")), "carry_drop")) {
            carried++;
            CHECK(json_real_value(json_object_get(ma, "score")) == 0 && json_is_false(json_object_get(ma, "honest")) &&
                  json_real_value(json_object_get(ma, "self_score")) == 1);
        }
        same &= !strcmp(json_string_value(json_object_get(json_object_get(b, "meta"), "plant")), "none");
        json_decref(a), json_decref(b);
    }
    CHECK(carried > 60 && same);
    o.gen_carry_drop = 1.5;
    json_t *bad = NULL;
    CHECK(synth_sft_record(SYNTH_ROLE_GENERATOR, 3, 0, &o, &bad, &err) == DSM_EINVAL && strstr(err.msg, "carry-drop") && !bad);
}

int main(void) {
    test_carry_drop();
    test_golden();
    test_problems();
    test_agreement();
    test_judge();
    test_prompts();
    test_sft();
    return test_main_end();
}
