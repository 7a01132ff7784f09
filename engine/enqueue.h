/*
 * Enqueue: the one way a job is born. Nothing else inserts into usher_jobs:
 *
 *   - C callers (usherctl, periodic jobs, handlers that chain jobs, webhook
 *     replay, reports, benchmarks) call usher_enqueue / usher_enqueue_batch;
 *   - SQL statements that enqueue inside their own transaction (usher-api's
 *     registrations, check-ins, cancellations, event and content changes,
 *     reports) call the SQL side of this module, the function family of
 *     schemas/migrations/0012_job_writes.sql: usher_enqueue_templates (and
 *     usher_enqueue_webhooks, usher_checkin_batch over it), with templates
 *     that usher_enqueue_template builds here.
 *
 * Both apply the same rules: the kind's priority, attempts and timeout from
 * the config unless the caller sets them; one live job per (queue, unique
 * key), a second one is skipped (here: its id returned, existed=true);
 * run_at from run_at_us, else now + delay_ms; a NOTIFY on the queue's
 * channel (wake.h) wakes the claimers. What happens to a job afterwards is
 * claim.h (claim, heartbeat, complete, fail), fate.h, admin.h (retry,
 * discard, cancel), maint.h (lease rescue, pruning) and job_progress.h.
 *
 * The statement runs on the store's connection as it is: inside the
 * caller's open transaction the jobs exist only if that transaction
 * commits; on an idle connection the statement commits by itself.
 */
#ifndef USHER_ENQUEUE_H
#define USHER_ENQUEUE_H

#include <jansson.h>
#include <stddef.h>

#include "config.h"
#include "job.h"
#include "store.h"

/*
 * Enqueues n jobs; out[i] receives the id of jobs[i] (or, when a live job
 * holds its unique key, that job's id with existed=true). All jobs are
 * validated before any is written: a bad one refuses the whole batch with
 * USHER_ERR_INVALID, _PAYLOAD, _TOO_LARGE or _UNKNOWN_QUEUE and the index
 * and reason in the store's errstr.
 */
USHER_MUSTCHECK usher_err usher_enqueue_batch(usher_store *st, const usher_enqueue_opts *jobs,
                                              size_t n, usher_enqueued *out);

/* usher_enqueue_batch for one job. */
USHER_MUSTCHECK usher_err usher_enqueue(usher_store *st, const usher_enqueue_opts *job,
                                        usher_enqueued *out);

/*
 * A job of kind as a template for the SQL side (usher_enqueue_templates):
 * {queue, kind, priority, max_attempts, timeout_ms, payload} with the
 * kind's values from cfg, its queue that of [kind.KIND] or else
 * default_queue. Takes payload's reference (NULL: no payload, {}). A
 * statement may add id_field / at_field (usher_template_payload). NULL out
 * of memory. The caller owns the result.
 */
USHER_MUSTCHECK json_t *usher_enqueue_template(const usher_config *cfg, const char *kind,
                                               const char *default_queue, json_t *payload);

#endif
