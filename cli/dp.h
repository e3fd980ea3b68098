/* dp.h - the data-parallel flags and launcher the training commands share (`dsm train sft`,
 * `dsm train grpo`; common/dist.h does the work). Put CLI_DP_OPTS(d) in the option table, then
 * call cli_dp_dispatch after parsing: it validates the flags, launches --dp N ranks of the same
 * command on this machine, or says to run as one rank (or alone). */
#ifndef DSM_CLI_DP_H
#define DSM_CLI_DP_H

#include "cli/cli.h"
#include "common/dist.h"
#include "common/optim.h"

struct cli_dp {
    int dp;                  /* --dp N: launch N ranks here (shm) */
    int rank, world;         /* a rank of a group when world > 1 */
    int check_every;         /* compare the ranks' weight hashes every N steps (0: only at the end) */
    const char *transport, *rendezvous;
    double timeout;
};

#define CLI_DP_DEFAULTS {.check_every = 100}

#define CLI_DP_OPTS(d)                                                                                                          \
    {"--dp", CLI_INT, &(d).dp, "N", "data parallelism: run N ranks on this machine, each training 1/N of every step (shm)"},   \
    {"--dp-rank", CLI_INT, &(d).rank, "R", "run as rank R of a data-parallel group (with --dp-world, --dp-rendezvous)"},       \
    {"--dp-world", CLI_INT, &(d).world, "N", "ranks in the group"},                                                            \
    {"--dp-rendezvous", CLI_STR, &(d).rendezvous, "PATH",                                                                      \
     "the group's meeting file, created by rank 0 (shm: a local path, e.g. /dev/shm/x; nccl: on a file system all ranks share)"}, \
    {"--dp-transport", CLI_STR, &(d).transport, "shm|nccl", "how gradients are summed (default shm; nccl: one process per GPU)"}, \
    {"--dp-check-every", CLI_INT, &(d).check_every, "N",                                                                       \
     "compare a hash of every rank's weights every N steps (default 100; always after the last)"},                              \
    {"--dp-timeout", CLI_DOUBLE, &(d).timeout, "S", "longest wait for another rank, seconds (default 600)"}

/* After parsing: -1 to run here (alone, or as a rank when d->world > 1), otherwise the exit status
 * to return (a usage error, or the launched ranks' first failure). argc/argv are the command's
 * own (argv[0] its name, e.g. "sft"); `group` the word before it ("train"). */
int cli_dp_dispatch(const char *cmd, const char *group, struct cli_dp *d, int threads, int argc, char **argv);

/* Join the group when d->world > 1 (else *out = NULL, nothing to do). */
int cli_dp_open(const struct cli_dp *d, struct dsm_backend *be, struct dsm_dist **out, struct dsm_err *err);

/* Every rank hashes its weights (the optimizer's tensors) after `step`; they must be equal. */
int cli_dp_check_weights(struct dsm_dist *dist, struct dsm_backend *be, const struct dsm_optim_tensor *ps, int n, long step,
                         struct dsm_err *err);

#endif
