/*
 * Reads that a replica may serve, for callers on a blocking store:
 * usher-worker's report jobs and usher-api's offload threads (the
 * dashboard's queue statistics). usher-api's loops have their own,
 * asynchronous reader (api/replica.h).
 *
 * A replica ([database] read_url) serves a read only once it has replayed
 * everything the primary had when the read began: the primary is asked
 * for pg_current_wal_lsn() (one short call), then the replica until its
 * pg_last_wal_replay_lsn() reaches that, for at most max_replica_lag_ms.
 * So the read sees whatever its caller could have seen on the primary:
 * the report request that started the job, the pause an admin just made.
 * A replica that is paused, still behind at the bound, unreachable or
 * failing leaves the read to the primary, and is not tried again for
 * USHER_REPLICA_RETRY_MS, doubling up to USHER_REPLICA_RETRY_MAX_MS while it
 * keeps failing, so that a dead host does not cost every read a connect
 * timeout.
 */
#ifndef USHER_REPLICA_READER_H
#define USHER_REPLICA_READER_H

#include <stdbool.h>

#include "config.h"
#include "error.h"
#include "store.h"

/* After a replica could not be reached, failed a read or was behind: the first pause, the longest.
 */
#define USHER_REPLICA_RETRY_MS     5000
#define USHER_REPLICA_RETRY_MAX_MS 60000

typedef struct usher_replica_reader usher_replica_reader;

/* A reader for cfg (borrowed: it must outlive the reader). Without read_url it always picks the
 * primary. */
usher_replica_reader *usher_replica_reader_new(const usher_config *cfg);

/* Closes the replica connection. NULL is accepted. */
void usher_replica_reader_free(usher_replica_reader *rd);

/*
 * *reader = the store to read from: the replica's connection, caught up
 * with primary, or primary itself (no call at all without read_url).
 * Fails only when the primary fails its LSN call; primary's errstr says
 * why.
 */
USHER_MUSTCHECK usher_err usher_replica_reader_pick(usher_replica_reader *rd, usher_store *primary,
                                                    usher_store **reader);

/*
 * After a read on reader failed: true when reader was the replica's
 * connection, which is then closed (and not tried for
 * USHER_REPLICA_RETRY_MS); the caller runs the read again on the primary.
 * False when the primary failed: that failure is the caller's answer.
 */
bool usher_replica_reader_failed(usher_replica_reader *rd, const usher_store *reader);

#endif
