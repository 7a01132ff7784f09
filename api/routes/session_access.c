/*
 * GET /v1/sessions/{id}/access?ticket_code=CODE (or the code in the
 * header X-Ticket-Code, which keeps it out of URLs that proxies and
 * browsers log; the query string wins when both are sent): may this
 * ticket holder enter this session? The code is the credential. Its signature is checked
 * first, without the database: a forged or mistyped code answers
 * 200 {"access": false, "reason": "invalid_code"} (the answer is a "no",
 * like every other refusal, and says nothing of the session). A good code
 * is answered from Redis when it can (api/cache.h, cache "access", key per
 * session and registration, fresh for api.cache_access_ttl_s), else from
 * PostgreSQL: unknown_session is a 404 (not cached: the id may yet be
 * taken); unknown_ticket, wrong_event, cancelled or access true are 200s
 * and cached, fresh for api.cache_access_ttl_s and then served stale for
 * api.cache_stale_s while one request reloads it (api/cache.h). A
 * cancellation through the API (registration_cancel.c) holds the
 * registration's keys empty, so the "yes" ends at once; a registration
 * changed in the database directly keeps its cached answer up to the TTL
 * plus the stale window. The answers of sessions about to start are stored
 * before anyone asks (api/cache_warm.h, the same keys and texts), so a cold
 * cache does not send each attendee's first scan to the database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cache.h"
#include "../metrics.h"
#include "../pgpool.h"
#include "../validate.h"
#include "alloc.h"
#include "inttext.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

#define ACCESS_SQL                                                                        \
    "SELECT s.event_id, g.event_id, g.status, s.cancelled_at IS NOT NULL FROM sessions s" \
    " LEFT JOIN registrations g ON g.id = $2 WHERE s.id = $1"

typedef struct access_step {
    int64_t event, registration; /* from the code */
    char key[API_CACHE_KEY_MAX];
} access_step;

static void reply_access(api_req *r, const char *json, size_t len)
{
    api_add_header(r, "Cache-Control", "no-store"); /* the answer is the code holder's */
    api_reply_raw(r, 200, "application/json", json, len);
}

char *api_access_answer_text(int64_t session, const char *reason)
{
    json_t *body;
    char *text;

    body = reason == NULL ? json_pack("{s:b,s:I}", "access", 1, "session_id", (json_int_t)session)
                          : json_pack("{s:b,s:s,s:I}", "access", 0, "reason", reason, "session_id",
                                      (json_int_t)session);
    text = body != NULL ? usher_need(json_dumps(body, JSON_COMPACT)) : NULL;
    json_decref(body);
    return text;
}

/*
 * The answer for a row of ACCESS_SQL, as JSON text (malloc'd), or NULL: no
 * row (the session is unknown: *unknown set) or out of memory.
 */
static char *access_answer(PGresult *res, int64_t session, int64_t event, bool *unknown)
{
    const char *reason = NULL;

    *unknown = PQntuples(res) != 1;
    if (*unknown)
        return NULL;
    /* Columns: session's event, registration's event and status, session cancelled. */
    if (PQgetisnull(res, 0, 1) || strtoll(PQgetvalue(res, 0, 1), NULL, 10) != event)
        reason = "unknown_ticket";
    else if (strtoll(PQgetvalue(res, 0, 0), NULL, 10) != event)
        reason = "wrong_event";
    else if (strcmp(PQgetvalue(res, 0, 2), "confirmed") != 0)
        reason = "cancelled";
    else if (strcmp(PQgetvalue(res, 0, 3), "t") == 0)
        reason = "session_cancelled";
    return api_access_answer_text(session, reason);
}

static void store(api_loop *loop, const char *key, const char *text)
{
    const usher_config *cfg = loop->srv->cfg;

    api_cache_put(loop, key, text, strlen(text), cfg->api_cache_access_ttl_s,
                  cfg->api_cache_stale_s);
}

static void looked_up(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    access_step *step = r->state;
    bool unknown;
    char *text;

    r->state = NULL;
    if (!api_result_ok(r, res, errmsg)) {
        free(step);
        return;
    }
    text = access_answer(res, r->ids[0], step->event, &unknown);
    if (unknown)
        api_reply_error(r, 404, "unknown_session", "no such session");
    else if (text == NULL)
        api_reply_error(r, 500, "internal", "out of memory");
    else {
        store(r->loop, step->key, text);
        reply_access(r, text, strlen(text));
    }
    free(text);
    free(step);
}

/* A stale entry's reload, behind the request that served it. */
typedef struct refresh {
    api_loop *loop;
    int64_t session;
    access_step step;
} refresh;

static void refreshed(PGresult *res, const char *errmsg, void *arg)
{
    refresh *rf = arg;
    bool unknown;
    char *text = NULL;

    (void)errmsg;
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK) {
        text = access_answer(res, rf->session, rf->step.event, &unknown);
        if (text != NULL)
            store(rf->loop, rf->step.key, text);
        else if (unknown)
            api_cache_drop(rf->loop, rf->step.key); /* the session is gone */
    }
    free(text);
    free(rf);
}

static void cached(api_req *r, api_cache_state state, const char *value, size_t len, bool reload)
{
    access_step *step = r->state;
    char session[USHER_INT_TEXT_MAX], registration[USHER_INT_TEXT_MAX];
    const char *params[] = { api_id_text(r->ids[0], session),
                             api_id_text(step->registration, registration) };

    if (state == API_CACHE_MISS) {
        api_metrics_cache_load(r->loop->srv->metrics, "access", API_CACHE_READ);
        if (!api_query(r, ACCESS_SQL, 2, params, looked_up))
            free(step); /* r is answered and gone */
        return;
    }
    r->state = NULL;
    if (reload) {
        refresh *rf = usher_malloc(sizeof(*rf));

        *rf = (refresh){ r->loop, r->ids[0], *step };
        if (api_pgpool_query(r->loop->pg, ACCESS_SQL, 2, params, refreshed, rf) != USHER_OK)
            free(rf);
        else
            api_metrics_cache_load(r->loop->srv->metrics, "access", API_CACHE_READ);
    }
    free(step);
    reply_access(r, value, len);
}

void api_access_cache_key(int64_t session, int64_t registration, char key[API_CACHE_KEY_MAX])
{
    snprintf(key, API_CACHE_KEY_MAX, "usher:v1:access:%lld:%lld", (long long)session,
             (long long)registration);
}

/* A ticket code is ASCII: a header with other bytes is none (Latin-1 or broken UTF-8). */
static bool printable_ascii(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    }
    return true;
}

/*
 * The code from the query string, else from X-Ticket-Code, into out; false
 * when answered 422: neither given, or one that does not fit (a header
 * that does not fit is refused even beside the query's code).
 */
static bool ticket_code(api_req *r, char *out, size_t len)
{
    const char *header = api_header(r, "X-Ticket-Code");
    int found;

    if (header != NULL && (strlen(header) >= len || !printable_ascii(header))) {
        api_reply_invalid(r, "X-Ticket-Code",
                          "X-Ticket-Code must be at most %zu printable ASCII characters", len - 1);
        return false;
    }
    found = api_query_param(r, "ticket_code", out, len);
    if (found == 0 && header != NULL) {
        memcpy(out, header, strlen(header) + 1);
        return true;
    }
    if (found != 1)
        api_reply_invalid(r, "ticket_code",
                          "ticket_code (or X-Ticket-Code) is required (the code on the ticket)");
    return found == 1;
}

void route_session_access(api_req *r)
{
    static const char forged[] = "{\"access\":false,\"reason\":\"invalid_code\"}";
    char code[USHER_TICKET_CODE_MAX + 16];
    access_step *step;
    int64_t event = 0, registration = 0;

    if (!ticket_code(r, code, sizeof(code)))
        return;
    if (usher_ticket_verify(r->loop->srv->ticket_key, code, &event, &registration) != USHER_OK) {
        reply_access(r, forged, sizeof(forged) - 1);
        return;
    }
    step = usher_calloc(1, sizeof(*step));
    step->event = event;
    step->registration = registration;
    api_access_cache_key(r->ids[0], registration, step->key);
    r->state = step;
    api_cache_get(r, "access", step->key, cached);
}
