/*
 * Queue administration and the per-queue statistics. The statistics are
 * one statement: counts by state from the hot table (small, since
 * completed jobs leave it) and the per-minute counters of the last hour,
 * aggregated to JSON in the database so the caller parses one value.
 */
#include "queues.h"

#include <pthread.h>
#include <string.h>

#define KNOWN_MAX 256

static char known[KNOWN_MAX][USHER_NAME_MAX];
static size_t nknown;
static pthread_mutex_t known_lock = PTHREAD_MUTEX_INITIALIZER;

static bool known_has(const char *name)
{
    bool found = false;

    pthread_mutex_lock(&known_lock);
    for (size_t i = 0; i < nknown && !found; i++)
        found = strcmp(known[i], name) == 0;
    pthread_mutex_unlock(&known_lock);
    return found;
}

static void known_add(const char *name)
{
    pthread_mutex_lock(&known_lock);
    if (nknown < KNOWN_MAX && strlen(name) < USHER_NAME_MAX)
        strcpy(known[nknown++], name);
    pthread_mutex_unlock(&known_lock);
}

usher_err usher_queues_check(usher_store *st, const char *name)
{
    const char *params[] = { name };
    PGresult *res;
    usher_err err;
    bool found;

    if (!usher_config_valid_name(name))
        return usher_store_fail(st, USHER_ERR_UNKNOWN_QUEUE, "invalid queue name '%s'", name);
    if (known_has(name))
        return USHER_OK;
    err = usher_store_exec(st, "SELECT 1 FROM usher_queues WHERE name = $1", 1, params, &res);
    if (err != USHER_OK)
        return err;
    found = PQntuples(res) == 1;
    PQclear(res);
    if (!found)
        return usher_store_fail(st, USHER_ERR_UNKNOWN_QUEUE, "unknown queue '%s'", name);
    known_add(name);
    return USHER_OK;
}

usher_err usher_queues_sync(usher_store *st)
{
    const usher_config *cfg = usher_store_config(st);
    PGresult *res;

    for (size_t i = 0; i < cfg->nqueues; i++) {
        const char *params[] = { cfg->queues[i].name, cfg->queues[i].pool };
        usher_err err = usher_store_exec(st,
                                         "INSERT INTO usher_queues (name, pool) VALUES ($1, $2) "
                                         "ON CONFLICT (name) DO UPDATE SET pool = EXCLUDED.pool",
                                         2, params, &res);
        if (err != USHER_OK)
            return err;
        PQclear(res);
    }
    return USHER_OK;
}

static USHER_MUSTCHECK usher_err set_paused(usher_store *st, const char *name, bool paused)
{
    const char *params[] = { name, paused ? "t" : "f" };
    PGresult *res;
    usher_err err;
    int updated;

    err = usher_store_exec(st,
                           "WITH q AS (UPDATE usher_queues SET paused = $2::boolean,"
                           " paused_at = CASE WHEN $2::boolean THEN now() END"
                           " WHERE name = $1 RETURNING name)"
                           " SELECT name, CASE WHEN NOT $2::boolean"
                           "  THEN usher_wake(ARRAY[name]) END FROM q",
                           2, params, &res);
    if (err != USHER_OK)
        return err;
    updated = PQntuples(res);
    PQclear(res);
    if (updated == 0)
        return usher_store_fail(st, USHER_ERR_UNKNOWN_QUEUE, "unknown queue '%s'", name);
    return USHER_OK;
}

usher_err usher_queues_pause(usher_store *st, const char *name)
{
    return set_paused(st, name, true);
}

usher_err usher_queues_resume(usher_store *st, const char *name)
{
    return set_paused(st, name, false);
}

static const char stats_sql[] =
    "WITH counts AS ("
    "  SELECT queue,"
    "    count(*) FILTER (WHERE state = 'available' AND run_at <= now()) AS available,"
    "    count(*) FILTER (WHERE state = 'available' AND run_at > now()) AS scheduled,"
    "    count(*) FILTER (WHERE state = 'running') AS running,"
    "    count(*) FILTER (WHERE state = 'dead') AS dead,"
    "    count(*) FILTER (WHERE state = 'cancelled') AS cancelled,"
    "    min(run_at) FILTER (WHERE state = 'available' AND run_at <= now()) AS oldest"
    "  FROM usher_jobs GROUP BY queue),"
    " rates AS ("
    "  SELECT queue,"
    "    sum(completed) FILTER (WHERE minute >= date_trunc('minute', now()) - interval '1 minute')"
    "      AS completed_last_minute,"
    "    sum(failed) FILTER (WHERE minute >= date_trunc('minute', now()) - interval '1 minute')"
    "      AS failed_last_minute,"
    "    sum(completed) AS completed_last_hour, sum(failed) AS failed_last_hour"
    "  FROM usher_queue_stats WHERE minute >= now() - interval '1 hour' GROUP BY queue)"
    " SELECT coalesce(json_agg(json_build_object("
    "   'name', q.name, 'pool', q.pool, 'paused', q.paused,"
    "   'available', coalesce(c.available, 0), 'scheduled', coalesce(c.scheduled, 0),"
    "   'running', coalesce(c.running, 0), 'dead', coalesce(c.dead, 0),"
    "   'cancelled', coalesce(c.cancelled, 0),"
    "   'oldest_available_age_s', round(extract(epoch FROM now() - c.oldest)::numeric, 3),"
    "   'completed_last_minute', coalesce(r.completed_last_minute, 0),"
    "   'failed_last_minute', coalesce(r.failed_last_minute, 0),"
    "   'completed_last_hour', coalesce(r.completed_last_hour, 0),"
    "   'failed_last_hour', coalesce(r.failed_last_hour, 0)) ORDER BY q.name), '[]')"
    " FROM usher_queues q LEFT JOIN counts c ON c.queue = q.name"
    " LEFT JOIN rates r ON r.queue = q.name";

usher_err usher_queues_stats(usher_store *st, json_t **out)
{
    return usher_store_query_json(st, stats_sql, 0, NULL, out);
}
