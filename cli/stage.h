/* stage.h - one stage of an orchestrating command (`dsm prove`, `dsm eval verifier`): enqueue
 * role jobs under a run with dedup keys, then run `dsm serve <role> --once` as a child until no
 * job of that kind of the run is pending (or, with external, wait for services elsewhere).
 *
 * Job keys are "<prefix>:<run id>:<key>" and each job's seed is a hash of the base seed and that
 * full key, so a rerun enqueues nothing twice and samples the same seeds.
 */
#ifndef DSM_CLI_STAGE_H
#define DSM_CLI_STAGE_H

#include <jansson.h>
#include <signal.h>
#include <stdint.h>

#include "common/db.h"
#include "common/err.h"

struct cli_stage {
    struct dsm_db *db;
    int64_t run_id;
    char run_s[24];
    const char *prefix;     /* job key prefix, e.g. "prove" */
    const char *backend[2]; /* generator, verifier: native:DIR or http(s):URL */
    const char *template_;  /* the services' --template (NULL = built-in) */
    double temperature, top_p;
    int max_tokens, concurrency, cpu_threads;
    long seed;
    int external;           /* 1: services run elsewhere; only wait */
    int show;               /* 1: progress line on stderr while a child runs */
    char self[4096];        /* our binary */
    char dir[2048];         /* the services' logs */
    volatile sig_atomic_t *stop;
};

/* A stable 53-bit seed from a base seed and a job key (never from row ids). */
int64_t cli_stage_seed(long seed, const char *key);

/* Append one job payload to arr: {field: id, run_id, round, key: "<prefix>:<run>:<key>", seed},
 * plus "refine": refine when not NULL (consumed). */
void cli_stage_payload(const struct cli_stage *s, json_t *arr, const char *field, int64_t id, int round,
                       const char *key, json_t *refine);

/* Enqueue arr (consumed) as jobs of kind under the run, dedup-keyed by "key". */
int cli_stage_enqueue(const struct cli_stage *s, const char *kind, json_t *arr, struct dsm_err *err);

/* Run the role's service ("generate" -> generator, "verify" -> verifier) until no job of kind of
 * the run is queued or running. A dead job is an error naming its last error (a later run
 * requeues it, see cli_stage_requeue_dead). what labels the progress line. */
int cli_stage_drain(const struct cli_stage *s, const char *kind, const char *what, struct dsm_err *err);

/* Open (or find again) the runs row of kind named name with configuration cfg_text (JSON): a new
 * row, or the existing one when its configuration is the same (DSM_EINVAL naming both otherwise:
 * "choose another --run"). Sets s->run_id and s->run_s, then requeues the run's dead jobs. */
int cli_stage_run_open(struct cli_stage *s, const char *kind, const char *name, const char *cfg_text,
                       struct dsm_err *err);

/* Give the run's dead jobs another chance (a rerun of the command calls this first). */
int cli_stage_requeue_dead(const struct cli_stage *s, struct dsm_err *err);

/* Our own binary into s->self (/proc/self/exe). DSM_EIO when it cannot be found. */
int cli_stage_self(struct cli_stage *s, struct dsm_err *err);

#endif
