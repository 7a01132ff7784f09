/*
 * An event's registrations for its organizer (issue 15): GET
 * /v1/events/{id}/registrations lists them by id, filtered by status,
 * ticket type and whether they were checked in, a page at a time (cursor:
 * the last id seen); POST /v1/registrations/{id}/resend-confirmation mails
 * the confirmation again with the same ticket PDF, as a new email.send job
 * (so a new Message-ID, which workers/handlers/email_send.c derives from
 * the job), audited. A cancelled registration is refused (409
 * registration_cancelled), and so is one whose ticket is not rendered yet
 * (409 ticket_not_ready: its confirmation is still on the way). An
 * organizer reaches only its own events' registrations (another's answer
 * 404); admins every one.
 */
#include <stdlib.h>
#include <string.h>

#include "../audit.h"
#include "../jobs.h"
#include "../validate.h"
#include "../wake_after_commit.h"
#include "alloc.h"
#include "inttext.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX     1000

static const char *const statuses[] = { "confirmed", "cancelled", NULL };

static void listed(PGresult *res, const char *errmsg, void *arg)
{
    api_reply_row(arg, res, errmsg, 200, "event");
}

void route_registration_list(api_req *r)
{
    static const char *const booleans[] = { "true", "false", NULL };
    const char *status = NULL, *checked_in = NULL;
    int64_t cursor = 0, ticket_type = 0, limit = PAGE_DEFAULT;
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], cur[USHER_INT_TEXT_MAX],
        tt[USHER_INT_TEXT_MAX], lim[USHER_INT_TEXT_MAX];

    if (!api_query_word(r, "status", statuses, &status) ||
        !api_query_word(r, "checked_in", booleans, &checked_in) ||
        !api_query_whole(r, "ticket_type_id", 1, INT64_MAX, &ticket_type) ||
        !api_query_whole(r, "cursor", 1, INT64_MAX, &cursor) ||
        !api_query_whole(r, "limit", 1, PAGE_MAX, &limit))
        return;
    usher_int_text(limit, lim);
    const char *params[] = { api_id_text(r->ids[0], id),
                             api_scope_org(r, org),
                             api_id_text(cursor, cur),
                             status,
                             api_id_text(ticket_type, tt),
                             checked_in,
                             lim };

    /* By id; next_cursor (the last id) when the page is full. */
    api_query(
        r,
        "SELECT json_build_object('registrations', coalesce(json_agg(x.j ORDER BY x.id)"
        "  FILTER (WHERE x.id IS NOT NULL), '[]'::json),"
        " 'next_cursor', CASE WHEN count(x.id) = $7::int THEN max(x.id) END)::text"
        " FROM events e LEFT JOIN LATERAL (SELECT g.id, json_build_object('id', g.id,"
        "   'event_id', g.event_id, 'ticket_type_id', g.ticket_type_id, 'name', g.name,"
        "   'email', g.email, 'status', g.status, 'created_at', g.created_at,"
        "   'checked_in_at', c.scanned_at, 'gate', c.gate) AS j"
        "  FROM registrations g LEFT JOIN scans c ON c.registration_id = g.id AND c.result = 'ok'"
        "  WHERE g.event_id = e.id AND ($3::bigint IS NULL OR g.id > $3)"
        "   AND ($4::text IS NULL OR g.status::text = $4)"
        "   AND ($5::bigint IS NULL OR g.ticket_type_id = $5)"
        "   AND ($6::boolean IS NULL OR (c.id IS NOT NULL) = $6)"
        "  ORDER BY g.id LIMIT $7::int) x ON true"
        " WHERE e.id = $1 AND ($2::bigint IS NULL OR e.organizer_id = $2) GROUP BY e.id",
        7, params, listed);
}

static void resent(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;

    if (!api_result_ok(r, res, errmsg))
        return;
    if (PQntuples(res) != 1) {
        api_reply_error(r, 404, "not_found", "no such registration");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "confirmed") != 0) {
        api_reply_error(r, 409, "registration_cancelled",
                        "the registration is cancelled: there is no ticket to send");
        return;
    }
    if (PQgetisnull(res, 0, 1)) {
        api_reply_error(r, 409, "ticket_not_ready",
                        "the ticket is still being made; its confirmation goes out with it");
        return;
    }
    api_wake_kind(r->loop, "email.send");
    api_reply_json(r, 202,
                   json_pack("{s:I,s:I,s:I}", "registration_id", (json_int_t)r->ids[0], "job_id",
                             (json_int_t)strtoll(PQgetvalue(res, 0, 2), NULL, 10), "document_id",
                             (json_int_t)strtoll(PQgetvalue(res, 0, 1), NULL, 10)));
}

void route_registration_resend(api_req *r)
{
    r->audited = true;
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], actor[API_AUDIT_ACTOR_MAX],
        *jobs = api_one_job(r, "email.send",
                            json_pack("{s:s}", "template", "registration_confirmation"),
                            "registration_id");

    if (jobs == NULL) {
        api_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org), jobs,
                             api_audit_actor(r, actor) };

    /* The ticket already made (documents, kind ticket) goes with the new mail. */
    api_query(r,
              "WITH reg AS (SELECT g.id, g.status::text AS status, d.id AS doc"
              "  FROM registrations g JOIN events e ON e.id = g.event_id"
              "  LEFT JOIN documents d ON d.registration_id = g.id AND d.kind = 'ticket'"
              "  WHERE g.id = $1 AND ($2::bigint IS NULL OR e.organizer_id = $2)),"
              " job AS (SELECT j.id FROM reg, LATERAL usher_enqueue_templates(jsonb_build_array("
              "   jsonb_set($3::jsonb -> 0, '{payload,document_id}', to_jsonb(reg.doc))),"
              "   reg.id) j WHERE reg.status = 'confirmed' AND reg.doc IS NOT NULL),"
              " aud AS (SELECT usher_audit($4::jsonb, 'registration.resend_confirmation',"
              "  'registration', reg.id, NULL, jsonb_build_object('job_id', job.id,"
              "  'document_id', reg.doc)) FROM reg, job)"
              " SELECT reg.status, reg.doc, (SELECT id FROM job) FROM reg"
              " WHERE (SELECT count(*) FROM aud) >= 0",
              4, params, resent);
    free(jobs);
}
