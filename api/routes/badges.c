/*
 * Badge sheets for an event's organizer (issue 15): POST
 * /v1/events/{id}/badges enqueues a pdf.badge job (workers render the
 * confirmed attendees' badges with libharu, workers/handlers/pdf_badges.c)
 * in the statement that checks the event, and answers 202 with its id, as
 * reports do; the request is audited. GET /v1/events/{id}/badges lists the
 * sheets made so far, newest first, each with the job that made it and its
 * download (GET /v1/content/{id}, for the event's organizer and admins).
 * An organizer reaches only its own events (another's answer 404).
 */
#include <stdlib.h>

#include "../audit.h"
#include "../jobs.h"
#include "../wake_after_commit.h"
#include "inttext.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

static void requested(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;

    if (!api_result_ok(r, res, errmsg))
        return;
    if (PQntuples(res) != 1) {
        api_reply_error(r, 404, "not_found", "no such event");
        return;
    }
    api_wake_kind(r->loop, "pdf.badge");
    api_reply_json(r, 202,
                   json_pack("{s:I,s:I}", "event_id", (json_int_t)r->ids[0], "job_id",
                             (json_int_t)strtoll(PQgetvalue(res, 0, 0), NULL, 10)));
}

void route_badges_create(api_req *r)
{
    r->audited = true;
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], actor[API_AUDIT_ACTOR_MAX],
        *jobs = api_one_job(r, "pdf.badge", json_object(), "event_id");

    if (jobs == NULL) {
        api_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org), jobs,
                             api_audit_actor(r, actor) };

    api_query(r,
              "WITH ev AS (SELECT e.id FROM events e"
              "  WHERE e.id = $1 AND ($2::bigint IS NULL OR e.organizer_id = $2)),"
              " job AS (SELECT j.id FROM ev, LATERAL usher_enqueue_templates($3::jsonb, ev.id) j),"
              " aud AS (SELECT usher_audit($4::jsonb, 'badges.request', 'event', ev.id, NULL,"
              "  jsonb_build_object('job_id', job.id)) FROM ev, job)"
              " SELECT (SELECT id FROM job) FROM ev WHERE (SELECT count(*) FROM aud) >= 0",
              4, params, requested);
    free(jobs);
}

static void listed(PGresult *res, const char *errmsg, void *arg)
{
    api_reply_row(arg, res, errmsg, 200, "event");
}

void route_badges_list(api_req *r)
{
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX];
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org) };

    api_query(r,
              "SELECT json_build_object('sheets', coalesce((SELECT json_agg(json_build_object("
              "  'document_id', d.id, 'job_id', d.job_id, 'size', d.size,"
              "  'created_at', d.created_at, 'download', '/v1/content/' || d.id)"
              "  ORDER BY d.id DESC) FROM documents d"
              "  WHERE d.event_id = e.id AND d.kind = 'badges'), '[]'::json))::text"
              " FROM events e WHERE e.id = $1 AND ($2::bigint IS NULL OR e.organizer_id = $2)",
              2, params, listed);
}
