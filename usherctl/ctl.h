/*
 * usherctl's commands and the helpers they share. Each command gets the
 * arguments after its name and an open store; it prints its result to
 * stdout, its errors to stderr, and returns the exit status.
 */
#ifndef USHERCTL_CTL_H
#define USHERCTL_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "admin.h"
#include "store.h"

typedef int (*ctl_command_fn)(usher_store *st, int argc, char **argv);
/* A command that opens what it needs itself (or nothing: it execs a daemon). */
typedef int (*ctl_config_fn)(const usher_config *cfg, int argc, char **argv);

/* An option of a command: "--name VALUE", or a flag when value is NULL. */
typedef struct ctl_option {
    const char *name;
    const char **value; /* receives the argument; NULL for a flag */
    bool *flag;         /* set to true for a flag */
} ctl_option;

/*
 * Splits argv into options (from opts) and positional arguments (into
 * positional, at most max). Returns the number of positionals, or -1 after
 * printing what is wrong.
 */
int ctl_parse(int argc, char **argv, const ctl_option *opts, const char **positional, int max);

/* Whole numbers from text, with range checks; print the problem and return -1. */
int ctl_int(const char *what, const char *text, long long min, long long max, long long *out);

/* Prints a store failure as "usherctl: reason: detail" and returns 1. */
int ctl_fail(usher_store *st, usher_err err, const char *what);

/* Prints JSON to stdout, indented, and frees it. */
void ctl_print_json(json_t *value);

/* Prints a job list as a table, or as JSON when as_json. Takes ownership of jobs. */
void ctl_print_jobs(json_t *jobs, bool as_json);

/* Reads --queue/--kind/--error/--since/--until into f; -1 on a bad time. */
int ctl_filter_times(const char *since, const char *until, usher_job_filter *f);

int ctl_enqueue(usher_store *st, int argc, char **argv);
int ctl_jobs(usher_store *st, int argc, char **argv);
int ctl_dead(usher_store *st, int argc, char **argv);
int ctl_queues(usher_store *st, int argc, char **argv);
int ctl_pause(usher_store *st, int argc, char **argv);
int ctl_resume(usher_store *st, int argc, char **argv);
int ctl_migrate(usher_store *st, int argc, char **argv);
int ctl_maintain(usher_store *st, int argc, char **argv);
int ctl_backup(usher_store *st, int argc, char **argv);
int ctl_seed(usher_store *st, int argc, char **argv);
int ctl_organizer(usher_store *st, int argc, char **argv);
int ctl_token(usher_store *st, int argc, char **argv);
int ctl_webhook(usher_store *st, int argc, char **argv);
int ctl_search(const usher_config *cfg, int argc, char **argv);

#endif
