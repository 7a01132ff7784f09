/*
 * The platform's job handlers, registered by kind in handler.c:
 *   pdf.ticket    {registration_id | registration_ids + request_ids?, page?: "A6"|"A4",
 *                 then_email?: bool}: the lists are a registration batch's sales (0038)
 *   pdf.badge     {event_id}: badges of its confirmed registrations
 *   email.send    {registration_id, template, document_id?, message_id?} or
 *                 {to, to_name?, template, vars}
 *   message.fanout {message_id}: one batch of a message to attendees
 *   notify.inbox  {registration_id, title, body?}
 *   notify.webhook {endpoint_id, event, data}
 *   index.document {type: "event"|"session"|"attendee", id | ids + request_ids?,
 *                 delete?: bool}
 *   report.attendees, report.checkins {report_id}: a row of reports (platform/report.h),
 *                 or {scope: "all"}: one CSV report per current event
 *   schedule.fire {schedule_id}: a schedule anchored to an event comes due
 *   analytics.rollup {event_id, metric: "registration"|"cancellation"|"checkin"|
 *                 "session_access", gate?: a check-in's door (default ""),
 *                 at?: RFC 3339 timestamp (default: when the job became
 *                 runnable, else now), count?: 1..10^9 (default 1)}
 * index.document, analytics.rollup and email.send also run in batches
 * (usher_batch_fn): one index commit, one statement, or one SMTP session for
 * the jobs a child holds.
 */
#ifndef USHER_JOB_HANDLERS_H
#define USHER_JOB_HANDLERS_H

#include "handler.h"

void usher_run_pdf_ticket(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                          usher_handler_result *r);
void usher_run_pdf_badge(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                         usher_handler_result *r);
void usher_run_email_send(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                          usher_handler_result *r);
void usher_batch_email_send(usher_handler_ctx *ctx, const usher_job *jobs, json_t *const *payloads,
                            size_t n, usher_handler_result *results);
void usher_run_index_document(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                              usher_handler_result *r);
void usher_batch_index_document(usher_handler_ctx *ctx, const usher_job *jobs,
                                json_t *const *payloads, size_t n, usher_handler_result *results);
void usher_batch_analytics_rollup(usher_handler_ctx *ctx, const usher_job *jobs,
                                  json_t *const *payloads, size_t n, usher_handler_result *results);
void usher_run_notify_webhook(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                              usher_handler_result *r);
void usher_run_notify_inbox(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                            usher_handler_result *r);
void usher_run_message_fanout(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                              usher_handler_result *r);
void usher_run_report(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                      usher_handler_result *r);
void usher_run_schedule_fire(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                             usher_handler_result *r);

/* Terminated by an entry whose kind is NULL. */
extern const usher_handler usher_job_handlers[];

/*
 * Turns a store failure into the job's outcome: not found and bad data are
 * permanent, a configuration problem or a database hiccup is a retry.
 */
void usher_handler_store_failed(usher_handler_result *r, usher_store *st, usher_err err,
                                const char *what);

/*
 * Wakes the claimers of queues (a text[] literal, e.g. "{email,notifications}")
 * after a handler's commit enqueued jobs there, so that they need not wait for
 * their poll. Best effort: a failure only leaves them to the poll.
 */
void usher_handler_wake(usher_store *st, const char *queues);

/* A positive integer field of payload, or 0 (and r set to PERMANENT) if absent or not one. */
int64_t usher_payload_id(json_t *payload, const char *field, usher_handler_result *r);

/*
 * The payload's list many (a job several rows share, 0038): 1 to max
 * positive integers, and then no field one. *list NULL when there is no
 * list; false (r set, PERMANENT) when it is bad.
 */
bool usher_payload_id_list(json_t *payload, const char *one, const char *many, size_t max,
                           json_t **list, usher_handler_result *r);

#endif
