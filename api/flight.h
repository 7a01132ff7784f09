/*
 * Single flight for cache misses: while one database read of a key is in
 * flight in this usher-api process, a request on any loop thread that
 * misses the same key waits for that read's answer instead of reading it
 * again, so K concurrent misses of a cold (or just dropped) key cost one
 * statement, not K. The read runs on the first asker's loop, stores its row
 * in the cache once, and hands a copy to every waiter on the waiter's own
 * loop. A waiter waits at most API_FLIGHT_WAIT_MS; then, or when the shared
 * read failed, it is told to read on its own (so errors are answered as
 * before, and a lost read never strands anyone). The reads are public
 * cache fills: they may go to a replica (api/replica.h).
 */
#ifndef USHER_API_FLIGHT_H
#define USHER_API_FLIGHT_H

#include <stddef.h>

#include "request.h"

#define API_FLIGHT_WAIT_MS 2000

typedef enum api_flight_answer {
    API_FLIGHT_ROW,    /* value/len: the first column of the read's one row */
    API_FLIGHT_NO_ROW, /* the read found no row */
    API_FLIGHT_OWN     /* no shared answer: run the statement yourself */
} api_flight_answer;

/* Called once per join, on r's loop; value is valid during the call. */
typedef void (*api_flight_fn)(api_req *r, api_flight_answer answer, const char *value, size_t len);

typedef struct api_flight_read {
    const char *cache; /* the cache's name in the metrics ("event") */
    const char *key;   /* the cache key: one read per key at a time */
    const char *sql;   /* at most one row; the value is its first column */
    int nparams;
    const char *const *params; /* all borrowed: copied when the statement is queued */
    int ttl_s, stale_s;        /* a row is stored under key (api_cache_put) */
} api_flight_read;

/* Answers r's miss of read->key: with another request's read in flight, or with a new one. */
void api_flight_join(api_req *r, const api_flight_read *read, api_flight_fn done);

/*
 * After a change to what key caches (the change has committed): the read
 * in flight for key, if any, started before it, so misses from now on start
 * a new one, and its answer, still handed to those already waiting, is not
 * stored in the cache.
 */
void api_flight_forget(const char *key);

/*
 * After the loop threads have stopped, before their bases are freed: ends
 * every request still waiting (503, unsent) and frees its waiter. The reads
 * still queued land later, with no one to answer, when the pools are freed.
 */
void api_flight_stop(void);

#endif
