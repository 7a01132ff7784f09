/*
 * Report requests. Creating one is one statement, which usher-api's route
 * runs on its own connection and usher_report_create on a store: it draws
 * the report's id, enqueues its job through the SQL side of the enqueue
 * (usher_enqueue_templates, the payload naming the report) and inserts the
 * report naming the job, all selected from the event (and its organizer,
 * when the caller is scoped to one), so a missing event writes nothing
 * instead of raising a foreign-key error that would abort a caller's
 * transaction.
 * Reading one joins the job's row while it lives, so a job that died or
 * was cancelled without its handler marking the report still reads as
 * failed.
 */
#include "report.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "enqueue.h"
#include "queues.h"
#include "wake.h"

#define DEFAULT_QUEUE "reports"

/*
 * $1 event, $2 organizer (NULL: any), $3 kind, $4 format, $5 requested_by,
 * $6 the job's template, $7 the queues to wake ({} or the job's).
 */
static const char create_sql[] =
    "WITH ev AS (SELECT id FROM events WHERE id = $1"
    "   AND ($2::bigint IS NULL OR organizer_id = $2)),"
    " rid AS (SELECT nextval(pg_get_serial_sequence('reports', 'id')) AS id FROM ev),"
    " job AS (SELECT j.id FROM rid,"
    "  usher_enqueue_templates(jsonb_build_array($6::jsonb), rid.id) j),"
    " rep AS (INSERT INTO reports (id, event_id, kind, format, requested_by, job_id)"
    "  OVERRIDING SYSTEM VALUE SELECT rid.id, $1, $3, $4, $5, job.id FROM rid, job"
    "  RETURNING id, job_id),"
    " wake AS (SELECT usher_wake($7::text[]) AS n)"
    " SELECT json_build_object('report_id', rep.id, 'job_id', rep.job_id,"
    "  'status', '/v1/reports/' || rep.id)::text, rep.id, rep.job_id"
    " FROM rep, wake";

/* The job is gone once it completed; dead or cancelled, it failed. */
#define JOB_FAILED "(r.state IN ('queued', 'running') AND j.state IN ('dead', 'cancelled'))"

static const char get_sql[] =
    "SELECT coalesce((SELECT json_build_object("
    " 'id', r.id, 'event_id', r.event_id, 'kind', r.kind, 'format', r.format,"
    " 'state', CASE WHEN " JOB_FAILED " THEN 'failed'"
    "   WHEN r.state = 'queued' AND j.state = 'running' THEN 'running' ELSE r.state END,"
    " 'progress', r.progress, 'rows', r.rows, 'document_id', r.document_id,"
    " 'error', CASE WHEN " JOB_FAILED
    "   THEN coalesce(r.error, j.errors->-1->>'error', 'the job was ' || j.state) ELSE r.error END,"
    " 'requested_by', r.requested_by, 'job_id', r.job_id,"
    " 'created_at', r.created_at, 'finished_at', r.finished_at)"
    " FROM reports r LEFT JOIN usher_jobs j ON j.id = r.job_id WHERE r.id = $1), 'null')";

static USHER_MUSTCHECK usher_err check_request(usher_store *st, const usher_report_request *req)
{
    if (req == NULL || req->event_id <= 0)
        return usher_store_fail(st, USHER_ERR_INVALID, "report: event_id must be positive");
    if (req->kind == NULL ||
        (strcmp(req->kind, "attendees") != 0 && strcmp(req->kind, "checkins") != 0))
        return usher_store_fail(st, USHER_ERR_INVALID,
                                "report: kind must be \"attendees\" or \"checkins\"");
    if (req->format == NULL || (strcmp(req->format, "csv") != 0 && strcmp(req->format, "pdf") != 0))
        return usher_store_fail(st, USHER_ERR_INVALID, "report: format must be \"csv\" or \"pdf\"");
    if (req->requested_by != NULL && strlen(req->requested_by) > USHER_REPORT_REQUESTER_MAX)
        return usher_store_fail(st, USHER_ERR_INVALID,
                                "report: requested_by is longer than %d bytes",
                                USHER_REPORT_REQUESTER_MAX);
    return USHER_OK;
}

/* The job's template: the kind's settings, its queue req->queue if set; NULL out of memory. */
static json_t *job_template(const usher_config *cfg, const usher_report_request *req)
{
    char kind[32];
    json_t *t;

    snprintf(kind, sizeof(kind), "report.%s", req->kind);
    t = usher_enqueue_template(cfg, kind, DEFAULT_QUEUE, NULL);
    if (t != NULL &&
        (json_object_set_new(t, "id_field", json_string("report_id")) != 0 ||
         (req->queue != NULL && json_object_set_new(t, "queue", json_string(req->queue)) != 0) ||
         (req->request_id != NULL &&
          json_object_set_new(t, "request_id", json_string(req->request_id)) != 0))) {
        json_decref(t);
        t = NULL;
    }
    return t;
}

static USHER_MUSTCHECK usher_err build(usher_stmt *s, const usher_report_request *req,
                                       const json_t *job, bool wake)
{
    char *text = usher_need(json_dumps(job, JSON_COMPACT));
    usher_buf *queues;

    s->sql = create_sql;
    usher_stmt_int(s, 0, req->event_id);
    if (req->organizer_id != 0)
        usher_stmt_int(s, 1, req->organizer_id);
    usher_stmt_text(s, 2, req->kind);
    usher_stmt_text(s, 3, req->format);
    usher_stmt_text(s, 4, req->requested_by != NULL ? req->requested_by : "");
    usher_stmt_text(s, 5, text);
    queues = usher_stmt_array(s, 6);
    if (wake)
        usher_buf_array_text(queues, json_string_value(json_object_get(job, "queue")));
    free(text);
    return usher_stmt_finish(s, 7);
}

usher_err usher_report_create_stmt(usher_stmt *s, const usher_config *cfg,
                                   const usher_report_request *req)
{
    json_t *job;
    usher_err err;

    *s = (usher_stmt){ 0 };
    job = job_template(cfg, req);
    err = job != NULL ? build(s, req, job, false) : USHER_ERR_NOMEM;
    json_decref(job);
    return err;
}

/* The request's statement on st: checks the queue, wakes it as usher_enqueue would. */
static USHER_MUSTCHECK usher_err create(usher_store *st, const usher_report_request *req,
                                        const json_t *job, int64_t *report_id, int64_t *job_id)
{
    const char *queue = json_string_value(json_object_get(job, "queue"));
    int debounce_ms = usher_store_config(st)->notify_debounce_ms;
    usher_stmt s = { 0 };
    PGresult *res = NULL;
    usher_err err = usher_queues_check(st, queue);

    if (err == USHER_OK &&
        (err = build(&s, req, job, usher_wake_due(queue, debounce_ms))) != USHER_OK)
        err = usher_store_fail(st, err, "out of memory building the report request");
    if (err == USHER_OK)
        err = usher_store_exec(st, s.sql, s.nparams, s.params, &res);
    if (err == USHER_OK && PQntuples(res) != 1)
        err = usher_store_fail(st, USHER_ERR_NOT_FOUND, "no event %" PRId64, req->event_id);
    if (err == USHER_OK) {
        *report_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        *job_id = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    }
    PQclear(res);
    usher_stmt_release(&s);
    return err;
}

usher_err usher_report_create(usher_store *st, const usher_report_request *req, int64_t *report_id,
                              int64_t *job_id)
{
    usher_err err = check_request(st, req);
    json_t *job;

    if (err != USHER_OK)
        return err;
    job = job_template(usher_store_config(st), req);
    if (job == NULL)
        return usher_store_fail(st, USHER_ERR_NOMEM, "out of memory building the report's job");
    err = create(st, req, job, report_id, job_id);
    json_decref(job);
    return err;
}

usher_err usher_report_get(usher_store *st, int64_t report_id, json_t **out)
{
    return usher_store_json_one(st, get_sql, report_id, "report", out);
}
