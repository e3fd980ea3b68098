/* answer_extract.c - find the final answer in a model's output (see answer.h).
 *
 * Order of preference: the last non-empty \boxed{} / \fbox{} (braces balanced, \boxed 5 without
 * braces also accepted), GSM8K's "#### x", a phrase ("the answer is x", "final answer: x"), and
 * only when asked the last number. All of it within the text after the last "</think>".
 */
#include <ctype.h>
#include <string.h>

#include "common/answer.h"

const char *ans_found_name(enum ans_found f) {
    switch (f) {
    case ANS_FOUND_BOXED: return "boxed";
    case ANS_FOUND_HASH: return "hash";
    case ANS_FOUND_PHRASE: return "phrase";
    case ANS_FOUND_LAST_NUMBER: return "last-number";
    default: return "none";
    }
}

/* Last occurrence of needle in s[0..n), or NULL. */
static const char *find_last(const char *s, size_t n, const char *needle) {
    size_t m = strlen(needle);
    if (m > n) return NULL;
    for (size_t i = n - m + 1; i-- > 0;)
        if (!memcmp(s + i, needle, m)) return s + i;
    return NULL;
}

/* Case-insensitive last occurrence. */
static const char *find_last_ci(const char *s, size_t n, const char *needle) {
    size_t m = strlen(needle);
    if (m > n) return NULL;
    for (size_t i = n - m + 1; i-- > 0;)
        if (!strncasecmp(s + i, needle, m)) return s + i;
    return NULL;
}

static int put(const char *from, size_t n, char *out, size_t cap, struct dsm_err *err) {
    while (n && isspace((unsigned char)*from)) from++, n--;
    while (n && isspace((unsigned char)from[n - 1])) n--;
    if (n + 1 > cap)
        return dsm_errf(err, DSM_EINVAL, "answer: the extracted answer (%zu bytes) does not fit "
                        "in %zu bytes", n, cap);
    memcpy(out, from, n);
    out[n] = 0;
    return DSM_OK;
}

/* 1 when s[i] starts a \boxed or \fbox command (not \boxedfoo). *skip = its length. */
static int box_at(const char *s, size_t n, size_t i, size_t *skip) {
    static const char *const names[] = {"\\boxed", "\\fbox"};
    for (size_t k = 0; k < 2; k++) {
        size_t m = strlen(names[k]);
        if (i + m <= n && !memcmp(s + i, names[k], m) &&
            (i + m == n || !isalpha((unsigned char)s[i + m]))) {
            *skip = m;
            return 1;
        }
    }
    return 0;
}

/* Boxed content at s[i] (a box command): 1 found (from/len set), 0 empty, -1 unbalanced. */
static int box_content(const char *s, size_t n, size_t i, size_t skip, const char **from,
                       size_t *len) {
    size_t k = i + skip;
    while (k < n && (s[k] == ' ' || s[k] == '\t')) k++;
    if (k < n && s[k] == '{') {
        int depth = 0;
        for (size_t j = k; j < n; j++) {
            if (s[j] == '\\' && j + 1 < n && (s[j + 1] == '{' || s[j + 1] == '}' || s[j + 1] == '\\')) {
                j++;
                continue;
            }
            if (s[j] == '{') depth++;
            else if (s[j] == '}' && --depth == 0) {
                *from = s + k + 1;
                *len = j - k - 1;
                size_t a = 0;
                while (a < *len && isspace((unsigned char)(*from)[a])) a++;
                return a < *len ? 1 : 0;
            }
        }
        return -1;
    }
    /* \boxed 5: up to white space, '$' or the end */
    size_t j = k;
    while (j < n && !isspace((unsigned char)s[j]) && s[j] != '$') j++;
    *from = s + k;
    *len = j - k;
    return j > k ? 1 : 0;
}

static int is_num_char(int c) { return isdigit(c); }

/* The phrase forms: the answer runs to the end of the line or a sentence end (". " or ".\n" or a
 * final period), and inline math delimiters around it are dropped by normalisation later. */
static const char *const phrases[] = {
    "the final answer is", "final answer:", "the answer is", "answer:",
};

static int from_phrase(const char *s, size_t n, const char **from, size_t *len) {
    const char *best = NULL;
    size_t best_m = 0;
    for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++) {
        const char *p = find_last_ci(s, n, phrases[i]);
        if (p && (!best || p > best)) best = p, best_m = strlen(phrases[i]);
    }
    if (!best) return 0;
    const char *a = best + best_m, *end = s + n;
    while (a < end && (*a == ' ' || *a == ':' || *a == '\t')) a++;
    const char *e = a;
    while (e < end && *e != '\n') {
        if (*e == '.' && (e + 1 == end || isspace((unsigned char)e[1])) &&
            !(e > a && is_num_char((unsigned char)e[-1]) && e + 1 < end && is_num_char((unsigned char)e[1])))
            break;
        e++;
    }
    if (e == a) return 0;
    *from = a;
    *len = (size_t)(e - a);
    return 1;
}

/* Last number: -?digits with optional thousands commas, decimals, or a/b. */
static int last_number(const char *s, size_t n, const char **from, size_t *len) {
    size_t i = n;
    while (i > 0 && !isdigit((unsigned char)s[i - 1])) i--;
    if (!i) return 0;
    size_t e = i, b = i;
    while (b > 0 && (isdigit((unsigned char)s[b - 1]) ||
                     ((s[b - 1] == '.' || s[b - 1] == ',' || s[b - 1] == '/') && b >= 2 &&
                      isdigit((unsigned char)s[b - 2]))))
        b--;
    if (b > 0 && s[b - 1] == '-') b--;
    *from = s + b;
    *len = e - b;
    return 1;
}

int ans_extract(const char *text, size_t len, unsigned flags, char *out, size_t cap,
                enum ans_found *found, struct dsm_err *err) {
    *found = ANS_FOUND_NONE;
    if (cap < 1) return dsm_errf(err, DSM_EINVAL, "answer: output buffer of size 0");
    out[0] = 0;
    const char *s = text;
    size_t n = len;
    const char *think = find_last(s, n, "</think>");
    if (think) {
        n -= (size_t)(think + 8 - s);
        s = think + 8;
    }
    /* boxes: scan backwards for the last non-empty one */
    for (size_t i = n; i-- > 0;) {
        size_t skip;
        if (s[i] != '\\' || !box_at(s, n, i, &skip)) continue;
        const char *from;
        size_t m;
        int rc = box_content(s, n, i, skip, &from, &m);
        if (rc < 0) return DSM_OK; /* truncated last box: no answer */
        if (rc == 0) continue;
        *found = ANS_FOUND_BOXED;
        return put(from, m, out, cap, err);
    }
    const char *h = find_last(s, n, "####");
    if (h) {
        const char *a = h + 4, *end = s + n, *e;
        while (a < end && (*a == ' ' || *a == '\t')) a++;
        for (e = a; e < end && *e != '\n'; e++) {}
        if (e > a) {
            *found = ANS_FOUND_HASH;
            return put(a, (size_t)(e - a), out, cap, err);
        }
    }
    const char *from;
    size_t m;
    if (from_phrase(s, n, &from, &m)) {
        *found = ANS_FOUND_PHRASE;
        return put(from, m, out, cap, err);
    }
    if ((flags & ANS_EXTRACT_LAST_NUMBER) && last_number(s, n, &from, &m)) {
        *found = ANS_FOUND_LAST_NUMBER;
        return put(from, m, out, cap, err);
    }
    return DSM_OK;
}
