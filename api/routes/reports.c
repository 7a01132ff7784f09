/*
 * Organizer reports and job status: POST /v1/events/{id}/reports records a
 * report and its report.attendees or report.checkins job with
 * platform/report.c's statement (202 with their ids), GET
 * /v1/reports/{id} and GET /v1/jobs/{id} follow it. Completed jobs are
 * deleted by the engine, so a job's status after completion comes from the
 * report that names it. Organizers see only their events' reports and
 * their jobs; admins see every job.
 */
#include <stdio.h>
#include <string.h>

#include "../validate.h"
#include "../wake_after_commit.h"
#include "inttext.h"
#include "report.h"
#include "routes.h"
#include "query.h"
#include "reply.h"

/* A report as JSON; while its job lives, the job's state and progress show through. */
#define REPORT_JSON                                                                             \
    "json_build_object('id', r.id, 'event_id', r.event_id, 'kind', r.kind, 'format', r.format," \
    " 'state', CASE WHEN r.state IN ('queued', 'running') AND j.state IN ('dead', 'cancelled')" \
    "   THEN 'failed' WHEN r.state = 'queued' AND j.state = 'running' THEN 'running'"           \
    "   ELSE r.state END,"                                                                      \
    " 'progress', greatest(r.progress, coalesce(j.progress, 0)), 'rows', r.rows,"               \
    " 'document_id', r.document_id,"                                                            \
    " 'download', CASE WHEN r.document_id IS NOT NULL"                                          \
    "   THEN '/v1/content/' || r.document_id END,"                                              \
    " 'error', coalesce(r.error, CASE WHEN j.state IN ('dead', 'cancelled')"                    \
    "   THEN j.errors->-1->>'error' END),"                                                      \
    " 'job_id', r.job_id, 'created_at', r.created_at, 'finished_at', r.finished_at)"

static const char *const report_kinds[] = { "attendees", "checkins", NULL };
static const char *const formats[] = { "csv", "pdf", NULL };

static void requested(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;

    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        /* Either kind: both wake (one window's NOTIFY for whichever queues they use). */
        api_wake_kind(r->loop, "report.attendees");
        api_wake_kind(r->loop, "report.checkins");
    }
    api_reply_row(arg, res, errmsg, 202, "event");
}

void route_report_create(api_req *r)
{
    usher_report_request req = { .event_id = r->ids[0],
                                 .format = "csv",
                                 .requested_by = usher_role_name(r->auth.role),
                                 .request_id = r->request_id };
    usher_stmt s;

    if (!api_get_enum(r, "kind", true, report_kinds, &req.kind) ||
        !api_get_enum(r, "format", false, formats, &req.format))
        return;
    if (r->auth.role != USHER_ROLE_ADMIN)
        req.organizer_id = r->auth.organizer_id;
    if (usher_report_create_stmt(&s, r->loop->srv->cfg, &req) != USHER_OK) {
        api_reply_error(r, 500, "internal", "out of memory");
        usher_stmt_release(&s);
        return;
    }
    api_query(r, s.sql, s.nparams, s.params, requested);
    usher_stmt_release(&s);
}

static void got_report(PGresult *res, const char *errmsg, void *arg)
{
    api_reply_row(arg, res, errmsg, 200, "report");
}

void route_report_get(api_req *r)
{
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX];
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org) };

    api_query(r,
              "SELECT " REPORT_JSON "::text FROM reports r"
              " JOIN events e ON e.id = r.event_id"
              " LEFT JOIN usher_jobs j ON j.id = r.job_id"
              " WHERE r.id = $1 AND ($2::bigint IS NULL OR e.organizer_id = $2)",
              2, params, got_report);
}

static void got_job(PGresult *res, const char *errmsg, void *arg)
{
    api_reply_row(arg, res, errmsg, 200, "job");
}

void route_job_get(api_req *r)
{
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX];
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org) };

    /* A live job (with its report, if any); else the report of a finished one. */
    api_query(r,
              "SELECT coalesce("
              " (SELECT json_build_object('id', j.id, 'queue', j.queue, 'kind', j.kind,"
              "   'state', j.state, 'attempt', j.attempt, 'max_attempts', j.max_attempts,"
              "   'progress', j.progress, 'run_at', j.run_at,"
              "   'last_error', j.errors->-1->>'error',"
              "   'report', (SELECT " REPORT_JSON " FROM reports r WHERE r.job_id = j.id))"
              "  FROM usher_jobs j WHERE j.id = $1 AND ($2::bigint IS NULL OR EXISTS"
              "   (SELECT 1 FROM reports r JOIN events e ON e.id = r.event_id"
              "    WHERE r.job_id = j.id AND e.organizer_id = $2))),"
              " (SELECT json_build_object('id', r.job_id, 'kind', 'report.' || r.kind,"
              "   'state', CASE r.state WHEN 'done' THEN 'completed' ELSE r.state END,"
              "   'progress', r.progress, 'report', " REPORT_JSON ")"
              "  FROM reports r JOIN events e ON e.id = r.event_id"
              "  LEFT JOIN usher_jobs j ON j.id = r.job_id"
              "  WHERE r.job_id = $1 AND j.id IS NULL"
              "   AND ($2::bigint IS NULL OR e.organizer_id = $2)))::text",
              2, params, got_job);
}
