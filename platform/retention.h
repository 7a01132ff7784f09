/*
 * The data lifecycle (issue 16): what the event platform keeps and for how
 * long, by the configuration's [retention]. The maintenance leader runs a
 * pass every [retention] interval_minutes:
 *   - partitions (schemas/migrations/0025_retention.sql): webhook_deliveries
 *     has one a week and analytics_minute one a month, created
 *     partitions_ahead_days ahead of now; a week of deliveries is dropped once
 *     it ended webhook_delivery_days ago, a month of rollups once it ended
 *     reporting_days ago and every event with rows in it ended that long ago;
 *   - batched deletes (bounded statements) for the tables that cannot be
 *     partitioned: scans and inbox entries of events that ended
 *     reporting_days ago, documents of events that ended document_days ago
 *     (rows, and the bytes no other document names, in either store), and
 *     usher_effects rows older than effects_days (never younger than
 *     [engine] dead_retention_hours, while a job that recorded one may run).
 * A value of 0 days keeps that data forever. Every step is idempotent: a
 * pass cut short is finished by the next. A step waits at most 2 s for a
 * table lock someone else holds, then fails (SQLSTATE 55P03); the other
 * steps still run, and the pass reports the first failure.
 */
#ifndef USHER_RETENTION_H
#define USHER_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

/* What one pass did. */
typedef struct usher_retention_report {
    size_t partitions_created;
    size_t partitions_dropped;
    size_t scans;         /* rows deleted */
    size_t notifications; /* rows deleted */
    size_t documents;     /* rows deleted */
    size_t blobs;         /* stored contents removed (blobs or files) */
    size_t effects;       /* rows deleted */
} usher_retention_report;

/*
 * One pass as of now (Unix seconds: the clock is the caller's, so tests and
 * the benchmark can simulate a year). st is idle (each step is a
 * transaction of its own). *out counts what was done, even when a step
 * failed (USHER_ERR_DB, the first failure; the store's errstr says why,
 * of the last); the other steps are done.
 */
USHER_MUSTCHECK usher_err usher_retention_run(const usher_config *cfg, usher_store *st, int64_t now,
                                              usher_retention_report *out);

/* The total of out's counters: whether a pass did anything. */
size_t usher_retention_total(const usher_retention_report *out);

#endif
