/*
 * POST /v1/registrations/{id}/cancel (organizer of the event, or admin):
 * one statement, usher_cancel_registration() (0010_registration_cancel.sql),
 * cancels it, gives its seat back, and enqueues its removal from the search
 * index and the registration.cancelled webhooks. Then the caches: the
 * event's availability is dropped, and the registration's answer at every
 * session door of the event is held empty (api_cache_hold), so a door
 * request that read "confirmed" just before the commit cannot store its
 * "yes" again. Cancelling twice answers 200 with "changed": false; another
 * organizer's registration is a 404, as an unknown one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cache.h"
#include "../jobs.h"
#include "../wake.h"
#include "routes.h"

/* Holds the door answers of registration for each session id in the array text "{1,2,3}". */
static void hold_door_answers(api_loop *loop, int64_t registration, const char *sessions)
{
    const char *p = sessions;

    while (*p != '\0') {
        char *end, key[64];
        long long session = strtoll(p, &end, 10);

        if (end == p) {
            p++; /* '{', ',' or '}' */
            continue;
        }
        api_access_cache_key(session, registration, key);
        api_cache_hold(loop, key);
        p = end;
    }
}

static void cancelled(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    const char *status;
    char key[64];
    bool changed;

    if (!api_result_ok(r, res, errmsg))
        return;
    status = PQgetvalue(res, 0, 0);
    if (strcmp(status, "not_found") == 0) {
        api_reply_error(r, 404, "not_found", "no such registration");
        return;
    }
    changed = strcmp(status, "cancelled") == 0;
    hold_door_answers(r->loop, r->ids[0], PQgetvalue(res, 0, 2));
    if (changed) {
        api_event_cache_key(strtoll(PQgetvalue(res, 0, 1), NULL, 10), key);
        api_cache_drop(r->loop, key); /* a seat is free again */
        api_wake_kind(r->loop, "index.document");
        api_wake_kind(r->loop, "notify.webhook");
    }
    api_add_header(r, "Cache-Control", "no-store");
    api_reply_json(r, 200,
                   json_pack("{s:I,s:s,s:b}", "registration_id", (json_int_t)r->ids[0], "status",
                             "cancelled", "changed", changed));
}

void route_registration_cancel(api_req *r)
{
    char id[24], org[24], *text = api_index_job(r->loop->srv->cfg, "attendee");

    if (text == NULL) {
        api_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org), text,
                             r->loop->srv->webhook_template };

    api_query(r,
              "SELECT status, event_id, sessions"
              " FROM usher_cancel_registration($1, $2, $3::jsonb, $4::jsonb)",
              4, params, cancelled);
    free(text);
}
