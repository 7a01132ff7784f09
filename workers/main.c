/*
 * usher-worker: runs one pool of workers. The supervisor, its pre-forked
 * children and autoscaling come in their own issue; for now the binary
 * checks its configuration and says what it will do.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: usher-worker [--config FILE] --pool NAME\n"
                 "Runs the worker pool NAME for the queues conf/usher.conf assigns to it.\n"
                 "(Not built yet: this version only checks the configuration.)\n");
}

int main(int argc, char **argv)
{
    usher_config cfg = { 0 };
    int status;

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    status = usher_cli_load_config("usher-worker", &argc, argv, &cfg);
    if (status == 0) {
        usage(stderr);
        status = 2;
    }
    usher_config_free(&cfg);
    return status;
}
