/*
 * Ticket types after their creation (issue 15): PATCH /v1/ticket-types/{id}
 * renames one or changes its capacity, POST .../close and .../reopen stop
 * and restart its sales, GET reads it. One statement each,
 * usher_ticket_type_update() (schemas/migrations/0014), which also audits
 * the change. A new capacity splits capacity and sold over the stripes
 * again under every stripe's lock; one below what is sold is refused with
 * 409 capacity_below_sold and the sold count. Registration on a closed
 * type answers 409 sales_closed (usher_register). An organizer reaches
 * only its own events' ticket types (another's answers 404); admins every
 * one. Each change drops the event's cached details.
 */
#include <stdlib.h>
#include <string.h>

#include "../audit.h"
#include "../validate.h"
#include "inttext.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

#define CAPACITY_MAX 10000000

static void changed(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    const char *status;

    if (!api_result_ok(r, res, errmsg))
        return;
    status = PQgetvalue(res, 0, 0);
    if (strcmp(status, "not_found") == 0) {
        api_reply_error(r, 404, "not_found", "no such ticket type");
        return;
    }
    if (strcmp(status, "below_sold") == 0) {
        long long sold = strtoll(PQgetvalue(res, 0, 2), NULL, 10);

        api_reply_json(r, 409,
                       json_pack("{s:{s:s,s:s,s:I}}", "error", "code", "capacity_below_sold",
                                 "message", "the capacity cannot go below the seats already sold",
                                 "sold", (json_int_t)sold));
        return;
    }
    api_event_cache_changed(r->loop, strtoll(PQgetvalue(res, 0, 1), NULL, 10));
    api_reply_raw(r, 200, "application/json", PQgetvalue(res, 0, 3),
                  (size_t)PQgetlength(res, 0, 3));
}

/* Runs usher_ticket_type_update with the fields given (NULL: kept). */
static void update(api_req *r, const char *name, const char *capacity, const char *sales_open,
                   const char *action)
{
    r->audited = true;
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], actor[API_AUDIT_ACTOR_MAX];
    const char *params[] = { api_id_text(r->ids[0], id),
                             api_scope_org(r, org),
                             name,
                             capacity,
                             sales_open,
                             api_audit_actor(r, actor),
                             action };

    api_query(r,
              "SELECT status, event_id, sold, ticket_type::text FROM usher_ticket_type_update("
              "$1, $2, $3, $4::int, $5::boolean, $6::jsonb, $7)",
              7, params, changed);
}

void route_ticket_type_update(api_req *r)
{
    const char *name = NULL;
    int64_t capacity = -1;
    char cap[USHER_INT_TEXT_MAX];

    if (!api_get_string(r, "name", false, 1, 200, &name) ||
        !api_get_int(r, "capacity", false, 0, CAPACITY_MAX, &capacity))
        return;
    usher_int_text(capacity, cap);
    update(r, name, capacity >= 0 ? cap : NULL, NULL, "ticket_type.update");
}

void route_ticket_type_close(api_req *r)
{
    update(r, NULL, NULL, "false", "ticket_type.close");
}

void route_ticket_type_reopen(api_req *r)
{
    update(r, NULL, NULL, "true", "ticket_type.reopen");
}

static void got(PGresult *res, const char *errmsg, void *arg)
{
    api_reply_row(arg, res, errmsg, 200, "ticket type");
}

void route_ticket_type_get(api_req *r)
{
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX];
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org) };

    api_query(r,
              "SELECT usher_ticket_type_json(t.id)::text FROM ticket_types t"
              " JOIN events e ON e.id = t.event_id"
              " WHERE t.id = $1 AND ($2::bigint IS NULL OR e.organizer_id = $2)",
              2, params, got);
}
