/*
 * usher-api's Prometheus metrics: requests by route, method and status,
 * latency histograms by route, cache hits and misses and the database
 * reads behind them, the database connections of every loop and how long
 * their statements take. Counters
 * are relaxed atomics shared by the loop threads; /metrics reads them
 * without stopping anyone.
 */
#ifndef USHER_API_METRICS_H
#define USHER_API_METRICS_H

#include <event2/buffer.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

typedef struct api_metrics api_metrics;
struct api_loop;
struct api_route;

USHER_MUSTCHECK api_metrics *api_metrics_new(const struct api_route *routes, size_t nroutes);
void api_metrics_free(api_metrics *m);

void api_metrics_request(api_metrics *m, const struct api_route *route, int status, double seconds);
void api_metrics_cache(api_metrics *m, const char *cache, int hit);
/*
 * A cache miss or refresh, by what answered it: a database read of its own
 * (API_CACHE_READ), another request's read of the same key (SHARED), or a
 * read of its own after waiting too long for another's (WAITED).
 */
enum { API_CACHE_READ, API_CACHE_SHARED, API_CACHE_WAITED, API_CACHE_NLOADS };
void api_metrics_cache_load(api_metrics *m, const char *cache, int how);
/*
 * n entries stored by the cache warm-up (api/cache_warm.h); a session it
 * warmed through, or found claimed by another process (elsewhere).
 */
void api_metrics_cache_warmed(api_metrics *m, const char *cache, long long n);
void api_metrics_warm_session(api_metrics *m, bool elsewhere);
/* A database statement: queued on its connection, then on the wire until answered. */
void api_metrics_statement(api_metrics *m, double queued_s, double ran_s);

/* Appends the exposition text; loops give the connection gauges. */
int api_metrics_render(api_metrics *m, struct api_loop *const *loops, int nloops,
                       struct evbuffer *out);

#endif
