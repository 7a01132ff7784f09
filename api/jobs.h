/*
 * Jobs that API statements enqueue in their own transaction, described as
 * templates (engine/enqueue.h's usher_enqueue_template) for the SQL side of
 * the enqueue, usher_enqueue_templates()
 * (schemas/migrations/0012_job_writes.sql): the kind's queue, priority,
 * attempts and timeout come from the config, like every other enqueue.
 */
#ifndef USHER_API_JOBS_H
#define USHER_API_JOBS_H

#include <jansson.h>

#include "config.h"
#include "error.h"

/*
 * Appends to templates (a JSON array) a job of kind with payload (its
 * reference is taken); id_field, if not NULL, is the payload field that
 * the statement fills with the new row's id. Returns 0, or -1 out of memory.
 */
int api_job_add(json_t *templates, const usher_config *cfg, const char *kind, json_t *payload,
                const char *id_field);

/*
 * Marks the template added last: the statement sets its payload's field
 * at_field to the transaction's time (RFC 3339 UTC), so the job carries
 * when its event happened. Returns 0, or -1 out of memory or when empty.
 */
int api_job_stamp(json_t *templates, const char *at_field);

/*
 * One job of kind with payload (its reference is taken) and id_field (or
 * NULL) as api_job_add makes it, as a one-element template list in JSON
 * text (the caller frees it); NULL out of memory.
 */
USHER_MUSTCHECK char *api_one_job(const usher_config *cfg, const char *kind, json_t *payload,
                                  const char *id_field);

/*
 * The index.document job of one row of type ("event", "session" or
 * "attendee"), its id filled from the statement's row, as a one-element
 * template list in JSON text (the caller frees it); NULL out of memory.
 */
USHER_MUSTCHECK char *api_index_job(const usher_config *cfg, const char *type);

/*
 * The notify.webhook template for usher_enqueue_webhooks() as JSON text
 * (the caller frees it), or NULL out of memory.
 */
USHER_MUSTCHECK char *api_webhook_template(const usher_config *cfg);

#endif
