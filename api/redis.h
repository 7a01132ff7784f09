/*
 * A loop thread's Redis connection (hiredis async on the loop's event
 * base), authenticating on every connection when the URL has a password,
 * reconnecting with backoff. Redis is an accelerator here, never a
 * dependency: while it is down every call says so at once, and a call that
 * gets no answer within its timeout is answered NULL, so a request never
 * waits long on the cache or the rate limiter.
 */
#ifndef USHER_API_REDIS_H
#define USHER_API_REDIS_H

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

typedef struct api_redis api_redis;

/* reply is NULL when Redis is down, the connection broke or the timeout passed. */
typedef void (*api_redis_fn)(redisReply *reply, void *arg);

/*
 * Starts connecting to url (api/redis_url.h: AUTH with its password, SELECT
 * its database). NULL only for a bad URL, with the reason in why (which
 * never repeats the URL: it may hold the password).
 */
USHER_MUSTCHECK api_redis *api_redis_new(struct event_base *base, const char *url, char *why,
                                         size_t whylen);
void api_redis_free(api_redis *rd);

bool api_redis_up(const api_redis *rd);

/*
 * Sends a command. With fn, it is called exactly once: with the reply, or
 * NULL after timeout_ms. Returns false (fn not called) when Redis is down.
 * fn NULL: fire and forget.
 */
bool api_redis_call(api_redis *rd, int timeout_ms, api_redis_fn fn, void *arg, int argc,
                    const char **argv, const size_t *lens);

#endif
