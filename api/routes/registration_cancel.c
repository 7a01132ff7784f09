/*
 * POST /v1/registrations/{id}/cancel (organizer of the event, or admin):
 * one statement, usher_cancel_registration() (0010_registration_cancel.sql),
 * cancels it, gives its seat back, and enqueues its removal from the search
 * index, the attendee's registration_cancelled email and the
 * registration.cancelled webhooks. Then the caches: the
 * event's availability is dropped, and the registration's answer at every
 * session door of the event is held empty (api_cache_hold, one round trip
 * that the answer waits for), so a door request that read "confirmed" just
 * before the commit cannot store its "yes" again, and no door says "yes"
 * once the caller has the 200. Cancelling twice answers 200 with "changed": false; another
 * organizer's registration is a 404, as an unknown one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cache.h"
#include "../jobs.h"
#include "../wake_after_commit.h"
#include "alloc.h"
#include "inttext.h"
#include "log.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

typedef struct closing {
    api_req *r;
    bool changed;
    size_t n;
    char (*keys)[API_CACHE_KEY_MAX]; /* the registration's door answer at each session */
    const char **key_at;             /* key_at[i] = keys[i] */
} closing;

/* The door keys of registration for each session id in the array text "{1,2,3}". */
static void door_keys(closing *c, int64_t registration, const char *sessions)
{
    size_t max = 1;

    for (const char *p = sessions; *p != '\0'; p++)
        max += *p == ',';
    c->keys = usher_calloc(max, sizeof(*c->keys));
    c->key_at = usher_calloc(max, sizeof(*c->key_at));
    for (const char *p = sessions; *p != '\0';) {
        char *end;
        long long session = strtoll(p, &end, 10);

        if (end == p) {
            p++; /* '{', ',' or '}' */
            continue;
        }
        if (c->n < max) {
            api_access_cache_key(session, registration, c->keys[c->n]);
            c->key_at[c->n] = c->keys[c->n];
            c->n++;
        }
        p = end;
    }
}

/* The doors are closed (or Redis could not be told): now the caller hears. */
static void doors_held(void *arg, bool held)
{
    closing *c = arg;
    api_req *r = c->r;

    if (!held)
        usher_log(USHER_LOG_WARNING,
                  "registration %lld cancelled, but its cached door answers could not be held"
                  " (Redis down or slow): they expire by their TTL",
                  (long long)r->ids[0]);
    api_add_header(r, "Cache-Control", "no-store");
    api_reply_json(r, 200,
                   json_pack("{s:I,s:s,s:b}", "registration_id", (json_int_t)r->ids[0], "status",
                             "cancelled", "changed", c->changed));
    free(c->keys);
    free(c->key_at);
    free(c);
}

static void cancelled(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    closing *c;

    if (!api_result_ok(r, res, errmsg))
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "not_found") == 0) {
        api_reply_error(r, 404, "not_found", "no such registration");
        return;
    }
    c = usher_calloc(1, sizeof(*c));
    door_keys(c, r->ids[0], PQgetvalue(res, 0, 2));
    c->r = r;
    c->changed = strcmp(PQgetvalue(res, 0, 0), "cancelled") == 0;
    if (c->changed) {
        /* A seat is free again. */
        api_event_cache_changed(r->loop, strtoll(PQgetvalue(res, 0, 1), NULL, 10));
        api_wake_kind(r->loop, "index.document");
        api_wake_kind(r->loop, "email.send");
        api_wake_kind(r->loop, "notify.webhook");
        api_wake_kind(r->loop, "analytics.rollup");
    }
    /* Answered once the holds are in: after the 200 no door says "yes". */
    api_cache_hold(r->loop, c->key_at, c->n, doors_held, c);
}

/*
 * The cancellation's jobs, as JSON text (the caller frees it): the
 * attendee leaves the search index and gets a registration_cancelled email,
 * and the event's analytics count it (its event_id set by the statement).
 */
static char *cancel_jobs(const api_req *r)
{
    json_t *jobs = usher_need(json_array());
    char *text = NULL;

    if (api_job_add(jobs, r, "index.document", json_pack("{s:s}", "type", "attendee"), "id") == 0 &&
        api_job_add(jobs, r, "email.send", json_pack("{s:s}", "template", "registration_cancelled"),
                    "registration_id") == 0 &&
        api_job_add(jobs, r, "analytics.rollup", json_pack("{s:s}", "metric", "cancellation"),
                    NULL) == 0 &&
        api_job_stamp(jobs, "at") == 0 && api_job_for_event(jobs, "event_id") == 0)
        text = usher_need(json_dumps(jobs, JSON_COMPACT));
    json_decref(jobs);
    return text;
}

void route_registration_cancel(api_req *r)
{
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], *text = cancel_jobs(r),
                                                          *hook = api_request_webhook_template(r);

    if (text == NULL || hook == NULL) {
        api_reply_error(r, 500, "internal", "out of memory");
        free(text);
        free(hook);
        return;
    }
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org), text, hook };

    api_query(r,
              "SELECT status, event_id, sessions"
              " FROM usher_cancel_registration($1, $2, $3::jsonb, $4::jsonb)",
              4, params, cancelled);
    free(text);
    free(hook);
}
