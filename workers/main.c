/*
 * usher-worker: runs one pool of workers. The supervisor, its pre-forked
 * children and autoscaling come in their own issue; for now the binary
 * checks its configuration and says what it will do.
 */
#include "cli.h"

int main(int argc, char **argv)
{
    return usher_cli_stub("usher-worker",
                          "usage: usher-worker [--config FILE] --pool NAME\n"
                          "Runs the worker pool NAME for the queues conf/usher.conf assigns.\n"
                          "(Not built yet: this version only checks the configuration.)\n",
                          argc, argv);
}
