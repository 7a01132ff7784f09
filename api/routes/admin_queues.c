/*
 * The dashboard's queues and pools (admin only): per-queue counts, age,
 * per-minute throughput over the last hour and error rate; pause and
 * resume; every supervisor's heartbeat; the record of bulk actions.
 */
#include <stdlib.h>
#include <string.h>

#include "../blocking.h"
#include "alloc.h"
#include "queues.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

/* Completed and failed per minute over the last hour, per queue: [[epoch, done, failed], ...]. */
static const char series_sql[] =
    "SELECT coalesce(json_object_agg(queue, points), '{}') FROM ("
    " SELECT queue, json_agg(json_build_array(extract(epoch FROM minute)::bigint,"
    "  completed, failed) ORDER BY minute) AS points FROM ("
    "  SELECT queue, minute, sum(completed) AS completed, sum(failed) AS failed"
    "  FROM usher_queue_stats"
    "  WHERE minute >= date_trunc('minute', now()) - interval '59 minutes'"
    "  GROUP BY queue, minute) m GROUP BY queue) q";

static USHER_MUSTCHECK usher_err queues_with_series(usher_store *st, void *arg, json_t **out)
{
    json_t *queues = NULL, *series = NULL, *q;
    usher_err err;
    size_t i;

    (void)arg;
    err = usher_queues_stats(st, &queues);
    if (err == USHER_OK)
        err = usher_store_query_json(st, series_sql, 0, NULL, &series);
    if (err != USHER_OK) {
        json_decref(queues);
        return err;
    }
    json_array_foreach(queues, i, q)
    {
        const char *name = json_string_value(json_object_get(q, "name"));
        json_t *points = json_object_get(series, name);
        json_int_t done = json_integer_value(json_object_get(q, "completed_last_hour"));
        json_int_t failed = json_integer_value(json_object_get(q, "failed_last_hour"));

        json_object_set_new(q, "series", points != NULL ? json_incref(points) : json_array());
        json_object_set_new(q, "error_rate",
                            done + failed > 0 ? json_real((double)failed / (double)(done + failed))
                                              : json_real(0));
    }
    json_decref(series);
    *out = json_pack("{s:o}", "queues", queues);
    return *out != NULL ? USHER_OK : USHER_ERR_NOMEM;
}

void route_admin_queues(api_req *r)
{
    api_blocking_read(r, queues_with_series, api_blocking_reply, NULL);
}

static USHER_MUSTCHECK usher_err pause_queue(usher_store *st, void *arg, json_t **out)
{
    const char *name = arg;
    usher_err err = usher_queues_pause(st, name);

    *out = err == USHER_OK ? json_pack("{s:s,s:b}", "name", name, "paused", 1) : NULL;
    return err;
}

static USHER_MUSTCHECK usher_err resume_queue(usher_store *st, void *arg, json_t **out)
{
    const char *name = arg;
    usher_err err = usher_queues_resume(st, name);

    *out = err == USHER_OK ? json_pack("{s:s,s:b}", "name", name, "paused", 0) : NULL;
    return err;
}

static void on_queue(api_req *r, api_blocking_fn fn)
{
    char *name = usher_strdup(r->name);

    api_blocking(r, fn, api_blocking_reply, name);
}

void route_admin_queue_pause(api_req *r)
{
    on_queue(r, pause_queue);
}

void route_admin_queue_resume(api_req *r)
{
    on_queue(r, resume_queue);
}

static void rows(PGresult *res, const char *errmsg, void *arg)
{
    api_add_header(arg, "Cache-Control", "no-store");
    api_reply_row(arg, res, errmsg, 200, "row");
}

void route_admin_pools(api_req *r)
{
    /* A supervisor heartbeats every few seconds; silent for 15 s, it is stale.
     * A second old is as good: a replica may answer. */
    api_query_read(r,
                   "SELECT json_build_object('pools', coalesce(json_agg(json_build_object("
                   " 'worker_id', worker_id, 'pool', pool, 'host', host, 'pid', pid,"
                   " 'current', current_size, 'desired', desired_size, 'granted', granted_size,"
                   " 'min', min_size, 'max', max_size, 'busy', busy, 'depth', depth,"
                   " 'leader', leader, 'downstream', downstream, 'started_at', started_at,"
                   " 'heartbeat_at', heartbeat_at,"
                   " 'stale', heartbeat_at < now() - interval '15 seconds')"
                   " ORDER BY pool, host, pid), '[]'::json))::text FROM usher_pools",
                   0, NULL, rows);
}

/* Older records kept a null filter field as given; it never filtered, so it is not shown. */
void route_admin_actions(api_req *r)
{
    api_query(r,
              "SELECT json_build_object('actions', coalesce(json_agg(json_build_object("
              " 'id', id, 'at', at, 'actor', actor, 'action', action,"
              " 'filter', jsonb_strip_nulls(filter),"
              " 'dry_run', dry_run, 'count', count) ORDER BY id DESC), '[]'::json))::text"
              " FROM (SELECT * FROM usher_admin_actions ORDER BY id DESC LIMIT 200) a",
              0, NULL, rows);
}
