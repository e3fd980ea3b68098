/* cmd_export.c - `dsm export [--out FILE] [--label-source S]`: labeled proofs as JSONL, one object
 * per label with its proof, problem, generator and verification statistics (docs/store.md shows
 * the fields). Exit codes: 0 ok, 2 usage, 3 database or write failure.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/db.h"
#include "common/import.h"

int cmd_export(int argc, char **argv) {
    const char *outpath = NULL, *source = NULL;
    const struct cli_opt opts[] = {
        {"--out", CLI_STR, &outpath, "FILE", "write here instead of stdout"},
        {"--label-source", CLI_STR, &source, "S", "only labels from human, auto or ground_truth"},
    };
    const struct cli_cmd_spec spec = {"export", "[--out FILE] [--label-source S]",
                                      "Write labeled proofs as JSONL (one line per label).", opts, 2, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (source && strcmp(source, "human") && strcmp(source, "auto") && strcmp(source, "ground_truth"))
        return cli_usage_error("export", "--label-source must be human, auto or ground_truth (got '%s')", source);
    struct dsm_err err = {0};
    struct db_open_opts o = {.migrate = 1};
    struct dsm_db *db = NULL;
    if (db_open(&o, &db, &err)) return cli_fail("export", &err);
    FILE *out = stdout;
    if (outpath && !(out = fopen(outpath, "w"))) {
        fprintf(stderr, "dsm export: cannot write %s: %s\n", outpath, strerror(errno));
        db_close(db);
        return 3;
    }
    long n = 0;
    rc = imp_export_labeled(db, out, source, &n, &err);
    if (out != stdout && fclose(out) != 0 && !rc) rc = dsm_errf(&err, DSM_EIO, "closing %s failed", outpath);
    db_close(db);
    if (rc) return cli_fail("export", &err);
    fprintf(stderr, "dsm export: %ld labeled proof(s)\n", n);
    return 0;
}
