/* fuzz_safetensors.c - libFuzzer target for the safetensors header parser (st_parse).
 *
 * Every input is parsed as a whole safetensors image. On success every tensor's data is read end
 * to end (so AddressSanitizer sees any span that leaves the buffer) and the accessors are
 * exercised; on failure the error message must be set. Built and run by scripts/fuzz.sh, never by
 * CMake (it needs clang's -fsanitize=fuzzer).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct st_file *f = NULL;
    struct dsm_err err = {0};
    int rc = st_parse(data, size, "fuzz", &f, &err);
    if (rc != DSM_OK) {
        if (f != NULL || err.msg[0] == '\0') abort(); /* failure must leave no file and a message */
        return 0;
    }
    volatile unsigned sum = 0;
    int n = st_count(f);
    for (int i = 0; i < n; i++) {
        const struct st_tensor *t = st_at(f, i);
        if (t == NULL || t->name == NULL) abort();
        if (t->ndim < 0 || t->ndim > ST_MAX_DIMS) abort();
        size_t elems = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0) abort();
            elems *= (size_t)t->shape[d];
        }
        if (t->dtype_name == NULL) abort();
        if (t->dtype_ok && elems * dsm_dtype_size(t->dtype) != t->nbytes) abort();
        const uint8_t *p = t->data;
        if (t->nbytes > 0) {
            if (p < data || p + t->nbytes > data + size) abort();
            for (size_t b = 0; b < t->nbytes; b++) sum += p[b];
        }
        if (st_find(f, t->name) == NULL) abort();
    }
    (void)sum;
    st_close(f);
    return 0;
}
