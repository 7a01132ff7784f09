/*
 * The API fleet's scaling signals (the seed's application-tier rules): every
 * FLEET_READ_S seconds loop 0 measures this usher-api's CPU use (of all the
 * host's cores), memory use (resident set of the host's memory) and
 * requests in flight, writes them to usher_api_hosts, reads back the
 * averages over every live instance and whether an event's registration
 * launch is near (events.launch_at within [api] launch_hold_before_min /
 * launch_hold_after_min), and asks engine/api_scale.h for the instance
 * count the fleet should have. /metrics exports the inputs and that answer
 * (usher_api_desired_instances) for an outside autoscaler; every instance
 * computes it from the same rows, so any of them may be asked.
 */
#ifndef USHER_API_FLEET_H
#define USHER_API_FLEET_H

#include <event2/buffer.h>

#include "error.h"
#include "request.h"

typedef struct api_fleet api_fleet;

/* Starts sampling on loop's base (loop 0). Call before the loop's thread runs. */
USHER_MUSTCHECK usher_err api_fleet_start(api_loop *loop, api_fleet **out);

/* The gauges, for /metrics, from loop 0's thread. */
int api_fleet_render(const api_fleet *f, struct evbuffer *out);

/* After the loop's thread stopped and before the loop is freed, as api_metrics_http_free. */
void api_fleet_free(api_fleet *f);

#endif
