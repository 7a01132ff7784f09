/*
 * Who may read a stored document (GET/HEAD /v1/content/{id}):
 *   - an admin: everything;
 *   - an organizer: the documents of its own events (another organizer's
 *     answer 404, as if absent, like its events);
 *   - a ticket code (?ticket_code= or X-Ticket-Code): session materials
 *     ('content') of the code's event while its registration is confirmed,
 *     and the ticket PDF ('ticket') of that very registration;
 *   - reports and badge sheets: organizer and admin only.
 * A code's signature is checked before anything else: a forged one answers
 * 403 without a statement. No token and no code answers 401; credentials
 * that do not reach the document, 403.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "inttext.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

typedef struct code_claim {
    int64_t event, registration; /* 0, 0: no code presented */
} code_claim;

/* Columns of the lookup. */
enum { C_KIND, C_EVENT, C_ORGANIZER, C_REGISTRATION, C_FILENAME, C_TYPE, C_SHA, C_SIZE, C_STATUS };

static int64_t id_at(PGresult *res, int col)
{
    return PQgetisnull(res, 0, col) ? 0 : strtoll(PQgetvalue(res, 0, col), NULL, 10);
}

/* The code grants this document: materials of its event, or its own ticket. */
static bool code_grants(const code_claim *code, PGresult *res)
{
    const char *kind = PQgetvalue(res, 0, C_KIND);

    if (code->registration == 0)
        return false;
    if (strcmp(kind, "content") == 0)
        return code->event == id_at(res, C_EVENT) &&
               strcmp(PQgetvalue(res, 0, C_STATUS), "confirmed") == 0;
    if (strcmp(kind, "ticket") == 0)
        return code->registration == id_at(res, C_REGISTRATION);
    return false;
}

static void looked_up(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    code_claim *code = r->state;
    bool staff, granted;

    r->state = NULL;
    if (!api_result_ok(r, res, errmsg)) {
        free(code);
        return;
    }
    if (PQntuples(res) != 1) {
        free(code);
        api_reply_error(r, 404, "not_found", "no such document");
        return;
    }
    staff = r->auth.role == USHER_ROLE_ADMIN ||
            (r->auth.role == USHER_ROLE_ORGANIZER && id_at(res, C_ORGANIZER) != 0 &&
             api_may_manage(r, id_at(res, C_ORGANIZER)));
    granted = staff || code_grants(code, res);
    if (!granted && code->registration == 0 && r->auth.role == USHER_ROLE_ORGANIZER) {
        free(code);
        api_reply_error(r, 404, "not_found", "no such document");
        return;
    }
    if (!granted && code->registration == 0 && r->auth.role == USHER_ROLE_NONE) {
        free(code);
        api_reply_error(r, 401, "unauthorized",
                        "this document needs a bearer token or a ticket code");
        return;
    }
    free(code);
    if (!granted) {
        api_reply_error(r, 403, "forbidden", "these credentials do not give this document");
        return;
    }
    api_content_send(r, PQgetvalue(res, 0, C_SHA), PQgetvalue(res, 0, C_TYPE),
                     PQgetvalue(res, 0, C_FILENAME),
                     strtoull(PQgetvalue(res, 0, C_SIZE), NULL, 10));
}

void route_content_get(api_req *r)
{
    char code_text[USHER_TICKET_CODE_MAX + 16], id[USHER_INT_TEXT_MAX], event[USHER_INT_TEXT_MAX],
        registration[USHER_INT_TEXT_MAX];
    const char *header = api_header(r, "X-Ticket-Code");
    int got = api_query_param(r, "ticket_code", code_text, sizeof(code_text));
    code_claim *code = usher_calloc(1, sizeof(*code));

    if (got == 0 && header != NULL) {
        got = strlen(header) < sizeof(code_text) ? 1 : -1;
        if (got == 1)
            memcpy(code_text, header, strlen(header) + 1);
    }
    if (got != 0 &&
        (got < 0 || usher_ticket_verify(r->loop->srv->ticket_key, code_text, &code->event,
                                        &code->registration) != USHER_OK)) {
        free(code);
        api_reply_error(r, 403, "invalid_code", "the ticket code is not valid");
        return;
    }
    r->state = code;
    const char *params[] = { api_id_text(r->ids[0], id), api_id_text(code->event, event),
                             api_id_text(code->registration, registration) };

    if (!api_query(r,
                   "SELECT d.kind, d.event_id, e.organizer_id, d.registration_id, d.filename,"
                   " d.content_type, d.sha256, d.size,"
                   " (SELECT g.status FROM registrations g WHERE g.id = $3 AND g.event_id = $2)"
                   " FROM documents d LEFT JOIN events e ON e.id = d.event_id WHERE d.id = $1",
                   3, params, looked_up))
        free(code);
}
