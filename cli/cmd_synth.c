/* cmd_synth.c - `dsm synth problems|proof|check|analyze|sft|template`: the synthetic proof domain
 * of the embedded default (common/synth.h, docs/synth.md) from the command line.
 *
 *   problems  seeded problems as JSONL
 *   proof     a correct proof or one with a planted error
 *   check     the true score of a proof (and, given an analysis, the true meta score of it), JSON
 *   analyze   a verifier analysis (correct or flawed), a meta-verifier output, a generator output
 *   sft       SFT records {"prompt","response","meta"} for one role, JSONL
 *   template  the compact prompt template of a role (for role_template_load)
 * Exit codes: 0 ok, 2 usage or bad input (a bad problem text, an unreadable file), 3 output failed.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/role.h"
#include "common/synth.h"
#include "common/util.h"

static const char *synth_summary =
    "The synthetic proof domain of the embedded default (docs/synth.md). Subcommands:\n"
    "  problems   seeded problems as JSONL: --n N --seed S --difficulty A..B\n"
    "  proof      a proof of a problem, correct or with a planted error (--plant KIND)\n"
    "  check      the true score of a proof, and of an analysis of it, as JSON\n"
    "  analyze    write a verifier analysis (--flaw KIND), a meta-verifier output (--analysis-file)\n"
    "             or a generator output (--role generator [--dishonest])\n"
    "  sft        SFT records for one role as JSONL: --role R --n N --seed S\n"
    "  template   print a role's compact prompt template (--role R)\n"
    "'dsm synth SUBCOMMAND --help' lists its options.";

static int usage_synth(FILE *f) {
    fprintf(f, "usage: dsm synth problems|proof|check|analyze|sft|template [options]\n\n%s\n", synth_summary);
    return 0;
}

/* "2" or "1..3" (also "1-3") into lo, hi within 1..5. */
static int parse_range(const char *cmd, const char *s, int *lo, int *hi) {
    char *end = NULL;
    long a = strtol(s, &end, 10), b = a;
    if (end == s) goto bad;
    if (!strncmp(end, "..", 2)) {
        const char *t = end + 2;
        b = strtol(t, &end, 10);
        if (end == t) goto bad;
    } else if (*end == '-') {
        const char *t = end + 1;
        b = strtol(t, &end, 10);
        if (end == t) goto bad;
    }
    if (*end || a < 1 || b > SYNTH_MAX_DIFFICULTY || a > b) goto bad;
    *lo = (int)a;
    *hi = (int)b;
    return 0;
bad:
    return cli_usage_error(cmd, "--difficulty expects D or A..B within 1..%d, got '%s'", SYNTH_MAX_DIFFICULTY, s);
}

/* A comma-separated list of exactly n non-negative weights. */
static int parse_weights(const char *cmd, const char *flag, const char *s, double *w, int n) {
    const char *p = s;
    for (int i = 0; i < n; i++) {
        char *end = NULL;
        double x = strtod(p, &end);
        if (end == p || !(x >= 0 && x <= 1e9))
            return cli_usage_error(cmd, "%s: element %d of '%s' is not a non-negative number", flag, i + 1, s);
        w[i] = x;
        p = end;
        if (i + 1 < n) {
            if (*p != ',') return cli_usage_error(cmd, "%s expects %d comma-separated weights, got '%s'", flag, n, s);
            p++;
        }
    }
    if (*p) return cli_usage_error(cmd, "%s expects %d comma-separated weights, got '%s'", flag, n, s);
    return 0;
}

/* Read a whole file ("-" = stdin) into a new buffer. */
static int read_text(const char *path, char **out, size_t *len, struct dsm_err *err) {
    if (strcmp(path, "-")) return dsm_file_read(path, out, len, err);
    size_t cap = 1 << 14, n = 0;
    char *buf = malloc(cap);
    if (!buf) return dsm_errf(err, DSM_ENOMEM, "out of memory reading stdin");
    for (;;) {
        if (n + 1 >= cap) {
            char *q = realloc(buf, cap *= 2);
            if (!q) {
                free(buf);
                return dsm_errf(err, DSM_ENOMEM, "out of memory reading stdin");
            }
            buf = q;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, stdin);
        n += k;
        if (k == 0) break;
    }
    if (ferror(stdin)) {
        free(buf);
        return dsm_errf(err, DSM_EIO, "reading stdin failed");
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return DSM_OK;
}

/* Print j as one compact line and release it; 3 when stdout fails. */
static int print_json(json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) {
        fprintf(stderr, "dsm synth: out of memory writing JSON\n");
        return 3;
    }
    int bad = puts(s) == EOF;
    free(s);
    if (bad) {
        fprintf(stderr, "dsm synth: writing stdout failed\n");
        return 3;
    }
    return 0;
}

/* The problem from --problem TEXT or from (--seed, --index, --difficulty). */
static int get_problem(const char *cmd, const char *text, long seed, long index, int difficulty,
                       struct synth_problem *p) {
    struct dsm_err err = {0};
    if (text) {
        if (synth_problem_parse(text, strlen(text), p, &err)) return cli_fail(cmd, &err);
        return 0;
    }
    if (seed < 0 || index < 0) return cli_usage_error(cmd, "give --problem TEXT, or --seed S and --index I (>= 0)");
    if (synth_problem_generate((uint64_t)seed, (uint64_t)index, difficulty, p, &err)) return cli_fail(cmd, &err);
    return 0;
}

/* One text from --NAME TEXT or --NAME-file F; *owned is set when it was read from a file. */
static int get_text(const char *cmd, const char *flag, const char *text, const char *file, const char **out,
                    size_t *len, char **owned) {
    *owned = NULL;
    if (text && file) return cli_usage_error(cmd, "give only one of --%s and --%s-file", flag, flag);
    if (text) {
        *out = text;
        *len = strlen(text);
        return 0;
    }
    if (!file) {
        *out = NULL;
        return 0;
    }
    struct dsm_err err = {0};
    if (read_text(file, owned, len, &err)) return cli_fail(cmd, &err);
    *out = *owned;
    return 0;
}

static int synth_problems(int argc, char **argv) {
    long n = 10, seed = 1, start = 0;
    const char *diff = "1..3";
    const struct cli_opt opts[] = {
        {"--n", CLI_LONG, &n, "N", "how many problems (default 10)"},
        {"--seed", CLI_LONG, &seed, "S", "stream seed (default 1)"},
        {"--start", CLI_LONG, &start, "I", "first index (default 0)"},
        {"--difficulty", CLI_STR, &diff, "A..B", "difficulty or range within 1..5 (default 1..3)"},
    };
    const struct cli_cmd_spec spec = {
        "synth problems", "[--n N] [--seed S] [--start I] [--difficulty A..B]",
        "Write problems index start..start+n-1 of stream S as JSONL: {\"index\", \"problem\",\n"
        "\"difficulty\", \"steps\", \"claim\"}. Each is a pure function of (seed, index, difficulty);\n"
        "the difficulty of an item is drawn uniformly from the range, also from (seed, index).",
        opts, sizeof opts / sizeof opts[0], 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    int lo, hi;
    if ((rc = parse_range("synth problems", diff, &lo, &hi))) return rc;
    if (n < 0 || seed < 0 || start < 0)
        return cli_usage_error("synth problems", "--n, --seed and --start must not be negative");
    for (long i = start; i < start + n; i++) {
        int d = synth_difficulty_pick((uint64_t)seed, (uint64_t)i, lo, hi);
        struct synth_problem p;
        struct dsm_err err = {0};
        if (synth_problem_generate((uint64_t)seed, (uint64_t)i, d, &p, &err)) return cli_fail("synth problems", &err);
        char text[256];
        synth_problem_text(&p, text, sizeof text);
        json_t *j = json_pack("{s:I,s:s,s:i,s:i,s:I}", "index", (json_int_t)i, "problem", text, "difficulty", d,
                              "steps", p.n_ops, "claim", (json_int_t)p.claim);
        if ((rc = print_json(j))) return rc;
    }
    return 0;
}

static int synth_proof(int argc, char **argv) {
    const char *problem = NULL, *plant_name = "none";
    long seed = -1, index = -1, plant_seed = 0;
    int difficulty = 2, as_json = 0;
    const struct cli_opt opts[] = {
        {"--problem", CLI_STR, &problem, "TEXT", "the problem ('Show that 37 + 48 - 19 = 66.')"},
        {"--seed", CLI_LONG, &seed, "S", "or: the problem stream's seed ..."},
        {"--index", CLI_LONG, &index, "I", "... the item's index ..."},
        {"--difficulty", CLI_INT, &difficulty, "D", "... and its difficulty 1..5 (default 2)"},
        {"--plant", CLI_STR, &plant_name, "KIND",
         "none|arith|copy|skip|merge|conclusion|no_conclusion|force (default none)"},
        {"--plant-seed", CLI_LONG, &plant_seed, "N", "where and how the error goes (default 0)"},
        {"--json", CLI_FLAG, &as_json, NULL, "print {\"problem\",\"proof\",\"plant\",\"score\",\"defect\"}"},
    };
    const struct cli_cmd_spec spec = {
        "synth proof", "(--problem TEXT | --seed S --index I [--difficulty D]) [--plant KIND] [--json]",
        "Write a proof of the problem: correct, or with one planted error of the given kind. The\n"
        "plant actually written can differ for short problems (merge needs 3 operations).",
        opts, sizeof opts / sizeof opts[0], 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    int k = synth_plant_from_name(plant_name);
    if (k < 0) return cli_usage_error("synth proof", "unknown --plant '%s'", plant_name);
    struct synth_problem p;
    if ((rc = get_problem("synth proof", problem, seed, index, difficulty, &p))) return rc;
    char proof[SYNTH_TEXT_CAP], ptext[256];
    enum synth_plant planted;
    int len = synth_proof_write(&p, (enum synth_plant)k, (uint64_t)plant_seed, proof, sizeof proof, &planted);
    if (len < 0) {
        struct dsm_err err;
        dsm_errf(&err, DSM_EINVAL, "the proof does not fit in %d bytes", SYNTH_TEXT_CAP);
        return cli_fail("synth proof", &err);
    }
    if (!as_json) return fputs(proof, stdout) == EOF ? 3 : 0;
    struct synth_verdict v;
    synth_check(&p, proof, (size_t)len, &v);
    synth_problem_text(&p, ptext, sizeof ptext);
    return print_json(json_pack("{s:s,s:s,s:s,s:f,s:s}", "problem", ptext, "proof", proof, "plant",
                                synth_plant_name(planted), "score", v.score, "defect", synth_defect_name(v.defect)));
}

static json_t *verdict_json(const struct synth_verdict *v) {
    return json_pack("{s:f,s:s,s:i,s:i,s:i}", "score", v->score, "defect", synth_defect_name(v->defect), "line",
                     v->line, "lines", v->n_lines, "omitted", v->n_omitted);
}

/* The problem, the proof (required) and the analysis (optional) of `synth check` / `synth analyze`,
 * each from a flag or a file (at most one of them from stdin). On success the caller frees *own_p
 * and *own_a; on failure nothing is left to free and the return is the exit code. */
static int get_problem_texts(const char *cmd, const char *problem, const char *proof_text, const char *proof_file,
                             const char *an_text, const char *an_file, struct synth_problem *p, const char **proof,
                             size_t *plen, char **own_p, const char **an, size_t *alen, char **own_a) {
    if (proof_file && an_file && !strcmp(proof_file, "-") && !strcmp(an_file, "-"))
        return cli_usage_error(cmd, "only one of the texts can come from stdin");
    int rc = get_problem(cmd, problem, -1, -1, 0, p);
    if (rc) return rc;
    if ((rc = get_text(cmd, "proof", proof_text, proof_file, proof, plen, own_p))) return rc;
    if (!*proof) return cli_usage_error(cmd, "give --proof TEXT or --proof-file F");
    if ((rc = get_text(cmd, "analysis", an_text, an_file, an, alen, own_a))) {
        free(*own_p);
        *own_p = NULL;
        return rc;
    }
    return 0;
}

static int synth_check_cmd(int argc, char **argv) {
    const char *problem = NULL, *proof_text = NULL, *proof_file = NULL, *an_text = NULL, *an_file = NULL;
    const struct cli_opt opts[] = {
        {"--problem", CLI_STR, &problem, "TEXT", "the problem ('Show that 37 + 48 - 19 = 66.')"},
        {"--proof", CLI_STR, &proof_text, "TEXT", "the proof"},
        {"--proof-file", CLI_STR, &proof_file, "F", "or: a file holding the proof ('-' = stdin)"},
        {"--analysis", CLI_STR, &an_text, "TEXT", "also judge this verifier output"},
        {"--analysis-file", CLI_STR, &an_file, "F", "or: a file holding it ('-' = stdin)"},
    };
    const struct cli_cmd_spec spec = {
        "synth check", "--problem TEXT (--proof TEXT | --proof-file F) [--analysis TEXT | --analysis-file F]",
        "Print the true score of the proof as JSON: {\"score\", \"defect\", \"line\", \"lines\",\n"
        "\"omitted\"} (defect: the first fatal one, else the omission; line: its line among the\n"
        "non-blank ones). Given a verifier output, add \"analysis\": {\"format_ok\", \"score\", \"ms\",\n"
        "\"right\", \"flagged\", \"false\", \"expr_errors\"}, ms its true meta score (docs/synth.md).",
        opts, sizeof opts / sizeof opts[0], 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (!problem) return cli_usage_error("synth check", "--problem is required");
    struct synth_problem p;
    const char *proof, *an;
    size_t plen = 0, alen = 0;
    char *own_p = NULL, *own_a = NULL;
    if ((rc = get_problem_texts("synth check", problem, proof_text, proof_file, an_text, an_file, &p, &proof, &plen, &own_p,
                                &an, &alen, &own_a)))
        return rc;
    struct synth_verdict v;
    synth_check(&p, proof, plen, &v);
    json_t *j = verdict_json(&v);
    if (an && j) {
        struct synth_analysis_verdict av;
        synth_analysis_check(&v, an, alen, &av);
        json_object_set_new(j, "analysis",
                            json_pack("{s:b,s:o,s:f,s:b,s:i,s:i,s:i}", "format_ok", av.format_ok, "score",
                                      av.format_ok ? json_real(av.score) : json_null(), "ms", av.ms, "right",
                                      av.right, "flagged", av.n_flagged, "false", av.n_false, "expr_errors",
                                      av.n_expr_errors));
    }
    free(own_p);
    free(own_a);
    return print_json(j);
}

static int synth_analyze(int argc, char **argv) {
    const char *problem = NULL, *proof_text = NULL, *proof_file = NULL, *an_text = NULL, *an_file = NULL;
    const char *role_name = "verifier", *flaw_name = "none";
    long seed = 0;
    int dishonest = 0;
    const struct cli_opt opts[] = {
        {"--problem", CLI_STR, &problem, "TEXT", "the problem"},
        {"--proof", CLI_STR, &proof_text, "TEXT", "the proof"},
        {"--proof-file", CLI_STR, &proof_file, "F", "or: a file holding the proof ('-' = stdin)"},
        {"--role", CLI_STR, &role_name, "R", "verifier (default), metaverifier or generator"},
        {"--flaw", CLI_STR, &flaw_name, "KIND",
         "verifier: none|false_issue|missed|wrong_score|expr_error (default none)"},
        {"--seed", CLI_LONG, &seed, "S", "verifier: details of the flaw (default 0)"},
        {"--analysis", CLI_STR, &an_text, "TEXT", "metaverifier: the verifier output to rate"},
        {"--analysis-file", CLI_STR, &an_file, "F", "metaverifier: or a file holding it ('-' = stdin)"},
        {"--dishonest", CLI_FLAG, &dishonest, NULL, "generator: claim a flawed proof right"},
    };
    const struct cli_cmd_spec spec = {
        "synth analyze", "--problem TEXT (--proof TEXT | --proof-file F) [--role R] [options]",
        "Write what a role should answer for this proof: the verifier's analysis (with --flaw, a\n"
        "wrong one for meta-verifier data), the meta-verifier's rating of --analysis, or the\n"
        "generator's output (the proof and an honest or, with --dishonest, a lying self-evaluation).\n"
        "A flaw that cannot apply to the proof (e.g. missed on a correct one) is a usage error.",
        opts, sizeof opts / sizeof opts[0], 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (!problem) return cli_usage_error("synth analyze", "--problem is required");
    int role = synth_role_from_name(role_name);
    if (role < 0) return cli_usage_error("synth analyze", "unknown --role '%s'", role_name);
    int flaw = synth_aflaw_from_name(flaw_name);
    if (flaw < 0) return cli_usage_error("synth analyze", "unknown --flaw '%s'", flaw_name);
    if (flaw && role != SYNTH_ROLE_VERIFIER) return cli_usage_error("synth analyze", "--flaw is for --role verifier");
    if (dishonest && role != SYNTH_ROLE_GENERATOR)
        return cli_usage_error("synth analyze", "--dishonest is for --role generator");
    if ((an_text || an_file) != (role == SYNTH_ROLE_METAVERIFIER))
        return cli_usage_error("synth analyze", "--analysis / --analysis-file go with --role metaverifier, and only there");
    struct synth_problem p;
    const char *proof, *an;
    size_t plen = 0, alen = 0;
    char *own_p = NULL, *own_a = NULL;
    if ((rc = get_problem_texts("synth analyze", problem, proof_text, proof_file, an_text, an_file, &p, &proof, &plen, &own_p,
                                &an, &alen, &own_a)))
        return rc;
    struct synth_verdict v;
    synth_check(&p, proof, plen, &v);
    char out[2 * SYNTH_TEXT_CAP];
    int len;
    if (role == SYNTH_ROLE_VERIFIER) {
        len = synth_analysis_write(&p, &v, (enum synth_aflaw)flaw, (uint64_t)seed, out, sizeof out, NULL);
    } else if (role == SYNTH_ROLE_METAVERIFIER) {
        struct synth_analysis_verdict av;
        synth_analysis_check(&v, an, alen, &av);
        len = synth_meta_write(&p, &v, &av, out, sizeof out);
    } else {
        len = synth_gen_write(&p, proof, plen, &v, !dishonest, out, sizeof out);
    }
    free(own_p);
    free(own_a);
    if (len == -2) return cli_usage_error("synth analyze", "--flaw %s does not apply to this proof (score %g)",
                                          flaw_name, v.score);
    if (len < 0) {
        struct dsm_err err;
        dsm_errf(&err, DSM_EINVAL, "the output does not fit in %d bytes (is the proof that long?)", 2 * SYNTH_TEXT_CAP);
        return cli_fail("synth analyze", &err);
    }
    return fputs(out, stdout) == EOF ? 3 : 0;
}

static int synth_sft(int argc, char **argv) {
    const char *role_name = NULL, *diff = NULL, *plants = NULL, *flaws = NULL;
    long n = 100, seed = 1, start = 0;
    int messages = 0;
    struct synth_sft_opts o;
    synth_sft_opts_default(&o);
    const struct cli_opt opts[] = {
        {"--role", CLI_STR, &role_name, "R", "generator, verifier or metaverifier (required)"},
        {"--n", CLI_LONG, &n, "N", "how many records (default 100)"},
        {"--seed", CLI_LONG, &seed, "S", "stream seed (default 1)"},
        {"--start", CLI_LONG, &start, "I", "first index (default 0)"},
        {"--difficulty", CLI_STR, &diff, "A..B", "difficulty range (default 1..3)"},
        {"--plants", CLI_STR, &plants, "W,...",
         "weights of none,arith,copy,skip,merge,conclusion,no_conclusion,force (default 35,10,8,8,8,8,3,20)"},
        {"--flaws", CLI_STR, &flaws, "W,...",
         "weights of none,false_issue,missed,wrong_score,expr_error (default 40,25,15,10,10)"},
        {"--noise", CLI_DOUBLE, &o.ver_noise, "X", "verifier: share of flawed analyses (default 0.15)"},
        {"--flawed", CLI_DOUBLE, &o.gen_flawed, "X", "generator: share of flawed proofs (default 0.3)"},
        {"--carry-drop", CLI_DOUBLE, &o.gen_carry_drop, "X",
         "generator: share of the other proofs whose first carry or borrow is dropped, believed right (default 0)"},
        {"--dishonest", CLI_DOUBLE, &o.gen_dishonest, "X",
         "generator: share of flawed proofs claimed right (default 0.333)"},
        {"--messages", CLI_FLAG, &messages, NULL,
         "write {\"messages\": [user, assistant], \"meta\"} records: the chat format is applied in training, "
         "as the services and the native lm apply it when sampling"},
    };
    const struct cli_cmd_spec spec = {
        "synth sft", "--role R [--n N] [--seed S] [--start I] [--difficulty A..B] [mix options]",
        "Write SFT bootstrap records {\"prompt\", \"response\", \"meta\"} for one role as JSONL (what\n"
        "`dsm train sft` reads). Prompts are the compact synth templates (dsm synth template);\n"
        "responses carry SPEC's markers. The mix (docs/synth.md \"SFT mix\"): the verifier sees proofs\n"
        "drawn by --plants and answers with the correct analysis except a --noise share of flawed\n"
        "ones (drawn by --flaws, 'none' ignored); the meta-verifier rates analyses drawn by --flaws;\n"
        "the generator writes a --flawed share of flawed proofs, a --dishonest share of those lying.",
        opts, sizeof opts / sizeof opts[0], 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (!role_name) return cli_usage_error("synth sft", "--role is required");
    int role = synth_role_from_name(role_name);
    if (role < 0) return cli_usage_error("synth sft", "unknown --role '%s' (generator, verifier, metaverifier)", role_name);
    if (diff && (rc = parse_range("synth sft", diff, &o.diff_lo, &o.diff_hi))) return rc;
    if (plants && (rc = parse_weights("synth sft", "--plants", plants, o.plant_w, SYNTH_PLANT_COUNT_))) return rc;
    if (flaws && (rc = parse_weights("synth sft", "--flaws", flaws, o.aflaw_w, SYNTH_AFLAW_COUNT_))) return rc;
    if (n < 0 || seed < 0 || start < 0) return cli_usage_error("synth sft", "--n, --seed and --start must not be negative");
    struct dsm_err err = {0};
    if (synth_sft_opts_check(&o, &err)) return cli_usage_error("synth sft", "%s", err.msg);
    for (long i = start; i < start + n; i++) {
        json_t *j = NULL;
        if (synth_sft_record((enum synth_role)role, (uint64_t)seed, (uint64_t)i, &o, &j, &err))
            return cli_fail("synth sft", &err);
        if (messages && synth_sft_to_messages(j, &err)) {
            json_decref(j);
            return cli_fail("synth sft", &err);
        }
        if ((rc = print_json(j))) return rc;
    }
    return fflush(stdout) ? 3 : 0;
}

static int synth_template_cmd(int argc, char **argv) {
    const char *role_name = NULL;
    int id = 0;
    const struct cli_opt opts[] = {
        {"--role", CLI_STR, &role_name, "R", "generator, verifier or metaverifier (required)"},
        {"--id", CLI_FLAG, &id, NULL, "print the template's id instead of its text"},
    };
    const struct cli_cmd_spec spec = {
        "synth template", "--role R [--id]",
        "Print a role's compact prompt template (placeholders {{problem}}, {{proof}}, {{analysis}}),\n"
        "byte for byte, e.g. to save it for a run's configuration; --id prints its id instead.",
        opts, sizeof opts / sizeof opts[0], 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (!role_name) return cli_usage_error("synth template", "--role is required");
    int role = synth_role_from_name(role_name);
    if (role < 0) return cli_usage_error("synth template", "unknown --role '%s'", role_name);
    struct role_template t;
    synth_template((enum synth_role)role, &t);
    if (id) return printf("%s\n", t.id) < 0 ? 3 : 0;
    return fputs(t.text, stdout) == EOF ? 3 : 0;
}

int cmd_synth(int argc, char **argv) {
    if (argc < 2) {
        usage_synth(stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) return usage_synth(stdout);
    if (!strcmp(sub, "problems")) return synth_problems(argc - 1, argv + 1);
    if (!strcmp(sub, "proof")) return synth_proof(argc - 1, argv + 1);
    if (!strcmp(sub, "check")) return synth_check_cmd(argc - 1, argv + 1);
    if (!strcmp(sub, "analyze")) return synth_analyze(argc - 1, argv + 1);
    if (!strcmp(sub, "sft")) return synth_sft(argc - 1, argv + 1);
    if (!strcmp(sub, "template")) return synth_template_cmd(argc - 1, argv + 1);
    return cli_usage_error("synth", "unknown subcommand '%s' (problems, proof, check, analyze, sft, template)", sub);
}
