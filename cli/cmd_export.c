/* cmd_export.c - `dsm export` (work in progress; see docs/store.md). */
#include <stdio.h>

#include "cli/cli.h"

int cmd_export(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "dsm export: not implemented yet\n");
    return 3;
}
