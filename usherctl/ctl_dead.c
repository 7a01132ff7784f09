/*
 * usherctl dead: the dead-letter queue. "list" shows dead jobs matching a
 * filter; "retry" and "discard" act on one ID, or on every match of the
 * filter when --all is given (a filter alone is refused, so a typo cannot
 * discard the whole queue).
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

typedef struct dead_args {
    usher_job_filter f;
    const char *since, *until;
    bool all, as_json;
} dead_args;

static int dead_act(usher_store *st, const char *action, const char *id_text, dead_args *a)
{
    bool retry = strcmp(action, "retry") == 0;
    long long id;
    size_t count = 1;
    usher_err err;

    if ((id_text == NULL) == !a->all) {
        fprintf(stderr, "usherctl: dead %s needs an ID or --all (with optional filters)\n", action);
        return 2;
    }
    if (id_text != NULL) {
        if (ctl_int("ID", id_text, 1, INT64_MAX, &id) != 0)
            return 2;
        err = retry ? usher_dead_retry_id(st, id) : usher_dead_discard_id(st, id);
    } else {
        err = retry ? usher_dead_retry(st, &a->f, &count) : usher_dead_discard(st, &a->f, &count);
    }
    if (err != USHER_OK)
        return ctl_fail(st, err, retry ? "dead retry" : "dead discard");
    printf("%s %zu\n", retry ? "retried" : "discarded", count);
    return 0;
}

int ctl_dead(usher_store *st, int argc, char **argv)
{
    dead_args a = { .f = { .state = "dead" } };
    const ctl_option opts[] = {
        { "--queue", &a.f.queue, NULL },      { "--kind", &a.f.kind, NULL },
        { "--error", &a.f.error_text, NULL }, { "--since", &a.since, NULL },
        { "--until", &a.until, NULL },        { "--all", NULL, &a.all },
        { "--json", NULL, &a.as_json },       { NULL, NULL, NULL },
    };
    const char *pos[2] = { NULL, NULL };
    int n = ctl_parse(argc, argv, opts, pos, 2);
    json_t *jobs;
    usher_err err;

    if (n < 1 || ctl_filter_times(a.since, a.until, &a.f) != 0) {
        fprintf(stderr, "usage: usherctl dead list|retry|discard [ID | --all] [filters]\n");
        return 2;
    }
    if (strcmp(pos[0], "retry") == 0 || strcmp(pos[0], "discard") == 0)
        return dead_act(st, pos[0], pos[1], &a);
    if (strcmp(pos[0], "list") != 0 || n != 1) {
        fprintf(stderr, "usage: usherctl dead list|retry|discard [ID | --all] [filters]\n");
        return 2;
    }
    err = usher_admin_list(st, &a.f, &jobs);
    if (err != USHER_OK)
        return ctl_fail(st, err, "dead list");
    ctl_print_jobs(jobs, a.as_json);
    return 0;
}
