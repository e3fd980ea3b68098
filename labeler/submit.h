/* submit.h - a submission (schema submissions: a problem, a proof, n, m, k) carried through the
 * V2 vote by the store: its n verify jobs, then m metaverify jobs per analysis scoring below 1,
 * then the vote (labeler/label_store.h) and a result. Every step is idempotent (jobs carry dedup
 * keys, the submission row is locked while it advances), so any number of processes may advance
 * the same submission, and a crash loses nothing. The verifier and meta-verifier services do the
 * sampling; this only enqueues, waits and votes.
 *
 * States: pending -> running (problem, proof and verify jobs written) -> done (result) | failed
 * (a job of the submission died: error says which and why).
 *
 * The result (submissions.result, jsonb): {"submission_id", "proof_id", "n", "m", "k",
 * "analyses" (well-formed ones), "format_failures", "mean_score" (over well-formed analyses, null
 * when none), "histogram": {"0", "0.5", "1"}, "label" (0, 0.5, 1 or null = uncertain), "reason",
 * "explanation", "analysis_ids", "meta_verifications", "vote" (the full vote)}.
 */
#ifndef DSM_LABELER_SUBMIT_H
#define DSM_LABELER_SUBMIT_H

#include <stdint.h>

#include "common/db.h"
#include "common/err.h"

#define SUB_PRIORITY 10 /* the submission's jobs go before batch work (loop rounds use 0) */

/* Move submission id as far as it can go now. *finished = 1 when it is done or failed (its
 * status, result and error are then final). Errors: DSM_ENOTFOUND (no such submission), DSM_EDB. */
int sub_advance(struct dsm_db *db, int64_t id, int *finished, struct dsm_err *err);

/* Insert a submission as the connected user; *id gets its id. Errors: DSM_EINVAL (empty problem
 * or proof, n/m/k out of range, as the table's checks say), DSM_EDB. */
int sub_insert(struct dsm_db *db, const char *problem, const char *proof, int n, int m, int k, int64_t *id,
               struct dsm_err *err);

#endif
