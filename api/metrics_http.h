/*
 * usher-api's Prometheus endpoint, on a listener of its own ([api]
 * metrics_listen, loopback by default) rather than the public one: request
 * rates, error counts and queue depths are for the operator's scraper, not
 * for whoever reaches the API. It serves GET /metrics and nothing else, from
 * loop 0's event base.
 *
 * A scrape costs the database nothing: the queue depths come from the
 * counts the worker supervisors already make and publish in usher_pools
 * (capped at USHER_AUTOSCALE_DEPTH_CAP), read on loop 0 every few seconds,
 * not from a count over usher_jobs per scrape.
 */
#ifndef USHER_API_METRICS_HTTP_H
#define USHER_API_METRICS_HTTP_H

#include <stddef.h>

#include "error.h"
#include "request.h"

typedef struct api_metrics_http api_metrics_http;

/*
 * Binds listen_addr (HOST:PORT; port 0 picks a free one, *port gets the
 * one bound) on loop's event base and starts reading the pools' depths
 * there. Call before the loop's thread runs. NULL with errbuf set when the
 * address does not bind.
 */
USHER_MUSTCHECK api_metrics_http *api_metrics_http_start(api_loop *loop, const char *listen_addr,
                                                         int *port, char *errbuf, size_t errlen);

/*
 * Stops serving; call once the loop's thread has stopped, before the loop
 * is freed (a depth read still queued on its connections is answered then,
 * and the last of the state goes with it). NULL is fine.
 */
void api_metrics_http_free(api_metrics_http *m);

#endif
