/*
 * Queues: declared in the config, written to usher_queues by migrate,
 * paused and resumed by operators, and summarised for dashboards.
 */
#ifndef USHER_QUEUES_H
#define USHER_QUEUES_H

#include <jansson.h>
#include <stdbool.h>

#include "store.h"

/* Inserts or updates every queue of the config (name, pool). */
USHER_MUSTCHECK usher_err usher_queues_sync(usher_store *st);

/*
 * USHER_OK when the queue is declared in the database, else
 * USHER_ERR_UNKNOWN_QUEUE. Known names are cached for the process's life
 * (queues are never dropped), so only a miss asks the database.
 */
USHER_MUSTCHECK usher_err usher_queues_check(usher_store *st, const char *name);

/* Pause or resume a queue: claims skip paused queues. Resume wakes claimers. */
USHER_MUSTCHECK usher_err usher_queues_pause(usher_store *st, const char *name);
USHER_MUSTCHECK usher_err usher_queues_resume(usher_store *st, const char *name);

/*
 * Statistics for every queue, as a JSON array of objects: name, pool,
 * paused, available (runnable now), scheduled (available in the future),
 * running, dead, cancelled, oldest_available_age_s (null if none),
 * completed_last_minute, failed_last_minute, completed_last_hour,
 * failed_last_hour. The caller owns *out (json_decref). "Last minute"
 * covers the current and the previous minute bucket.
 */
USHER_MUSTCHECK usher_err usher_queues_stats(usher_store *st, json_t **out);

#endif
