/*
 * usher-worker --pool NAME: runs one pool of workers (see supervisor.c).
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "cli.h"
#include "config.h"
#include "supervisor.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: usher-worker [--config FILE] --pool NAME\n"
                 "Runs the worker pool NAME for the queues that the configuration assigns it.\n");
}

int main(int argc, char **argv)
{
    const char *config = usher_config_default_path();
    const char *pool = NULL;

    if (usher_cli_version("usher-worker", argc, argv))
        return 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[++i];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            config = argv[i] + 9;
        else if (strcmp(argv[i], "--pool") == 0 && i + 1 < argc)
            pool = argv[++i];
        else {
            fprintf(stderr, "usher-worker: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (pool == NULL) {
        usage(stderr);
        return 2;
    }
    (void)usher_alloc_keep_heap(); /* a speed-up only: the children inherit it */
    return usher_supervisor_run(config, pool);
}
