/* train_ckpt.c - atomic HF-layout checkpoints; see train_ckpt.h. */
#include "common/train_ckpt.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/lora.h"
#include "common/model_impl.h"
#include "common/optim.h"
#include "common/params.h"
#include "common/safetensors.h"
#include "common/train.h"
#include "common/util.h"

#define FOR_EACH_PRESENT(cfg, p, l)                                                        \
    for (int p = 0; p < DSM_P_COUNT; p++)                                                  \
        for (int l = 0; l < (dsm_param_table[p].per_layer ? (cfg)->n_layers : 1); l++)     \
            if (dsm_param_present((cfg), (enum dsm_param)p))

static const char *const copied_files[] = {"config.json", "generation_config.json", "tokenizer.json",
                                           "tokenizer_config.json", "special_tokens_map.json"};

/* Remove a directory of plain files (a temporary or replaced checkpoint). */
static void rm_flat_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

static int fsync_path(const char *path, struct dsm_err *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return dsm_errf(err, DSM_EIO, "cannot open %s to sync it", path);
    int rc = fsync(fd);
    close(fd);
    return rc ? dsm_errf(err, DSM_EIO, "fsync %s failed", path) : DSM_OK;
}

/* If name ends in ".<tag>.<digits>", the digits as a pid (else 0). */
static long tagged_pid(const char *name, const char *tag) {
    const char *dot = strrchr(name, '.');
    size_t tl = strlen(tag);
    if (!dot || !dot[1] || (size_t)(dot - name) < tl + 1) return 0;
    for (const char *c = dot + 1; *c; c++)
        if (!isdigit((unsigned char)*c)) return 0;
    if (strncmp(dot - tl, tag, tl) || dot[-(long)tl - 1] != '.') return 0;
    return strtol(dot + 1, NULL, 10);
}

/* A pid from a leftover's name that is certainly not running (ESRCH); our own pid is alive. */
static int pid_gone(long pid) {
    return pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Files the final model or adapter is written as (each through "<name>.tmp.<pid>"). */
static int is_output_file(const char *name, size_t len) {
    static const char *const outs[] = {"model.safetensors", "adapter_model.safetensors", "adapter_config.json"};
    for (size_t i = 0; i < DSM_ARRAY_LEN(copied_files); i++)
        if (strlen(copied_files[i]) == len && !strncmp(name, copied_files[i], len)) return 1;
    for (size_t i = 0; i < DSM_ARRAY_LEN(outs); i++)
        if (strlen(outs[i]) == len && !strncmp(name, outs[i], len)) return 1;
    return 0;
}

/* Clean up after processes killed while saving into dir (a run's output directory): a
 * ".checkpoint-N.tmp.PID" directory or "<output file>.tmp.PID" file of a dead PID is removed; a
 * ".checkpoint-N.old.PID" directory (the previous copy, moved aside while its replacement was
 * renamed in) is renamed back when checkpoint-N is missing, else removed. Only names of exactly
 * these forms whose PID no longer exists are touched, so a concurrent save (its PID alive) is safe.
 * Best effort: failures are ignored (the leftovers are harmless, only disk). */
static void sweep_leftovers(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[4400], target[4400];
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        long pid;
        if (strlen(dir) + strlen(n) > 4000) continue;
        snprintf(path, sizeof path, "%s/%s", dir, n);
        if (!strncmp(n, ".checkpoint-", 12) && (pid = tagged_pid(n, "tmp")) && pid_gone(pid)) {
            rm_flat_dir(path);
        } else if (!strncmp(n, ".checkpoint-", 12) && (pid = tagged_pid(n, "old")) && pid_gone(pid)) {
            /* ".checkpoint-N.old.PID" -> "checkpoint-N" */
            size_t keep = (size_t)(strrchr(n, '.') - n) - 4; /* drop ".old" */
            snprintf(target, sizeof target, "%s/%.*s", dir, (int)(keep - 1), n + 1);
            struct stat sb;
            if (stat(target, &sb) != 0 && errno == ENOENT && rename(path, target) == 0) {
                LOG_WARN("restored %s (its replacement was interrupted)", target);
                struct dsm_err ignored = {0};
                fsync_path(dir, &ignored);
            } else {
                rm_flat_dir(path);
            }
        } else if ((pid = tagged_pid(n, "tmp")) && pid_gone(pid) && is_output_file(n, (size_t)(strrchr(n, '.') - n) - 4)) {
            unlink(path);
        }
    }
    closedir(d);
}


/* One tensor of a file: name, device pointer, shape. */
struct named {
    const char *prefix;
    const char *name;
    float *dev;
    int ndim;
    const int64_t *shape;
    size_t n;
};

/* Write n named tensors (downloaded from the backend) as one safetensors file. */
static int write_named(const char *path, struct dsm_backend *be, const struct named *ts, int n, struct dsm_err *err) {
    size_t total = 0, off = 0;
    for (int i = 0; i < n; i++) total += ts[i].n;
    float *host = malloc(sizeof(float) * (total ? total : 1));
    char *names = malloc((size_t)(n ? n : 1) * 200);
    struct st_writer *w = NULL;
    int rc = DSM_OK;
    if (!host || !names) {
        rc = dsm_errf(err, DSM_ENOMEM, "out of memory writing %s", path);
        goto done;
    }
    if ((rc = st_writer_create(&w, err))) goto done;
    for (int i = 0; i < n; i++) {
        char *name = names + (size_t)i * 200;
        snprintf(name, 200, "%s%s", ts[i].prefix, ts[i].name);
        be->download(be, host + off, ts[i].dev, sizeof(float) * ts[i].n);
        if ((rc = st_writer_add(w, name, DSM_DT_F32, ts[i].ndim, ts[i].shape, host + off, err))) goto done;
        off += ts[i].n;
    }
    rc = st_writer_write(w, path, err);
done:
    st_writer_destroy(w);
    free(host);
    free(names);
    return rc;
}

/* The full model's weights as named tensors (HF names; shapes into shapes[], names into names[]). */
static int model_named(struct dsm_model *m, struct named **out, int *n, char (**names)[128], int64_t (**shapes)[2]) {
    const struct dsm_model_config *c = &m->cfg;
    int cap = (c->n_layers + 1) * DSM_P_COUNT, k = 0;
    *out = calloc((size_t)cap, sizeof **out);
    *names = calloc((size_t)cap, sizeof **names);
    *shapes = calloc((size_t)cap, sizeof **shapes);
    if (!*out || !*names || !*shapes) return -1;
    FOR_EACH_PRESENT(c, p, l) {
        struct named *x = &(*out)[k];
        dsm_param_name((enum dsm_param)p, l, (*names)[k], 128);
        dsm_param_shape(c, (enum dsm_param)p, &x->ndim, (*shapes)[k]);
        *x = (struct named){"", (*names)[k], *dsm_model_wslot(m, (enum dsm_param)p, l), x->ndim, (*shapes)[k],
                            dsm_param_numel(c, (enum dsm_param)p)};
        k++;
    }
    *n = k;
    return 0;
}

static int write_model(const char *path, struct dsm_model *m, struct dsm_err *err) {
    struct named *ts = NULL;
    char(*names)[128] = NULL;
    int64_t(*shapes)[2] = NULL;
    int n = 0, rc;
    if (model_named(m, &ts, &n, &names, &shapes)) rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
    else rc = write_named(path, m->be, ts, n, err);
    free(ts), free(names), free(shapes);
    return rc;
}

/* optimizer.safetensors: "exp_avg.<name>" and "exp_avg_sq.<name>" of every optimized tensor. */
static int write_optim(const char *path, struct dsm_backend *be, struct dsm_optim *o, struct dsm_err *err) {
    int n = dsm_optim_count(o);
    struct named *ts = calloc((size_t)(2 * n + 1), sizeof *ts);
    if (!ts) return dsm_errf(err, DSM_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++)
        for (int w = 0; w < 2; w++) {
            const struct dsm_optim_tensor *x = dsm_optim_tensor_at(o, i);
            ts[2 * i + w] = (struct named){w ? "exp_avg_sq." : "exp_avg.", x->name, dsm_optim_moment(o, i, w), x->ndim, x->shape, x->n};
        }
    int rc = write_named(path, be, ts, 2 * n, err);
    free(ts);
    return rc;
}

static int copy_file(const char *src, const char *dst, struct dsm_err *err) {
    char *buf = NULL;
    size_t len = 0;
    int rc = dsm_file_read(src, &buf, &len, err);
    if (rc) return rc;
    rc = dsm_file_write_atomic(dst, buf, len, err);
    free(buf);
    return rc;
}

int dsm_ckpt_save(const char *dir, const char *src_dir, struct dsm_train *t, struct dsm_optim *o,
                  const struct dsm_ckpt_state *st, struct dsm_err *err) {
    struct dsm_model *m = dsm_train_model(t);
    char tmp[4200], path[8192], old[8192], parent[4096];
    if (strlen(dir) > 4000) return dsm_errf(err, DSM_EINVAL, "checkpoint path too long: %.100s...", dir);
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    const char *leaf = slash ? slash + 1 : dir;
    if (slash) *slash = '\0';
    else snprintf(parent, sizeof parent, ".");
    if (snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%ld", parent, leaf, (long)getpid()) >= (int)sizeof tmp)
        return dsm_errf(err, DSM_EINVAL, "checkpoint path too long: %s", dir);
    sweep_leftovers(parent); /* what killed saves left (a process's names carry its pid) */
    rm_flat_dir(tmp);
    int rc = dsm_mkdir_p(tmp, err);
    if (rc) return rc;
    for (size_t i = 0; i < DSM_ARRAY_LEN(copied_files); i++) {
        char src[4096];
        snprintf(src, sizeof src, "%s/%s", src_dir, copied_files[i]);
        if (i == 0 && dsm_train_lora(t)) continue; /* an adapter directory has no config.json */
        if (access(src, R_OK) != 0) {
            if (i == 0) {
                rc = dsm_errf(err, DSM_ENOTFOUND, "%s has no config.json to copy into the checkpoint", src_dir);
                goto fail;
            }
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", tmp, copied_files[i]);
        if ((rc = copy_file(src, path, err))) goto fail;
    }
    struct dsm_lora *lora = dsm_train_lora(t);
    if (lora) rc = dsm_lora_save(lora, tmp, src_dir, err);
    else {
        snprintf(path, sizeof path, "%s/model.safetensors", tmp);
        rc = write_model(path, m, err);
    }
    if (rc) goto fail;
    if (o && dsm_optim_moment(o, 0, 0)) {
        snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp);
        if ((rc = write_optim(path, m->be, o, err))) goto fail;
    }
    json_t *j = json_pack("{s:i, s:I, s:I, s:I, s:s, s:I, s:f}", "format_version", 1, "step", (json_int_t)st->step, "epoch",
                          (json_int_t)st->epoch, "cursor", (json_int_t)st->cursor, "seed", "", "tokens",
                          (json_int_t)st->tokens, "elapsed_s", st->elapsed_s);
    char seedbuf[32];
    snprintf(seedbuf, sizeof seedbuf, "%llu", st->seed);
    json_object_set_new(j, "seed", json_string(seedbuf)); /* as a string: 64-bit safe */
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(j);
    snprintf(path, sizeof path, "%s/trainer_state.json", tmp);
    rc = text ? dsm_file_write_atomic(path, text, strlen(text), err) : dsm_errf(err, DSM_ENOMEM, "out of memory");
    free(text);
    if (rc || (rc = fsync_path(tmp, err))) goto fail;
    /* into place. rename cannot replace a non-empty directory, so an existing checkpoint of the
     * same name (a finished run resumed, or a run resumed from an older checkpoint) is swapped
     * with the new one atomically (RENAME_EXCHANGE) and the old copy, now at tmp, removed: at
     * every instant dir is complete. Where the file system cannot exchange, the old copy is moved
     * aside first: between the two renames dir is missing and the old copy is complete at
     * .NAME.old.PID, which sweep_leftovers renames back after a crash. */
    struct stat sb;
    int had = stat(dir, &sb) == 0;
#ifdef RENAME_EXCHANGE
    if (had) {
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) == 0) {
            rc = fsync_path(parent, err);
            rm_flat_dir(tmp); /* the previous copy */
            return rc;
        }
        if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP && errno != EOPNOTSUPP) {
            rc = dsm_errf(err, DSM_EIO, "cannot swap %s into place of %s: %s", tmp, dir, strerror(errno));
            goto fail;
        }
    }
#endif
    snprintf(old, sizeof old, "%s/.%s.old.%ld", parent, leaf, (long)getpid());
    rm_flat_dir(old);
    if (had && rename(dir, old) != 0) {
        rc = dsm_errf(err, DSM_EIO, "cannot move the previous checkpoint %s aside", dir);
        goto fail;
    }
    if (rename(tmp, dir) != 0) {
        if (had) rename(old, dir);
        rc = dsm_errf(err, DSM_EIO, "cannot rename %s to %s", tmp, dir);
        goto fail;
    }
    if ((rc = fsync_path(parent, err))) return rc;
    if (had) rm_flat_dir(old);
    return DSM_OK;
fail:
    rm_flat_dir(tmp);
    return rc;
}

static int write_dir(const char *dir, const char *src_dir, struct dsm_model *m, struct dsm_lora *lora, struct dsm_err *err) {
    char src[4200], path[4200];
    if (strlen(dir) > 4000 || strlen(src_dir) > 4000) return dsm_errf(err, DSM_EINVAL, "path too long");
    int rc = dsm_mkdir_p(dir, err);
    if (rc) return rc;
    for (size_t i = lora ? 1 : 0; i < DSM_ARRAY_LEN(copied_files); i++) {
        snprintf(src, sizeof src, "%s/%s", src_dir, copied_files[i]);
        snprintf(path, sizeof path, "%s/%s", dir, copied_files[i]);
        if (access(src, R_OK) == 0 && (rc = copy_file(src, path, err))) return rc;
    }
    if (lora) return dsm_lora_save(lora, dir, src_dir, err);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    return write_model(path, m, err);
}

int dsm_ckpt_write_model(const char *dir, const char *src_dir, struct dsm_train *t, struct dsm_err *err) {
    sweep_leftovers(dir); /* a killed earlier write of the final model left "<file>.tmp.PID" */
    return write_dir(dir, src_dir, dsm_train_model(t), dsm_train_lora(t), err);
}

int dsm_ckpt_write_weights(const char *dir, const char *src_dir, struct dsm_model *m, struct dsm_err *err) {
    return write_dir(dir, src_dir, m, NULL, err);
}

/* Upload "exp_avg.<name>" and "exp_avg_sq.<name>" of every tensor of o from path. */
static int read_optim(const char *path, struct dsm_backend *be, struct dsm_optim *o, struct dsm_err *err) {
    struct st_file *f = NULL;
    int rc = st_open(path, &f, err);
    if (rc) return rc;
    char name[220];
    for (int i = 0; i < dsm_optim_count(o) && !rc; i++)
        for (int w = 0; w < 2 && !rc; w++) {
            const struct dsm_optim_tensor *x = dsm_optim_tensor_at(o, i);
            snprintf(name, sizeof name, "%s%s", w ? "exp_avg_sq." : "exp_avg.", x->name);
            const struct st_tensor *t = st_find(f, name);
            if (!t || !t->dtype_ok || t->dtype != DSM_DT_F32 || t->nbytes != 4 * x->n) {
                rc = dsm_errf(err, DSM_EINVAL, "%s: tensor '%s' is missing or not float32 with %zu elements (checkpoint of another run?)",
                              path, name, x->n);
                break;
            }
            float *tmp = malloc(4 * x->n);
            if (!tmp) {
                rc = dsm_errf(err, DSM_ENOMEM, "out of memory reading %s", path);
                break;
            }
            memcpy(tmp, t->data, 4 * x->n); /* data may be unaligned */
            be->upload(be, dsm_optim_moment(o, i, w), tmp, 4 * x->n);
            free(tmp);
        }
    st_close(f);
    return rc ? rc : be->sync(be, err);
}

int dsm_ckpt_load_state(const char *dir, struct dsm_backend *be, struct dsm_optim *o, struct dsm_ckpt_state *st,
                        struct dsm_err *err) {
    char path[4096];
    memset(st, 0, sizeof *st);
    snprintf(path, sizeof path, "%s/trainer_state.json", dir);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) return dsm_errf(err, DSM_EINVAL, "%s: %s (line %d)", path, je.text, je.line);
    json_t *step = json_object_get(j, "step"), *epoch = json_object_get(j, "epoch"), *cur = json_object_get(j, "cursor");
    const char *seed = json_string_value(json_object_get(j, "seed"));
    if (!json_is_integer(step) || !json_is_integer(epoch) || !json_is_integer(cur) || !seed || json_integer_value(step) < 0) {
        json_decref(j);
        return dsm_errf(err, DSM_EINVAL, "%s: needs integer step, epoch, cursor and a seed string", path);
    }
    st->step = (long)json_integer_value(step);
    st->epoch = (long)json_integer_value(epoch);
    st->cursor = (long)json_integer_value(cur);
    st->seed = strtoull(seed, NULL, 10);
    st->tokens = (long)json_integer_value(json_object_get(j, "tokens"));
    st->elapsed_s = json_number_value(json_object_get(j, "elapsed_s"));
    json_decref(j);
    if (!o || !dsm_optim_moment(o, 0, 0)) return DSM_OK;
    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    return read_optim(path, be, o, err);
}

int dsm_ckpt_latest(const char *out_dir, char *buf, size_t cap, struct dsm_err *err) {
    sweep_leftovers(out_dir); /* may restore a checkpoint whose replacement was interrupted */
    DIR *d = opendir(out_dir);
    if (!d) return dsm_errf(err, DSM_ENOTFOUND, "no checkpoint to resume: %s does not exist", out_dir);
    long best = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        if (strncmp(e->d_name, "checkpoint-", 11)) continue;
        long n = strtol(e->d_name + 11, &end, 10);
        if (*end || end == e->d_name + 11) continue;
        if (n > best) best = n;
    }
    closedir(d);
    if (best < 0) return dsm_errf(err, DSM_ENOTFOUND, "no checkpoint-N directory under %s to resume from", out_dir);
    if (snprintf(buf, cap, "%s/checkpoint-%ld", out_dir, best) >= (int)cap) return dsm_errf(err, DSM_EINVAL, "path too long");
    return DSM_OK;
}
