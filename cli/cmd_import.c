/* cmd_import.c - `dsm import [--format NAME] [--strict] PATH...`: load data sets into the store
 * (docs/store.md lists the formats and what rows each makes). Starts the embedded database on
 * demand. Prints a summary line on stdout; bad records are reported on stderr as file:line.
 * Exit codes: 0 ok (bad records skipped and counted), 2 bad input (unknown format; with --strict
 * any bad record), 3 database failure.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "common/db.h"
#include "common/import.h"
#include "common/util.h"

int cmd_import(int argc, char **argv) {
    const char *format = NULL;
    int strict = 0;
    const struct cli_opt opts[] = {
        {"--format", CLI_STR, &format, "NAME",
         "gsm8k, math, math500, competition, v2-inputs, v2-outputs, proofbench, answerbench, opc, mr-gsm8k "
         "(default: from the path)"},
        {"--strict", CLI_FLAG, &strict, NULL, "a bad record fails its file (rolled back) instead of being skipped"},
    };
    const struct cli_cmd_spec spec = {
        "import", "[--format NAME] [--strict] PATH...",
        "Import data sets (files, or directories walked recursively) into the store: problems with gold\n"
        "answers, proofs with human labels. One transaction per file; re-importing changes nothing.",
        opts, DSM_ARRAY_LEN(opts), -1};
    char *pos[64];
    int npos = 0;
    int rc = cli_parse(&spec, argc, argv, pos, 64, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if (npos == 0) return cli_usage_error("import", "give at least one PATH");
    struct dsm_err err = {0};
    struct db_open_opts o = {.migrate = 1};
    struct dsm_db *db = NULL;
    if (db_open(&o, &db, &err)) return cli_fail("import", &err);
    struct imp_stats st = {0};
    double t0 = dsm_now();
    for (int i = 0; i < npos && !rc; i++)
        if (imp_path(db, pos[i], format, strict, &st, &err)) rc = cli_fail("import", &err);
    db_close(db);
    if (!rc)
        printf("imported %ld file(s) in %.2f s: %ld records, %ld bad, %ld problems, %ld proofs, %ld labels, %ld new rows\n",
               st.files, dsm_now() - t0, st.records, st.bad, st.problems, st.proofs, st.labels, st.inserted);
    return rc;
}
