/*
 * Organizer reports: a request for an event's attendee or check-in list
 * as CSV or PDF. A request is a row of `reports` and a report.attendees or
 * report.checkins job, written together; the job (workers/handlers/
 * report.c) records its progress and, when done, the document that holds
 * the file. Completed jobs are deleted, so the report row is what the API
 * shows afterwards.
 */
#ifndef USHER_REPORT_H
#define USHER_REPORT_H

#include <jansson.h>
#include <stdint.h>

#include "config.h"
#include "stmt.h"
#include "store.h"

#define USHER_REPORT_REQUESTER_MAX 200 /* bytes of requested_by */

/* What to report. Every field but queue, requested_by and organizer_id is required. */
typedef struct usher_report_request {
    int64_t event_id;
    const char *kind;         /* "attendees" or "checkins" */
    const char *format;       /* "csv" or "pdf" */
    const char *requested_by; /* who asked (a token's name, an email); NULL: "" */
    const char *queue;        /* NULL: the queue of [kind.report.KIND], else "reports" */
    int64_t organizer_id;     /* 0: any; else the event must be this organizer's */
    const char *request_id;   /* the request (or job) that asked, for the logs; NULL: none */
} usher_report_request;

/*
 * Records the report and enqueues its job (payload {"report_id": N}) in one
 * statement: either both exist or neither. On a connection inside the
 * caller's transaction both join it. Errors: USHER_ERR_INVALID (bad kind,
 * format or requester), USHER_ERR_NOT_FOUND (no such event, or not
 * req->organizer_id's), USHER_ERR_UNKNOWN_QUEUE, USHER_ERR_DB; the store's
 * errstr says why.
 */
USHER_MUSTCHECK usher_err usher_report_create(usher_store *st, const usher_report_request *req,
                                              int64_t *report_id, int64_t *job_id);

/*
 * The same statement for a caller that runs it on its own connection
 * (usher-api, whose route has checked req): builds *s (release it with
 * usher_stmt_release) with no NOTIFY in it, as usher-api wakes the queue
 * after its commit. Its result is one row when the report was created,
 * none when the event does not exist (or is not req->organizer_id's):
 * {"report_id", "job_id", "status": "/v1/reports/ID"} as JSON text, the
 * report's id, the job's id. USHER_ERR_NOMEM.
 */
USHER_MUSTCHECK usher_err usher_report_create_stmt(usher_stmt *s, const usher_config *cfg,
                                                   const usher_report_request *req);

/*
 * The report as JSON: id, event_id, kind, format, state, progress, rows,
 * document_id, error, requested_by, job_id, created_at, finished_at. While
 * its job is still queued or running, state and progress follow the job;
 * a job that died without the handler saying so shows as failed with the
 * job's last error. The caller owns *out. USHER_ERR_NOT_FOUND if no such
 * report.
 */
USHER_MUSTCHECK usher_err usher_report_get(usher_store *st, int64_t report_id, json_t **out);

#endif
