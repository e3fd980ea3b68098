/* db_cluster.c - the embedded PostgreSQL cluster under $DSM_HOME (see db.h).
 *
 * Facts this relies on (ENVIRONMENT.md, tested here): initdb refuses to run as root, so as root
 * initdb and pg_ctl run as the postgres user through runuser, the data directory belongs to
 * postgres and every parent must be traversable by it; a unix socket path holds at most 107
 * bytes; Debian keeps the server programs in /usr/lib/postgresql/<N>/bin, not on PATH. The server
 * listens on a unix socket only (listen_addresses = ''). Settings we own live in
 * <datadir>/dsm.conf, rewritten at every start and included from postgresql.conf.
 */
#include "common/db.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/* snprintf that reports truncation (returns 1) instead of warning about it at compile time. */
static int pathf(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int pathf(char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= cap;
}

#define PG_PORT "5432"
#define SOCKET_PATH_MAX 107 /* sizeof(sun_path) - 1 */

struct pg_user {
    int as_root; /* we are root: run server programs as postgres */
    uid_t uid;
    gid_t gid;
};

static int exists(const char *p) { return access(p, F_OK) == 0; }

int db_pg_bindir(char *out, size_t cap, struct dsm_err *err) {
    const char *env = getenv("DSM_PG_BINDIR");
    char cand[PATH_MAX + 16];
    if (env && env[0]) {
        pathf(cand, sizeof cand, "%s/initdb", env);
        if (!exists(cand)) return dsm_errf(err, DSM_ENOTFOUND, "DSM_PG_BINDIR=%s holds no initdb", env);
        pathf(out, cap, "%s", env);
        return DSM_OK;
    }
    FILE *f = popen("pg_config --bindir 2>/dev/null", "r");
    if (f) {
        char line[PATH_MAX] = "";
        if (fgets(line, sizeof line, f)) line[strcspn(line, "\r\n")] = '\0';
        pclose(f);
        pathf(cand, sizeof cand, "%s/initdb", line);
        if (line[0] && exists(cand)) {
            pathf(out, cap, "%s", line);
            return DSM_OK;
        }
    }
    glob_t g;
    int best = -1;
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) == 0) {
        int best_v = -1;
        for (size_t i = 0; i < g.gl_pathc; i++) {
            int v = atoi(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"));
            if (v > best_v) {
                best_v = v;
                best = (int)i;
            }
        }
        if (best >= 0) {
            pathf(out, cap, "%s", g.gl_pathv[best]);
            char *slash = strrchr(out, '/');
            if (slash) *slash = '\0';
        }
        globfree(&g);
    }
    if (best >= 0) return DSM_OK;
    return dsm_errf(err, DSM_ENOTFOUND,
                    "cannot find the PostgreSQL server programs (initdb, pg_ctl): install them "
                    "(bash scripts/setup.sh) or set DSM_PG_BINDIR, or point DSM_DATABASE_URL at a server");
}

static int pg_user_get(struct pg_user *u, struct dsm_err *err) {
    memset(u, 0, sizeof *u);
    if (geteuid() != 0) return DSM_OK;
    struct passwd *pw = getpwnam("postgres");
    if (!pw)
        return dsm_errf(err, DSM_EIO,
                        "running as root but there is no 'postgres' user to run the database server as");
    u->as_root = 1;
    u->uid = pw->pw_uid;
    u->gid = pw->pw_gid;
    return DSM_OK;
}

/* Run argv (argv[0] an absolute path) as the server user, stdout+stderr appended to logpath.
 * Returns the exit status, or -1 when it could not run. */
static int run_prog(const struct pg_user *u, char *const argv[], const char *logpath) {
    char *full[32];
    int k = 0;
    if (u->as_root) {
        full[k++] = (char *)"runuser";
        full[k++] = (char *)"-u";
        full[k++] = (char *)"postgres";
        full[k++] = (char *)"--";
    }
    for (int i = 0; argv[i] && k < 31; i++) full[k++] = argv[i];
    full[k] = NULL;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int nul = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (nul >= 0) dup2(nul, 0);
        if (chdir("/") != 0) _exit(126);
        if (u->as_root) {
            execv("/usr/sbin/runuser", full);
            execv("/sbin/runuser", full);
            execvp("runuser", full);
        } else {
            execv(full[0], full);
        }
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The absolute home directory: home, $DSM_HOME, or ./var. */
static int resolve_home(const char *home, char *out, size_t cap, struct dsm_err *err) {
    if (!home || !home[0]) home = getenv("DSM_HOME");
    if (!home || !home[0]) home = "var";
    char tmp[PATH_MAX];
    if (home[0] == '/') {
        pathf(tmp, sizeof tmp, "%s", home);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) return dsm_errf(err, DSM_EIO, "getcwd: %s", strerror(errno));
        if (pathf(tmp, sizeof tmp, "%s/%s", cwd, home))
            return dsm_errf(err, DSM_EINVAL, "data directory path too long");
    }
    size_t len = strlen(tmp);
    while (len > 1 && tmp[len - 1] == '/') tmp[--len] = '\0';
    if (len + 64 >= cap) return dsm_errf(err, DSM_EINVAL, "data directory path too long: %s", tmp);
    pathf(out, cap, "%s", tmp);
    return DSM_OK;
}

/* Can the postgres user traverse every directory from / down to dir? (root only) */
static int traversable(const struct pg_user *u, const char *dir, char *bad, size_t badcap) {
    if (!u->as_root) return 1;
    char p[PATH_MAX];
    pathf(p, sizeof p, "%s", dir);
    for (;;) {
        struct stat st;
        if (stat(p, &st) == 0) {
            int ok = (st.st_uid == u->uid) ? (st.st_mode & S_IXUSR)
                     : (st.st_gid == u->gid) ? (st.st_mode & S_IXGRP)
                                              : (st.st_mode & S_IXOTH);
            if (!ok) {
                pathf(bad, badcap, "%s", p);
                return 0;
            }
        }
        char *slash = strrchr(p, '/');
        if (!slash || slash == p) break;
        *slash = '\0';
    }
    return 1;
}

static void paths(const char *home, struct db_cluster_info *info) {
    pathf(info->home, sizeof info->home, "%s", home);
    pathf(info->datadir, sizeof info->datadir, "%s/pg/data", home);
}

/* Read the postmaster pid and socket directory from <datadir>/postmaster.pid (lines 1 and 5). */
static int read_pidfile(const char *datadir, long *pid, char *sockdir, size_t cap) {
    char p[PATH_MAX];
    pathf(p, sizeof p, "%s/postmaster.pid", datadir);
    FILE *f = fopen(p, "re");
    if (!f) return 0;
    char line[PATH_MAX];
    int n = 0, ok = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        n++;
        if (n == 1) *pid = atol(line);
        if (n == 5) {
            pathf(sockdir, cap, "%s", line);
            ok = 1;
            break;
        }
    }
    fclose(f);
    return ok && *pid > 0 && sockdir[0];
}

static void make_conninfo(struct db_cluster_info *info, const char *dbname) {
    pathf(info->conninfo, sizeof info->conninfo, "host=%s port=" PG_PORT " dbname=%s user=postgres",
             info->sockdir, dbname);
}

int db_cluster_status(const char *home, struct db_cluster_info *info, struct dsm_err *err) {
    memset(info, 0, sizeof *info);
    char h[1024];
    int rc = resolve_home(home, h, sizeof h, err);
    if (rc) return rc;
    paths(h, info);
    char pv[PATH_MAX];
    pathf(pv, sizeof pv, "%s/PG_VERSION", info->datadir);
    info->initialized = exists(pv);
    if (!info->initialized) return DSM_OK;
    long pid = 0;
    char sock[1100];
    if (!read_pidfile(info->datadir, &pid, sock, sizeof sock)) return DSM_OK;
    pathf(info->sockdir, sizeof info->sockdir, "%s", sock);
    make_conninfo(info, "postgres");
    if (PQping(info->conninfo) == PQPING_OK) {
        info->running = 1;
        info->pid = pid;
        make_conninfo(info, "dsm");
    } else {
        info->conninfo[0] = '\0';
    }
    return DSM_OK;
}

/* Take the start/stop lock (home/pg/lock). Returns the fd, or -1 with err set. */
static int lock_home(const char *home, struct dsm_err *err) {
    char p[PATH_MAX];
    pathf(p, sizeof p, "%s/pg", home);
    if (dsm_mkdir_p(p, err)) return -1;
    chmod(p, 0755);
    pathf(p, sizeof p, "%s/pg/lock", home);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        dsm_errf(err, DSM_EIO, "cannot open %s: %s", p, strerror(errno));
        return -1;
    }
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            dsm_errf(err, DSM_EIO, "cannot lock %s: %s", p, strerror(errno));
            close(fd);
            return -1;
        }
    }
    return fd;
}

static int init_cluster(const struct pg_user *u, const char *bindir, struct db_cluster_info *info,
                        struct dsm_err *err) {
    char bad[PATH_MAX], pgdir[PATH_MAX], log[PATH_MAX], initdb[PATH_MAX + 16];
    pathf(pgdir, sizeof pgdir, "%s/pg", info->home);
    if (!traversable(u, pgdir, bad, sizeof bad))
        return dsm_errf(err, DSM_EIO,
                        "the postgres user cannot reach %s (directory %s is not traversable): "
                        "chmod o+x it, or set DSM_HOME to a directory under /tmp or /work",
                        info->datadir, bad);
    if (mkdir(info->datadir, 0700) != 0 && errno != EEXIST)
        return dsm_errf(err, DSM_EIO, "cannot create %s: %s", info->datadir, strerror(errno));
    if (u->as_root && chown(info->datadir, u->uid, u->gid) != 0)
        return dsm_errf(err, DSM_EIO, "cannot give %s to the postgres user: %s", info->datadir, strerror(errno));
    pathf(log, sizeof log, "%s/pg/initdb.log", info->home);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (u->as_root && fchown(fd, u->uid, u->gid) != 0) LOG_WARN("cannot chown %s", log);
        close(fd);
    }
    pathf(initdb, sizeof initdb, "%s/initdb", bindir);
    char *argv[] = {initdb, (char *)"-D", info->datadir, (char *)"-A", (char *)"trust", (char *)"-E",
                    (char *)"UTF8", (char *)"--no-locale", (char *)"-U", (char *)"postgres", NULL};
    double t0 = dsm_now();
    int st = run_prog(u, argv, log);
    if (st != 0)
        return dsm_errf(err, DSM_EIO, "initdb failed (exit %d) for %s: see %s", st, info->datadir, log);
    /* include our settings file from postgresql.conf */
    char conf[PATH_MAX];
    pathf(conf, sizeof conf, "%s/postgresql.conf", info->datadir);
    FILE *f = fopen(conf, "ae");
    if (!f) return dsm_errf(err, DSM_EIO, "cannot append to %s: %s", conf, strerror(errno));
    fprintf(f, "\n# added by dsm: settings dsm manages (rewritten at every 'dsm db start')\n"
               "include_if_exists = 'dsm.conf'\n");
    fclose(f);
    LOG_INFO("initialised a PostgreSQL cluster in %s (%.2f s)", info->datadir, dsm_now() - t0);
    return DSM_OK;
}

/* Choose the socket directory: <home>/pg/run when short enough and reachable, else a new
 * /tmp/dsm-pg-XXXXXX. */
static int choose_sockdir(const struct pg_user *u, struct db_cluster_info *info, struct dsm_err *err) {
    char run[PATH_MAX], bad[PATH_MAX];
    pathf(run, sizeof run, "%s/pg/run", info->home);
    int fits = strlen(run) + strlen("/.s.PGSQL." PG_PORT) <= SOCKET_PATH_MAX;
    if (fits && traversable(u, info->home, bad, sizeof bad)) {
        if (mkdir(run, 0755) != 0 && errno != EEXIST)
            return dsm_errf(err, DSM_EIO, "cannot create %s: %s", run, strerror(errno));
        if (u->as_root && chown(run, u->uid, u->gid) != 0)
            return dsm_errf(err, DSM_EIO, "cannot chown %s: %s", run, strerror(errno));
        pathf(info->sockdir, sizeof info->sockdir, "%s", run);
        return DSM_OK;
    }
    char tmpl[] = "/tmp/dsm-pg-XXXXXX";
    if (!mkdtemp(tmpl)) return dsm_errf(err, DSM_EIO, "mkdtemp in /tmp: %s", strerror(errno));
    chmod(tmpl, 0755);
    if (u->as_root && chown(tmpl, u->uid, u->gid) != 0)
        return dsm_errf(err, DSM_EIO, "cannot chown %s: %s", tmpl, strerror(errno));
    pathf(info->sockdir, sizeof info->sockdir, "%s", tmpl);
    LOG_INFO("socket directory %s/pg/run is too long or unreachable; using %s", info->home, tmpl);
    return DSM_OK;
}

/* Write a conf value in single quotes (quotes doubled). */
static void conf_str(FILE *f, const char *key, const char *v) {
    fprintf(f, "%s = '", key);
    for (const char *p = v; *p; p++) {
        if (*p == '\'') fputc('\'', f);
        fputc(*p, f);
    }
    fputs("'\n", f);
}

static int write_dsm_conf(const struct pg_user *u, const struct db_cluster_info *info, int fast,
                          struct dsm_err *err) {
    char p[PATH_MAX];
    pathf(p, sizeof p, "%s/dsm.conf", info->datadir);
    FILE *f = fopen(p, "we");
    if (!f) return dsm_errf(err, DSM_EIO, "cannot write %s: %s", p, strerror(errno));
    fprintf(f, "# written by dsm at every start; edit postgresql.conf for your own settings\n");
    conf_str(f, "listen_addresses", "");
    conf_str(f, "unix_socket_directories", info->sockdir);
    fprintf(f, "port = " PG_PORT "\nmax_connections = 200\n");
    if (fast) fprintf(f, "# throwaway cluster (tests): durability off\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
    fclose(f);
    if (u->as_root && chown(p, u->uid, u->gid) != 0) LOG_WARN("cannot chown %s", p);
    return DSM_OK;
}

static int ensure_database(struct db_cluster_info *info, struct dsm_err *err) {
    make_conninfo(info, "postgres");
    struct db_open_opts o = {.conninfo = info->conninfo};
    struct dsm_db *db = NULL;
    int rc = db_open(&o, &db, err);
    if (rc) return rc;
    PGresult *r = NULL;
    const char *p[] = {"dsm"};
    rc = db_exec(db, "SELECT 1 FROM pg_database WHERE datname = $1::text", 1, p, &r, err);
    if (!rc && PQntuples(r) == 0) {
        rc = db_exec(db, "CREATE DATABASE dsm", 0, NULL, NULL, err);
        if (rc && !strcmp(db_last_sqlstate(db), "42P04")) rc = DSM_OK; /* created meanwhile */
    }
    PQclear(r);
    db_close(db);
    make_conninfo(info, "dsm");
    return rc;
}

int db_cluster_start(const char *home, int fast, struct db_cluster_info *info, struct dsm_err *err) {
    const char *fast_env = getenv("DSM_DB_FAST"); /* tests: throwaway clusters started by the CLI */
    if (fast_env && !strcmp(fast_env, "1")) fast = 1;
    int rc = db_cluster_status(home, info, err);
    if (rc) return rc;
    if (info->running) return ensure_database(info, err);
    struct pg_user u;
    if ((rc = pg_user_get(&u, err))) return rc;
    char bindir[PATH_MAX];
    if ((rc = db_pg_bindir(bindir, sizeof bindir, err))) return rc;
    int lfd = lock_home(info->home, err);
    if (lfd < 0) return err ? err->code : DSM_EIO;
    /* someone may have started it while we waited for the lock */
    char h[1024];
    pathf(h, sizeof h, "%s", info->home);
    if ((rc = db_cluster_status(h, info, err))) goto done;
    if (info->running) goto database;
    if (!info->initialized && (rc = init_cluster(&u, bindir, info, err))) goto done;
    info->initialized = 1;
    if ((rc = choose_sockdir(&u, info, err))) goto done;
    if ((rc = write_dsm_conf(&u, info, fast, err))) goto done;
    char log[PATH_MAX], pgctl[PATH_MAX + 16];
    pathf(log, sizeof log, "%s/pg/log", info->home);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (u.as_root && fchown(fd, u.uid, u.gid) != 0) LOG_WARN("cannot chown %s", log);
        close(fd);
    }
    pathf(pgctl, sizeof pgctl, "%s/pg_ctl", bindir);
    char *argv[] = {pgctl, (char *)"start", (char *)"-w", (char *)"-t", (char *)"60", (char *)"-s",
                    (char *)"-D", info->datadir, (char *)"-l", log, NULL};
    double t0 = dsm_now();
    int st = run_prog(&u, argv, log);
    if (st != 0) {
        rc = dsm_errf(err, DSM_EIO, "pg_ctl start failed (exit %d) for %s: see %s", st, info->datadir, log);
        goto done;
    }
    if ((rc = db_cluster_status(h, info, err))) goto done;
    if (!info->running) {
        rc = dsm_errf(err, DSM_EIO, "PostgreSQL started but does not answer on %s: see %s", info->sockdir, log);
        goto done;
    }
    LOG_INFO("started PostgreSQL (pid %ld, socket %s) in %.2f s", info->pid, info->sockdir, dsm_now() - t0);
database:
    rc = ensure_database(info, err);
done:
    close(lfd);
    return rc;
}

int db_cluster_stop(const char *home, int *was_running, struct dsm_err *err) {
    struct db_cluster_info info;
    if (was_running) *was_running = 0;
    int rc = db_cluster_status(home, &info, err);
    if (rc) return rc;
    char pidfile[PATH_MAX];
    pathf(pidfile, sizeof pidfile, "%s/postmaster.pid", info.datadir);
    if (!info.initialized || !exists(pidfile)) return DSM_OK;
    struct pg_user u;
    if ((rc = pg_user_get(&u, err))) return rc;
    char bindir[PATH_MAX];
    if ((rc = db_pg_bindir(bindir, sizeof bindir, err))) return rc;
    int lfd = lock_home(info.home, err);
    if (lfd < 0) return err ? err->code : DSM_EIO;
    char log[PATH_MAX], pgctl[PATH_MAX + 16];
    pathf(log, sizeof log, "%s/pg/log", info.home);
    pathf(pgctl, sizeof pgctl, "%s/pg_ctl", bindir);
    char *argv[] = {pgctl, (char *)"stop", (char *)"-w", (char *)"-t", (char *)"60", (char *)"-s",
                    (char *)"-m", (char *)"fast", (char *)"-D", info.datadir, NULL};
    int st = run_prog(&u, argv, log);
    if (st != 0 && exists(pidfile))
        rc = dsm_errf(err, DSM_EIO, "pg_ctl stop failed (exit %d) for %s: see %s", st, info.datadir, log);
    else if (was_running)
        *was_running = info.running;
    /* a fallback socket directory in /tmp is ours to remove */
    if (!rc && !strncmp(info.sockdir, "/tmp/dsm-pg-", 12)) rmdir(info.sockdir);
    close(lfd);
    return rc;
}

int db_cluster_destroy(const char *home, struct dsm_err *err) {
    struct db_cluster_info info;
    int rc = db_cluster_status(home, &info, err);
    if (rc) return rc;
    if (info.running) return dsm_errf(err, DSM_EINVAL, "refusing to remove %s: the cluster is running", info.home);
    char pg[PATH_MAX];
    pathf(pg, sizeof pg, "%s/pg", info.home);
    if (!exists(pg)) return DSM_OK;
    pid_t pid = fork();
    if (pid < 0) return dsm_errf(err, DSM_EIO, "fork: %s", strerror(errno));
    if (pid == 0) {
        execlp("rm", "rm", "-rf", "--", pg, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) break;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return dsm_errf(err, DSM_EIO, "cannot remove %s", pg);
    return DSM_OK;
}
