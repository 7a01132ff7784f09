/*
 * What every Usher binary does first: find --config FILE among its
 * arguments (or take the default path), load and check the configuration,
 * and set the log level. A refused configuration is reported as
 * "PROGRAM: FILE:LINE: reason" on stderr.
 */
#ifndef USHER_CLI_H
#define USHER_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/*
 * Removes "--config FILE" (or "--config=FILE") from argv, loads the
 * configuration into *cfg, and returns 0; on failure prints why and
 * returns 1 (the exit status to use).
 */
int usher_cli_load_config(const char *program, int *argc, char **argv, usher_config *cfg);

/* With --version as the first argument: prints "PROGRAM VERSION" to stdout and returns true. */
bool usher_cli_version(const char *program, int argc, char **argv);

/*
 * main() of a binary that is not built yet: --help prints usage to stdout
 * and exits 0; otherwise it checks the configuration, prints usage to
 * stderr, and returns 2 (or 1 for a refused configuration).
 */
int usher_cli_stub(const char *program, const char *usage, int argc, char **argv);

/* Parses "2026-11-27T18:00:00Z", "...+02:00", "2026-11-27" or "@UNIXSECONDS" to µs since the epoch.
 */
int usher_cli_parse_time(const char *text, int64_t *us);

#endif
