/* eval.c - greedy accuracy, maj@k and pass@k over sampled outputs; see eval.h. */
#include "common/eval.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

double eval_pass_at_k(int n, int c, int k) {
    if (n - c < k) return 1.0;
    /* 1 - C(n-c, k)/C(n, k) = 1 - prod_{i = n-c+1}^{n} (1 - k / i), stable for large n */
    double prod = 1.0;
    for (int i = n - c + 1; i <= n; i++) prod *= 1.0 - (double)k / i;
    return 1.0 - prod;
}

/* Extract the answer of o into buf; "" when truncated or none found. */
static int answer_of(const struct eval_output *o, unsigned flags, char *buf, size_t cap, struct dsm_err *err) {
    enum ans_found found;
    buf[0] = '\0';
    if (o->truncated) return DSM_OK;
    int rc = ans_extract(o->text, o->len, flags, buf, cap, &found, err);
    if (rc == DSM_EINVAL) { /* an answer longer than the buffer counts as none */
        buf[0] = '\0';
        return DSM_OK;
    }
    return rc;
}

int eval_score_item(struct ans_checker *c, const struct eval_item *item, int k, unsigned flags,
                    struct eval_item_result *out, struct dsm_err *err) {
    memset(out, 0, sizeof *out);
    if (item->n < 0 || k < 1 || k > (item->n ? item->n : 1))
        return dsm_errf(err, DSM_EINVAL, "maj@k window %d is outside [1, %d]", k, item->n);
    struct ans_verdict v;
    char ans[1024];
    int rc;
    out->greedy_correct = -1;
    if (item->greedy) {
        if ((rc = answer_of(item->greedy, flags, ans, sizeof ans, err))) return rc;
        if ((rc = ans_checker_compare(c, item->gold, ans, &v, err))) return rc;
        out->greedy_correct = v.equal;
    }
    if (item->n == 0) return DSM_OK;
    /* answers of all samples; correctness of each; classes over the first k */
    char (*answers)[1024] = malloc(sizeof *answers * (size_t)item->n);
    int *cls = malloc(sizeof(int) * (size_t)item->n), *votes = calloc((size_t)item->n, sizeof(int));
    if (!answers || !cls || !votes) {
        free(answers), free(cls), free(votes);
        return dsm_errf(err, DSM_ENOMEM, "out of memory");
    }
    rc = DSM_OK;
    int nclass = 0;
    int *rep = malloc(sizeof(int) * (size_t)item->n); /* representative sample of each class */
    if (!rep) rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
    for (int i = 0; i < item->n && rc == DSM_OK; i++) {
        if ((rc = answer_of(&item->samples[i], flags, answers[i], sizeof answers[i], err))) break;
        cls[i] = -1;
        if (!answers[i][0]) continue;
        out->answered++;
        if ((rc = ans_checker_compare(c, item->gold, answers[i], &v, err))) break;
        out->n_correct += v.equal;
        if (i >= k) continue;
        for (int j = 0; j < nclass && cls[i] < 0; j++) {
            struct ans_verdict same;
            /* the earlier answer plays "gold": it is known to be a non-empty answer */
            if (ans_checker_compare(c, answers[rep[j]], answers[i], &same, NULL) == DSM_OK && same.equal) cls[i] = j;
        }
        if (cls[i] < 0) {
            rep[nclass] = i;
            cls[i] = nclass++;
        }
        votes[cls[i]]++;
    }
    if (rc == DSM_OK && nclass > 0) {
        int best = 0;
        for (int j = 1; j < nclass; j++)
            if (votes[j] > votes[best]) best = j; /* strict: ties keep the class seen first */
        out->maj_votes = votes[best];
        if ((rc = ans_checker_compare(c, item->gold, answers[rep[best]], &v, err)) == DSM_OK) out->maj_correct = v.equal;
    }
    free(answers), free(cls), free(votes), free(rep);
    return rc;
}

void eval_totals_add(struct eval_totals *t, const struct eval_item_result *r, int n, int k) {
    t->problems++;
    if (r->greedy_correct >= 0) {
        t->greedy_scored++;
        t->greedy_correct += r->greedy_correct;
    }
    t->maj_correct += r->maj_correct;
    if (n >= k && k >= 1) t->pass_sum += eval_pass_at_k(n, r->n_correct, k);
    if (n >= 1) t->pass1_sum += (double)r->n_correct / n;
}
