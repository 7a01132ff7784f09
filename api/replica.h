/*
 * Reads from replicas ([database] read_url): each loop thread keeps a second
 * pool of connections (api/pgpool.h) on the replica URL beside its primary
 * pool, and a checker that measures every replica connection against the
 * primary's WAL position (api/replica_lag.h) every replica_check_ms. A
 * statement sent with api_read goes to a replica connection that is fresh
 * (within max_replica_lag_ms, replay not paused), else to the primary; a
 * read that fails on the replica (connection lost, a conflict with
 * recovery, anything) is sent again on the primary, so the caller sees
 * only the primary's answer. Without read_url every read goes to the
 * primary, as before. The README's "Read replicas" says which routes read
 * where.
 */
#ifndef USHER_API_REPLICA_H
#define USHER_API_REPLICA_H

#include <event2/buffer.h>
#include <stdbool.h>

#include "error.h"
#include "pgloop.h"

typedef struct api_replica api_replica;
struct api_loop;

/*
 * The loop's replica reader: *out is NULL (nothing to free) when the
 * configuration has no read_url. Call after the loop's primary pool
 * exists; free it after that pool (see api_replica_free).
 */
USHER_MUSTCHECK usher_err api_replica_new(struct api_loop *loop, api_replica **out);

/*
 * Closes the replica connections: reads pending there end with res NULL
 * (not sent to the primary, which is gone by then). NULL is accepted.
 */
void api_replica_free(api_replica *rep);

/*
 * Queues a read that may see data up to max_replica_lag_ms old (plus one
 * check interval) on a fresh replica, else on the primary; done gets the
 * answer of whichever served it last. Fails as api_pgpool_query on the
 * primary does.
 */
USHER_MUSTCHECK usher_err api_read(struct api_loop *loop, const char *sql, int nparams,
                                   const char *const *params, usher_pg_result_fn done, void *arg);

/*
 * Calls fn(loop, key) on the loop once a read on any replica sees what
 * committed before this call (after max_replica_lag_ms and a few checks):
 * a cache entry dropped after a change is dropped again then, in case a
 * replica read stored the old value meanwhile. Nothing without read_url.
 */
void api_replica_after_lag(struct api_loop *loop,
                           void (*fn)(struct api_loop *loop, const char *key), const char *key);

/*
 * Counts a read made off the loops (api/blocking.c, with its own replica
 * reader) in the metrics below: served by a replica or by the primary,
 * fell_back when the replica failed it first.
 */
void api_replica_count_read(bool by_replica, bool fell_back);

/* The replica connections that take reads now (0 without read_url). */
int api_replica_in_use(const api_replica *rep);

/* Appends the replica metrics over the loops (Prometheus text); -1 on failure. */
int api_replica_render(struct api_loop *const *loops, int nloops, struct evbuffer *out);

#endif
