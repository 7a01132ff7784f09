/*
 * Schedules anchored to an event or a session (organizer of the event, or
 * admin; schemas/migrations/0027_schedules.sql):
 *   POST /v1/events/{id}/schedules  {action, session_id?, anchor?, offset_s?,
 *     subject?, body?, format?} -> 201 with the schedule: a reminder or a
 *     message to the attendees (of the event, or of the session's event for a
 *     session's schedule), or the door list (the attendee report) for the
 *     organizer, due at the anchor (start or end of the event, or of the
 *     session) plus offset_s seconds (negative: before). What the request
 *     leaves out comes from [schedules]: a reminder 24 h before the start, a
 *     message 2 h after the end, the door list 1 h before the start (as a
 *     PDF). A due time that has passed is refused (422, offset_s).
 *   GET /v1/events/{id}/schedules  every schedule of the event, by due time,
 *     each with its state (scheduled, fired, skipped, cancelled), what it
 *     sent (message_id, report_id) and its job while it waits.
 *   DELETE /v1/schedules/{id}  removes one (fired or not); a waiting job is cancelled.
 * The event's or session's moves and cancellations carry the schedules and
 * their jobs with them (triggers in the migration); the schedule.fire job
 * (workers/handlers/schedule_fire.c) fires each once. Creations and
 * deletions are audited in their statement. Another organizer's event is a
 * 404, as an unknown one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../audit.h"
#include "../jobs.h"
#include "../validate.h"
#include "alloc.h"
#include "inttext.h"
#include "messages.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

#define SUBJECT_MAX 200
#define OFFSET_MAX  31622400 /* 366 days, in seconds */

static const char *const actions[] = { "reminder", "message", "door_list", NULL };
static const char *const anchors[] = { "start", "end", NULL };
static const char *const formats[] = { "csv", "pdf", NULL };

/* What a schedule's request asks for, its defaults filled in. */
typedef struct request {
    const char *action, *anchor, *subject, *body, *format;
    int64_t session, offset_s;
} request;

/* The anchor and offset an action gets when the request names none. */
static void defaults(const usher_config *cfg, request *q)
{
    if (strcmp(q->action, "reminder") == 0) {
        q->anchor = "start";
        q->offset_s = cfg->schedules_reminder_offset_s;
    } else if (strcmp(q->action, "message") == 0) {
        q->anchor = "end";
        q->offset_s = cfg->schedules_message_offset_s;
    } else {
        q->anchor = "start";
        q->offset_s = cfg->schedules_door_list_offset_s;
    }
}

/* The body's fields into q; false after answering 422. */
static bool read_request(api_req *r, request *q)
{
    bool door_list;

    *q = (request){ 0 };
    if (!api_get_enum(r, "action", true, actions, &q->action))
        return false;
    defaults(r->loop->srv->cfg, q);
    door_list = strcmp(q->action, "door_list") == 0;
    if (!api_get_int(r, "session_id", false, 1, INT64_MAX, &q->session) ||
        !api_get_enum(r, "anchor", false, anchors, &q->anchor) ||
        !api_get_int(r, "offset_s", false, -OFFSET_MAX, OFFSET_MAX, &q->offset_s) ||
        !api_get_string(r, "subject", strcmp(q->action, "message") == 0, 1, SUBJECT_MAX,
                        &q->subject) ||
        !api_get_text(r, "body", strcmp(q->action, "message") == 0, MESSAGE_BODY_MAX, &q->body) ||
        !api_get_enum(r, "format", false, formats, &q->format))
        return false;
    if (door_list && (q->subject != NULL || q->body != NULL)) {
        api_reply_invalid(r, q->subject != NULL ? "subject" : "body",
                          "a door list goes to the organizer: it has no subject or body");
        return false;
    }
    if (!door_list && q->format != NULL) {
        api_reply_invalid(r, "format", "only a door list has a format");
        return false;
    }
    return true;
}

/* The schedule.fire template, its payload's schedule_id filled by the statement. */
static char *fire_template(const api_req *r)
{
    json_t *jobs = usher_need(json_array());
    char *text = NULL;

    if (api_job_add(jobs, r, "schedule.fire", json_object(), "schedule_id") == 0)
        text = usher_need(json_dumps(json_array_get(jobs, 0), JSON_COMPACT));
    json_decref(jobs);
    return text;
}

static void created(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    const char *status;

    if (!api_result_ok(r, res, errmsg))
        return;
    status = PQgetvalue(res, 0, 0);
    if (strcmp(status, "not_found") == 0)
        api_reply_error(r, 404, "not_found", "no such event");
    else if (strcmp(status, "unknown_session") == 0)
        api_reply_invalid(r, "session_id", "the event has no such session");
    else if (strcmp(status, "event_cancelled") == 0)
        api_reply_error(r, 409, "event_cancelled", "the event is cancelled");
    else if (strcmp(status, "session_cancelled") == 0)
        api_reply_error(r, 409, "session_cancelled", "the session is cancelled");
    else if (strcmp(status, "past") == 0)
        api_reply_invalid(r, "offset_s", "the schedule would be due at %s, which has passed",
                          PQgetvalue(res, 0, 2));
    else
        api_reply_raw(r, 201, "application/json", PQgetvalue(res, 0, 1),
                      (size_t)PQgetlength(res, 0, 1));
}

void route_schedule_create(api_req *r)
{
    request q;
    char event[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], session[USHER_INT_TEXT_MAX],
        offset[USHER_INT_TEXT_MAX], actor[API_AUDIT_ACTOR_MAX], *fire;

    r->audited = true;
    if (!read_request(r, &q))
        return;
    if ((fire = fire_template(r)) == NULL) {
        api_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    usher_int_text(q.offset_s, offset);
    const char *params[] = { api_id_text(r->ids[0], event),
                             api_scope_org(r, org),
                             q.session != 0 ? api_id_text(q.session, session) : NULL,
                             q.anchor,
                             offset,
                             q.action,
                             q.subject,
                             q.body,
                             q.format,
                             usher_role_name(r->auth.role),
                             fire,
                             api_audit_actor(r, actor) };

    api_query(r,
              "SELECT status, schedule::text, schedule->>'due_at' FROM usher_schedule_create("
              "$1, $2, $3, $4, $5::int, $6, $7, $8, $9, $10, $11::jsonb, $12::jsonb)",
              12, params, created);
    free(fire);
}

static void listed(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;

    api_add_header(r, "Cache-Control", "no-store");
    api_reply_row(r, res, errmsg, 200, "event");
}

void route_schedule_list(api_req *r)
{
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX];
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org) };

    api_query(r,
              "SELECT json_build_object('schedules', coalesce((SELECT json_agg("
              "  usher_schedule_json(s.id) ORDER BY s.due_at, s.id) FROM event_schedules s"
              "  WHERE s.event_id = e.id), '[]'::json))::text"
              " FROM events e WHERE e.id = $1 AND ($2::bigint IS NULL OR e.organizer_id = $2)",
              2, params, listed);
}

static void deleted(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;

    if (!api_result_ok(r, res, errmsg))
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "deleted") != 0) {
        api_reply_error(r, 404, "not_found", "no such schedule");
        return;
    }
    api_reply_json(r, 200,
                   json_pack("{s:I,s:b}", "schedule_id", (json_int_t)r->ids[0], "deleted", 1));
}

void route_schedule_delete(api_req *r)
{
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], actor[API_AUDIT_ACTOR_MAX];
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org),
                             api_audit_actor(r, actor) };

    r->audited = true;
    api_query(r, "SELECT status FROM usher_schedule_delete($1, $2, $3::jsonb)", 3, params, deleted);
}
