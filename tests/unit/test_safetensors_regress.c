/* test_safetensors_regress.c - replay fuzzer finds and seeds through st_parse.
 *
 * Every file in tests/fuzz/regressions/ (inputs that once crashed, leaked or hung the parser, see
 * scripts/fuzz.sh) must now parse cleanly: DSM_OK, or an error status with a non-empty message and
 * no st_file. Every seed in tests/fuzz/corpus/ is a valid file and must parse, with every
 * tensor's bytes inside the input. Runs under ASan/UBSan in the test build, so an out-of-bounds
 * read or a leak fails the test even when the status looks right.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/safetensors.h"
#include "common/util.h"
#include "test.h"

#define MAX_FILES 4096

static int name_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Parse one file; must_succeed for seeds. Returns 1 when the file was read. */
static int replay(const char *dir, const char *name, int must_succeed) {
    char path[1200];
    struct dsm_err err = {0};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *buf = NULL;
    size_t len = 0;
    int rc = dsm_file_read(path, &buf, &len, &err);
    CHECK_OK(rc, &err);
    if (rc) return 0;
    /* an exact-size copy, so ASan catches any read past the end */
    uint8_t *img = malloc(len ? len : 1);
    if (!img) {
        free(buf);
        CHECK_MSG(0, "out of memory");
        return 0;
    }
    memcpy(img, buf, len);
    free(buf);

    struct st_file *f = NULL;
    rc = st_parse(img, len, name, &f, &err);
    if (rc == DSM_OK) {
        CHECK(f != NULL);
        int n = st_count(f);
        for (int i = 0; i < n; i++) {
            const struct st_tensor *t = st_at(f, i);
            CHECK(t != NULL && t->name != NULL);
            if (!t || t->nbytes == 0) continue;
            const uint8_t *p = t->data;
            CHECK_MSG(p >= img && p + t->nbytes <= img + len, "%s: tensor %s outside the input",
                      name, t->name);
            CHECK(st_find(f, t->name) == t);
        }
        st_close(f);
    } else {
        CHECK_MSG(f == NULL, "%s: error %d but a file was returned", name, rc);
        CHECK_MSG(err.msg[0] != '\0', "%s: error %d without a message", name, rc);
    }
    CHECK_MSG(!must_succeed || rc == DSM_OK, "%s: valid seed refused: %s", name, err.msg);
    printf("%-48s %s%s\n", name, rc == DSM_OK ? "ok" : "error: ", rc == DSM_OK ? "" : err.msg);
    free(img);
    return 1;
}

/* Replay every regular file in dir (skipping README* and dotfiles); returns how many. */
static int replay_dir(const char *dir, int must_succeed) {
    char *names[MAX_FILES];
    int n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        CHECK_MSG(0, "cannot open %s", dir);
        return 0;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < MAX_FILES) {
        if (de->d_name[0] == '.' || !strncmp(de->d_name, "README", 6)) continue;
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], name_cmp);
    int done = 0;
    for (int i = 0; i < n; i++) {
        done += replay(dir, names[i], must_succeed);
        free(names[i]);
    }
    return done;
}

int main(void) {
    int seeds = replay_dir(DSM_SOURCE_DIR "/tests/fuzz/corpus", 1);
    CHECK_MSG(seeds > 0, "no seed files in tests/fuzz/corpus");
    int regs = replay_dir(DSM_SOURCE_DIR "/tests/fuzz/regressions", 0);
    printf("replayed %d seeds and %d regression inputs\n", seeds, regs);
    return test_main_end();
}
