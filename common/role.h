/* role.h - what the three V2 roles (generator, verifier, meta-verifier) share when they read a
 * model's output and build a prompt: the </think> rule, marker and heading search outside fenced
 * code blocks, the score box and its value, failure reasons, and prompt templates.
 *
 * SPEC §2 is the source of every rule here; docs/roles.md states each decision and its reason.
 * In short:
 *   - only the text after the last "</think>" is read; a "<think>" with no "</think>" after it
 *     (the model never stopped thinking) is a format failure;
 *   - markers and section headings count only outside fenced code blocks (``` or ~~~ lines; a
 *     fence that is never closed is not a fence);
 *   - the score is the last non-empty \boxed{} of the region it belongs to, read with the brace
 *     counter of common/answer.h (ans_extract), and must be a plain numeral worth exactly 0, 0.5
 *     or 1 ("0", "1", "0.5", "1.0", "0.50"...): anything else is a format failure;
 *   - an output cut off by the token limit is never scored.
 *
 * Everything here is pure: no allocation except where a function says it returns a new string,
 * no global state, thread-safe. Spans point into the caller's text and live as long as it does.
 */
#ifndef DSM_ROLE_H
#define DSM_ROLE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* A piece of the caller's text: p == NULL means absent (n is then 0). */
struct role_span {
    const char *p;
    size_t n;
};

/* A score of 0, 0.5 or 1; ROLE_NO_SCORE when there is none (format failure, cut off). */
#define ROLE_NO_SCORE (-1.0)

/* Why an output is not well formed. ROLE_OK when it is. Names: role_fail_name(). */
enum role_fail {
    ROLE_OK = 0,
    ROLE_FAIL_TRUNCATED,       /* finish reason was not "stop" (cut by the token limit) */
    ROLE_FAIL_EMPTY,           /* nothing but white space after the last </think> */
    ROLE_FAIL_THINK_UNCLOSED,  /* a <think> with no </think> after it */
    ROLE_FAIL_NO_BEGIN_MARKER, /* the analysis marker ("Here is my evaluation ...") is missing */
    ROLE_FAIL_NO_SCORE_MARKER, /* the score marker ("Based on my evaluation ...") is missing */
    ROLE_FAIL_MARKER_ORDER,    /* the score marker comes before the analysis marker */
    ROLE_FAIL_EMPTY_ANALYSIS,  /* nothing between the two markers */
    ROLE_FAIL_NO_SOLUTION,     /* generator: no "## Solution" heading */
    ROLE_FAIL_NO_SELF_EVAL,    /* generator: no "## Self Evaluation" heading after it */
    ROLE_FAIL_EMPTY_PROOF,     /* generator: nothing between the two headings */
    ROLE_FAIL_NO_BOX,          /* no closed, non-empty \boxed{} where the score belongs */
    ROLE_FAIL_BAD_SCORE,       /* the last box is not 0, 0.5 or 1 */
    ROLE_FAIL_COUNT
};

/* A short stable name ("ok", "truncated", "no-score-marker", ...). Never NULL. */
const char *role_fail_name(enum role_fail f);

/* ---- reading outputs ------------------------------------------------------------------------ */

/* The part of text[0..len) that is read: after the last "</think>", white space trimmed.
 * Returns ROLE_OK, ROLE_FAIL_THINK_UNCLOSED or ROLE_FAIL_EMPTY; *out is set in every case (to the
 * trimmed tail, possibly empty). */
enum role_fail role_after_think(const char *text, size_t len, struct role_span *out);

/* Trim ASCII white space from both ends of s. */
struct role_span role_trim(struct role_span s);

/* Find the markers in s, skipping fenced code blocks. needles[i] is a NULL-terminated list of the
 * spellings of marker i (nm <= 4 markers). first[i] receives the earliest occurrence of any
 * spelling and last[i] the latest, each as the span of the matched text (p NULL when never seen).
 * first or last may be NULL. */
void role_find_markers(struct role_span s, const char *const *const *needles, int nm,
                       struct role_span *first, struct role_span *last);

/* Section headings of a generator output, outside fenced code blocks: the first line that is
 * "## Solution" or a starred form ("**Solution**", "* Solution *", "*** Solution ***") and the
 * first "## Self Evaluation" / "**Self Evaluation**" line after it (leading and trailing blanks on
 * the line allowed, nothing else). The spans cover the heading line without its newline. */
void role_find_sections(struct role_span s, struct role_span *solution, struct role_span *self_eval);

/* The score in s: the last non-empty \boxed{} (ans_extract's brace counter; a last box that never
 * closes means none), parsed with role_score_parse. Sets *score (ROLE_NO_SCORE unless ROLE_OK) and
 * copies the box content (trimmed, NUL-terminated) into box[box_cap] when box is not NULL: "" when
 * there is no box, the first box_cap - 4 bytes and "..." when it is longer (box_cap >= 8), and
 * only "..." for a box over ANS_MAX_LEN bytes (which is never a score).
 * Returns ROLE_OK, ROLE_FAIL_NO_BOX or ROLE_FAIL_BAD_SCORE. */
enum role_fail role_score_box(struct role_span s, double *score, char *box, size_t box_cap);

/* Parse a score string: optional blanks, then "0" or "1" optionally followed by "." and one or
 * more digits, worth exactly 0, 0.5 or 1 ("0", "0.0", "0.5", "0.50", "1", "1.00"); 0 on success
 * with *score set, -1 otherwise ("2", "1.5", ".5", "1/2", "\frac{1}{2}", "-0", "one", "1.", ""). */
int role_score_parse(const char *s, size_t n, double *score);

/* The text after marker up to end, trimmed, without the "**" closing a bold marker (when marker
 * is not empty) or opening one at end (when end_is_marker). */
struct role_span role_between(struct role_span marker, const char *end, int end_is_marker);

/* Read a verifier-style analysis in s: the first analysis marker (any spelling in begin), the last
 * score marker (any spelling in score_markers) after it, the analysis between them (trimmed,
 * non-empty) and the score as the last non-empty box after the score marker (role_score_box).
 * *analysis is filled as far as the markers allow even on failure (everything after the analysis
 * marker when the score marker is missing; all of s when both are). Returns ROLE_OK or the first
 * failure in the order: no analysis marker, no score marker, marker order, empty analysis, no box,
 * bad score. box as role_score_box. */
enum role_fail role_parse_analysis(struct role_span s, const char *const *begin,
                                   const char *const *score_markers, struct role_span *analysis,
                                   double *score, char *box, size_t box_cap);

/* ---- prompt templates ---------------------------------------------------------------------- */

/* A prompt template: text with {{name}} placeholders. Built-in templates are compiled into each
 * role's library from its prompts/ folder (see docs/roles.md); role_template_load reads one from a
 * file for experiments. `id` names exactly what was used and is recorded with every row a role
 * writes: "<name>.<version>@<first 12 hex digits of the text's SHA-256>" for built-ins,
 * "file:<basename>@<12 hex of FNV-1a 64>" for loaded files. */
struct role_template {
    const char *name; /* "generate", "refine", "verify", "metaverify" */
    const char *text; /* borrowed (built-in) or owned (loaded) */
    char id[160];
    char *owned;      /* non-NULL for loaded templates: role_template_free releases it */
};

/* Load a template from path into *t (t->name = "file"). Errors: DSM_ENOTFOUND / DSM_EIO naming
 * the file, DSM_EINVAL when it is empty or has an unterminated "{{". Free with role_template_free. */
int role_template_load(const char *path, struct role_template *t, struct dsm_err *err);

/* Release what role_template_load allocated; a built-in or zeroed template is fine. */
void role_template_free(struct role_template *t);

/* Render t: every {{key}} is replaced by the matching value (values are not re-scanned). Errors:
 * DSM_EINVAL naming a placeholder with no value, or a value given for a key the template lacks
 * (a template that forgets the proof is a bug worth stopping for). *out is a new NUL-terminated
 * string the caller frees; *len may be NULL. */
int role_template_render(const struct role_template *t, const char *const *keys,
                         const char *const *vals, int n, char **out, size_t *len,
                         struct dsm_err *err);

/* Fill a built-in template: name, version ("v1"), the text and its SHA-256 prefix (hex). */
void role_template_builtin(struct role_template *t, const char *name, const char *version,
                           const char *text, const char *sha12);

#endif
