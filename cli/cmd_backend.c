/* cmd_backend.c - `dsm backend [--device NAME]`: print the backend that would be used. */
#include <stdio.h>

#include "cli/cli.h"
#include "kernels/backend.h"

int cmd_backend(int argc, char **argv) {
    const char *device = "auto";
    int threads = 0;
    const struct cli_opt opts[] = {
        {"--device", CLI_STR, &device, "NAME", "auto (default), cpu, cuda or ref"},
        {"--threads", CLI_INT, &threads, "N", "CPU threads (default: all cores)"},
    };
    const struct cli_cmd_spec spec = {"backend", "[--device NAME]",
                                      "Open the compute backend and describe it.", opts, 2, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    struct dsm_err err = {0};
    struct dsm_backend *be = NULL;
    if (dsm_backend_open(device, threads, &be, &err) != DSM_OK) return cli_fail("backend", &err);
    printf("%s: %s\n", be->name, be->desc);
    dsm_backend_destroy(be);
    return 0;
}
