/* train_ckpt.c - atomic HF-layout checkpoints; see train_ckpt.h. */
#include "common/train_ckpt.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static size_t total_params(const struct dsm_model_config *c) {
    size_t n = 0;
    FOR_EACH_PRESENT(c, p, l) n += dsm_param_numel(c, (enum dsm_param)p);
    return n;
}

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

/* Where the tensors of one group come from: device pointer of parameter p in layer l. */
typedef float *(*tensor_fn)(void *ctx, enum dsm_param p, int l);

struct tensor_group {
    const char *prefix; /* prepended to the HF name */
    tensor_fn get;
    void *ctx;
};

/* Write ng groups of tensors (one per present parameter each) as one safetensors file. */
static int write_tensors(const char *path, struct dsm_model *m, const struct tensor_group *g, int ng,
                         struct dsm_err *err) {
    const struct dsm_model_config *c = &m->cfg;
    size_t total = total_params(c) * (size_t)ng, off = 0;
    size_t count = (size_t)(c->n_layers + 1) * DSM_P_COUNT * (size_t)ng;
    float *host = malloc(sizeof(float) * (total ? total : 1));
    char *names = malloc(count * 160);
    struct st_writer *w = NULL;
    int rc = DSM_OK, k = 0;
    if (!host || !names) {
        rc = dsm_errf(err, DSM_ENOMEM, "out of memory writing %s", path);
        goto done;
    }
    if ((rc = st_writer_create(&w, err))) goto done;
    for (int gi = 0; gi < ng; gi++)
        FOR_EACH_PRESENT(c, p, l) {
            size_t n = dsm_param_numel(c, (enum dsm_param)p);
            char *name = names + (size_t)k++ * 160, base[128];
            dsm_param_name((enum dsm_param)p, l, base, sizeof base);
            snprintf(name, 160, "%s%s", g[gi].prefix, base);
            m->be->download(m->be, host + off, g[gi].get(g[gi].ctx, (enum dsm_param)p, l), sizeof(float) * n);
            int nd;
            int64_t sh[2];
            dsm_param_shape(c, (enum dsm_param)p, &nd, sh);
            if ((rc = st_writer_add(w, name, DSM_DT_F32, nd, sh, host + off, err))) goto done;
            off += n;
        }
    rc = st_writer_write(w, path, err);
done:
    st_writer_destroy(w);
    free(host);
    free(names);
    return rc;
}

static float *get_weight(void *ctx, enum dsm_param p, int l) { return *dsm_model_wslot(ctx, p, l); }
static float *get_m1(void *ctx, enum dsm_param p, int l) { return dsm_optim_state(ctx, p, l, 0); }
static float *get_m2(void *ctx, enum dsm_param p, int l) { return dsm_optim_state(ctx, p, l, 1); }

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
    rm_flat_dir(tmp);
    int rc = dsm_mkdir_p(tmp, err);
    if (rc) return rc;
    for (size_t i = 0; i < DSM_ARRAY_LEN(copied_files); i++) {
        char src[4096];
        snprintf(src, sizeof src, "%s/%s", src_dir, copied_files[i]);
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
    snprintf(path, sizeof path, "%s/model.safetensors", tmp);
    const struct tensor_group weights = {"", get_weight, m};
    if ((rc = write_tensors(path, m, &weights, 1, err))) goto fail;
    if (o && dsm_optim_state(o, DSM_P_EMBED, 0, 0)) {
        const struct tensor_group moments[2] = {{"exp_avg.", get_m1, o}, {"exp_avg_sq.", get_m2, o}};
        snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp);
        if ((rc = write_tensors(path, m, moments, 2, err))) goto fail;
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
    /* swap into place: an existing checkpoint is moved aside first (rename cannot replace a
     * non-empty directory), so at every instant one complete copy exists */
    snprintf(old, sizeof old, "%s/.%s.old.%ld", parent, leaf, (long)getpid());
    rm_flat_dir(old);
    struct stat sb;
    int had = stat(dir, &sb) == 0;
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

int dsm_ckpt_write_model(const char *dir, const char *src_dir, struct dsm_train *t, struct dsm_err *err) {
    struct dsm_model *m = dsm_train_model(t);
    char src[4200], path[4200];
    if (strlen(dir) > 4000 || strlen(src_dir) > 4000) return dsm_errf(err, DSM_EINVAL, "path too long");
    int rc = dsm_mkdir_p(dir, err);
    if (rc) return rc;
    for (size_t i = 0; i < DSM_ARRAY_LEN(copied_files); i++) {
        snprintf(src, sizeof src, "%s/%s", src_dir, copied_files[i]);
        snprintf(path, sizeof path, "%s/%s", dir, copied_files[i]);
        if (access(src, R_OK) == 0 && (rc = copy_file(src, path, err))) return rc;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    const struct tensor_group weights = {"", get_weight, m};
    return write_tensors(path, m, &weights, 1, err);
}

/* Upload tensors "<prefix><name>" of file path into get(p, l) for every present parameter. */
static int read_tensors(const char *path, struct dsm_model *m, const struct tensor_group *g, struct dsm_err *err) {
    const struct dsm_model_config *c = &m->cfg;
    struct st_file *f = NULL;
    int rc = st_open(path, &f, err);
    if (rc) return rc;
    char name[200], base[128];
    FOR_EACH_PRESENT(c, p, l) {
        dsm_param_name((enum dsm_param)p, l, base, sizeof base);
        snprintf(name, sizeof name, "%s%s", g->prefix, base);
        const struct st_tensor *t = st_find(f, name);
        size_t n = dsm_param_numel(c, (enum dsm_param)p);
        if (!t || !t->dtype_ok || t->dtype != DSM_DT_F32 || t->nbytes != 4 * n) {
            rc = dsm_errf(err, DSM_EINVAL, "%s: tensor '%s' is missing or not float32 with %zu elements", path, name, n);
            break;
        }
        float *tmp = malloc(4 * n);
        if (!tmp) {
            rc = dsm_errf(err, DSM_ENOMEM, "out of memory reading %s", path);
            break;
        }
        memcpy(tmp, t->data, 4 * n); /* data may be unaligned */
        m->be->upload(m->be, g->get(g->ctx, (enum dsm_param)p, l), tmp, 4 * n);
        free(tmp);
    }
    st_close(f);
    return rc;
}

int dsm_ckpt_load_state(const char *dir, struct dsm_optim *o, struct dsm_ckpt_state *st, struct dsm_err *err) {
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
    if (!o || !dsm_optim_state(o, DSM_P_EMBED, 0, 0)) return DSM_OK;
    struct dsm_model *m = dsm_optim_model(o);
    const struct tensor_group g1 = {"exp_avg.", get_m1, o}, g2 = {"exp_avg_sq.", get_m2, o};
    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    int rc = read_tensors(path, m, &g1, err);
    return rc ? rc : read_tensors(path, m, &g2, err);
}

int dsm_ckpt_latest(const char *out_dir, char *buf, size_t cap, struct dsm_err *err) {
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
