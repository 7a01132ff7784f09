/*
 * Rate limits on registration and check-in: a token bucket per client
 * address and one per bearer token, kept in Redis by one Lua script so
 * every loop thread and every API host shares them. api.rate_per_minute
 * refills each bucket; a bucket holds at most a sixth of it (ten seconds'
 * worth, at least 10), so short bursts pass. Over the limit: 429 with
 * Retry-After. Redis down or slow: the request passes (the limiter
 * protects the database, it must not take the door down with it).
 */
#ifndef USHER_API_RATELIMIT_H
#define USHER_API_RATELIMIT_H

#include "api.h"

/* Calls next(r) when allowed; otherwise answers 429 itself. */
void api_rate_limit(api_req *r, void (*next)(api_req *r));

#endif
