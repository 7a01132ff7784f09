/*
 * Periodic jobs: each [periodic.NAME] of the config is a cron expression
 * (UTC, engine/cron.h) and a job to enqueue at its slots. The maintenance
 * leader calls usher_periodic_fire every few seconds; the table
 * usher_periodic (schemas/migrations/0003_periodic.sql) makes each slot
 * enqueue exactly one job across hosts and leader changes.
 */
#ifndef USHER_PERIODIC_H
#define USHER_PERIODIC_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/*
 * For each periodic of the store's config, finds the latest slot at or
 * before now_s (epoch seconds; the caller passes time(NULL), tests a fixed
 * time) that is after the slot recorded in usher_periodic. If there is
 * one, a single transaction on st moves the record to that slot, only if
 * it is still older (UPDATE ... WHERE last_slot < slot), and if it moved,
 * enqueues the job on st with the unique key "periodic:NAME:SLOT" (SLOT in
 * epoch seconds), then commits. A caller that loses the race for a slot
 * finds the record moved and enqueues nothing, so any number of processes
 * may call this at once; the leader calls it only to save the others the
 * work. *fired receives how many jobs were enqueued.
 *
 * - First sight of a periodic (no row): records its latest slot at or
 *   before now_s (the current minute if it has none in 366 days) and fires
 *   nothing. There is no backfill of the past.
 * - Slots missed while no leader ran: the latest fires once, late, when a
 *   leader next calls; older ones are skipped.
 * - A changed cron expression keeps the recorded slot: the new
 *   expression's latest slot after it, if any has passed, fires at once.
 *
 * st must have no transaction open. Every periodic is tried even when one
 * fails (its transaction rolled back, its slot tried again next call); the
 * first failure is returned (USHER_ERR_DB, _UNKNOWN_QUEUE, ...) with the
 * store's errstr naming the periodic.
 */
USHER_MUSTCHECK usher_err usher_periodic_fire(usher_store *st, int64_t now_s, size_t *fired);

#endif
