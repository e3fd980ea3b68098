/* synth_check.c - the exact proof checker of the synthetic domain (the ground truth).
 *
 * The check walks the non-blank lines of a proof in order, keeping k, the number of the problem's
 * operations shown so far. A step line "L op t ... = R" must compute right (else wrong_step); its
 * left value L must be the value after some j >= k operations (the smallest such j; j > k means
 * operations j-k were skipped) and its terms the problem's next operations (else off_chain). A
 * conclusion line ("So|Hence|Thus|Therefore <the problem's expression> = <claim>") must restate the
 * claim, and the claim must be the chain's true value (else wrong_conclusion); the operations it
 * jumps over count as not shown. One operation not shown in the whole proof costs half a point
 * (skipped or merged) when at least one line shows a single operation; more costs all (missing).
 * The walk stops at the first fatal defect, so a proof with a wrong step is judged on that step.
 */
#include <ctype.h>
#include <string.h>

#include "common/synth.h"
#include "common/synth_impl.h"
#include "common/util.h"

static const char *const defect_names[SYNTH_DEFECT_COUNT_] = {
    "none", "wrong_step", "off_chain", "skipped", "merged", "missing_steps", "wrong_conclusion",
    "no_conclusion", "unparsable", "extra_text", "empty",
};

const char *synth_defect_name(enum synth_defect d) {
    return (int)d >= 0 && d < SYNTH_DEFECT_COUNT_ ? defect_names[d] : "?";
}

int synth_defect_is_fatal(enum synth_defect d) {
    return d != SYNTH_DEFECT_NONE && d != SYNTH_DEFECT_SKIPPED && d != SYNTH_DEFECT_MERGED;
}

/* The conclusion's opening word, case-insensitive, followed by a blank or a comma; returns the
 * offset after it (and after a comma and blanks), or 0 when the line does not open with one. */
static size_t conclusion_prefix(const char *s, size_t n) {
    static const char *const words[] = {"so", "hence", "thus", "therefore"};
    for (size_t w = 0; w < DSM_ARRAY_LEN(words); w++) {
        size_t m = strlen(words[w]), i;
        if (n <= m) continue;
        for (i = 0; i < m; i++)
            if (tolower((unsigned char)s[i]) != words[w][i]) break;
        if (i < m || (s[m] != ' ' && s[m] != '\t' && s[m] != ',')) continue;
        i = m;
        if (s[i] == ',') i++;
        while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
        return i;
    }
    return 0;
}

/* Parse the whole of s[i..n) as an expression with an optional final period. */
static int parse_whole(const char *s, size_t n, size_t i, struct synth_expr *e) {
    if (!synth_expr_parse(s, n, &i, e)) return 0;
    if (i < n && s[i] == '.') i++;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    return i == n;
}

static void rec_fill(struct synth_line *r, const struct synth_expr *e) {
    r->n_terms = e->n_terms;
    r->left = e->left;
    r->result = e->result;
    memcpy(r->op, e->op, sizeof r->op);
    memcpy(r->term, e->term, sizeof r->term);
    r->computed = synth_expr_value(e);
}

/* Judge a conclusion line (rec filled) with k operations shown. */
static void judge_conclusion(const struct synth_problem *p, struct synth_line *r, int k, int n_single,
                             int n_omitted_before) {
    int n = p->n_ops;
    r->bad_term = -1;
    int common = r->n_terms < n ? r->n_terms : n;
    if (r->left != p->operand[0]) r->bad_term = 0;
    for (int t = 0; t < common && r->bad_term < 0; t++)
        if (r->op[t] != p->op[t + 1] || r->term[t] != p->operand[t + 1]) r->bad_term = t + 1;
    if (r->bad_term < 0 && r->n_terms != n) r->bad_term = common + 1;
    if (r->bad_term >= 0 || r->result != p->claim || synth_problem_value(p, n) != p->claim) {
        r->defect = SYNTH_DEFECT_WRONG_CONCLUSION;
        return;
    }
    r->omitted = n - k;
    int total = n_omitted_before + r->omitted;
    if (total >= 2 || (total == 1 && n_single == 0)) r->defect = SYNTH_DEFECT_MISSING;
    else if (r->omitted == 1) r->defect = SYNTH_DEFECT_SKIPPED;
}

/* Judge a step line (rec filled) with k operations shown; returns the operations shown after it. */
static int judge_step(const struct synth_problem *p, const long long *vals, struct synth_line *r, int k,
                      int n_omitted_before) {
    int n = p->n_ops;
    r->bad_term = -1;
    if (r->computed != r->result) {
        r->defect = SYNTH_DEFECT_ARITH;
        return k;
    }
    int j = -1;
    for (int i = k; i < n && j < 0; i++)
        if (vals[i] == r->left) j = i;
    if (j < 0) {
        r->defect = SYNTH_DEFECT_OFF_CHAIN;
        r->bad_term = 0;
        return k;
    }
    for (int t = 0; t < r->n_terms; t++) {
        int idx = j + 1 + t;
        if (idx > n || r->op[t] != p->op[idx] || r->term[t] != p->operand[idx]) {
            r->defect = SYNTH_DEFECT_OFF_CHAIN;
            r->bad_term = t + 1;
            r->from = j;
            return k;
        }
    }
    r->from = j;
    r->to = j + r->n_terms;
    r->omitted = (j - k) + (r->n_terms - 1);
    if (n_omitted_before + r->omitted >= 2) r->defect = SYNTH_DEFECT_MISSING;
    else if (r->omitted == 1) r->defect = j > k ? SYNTH_DEFECT_SKIPPED : SYNTH_DEFECT_MERGED;
    return r->to;
}

void synth_check(const struct synth_problem *p, const char *proof, size_t len, struct synth_verdict *v) {
    memset(v, 0, sizeof *v);
    long long vals[SYNTH_MAX_OPS + 1];
    for (int i = 0; i <= p->n_ops; i++) vals[i] = synth_problem_value(p, i);
    int k = 0, n_single = 0, concluded = 0, fatal = 0;
    size_t pos = 0;
    while (pos < len && !fatal) {
        const char *nl = memchr(proof + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - proof) : len;
        const char *s = proof + pos;
        size_t n = end - pos;
        pos = end + 1;
        while (n && (*s == ' ' || *s == '\t' || *s == '\r')) s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
        if (!n) continue;
        DSM_ASSERT(v->n_rec < SYNTH_MAX_RECS - 1);
        struct synth_line *r = &v->rec[v->n_rec++];
        r->no = ++v->n_lines;
        r->kind = SYNTH_LINE_OTHER;
        r->k_before = k;
        r->bad_term = -1;
        struct synth_expr e;
        size_t c = n <= SYNTH_MAX_LINE ? conclusion_prefix(s, n) : 0;
        if (concluded) {
            r->defect = SYNTH_DEFECT_EXTRA;
        } else if (n > SYNTH_MAX_LINE) {
            r->defect = SYNTH_DEFECT_UNPARSABLE;
        } else if (c) {
            if (!parse_whole(s, n, c, &e)) {
                r->defect = SYNTH_DEFECT_UNPARSABLE;
            } else {
                r->kind = SYNTH_LINE_CONCLUSION;
                rec_fill(r, &e);
                judge_conclusion(p, r, k, n_single, v->n_omitted);
                v->n_omitted += r->omitted;
                concluded = 1;
            }
        } else if (!parse_whole(s, n, 0, &e) || e.n_terms == 0) {
            r->defect = SYNTH_DEFECT_UNPARSABLE;
        } else {
            r->kind = SYNTH_LINE_STEP;
            rec_fill(r, &e);
            k = judge_step(p, vals, r, k, v->n_omitted);
            if (!synth_defect_is_fatal(r->defect)) {
                v->n_omitted += r->omitted;
                if (r->n_terms == 1) n_single++;
            }
        }
        fatal = synth_defect_is_fatal(r->defect);
    }
    if (!fatal && !concluded) {
        struct synth_line *r = &v->rec[v->n_rec++];
        r->no = v->n_lines + 1;
        r->kind = SYNTH_LINE_OTHER;
        r->k_before = k;
        r->bad_term = -1;
        r->defect = v->n_lines ? SYNTH_DEFECT_NO_CONCLUSION : SYNTH_DEFECT_EMPTY;
    }
    /* The decisive defect: the first fatal one, else the first omission. */
    for (int i = 0; i < v->n_rec; i++)
        if (synth_defect_is_fatal(v->rec[i].defect)) {
            v->defect = v->rec[i].defect;
            v->line = v->rec[i].no;
            break;
        }
    if (v->defect == SYNTH_DEFECT_NONE)
        for (int i = 0; i < v->n_rec; i++)
            if (v->rec[i].defect != SYNTH_DEFECT_NONE) {
                v->defect = v->rec[i].defect;
                v->line = v->rec[i].no;
                break;
            }
    v->score = synth_defect_is_fatal(v->defect) ? 0 : v->n_omitted == 1 ? 0.5 : 1;
}
