/*
 * A small pool of worker threads for the work a loop thread must not do
 * itself: disk writes (uploads into the document store) and, later, other
 * blocking calls such as Xapian searches. One pool serves the process.
 *
 * api_offload(loop, work, done, arg) runs work(arg) on a worker, then
 * done(arg) back on the loop's own thread, so done may answer the request
 * (or queue its next statement) like any database callback. work must not
 * touch the loop or its request: hand it copies (the request's client may
 * go away meanwhile, which frees its evhttp request and buffers).
 */
#ifndef USHER_API_OFFLOAD_H
#define USHER_API_OFFLOAD_H

#include <stdbool.h>

#include "request.h"

typedef void (*api_offload_fn)(void *arg);

/* Starts the pool's nthreads workers (before the loops take requests). */
USHER_MUSTCHECK usher_err api_offload_start(int nthreads);

/*
 * Stops the pool once the loop threads have stopped (joined), before
 * their bases are freed: the workers finish the work already queued, and
 * every done that its loop did not get to run is called here, on the
 * calling thread, so no request is left holding memory.
 */
void api_offload_stop(void);

/*
 * Queues work; false (nothing queued, done never runs) when the pool is
 * not running or memory ran out: the caller answers 503 itself.
 */
USHER_MUSTCHECK bool api_offload(api_loop *loop, api_offload_fn work, api_offload_fn done,
                                 void *arg);

/*
 * A resource each worker opens on first use and keeps for the work that
 * follows (a database connection, a search index reader): one static
 * slot per kind of resource, `static const api_offload_slot readers = {
 * open_reader, close_reader };`. open makes one from arg, or returns NULL
 * with *err and the reason in why. The pool closes what a worker keeps
 * when the worker ends.
 */
typedef struct api_offload_slot {
    void *(*open)(const void *arg, usher_err *err, char *why, size_t whylen);
    void (*close)(void *value);
} api_offload_slot;

/*
 * From work: this worker's resource of slot, opened from arg the first
 * time (and after a drop). NULL, with *err and why, when it cannot be
 * opened; the next call tries again.
 */
void *api_offload_resource(const api_offload_slot *slot, const void *arg, usher_err *err, char *why,
                           size_t whylen);

/* From work: closes this worker's resource of slot (a connection that broke). */
void api_offload_drop(const api_offload_slot *slot);

#endif
