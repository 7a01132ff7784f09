/*
 * A loop thread's PostgreSQL connections: a few non-blocking libpq
 * connections (engine/pgloop.h) on the thread's event base. A statement
 * goes to the connected connection with the fewest statements waiting, so
 * one slow query holds up only the requests queued behind it there. While
 * none is up, statements wait in the pool for a bounded time.
 */
#ifndef USHER_API_PGPOOL_H
#define USHER_API_PGPOOL_H

#include <event2/event.h>
#include <stdbool.h>

#include "pgloop.h"

typedef struct api_pgpool api_pgpool;

/*
 * hooks (copied; may be NULL) go to every connection, e.g. to time
 * statements. wait_ms: how long a statement waits for a connection when
 * none is up (0: it fails at once).
 */
USHER_MUSTCHECK usher_err api_pgpool_new(struct event_base *base, const char *conninfo, int size,
                                         int wait_ms, const usher_pgloop_hooks *hooks,
                                         api_pgpool **out);
void api_pgpool_free(api_pgpool *pool);

/*
 * Queues a statement (see usher_pgloop_query). With no connection up it
 * waits for one, up to wait_ms; then done gets res NULL. USHER_ERR_DB, with
 * nothing queued and done never called, when wait_ms is 0 and no
 * connection is up.
 */
USHER_MUSTCHECK usher_err api_pgpool_query(api_pgpool *pool, const char *sql, int nparams,
                                           const char *const *params, usher_pg_result_fn done,
                                           void *arg);

/*
 * Gating, for a pool of replicas (api/replica.h): from this call on, a
 * connection takes statements from api_pgpool_query only while its owner
 * says it is usable, and every (re)connect makes it unusable until the
 * owner has looked at it again.
 */
void api_pgpool_gate(api_pgpool *pool);
void api_pgpool_set_usable(api_pgpool *pool, int i, bool usable);
bool api_pgpool_usable(const api_pgpool *pool, int i); /* connected, and usable if gated */
int api_pgpool_usable_count(const api_pgpool *pool);

/* Queues a statement on connection i itself (USHER_ERR_DB while it is down). */
USHER_MUSTCHECK usher_err api_pgpool_query_on(api_pgpool *pool, int i, const char *sql, int nparams,
                                              const char *const *params, usher_pg_result_fn done,
                                              void *arg);

int api_pgpool_connected(const api_pgpool *pool); /* connections up */
int api_pgpool_busy(const api_pgpool *pool);      /* connections with statements waiting */
int api_pgpool_size(const api_pgpool *pool);

#endif
