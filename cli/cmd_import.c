/* cmd_import.c - `dsm import` (work in progress; see docs/store.md). */
#include <stdio.h>

#include "cli/cli.h"

int cmd_import(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "dsm import: not implemented yet\n");
    return 3;
}
