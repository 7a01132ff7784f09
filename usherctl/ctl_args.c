/*
 * Argument handling shared by usherctl's commands: a small option table
 * instead of getopt, since options and positionals mix freely
 * ("jobs show 12 --json") and every value is range-checked.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ctl.h"

static const ctl_option *find_option(const ctl_option *opts, const char *name)
{
    for (; opts != NULL && opts->name != NULL; opts++) {
        if (strcmp(opts->name, name) == 0)
            return opts;
    }
    return NULL;
}

int ctl_parse(int argc, char **argv, const ctl_option *opts, const char **positional, int max)
{
    int n = 0;

    for (int i = 0; i < argc; i++) {
        const ctl_option *o;

        if (strncmp(argv[i], "--", 2) != 0 || argv[i][2] == '\0') {
            if (n == max) {
                fprintf(stderr, "usherctl: unexpected argument '%s'\n", argv[i]);
                return -1;
            }
            positional[n++] = argv[i];
            continue;
        }
        o = find_option(opts, argv[i]);
        if (o == NULL) {
            fprintf(stderr, "usherctl: unknown option '%s'\n", argv[i]);
            return -1;
        }
        if (o->flag != NULL) {
            *o->flag = true;
        } else if (i + 1 == argc) {
            fprintf(stderr, "usherctl: %s needs a value\n", argv[i]);
            return -1;
        } else {
            *o->value = argv[++i];
        }
    }
    return n;
}

int ctl_int(const char *what, const char *text, long long min, long long max, long long *out)
{
    char *end;

    errno = 0;
    *out = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || *out < min || *out > max) {
        fprintf(stderr, "usherctl: %s must be a whole number from %lld to %lld, not '%s'\n", what,
                min, max, text);
        return -1;
    }
    return 0;
}

int ctl_fail(usher_store *st, usher_err err, const char *what)
{
    const char *detail = usher_store_errstr(st);

    if (detail[0] != '\0')
        fprintf(stderr, "usherctl: %s: %s: %s\n", what, usher_strerror(err), detail);
    else
        fprintf(stderr, "usherctl: %s: %s\n", what, usher_strerror(err));
    return 1;
}

void ctl_print_json(json_t *value)
{
    char *text = json_dumps(value, JSON_INDENT(2) | JSON_ENCODE_ANY);

    if (text != NULL) {
        puts(text);
        free(text);
    }
    json_decref(value);
}

/* 0 means "no bound" in a filter, so the epoch itself (and before) is refused. */
int ctl_filter_times(const char *since, const char *until, usher_job_filter *f)
{
    if (since != NULL && (usher_cli_parse_time(since, &f->since_us) != 0 || f->since_us <= 0)) {
        fprintf(stderr, "usherctl: --since: cannot read time '%s' (after 1970)\n", since);
        return -1;
    }
    if (until != NULL && (usher_cli_parse_time(until, &f->until_us) != 0 || f->until_us <= 0)) {
        fprintf(stderr, "usherctl: --until: cannot read time '%s' (after 1970)\n", until);
        return -1;
    }
    return 0;
}
