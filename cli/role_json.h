/* role_json.h - what `dsm parse` prints for one model output, shared with `dsm role sample`. */
#ifndef DSM_CLI_ROLE_JSON_H
#define DSM_CLI_ROLE_JSON_H

#include <jansson.h>
#include <stddef.h>

enum role_which { W_GENERATOR, W_VERIFIER, W_METAVERIFIER };

/* "generator" | "verifier" | "metaverifier" -> *w; -1 for anything else. */
int role_which_parse(const char *name, enum role_which *w);

/* The parse of text[0..len) by role w as a new JSON object (role, format_ok, error, score,
 * analysis, box; proof, self_evaluation, self_score for the generator); NULL when out of memory. */
json_t *role_output_json(enum role_which w, const char *text, size_t len, int truncated);

#endif
