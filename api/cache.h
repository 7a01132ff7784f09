/*
 * Cache-aside in Redis for shared reads (event details, session access
 * checks). An entry is "FRESH_UNTIL_MS|VALUE" and lives in Redis for its
 * TTL plus the stale window: a fresh hit is served; a stale hit is served
 * too while the first request to see it (holding a short lock) refreshes
 * it, so a hot key's expiry never sends every request to the database;
 * a miss, or Redis down or slow, falls through to PostgreSQL (a route may
 * collapse concurrent misses of one key into one read: flight.h).
 */
#ifndef USHER_API_CACHE_H
#define USHER_API_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "request.h"

/* [api] redis_timeout_ms: a cache (or limiter) slower than this is treated as a miss. */
int api_cache_timeout_ms(const api_loop *loop);

typedef enum api_cache_state { API_CACHE_MISS, API_CACHE_FRESH, API_CACHE_STALE } api_cache_state;

/*
 * Called once per lookup. For FRESH and STALE, value/len is the cached
 * value (valid during the call); for STALE, refresh is true when this
 * caller won the lock and should reload and store the value.
 */
typedef void (*api_cache_fn)(api_req *r, api_cache_state state, const char *value, size_t len,
                             bool refresh);

/* Looks key up; done runs on the loop (at once when Redis is down). */
void api_cache_get(api_req *r, const char *name, const char *key, api_cache_fn done);

/* Stores value under key, fresh for ttl_s and served stale for stale_s more. */
void api_cache_put(api_loop *loop, const char *key, const char *value, size_t len, int ttl_s,
                   int stale_s);

/*
 * Stores values[i] under keys[i] for i < n, as api_cache_put each, in one
 * round trip, except keys held (api_cache_hold) meanwhile. done(arg,
 * stored) runs once on the loop: stored is how many were stored, -1 when
 * Redis is down or did not answer within timeout_ms (then some may be).
 */
void api_cache_put_many(api_loop *loop, const char *const *keys, const char *const *values,
                        size_t n, int ttl_s, int stale_s, int timeout_ms,
                        void (*done)(void *arg, long long stored), void *arg);

/* Drops key (after a change). */
void api_cache_drop(api_loop *loop, const char *key);

/*
 * Drops keys[0..n) and keeps them empty for API_CACHE_HOLD_MS: lookups miss
 * and puts are refused meanwhile. For a change that must not be undone by a
 * request that read the database just before the change committed and
 * stores its answer just after (a cancelled registration's "yes" at a
 * session door). One round trip; done(arg, held) runs once on the loop,
 * held false when Redis is down or slow (the keys then expire by their TTL).
 * Not for hot keys: every lookup during the hold goes to the database.
 */
void api_cache_hold(api_loop *loop, const char *const *keys, size_t n,
                    void (*done)(void *arg, bool held), void *arg);

#define API_CACHE_HOLD_MS 5000
#define API_CACHE_HELD    "-" /* a held key's value: no "|", so a lookup misses */

#endif
