/*
 * The loop threads: each binds its own SO_REUSEPORT socket on the listen
 * address (the kernel spreads connections over them), and runs its own
 * event base, evhttp, database connections and token cache.
 */
#ifndef USHER_API_SERVER_H
#define USHER_API_SERVER_H

#include "conn_budget.h"
#include "request.h"

typedef struct api_threads api_threads;

/*
 * The offload pool's threads (api/offload.h): disk writes of uploads,
 * searches, and the admin routes' engine calls, each thread with a
 * blocking database connection of its own (api/blocking.c), opened at its
 * first such call. Few and short, and the machine is small.
 */
#define API_OFFLOAD_THREADS 2

/*
 * The PostgreSQL connections usher-api opens at most with nthreads loop
 * threads and cfg (engine/conn_budget.h): each loop's pool, and one per
 * offload thread.
 */
void api_conn_need(const usher_config *cfg, int nthreads, usher_conn_need *need);

/* Binds every loop's socket and starts the threads; srv->port is set. */
USHER_MUSTCHECK usher_err api_threads_start(api_server *srv, int nthreads, api_threads **out,
                                            char *errbuf, size_t errlen);

/*
 * Stops accepting, lets every loop answer what it holds (at most
 * grace_ms), then stops and joins the threads and frees them.
 */
void api_threads_stop(api_threads *t, int grace_ms);

#endif
