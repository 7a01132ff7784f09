/*
 * Jobs that API statements enqueue in their own transaction, described as
 * templates (engine/enqueue.h's usher_enqueue_template) for the SQL side of
 * the enqueue, usher_enqueue_templates()
 * (schemas/migrations/0012_job_writes.sql): the kind's queue, priority,
 * attempts and timeout come from the config, like every other enqueue.
 * Each template made for a request carries the request's X-Request-Id
 * ("request_id", kept in usher_jobs.request_id, not in the payload), so
 * the worker's log lines of its jobs, and of the jobs those chain, name it.
 */
#ifndef USHER_API_JOBS_H
#define USHER_API_JOBS_H

#include <jansson.h>

#include "config.h"
#include "error.h"
#include "request.h"

/*
 * A job of kind with payload (its reference is taken) as a template, for
 * the request whose X-Request-Id is request_id (NULL or "": none); id_field
 * as api_job_add's. NULL out of memory.
 */
USHER_MUSTCHECK json_t *api_job_template(const usher_config *cfg, const char *kind, json_t *payload,
                                         const char *id_field, const char *request_id);

/*
 * Appends to templates (a JSON array) a job of kind for the request r,
 * with payload (its reference is taken); id_field, if not NULL, is the
 * payload field that the statement fills with the new row's id. Returns 0,
 * or -1 out of memory.
 */
int api_job_add(json_t *templates, const api_req *r, const char *kind, json_t *payload,
                const char *id_field);

/*
 * Marks the template added last: the statement sets its payload's field
 * at_field to the transaction's time (RFC 3339 UTC), so the job carries
 * when its event happened. Returns 0, or -1 out of memory or when empty.
 */
int api_job_stamp(json_t *templates, const char *at_field);

/*
 * Marks the template added last: a statement that knows the event of the
 * row it changes (usher_cancel_registration) sets its payload's field
 * event_field to that event's id. Returns 0, or -1 out of memory or when empty.
 */
int api_job_for_event(json_t *templates, const char *event_field);

/*
 * A "counted" analytics.rollup job with payload (its reference is taken),
 * dated by the statement (payload "at"), as a one-element template list:
 * a batch statement writes one per distinct template with the number of
 * items it counted, so it is no one request's (no request id). NULL out
 * of memory.
 */
USHER_MUSTCHECK json_t *api_counted_job(const api_req *r, json_t *payload);

/*
 * One job of kind with payload (its reference is taken) and id_field (or
 * NULL) as api_job_add makes it, as a one-element template list in JSON
 * text (the caller frees it); NULL out of memory.
 */
USHER_MUSTCHECK char *api_one_job(const api_req *r, const char *kind, json_t *payload,
                                  const char *id_field);

/*
 * The index.document job of one row of type ("event", "session" or
 * "attendee"), its id filled from the statement's row, as a one-element
 * template list in JSON text (the caller frees it); NULL out of memory.
 */
USHER_MUSTCHECK char *api_index_job(const api_req *r, const char *type);

/*
 * The notify.webhook template for usher_enqueue_webhooks() as JSON text
 * (the caller frees it), or NULL out of memory. The server keeps one
 * without a request id (srv->webhook_template) for the check-in batches,
 * whose statement serves several requests.
 */
USHER_MUSTCHECK char *api_webhook_template(const usher_config *cfg);

/* The same template carrying r's request id (the caller frees it); NULL out of memory. */
USHER_MUSTCHECK char *api_request_webhook_template(const api_req *r);

/* The same as JSON (the caller's reference); NULL out of memory. */
USHER_MUSTCHECK json_t *api_request_webhook(const api_req *r);

#endif
