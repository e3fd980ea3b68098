/* cmd_logits.c - `dsm logits`: one forward pass; logits to a file or the last position's top-10. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/model.h"
#include "common/util.h"

static int write_logits(const char *path, const float *logits, size_t n, struct dsm_err *err) {
    /* float32 little-endian, row-major [n_ids x vocab]; this machine is little-endian */
    return dsm_file_write_atomic(path, logits, n * sizeof(float), err);
}

static void print_top10(const float *row, int V, int position) {
    double mx = -INFINITY, sum = 0.0;
    for (int i = 0; i < V; i++) mx = row[i] > mx ? row[i] : mx;
    for (int i = 0; i < V; i++) sum += exp(row[i] - mx);
    double lse = mx + log(sum);
    int top[10], k = V < 10 ? V : 10;
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < V; i++) {
            int taken = 0;
            for (int q = 0; q < j; q++) taken |= top[q] == i;
            if (!taken && (best < 0 || row[i] > row[best])) best = i;
        }
        top[j] = best;
    }
    printf("{\"position\": %d, \"top\": [", position);
    for (int j = 0; j < k; j++)
        printf("%s{\"id\": %d, \"logit\": %.6g, \"logprob\": %.6g}", j ? ", " : "", top[j], row[top[j]], row[top[j]] - lse);
    printf("]}\n");
}

int cmd_logits(int argc, char **argv) {
    const char *dir = NULL, *ids_s = NULL, *out = NULL, *device = "auto", *wdtype = "f32";
    int threads = 0;
    const struct cli_opt opts[] = {
        {"--model", CLI_STR, &dir, "DIR", "model directory (required)"},
        {"--ids", CLI_STR, &ids_s, "1,2,3", "token ids, comma-separated (required)"},
        {"--out", CLI_STR, &out, "FILE", "write float32 LE logits [n_ids x vocab] here"},
        {"--device", CLI_STR, &device, "NAME", "auto (default), cpu, cuda or ref"},
        {"--threads", CLI_INT, &threads, "N", "CPU threads (default: all cores)"},
        {"--weights", CLI_STR, &wdtype, "f32|bf16", "dtype weights are kept in while computing (default f32)"},
    };
    const struct cli_cmd_spec spec = {"logits", "--model DIR --ids 5,17,99 [--out FILE]",
                                      "Run one forward pass. With --out, write the logits of every position as\n"
                                      "float32 little-endian, row-major [n_ids x vocab_size]; without, print the\n"
                                      "last position's ten most likely tokens as JSON.",
                                      opts, DSM_ARRAY_LEN(opts), 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (!dir) return cli_usage_error(spec.name, "--model DIR is required");
    if (!ids_s) return cli_usage_error(spec.name, "--ids is required");
    struct dsm_model_opts mo = {0};
    if (!strcmp(wdtype, "f32")) mo.wdtype = DSM_DT_F32;
    else if (!strcmp(wdtype, "bf16")) mo.wdtype = DSM_DT_BF16;
    else return cli_usage_error(spec.name, "--weights must be f32 or bf16, not '%s'", wdtype);

    struct dsm_err err = {0};
    int *ids = NULL, n = 0;
    struct dsm_backend *be = NULL;
    struct dsm_model *m = NULL;
    float *logits = NULL;
    if (cli_parse_ids(ids_s, &ids, &n, &err)) return cli_fail(spec.name, &err);
    mo.max_seq = n;
    rc = DSM_OK;
    if ((rc = dsm_backend_open(device, threads, &be, &err)) || (rc = dsm_model_load(dir, be, &mo, &m, &err))) goto done;
    int V = dsm_model_config(m)->vocab_size;
    logits = dsm_calloc((size_t)n * V, sizeof(float), &err);
    if (!logits) {
        rc = DSM_ENOMEM;
        goto done;
    }
    if ((rc = dsm_model_logits(m, (const int32_t *)ids, n, logits, &err))) goto done;
    if (out) rc = write_logits(out, logits, (size_t)n * V, &err);
    else print_top10(logits + (size_t)(n - 1) * V, V, n - 1);
done:
    free(logits);
    free(ids);
    dsm_model_destroy(m);
    dsm_backend_destroy(be);
    return rc ? cli_fail(spec.name, &err) : 0;
}
