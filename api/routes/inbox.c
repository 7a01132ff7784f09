/*
 * GET /v1/me/notifications?ticket_code=CODE: an attendee's inbox
 * (written by notify.inbox jobs). The ticket code is the credential: its
 * signature is checked before the database is asked, and it names the
 * registration whose notifications are listed, newest first.
 */
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>

#include "inttext.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

static void listed(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;

    api_add_header(r, "Cache-Control", "private, no-cache");
    api_reply_row(r, res, errmsg, 200, "registration");
}

void route_inbox(api_req *r)
{
    struct evkeyvalq query;
    const char *code;
    int64_t event = 0, registration = 0;
    char reg[USHER_INT_TEXT_MAX];

    if (api_query_params(r, &query) != 0) {
        api_reply_error(r, 400, "bad_request", "the query string is malformed");
        return;
    }
    code = evhttp_find_header(&query, "ticket_code");
    if (code == NULL)
        code = api_header(r, "X-Ticket-Code");
    if (code == NULL ||
        usher_ticket_verify(r->loop->srv->ticket_key, code, &event, &registration) != USHER_OK) {
        evhttp_clear_headers(&query);
        api_reply_error(r, 401, "unauthorized", "a valid ticket_code is required");
        return;
    }
    evhttp_clear_headers(&query);
    const char *params[] = { api_id_text(registration, reg) };

    api_query(r,
              "SELECT json_build_object('registration_id', $1::bigint,"
              " 'notifications', coalesce(json_agg(json_build_object('id', n.id,"
              "  'title', n.title, 'body', n.body, 'created_at', n.created_at,"
              "  'read_at', n.read_at) ORDER BY n.created_at DESC, n.id DESC), '[]'::json))::text"
              " FROM (SELECT * FROM notifications WHERE registration_id = $1"
              "  ORDER BY created_at DESC, id DESC LIMIT 100) n",
              1, params, listed);
}
