/*
 * usherctl queues, pause, resume, migrate and maintain: the commands that
 * act on queues and the schema rather than on single jobs.
 */
#include <stdio.h>
#include <time.h>

#include "ctl.h"
#include "maint.h"
#include "migrate.h"
#include "queues.h"
#include "retention.h"
#include "seed.h"

static void print_queues_table(json_t *queues)
{
    size_t i;
    json_t *q;

    printf("%-14s %-10s %-6s %9s %9s %8s %7s %9s %10s %9s %9s\n", "QUEUE", "POOL", "PAUSED",
           "AVAILABLE", "SCHEDULED", "RUNNING", "DEAD", "CANCELLED", "OLDEST_S", "DONE/MIN",
           "FAIL/MIN");
    json_array_foreach(queues, i, q)
    {
        json_t *age = json_object_get(q, "oldest_available_age_s");

        printf("%-14s %-10s %-6s %9" JSON_INTEGER_FORMAT " %9" JSON_INTEGER_FORMAT
               " %8" JSON_INTEGER_FORMAT " %7" JSON_INTEGER_FORMAT " %9" JSON_INTEGER_FORMAT
               " %10.1f %9" JSON_INTEGER_FORMAT " %9" JSON_INTEGER_FORMAT "\n",
               json_string_value(json_object_get(q, "name")),
               json_string_value(json_object_get(q, "pool")),
               json_is_true(json_object_get(q, "paused")) ? "yes" : "no",
               json_integer_value(json_object_get(q, "available")),
               json_integer_value(json_object_get(q, "scheduled")),
               json_integer_value(json_object_get(q, "running")),
               json_integer_value(json_object_get(q, "dead")),
               json_integer_value(json_object_get(q, "cancelled")),
               json_is_null(age) ? 0.0 : json_number_value(age),
               json_integer_value(json_object_get(q, "completed_last_minute")),
               json_integer_value(json_object_get(q, "failed_last_minute")));
    }
}

int ctl_queues(usher_store *st, int argc, char **argv)
{
    bool as_json = false;
    const ctl_option opts[] = { { "--json", NULL, &as_json }, { NULL, NULL, NULL } };
    json_t *queues;
    usher_err err;

    if (ctl_parse(argc, argv, opts, NULL, 0) != 0)
        return 2;
    err = usher_queues_stats(st, &queues);
    if (err != USHER_OK)
        return ctl_fail(st, err, "queues");
    if (as_json) {
        ctl_print_json(queues);
        return 0;
    }
    print_queues_table(queues);
    json_decref(queues);
    return 0;
}

static int set_paused(usher_store *st, int argc, char **argv, bool pause)
{
    const char *pos[1];
    usher_err err;

    if (ctl_parse(argc, argv, NULL, pos, 1) != 1) {
        fprintf(stderr, "usage: usherctl %s QUEUE\n", pause ? "pause" : "resume");
        return 2;
    }
    err = pause ? usher_queues_pause(st, pos[0]) : usher_queues_resume(st, pos[0]);
    if (err != USHER_OK)
        return ctl_fail(st, err, pause ? "pause" : "resume");
    printf("%s %s\n", pause ? "paused" : "resumed", pos[0]);
    return 0;
}

int ctl_pause(usher_store *st, int argc, char **argv)
{
    return set_paused(st, argc, argv, true);
}

int ctl_resume(usher_store *st, int argc, char **argv)
{
    return set_paused(st, argc, argv, false);
}

int ctl_migrate(usher_store *st, int argc, char **argv)
{
    const char *dir = usher_migrate_default_dir();
    const ctl_option opts[] = { { "--dir", &dir, NULL }, { NULL, NULL, NULL } };
    usher_migrate_counts counts;
    usher_err err;

    if (ctl_parse(argc, argv, opts, NULL, 0) != 0)
        return 2;
    err = usher_migrate(st, dir, &counts);
    if (err == USHER_OK)
        err = usher_queues_sync(st);
    if (err != USHER_OK)
        return ctl_fail(st, err, "migrate");
    if (counts.trusted > 0)
        printf("recorded the SHA-256 of %zu migration(s) applied before checksums were kept,"
               " trusting the files as they are now\n",
               counts.trusted);
    printf("applied %zu migration(s); %zu queue(s) declared\n", counts.applied,
           usher_store_config(st)->nqueues);
    return 0;
}

int ctl_maintain(usher_store *st, int argc, char **argv)
{
    bool leader;
    size_t rescued = 0, pruned = 0;
    usher_retention_report kept;
    usher_err err;

    if (ctl_parse(argc, argv, NULL, NULL, 0) != 0)
        return 2;
    err = usher_maint_lead(st, &leader);
    if (err == USHER_OK && !leader) {
        fprintf(stderr, "usherctl: maintain: another process is the maintenance leader\n");
        return 1;
    }
    if (err == USHER_OK)
        err = usher_maint_rescue(st, 0, &rescued); /* the operator asked: at once */
    if (err == USHER_OK)
        err = usher_maint_prune(st, &pruned);
    if (err == USHER_OK)
        err = usher_retention_run(usher_store_config(st), st, (int64_t)time(NULL), &kept);
    if (err != USHER_OK)
        return ctl_fail(st, err, "maintain");
    printf("rescued %zu, pruned %zu\n", rescued, pruned);
    printf("retention: partitions created %zu, dropped %zu; deleted scans %zu, notifications %zu,"
           " documents %zu (contents %zu), effects %zu\n",
           kept.partitions_created, kept.partitions_dropped, kept.scans, kept.notifications,
           kept.documents, kept.blobs, kept.effects);
    return 0;
}

int ctl_seed(usher_store *st, int argc, char **argv)
{
    bool demo = false;
    const char *count = "300";
    const ctl_option opts[] = { { "--demo", NULL, &demo },
                                { "--registrations", &count, NULL },
                                { NULL, NULL, NULL } };
    usher_seed_result r;
    long long n;
    usher_err err;

    if (ctl_parse(argc, argv, opts, NULL, 0) != 0 || !demo) {
        fprintf(stderr, "usage: usherctl seed --demo [--registrations N]\n");
        return 2;
    }
    if (ctl_int("--registrations", count, 1, 100000, &n) != 0)
        return 2;
    err = usher_seed_demo(st, (int)n, &r);
    if (err != USHER_OK)
        return ctl_fail(st, err, "seed");
    printf("organizer %lld, event %lld: %lld registrations, %lld sessions\n",
           (long long)r.organizer_id, (long long)r.event_id, (long long)r.registrations,
           (long long)r.sessions);
    return 0;
}
