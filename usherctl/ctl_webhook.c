/*
 * usherctl webhook: the webhook delivery log. "deliveries" prints the
 * latest attempts, one JSON object per line, newest first; "replay ID"
 * enqueues a new delivery of the same event to the same endpoint and
 * prints the new job's id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "ctl.h"
#include "webhook_replay.h"

#define USAGE "usage: usherctl webhook deliveries [--endpoint ID] [--limit N] | replay ID\n"

static int list(usher_store *st, const char *endpoint_text, const char *limit_text)
{
    long long endpoint = 0, limit = 50;
    json_t *rows, *row;
    size_t i;
    usher_err err;

    if ((endpoint_text != NULL && ctl_int("--endpoint", endpoint_text, 1, INT64_MAX, &endpoint)) ||
        (limit_text != NULL && ctl_int("--limit", limit_text, 1, 10000, &limit)))
        return 2;
    err = usher_webhook_deliveries(st, endpoint, (int)limit, &rows);
    if (err != USHER_OK)
        return ctl_fail(st, err, "webhook deliveries");
    json_array_foreach(rows, i, row)
    {
        char *line = usher_need(json_dumps(row, JSON_COMPACT | JSON_PRESERVE_ORDER));

        printf("%s\n", line);
        free(line);
    }
    json_decref(rows);
    return 0;
}

static int replay(usher_store *st, const char *id_text)
{
    long long id;
    int64_t job;
    usher_err err;

    if (ctl_int("ID", id_text, 1, INT64_MAX, &id) != 0)
        return 2;
    err = usher_webhook_replay(st, id, &job);
    if (err != USHER_OK)
        return ctl_fail(st, err, "webhook replay");
    printf("%lld\n", (long long)job);
    return 0;
}

int ctl_webhook(usher_store *st, int argc, char **argv)
{
    const char *endpoint = NULL, *limit = NULL;
    const ctl_option opts[] = {
        { "--endpoint", &endpoint, NULL },
        { "--limit", &limit, NULL },
        { NULL, NULL, NULL },
    };
    const char *pos[2] = { NULL, NULL };
    int n = ctl_parse(argc, argv, opts, pos, 2);

    if (n == 1 && strcmp(pos[0], "deliveries") == 0)
        return list(st, endpoint, limit);
    if (n == 2 && strcmp(pos[0], "replay") == 0 && endpoint == NULL && limit == NULL)
        return replay(st, pos[1]);
    fprintf(stderr, USAGE);
    return 2;
}
