/*
 * Maintenance: lease rescue and retention pruning, done by exactly one
 * process at a time, the holder of a PostgreSQL session advisory lock.
 * When the leader dies its connection closes, the lock is released and
 * the next process to ask takes over.
 */
#ifndef USHER_MAINT_H
#define USHER_MAINT_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

/* The advisory lock key (classid 0, objid this value in pg_locks). */
#define USHER_MAINT_LOCK_KEY 1431521362

/* Tries to become the leader; *leader says whether this session holds the lock. */
USHER_MUSTCHECK usher_err usher_maint_lead(usher_store *st, bool *leader);

/* Gives leadership up (no-op if not held). */
USHER_MUSTCHECK usher_err usher_maint_resign(usher_store *st);

/*
 * Returns running jobs whose lease expired to the queue as a failed
 * attempt ("lease expired"), under the retry policy (dead if out of
 * attempts). USHER_ERR_NOT_LEADER unless this session holds the lock.
 */
USHER_MUSTCHECK usher_err usher_maint_rescue(usher_store *st, size_t *rescued);

/*
 * Deletes dead and cancelled jobs older than dead_retention_hours and
 * statistics older than stats_retention_hours. Leader only.
 */
USHER_MUSTCHECK usher_err usher_maint_prune(usher_store *st, size_t *jobs_pruned);

#endif
