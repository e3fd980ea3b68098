/* safetensors.h - the safetensors format: reader (mmap, single file or sharded) and writer.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON header
 * {"name": {"dtype": "F32|F16|BF16|…", "shape": [..], "data_offsets": [begin, end]}, …,
 *  "__metadata__": {string: string}}, then the data region; offsets are relative to the data
 * region. The parser validates everything before any tensor is used: header length within the
 * file, JSON well-formed with no duplicate names, every entry with a known dtype, a shape of
 * non-negative dims whose byte size matches its offsets, offsets inside the data region, no
 * overlaps. Tensors of dtypes we do not compute with (I64, F64, ...) are listed with dtype_ok = 0;
 * the model loader refuses them by name if it needs one. Tensor data may be unaligned: read it
 * with memcpy or convert it into aligned memory.
 */
#ifndef DSM_SAFETENSORS_H
#define DSM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "kernels/backend.h"

#define ST_MAX_DIMS 8

struct st_tensor {
    char *name;              /* owned by the st_file */
    const char *dtype_name;  /* the header's dtype string ("F32", "I64", ...), static storage */
    int dtype_ok;            /* 1 when dtype is F32, F16 or BF16 (the dtypes we compute with) */
    enum dsm_dtype dtype;    /* valid when dtype_ok */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;        /* into the mapping (or buffer); valid while the st_file lives */
    size_t nbytes;
};

struct st_file;   /* one parsed file (or buffer) */
struct st_model;  /* a set of files: one model.safetensors or shards through an index */

/* Parse a safetensors image held in memory (buf, len; borrowed, must outlive the result).
 * `where` names the source in error messages. This is the fuzzing entry point. */
int st_parse(const uint8_t *buf, size_t len, const char *where, struct st_file **out,
             struct dsm_err *err);

/* mmap and parse the file at path. */
int st_open(const char *path, struct st_file **out, struct dsm_err *err);
void st_close(struct st_file *f);

int st_count(const struct st_file *f);
const struct st_tensor *st_at(const struct st_file *f, int i);
/* Tensor by name, or NULL. */
const struct st_tensor *st_find(const struct st_file *f, const char *name);

/* Open the weights of a model directory: model.safetensors, or model.safetensors.index.json and
 * the shards its weight_map names (each opened once). */
int st_model_open(const char *dir, struct st_model **out, struct dsm_err *err);
void st_model_close(struct st_model *m);
/* Tensor by name across shards, or NULL. */
const struct st_tensor *st_model_find(const struct st_model *m, const char *name);
/* Total tensors across shards (for "unexpected tensor" checks). */
int st_model_count(const struct st_model *m);
const struct st_tensor *st_model_at(const struct st_model *m, int i);

/* Writer: collect tensors (names and data borrowed until st_writer_write returns), then write the
 * file atomically (temporary, fsync, rename). Tensors are written in name order, header padded
 * with spaces to a multiple of 8 bytes. */
struct st_writer;
int st_writer_create(struct st_writer **out, struct dsm_err *err);
int st_writer_add(struct st_writer *w, const char *name, enum dsm_dtype dtype, int ndim,
                  const int64_t *shape, const void *data, struct dsm_err *err);
int st_writer_write(struct st_writer *w, const char *path, struct dsm_err *err);
void st_writer_destroy(struct st_writer *w);

#endif
