/* import.h - import the shipped data sets into the store, and export labeled proofs as JSONL.
 *
 * Formats (detected from the path, or named): gsm8k, math, math500, competition (aime24, amc23,
 * olympiadbench, minerva_math: the source is the file's base name), v2-inputs (JSON arrays),
 * v2-outputs (DeepSeekMath-V2 proofs with human points), proofbench and answerbench (IMO-Bench
 * CSV), opc (Open Proof Corpus proofs with human verdicts), mr-gsm8k (flawed GSM8K solutions).
 * docs/store.md lists which rows each format makes and the label rules:
 *   OPC verdict correct -> 1, incorrect -> 0;
 *   a points grade: full marks -> 1, zero -> 0, anything between -> 0.5, with the raw points and
 *   the maximum kept in labels.points / labels.max_points (maximum 7 for IMO and IMO-ProofBench,
 *   21 for CMO, 10 for Putnam);
 *   MR-GSM8K solutions (all flawed) -> 0 with the first wrong step kept in the label detail.
 *
 * Each file is imported in one transaction: an SQL failure rolls the whole file back. A bad
 * record (malformed JSON or CSV, a missing or ill-typed field) is reported as
 * "file:line: field 'f': what", counted and skipped; with strict it fails the file (rolled back).
 * Re-importing is idempotent: rows are keyed by (source, source_key) for problems and
 * (origin, origin_key) for proofs, so nothing is duplicated.
 */
#ifndef DSM_IMPORT_H
#define DSM_IMPORT_H

#include <stddef.h>
#include <stdio.h>

#include "common/db.h"
#include "common/err.h"

struct imp_stats {
    long files;    /* files imported */
    long records;  /* records read (good and bad) */
    long bad;      /* records skipped as bad */
    long problems; /* problem rows written (inserted or updated) */
    long proofs;   /* proof rows written */
    long labels;   /* label rows written */
    long inserted; /* rows that did not exist before (0 on a re-import) */
    /* optional: called after each file is committed with its origin ("<format>:<file name>",
     * the value of proofs.origin and labels.origin for its rows) */
    void (*on_file)(const char *origin, void *ctx);
    void *on_file_ctx;
};

/* The format name for path ("gsm8k", "opc", ...), or NULL when not recognised. */
const char *imp_format_detect(const char *path);

/* Import one file in format (NULL: detect) within one transaction, adding to *st. Bad records
 * are logged as warnings (file:line: field: what). Errors: DSM_EINVAL (unknown format; with
 * strict, the first bad record), DSM_EIO/DSM_ENOTFOUND (cannot read), DSM_EDB (rolled back). */
int imp_file(struct dsm_db *db, const char *path, const char *format, int strict, struct imp_stats *st,
             struct dsm_err *err);

/* Import path: a file, or a directory walked recursively in name order importing every file whose
 * format is recognised (others are skipped with an info line). Stops at the first failing file. */
int imp_path(struct dsm_db *db, const char *path, const char *format, int strict, struct imp_stats *st,
             struct dsm_err *err);

/* Write one JSON object per label (joined with its proof, problem, generator and verification
 * statistics) to out, label_source NULL for all or "human" / "auto" / "ground_truth". *n (may be
 * NULL) gets the number of lines. Errors: DSM_EDB, DSM_EIO (write failed). */
int imp_export_labeled(struct dsm_db *db, FILE *out, const char *label_source, long *n, struct dsm_err *err);

/* ---- RFC 4180 CSV ---------------------------------------------------------------------------- */

/* One record: nfields fields (NUL-terminated, quotes removed, "" unescaped), starting at line.
 * problem is NULL for a well-formed record, else what was wrong with it (text after a closing
 * quote, a quote inside an unquoted field): the fields then hold a best-effort reading. */
typedef int (*csv_record_fn)(char **fields, int nfields, long line, const char *problem, void *ctx,
                             struct dsm_err *err);

/* Parse text (len bytes): fields separated by ',', records by LF or CRLF, quoted fields may hold
 * commas, quotes ("") and line breaks. Calls fn for every record (a trailing empty line is not a
 * record); fn returning non-zero stops the parse with that status. where names the input in
 * messages. Errors: DSM_EINVAL for an unterminated quoted field (naming the line it started on);
 * other malformed records are passed to fn with a problem. */
int csv_parse(const char *text, size_t len, const char *where, csv_record_fn fn, void *ctx, struct dsm_err *err);

/* Gold answer helpers (exposed for tests). Write the content of the last non-empty \boxed{...}
 * or \fbox{...} in s (braces balanced) into a new string (*out, caller frees); *out NULL when
 * there is none. */
int imp_last_boxed(const char *s, char **out, struct dsm_err *err);

#endif
