/* child.h - run another `dsm` command as a child process (the orchestrators `dsm loop` and
 * `dsm prove` drive the services this way): fork + exec of our own binary, stderr appended to a
 * log file, stdout to a file or the log, the child killed when we die (PR_SET_PDEATHSIG). */
#ifndef DSM_CLI_CHILD_H
#define DSM_CLI_CHILD_H

#include <signal.h>
#include <sys/types.h>

/* The child running now (0 = none): a signal handler may forward SIGTERM to it. */
extern volatile pid_t cli_child_pid;

struct cli_child {
    const char *self;     /* our binary (/proc/self/exe resolved) */
    const char *log_path; /* stderr (and stdout unless out_path) is appended here */
    const char *out_path; /* stdout, truncated; NULL = the log */
    const char *label;    /* shown with the seconds on a terminal while it runs */
    int show;             /* 1: draw the label line on stderr (a terminal) */
    volatile sig_atomic_t *stop; /* set by our signal handler (may be NULL) */
};

/* Run argv (argv[0] "dsm", NULL-terminated) and wait for it. The command line is written to the
 * log first. On failure (unless *stop) the log's last 1500 bytes go to stderr. Returns the exit
 * status, 128 + signal when killed, 127 when it could not start. */
int cli_child_run(const struct cli_child *c, char *const *argv);

#endif
