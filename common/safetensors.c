/* safetensors.c - safetensors reader (mmap, shards) and writer; see safetensors.h.
 *
 * The parser treats the file as hostile: every length and offset is checked before use, sizes
 * are computed with overflow checks, and nothing points outside the buffer once st_parse
 * succeeds.
 */
#include "common/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

/* Largest header we accept (the real 7B headers are ~30 KB). */
#define ST_MAX_HEADER (100u << 20)

struct st_file {
    void *map;        /* mmap base, or NULL when parsed from a caller buffer */
    size_t map_len;
    int n;
    struct st_tensor *t;
};

struct st_model {
    int nfiles;
    struct st_file **files;
};

static const struct {
    const char *name;
    size_t size;
    int ok;
    enum dsm_dtype dt;
} dtypes[] = {
    {"F32", 4, 1, DSM_DT_F32}, {"F16", 2, 1, DSM_DT_F16},  {"BF16", 2, 1, DSM_DT_BF16},
    {"F64", 8, 0, DSM_DT_F32}, {"I64", 8, 0, DSM_DT_F32},  {"U64", 8, 0, DSM_DT_F32},
    {"I32", 4, 0, DSM_DT_F32}, {"U32", 4, 0, DSM_DT_F32},  {"I16", 2, 0, DSM_DT_F32},
    {"U16", 2, 0, DSM_DT_F32}, {"I8", 1, 0, DSM_DT_F32},   {"U8", 1, 0, DSM_DT_F32},
    {"BOOL", 1, 0, DSM_DT_F32}, {"F8_E4M3", 1, 0, DSM_DT_F32}, {"F8_E5M2", 1, 0, DSM_DT_F32},
};

static int offset_cmp(const void *a, const void *b) {
    const struct st_tensor *x = a, *y = b;
    const char *px = x->data, *py = y->data;
    /* by start, then by size: a zero-size tensor sorts before a neighbour sharing its start */
    if (px != py) return px < py ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

/* Parse one tensor entry `name: {dtype, shape, data_offsets}` into t. */
static int parse_entry(const char *where, const char *name, json_t *e, const uint8_t *data,
                       size_t data_len, struct st_tensor *t, struct dsm_err *err) {
    if (!json_is_object(e)) return dsm_errf(err, DSM_EINVAL, "%s: tensor '%s': entry is not an object", where, name);
    json_t *dt = json_object_get(e, "dtype"), *shape = json_object_get(e, "shape"),
           *offs = json_object_get(e, "data_offsets");
    if (!json_is_string(dt)) return dsm_errf(err, DSM_EINVAL, "%s: tensor '%s': missing string 'dtype'", where, name);
    size_t esize = 0;
    for (size_t i = 0; i < DSM_ARRAY_LEN(dtypes); i++)
        if (!strcmp(json_string_value(dt), dtypes[i].name)) {
            t->dtype_name = dtypes[i].name;
            t->dtype_ok = dtypes[i].ok;
            t->dtype = dtypes[i].dt;
            esize = dtypes[i].size;
        }
    if (!esize) return dsm_errf(err, DSM_EINVAL, "%s: tensor '%s': unknown dtype '%s'", where, name, json_string_value(dt));
    if (!json_is_array(shape) || json_array_size(shape) > ST_MAX_DIMS)
        return dsm_errf(err, DSM_EINVAL, "%s: tensor '%s': 'shape' must be a list of at most %d integers", where, name, ST_MAX_DIMS);
    t->ndim = (int)json_array_size(shape);
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        json_t *v = json_array_get(shape, (size_t)d);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return dsm_errf(err, DSM_EINVAL, "%s: tensor '%s': shape[%d] is not a non-negative integer", where, name, d);
        uint64_t dim = (uint64_t)json_integer_value(v);
        if (dim && numel > (UINT64_MAX / 16) / dim)
            return dsm_errf(err, DSM_EINVAL, "%s: tensor '%s': shape is too large", where, name);
        numel *= dim;
        t->shape[d] = (int64_t)dim;
    }
    if (!json_is_array(offs) || json_array_size(offs) != 2 || !json_is_integer(json_array_get(offs, 0)) ||
        !json_is_integer(json_array_get(offs, 1)))
        return dsm_errf(err, DSM_EINVAL, "%s: tensor '%s': 'data_offsets' must be [begin, end]", where, name);
    json_int_t b = json_integer_value(json_array_get(offs, 0)), en = json_integer_value(json_array_get(offs, 1));
    if (b < 0 || en < b || (uint64_t)en > data_len)
        return dsm_errf(err, DSM_EINVAL, "%s: tensor '%s': data_offsets [%lld, %lld] lie outside the data region (%zu bytes)",
                        where, name, (long long)b, (long long)en, data_len);
    if ((uint64_t)(en - b) != numel * esize)
        return dsm_errf(err, DSM_EINVAL, "%s: tensor '%s': data_offsets span %lld bytes but shape and dtype need %llu",
                        where, name, (long long)(en - b), (unsigned long long)(numel * esize));
    t->data = data + b;
    t->nbytes = (size_t)(en - b);
    return DSM_OK;
}

int st_parse(const uint8_t *buf, size_t len, const char *where, struct st_file **out, struct dsm_err *err) {
    *out = NULL;
    if (len < 8) return dsm_errf(err, DSM_EINVAL, "%s: truncated: %zu bytes, a safetensors file has at least 8", where, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > len - 8)
        return dsm_errf(err, DSM_EINVAL, "%s: header length %llu exceeds the file (%zu bytes): truncated or not safetensors",
                        where, (unsigned long long)hlen, len);
    if (hlen > ST_MAX_HEADER || hlen < 2)
        return dsm_errf(err, DSM_EINVAL, "%s: implausible header length %llu", where, (unsigned long long)hlen);
    json_error_t je;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root) return dsm_errf(err, DSM_EINVAL, "%s: header is not valid JSON (byte %d): %s", where, je.position, je.text);
    int rc = DSM_OK;
    struct st_file *f = NULL;
    if (!json_is_object(root)) {
        rc = dsm_errf(err, DSM_EINVAL, "%s: header is not a JSON object", where);
        goto fail;
    }
    f = dsm_calloc(1, sizeof *f, err);
    if (!f || !(f->t = dsm_calloc(json_object_size(root) + 1, sizeof *f->t, err))) {
        rc = DSM_ENOMEM;
        goto fail;
    }
    const uint8_t *data = buf + 8 + hlen;
    size_t data_len = len - 8 - (size_t)hlen;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if (!json_is_object(val) && !json_is_null(val)) {
                rc = dsm_errf(err, DSM_EINVAL, "%s: '__metadata__' must be an object", where);
                goto fail;
            }
            continue;
        }
        struct st_tensor *t = &f->t[f->n];
        if ((rc = parse_entry(where, key, val, data, data_len, t, err))) goto fail;
        if (!(t->name = strdup(key))) {
            rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
            goto fail;
        }
        f->n++;
    }
    /* No two tensors may share bytes: sort a copy by start and compare neighbours. */
    if (f->n > 1) {
        struct st_tensor *sorted = dsm_calloc((size_t)f->n, sizeof *sorted, err);
        if (!sorted) {
            rc = DSM_ENOMEM;
            goto fail;
        }
        memcpy(sorted, f->t, sizeof *sorted * (size_t)f->n);
        qsort(sorted, (size_t)f->n, sizeof *sorted, offset_cmp);
        for (int i = 1; i < f->n && rc == DSM_OK; i++)
            if ((const char *)sorted[i].data < (const char *)sorted[i - 1].data + sorted[i - 1].nbytes)
                rc = dsm_errf(err, DSM_EINVAL, "%s: tensors '%s' and '%s' overlap in the data region", where,
                              sorted[i - 1].name, sorted[i].name);
        free(sorted);
        if (rc) goto fail;
    }
    json_decref(root);
    *out = f;
    return DSM_OK;
fail:
    json_decref(root);
    st_close(f);
    return rc;
}

int st_open(const char *path, struct st_file **out, struct dsm_err *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return dsm_errf(err, errno == ENOENT ? DSM_ENOTFOUND : DSM_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return dsm_errf(err, DSM_EIO, "%s: cannot stat: %s", path, strerror(errno));
    }
    size_t len = (size_t)st.st_size;
    if (len < 8) {
        close(fd);
        return dsm_errf(err, DSM_EINVAL, "%s: truncated: %zu bytes, a safetensors file has at least 8", path, len);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return dsm_errf(err, DSM_EIO, "%s: mmap failed: %s", path, strerror(errno));
    int rc = st_parse(map, len, path, out, err);
    if (rc) {
        munmap(map, len);
        return rc;
    }
    (*out)->map = map;
    (*out)->map_len = len;
    return DSM_OK;
}

void st_close(struct st_file *f) {
    if (!f) return;
    if (f->t)
        for (int i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    if (f->map) munmap(f->map, f->map_len);
    free(f);
}

int st_count(const struct st_file *f) { return f->n; }
const struct st_tensor *st_at(const struct st_file *f, int i) { return i >= 0 && i < f->n ? &f->t[i] : NULL; }

const struct st_tensor *st_find(const struct st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

/* ---- models: one file or shards ---- */

static int model_add_file(struct st_model *m, const char *dir, const char *fname, struct dsm_err *err) {
    if (strchr(fname, '/') || !strcmp(fname, "..") || !*fname)
        return dsm_errf(err, DSM_EINVAL, "%s/model.safetensors.index.json: shard name '%s' is not a plain file name", dir, fname);
    char path[4096];
    int rc = dsm_path_join(path, sizeof path, dir, fname, err);
    if (rc) return rc;
    struct st_file **nf = realloc(m->files, sizeof *nf * (size_t)(m->nfiles + 1));
    if (!nf) return dsm_errf(err, DSM_ENOMEM, "out of memory");
    m->files = nf;
    if ((rc = st_open(path, &m->files[m->nfiles], err))) return rc;
    m->nfiles++;
    return DSM_OK;
}

static int open_sharded(struct st_model *m, const char *dir, const char *index_path, struct dsm_err *err) {
    char *text = NULL;
    int rc = dsm_file_read(index_path, &text, NULL, err);
    if (rc) return rc;
    json_error_t je;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!root) return dsm_errf(err, DSM_EINVAL, "%s:%d: invalid JSON: %s", index_path, je.line, je.text);
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm)) {
        json_decref(root);
        return dsm_errf(err, DSM_EINVAL, "%s: missing object 'weight_map'", index_path);
    }
    /* open each distinct shard once, in order of first mention */
    json_t *seen = json_object();
    const char *name;
    json_t *fv;
    json_object_foreach(wm, name, fv) {
        if (!json_is_string(fv)) {
            rc = dsm_errf(err, DSM_EINVAL, "%s: weight_map['%s'] is not a file name", index_path, name);
            break;
        }
        const char *fname = json_string_value(fv);
        if (json_object_get(seen, fname)) continue;
        json_object_set_new(seen, fname, json_true());
        if ((rc = model_add_file(m, dir, fname, err))) break;
    }
    /* every tensor the index names must be in the shard it names */
    if (rc == DSM_OK) json_object_foreach(wm, name, fv) {
            int found = 0;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, json_string_value(fv));
            for (int i = 0; i < m->nfiles && !found; i++) found = st_find(m->files[i], name) != NULL;
            if (!found) {
                rc = dsm_errf(err, DSM_EINVAL, "%s: tensor '%s' is listed for %s but no shard holds it", index_path, name, path);
                break;
            }
        }
    json_decref(seen);
    json_decref(root);
    return rc;
}

int st_model_open(const char *dir, struct st_model **out, struct dsm_err *err) {
    *out = NULL;
    struct st_model *m = dsm_calloc(1, sizeof *m, err);
    if (!m) return DSM_ENOMEM;
    char index[4096];
    int rc = dsm_path_join(index, sizeof index, dir, "model.safetensors.index.json", err);
    if (rc == DSM_OK) {
        if (access(index, F_OK) == 0) rc = open_sharded(m, dir, index, err);
        else {
            rc = model_add_file(m, dir, "model.safetensors", err);
            if (rc == DSM_ENOTFOUND)
                rc = dsm_errf(err, DSM_ENOTFOUND, "%s: no model.safetensors or model.safetensors.index.json", dir);
        }
    }
    if (rc) {
        st_model_close(m);
        return rc;
    }
    /* a tensor name in two shards is ambiguous */
    for (int i = 0; i < m->nfiles; i++)
        for (int k = 0; k < m->files[i]->n; k++)
            for (int j = i + 1; j < m->nfiles; j++)
                if (st_find(m->files[j], m->files[i]->t[k].name)) {
                    rc = dsm_errf(err, DSM_EINVAL, "%s: tensor '%s' appears in two shards", dir, m->files[i]->t[k].name);
                    st_model_close(m);
                    return rc;
                }
    *out = m;
    return DSM_OK;
}

void st_model_close(struct st_model *m) {
    if (!m) return;
    for (int i = 0; i < m->nfiles; i++) st_close(m->files[i]);
    free(m->files);
    free(m);
}

const struct st_tensor *st_model_find(const struct st_model *m, const char *name) {
    for (int i = 0; i < m->nfiles; i++) {
        const struct st_tensor *t = st_find(m->files[i], name);
        if (t) return t;
    }
    return NULL;
}

int st_model_count(const struct st_model *m) {
    int n = 0;
    for (int i = 0; i < m->nfiles; i++) n += m->files[i]->n;
    return n;
}

const struct st_tensor *st_model_at(const struct st_model *m, int i) {
    for (int f = 0; f < m->nfiles; f++) {
        if (i < m->files[f]->n) return &m->files[f]->t[i];
        i -= m->files[f]->n;
    }
    return NULL;
}

/* ---- writer ---- */

struct st_wentry {
    const char *name;
    enum dsm_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;
    size_t nbytes;
};

struct st_writer {
    int n, cap;
    struct st_wentry *e;
};

int st_writer_create(struct st_writer **out, struct dsm_err *err) {
    *out = dsm_calloc(1, sizeof **out, err);
    return *out ? DSM_OK : DSM_ENOMEM;
}

void st_writer_destroy(struct st_writer *w) {
    if (!w) return;
    free(w->e);
    free(w);
}

int st_writer_add(struct st_writer *w, const char *name, enum dsm_dtype dtype, int ndim,
                  const int64_t *shape, const void *data, struct dsm_err *err) {
    if (ndim < 0 || ndim > ST_MAX_DIMS) return dsm_errf(err, DSM_EINVAL, "tensor '%s': bad rank %d", name, ndim);
    if (w->n == w->cap) {
        int ncap = w->cap ? w->cap * 2 : 64;
        struct st_wentry *ne = realloc(w->e, sizeof *ne * (size_t)ncap);
        if (!ne) return dsm_errf(err, DSM_ENOMEM, "out of memory");
        w->e = ne;
        w->cap = ncap;
    }
    struct st_wentry *e = &w->e[w->n];
    e->name = name;
    e->dtype = dtype;
    e->ndim = ndim;
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return dsm_errf(err, DSM_EINVAL, "tensor '%s': negative dimension", name);
        e->shape[d] = shape[d];
        numel *= (size_t)shape[d];
    }
    e->data = data;
    e->nbytes = numel * dsm_dtype_size(dtype);
    w->n++;
    return DSM_OK;
}

static int wentry_cmp(const void *a, const void *b) {
    return strcmp(((const struct st_wentry *)a)->name, ((const struct st_wentry *)b)->name);
}

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int st_writer_write(struct st_writer *w, const char *path, struct dsm_err *err) {
    qsort(w->e, (size_t)w->n, sizeof *w->e, wentry_cmp);
    for (int i = 1; i < w->n; i++)
        if (!strcmp(w->e[i].name, w->e[i - 1].name)) return dsm_errf(err, DSM_EINVAL, "tensor '%s' added twice", w->e[i].name);
    json_t *root = json_object();
    json_object_set_new(root, "__metadata__", json_pack("{s:s}", "format", "pt"));
    size_t off = 0;
    for (int i = 0; i < w->n; i++) {
        struct st_wentry *e = &w->e[i];
        json_t *shape = json_array();
        for (int d = 0; d < e->ndim; d++) json_array_append_new(shape, json_integer(e->shape[d]));
        const char *dn = e->dtype == DSM_DT_F32 ? "F32" : e->dtype == DSM_DT_BF16 ? "BF16" : "F16";
        json_object_set_new(root, e->name, json_pack("{s:s, s:o, s:[I,I]}", "dtype", dn, "shape", shape, "data_offsets",
                                                     (json_int_t)off, (json_int_t)(off + e->nbytes)));
        off += e->nbytes;
    }
    char *hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!hdr) return dsm_errf(err, DSM_ENOMEM, "cannot serialise safetensors header");
    size_t hl = strlen(hdr), padded = (hl + 7) & ~(size_t)7;
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp) {
        free(hdr);
        return dsm_errf(err, DSM_EINVAL, "%s: path too long", path);
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        free(hdr);
        return dsm_errf(err, DSM_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    uint8_t lenbuf[8];
    for (int i = 0; i < 8; i++) lenbuf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int bad = write_all(fd, lenbuf, 8) || write_all(fd, hdr, hl) || write_all(fd, "        ", padded - hl);
    free(hdr);
    for (int i = 0; i < w->n && !bad; i++) bad = write_all(fd, w->e[i].data, w->e[i].nbytes);
    if (!bad) bad = fsync(fd);
    int e = errno;
    if (close(fd) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad || rename(tmp, path) != 0) {
        if (!bad) e = errno;
        unlink(tmp);
        return dsm_errf(err, DSM_EIO, "%s: write failed: %s", path, strerror(e));
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return DSM_OK;
}
