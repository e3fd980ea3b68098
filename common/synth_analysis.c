/* synth_analysis.c - verifier analyses of synthetic proofs (correct and flawed), their exact
 * judge (the meta-verification ground truth), meta-verifier outputs and generator outputs.
 *
 * An analysis has one line per examined proof line, "Line i: <what the line does>. <Verdict>.",
 * Verdict one of Correct, Incomplete (an operation not shown) or Wrong; it stops at the first
 * fatal defect, as the checker does. The judge reads the lines that start "Line <n>:" and end in a
 * verdict word, the arithmetic of every equation "a + b = c" the analysis writes, and the score.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "common/role.h"
#include "common/synth.h"
#include "common/synth_impl.h"

static const char *const aflaw_names[SYNTH_AFLAW_COUNT_] = {
    "none", "false_issue", "missed", "wrong_score", "expr_error",
};

const char *synth_aflaw_name(enum synth_aflaw f) {
    return (int)f >= 0 && f < SYNTH_AFLAW_COUNT_ ? aflaw_names[f] : "?";
}

int synth_aflaw_from_name(const char *s) {
    for (int i = 0; i < SYNTH_AFLAW_COUNT_; i++)
        if (!strcmp(s, aflaw_names[i])) return i;
    return -1;
}

static const char *score_str(double s) { return s == 1 ? "1" : s == 0.5 ? "0.5" : "0"; }

static const char *verdict_word(enum synth_defect d) {
    if (d == SYNTH_DEFECT_NONE) return "Correct";
    return synth_defect_is_fatal(d) ? "Wrong" : "Incomplete";
}

/* A value != v: off by a small slip (never negative). */
static long long other_value(struct synth_rng *r, long long v) {
    static const long long d[] = {1, 2, 9, 10, 11};
    long long x = d[synth_rng_next(r) % (sizeof d / sizeof d[0])];
    return (synth_rng_next(r) & 1) && v - x >= 0 ? v - x : v + x;
}

/* Operations left unshown up to and including rec i. */
static int omitted_through(const struct synth_verdict *v, int i) {
    int t = 0;
    for (int j = 0; j <= i; j++) t += v->rec[j].omitted;
    return t;
}

/* The true description of rec i (no "Line n:" and no verdict word). A corrupt value != 0 makes the
 * first equation's result that value instead (an expression error). */
static void note_body(const struct synth_problem *p, const struct synth_verdict *v, int i,
                      long long corrupt, int use_corrupt, struct synth_buf *b) {
    const struct synth_line *r = &v->rec[i];
    int n = p->n_ops;
    switch (r->defect) {
    case SYNTH_DEFECT_NONE:
        if (r->kind == SYNTH_LINE_CONCLUSION) {
            synth_buf_printf(b, "the steps give %lld, as claimed", r->result);
        } else {
            synth_buf_expr(b, r->left, r->op, r->term, r->n_terms);
            synth_buf_printf(b, " = %lld", use_corrupt ? corrupt : r->result);
        }
        return;
    case SYNTH_DEFECT_ARITH:
        synth_buf_expr(b, r->left, r->op, r->term, r->n_terms);
        synth_buf_printf(b, " = %lld, not %lld", use_corrupt ? corrupt : r->computed, r->result);
        return;
    case SYNTH_DEFECT_OFF_CHAIN:
        if (r->bad_term == 0) {
            if (r->k_before >= n)
                synth_buf_str(b, "every operation is already done");
            else
                synth_buf_printf(b, "it starts from %lld, but the value so far is %lld", r->left,
                                 synth_problem_value(p, r->k_before));
        } else {
            int idx = r->from + r->bad_term;
            if (idx > n)
                synth_buf_str(b, "the problem has no more terms");
            else
                synth_buf_printf(b, "the problem has %c %lld here, not %c %lld", p->op[idx], p->operand[idx],
                                 r->op[r->bad_term - 1], r->term[r->bad_term - 1]);
        }
        return;
    case SYNTH_DEFECT_SKIPPED:
    case SYNTH_DEFECT_MERGED: {
        int k = r->k_before;
        long long a = synth_problem_value(p, k), c = synth_problem_value(p, k + 1);
        if (r->kind == SYNTH_LINE_CONCLUSION)
            synth_buf_printf(b, "the steps stop at %lld; ", a);
        else if (r->defect == SYNTH_DEFECT_SKIPPED)
            synth_buf_printf(b, "it starts from %lld, but ", r->left);
        else {
            synth_buf_expr(b, r->left, r->op, r->term, r->n_terms);
            synth_buf_printf(b, " = %lld, but ", r->result);
        }
        synth_buf_printf(b, "%lld %c %lld = %lld is not shown", a, p->op[k + 1], p->operand[k + 1],
                         use_corrupt ? corrupt : c);
        return;
    }
    case SYNTH_DEFECT_MISSING: {
        int t = omitted_through(v, i);
        if (t <= 1)
            synth_buf_str(b, "no line shows a single operation");
        else
            synth_buf_printf(b, "with this line, %d operations are not shown", t);
        return;
    }
    case SYNTH_DEFECT_WRONG_CONCLUSION:
        if (r->bad_term >= 0)
            synth_buf_str(b, "it does not restate the claim");
        else if (r->result != p->claim && r->k_before < n)
            synth_buf_printf(b, "the claim is %lld, not %lld", p->claim, r->result);
        else
            synth_buf_printf(b, "the steps give %lld, not %lld", synth_problem_value(p, n), r->result);
        return;
    case SYNTH_DEFECT_NO_CONCLUSION: synth_buf_str(b, "no conclusion"); return;
    case SYNTH_DEFECT_UNPARSABLE: synth_buf_str(b, "not a step or a conclusion"); return;
    case SYNTH_DEFECT_EXTRA: synth_buf_str(b, "text after the conclusion"); return;
    case SYNTH_DEFECT_EMPTY: synth_buf_str(b, "no proof"); return;
    default: synth_buf_str(b, "?"); return;
    }
}

static void note_line(const struct synth_problem *p, const struct synth_verdict *v, int i,
                      struct synth_buf *b) {
    synth_buf_printf(b, "Line %d: ", v->rec[i].no);
    note_body(p, v, i, 0, 0, b);
    synth_buf_printf(b, ". %s.\n", verdict_word(v->rec[i].defect));
}

/* A step rec whose note has an equation to write wrong. */
static int has_equation(const struct synth_line *r) {
    return r->kind == SYNTH_LINE_STEP &&
           (r->defect == SYNTH_DEFECT_NONE || r->defect == SYNTH_DEFECT_ARITH ||
            r->defect == SYNTH_DEFECT_SKIPPED || r->defect == SYNTH_DEFECT_MERGED);
}

/* Recs before the first defective one whose lines can be falsely blamed. */
static int false_issue_candidates(const struct synth_verdict *v, int *idx) {
    int n = 0;
    for (int i = 0; i < v->n_rec && v->rec[i].defect == SYNTH_DEFECT_NONE; i++)
        if (v->rec[i].kind != SYNTH_LINE_OTHER) idx[n++] = i;
    return n;
}

int synth_aflaw_applies(const struct synth_verdict *v, enum synth_aflaw f) {
    int idx[SYNTH_MAX_RECS];
    switch (f) {
    case SYNTH_AFLAW_NONE:
    case SYNTH_AFLAW_WRONG_SCORE: return 1;
    case SYNTH_AFLAW_FALSE_ISSUE: return false_issue_candidates(v, idx) > 0;
    case SYNTH_AFLAW_MISSED: return v->score < 1;
    case SYNTH_AFLAW_EXPR_ERROR:
        for (int i = 0; i < v->n_rec; i++)
            if (has_equation(&v->rec[i])) return 1;
        return 0;
    default: return 0;
    }
}

/* The lie of a MISSED analysis about rec i: the line restated as right. */
static void missed_line(const struct synth_verdict *v, int i, struct synth_buf *b) {
    const struct synth_line *r = &v->rec[i];
    if (r->defect == SYNTH_DEFECT_NO_CONCLUSION) return; /* the lie says nothing about it */
    synth_buf_printf(b, "Line %d: ", r->no);
    if (r->kind == SYNTH_LINE_STEP) {
        synth_buf_expr(b, r->left, r->op, r->term, r->n_terms);
        synth_buf_printf(b, " = %lld", r->result);
    } else if (r->kind == SYNTH_LINE_CONCLUSION) {
        synth_buf_printf(b, "the steps give %lld, as claimed", r->result);
    } else {
        synth_buf_str(b, "no issue");
    }
    synth_buf_str(b, ". Correct.\n");
}

int synth_analysis_write(const struct synth_problem *p, const struct synth_verdict *v,
                         enum synth_aflaw f, uint64_t seed, char *out, size_t cap, double *score) {
    struct synth_buf b;
    synth_buf_init(&b, out, cap);
    if (!synth_aflaw_applies(v, f)) return -2;
    struct synth_rng r;
    synth_rng_init(&r, seed, 0xa7a1, (uint64_t)f);
    double s = v->score;
    synth_buf_str(&b, SYNTH_V_BEGIN "\n");
    if (f == SYNTH_AFLAW_FALSE_ISSUE) {
        int idx[SYNTH_MAX_RECS];
        int nc = false_issue_candidates(v, idx);
        int t = idx[synth_rng_range(&r, 0, nc - 1)];
        for (int i = 0; i < t; i++) note_line(p, v, i, &b);
        const struct synth_line *x = &v->rec[t];
        synth_buf_printf(&b, "Line %d: ", x->no);
        if (x->kind == SYNTH_LINE_CONCLUSION) {
            synth_buf_printf(&b, "the steps give %lld, not %lld", other_value(&r, x->result), x->result);
        } else {
            synth_buf_expr(&b, x->left, x->op, x->term, x->n_terms);
            synth_buf_printf(&b, " = %lld, not %lld", other_value(&r, x->result), x->result);
        }
        synth_buf_str(&b, ". Wrong.\n");
        s = 0;
    } else if (f == SYNTH_AFLAW_MISSED) {
        for (int i = 0; i < v->n_rec; i++) {
            if (v->rec[i].defect == SYNTH_DEFECT_NONE) note_line(p, v, i, &b);
            else missed_line(v, i, &b);
        }
        s = 1;
    } else if (f == SYNTH_AFLAW_EXPR_ERROR) {
        int idx[SYNTH_MAX_RECS], nc = 0;
        for (int i = 0; i < v->n_rec; i++)
            if (has_equation(&v->rec[i])) idx[nc++] = i;
        int t = idx[synth_rng_range(&r, 0, nc - 1)];
        for (int i = 0; i < v->n_rec; i++) {
            if (i != t) {
                note_line(p, v, i, &b);
                continue;
            }
            const struct synth_line *x = &v->rec[i];
            long long right = x->defect == SYNTH_DEFECT_NONE ? x->result
                              : x->defect == SYNTH_DEFECT_ARITH ? x->computed
                                                                : synth_problem_value(p, x->k_before + 1);
            long long bad = other_value(&r, right);
            if (x->defect == SYNTH_DEFECT_ARITH && bad == x->result) bad = right + 100;
            synth_buf_printf(&b, "Line %d: ", x->no);
            note_body(p, v, i, bad, 1, &b);
            synth_buf_printf(&b, ". %s.\n", verdict_word(x->defect));
        }
    } else {
        for (int i = 0; i < v->n_rec; i++) note_line(p, v, i, &b);
        if (f == SYNTH_AFLAW_WRONG_SCORE) {
            int up = (int)(synth_rng_next(&r) & 1);
            s = v->score == 1 ? (up ? 0.5 : 0) : v->score == 0.5 ? (up ? 1 : 0) : (up ? 1 : 0.5);
        }
    }
    synth_buf_printf(&b, SYNTH_V_END "\n\\boxed{%s}\n", score_str(s));
    if (score) *score = s;
    return synth_buf_end(&b);
}

/* ---- the judge ---------------------------------------------------------------------------- */

/* A body line "Line <n>: ... <Verdict>." -> n and the verdict (1 flagged, 0 correct); -1 when the
 * line is not one. */
static int read_verdict_line(const char *s, size_t n, int *no) {
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '.')) n--;
    if (n < 6 || memcmp(s, "Line ", 5)) return -1;
    size_t i = 5;
    long x = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && x < 100000) x = x * 10 + (s[i++] - '0');
    if (i == 5 || i >= n || s[i] != ':') return -1;
    size_t w = n;
    while (w > i && isalpha((unsigned char)s[w - 1])) w--;
    size_t m = n - w;
    *no = (int)x;
    if (m == 5 && !strncasecmp(s + w, "wrong", 5)) return 1;
    if (m == 10 && !strncasecmp(s + w, "incomplete", 10)) return 1;
    if (m == 7 && !strncasecmp(s + w, "correct", 7)) return 0;
    return -1;
}

/* Count false equations in s[0..n); the first goes to av->expr_bad. */
static void scan_equations(const char *s, size_t n, struct synth_analysis_verdict *av) {
    size_t i = 0;
    while (i < n) {
        if (!(s[i] >= '0' && s[i] <= '9') || (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')) {
            i++;
            continue;
        }
        /* A '-' glued to the number and not after a digit is its sign. */
        if (i > 0 && s[i - 1] == '-' && (i < 2 || !(s[i - 2] >= '0' && s[i - 2] <= '9'))) i--;
        size_t j = i;
        struct synth_expr e;
        if (synth_expr_parse(s, n, &j, &e) && e.n_terms > 0) {
            if (synth_expr_value(&e) != e.result) {
                if (!av->n_expr_errors) {
                    size_t m = j - i < sizeof av->expr_bad - 1 ? j - i : sizeof av->expr_bad - 1;
                    memcpy(av->expr_bad, s + i, m);
                    av->expr_bad[m] = 0;
                }
                av->n_expr_errors++;
            }
            i = j;
        } else {
            i += s[i] == '-' ? 2 : 1;
        }
    }
}

static int real_defect_at(const struct synth_verdict *v, int no) {
    for (int i = 0; i < v->n_rec; i++)
        if (v->rec[i].no == no && v->rec[i].defect != SYNTH_DEFECT_NONE) return 1;
    return 0;
}

void synth_analysis_check(const struct synth_verdict *v, const char *analysis, size_t len,
                          struct synth_analysis_verdict *av) {
    memset(av, 0, sizeof *av);
    static const char *const begin[] = {SYNTH_V_BEGIN, NULL};
    static const char *const score_markers[] = {
        SYNTH_V_END, "Based on my evaluation, the final overal score should be:", NULL};
    struct role_span out, a;
    if (role_after_think(analysis, len, &out) != ROLE_OK) return;
    if (role_parse_analysis(out, begin, score_markers, &a, &av->score, NULL, 0) != ROLE_OK) return;
    av->format_ok = 1;
    const char *body = a.p;
    size_t bl = a.n;
    size_t pos = 0;
    while (pos < bl) {
        const char *nl = memchr(body + pos, '\n', bl - pos);
        size_t end = nl ? (size_t)(nl - body) : bl;
        int no = 0, flag = read_verdict_line(body + pos, end - pos, &no);
        if (flag == 1) {
            av->n_flagged++;
            if (!av->first_flagged) av->first_flagged = no;
            if (!real_defect_at(v, no)) {
                av->n_false++;
                if (!av->first_false) av->first_false = no;
            } else if (!av->first_real) {
                av->first_real = no;
            }
        }
        pos = end + 1;
    }
    scan_equations(body, bl, av);
    double t = v->score, s = av->score;
    if (av->n_flagged == 0) {
        if (s < 1) av->ms = 0.5;                          /* a score its own walk does not support */
        else if (t < 1) av->ms = 0;                       /* vouches for a defective proof */
        else av->ms = av->n_expr_errors ? 0.5 : 1;
    } else if (av->n_false == av->n_flagged) {
        av->ms = 0;                                       /* every claimed issue is unreasonable */
    } else if (av->n_false > 0) {
        av->ms = 0.5;                                     /* some are, some are not */
    } else {
        av->ms = s == t && !av->n_expr_errors ? 1 : 0.5;  /* real issues; score and arithmetic */
    }
    av->right = av->ms == 1;
}

/* ---- meta-verifier and generator outputs ---------------------------------------------------- */

static int rec_index(const struct synth_verdict *v, int no) {
    for (int i = 0; i < v->n_rec; i++)
        if (v->rec[i].no == no) return i;
    return -1;
}

int synth_meta_write(const struct synth_problem *p, const struct synth_verdict *v,
                     const struct synth_analysis_verdict *av, char *out, size_t cap) {
    struct synth_buf b;
    synth_buf_init(&b, out, cap);
    synth_buf_str(&b, SYNTH_M_BEGIN "\n");
    if (!av->format_ok) {
        synth_buf_str(&b, "The evaluation has no valid score.\n");
    } else if (av->n_flagged == 0) {
        if (av->score < 1) {
            synth_buf_printf(&b, "No line is blamed, so the score %s does not follow.\n", score_str(av->score));
        } else if (v->score < 1) {
            int i = rec_index(v, v->line);
            synth_buf_printf(&b, "No issue is claimed, but line %d: ", v->line);
            if (i >= 0) note_body(p, v, i, 0, 0, &b);
            synth_buf_str(&b, ".\n");
        } else if (av->n_expr_errors) {
            synth_buf_printf(&b, "No issue is claimed and none exists, but it writes %s.\n", av->expr_bad);
        } else {
            synth_buf_str(&b, "No issue is claimed, and every line checks out.\n");
        }
    } else if (av->n_false == av->n_flagged) {
        int i = rec_index(v, av->first_false);
        if (i >= 0) {
            synth_buf_printf(&b, "It blames line %d, but there ", av->first_false);
            note_body(p, v, i, 0, 0, &b);
            synth_buf_str(&b, ". The issue is false.\n");
        } else {
            synth_buf_printf(&b, "It blames line %d, which has no checked issue. The issue is false.\n",
                             av->first_false);
        }
    } else if (av->n_false > 0) {
        synth_buf_printf(&b, "It blames line %d rightly but line %d wrongly.\n", av->first_real,
                         av->first_false);
    } else {
        int i = rec_index(v, av->first_flagged);
        synth_buf_printf(&b, "It blames line %d: ", av->first_flagged);
        if (i >= 0) note_body(p, v, i, 0, 0, &b);
        synth_buf_str(&b, ". The issue is real");
        if (av->score != v->score)
            synth_buf_printf(&b, ", but the score should be %s.\n", score_str(v->score));
        else if (av->n_expr_errors)
            synth_buf_printf(&b, ", but it writes %s.\n", av->expr_bad);
        else
            synth_buf_printf(&b, "; the score %s follows.\n", score_str(av->score));
    }
    synth_buf_printf(&b, SYNTH_M_END "\n\\boxed{%s}\n", score_str(av->ms));
    return synth_buf_end(&b);
}

int synth_gen_write(const struct synth_problem *p, const char *proof, size_t len,
                    const struct synth_verdict *v, int honest, char *out, size_t cap) {
    char an[SYNTH_TEXT_CAP];
    enum synth_aflaw f = !honest && v->score < 1 ? SYNTH_AFLAW_MISSED : SYNTH_AFLAW_NONE;
    if (synth_analysis_write(p, v, f, 0, an, sizeof an, NULL) < 0) {
        if (cap) out[0] = 0;
        return -1;
    }
    struct synth_buf b;
    synth_buf_init(&b, out, cap);
    synth_buf_str(&b, "## Solution\n");
    synth_buf_put(&b, proof, len);
    if (len && proof[len - 1] != '\n') synth_buf_str(&b, "\n");
    synth_buf_str(&b, "## Self Evaluation\n");
    synth_buf_str(&b, an);
    return synth_buf_end(&b);
}
