/*
 * POST /v1/checkins: the door. The code's signature is checked first, so a
 * forged or mistyped code never reaches the database's registrations (its
 * scan is still logged); a good one joins its loop's batch for
 * usher_checkin_batch() (0009_checkin_jobs.sql), which admits a ticket once
 * however many scanners race on it. The analytics job is "counted": a batch
 * writes one per event with the number of tickets it admitted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../loop_batch.h"
#include "../jobs.h"
#include "../validate.h"
#include "alloc.h"
#include "../wake_after_commit.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

typedef struct outcome {
    const char *result;
    int status;
    const char *message;
} outcome;

static const outcome outcomes[] = {
    { "ok", 200, "admitted" },
    { "already_checked_in", 409, "this ticket was already checked in" },
    { "unknown_ticket", 404, "no registration has this ticket code" },
    { "cancelled", 410, "this registration was cancelled" },
    { "wrong_event", 403, "this ticket is for another event" },
    { "invalid_code", 422, "the ticket code is not valid (mistyped or forged)" },
};

static void answer(api_req *r, const char *result, const char *first_at, const char *first_gate)
{
    const outcome *o = &outcomes[sizeof(outcomes) / sizeof(outcomes[0]) - 1];
    json_t *body;

    for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++) {
        if (strcmp(outcomes[i].result, result) == 0)
            o = &outcomes[i];
    }
    body = json_pack("{s:s}", "result", o->result);
    if (body != NULL && first_at != NULL) {
        json_object_set_new(body, "checked_in_at", json_string(first_at));
        json_object_set_new(body, "gate", json_string(first_gate != NULL ? first_gate : ""));
    }
    if (body != NULL && o->status != 200)
        json_object_set_new(body, "error",
                            json_pack("{s:s,s:s}", "code", o->result, "message", o->message));
    api_add_header(r, "Cache-Control", "no-store");
    api_reply_json(r, o->status, body);
}

/* A scan's row of usher_checkin_batch(): result, first check-in time (or NULL), gate (or NULL). */
static void checkin_row(api_req *r, json_t *item, PGresult *res, int row)
{
    (void)item;
    const char *result = PQgetvalue(res, row, 1);

    if (strcmp(result, "ok") == 0) {
        api_wake_kind(r->loop, "analytics.rollup");
        api_wake_kind(r->loop, "notify.webhook");
    }
    answer(r, result, PQgetisnull(res, row, 2) ? NULL : PQgetvalue(res, row, 2),
           PQgetisnull(res, row, 3) ? NULL : PQgetvalue(res, row, 3));
}

/* The server's notify.webhook template: the batch's statement serves several requests. */
static const char *webhook_template(api_loop *loop)
{
    return loop->srv->webhook_template;
}

const api_batch_kind route_checkin_batch = {
    .sql = "SELECT idx, result, to_char(first_at AT TIME ZONE 'UTC',"
           " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), first_gate"
           " FROM usher_checkin_batch($1::jsonb, $2::jsonb)",
    .param2 = webhook_template,
    .row = checkin_row,
};

static void logged_invalid(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;

    if (!api_result_ok(r, res, errmsg))
        return;
    answer(r, "invalid_code", NULL, NULL);
}

void route_checkin(api_req *r)
{
    const char *code = NULL, *gate = "", *nonce = NULL;
    int64_t scope_event = r->auth.event_id, event = 0, registration = 0;
    json_t *templates, *item = NULL;

    if (!api_get_string(r, "ticket_code", true, 1, 100, &code) ||
        !api_get_string(r, "gate", false, 0, 64, &gate) ||
        !api_get_string(r, "nonce", false, 1, 100, &nonce) ||
        !api_get_int(r, "event_id", false, 1, INT64_MAX, &scope_event))
        return;
    if (r->auth.event_id != 0 && scope_event != r->auth.event_id) {
        api_reply_error(r, 403, "forbidden", "this scanner token is for event %lld",
                        (long long)r->auth.event_id);
        return;
    }
    if (usher_ticket_verify(r->loop->srv->ticket_key, code, &event, &registration) != USHER_OK) {
        const char *params[] = { gate, nonce };

        api_query(r,
                  "INSERT INTO scans (gate, nonce, result) VALUES ($1, $2, 'invalid_code')"
                  " ON CONFLICT DO NOTHING",
                  2, params, logged_invalid);
        return;
    }
    templates = api_counted_job(r, json_pack("{s:I,s:s,s:s}", "event_id", (json_int_t)event,
                                             "metric", "checkin", "gate", gate));
    if (templates != NULL)
        item = json_pack(
            "{s:I,s:I,s:o,s:o,s:s,s:o,s:O}", "event", (json_int_t)event, "registration",
            (json_int_t)registration, "scope_org",
            r->auth.role == USHER_ROLE_SCANNER ? json_integer(r->auth.organizer_id) : json_null(),
            "scope_event", scope_event != 0 ? json_integer(scope_event) : json_null(), "gate", gate,
            "nonce", nonce != NULL ? json_string(nonce) : json_null(), "counted", templates);
    json_decref(templates);
    if (item == NULL) {
        api_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    api_loop_batch_add(r->loop->checkins, r, item);
}
