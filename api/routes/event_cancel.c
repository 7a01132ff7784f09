/*
 * POST /v1/events/{id}/cancel (organizer of the event, or admin) with a
 * JSON body, {} or {"message": "..."}: a note the attendees read in their
 * email and inbox. One statement, usher_message_create()
 * (schemas/migrations/0017_messages.sql), marks the event cancelled (no
 * registration is taken from then on: 410), fires the event.cancelled
 * webhooks and records the event's cancellation message with its first
 * message.fanout job; 202 with the message's id, whose progress
 * GET /v1/messages/{id} shows. The fan-out then cancels every confirmed
 * registration (seat, search index and registration.cancelled webhooks, as
 * the registration cancel route does), writes each attendee an inbox entry
 * and an event_cancelled email, in batches that a killed worker's successor
 * resumes (workers/handlers/message_fanout.c). Cancelling again answers 200
 * with "changed": false and the same message; another organizer's event is
 * a 404, as an unknown one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../jobs.h"
#include "../validate.h"
#include "../wake_after_commit.h"
#include "inttext.h"
#include "messages.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

static void cancelled(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    char location[API_MESSAGE_PATH_MAX];
    int64_t id = 0;
    const char *status = api_message_status(r, res, errmsg, &id, location);
    bool changed;

    if (status == NULL)
        return;
    changed = strcmp(status, "created") == 0;
    if (changed) {
        api_event_cache_changed(r->loop, r->ids[0]);
        api_wake_kind(r->loop, "message.fanout");
        api_wake_kind(r->loop, "notify.webhook");
    }
    api_add_header(r, "Cache-Control", "no-store");
    api_reply_json(r, changed ? 202 : 200,
                   json_pack("{s:I,s:s,s:I,s:s,s:b}", "event_id", (json_int_t)r->ids[0], "status",
                             "cancelled", "message_id", (json_int_t)id, "progress", location,
                             "changed", changed));
}

void route_event_cancel(api_req *r)
{
    const char *note = NULL;
    char event[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], *fanout, *hook;

    if (!api_get_text(r, "message", false, MESSAGE_BODY_MAX, &note))
        return;
    fanout = api_fanout_template(r);
    hook = api_request_webhook_template(r);
    if (fanout == NULL || hook == NULL) {
        api_reply_error(r, 500, "internal", "out of memory");
        free(fanout);
        free(hook);
        return;
    }
    const char *params[] = { api_id_text(r->ids[0], event),
                             api_scope_org(r, org),
                             note,
                             usher_role_name(r->auth.role),
                             fanout,
                             hook };

    api_query(r,
              "SELECT status, message_id FROM usher_message_create($1, $2, 'event_cancelled',"
              " NULL, $3, '{}', $4, $5::jsonb, $6::jsonb)",
              6, params, cancelled);
    free(fanout);
    free(hook);
}
