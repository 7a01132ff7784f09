/*
 * Report requests. Creating one is three statements in one transaction:
 * insert the report (selected from events, so a missing event inserts
 * nothing instead of raising a foreign-key error that would abort a
 * caller's transaction), enqueue its job, and link the job to the report.
 * Reading one joins the job's row while it lives, so a job that died or
 * was cancelled without its handler marking the report still reads as
 * failed.
 */
#include "report.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enqueue.h"
#include "inttext.h"

#define DEFAULT_QUEUE "reports"

static const char insert_sql[] = "INSERT INTO reports (event_id, kind, format, requested_by)"
                                 " SELECT id, $2, $3, $4 FROM events WHERE id = $1 RETURNING id";

static const char link_sql[] = "UPDATE reports SET job_id = $2 WHERE id = $1";

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

/* The statements of a request, on a connection already inside a transaction. */
static USHER_MUSTCHECK usher_err create_in_transaction(usher_store *st,
                                                       const usher_report_request *req,
                                                       int64_t *report_id, int64_t *job_id)
{
    char event[USHER_INT_TEXT_MAX], id[USHER_INT_TEXT_MAX], job[USHER_INT_TEXT_MAX], kind[32],
        payload[64];
    const char *insert_params[] = { event, req->kind, req->format,
                                    req->requested_by != NULL ? req->requested_by : "" };
    const char *link_params[] = { id, job };
    const usher_kind_conf *kc;
    usher_enqueue_opts o = { .kind = kind, .payload = payload };
    usher_enqueued out;
    PGresult *res;
    usher_err err;

    usher_int_text(req->event_id, event);
    err = usher_store_exec(st, insert_sql, 4, insert_params, &res);
    if (err != USHER_OK)
        return err;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return usher_store_fail(st, USHER_ERR_NOT_FOUND, "no event %" PRId64, req->event_id);
    }
    snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    snprintf(kind, sizeof(kind), "report.%s", req->kind);
    snprintf(payload, sizeof(payload), "{\"report_id\":%s}", id);
    kc = usher_config_kind(usher_store_config(st), kind);
    o.queue = req->queue != NULL ? req->queue : kc->queue[0] != '\0' ? kc->queue : DEFAULT_QUEUE;
    err = usher_enqueue(st, &o, &out);
    if (err != USHER_OK)
        return err;
    usher_int_text(out.id, job);
    err = usher_store_exec(st, link_sql, 2, link_params, &res);
    if (err != USHER_OK)
        return err;
    PQclear(res);
    *report_id = strtoll(id, NULL, 10);
    *job_id = out.id;
    return USHER_OK;
}

usher_err usher_report_create(usher_store *st, const usher_report_request *req, int64_t *report_id,
                              int64_t *job_id)
{
    PGconn *conn = usher_store_conn(st);
    bool own = PQtransactionStatus(conn) == PQTRANS_IDLE;
    usher_err err = check_request(st, req);

    if (err != USHER_OK)
        return err;
    if (own && (err = usher_store_command(st, "BEGIN")) != USHER_OK)
        return err;
    err = create_in_transaction(st, req, report_id, job_id);
    if (own && err == USHER_OK)
        return usher_store_command(st, "COMMIT");
    if (own)
        usher_store_rollback(st);
    return err;
}

usher_err usher_report_get(usher_store *st, int64_t report_id, json_t **out)
{
    return usher_store_json_one(st, get_sql, report_id, "report", out);
}
