/*
 * Shared commits for single-job enqueues. Threads of one process that
 * each call usher_enqueue on their own connection pay one commit (one WAL
 * flush, one round trip) per job. Calling usher_enqueue_shared with one
 * usher_enqueue_group instead lets concurrent calls share a commit: the
 * first caller that finds no write in flight becomes the leader, takes
 * every job waiting in the group (its own first) and writes them with one
 * usher_enqueue_batch on its own store, which commits once; the others wait
 * and return that commit's result for their job. A call therefore returns
 * only after its job is durable, as usher_enqueue does, and a lone caller
 * writes alone at once (no timer, no added latency).
 *
 * A batch refused as a whole (one job invalid, or the database failing)
 * is written again one job at a time, so each call gets its own job's
 * outcome: a bad job never fails another caller's.
 */
#ifndef USHER_ENQUEUE_GROUP_H
#define USHER_ENQUEUE_GROUP_H

#include <stdint.h>

#include "enqueue.h"

typedef struct usher_enqueue_group usher_enqueue_group;

/* A group; NULL when out of memory. Free it after every call returned. */
USHER_MUSTCHECK usher_enqueue_group *usher_enqueue_group_new(void);
void usher_enqueue_group_free(usher_enqueue_group *g);

/*
 * usher_enqueue, sharing a commit with concurrent calls on g. st is the
 * caller's own store, idle (not inside a transaction: the jobs of a
 * leader's batch commit together), used only while this call leads.
 * job is borrowed until the call returns. On failure st's errstr says why.
 */
USHER_MUSTCHECK usher_err usher_enqueue_shared(usher_enqueue_group *g, usher_store *st,
                                               const usher_enqueue_opts *job, usher_enqueued *out);

/*
 * What g has written so far: commits (statements that wrote a batch, a
 * batch refused and written again one job at a time counting once) and the
 * jobs they carried. For benchmarks and metrics: jobs / commits is how
 * well calls share.
 */
void usher_enqueue_group_stats(usher_enqueue_group *g, uint64_t *commits, uint64_t *jobs);

#endif
