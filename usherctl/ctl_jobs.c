/*
 * usherctl enqueue and jobs (list, show, cancel). Lists print a table for
 * people and, with --json, the engine's JSON for scripts. A payload is
 * checked against its kind's schema before it is enqueued.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "ctl.h"
#include "enqueue.h"
#include "job_schemas.h"

/*
 * Refuses a payload its kind's schema (schemas/jobs/) refuses, before
 * anything is written: the worker would only send it to the dead-letter
 * queue after one attempt. Text that is not JSON at all is left to
 * usher_enqueue, which says so.
 */
static int payload_fits(const char *kind, const char *text)
{
    json_t *payload = json_loads(text, JSON_DECODE_ANY, NULL);
    char why[1024] = "";
    usher_err err;

    if (payload == NULL)
        return 0;
    err = usher_job_schema_check(kind, payload, why, sizeof(why));
    json_decref(payload);
    if (err == USHER_ERR_PAYLOAD) {
        fprintf(stderr, "usherctl: enqueue: the payload does not fit %s's schema: %s\n", kind, why);
        return -1;
    }
    if (err != USHER_OK) {
        fprintf(stderr, "usherctl: enqueue: cannot load the payload schemas: %s\n", why);
        return -1;
    }
    return 0;
}

typedef struct enqueue_args {
    const char *priority, *delay, *run_at, *unique_key, *max_attempts, *timeout_ms;
} enqueue_args;

static int read_enqueue_options(const enqueue_args *a, usher_enqueue_opts *o)
{
    long long v;

    if (a->delay != NULL && a->run_at != NULL) {
        fprintf(stderr, "usherctl: --delay and --run-at exclude each other\n");
        return -1;
    }
    if (a->priority != NULL) {
        if (ctl_int("--priority", a->priority, 0, 2, &v) != 0)
            return -1;
        o->priority_set = true;
        o->priority = (int)v;
    }
    if (a->delay != NULL) {
        if (ctl_int("--delay", a->delay, 0, 10LL * 365 * 86400, &v) != 0)
            return -1;
        o->delay_ms = v * 1000;
    }
    if (a->run_at != NULL && usher_cli_parse_time(a->run_at, &o->run_at_us) != 0) {
        fprintf(stderr, "usherctl: --run-at: cannot read time '%s'\n", a->run_at);
        return -1;
    }
    if (a->max_attempts != NULL) {
        if (ctl_int("--max-attempts", a->max_attempts, 1, 1000, &v) != 0)
            return -1;
        o->max_attempts = (int)v;
    }
    if (a->timeout_ms != NULL) {
        if (ctl_int("--timeout-ms", a->timeout_ms, 1, 86400000, &v) != 0)
            return -1;
        o->timeout_ms = (int)v;
    }
    o->unique_key = a->unique_key;
    return 0;
}

int ctl_enqueue(usher_store *st, int argc, char **argv)
{
    enqueue_args a = { 0 };
    const ctl_option opts[] = {
        { "--priority", &a.priority, NULL },
        { "--delay", &a.delay, NULL },
        { "--run-at", &a.run_at, NULL },
        { "--unique-key", &a.unique_key, NULL },
        { "--max-attempts", &a.max_attempts, NULL },
        { "--timeout-ms", &a.timeout_ms, NULL },
        { NULL, NULL, NULL },
    };
    const char *pos[3];
    usher_enqueue_opts o = { 0 };
    usher_enqueued result;
    usher_err err;

    if (ctl_parse(argc, argv, opts, pos, 3) != 3) {
        fprintf(stderr, "usage: usherctl enqueue QUEUE KIND JSON [options]\n");
        return 2;
    }
    if (read_enqueue_options(&a, &o) != 0)
        return 2;
    o.queue = pos[0];
    o.kind = pos[1];
    o.payload = pos[2];
    if (payload_fits(o.kind, o.payload) != 0)
        return 1;
    err = usher_enqueue(st, &o, &result);
    if (err != USHER_OK)
        return ctl_fail(st, err, "enqueue");
    printf("%" PRId64 "\n", result.id);
    fflush(stdout);
    if (result.existed)
        fprintf(stderr, "usherctl: a live job already holds that unique key; its id is above\n");
    return 0;
}

static const char *text_or_dash(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return s != NULL ? s : "-";
}

static void print_jobs_table(json_t *jobs)
{
    size_t i;
    json_t *job;

    printf("%-10s %-14s %-20s %-3s %-10s %-9s %-26s %s\n", "ID", "QUEUE", "KIND", "PRI", "STATE",
           "ATTEMPT", "RUN_AT", "LAST_ERROR");
    json_array_foreach(jobs, i, job)
    {
        printf("%-10" JSON_INTEGER_FORMAT " %-14s %-20s %-3" JSON_INTEGER_FORMAT
               " %-10s %4" JSON_INTEGER_FORMAT "/%-4" JSON_INTEGER_FORMAT " %-26.26s %.60s\n",
               json_integer_value(json_object_get(job, "id")), text_or_dash(job, "queue"),
               text_or_dash(job, "kind"), json_integer_value(json_object_get(job, "priority")),
               text_or_dash(job, "state"), json_integer_value(json_object_get(job, "attempt")),
               json_integer_value(json_object_get(job, "max_attempts")),
               text_or_dash(job, "run_at"), text_or_dash(job, "last_error"));
    }
}

void ctl_print_jobs(json_t *jobs, bool as_json)
{
    if (as_json) {
        ctl_print_json(jobs);
        return;
    }
    print_jobs_table(jobs);
    json_decref(jobs);
}

static int jobs_list(usher_store *st, int argc, char **argv)
{
    const char *limit = NULL, *before = NULL;
    bool as_json = false;
    usher_job_filter f = { 0 };
    const ctl_option opts[] = {
        { "--state", &f.state, NULL }, { "--queue", &f.queue, NULL }, { "--kind", &f.kind, NULL },
        { "--limit", &limit, NULL },   { "--before", &before, NULL }, { "--json", NULL, &as_json },
        { NULL, NULL, NULL },
    };
    long long v;
    json_t *jobs;
    usher_err err;

    if (ctl_parse(argc, argv, opts, NULL, 0) != 0)
        return 2;
    if (limit != NULL && ctl_int("--limit", limit, 1, 1000, &v) != 0)
        return 2;
    f.limit = limit != NULL ? (size_t)v : 0;
    if (before != NULL && ctl_int("--before", before, 1, INT64_MAX, &v) != 0)
        return 2;
    f.before_id = before != NULL ? v : 0;
    err = usher_admin_list(st, &f, &jobs);
    if (err != USHER_OK)
        return ctl_fail(st, err, "jobs list");
    ctl_print_jobs(jobs, as_json);
    return 0;
}

static int jobs_by_id(usher_store *st, int argc, char **argv, bool cancel)
{
    const char *pos[1];
    long long id;
    json_t *job;
    usher_err err;

    if (ctl_parse(argc, argv, NULL, pos, 1) != 1 || ctl_int("ID", pos[0], 1, INT64_MAX, &id) != 0)
        return 2;
    if (cancel) {
        err = usher_admin_cancel(st, id);
        if (err != USHER_OK)
            return ctl_fail(st, err, "jobs cancel");
        printf("cancelled %lld\n", id);
        return 0;
    }
    err = usher_admin_show(st, id, &job);
    if (err != USHER_OK)
        return ctl_fail(st, err, "jobs show");
    ctl_print_json(job);
    return 0;
}

int ctl_jobs(usher_store *st, int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "list") == 0)
        return jobs_list(st, argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "show") == 0)
        return jobs_by_id(st, argc - 1, argv + 1, false);
    if (argc >= 1 && strcmp(argv[0], "cancel") == 0)
        return jobs_by_id(st, argc - 1, argv + 1, true);
    fprintf(stderr, "usage: usherctl jobs list|show ID|cancel ID\n");
    return 2;
}
