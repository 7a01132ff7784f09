/*
 * Rate limits: token buckets kept in Redis by one Lua script, so every loop
 * thread and every API host shares them. Each class has its own allowance
 * per minute (api.rate_*); a bucket holds at most a sixth of it (ten
 * seconds' worth, at least 10), so short bursts pass. Over the limit: 429
 * with Retry-After. Redis down or slow: the request passes (the limiter
 * protects the database, it must not take the door down with it).
 *
 *   write   registration and check-in: per client address and per token
 *   read    every other public /v1 route: per client address
 *   manage  organizer and admin routes: per token (per address if none)
 *   auth    bearer tokens the database did not know, per address: a lookup
 *           (a token cache miss) waits for none, but is refused while the
 *           address's failures used up its bucket, so guessing tokens
 *           cannot make every request a query (scanners behind a venue's
 *           one address, with valid tokens, are never held back by it)
 * api.rate_per_minute = 0 turns them all off.
 */
#ifndef USHER_API_RATELIMIT_H
#define USHER_API_RATELIMIT_H

#include "request.h"

typedef enum api_rate_class {
    API_RATE_NONE,
    API_RATE_WRITE,
    API_RATE_READ,
    API_RATE_MANAGE,
    API_RATE_AUTH,
} api_rate_class;

/*
 * Calls next(r) when the class allows it; otherwise answers 429 itself,
 * first freeing r->state (NULL, or one malloc'd step the caller parked
 * there for next).
 */
void api_rate_limit(api_req *r, api_rate_class cls, void (*next)(api_req *r));

/* Takes one token from the class's buckets for r, answering nothing (a failed token lookup). */
void api_rate_charge(api_req *r, api_rate_class cls);

#endif
