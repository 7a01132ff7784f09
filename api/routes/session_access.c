/*
 * GET /v1/sessions/{id}/access?ticket_code=CODE: may this ticket holder
 * enter this session? The code is the credential. Its signature is checked
 * first, without the database: a forged or mistyped code answers
 * 200 {"access": false, "reason": "invalid_code"} (the answer is a "no",
 * like every other refusal, and says nothing of the session). A good code
 * is answered from Redis when it can (api/cache.h, cache "access", key per
 * session and registration, fresh for api.cache_access_ttl_s), else from
 * PostgreSQL: unknown_session is a 404 (not cached: the id may yet be
 * taken); unknown_ticket, wrong_event, cancelled or access true are 200s
 * and cached. A registration cancelled meanwhile keeps its cached "yes"
 * until the entry expires: that lag, at most the TTL, is accepted (no
 * stale serving here: a stale entry is reloaded before it answers).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cache.h"
#include "../validate.h"
#include "routes.h"

typedef struct access_step {
    int64_t event, registration; /* from the code */
    char key[64];
} access_step;

static void reply_access(api_req *r, const char *json, size_t len)
{
    api_add_header(r, "Cache-Control", "no-store"); /* the answer is the code holder's */
    api_reply_raw(r, 200, "application/json", json, len);
}

static void looked_up(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    access_step *step = r->state;
    const char *reason = NULL;
    json_t *body;
    char *text;

    r->state = NULL;
    if (!api_result_ok(r, res, errmsg)) {
        free(step);
        return;
    }
    if (PQntuples(res) != 1) {
        free(step);
        api_reply_error(r, 404, "unknown_session", "no such session");
        return;
    }
    /* Columns: session's event, registration's event, registration's status. */
    if (PQgetisnull(res, 0, 1) || strtoll(PQgetvalue(res, 0, 1), NULL, 10) != step->event)
        reason = "unknown_ticket";
    else if (strtoll(PQgetvalue(res, 0, 0), NULL, 10) != step->event)
        reason = "wrong_event";
    else if (strcmp(PQgetvalue(res, 0, 2), "confirmed") != 0)
        reason = "cancelled";
    body = reason == NULL ? json_pack("{s:b,s:I}", "access", 1, "session_id", (json_int_t)r->ids[0])
                          : json_pack("{s:b,s:s,s:I}", "access", 0, "reason", reason, "session_id",
                                      (json_int_t)r->ids[0]);
    text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        free(step);
        api_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    api_cache_put(r->loop, step->key, text, strlen(text), r->loop->srv->cfg->api_cache_access_ttl_s,
                  0);
    reply_access(r, text, strlen(text));
    free(text);
    free(step);
}

static void cached(api_req *r, api_cache_state state, const char *value, size_t len, bool reload)
{
    access_step *step = r->state;
    char session[24], registration[24];
    const char *params[] = { api_id_text(r->ids[0], session),
                             api_id_text(step->registration, registration) };

    (void)reload;
    if (state == API_CACHE_FRESH) {
        r->state = NULL;
        free(step);
        reply_access(r, value, len);
        return;
    }
    if (!api_query(r,
                   "SELECT s.event_id, g.event_id, g.status FROM sessions s"
                   " LEFT JOIN registrations g ON g.id = $2 WHERE s.id = $1",
                   2, params, looked_up))
        free(step); /* r is answered and gone */
}

void route_session_access(api_req *r)
{
    static const char forged[] = "{\"access\":false,\"reason\":\"invalid_code\"}";
    char code[USHER_TICKET_CODE_MAX + 16];
    access_step *step;
    int64_t event = 0, registration = 0;

    if (api_query_param(r, "ticket_code", code, sizeof(code)) != 1) {
        api_reply_invalid(r, "ticket_code", "ticket_code is required (the code on the ticket)");
        return;
    }
    if (!r->loop->srv->ticket_key_set) {
        api_reply_error(r, 503, "unavailable", "ticket codes cannot be checked: no secret set");
        return;
    }
    if (usher_ticket_verify(r->loop->srv->ticket_key, code, &event, &registration) != USHER_OK) {
        reply_access(r, forged, sizeof(forged) - 1);
        return;
    }
    step = calloc(1, sizeof(*step));
    if (step == NULL) {
        api_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    step->event = event;
    step->registration = registration;
    snprintf(step->key, sizeof(step->key), "usher:v1:access:%lld:%lld", (long long)r->ids[0],
             (long long)registration);
    r->state = step;
    api_cache_get(r, "access", step->key, cached);
}
