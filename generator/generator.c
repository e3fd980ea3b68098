/* generator.c - generator prompts, output reading and reward; see generator.h. */
#include "generator/generator.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* Compiled in from prompts/ by common/role_embed.cmake. */
extern const char gen_generate_text[], gen_generate_version[], gen_generate_sha12[];
extern const char gen_refine_text[], gen_refine_version[], gen_refine_sha12[];

/* The verifier's markers, which the self-evaluation also uses. */
static const char *const begin_markers[] = {"Here is my evaluation of the solution:", NULL};
static const char *const score_markers[] = {"Based on my evaluation, the final overall score should be:",
                                            "Based on my evaluation, the final overal score should be:", NULL};

void gen_template_generate(struct role_template *t) {
    role_template_builtin(t, "generate", gen_generate_version, gen_generate_text, gen_generate_sha12);
}

void gen_template_refine(struct role_template *t) {
    role_template_builtin(t, "refine", gen_refine_version, gen_refine_text, gen_refine_sha12);
}

int gen_prompt_build(const struct role_template *t, const char *problem, char **out, struct dsm_err *err) {
    struct role_template builtin;
    if (!t) {
        gen_template_generate(&builtin);
        t = &builtin;
    }
    if (!problem) return dsm_errf(err, DSM_EINVAL, "generator prompt: no problem text");
    const char *keys[] = {"problem"}, *vals[] = {problem};
    return role_template_render(t, keys, vals, 1, out, NULL, err);
}

struct buf {
    char *p;
    size_t n, cap;
    int oom;
};

static void buf_put(struct buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void buf_str(struct buf *b, const char *s) { buf_put(b, s, strlen(s)); }

int gen_prompt_build_refine(const struct role_template *gen_t, const struct role_template *refine_t,
                            const char *problem, const struct gen_candidate *c, int nc, char **out,
                            struct dsm_err *err) {
    *out = NULL;
    if (nc < 1) return dsm_errf(err, DSM_EINVAL, "refinement prompt: no candidate proofs");
    for (int i = 0; i < nc; i++) {
        if (!c[i].proof) return dsm_errf(err, DSM_EINVAL, "refinement prompt: candidate %d has no proof", i + 1);
        for (int j = 0; j < c[i].n_analyses; j++)
            if (!c[i].analyses[j])
                return dsm_errf(err, DSM_EINVAL, "refinement prompt: candidate %d, analysis %d is NULL", i + 1, j + 1);
    }
    struct role_template builtin;
    if (!refine_t) {
        gen_template_refine(&builtin);
        refine_t = &builtin;
    }
    char *instruction = NULL;
    int rc = gen_prompt_build(gen_t, problem, &instruction, err);
    if (rc) return rc;
    struct buf b = {0};
    char head[96];
    for (int i = 0; i < nc; i++) {
        snprintf(head, sizeof head, "%s--- Candidate %d ---\n", i ? "\n\n" : "", i + 1);
        buf_str(&b, head);
        struct role_span p = role_trim((struct role_span){c[i].proof, strlen(c[i].proof)});
        buf_put(&b, p.p, p.n);
        for (int j = 0; j < c[i].n_analyses; j++) {
            snprintf(head, sizeof head, "\n\n=== Evaluation %d of candidate %d ===\n", j + 1, i + 1);
            buf_str(&b, head);
            struct role_span a = role_trim((struct role_span){c[i].analyses[j], strlen(c[i].analyses[j])});
            buf_put(&b, a.p, a.n);
        }
    }
    if (b.oom || !b.p) {
        free(instruction);
        free(b.p);
        return dsm_errf(err, DSM_ENOMEM, "refinement prompt: out of memory");
    }
    struct role_span ins = role_trim((struct role_span){instruction, strlen(instruction)});
    instruction[ins.p - instruction + (ptrdiff_t)ins.n] = 0;
    const char *keys[] = {"instruction", "candidates"}, *vals[] = {ins.p, b.p};
    rc = role_template_render(refine_t, keys, vals, 2, out, NULL, err);
    free(instruction);
    free(b.p);
    return rc;
}

void gen_parse(const char *text, size_t len, int truncated, struct gen_parsed *out) {
    memset(out, 0, sizeof *out);
    out->self_score = ROLE_NO_SCORE;
    struct role_span s;
    enum role_fail f = role_after_think(text, len, &s);
    if (f == ROLE_OK) {
        struct role_span sol, self;
        role_find_sections(s, &sol, &self);
        const char *end = s.p + s.n;
        if (!sol.p) {
            f = ROLE_FAIL_NO_SOLUTION;
        } else {
            const char *after = sol.p + sol.n;
            if (!self.p) {
                out->proof = role_trim((struct role_span){after, (size_t)(end - after)});
                f = ROLE_FAIL_NO_SELF_EVAL;
            } else {
                out->proof = role_trim((struct role_span){after, (size_t)(self.p - after)});
                const char *se = self.p + self.n;
                out->self_evaluation = role_trim((struct role_span){se, (size_t)(end - se)});
                /* the analysis inside the self-evaluation, for the meta-verifier */
                const char *const *needles[2] = {begin_markers, score_markers};
                struct role_span first[2], last[2];
                role_find_markers(out->self_evaluation, needles, 2, first, last);
                struct role_span from = {out->self_evaluation.p, 0};
                const char *z = from.p + out->self_evaluation.n;
                if (first[0].p && (!last[1].p || last[1].p >= first[0].p + first[0].n)) from = first[0];
                int at_marker = last[1].p && last[1].p >= from.p + from.n;
                if (at_marker) z = last[1].p;
                out->analysis = role_between(from, z, at_marker);
                if (out->proof.n == 0) f = ROLE_FAIL_EMPTY_PROOF;
                else f = role_score_box(out->self_evaluation, &out->self_score, out->box, sizeof out->box);
            }
        }
    }
    if (truncated) f = ROLE_FAIL_TRUNCATED;
    if (f != ROLE_OK) out->self_score = ROLE_NO_SCORE;
    out->fail = f;
}

double gen_reward(int format_ok, double s, double s_self, double ms) {
    if (!format_ok) return 0.0;
    return GEN_REWARD_ALPHA * s + GEN_REWARD_BETA * (1.0 - fabs(s_self - s)) * ms;
}
