/*
 * An organizer's webhook endpoints after their creation (issue 15): PATCH
 * /v1/webhooks/{id} changes the URL and the events, POST .../enable turns
 * an endpoint on again (after a 410 Gone disabled it), POST
 * .../rotate-secret answers a new signing secret, once, DELETE removes the
 * endpoint with its delivery log; GET .../deliveries reads the log, one
 * row per attempt, newest first with a cursor; POST
 * /v1/webhooks/deliveries/{id}/replay sends one of them again as a new job (the
 * admins' replay, platform/webhook_replay.c). Each change is one statement
 * that also audits it, before and after, never with the secret. An
 * organizer reaches only its own endpoints (another's answer 404); admins
 * every one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../audit.h"
#include "../blocking.h"
#include "../validate.h"
#include "../wake_after_commit.h"
#include "alloc.h"
#include "inttext.h"
#include "routes.h"
#include "reply.h"
#include "query.h"
#include "webhooks.h"

#define DELIVERIES_DEFAULT 50
#define DELIVERIES_MAX     500

/* The endpoint $1 within organizer $2 (NULL: any), locked for the change. */
#define OLD_CTE                                                   \
    "old AS (SELECT w.* FROM webhook_endpoints w WHERE w.id = $1" \
    " AND ($2::bigint IS NULL OR w.organizer_id = $2) FOR UPDATE)"

/* Audits upd against old for actor $3 as action, and answers upd's endpoint. */
#define AUDITED(action, answer)                                                             \
    " aud AS (SELECT usher_audit($3::jsonb, '" action "', 'webhook', u.id,"                 \
    "  (SELECT " ENDPOINT_JSON "::jsonb FROM old w), (SELECT " ENDPOINT_JSON "::jsonb FROM" \
    "  upd w)) FROM upd u)"                                                                 \
    " SELECT " answer "::text FROM upd w WHERE (SELECT count(*) FROM aud) >= 0"

static void changed(PGresult *res, const char *errmsg, void *arg)
{
    api_reply_row(arg, res, errmsg, 200, "webhook endpoint");
}

void route_webhook_update(api_req *r)
{
    r->audited = true;
    const char *url = NULL;
    json_t *events = NULL;
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], actor[API_AUDIT_ACTOR_MAX],
        *events_text = NULL;

    if (!api_get_string(r, "url", false, 8, 2000, &url) ||
        !api_get_strings(r, "events", false, API_WEBHOOK_EVENTS_MAX, 64, &events))
        return;
    if ((url != NULL && !api_webhook_url_ok(r, url)) ||
        (events != NULL && !api_webhook_events_ok(r, events)))
        return;
    if (events != NULL)
        events_text = usher_need(json_dumps(events, JSON_COMPACT));
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org),
                             api_audit_actor(r, actor), url, events_text };

    api_query(
        r,
        "WITH " OLD_CTE ","
        " upd AS (UPDATE webhook_endpoints x SET url = coalesce($4, x.url),"
        "  events = CASE WHEN $5::jsonb IS NULL THEN x.events"
        "   ELSE ARRAY(SELECT jsonb_array_elements_text($5::jsonb)) END"
        "  FROM old WHERE x.id = old.id RETURNING x.*)," AUDITED("webhook.update", ENDPOINT_JSON),
        5, params, changed);
    free(events_text);
}

void route_webhook_enable(api_req *r)
{
    r->audited = true;
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], actor[API_AUDIT_ACTOR_MAX];
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org),
                             api_audit_actor(r, actor) };

    api_query(
        r,
        "WITH " OLD_CTE ","
        " upd AS (UPDATE webhook_endpoints x SET enabled = true, disabled_reason = NULL"
        "  FROM old WHERE x.id = old.id RETURNING x.*)," AUDITED("webhook.enable", ENDPOINT_JSON),
        3, params, changed);
}

static void rotated(PGresult *res, const char *errmsg, void *arg)
{
    api_add_header(arg, "Cache-Control", "no-store");
    api_reply_row(arg, res, errmsg, 200, "webhook endpoint");
}

void route_webhook_rotate_secret(api_req *r)
{
    r->audited = true;
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], actor[API_AUDIT_ACTOR_MAX],
        secret[API_WEBHOOK_SECRET_HEX];

    api_webhook_new_secret(secret);
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org),
                             api_audit_actor(r, actor), secret };

    api_query(r,
              "WITH " OLD_CTE ","
              " upd AS (UPDATE webhook_endpoints x SET secret = $4"
              "  FROM old WHERE x.id = old.id RETURNING x.*)," AUDITED(
                  "webhook.rotate_secret",
                  "(" ENDPOINT_JSON "::jsonb || jsonb_build_object('secret', w.secret))"),
              4, params, rotated);
}

void route_webhook_delete(api_req *r)
{
    r->audited = true;
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], actor[API_AUDIT_ACTOR_MAX];
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org),
                             api_audit_actor(r, actor) };

    /* Deliveries still queued for it find no endpoint and go dead (workers/handlers/webhook.c). */
    api_query(r,
              "WITH " OLD_CTE ","
              " log AS (DELETE FROM webhook_deliveries d USING old WHERE d.endpoint_id = old.id),"
              " del AS (DELETE FROM webhook_endpoints x USING old WHERE x.id = old.id"
              "  RETURNING x.id),"
              " aud AS (SELECT usher_audit($3::jsonb, 'webhook.delete', 'webhook', d.id,"
              "  (SELECT " ENDPOINT_JSON "::jsonb FROM old w), NULL) FROM del d)"
              " SELECT json_build_object('webhook_id', d.id, 'deleted', true)::text FROM del d"
              " WHERE (SELECT count(*) FROM aud) >= 0",
              3, params, changed);
}

void route_webhook_deliveries(api_req *r)
{
    int64_t cursor = 0, limit = DELIVERIES_DEFAULT;
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], cur[USHER_INT_TEXT_MAX],
        lim[USHER_INT_TEXT_MAX];

    if (!api_query_whole(r, "cursor", 1, INT64_MAX, &cursor) ||
        !api_query_whole(r, "limit", 1, DELIVERIES_MAX, &limit))
        return;
    usher_int_text(limit, lim);
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org),
                             api_id_text(cursor, cur), lim };

    /* Newest first; next_cursor (the last id) when the page is full. */
    api_query(
        r,
        "SELECT json_build_object('deliveries', coalesce(json_agg(json_build_object("
        "  'id', d.id, 'endpoint_id', d.endpoint_id, 'job_id', d.job_id, 'attempt', d.attempt,"
        "  'event', d.event, 'payload', d.payload, 'status_code', d.status_code,"
        "  'latency_ms', d.latency_ms, 'error', d.error, 'created_at', d.created_at)"
        "  ORDER BY d.id DESC) FILTER (WHERE d.id IS NOT NULL), '[]'::json),"
        " 'next_cursor', CASE WHEN count(d.id) = $4::int THEN min(d.id) END)::text"
        " FROM webhook_endpoints w LEFT JOIN LATERAL (SELECT * FROM webhook_deliveries x"
        "  WHERE x.endpoint_id = w.id AND ($3::bigint IS NULL OR x.id < $3)"
        "  ORDER BY x.id DESC LIMIT $4::int) d ON true"
        " WHERE w.id = $1 AND ($2::bigint IS NULL OR w.organizer_id = $2) GROUP BY w.id",
        4, params, changed);
}

static void replay_done(api_req *r, usher_err err, const char *why, json_t *out, void *arg)
{
    if (err == USHER_OK)
        api_wake_kind(r->loop, "notify.webhook");
    api_blocking_reply(r, err, why, out, arg);
}

static void replay_found(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    int64_t *delivery;

    if (!api_result_ok(r, res, errmsg))
        return;
    if (PQntuples(res) != 1) {
        api_reply_error(r, 404, "not_found", "no such webhook delivery");
        return;
    }
    delivery = usher_malloc(sizeof(*delivery));
    *delivery = r->ids[0];
    api_blocking(r, api_webhook_replay_job, replay_done, delivery);
}

void route_webhook_replay(api_req *r)
{
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX];
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org) };

    /* A delivery of its own endpoints, then the admins' replay on the offload pool. */
    api_query(r,
              "SELECT 1 FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id"
              " WHERE d.id = $1 AND ($2::bigint IS NULL OR w.organizer_id = $2)",
              2, params, replay_found);
}
