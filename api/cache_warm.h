/*
 * Cache warm-up: the door answers of sessions about to start, stored before
 * anyone asks. Loop 0 of each usher-api lists, every WARM_TICK_S, the
 * sessions not cancelled that run now or start within
 * api.cache_warm_window_s. For each it claims the session for this round in
 * Redis (SET NX, for api.cache_access_ttl_s plus half of api.cache_stale_s:
 * one process per session and round, however many API hosts there are),
 * reads the event's details into the cache, and then the session's answer
 * for every registration of its event, a keyset batch of WARM_BATCH per
 * statement, stored in one round trip per batch (api_cache_put_many: the
 * same keys and values a door miss stores, fresh for the access TTL). The
 * claim expires before the answers do, so the next round stores them again
 * while they are still served: a session in the window never goes cold.
 *
 * Correctness is the door's: a held key (a cancellation in progress) is
 * never overwritten, and a batch whose read is older than half the hold
 * when its answer arrives is not stored at all, so it cannot outlive a
 * cancellation that committed after it was read. With Redis down nothing is
 * claimed and nothing read; the doors ask the database as before.
 */
#ifndef USHER_API_CACHE_WARM_H
#define USHER_API_CACHE_WARM_H

#include "error.h"
#include "request.h"

#define WARM_TICK_S 5
#define WARM_BATCH  1000

typedef struct api_cache_warm api_cache_warm;

/* Starts looking on loop's base (loop 0), the first time at once. Before the loop's thread runs. */
USHER_MUSTCHECK usher_err api_cache_warm_start(api_loop *loop, api_cache_warm **out);

/*
 * After the loop's thread stopped and before the loop is freed; a statement
 * or call still pending frees it when the pool or Redis answers it.
 */
void api_cache_warm_free(api_cache_warm *w);

#endif
