/* label_store.h - the V2 vote (vote.h) over the store: read one proof's analyses and their
 * meta-verifications, vote, and write the labels row. Used by `dsm label`, submissions and
 * `dsm prove`.
 *
 * The vote input of a proof is its first n verifications of kind 'analysis' (by id) and the first
 * m meta-verifications of each (by id), as {"analyses": [{"id", "score", "meta": [...]}, ...]}.
 */
#ifndef DSM_LABELER_LABEL_STORE_H
#define DSM_LABELER_LABEL_STORE_H

#include <jansson.h>

#include "common/db.h"
#include "common/err.h"
#include "labeler/vote.h"

/* The SQL selecting vote inputs: $2 n, $3 m, $4 one proof id or NULL, $5 relabel (boolean),
 * $1 origin (proofs with an auto label of this origin are skipped unless relabel), $6 limit,
 * $7 run id or NULL, $8 round or NULL. Columns: id, vote_input (text). */
extern const char *const lbl_store_input_sql;

/* What lbl_store_label did with one proof. */
enum lbl_store_outcome {
    LBL_STORE_INCOMPLETE = 0, /* vote incomplete: no row */
    LBL_STORE_LABELED,        /* a row with a value */
    LBL_STORE_UNCERTAIN,      /* a row with value NULL */
    LBL_STORE_UNCHANGED       /* a label of this origin existed (not relabel): nothing written */
};

/* Vote on proof proof_id from input (the vote_input text of lbl_store_input_sql) and write a
 * labels row (source auto, rule v2-vote, o's n/m/k, the full vote with each analysis's
 * verification_id, origin). relabel replaces an existing label of that origin. *v gets the vote;
 * *vote (may be NULL) a new reference to the vote's JSON (NULL when incomplete). Errors:
 * DSM_EINVAL (bad input, naming the proof), DSM_EDB, DSM_ENOMEM. */
int lbl_store_label(struct dsm_db *db, const char *proof_id, const char *input, const struct lbl_vote_opts *o,
                    const char *origin, int relabel, struct lbl_vote *v, json_t **vote,
                    enum lbl_store_outcome *outcome, struct dsm_err *err);

/* Read one proof's vote input (n analyses, m meta-verifications each) as a new string. */
int lbl_store_input(struct dsm_db *db, const char *proof_id, int n, int m, char **input, struct dsm_err *err);

#endif
