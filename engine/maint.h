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
#include <stdint.h>

#include "config.h"
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
 *
 * Nothing is rescued (*rescued = 0, USHER_OK) until this session's server
 * process has lived settle_ms. After the database restarted or failed over
 * every session is new, and the leases that ran out while it was down
 * belong to workers that could not renew them: they renew once they have
 * reconnected, and rescuing first would run their jobs a second time (an
 * email sent twice). 0 rescues at once (an operator's usherctl maintain).
 */
USHER_MUSTCHECK usher_err usher_maint_rescue(usher_store *st, int64_t settle_ms, size_t *rescued);

/*
 * The settle the maintenance leader gives (see usher_maint_rescue): the
 * longest lease a heartbeat grants under cfg (lease_grace_ms + 2 x the
 * largest heartbeat_ms of its pools) plus a worker's reconnect.
 */
int64_t usher_maint_settle_ms(const usher_config *cfg);

/*
 * Deletes dead and cancelled jobs older than dead_retention_hours and
 * statistics older than stats_retention_hours. Leader only.
 */
USHER_MUSTCHECK usher_err usher_maint_prune(usher_store *st, size_t *jobs_pruned);

#endif
