/*
 * Webhook deliveries for operators: list the delivery log
 * (webhook_deliveries, one row per attempt of notify.webhook) and replay
 * one delivery, that is enqueue a new notify.webhook job that sends the
 * same event and data to the same endpoint again. The replay is a new
 * delivery in every other way: its envelope carries the new job's id, a
 * fresh timestamp and signature, and it is logged like any other.
 */
#ifndef USHER_WEBHOOK_REPLAY_H
#define USHER_WEBHOOK_REPLAY_H

#include <jansson.h>
#include <stdint.h>

#include "store.h"

/*
 * Enqueues the replay of delivery delivery_id on the queue of kind
 * notify.webhook ([kind.notify.webhook] queue); *job_id receives the new
 * job's id. USHER_ERR_NOT_FOUND for an unknown delivery, USHER_ERR_INVALID
 * when its endpoint is disabled (the reason says why), USHER_ERR_CONFIG
 * when notify.webhook has no queue; the store's errstr says more.
 */
USHER_MUSTCHECK usher_err usher_webhook_replay(usher_store *st, int64_t delivery_id,
                                               int64_t *job_id);

/*
 * The latest deliveries, newest first, of one endpoint (endpoint_id > 0)
 * or all, at most limit (1..10000): a JSON array of objects with id,
 * endpoint_id, job_id, attempt, event, status_code, latency_ms, error
 * and created_at (null where the log has none). The caller owns *out.
 */
USHER_MUSTCHECK usher_err usher_webhook_deliveries(usher_store *st, int64_t endpoint_id, int limit,
                                                   json_t **out);

#endif
