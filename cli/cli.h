/* cli.h - the dsm front-end: the command table and the flag parser every command uses.
 *
 * A command is `int cmd_NAME(int argc, char **argv)` where argv[0] is the command's own name
 * (e.g. "logits" or "model init"); it returns the process exit code (README "Exit codes":
 * 0 ok, 1 a predicate's "no", 2 usage or bad input, 3 system or service failure).
 * Commands print results on stdout and every diagnostic on stderr.
 */
#ifndef DSM_CLI_H
#define DSM_CLI_H

#include <stddef.h>

#include "common/err.h"

enum cli_opt_kind { CLI_STR, CLI_INT, CLI_LONG, CLI_DOUBLE, CLI_FLAG, CLI_STR_LIST };

/* Destination of a CLI_STR_LIST option: every occurrence appends (at most CLI_LIST_MAX). */
#define CLI_LIST_MAX 16
struct cli_str_list {
    const char *v[CLI_LIST_MAX];
    int n;
};

struct cli_opt {
    const char *name;       /* "--model", or a short form such as "-n" */
    enum cli_opt_kind kind; /* what dst points to: char*, int, long, double, int (0/1) */
    void *dst;              /* written when the flag is given; untouched otherwise (the default);
                             * a struct cli_str_list for CLI_STR_LIST */
    const char *arg;        /* placeholder for help, e.g. "DIR"; NULL for CLI_FLAG */
    const char *help;       /* one line */
};

struct cli_cmd_spec {
    const char *name;     /* "model init" */
    const char *synopsis; /* usage line after the name */
    const char *summary;  /* one paragraph */
    const struct cli_opt *opts;
    size_t nopts;
    int max_positional;   /* 0 = no positional arguments allowed; -1 = any number */
};

/* Parse argv[1..] against spec. Positional arguments are moved to pos (capacity posc) and counted
 * in *npos. "--help"/"-h" prints usage to stdout and returns -1 (the caller exits 0). A bad flag
 * prints what was wrong to stderr and returns 2. Otherwise returns 0. Accepts "--flag value" and
 * "--flag=value". */
int cli_parse(const struct cli_cmd_spec *spec, int argc, char **argv, char **pos, int posc, int *npos);

/* Print the usage of spec to stdout. */
void cli_usage(const struct cli_cmd_spec *spec);

/* Report a failed status: "dsm <cmd>: <message>" on stderr; returns the exit code for it. */
int cli_fail(const char *cmd, const struct dsm_err *err);

/* Report a usage error on stderr ("dsm <cmd>: <message> (try 'dsm <cmd> --help')"); returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Send SIGTERM and SIGINT to handler (no SA_RESTART: blocking calls return EINTR). */
void cli_catch_stop_signals(void (*handler)(int));

/* Parse a comma-separated list of non-negative integers ("5,17,99") into a new array (*out,
 * *n). Errors name the bad element. Caller frees *out. */
int cli_parse_ids(const char *s, int **out, int *n, struct dsm_err *err);

/* ---- commands (one file each under cli/) ---- */
int cmd_model(int argc, char **argv);   /* model init | model info */
int cmd_logits(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_eval_verifier(int argc, char **argv); /* eval verifier */
int cmd_backend(int argc, char **argv); /* backend info */
int cmd_db(int argc, char **argv);      /* db start|stop|status|migrate|psql */
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_check_answer(int argc, char **argv); /* check-answer */
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_train(int argc, char **argv);  /* train sft | train merge-lora */
int cmd_train_merge_lora(int argc, char **argv); /* for `model merge-lora` too */
int cmd_train_grpo(int argc, char **argv);  /* train grpo */
int cmd_loop(int argc, char **argv);        /* loop */
int cmd_parse(int argc, char **argv);  /* parse generator|verifier|metaverifier */
int cmd_vote(int argc, char **argv);
int cmd_role(int argc, char **argv);   /* role prompt|sample (a model role without the store) */
int cmd_synth(int argc, char **argv);  /* synth problems|proof|check|analyze|sft|template */
int cmd_serve(int argc, char **argv);  /* serve generator|verifier|metaverifier (queue workers) */
int cmd_serve_submissions(int argc, char **argv); /* serve submissions (cmd_submit.c) */
int cmd_submit(int argc, char **argv); /* submit a proof for scoring */
int cmd_prove(int argc, char **argv);  /* the V2 test-time procedures for one problem */
int cmd_label(int argc, char **argv);  /* label: the V2 vote over the store -> labels */
int cmd_report(int argc, char **argv); /* report: a run as a self-contained HTML/SVG file */

/* Write the report of a run (cli/cmd_report.c, docs/report.md) to path (NULL: report-<run
 * name>.html in the current directory). The run is run_id when > 0, else the newest run named
 * run_name when that is not NULL, else the newest run. used_path (may be NULL) gets the path
 * written. Errors: DSM_ENOTFOUND (no such run), DSM_EDB, DSM_EIO (cannot write), DSM_ENOMEM.
 * For `dsm loop` to call at the end of a run. */
struct dsm_db;
int report_run_write(struct dsm_db *db, long long run_id, const char *run_name, const char *path, char *used_path,
                     size_t used_cap, struct dsm_err *err);

#endif
