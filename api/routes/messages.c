/*
 * Messages to attendees (organizer of the event, or admin):
 *   POST /v1/events/{id}/messages  {subject, body, audience?} -> 202 with the
 *     message's id: usher_message_create() (schemas/migrations/0017_messages.sql)
 *     records it with its first message.fanout job in one statement; the
 *     fan-out then mails and writes to the inbox of every attendee the
 *     audience selects, in batches (workers/handlers/message_fanout.c).
 *   GET /v1/messages/{id}  the message and its progress:
 *     queued (emails enqueued), sent, failed (their jobs died), skipped
 *     (held back by a cancel) and pending.
 *   POST /v1/messages/{id}/cancel  stops it: no more batches,
 *     and its emails not yet sent are skipped. Cancelling twice answers 200
 *     with "changed": false; a message already sent, or an event's
 *     cancellation, 409.
 * The body is plain text (newlines kept) with the small formatting subset of
 * workers/handlers/message_format.h. audience is "all" (the default) or an
 * object of ticket_type_ids, session_ids (arrays of ids of the event) and
 * checked_in (true or false), all of which an attendee must match. Another
 * organizer's event or message is a 404, as an unknown one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../jobs.h"
#include "../validate.h"
#include "../wake_after_commit.h"
#include "alloc.h"
#include "enqueue.h"
#include "inttext.h"
#include "messages.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

#define SUBJECT_MAX  200
#define AUDIENCE_IDS 100 /* ids in one audience list at most */

/* An array of 1..AUDIENCE_IDS positive ids; false when v is not one. */
static bool id_list(json_t *v)
{
    size_t i;
    json_t *id;

    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > AUDIENCE_IDS)
        return false;
    json_array_foreach(v, i,
                       id) if (!json_is_integer(id) || json_integer_value(id) <= 0) return false;
    return true;
}

/* The audience as the statement takes it (a new reference), or NULL after a 422. */
static json_t *audience_of(api_req *r)
{
    json_t *a = json_object_get(r->body, "audience"), *v;
    const char *key;

    if (a == NULL || (json_is_string(a) && strcmp(json_string_value(a), "all") == 0))
        return usher_need(json_object());
    if (!json_is_object(a)) {
        api_reply_invalid(r, "audience", "audience must be \"all\" or an object");
        return NULL;
    }
    json_object_foreach(a, key, v)
    {
        bool ok = strcmp(key, "checked_in") == 0 ? json_is_boolean(v)
                  : strcmp(key, "ticket_type_ids") == 0 || strcmp(key, "session_ids") == 0
                      ? id_list(v)
                      : false;

        if (!ok) {
            api_reply_invalid(r, "audience",
                              "audience.%s: the keys are ticket_type_ids and session_ids (arrays"
                              " of 1 to %d ids) and checked_in (true or false)",
                              key, AUDIENCE_IDS);
            return NULL;
        }
    }
    return json_incref(a);
}

char *api_fanout_template(const api_req *r)
{
    json_t *jobs = usher_need(json_array());
    char *text = NULL;

    if (api_job_add(jobs, r, "message.fanout", json_object(), "message_id") == 0)
        text = usher_need(json_dumps(json_array_get(jobs, 0), JSON_COMPACT));
    json_decref(jobs);
    return text;
}

const char *api_message_status(api_req *r, PGresult *res, const char *errmsg, int64_t *id,
                               char location[API_MESSAGE_PATH_MAX])
{
    const char *status;

    if (!api_result_ok(r, res, errmsg))
        return NULL;
    status = PQgetvalue(res, 0, 0);
    if (strcmp(status, "not_found") == 0) {
        api_reply_error(r, 404, "not_found", "no such event");
        return NULL;
    }
    *id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    snprintf(location, API_MESSAGE_PATH_MAX, "/v1/messages/%lld", (long long)*id);
    return status;
}

static void created(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    char location[API_MESSAGE_PATH_MAX];
    int64_t id = 0;
    const char *status = api_message_status(r, res, errmsg, &id, location);

    if (status == NULL)
        return;
    if (strcmp(status, "event_cancelled") == 0) {
        api_reply_error(r, 409, "event_cancelled", "the event is cancelled");
        return;
    }
    if (strcmp(status, "unknown_ticket_type") == 0 || strcmp(status, "unknown_session") == 0) {
        api_reply_invalid(r, "audience", "the event has no such %s",
                          status[8] == 't' ? "ticket type" : "session");
        return;
    }
    api_wake_kind(r->loop, "message.fanout");
    api_add_header(r, "Location", location);
    api_reply_json(r, 202,
                   json_pack("{s:I,s:I,s:s,s:s}", "message_id", (json_int_t)id, "event_id",
                             (json_int_t)r->ids[0], "state", "queued", "progress", location));
}

void route_message_create(api_req *r)
{
    const char *subject = NULL, *body = NULL;
    char event[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], *audience_text, *fanout;
    json_t *audience;

    if (!api_get_string(r, "subject", true, 1, SUBJECT_MAX, &subject) ||
        !api_get_text(r, "body", true, MESSAGE_BODY_MAX, &body) ||
        (audience = audience_of(r)) == NULL)
        return;
    audience_text = usher_need(json_dumps(audience, JSON_COMPACT));
    json_decref(audience);
    fanout = api_fanout_template(r);
    if (fanout == NULL) {
        free(audience_text);
        api_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    const char *params[] = { api_id_text(r->ids[0], event),
                             api_scope_org(r, org),
                             subject,
                             body,
                             audience_text,
                             usher_role_name(r->auth.role),
                             fanout };

    api_query(r,
              "SELECT status, message_id FROM usher_message_create($1, $2, 'message', $3, $4,"
              " $5::jsonb, $6, $7::jsonb, NULL)",
              7, params, created);
    free(audience_text);
    free(fanout);
}

static void got_message(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;

    api_add_header(r, "Cache-Control", "no-store");
    api_reply_row(r, res, errmsg, 200, "message");
}

void route_message_get(api_req *r)
{
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX];
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org) };

    api_query(r,
              "SELECT json_build_object('id', m.id, 'event_id', m.event_id, 'kind', m.kind,"
              " 'session_id', m.session_id,"
              " 'subject', m.subject, 'body', m.body, 'audience', m.audience, 'state', m.state,"
              " 'batches', m.batches, 'created_at', m.created_at, 'finished_at', m.finished_at,"
              " 'cancelled_at', m.cancelled_at, 'queued', p.queued, 'sent', p.sent,"
              " 'failed', p.failed, 'skipped', p.skipped,"
              " 'pending', p.queued - p.sent - p.failed - p.skipped)::text"
              " FROM event_messages m JOIN events e ON e.id = m.event_id,"
              " LATERAL (SELECT count(*) AS queued, count(d.sent_at) AS sent,"
              "   count(*) FILTER (WHERE d.sent_at IS NULL AND j.state IN ('dead', 'cancelled'))"
              "     AS failed,"
              "   count(*) FILTER (WHERE d.sent_at IS NULL AND d.skipped_at IS NOT NULL) AS skipped"
              "  FROM message_deliveries d LEFT JOIN usher_jobs j ON j.id = d.job_id"
              "  WHERE d.message_id = m.id) p"
              " WHERE m.id = $1 AND ($2::bigint IS NULL OR e.organizer_id = $2)",
              2, params, got_message);
}

static void stopped(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    const char *kind;
    bool changed, cancelled;

    if (!api_result_ok(r, res, errmsg))
        return;
    if (PQntuples(res) != 1) {
        api_reply_error(r, 404, "not_found", "no such message");
        return;
    }
    kind = PQgetvalue(res, 0, 0);
    cancelled = strcmp(PQgetvalue(res, 0, 1), "cancelled") == 0;
    changed = strcmp(PQgetvalue(res, 0, 2), "1") == 0;
    if (strcmp(kind, "message") != 0) {
        api_reply_error(r, 409, "conflict", "an event's cancellation cannot be stopped");
        return;
    }
    if (!changed && !cancelled) {
        api_reply_error(r, 409, "conflict", "the message is sent already");
        return;
    }
    api_reply_json(r, 200,
                   json_pack("{s:I,s:s,s:b}", "message_id", (json_int_t)r->ids[0], "state",
                             "cancelled", "changed", changed));
}

void route_message_cancel(api_req *r)
{
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX];
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org) };

    api_query(r,
              "WITH m AS (SELECT m.id, m.kind, m.state FROM event_messages m"
              "  JOIN events e ON e.id = m.event_id"
              "  WHERE m.id = $1 AND ($2::bigint IS NULL OR e.organizer_id = $2) FOR UPDATE OF m),"
              " u AS (UPDATE event_messages x SET state = 'cancelled', cancelled_at = now()"
              "  FROM m WHERE x.id = m.id AND m.kind = 'message'"
              "   AND m.state IN ('queued', 'sending') RETURNING x.id)"
              " SELECT m.kind, m.state, (SELECT count(*) FROM u) FROM m",
              2, params, stopped);
}
