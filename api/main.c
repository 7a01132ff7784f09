/*
 * usher-api: the HTTP front end. Its server, routes and auth come in their
 * own issue; for now the binary checks its configuration and says what it
 * will do.
 */
#include "cli.h"

int main(int argc, char **argv)
{
    return usher_cli_stub("usher-api",
                          "usage: usher-api [--config FILE]\n"
                          "Serves the HTTP API described in schemas/openapi.yaml.\n"
                          "(Not built yet: this version only checks the configuration.)\n",
                          argc, argv);
}
