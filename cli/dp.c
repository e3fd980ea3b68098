/* dp.c - the data-parallel flags and launcher of the training commands (dp.h). */
#include "cli/dp.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/* --dp N: N ranks of this command on this machine (shm), each with its share of the CPU threads;
 * the first failure stops the others. Returns the first non-zero exit status. */
static int launch(const char *cmd, const char *group, const struct cli_dp *d, int threads, int argc, char **argv) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int all = threads > 0 ? threads : (int)(ncpu > 0 ? ncpu : 1), per = all / d->dp > 0 ? all / d->dp : 1;
    char rdv[256], ws[16], ts[16], rs[DSM_DIST_MAX_WORLD][16], self[4096];
    snprintf(rdv, sizeof rdv, "%s/dsm-dp-%ld-%ld", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (long)getpid(),
             (long)(dsm_now() * 1000) % 1000000);
    snprintf(ws, sizeof ws, "%d", d->dp);
    snprintf(ts, sizeof ts, "%d", per);
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) return cli_usage_error(cmd, "--dp: cannot find our own binary");
    self[sl] = 0;
    char **av = calloc((size_t)argc + 16, sizeof *av);
    pid_t pids[DSM_DIST_MAX_WORLD] = {0};
    if (!av) return cli_usage_error(cmd, "out of memory");
    LOG_INFO("data parallelism: %d ranks on this machine, %d thread(s) each, rendezvous %s", d->dp, per, rdv);
    int status = 0;
    for (int r = 0; r < d->dp; r++) {
        int k = 0;
        av[k++] = "dsm", av[k++] = (char *)group;
        for (int i = 0; i < argc; i++) av[k++] = argv[i]; /* the command and the user's flags (a rank ignores --dp) */
        snprintf(rs[r], sizeof rs[r], "%d", r);
        av[k++] = "--threads", av[k++] = ts, av[k++] = "--dp-rank", av[k++] = rs[r], av[k++] = "--dp-world", av[k++] = ws;
        av[k++] = "--dp-rendezvous", av[k++] = rdv, av[k++] = "--dp-transport", av[k++] = "shm";
        av[k] = NULL;
        pid_t pid = fork();
        if (pid == 0) {
            if (r) { /* one rank speaks for the group: the others' stdout (summaries) goes nowhere */
                FILE *nul = freopen("/dev/null", "w", stdout);
                (void)nul;
            }
            execv(self, av);
            _exit(127);
        }
        if (pid < 0) {
            status = cli_usage_error(cmd, "--dp: fork failed: %s", strerror(errno));
            break;
        }
        pids[r] = pid;
    }
    free(av);
    for (;;) {
        int st;
        pid_t pid = wait(&st);
        if (pid < 0) break;
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        for (int r = 0; r < d->dp; r++)
            if (pids[r] == pid) pids[r] = 0;
        if (code && !status) {
            status = code;
            for (int r = 0; r < d->dp; r++)
                if (pids[r] > 0) kill(pids[r], SIGTERM);
        }
    }
    unlink(rdv); /* rank 0 removes it once all joined; this covers a start that failed */
    return status;
}

int cli_dp_dispatch(const char *cmd, const char *group, struct cli_dp *d, int threads, int argc, char **argv) {
    if (d->dp < 0 || d->dp > DSM_DIST_MAX_WORLD || d->world < 0 || d->world > DSM_DIST_MAX_WORLD || d->check_every < 0 ||
        d->timeout < 0)
        return cli_usage_error(cmd, "--dp and --dp-world must be in 0..%d, --dp-check-every and --dp-timeout >= 0",
                               DSM_DIST_MAX_WORLD);
    if (d->world > 1) {
        if (d->rank < 0 || d->rank >= d->world || !d->rendezvous)
            return cli_usage_error(cmd, "--dp-world %d needs --dp-rank in 0..%d and --dp-rendezvous PATH", d->world, d->world - 1);
        if (!d->transport) d->transport = "shm";
        if (strcmp(d->transport, "shm") && strcmp(d->transport, "nccl"))
            return cli_usage_error(cmd, "--dp-transport must be shm or nccl, not '%s'", d->transport);
        return -1;
    }
    if (d->rank || d->rendezvous || d->transport)
        return cli_usage_error(cmd, "--dp-rank, --dp-rendezvous and --dp-transport need --dp-world > 1");
    if (d->dp > 1) return launch(cmd, group, d, threads, argc, argv);
    return -1;
}

int cli_dp_open(const struct cli_dp *d, struct dsm_backend *be, struct dsm_dist **out, struct dsm_err *err) {
    *out = NULL;
    if (d->world <= 1) return DSM_OK;
    struct dsm_dist_opts o = {d->transport, d->rendezvous, d->rank, d->world, d->timeout};
    int rc = dsm_dist_open(&o, be, out, err);
    if (!rc) LOG_INFO("data parallelism: rank %d of %d (%s)", d->rank, d->world, d->transport);
    return rc;
}

int cli_dp_check_weights(struct dsm_dist *dist, struct dsm_backend *be, const struct dsm_optim_tensor *ps, int n, long step,
                         struct dsm_err *err) {
    uint64_t h = DSM_HASH_INIT;
    for (int i = 0; i < n; i++) h = dsm_hash_device(be, ps[i].p, ps[i].n * sizeof(float), h);
    char what[64];
    snprintf(what, sizeof what, "weights after step %ld", step);
    int rc = dsm_dist_check_equal(dist, h, what, err);
    if (!rc) LOG_DEBUG("rank %d: weights after step %ld hash %016llx", dsm_dist_rank(dist), step, (unsigned long long)h);
    return rc;
}
