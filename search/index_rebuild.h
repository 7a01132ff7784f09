/*
 * usherctl search rebuild: the whole search index again from PostgreSQL,
 * replaced at once (one Xapian revision), which replication then carries
 * to every API host like any other commit.
 */
#ifndef USHER_INDEX_REBUILD_H
#define USHER_INDEX_REBUILD_H

#include <stddef.h>

#include "config.h"
#include "error.h"
#include "index_sources.h"
#include "store.h"

#define USHER_INDEX_REBUILD_PAGE 1000 /* rows read per statement */

/*
 * Rebuilds cfg's index (search.index_dir, created if it is missing) from
 * the database st: takes the index's writer (waiting up to lock_wait_ms for
 * a worker's batch to finish), then reads every row of every source in one
 * REPEATABLE READ snapshot and replaces every document in one transaction.
 * Taking the writer before reading keeps an index.document job from being
 * overwritten with older data: a change committed after a row was read has
 * a job that reads it again after the rebuild. counts[i] receives how many
 * documents usher_index_sources[i] gave. On failure nothing changes.
 */
USHER_MUSTCHECK usher_err usher_index_rebuild(usher_store *st, const usher_config *cfg,
                                              int lock_wait_ms, size_t counts[USHER_INDEX_NSOURCES],
                                              char *errbuf, size_t errlen);

#endif
