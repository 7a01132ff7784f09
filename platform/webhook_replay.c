/*
 * Listing and replaying webhook deliveries (webhook_replay.h). The replay
 * reads the logged envelope ({"id", "event", "data"}) and the endpoint's
 * state in one statement, then enqueues {"endpoint_id", "event", "data"},
 * the payload notify.webhook takes. Reading and enqueueing are two
 * statements: an endpoint disabled in between is caught by the handler,
 * which refuses to post to a disabled endpoint.
 */
#include "webhook_replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "config.h"
#include "enqueue.h"
#include "inttext.h"

#define REPLAY_KIND "notify.webhook"

static const char delivery_sql[] =
    "SELECT d.endpoint_id, d.event, d.payload -> 'data', e.enabled, e.disabled_reason"
    " FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id"
    " WHERE d.id = $1";

static const char list_sql[] =
    "SELECT coalesce(json_agg(json_build_object("
    "  'id', id, 'endpoint_id', endpoint_id, 'job_id', job_id, 'attempt', attempt,"
    "  'event', event, 'status_code', status_code, 'latency_ms', latency_ms, 'error', error,"
    "  'created_at', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))"
    "  ORDER BY created_at DESC, id DESC), '[]')"
    " FROM (SELECT * FROM webhook_deliveries WHERE $1::bigint = 0 OR endpoint_id = $1"
    "       ORDER BY created_at DESC, id DESC LIMIT $2) latest";

/* The payload of the replay from the delivery's row; NULL (st failed) when it cannot be built. */
static char *replay_payload(usher_store *st, PGresult *res)
{
    json_error_t jerr;
    json_t *data = PQgetisnull(res, 0, 2)
                       ? json_null()
                       : json_loads(PQgetvalue(res, 0, 2), JSON_DECODE_ANY, &jerr);
    json_t *payload = data != NULL ? json_pack("{s:I, s:s, s:o}", "endpoint_id",
                                               (json_int_t)strtoll(PQgetvalue(res, 0, 0), NULL, 10),
                                               "event", PQgetvalue(res, 0, 1), "data", data)
                                   : NULL;
    char *text = payload != NULL ? usher_need(json_dumps(payload, JSON_COMPACT)) : NULL;

    json_decref(payload);
    if (text == NULL)
        usher_store_fail(st, USHER_ERR_NOMEM, "cannot build the replay's payload");
    return text;
}

usher_err usher_webhook_replay(usher_store *st, int64_t delivery_id, int64_t *job_id)
{
    const usher_kind_conf *kind = usher_config_kind(usher_store_config(st), REPLAY_KIND);
    char *payload = NULL;
    usher_enqueued out;
    PGresult *res = NULL;
    usher_err err;

    *job_id = 0;
    if (kind->queue[0] == '\0')
        return usher_store_fail(st, USHER_ERR_CONFIG, "[kind.%s] names no queue", REPLAY_KIND);
    err = usher_store_exec_one(st, delivery_sql, delivery_id, "webhook delivery", &res);
    if (err == USHER_OK && strcmp(PQgetvalue(res, 0, 3), "t") != 0)
        err = usher_store_fail(st, USHER_ERR_INVALID, "webhook endpoint %s is disabled (%s)",
                               PQgetvalue(res, 0, 0),
                               PQgetisnull(res, 0, 4) ? "no reason given" : PQgetvalue(res, 0, 4));
    if (err == USHER_OK && (payload = replay_payload(st, res)) == NULL)
        err = USHER_ERR_NOMEM;
    PQclear(res);
    if (err == USHER_OK)
        err = usher_enqueue(
            st,
            &(usher_enqueue_opts){ .queue = kind->queue, .kind = REPLAY_KIND, .payload = payload },
            &out);
    if (err == USHER_OK)
        *job_id = out.id;
    free(payload);
    return err;
}

usher_err usher_webhook_deliveries(usher_store *st, int64_t endpoint_id, int limit, json_t **out)
{
    char endpoint[USHER_INT_TEXT_MAX], limittext[USHER_INT_TEXT_MAX];
    const char *params[] = { endpoint, limittext };

    *out = NULL;
    if (endpoint_id < 0 || limit < 1 || limit > 10000)
        return usher_store_fail(st, USHER_ERR_INVALID, "endpoint must be >= 0, limit 1..10000");
    usher_int_text(endpoint_id, endpoint);
    usher_int_text(limit, limittext);
    return usher_store_query_json(st, list_sql, 2, params, out);
}
