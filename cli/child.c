/* child.c - run another `dsm` command as a child process; see child.h. */
#include "cli/child.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

volatile pid_t cli_child_pid;

int cli_child_run(const struct cli_child *c, char *const *argv) {
    FILE *lf = fopen(c->log_path, "a");
    if (lf) {
        fprintf(lf, "\n$ dsm");
        for (int i = 1; argv[i]; i++) fprintf(lf, " %s", argv[i]);
        fprintf(lf, "\n");
        fclose(lf);
    }
    pid_t pid = fork();
    if (pid < 0) {
        LOG_ERROR("cannot fork: %s", strerror(errno));
        return 127;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a killed parent takes its children along */
        int fd = open(c->log_path, O_WRONLY | O_APPEND | O_CREAT, 0644);
        int od = c->out_path ? open(c->out_path, O_WRONLY | O_TRUNC | O_CREAT, 0644) : fd;
        if (fd >= 0) dup2(fd, 2);
        if (od >= 0) dup2(od, 1);
        execv(c->self, argv);
        _exit(127);
    }
    cli_child_pid = pid;
    double t0 = dsm_now(), last = 0;
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) break;
        double now = dsm_now();
        if (c->show && now - last >= 0.5) {
            fprintf(stderr, "\r  %-44s %6.1f s ", c->label ? c->label : argv[1], now - t0);
            last = now;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cli_child_pid = 0;
    if (c->show) fprintf(stderr, "\r%-60s\r", "");
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
    if (code && !(c->stop && *c->stop)) {
        LOG_ERROR("`dsm %s` failed (exit %d); its log is %s:", argv[1], code, c->log_path);
        char *txt = NULL;
        size_t n = 0;
        struct dsm_err e = {0};
        if (!dsm_file_read(c->log_path, &txt, &n, &e)) {
            size_t from = n > 1500 ? n - 1500 : 0;
            fprintf(stderr, "%s\n", txt + from);
            free(txt);
        }
    }
    return code;
}
