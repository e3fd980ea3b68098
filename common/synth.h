/* synth.h - the synthetic proof domain of the embedded default (SPEC §7): arithmetic-chain claims
 * whose every proof, verifier analysis and meta-verification a program checks exactly.
 *
 * A problem claims the value of a left-to-right chain of additions and subtractions:
 *     Show that 37 + 48 - 19 = 66.
 * A proof shows one operation per line and ends with a conclusion that restates the claim:
 *     37 + 48 = 85
 *     85 - 19 = 66
 *     So 37 + 48 - 19 = 66.
 * The checker (synth_check) gives the true score by SPEC's rubric mapped to this domain:
 *     1    every operation shown on its own line, right, in order, and the conclusion follows;
 *     0.5  all right, but exactly one operation is not shown (a skipped or a merged step);
 *     0    a wrong step (arithmetic, or not the problem's operation), a wrong or missing
 *          conclusion, more than one operation not shown, text that is not a step.
 * Analyses of proofs ("Line 2: 85 - 19 = 66, not 67. Wrong.") follow the verifier markers of
 * SPEC §2; synth_analysis_check gives their true meta score. docs/synth.md has every rule.
 *
 * Everything is deterministic: a problem from (seed, index, difficulty), a planted error or a
 * flawed analysis from its own seed; no global state. All functions are thread-safe; they read
 * their inputs only during the call and write into caller buffers (nothing to free except the
 * jansson records of synth_sft_record).
 */
#ifndef DSM_SYNTH_H
#define DSM_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SYNTH_MAX_OPS 8         /* operations in a problem (parsed ones too) */
#define SYNTH_MAX_DIFFICULTY 5  /* difficulties are 1..5 */
#define SYNTH_MAX_DIGITS 15     /* longer numbers are not numbers here (no overflow possible) */
#define SYNTH_MAX_LINE 256      /* longer proof lines are not steps */
#define SYNTH_MAX_RECS (SYNTH_MAX_OPS + 3) /* lines a check can examine before it must stop */
#define SYNTH_TEXT_CAP 4096     /* every writer's output fits in this many bytes (with the NUL) */

/* ---- problems ------------------------------------------------------------------------------ */

struct synth_problem {
    int n_ops;                            /* 1..SYNTH_MAX_OPS operations */
    long long operand[SYNTH_MAX_OPS + 1]; /* operand[0] the start value, operand[i] the i-th term */
    char op[SYNTH_MAX_OPS + 1];           /* op[i] is '+' or '-' for i >= 1 (op[0] unused) */
    long long claim;                      /* the value the problem claims */
    int difficulty;                       /* 1..5 when generated, 0 when parsed from text */
};

/* Generate problem `index` of the stream `seed` at `difficulty` (1..5) into *p: a true claim;
 * every intermediate value is non-negative and (almost always) distinct from the others.
 * Difficulty sets steps and digits: 1: 2 steps of 1 digit, 2: 2 of 2, 3: 3 of 2, 4: 4 of 2-3,
 * 5: 5 of 3. Errors: DSM_EINVAL for a difficulty outside 1..5. */
int synth_problem_generate(uint64_t seed, uint64_t index, int difficulty, struct synth_problem *p,
                           struct dsm_err *err);

/* The difficulty of item `index` when a stream draws them uniformly from lo..hi (deterministic). */
int synth_difficulty_pick(uint64_t seed, uint64_t index, int lo, int hi);

/* Parse "Show that 37 + 48 - 19 = 66." (whitespace-tolerant, final period optional; false claims
 * are accepted) into *p: 1..SYNTH_MAX_OPS operations, a non-negative start, numbers and every
 * intermediate value within SYNTH_MAX_DIGITS digits. Errors: DSM_EINVAL naming what is wrong. */
int synth_problem_parse(const char *text, size_t len, struct synth_problem *p, struct dsm_err *err);

/* The value after the first k operations (0 <= k <= n_ops). */
long long synth_problem_value(const struct synth_problem *p, int k);

/* 1 when the claim equals the chain's value. */
int synth_problem_is_true(const struct synth_problem *p);

/* Write the problem's text ("Show that ... = v.") into out[cap]; returns its length, or -1 when it
 * does not fit (out is then ""). */
int synth_problem_text(const struct synth_problem *p, char *out, size_t cap);

/* ---- the proof checker --------------------------------------------------------------------- */

enum synth_defect {
    SYNTH_DEFECT_NONE = 0,
    SYNTH_DEFECT_ARITH,            /* "wrong_step": the line's arithmetic is wrong */
    SYNTH_DEFECT_OFF_CHAIN,        /* "off_chain": not the problem's next operation / value */
    SYNTH_DEFECT_SKIPPED,          /* "skipped": one operation's result used, never shown (0.5) */
    SYNTH_DEFECT_MERGED,           /* "merged": two operations in one line (0.5) */
    SYNTH_DEFECT_MISSING,          /* "missing_steps": more than one operation not shown */
    SYNTH_DEFECT_WRONG_CONCLUSION, /* "wrong_conclusion": conclusion differs from claim or steps */
    SYNTH_DEFECT_NO_CONCLUSION,    /* "no_conclusion" */
    SYNTH_DEFECT_UNPARSABLE,       /* "unparsable": a line that is neither step nor conclusion */
    SYNTH_DEFECT_EXTRA,            /* "extra_text": a line after the conclusion */
    SYNTH_DEFECT_EMPTY,            /* "empty": no non-blank line at all */
    SYNTH_DEFECT_COUNT_
};

/* "none", "wrong_step", ... (the names above); "?" for an out-of-range value. */
const char *synth_defect_name(enum synth_defect d);

/* 1 when the defect makes the score 0, 0 for SKIPPED/MERGED (and NONE). */
int synth_defect_is_fatal(enum synth_defect d);

enum synth_line_kind { SYNTH_LINE_STEP, SYNTH_LINE_CONCLUSION, SYNTH_LINE_OTHER };

/* One examined line of a proof, as written and as judged. */
struct synth_line {
    int no;                   /* 1-based among non-blank lines (n+1 for a missing conclusion) */
    enum synth_line_kind kind;
    enum synth_defect defect; /* NONE when the line is fine */
    int n_terms;              /* STEP/CONCLUSION: terms after the left value */
    long long left, result;   /* as written */
    char op[SYNTH_MAX_OPS];   /* as written */
    long long term[SYNTH_MAX_OPS];
    long long computed;       /* the written expression's true value (overflow-free) */
    int from, to;             /* problem operations the line covers: from+1..to (steps only) */
    int k_before;             /* operations shown before this line */
    int bad_term;             /* OFF_CHAIN: 0 the left value is wrong, i >= 1 the i-th term,
                               * n_terms+1: more terms than the problem has left */
    int omitted;              /* operations this line leaves unshown */
};

struct synth_verdict {
    double score;             /* 0, 0.5 or 1 */
    enum synth_defect defect; /* the first fatal defect, else the omission, else NONE */
    int line;                 /* its line number, 0 with NONE */
    int n_lines;              /* non-blank lines examined (the check stops at a fatal defect) */
    int n_omitted;            /* operations not shown */
    int n_rec;
    struct synth_line rec[SYNTH_MAX_RECS]; /* the examined lines in order (+ a NO_CONCLUSION one) */
};

/* Check proof[0..len) (any bytes) against p and fill *v. Never fails; never reads past len. */
void synth_check(const struct synth_problem *p, const char *proof, size_t len,
                 struct synth_verdict *v);

/* ---- proof writers (planted errors) ---------------------------------------------------------- */

enum synth_plant {
    SYNTH_PLANT_NONE = 0,      /* a correct proof (score 1) */
    SYNTH_PLANT_ARITH,         /* one step's result off (0) */
    SYNTH_PLANT_COPY,          /* one step uses a wrong operand, right arithmetic (0) */
    SYNTH_PLANT_SKIP,          /* one step left out, the next starts from its result (0.5) */
    SYNTH_PLANT_MERGE,         /* two steps in one line (0.5); needs 3+ operations, else SKIP */
    SYNTH_PLANT_CONCLUSION,    /* right steps, the conclusion states another value (0) */
    SYNTH_PLANT_NO_CONCLUSION, /* right steps, no conclusion (0) */
    SYNTH_PLANT_FORCE,         /* one step off (a slip or a mis-copied operand), later steps continue
                                * from it, but the last step is forced to the claimed value, so the
                                * proof still "reaches" the claim (0); needs 2+ operations, else ARITH */
    SYNTH_PLANT_COUNT_
};

/* "none", "arith", "copy", "skip", "merge", "conclusion", "no_conclusion"; "?" when out of range. */
const char *synth_plant_name(enum synth_plant k);
/* The plant named s, or -1. */
int synth_plant_from_name(const char *s);
/* The score a proof with this plant has: 1, 0.5 or 0. */
double synth_plant_score(enum synth_plant k);

/* Write a proof of p with the planted error `plant` (where and how chosen from seed) into
 * out[cap]. *planted (may be NULL) receives the plant actually written (MERGE becomes SKIP for a
 * one- or two-operation problem; SKIP/MERGE/COPY of a one-operation problem become ARITH).
 * Returns the length, or -1 when it does not fit in cap (SYNTH_TEXT_CAP always fits). */
/* Write a proof of p whose first step with a carry (units digits adding to 10 or more) or a
 * borrow (units digit of the left side smaller) has the carry dropped: its result is 10 too
 * small (addition) or 10 too large (subtraction); later steps continue from it, and the
 * conclusion restates the claim. *dropped receives 1, or 0 when no step carries (then the
 * proof is correct). Returns the length, or -1 when it does not fit. */
int synth_proof_write_carry(const struct synth_problem *p, char *out, size_t cap, int *dropped);

int synth_proof_write(const struct synth_problem *p, enum synth_plant plant, uint64_t seed,
                      char *out, size_t cap, enum synth_plant *planted);

/* ---- verifier analyses --------------------------------------------------------------------- */

#define SYNTH_V_BEGIN "Here is my evaluation of the solution:"
#define SYNTH_V_END "Based on my evaluation, the final overall score should be:"
#define SYNTH_M_BEGIN "Here is my analysis of the \"solution evaluation\":"
#define SYNTH_M_END "Based on my analysis, I will rate the \"solution evaluation\" as:"

enum synth_aflaw {
    SYNTH_AFLAW_NONE = 0,    /* the correct analysis */
    SYNTH_AFLAW_FALSE_ISSUE, /* blames a line that is right (meta score 0) */
    SYNTH_AFLAW_MISSED,      /* calls every line right and scores 1 on a flawed proof (0) */
    SYNTH_AFLAW_WRONG_SCORE, /* right walk, a score that does not follow (0.5) */
    SYNTH_AFLAW_EXPR_ERROR,  /* right verdicts, one recomputation written wrong (0.5) */
    SYNTH_AFLAW_COUNT_
};

/* "none", "false_issue", "missed", "wrong_score", "expr_error"; "?" when out of range. */
const char *synth_aflaw_name(enum synth_aflaw f);
int synth_aflaw_from_name(const char *s);

/* 1 when flaw f can be written for a proof with verdict v: FALSE_ISSUE needs a right step or
 * conclusion line before the decisive defect, MISSED a score below 1, EXPR_ERROR a step line with
 * an equation to restate; NONE and WRONG_SCORE always apply. */
int synth_aflaw_applies(const struct synth_verdict *v, enum synth_aflaw f);

/* Write a verifier analysis of the proof whose verdict is v (from synth_check against p), with
 * flaw f (details chosen from seed), into out[cap]: the SPEC markers, one "Line i: ... Verdict."
 * line per examined line, the score box. *score (may be NULL) receives the score written.
 * Returns the length; -1 when it does not fit; -2 when the flaw does not apply (out is then ""). */
int synth_analysis_write(const struct synth_problem *p, const struct synth_verdict *v,
                         enum synth_aflaw f, uint64_t seed, char *out, size_t cap, double *score);

/* What an analysis text says and whether it is right (the meta-verification ground truth). */
struct synth_analysis_verdict {
    int format_ok;      /* role_parse_analysis reads it: markers in order, a 0/0.5/1 box */
    double score;       /* the analysis's score (valid when format_ok) */
    int n_flagged;      /* "Line i:" lines ending in Wrong or Incomplete */
    int n_false;        /* of those, lines with no real defect */
    int first_flagged;  /* line number of the first flagged line, 0 none */
    int first_false;    /* line number of the first falsely flagged line, 0 none */
    int first_real;     /* line number of the first rightly flagged line, 0 none */
    int n_expr_errors;  /* equations "a + b = c" in the analysis whose arithmetic is wrong */
    char expr_bad[96];  /* the first of them, as written ("" none) */
    double ms;          /* the true meta score (docs/synth.md "Meta rule") */
    int right;          /* ms == 1: score equals the true score and every blamed issue is real */
};

/* Judge analysis[0..len) (any bytes; read with common/role.h: only text after the last </think>,
 * markers outside code fences) of a proof with verdict v. Never fails. */
void synth_analysis_check(const struct synth_verdict *v, const char *analysis, size_t len,
                          struct synth_analysis_verdict *av);

/* Write the meta-verifier's output for an analysis judged av of a proof with verdict v: SPEC's
 * meta markers, a short re-check of the blamed line (or of the missed one), the box with av->ms.
 * Returns the length, or -1 when it does not fit. */
int synth_meta_write(const struct synth_problem *p, const struct synth_verdict *v,
                     const struct synth_analysis_verdict *av, char *out, size_t cap);

/* ---- generator outputs ----------------------------------------------------------------------- */

/* Write "## Solution\n<proof>\n## Self Evaluation\n<analysis>" for proof[0..len) with verdict v.
 * honest: the correct analysis; otherwise a flawed proof is claimed right (MISSED, score 1) and a
 * correct one gets the correct analysis. Returns the length, or -1 when it does not fit.
 * Outputs of every role are read back with the role parsers (common/role.h, ver_parse, mver_parse,
 * gen_parse): this module has no parser of its own for markers, boxes or headings. */
int synth_gen_write(const struct synth_problem *p, const char *proof, size_t len,
                    const struct synth_verdict *v, int honest, char *out, size_t cap);

/* ---- prompts and SFT data ------------------------------------------------------------------- */

enum synth_role { SYNTH_ROLE_GENERATOR = 0, SYNTH_ROLE_VERIFIER, SYNTH_ROLE_METAVERIFIER };

/* "generator", "verifier", "metaverifier" and back (-1 for an unknown name; "meta" is accepted). */
const char *synth_role_name(enum synth_role r);
int synth_role_from_name(const char *s);

/* The compact prompt template of a role (docs/synth.md "Prompts"): a built-in role_template
 * (common/role.h) named "synth_generate" / "synth_verify" / "synth_metaverify" with the role
 * libraries' placeholders ({{problem}}, {{proof}}, {{analysis}}), so gen_prompt_build,
 * ver_prompt_build and mver_prompt_build given this template build exactly the SFT prompts. The
 * text is static (nothing to free). */
struct role_template;
void synth_template(enum synth_role role, struct role_template *t);

/* Render role's template with the problem text and, for the roles that take them, the proof and
 * the analysis (trailing white space trimmed, as the role parsers hand them over; NULL = "").
 * Returns the length, or -1 when it does not fit in cap. */
int synth_prompt(enum synth_role role, const char *problem_text, const char *proof,
                 const char *analysis, char *out, size_t cap);

/* The mix of an SFT stream (docs/synth.md "SFT mix"). */
struct synth_sft_opts {
    int diff_lo, diff_hi;      /* difficulty range, 1 <= lo <= hi <= 5 */
    double plant_w[SYNTH_PLANT_COUNT_]; /* proof kinds: relative weights (verifier, metaverifier,
                                         * and the flawed share of the generator) */
    double ver_noise;          /* verifier: share of responses that are flawed analyses */
    double aflaw_w[SYNTH_AFLAW_COUNT_]; /* metaverifier: analysis kinds; verifier noise kinds */
    double gen_flawed;         /* generator: share of flawed proofs */
    double gen_dishonest;      /* generator: share of the flawed ones claimed right */
    double gen_carry_drop;     /* generator: share of the otherwise correct proofs whose first
                                * carry or borrow is dropped, believed right (a systematic
                                * error, as people make; 0 in the default mix) */
};

/* Fill o with the documented defaults. */
void synth_sft_opts_default(struct synth_sft_opts *o);

/* Check o (ranges, weights non-negative with a positive sum). Errors: DSM_EINVAL naming the field. */
int synth_sft_opts_check(const struct synth_sft_opts *o, struct dsm_err *err);

/* One SFT record {"prompt","response","meta":{...}} for item `index` of stream `seed` and role.
 * *out is a new jansson reference (caller json_decref's it). Errors: DSM_ENOMEM, DSM_EINVAL for bad
 * options. */
struct json_t;
int synth_sft_record(enum synth_role role, uint64_t seed, uint64_t index,
                     const struct synth_sft_opts *o, struct json_t **out, struct dsm_err *err);

/* Turn a record of synth_sft_record in place into the chat form {"messages": [{"role": "user",
 * "content": prompt}, {"role": "assistant", "content": response}], "meta"}: trained with the
 * model's chat format, exactly as the services and the native lm render the prompt when they
 * sample. Errors: DSM_EINVAL when rec lacks the strings, DSM_ENOMEM. */
int synth_sft_to_messages(struct json_t *rec, struct dsm_err *err);

#endif
