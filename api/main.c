/*
 * usher-api: the HTTP front end. Its server, routes and auth come in
 * their own issue; for now the binary
 * checks its configuration and says what it will do.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: usher-api [--config FILE]\n"
                 "Serves the HTTP API described in schemas/openapi.yaml.\n"
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
    status = usher_cli_load_config("usher-api", &argc, argv, &cfg);
    if (status == 0) {
        usage(stderr);
        status = 2;
    }
    usher_config_free(&cfg);
    return status;
}
