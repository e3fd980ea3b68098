/* test_safetensors_bad.c - hand-made malformed safetensors inputs, and the valid edge cases.
 *
 * Each bad image is built in memory as an exact-size heap buffer (so ASan sees any read past its
 * end) and given to st_parse; the parser must return an error status, no st_file, and a message
 * that names the source and the tensor or the problem (the substrings listed per case). Valid edge
 * cases (zero-size tensors, scalars, unpadded headers, skipped dtypes) must parse. Then the same
 * through files: st_open on missing, truncated and non-regular files; st_model_open on broken
 * shard indexes; and a writer round trip.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/safetensors.h"
#include "common/util.h"
#include "test.h"

#define WHERE "bad.safetensors"

/* An image: u64 LE hlen_field, the header text, `pad` spaces, data_len bytes 0..255 repeating.
 * Returns an exact-size malloc'ed buffer; *len its size. */
static uint8_t *img_raw(uint64_t hlen_field, const char *header, size_t hdr_bytes, size_t pad,
                        size_t data_len, size_t *len) {
    *len = 8 + hdr_bytes + pad + data_len;
    uint8_t *b = malloc(*len ? *len : 1);
    DSM_ASSERT(b != NULL);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(hlen_field >> (8 * i));
    memcpy(b + 8, header, hdr_bytes);
    memset(b + 8 + hdr_bytes, ' ', pad);
    for (size_t i = 0; i < data_len; i++) b[8 + hdr_bytes + pad + i] = (uint8_t)i;
    return b;
}

/* A well-formed image around header (padded to 8 bytes) with data_len bytes of data. */
static uint8_t *img_make(const char *header, size_t data_len, size_t *len) {
    size_t h = strlen(header), pad = (8 - h % 8) % 8;
    return img_raw(h + pad, header, h, pad, data_len, len);
}

/* st_parse must fail on buf with a message holding where and each non-NULL substring. */
static void expect_bad(const char *label, uint8_t *buf, size_t len, const char *s1,
                       const char *s2) {
    struct st_file *f = NULL;
    struct dsm_err err = {0};
    int rc = st_parse(buf, len, WHERE, &f, &err);
    CHECK_MSG(rc != DSM_OK, "%s: accepted", label);
    CHECK_MSG(f == NULL, "%s: error but a file was returned", label);
    if (rc == DSM_OK) st_close(f);
    CHECK_MSG(rc == DSM_OK || rc == DSM_EINVAL || rc == DSM_EUNSUPPORTED,
              "%s: status %d, want EINVAL or EUNSUPPORTED", label, rc);
    CHECK_MSG(strstr(err.msg, WHERE) != NULL, "%s: message does not name the source: %s", label,
              err.msg);
    CHECK_MSG(!s1 || strstr(err.msg, s1), "%s: message lacks '%s': %s", label, s1, err.msg);
    CHECK_MSG(!s2 || strstr(err.msg, s2), "%s: message lacks '%s': %s", label, s2, err.msg);
    printf("%-34s -> %s\n", label, err.msg);
    free(buf);
}

static void bad_header(const char *label, const char *header, size_t data_len, const char *s1,
                       const char *s2) {
    size_t len;
    uint8_t *b = img_make(header, data_len, &len);
    expect_bad(label, b, len, s1, s2);
}

/* st_parse must succeed on header + data; returns the file (caller closes) or NULL. */
static struct st_file *expect_ok(const char *label, const uint8_t *buf, size_t len) {
    struct st_file *f = NULL;
    struct dsm_err err = {0};
    int rc = st_parse(buf, len, WHERE, &f, &err);
    CHECK_MSG(rc == DSM_OK, "%s: refused: %s", label, err.msg);
    return rc == DSM_OK ? f : NULL;
}

static void test_bad_images(void) {
    size_t len;
    uint8_t *b;

    /* the 8-byte length prefix */
    b = img_raw(0, "", 0, 0, 0, &len);
    expect_bad("empty input", b, 0, "truncated", NULL);
    b = img_raw(0, "", 0, 0, 0, &len);
    expect_bad("5 bytes", b, 5, "truncated", NULL);
    b = img_raw(1000, "{}", 2, 6, 0, &len);
    expect_bad("header length beyond file", b, len, "header length", NULL);
    b = img_raw(UINT64_MAX, "{}", 2, 6, 0, &len);
    expect_bad("header length 2^64-1", b, len, "header length", NULL);
    b = img_raw((uint64_t)1 << 63, "{}", 2, 6, 0, &len);
    expect_bad("header length 2^63", b, len, "header length", NULL);
    b = img_raw(0, "", 0, 0, 16, &len);
    expect_bad("header length 0", b, len, NULL, NULL);
    b = img_raw(8, "{}\0\0    ", 8, 0, 0, &len);
    expect_bad("NUL bytes in header", b, len, NULL, NULL);

    /* the JSON itself */
    bad_header("not JSON", "this is not json", 0, "JSON", NULL);
    bad_header("only spaces", "        ", 0, "JSON", NULL);
    bad_header("JSON array header", "[1,2,3]", 0, "object", NULL);
    bad_header("JSON string header", "\"F32\"", 0, "JSON", NULL);
    bad_header("trailing garbage", "{} x", 0, "JSON", NULL);
    bad_header("unterminated object", "{\"w\":{\"dtype\":\"F32\"", 0, "JSON", NULL);
    bad_header("NaN dim", "{\"w.nan\":{\"dtype\":\"F32\",\"shape\":[NaN],\"data_offsets\":[0,4]}}",
               4, NULL, NULL);
    bad_header("dim beyond int64",
               "{\"w.big\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],"
               "\"data_offsets\":[0,4]}}",
               4, NULL, NULL);
    bad_header("NUL escape in name",
               "{\"w\\u0000x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, NULL,
               NULL);
    bad_header("duplicate names",
               "{\"dup.w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"dup.w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8, "duplicate", NULL);
    bad_header("__metadata__ not an object", "{\"__metadata__\":5}", 0, "__metadata__", NULL);

    /* one tensor entry at a time: the message must name the tensor */
    bad_header("entry not an object", "{\"layers.0.odd\":3}", 0, "layers.0.odd", NULL);
    bad_header("missing dtype", "{\"t.nodtype\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "t.nodtype", "dtype");
    bad_header("dtype not a string",
               "{\"t.dt5\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "t.dt5",
               "dtype");
    bad_header("unknown dtype",
               "{\"t.q4\":{\"dtype\":\"Q4_K\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "t.q4",
               "Q4_K");
    bad_header("missing shape", "{\"t.noshape\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
               "t.noshape", "shape");
    bad_header("shape not a list",
               "{\"t.shp\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}", 16, "t.shp",
               "shape");
    bad_header("negative dim",
               "{\"t.neg\":{\"dtype\":\"F32\",\"shape\":[-1,4],\"data_offsets\":[0,16]}}", 16,
               "t.neg", "shape");
    bad_header("fractional dim",
               "{\"t.frac\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8,
               "t.frac", "shape");
    bad_header("huge real dim",
               "{\"t.real\":{\"dtype\":\"F32\",\"shape\":[1e30],\"data_offsets\":[0,8]}}", 8,
               "t.real", "shape");
    bad_header("dim as string",
               "{\"t.str\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8,
               "t.str", "shape");
    bad_header("dims overflow 64 bits",
               "{\"t.ovf\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
               "\"data_offsets\":[0,8]}}",
               8, "t.ovf", NULL);
    bad_header("dims product wraps to 0 bytes",
               "{\"t.wrap\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],"
               "\"data_offsets\":[0,0]}}",
               0, "t.wrap", NULL);
    bad_header("9 dims",
               "{\"t.rank9\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
               "\"data_offsets\":[0,4]}}",
               4, "t.rank9", NULL);
    bad_header("missing data_offsets", "{\"t.nooff\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
               "t.nooff", "data_offsets");
    bad_header("3 offsets",
               "{\"t.off3\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
               "t.off3", "data_offsets");
    bad_header("offsets as strings",
               "{\"t.offs\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",\"4\"]}}", 4,
               "t.offs", "data_offsets");
    bad_header("offsets outside data",
               "{\"t.out\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "t.out",
               NULL);
    bad_header("offsets far outside data",
               "{\"t.far\":{\"dtype\":\"F32\",\"shape\":[1],"
               "\"data_offsets\":[9223372036854775800,9223372036854775804]}}",
               4, "t.far", NULL);
    bad_header("offsets reversed",
               "{\"t.rev\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "t.rev",
               NULL);
    bad_header("negative offset",
               "{\"t.negoff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
               "t.negoff", NULL);
    bad_header("size does not match shape",
               "{\"t.size\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 12,
               "t.size", NULL);
    bad_header("size does not match dtype",
               "{\"t.bf\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, "t.bf",
               NULL);
    bad_header("overlapping tensors",
               "{\"t.first\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"t.second\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               12, "t.first", "t.second");
    bad_header("identical spans",
               "{\"t.a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"t.b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}",
               8, "overlap", NULL);
    bad_header("bad entry after good ones",
               "{\"ok.a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"ok.b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
               "\"late.bad\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,16]}}",
               16, "late.bad", NULL);

    /* deep nesting must be refused by the JSON parser's depth limit, not by the stack */
    {
        size_t depth = 100000;
        char *deep = malloc(depth * 2 + 16);
        DSM_ASSERT(deep != NULL);
        size_t p = 0;
        deep[p++] = '{';
        memcpy(deep + p, "\"x\":", 4);
        p += 4;
        for (size_t i = 0; i < depth; i++) deep[p++] = '[';
        for (size_t i = 0; i < depth; i++) deep[p++] = ']';
        deep[p++] = '}';
        deep[p] = '\0';
        bad_header("100000-deep nesting", deep, 0, NULL, NULL);
        free(deep);
    }
}

static void test_good_images(void) {
    size_t len;
    uint8_t *b;
    struct st_file *f;

    /* three dtypes, metadata, a scalar and a zero-size tensor */
    const char *hdr =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
        "\"b.weight\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]},"
        "\"c.bias\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[32,36]},"
        "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[36,40]},"
        "\"z\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[40,40]}}";
    b = img_make(hdr, 40, &len);
    size_t data0 = len - 40;
    f = expect_ok("three dtypes", b, len);
    if (f) {
        CHECK(st_count(f) == 5);
        const struct st_tensor *t = st_find(f, "a.weight");
        CHECK(t && t->dtype_ok && t->dtype == DSM_DT_F32 && t->ndim == 2 && t->shape[0] == 2 &&
              t->shape[1] == 3 && t->nbytes == 24 && t->data == b + data0);
        t = st_find(f, "b.weight");
        CHECK(t && t->dtype_ok && t->dtype == DSM_DT_F16 && t->nbytes == 8 &&
              t->data == b + data0 + 24);
        t = st_find(f, "c.bias");
        CHECK(t && t->dtype_ok && t->dtype == DSM_DT_BF16 && t->ndim == 2 && t->nbytes == 4);
        t = st_find(f, "s");
        CHECK(t && t->ndim == 0 && t->nbytes == 4);
        t = st_find(f, "z");
        CHECK(t && t->ndim == 2 && t->shape[0] == 0 && t->nbytes == 0);
        CHECK(st_find(f, "__metadata__") == NULL);
        CHECK(st_find(f, "missing") == NULL);
        CHECK(st_at(f, 5) == NULL && st_at(f, -1) == NULL);
        st_close(f);
    }
    free(b);

    /* a dtype we do not compute with is listed, flagged, not refused */
    b = img_make("{\"pos\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16, &len);
    f = expect_ok("I64 tensor listed", b, len);
    if (f) {
        const struct st_tensor *t = st_find(f, "pos");
        CHECK(t && !t->dtype_ok && t->dtype_name && !strcmp(t->dtype_name, "I64"));
        st_close(f);
    }
    free(b);

    /* empty header, unpadded header, null metadata */
    b = img_make("{}", 0, &len);
    f = expect_ok("empty header", b, len);
    if (f) CHECK(st_count(f) == 0);
    st_close(f);
    free(b);
    b = img_raw(3, "{ }", 3, 0, 0, &len);
    f = expect_ok("unpadded header", b, len);
    st_close(f);
    free(b);

    /* a zero-size tensor starting where another starts does not overlap it, in either order */
    b = img_make("{\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                 "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                 4, &len);
    f = expect_ok("zero-size before its neighbour", b, len);
    st_close(f);
    free(b);
    b = img_make("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}",
                 4, &len);
    f = expect_ok("zero-size after its neighbour", b, len);
    st_close(f);
    free(b);
}

/* Write len bytes to dir/name; returns the path in out. */
static void put_file(char *out, size_t cap, const char *dir, const char *name, const void *data,
                     size_t len) {
    snprintf(out, cap, "%s/%s", dir, name);
    FILE *fp = fopen(out, "wb");
    DSM_ASSERT(fp != NULL);
    if (len) DSM_ASSERT(fwrite(data, 1, len, fp) == len);
    fclose(fp);
}

static void expect_open_bad(const char *label, const char *path, const char *s1) {
    struct st_file *f = NULL;
    struct dsm_err err = {0};
    int rc = st_open(path, &f, &err);
    CHECK_MSG(rc != DSM_OK && f == NULL, "%s: accepted", label);
    if (rc == DSM_OK) st_close(f);
    CHECK_MSG(strstr(err.msg, path) != NULL, "%s: message does not name %s: %s", label, path,
              err.msg);
    CHECK_MSG(!s1 || strstr(err.msg, s1), "%s: message lacks '%s': %s", label, s1, err.msg);
    printf("%-34s -> %s\n", label, err.msg);
}

static void expect_model_bad(const char *label, const char *dir, const char *s1) {
    struct st_model *m = NULL;
    struct dsm_err err = {0};
    int rc = st_model_open(dir, &m, &err);
    CHECK_MSG(rc != DSM_OK && m == NULL, "%s: accepted", label);
    if (rc == DSM_OK) st_model_close(m);
    CHECK_MSG(err.msg[0] != '\0', "%s: no message", label);
    CHECK_MSG(!s1 || strstr(err.msg, s1), "%s: message lacks '%s': %s", label, s1, err.msg);
    printf("%-34s -> %s\n", label, err.msg);
}

static void test_files(const char *tmp) {
    char path[1024], p2[1100];
    size_t len;
    const char *hdr = "{\"w.one\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
    uint8_t *good = img_make(hdr, 16, &len);

    /* st_open */
    snprintf(path, sizeof path, "%s/does-not-exist.safetensors", tmp);
    {
        struct st_file *f = NULL;
        struct dsm_err err = {0};
        CHECK(st_open(path, &f, &err) == DSM_ENOTFOUND && f == NULL);
        CHECK(strstr(err.msg, path) != NULL);
    }
    put_file(path, sizeof path, tmp, "empty.safetensors", good, 0);
    expect_open_bad("empty file", path, NULL);
    put_file(path, sizeof path, tmp, "trunc_header.safetensors", good, 20);
    expect_open_bad("file cut inside the header", path, "header length");
    put_file(path, sizeof path, tmp, "trunc_data.safetensors", good, len - 3);
    expect_open_bad("file cut inside the data", path, "w.one");
    expect_open_bad("a directory", tmp, NULL);
    put_file(path, sizeof path, tmp, "good.safetensors", good, len);
    {
        struct st_file *f = NULL;
        struct dsm_err err = {0};
        CHECK_OK(st_open(path, &f, &err), &err);
        if (f) {
            const struct st_tensor *t = st_find(f, "w.one");
            CHECK(t && t->nbytes == 16 && !memcmp(t->data, good + len - 16, 16));
        }
        st_close(f);
    }

    /* st_model_open: single file, shards, broken indexes */
    char mdir[1024];
    snprintf(mdir, sizeof mdir, "%s/model", tmp);
    CHECK(mkdir(mdir, 0755) == 0);
    expect_model_bad("model dir without weights", mdir, mdir);
    const char *h1 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    const char *h2 = "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    uint8_t *s1 = img_make(h1, 4, &len);
    put_file(p2, sizeof p2, mdir, "model-00001-of-00002.safetensors", s1, len);
    free(s1);
    uint8_t *s2 = img_make(h2, 4, &len);
    put_file(p2, sizeof p2, mdir, "model-00002-of-00002.safetensors", s2, len);
    free(s2);
    const char *idx_ok = "{\"metadata\":{\"total_size\":8},\"weight_map\":{"
                         "\"a\":\"model-00001-of-00002.safetensors\","
                         "\"b\":\"model-00002-of-00002.safetensors\"}}";
    put_file(p2, sizeof p2, mdir, "model.safetensors.index.json", idx_ok, strlen(idx_ok));
    {
        struct st_model *m = NULL;
        struct dsm_err err = {0};
        CHECK_OK(st_model_open(mdir, &m, &err), &err);
        if (m) {
            CHECK(st_model_count(m) == 2);
            CHECK(st_model_find(m, "a") && st_model_find(m, "b") && !st_model_find(m, "c"));
            CHECK(st_model_at(m, 0) && st_model_at(m, 1) && !st_model_at(m, 2));
        }
        st_model_close(m);
    }
    const char *idx_missing = "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
                              "\"b\":\"model-00003-of-00003.safetensors\"}}";
    put_file(p2, sizeof p2, mdir, "model.safetensors.index.json", idx_missing,
             strlen(idx_missing));
    expect_model_bad("index names a missing shard", mdir, "model-00003-of-00003.safetensors");
    const char *idx_wrong = "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
                            "\"ghost.weight\":\"model-00002-of-00002.safetensors\"}}";
    put_file(p2, sizeof p2, mdir, "model.safetensors.index.json", idx_wrong, strlen(idx_wrong));
    expect_model_bad("index names an absent tensor", mdir, "ghost.weight");
    const char *idx_escape = "{\"weight_map\":{\"a\":\"../escape.safetensors\"}}";
    put_file(p2, sizeof p2, mdir, "model.safetensors.index.json", idx_escape, strlen(idx_escape));
    expect_model_bad("index shard path escapes", mdir, "../escape.safetensors");
    const char *idx_nomap = "{\"metadata\":{}}";
    put_file(p2, sizeof p2, mdir, "model.safetensors.index.json", idx_nomap, strlen(idx_nomap));
    expect_model_bad("index without weight_map", mdir, "weight_map");
    const char *idx_json = "{\"weight_map\":";
    put_file(p2, sizeof p2, mdir, "model.safetensors.index.json", idx_json, strlen(idx_json));
    expect_model_bad("index not JSON", mdir, "model.safetensors.index.json");
    /* the same tensor in two shards is ambiguous */
    const char *h12 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    uint8_t *s3 = img_make(h12, 8, &len);
    put_file(p2, sizeof p2, mdir, "model-00002-of-00002.safetensors", s3, len);
    free(s3);
    put_file(p2, sizeof p2, mdir, "model.safetensors.index.json", idx_ok, strlen(idx_ok));
    expect_model_bad("tensor in two shards", mdir, "'a'");

    const char *names[] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                           "model.safetensors.index.json"};
    for (size_t i = 0; i < DSM_ARRAY_LEN(names); i++) {
        snprintf(p2, sizeof p2, "%s/%s", mdir, names[i]);
        unlink(p2);
    }
    rmdir(mdir);
    const char *files[] = {"empty", "trunc_header", "trunc_data", "good"};
    for (size_t i = 0; i < DSM_ARRAY_LEN(files); i++) {
        snprintf(p2, sizeof p2, "%s/%s.safetensors", tmp, files[i]);
        unlink(p2);
    }
    free(good);
}

/* The writer's output parses back to the same tensors, header padded to 8 bytes. */
static void test_writer(const char *tmp) {
    struct dsm_err err = {0};
    struct st_writer *w = NULL;
    float a[6] = {1, -2, 3.5f, 0, 1e-3f, 7};
    uint16_t h[3] = {0x3c00, 0xc000, 0x0001};
    int64_t sa[2] = {2, 3}, sh[1] = {3};
    char path[1024];
    snprintf(path, sizeof path, "%s/written.safetensors", tmp);
    CHECK_OK(st_writer_create(&w, &err), &err);
    if (!w) return;
    CHECK_OK(st_writer_add(w, "z.a", DSM_DT_F32, 2, sa, a, &err), &err);
    CHECK_OK(st_writer_add(w, "b.h", DSM_DT_BF16, 1, sh, h, &err), &err);
    CHECK_OK(st_writer_write(w, path, &err), &err);
    st_writer_destroy(w);
    struct st_file *f = NULL;
    CHECK_OK(st_open(path, &f, &err), &err);
    if (f) {
        const struct st_tensor *t = st_find(f, "z.a");
        CHECK(t && t->dtype == DSM_DT_F32 && t->ndim == 2 && t->shape[1] == 3 &&
              !memcmp(t->data, a, sizeof a));
        t = st_find(f, "b.h");
        CHECK(t && t->dtype == DSM_DT_BF16 && t->nbytes == 6 && !memcmp(t->data, h, sizeof h));
        st_close(f);
    }
    char *buf = NULL;
    size_t len = 0;
    CHECK_OK(dsm_file_read(path, &buf, &len, &err), &err);
    if (buf && len >= 8) {
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--) hl = (hl << 8) | (uint8_t)buf[i];
        CHECK(hl % 8 == 0 && 8 + hl + sizeof a + sizeof h == len);
    }
    free(buf);
    unlink(path);
}

int main(void) {
    test_bad_images();
    test_good_images();
    char tmp[] = "/tmp/dsm_st_bad_XXXXXX";
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "FAIL: mkdtemp\n");
        return 1;
    }
    test_files(tmp);
    test_writer(tmp);
    rmdir(tmp);
    return test_main_end();
}
