/*
 * Waking workers after the API enqueued jobs. A NOTIFY inside the
 * registration's transaction would serialise every registration's commit
 * on PostgreSQL's notify lock (engine/wake.h), so the statements enqueue
 * silently and mark their queues here; a per-loop timer then sends one
 * short NOTIFY statement for all marked queues every notify_debounce_ms,
 * after the commits it announces.
 */
#ifndef USHER_API_WAKE_AFTER_COMMIT_H
#define USHER_API_WAKE_AFTER_COMMIT_H

#include "error.h"
#include "request.h"

typedef struct api_wake api_wake;

USHER_MUSTCHECK api_wake *api_wake_new(api_loop *loop);
void api_wake_free(api_wake *w);

/* Marks the queue of job kind for the next wake-up. */
void api_wake_kind(api_loop *loop, const char *kind);

#endif
