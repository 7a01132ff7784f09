/*
 * The guard in front of libevent's HTTP server: it sees every byte a
 * client sends before evhttp does, and refuses (with a JSON error, then
 * closes) what would cost usher-api memory or connections for nothing:
 *
 * - a head (request line + header fields) longer than api.header_max_bytes
 *   (431), or not complete api.header_timeout_s after its first byte (408);
 * - a head RFC 9112 refuses or that libevent would read differently from
 *   us (api/http_head.h: 400, 411, 417, 501, 505);
 * - a declared body larger than its route takes (413: api.upload_max_bytes
 *   for a content upload, api.body_max_bytes for every other route),
 *   refused before a byte of it is read; an upload without a bearer token
 *   is refused (401) above api.body_max_bytes;
 * - a body still arriving api.body_timeout_s plus one second per
 *   api.body_rate_bytes of its length after its head (408);
 * - a body that would take the bodies being received by the whole process
 *   over api.inflight_body_max_bytes (503 with Retry-After);
 * - a connection beyond api.connections_per_address from one address,
 *   counted across the process (429 with Retry-After).
 *
 * What passes goes to evhttp unchanged and without a copy; answers go to
 * the socket straight from evhttp's buffer. One guard per loop thread;
 * the counts shared across loops are the process's.
 */
#ifndef USHER_API_HTTP_GUARD_H
#define USHER_API_HTTP_GUARD_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdint.h>

#include "config.h"
#include "error.h"

typedef struct api_guard api_guard;

/* A guard for the connections of one loop, with cfg's limits (read now). */
USHER_MUSTCHECK api_guard *api_guard_new(const usher_config *cfg);

/* After the loop's evhttp and event base are freed (their last connections end there). */
void api_guard_free(api_guard *g);

/* For evhttp_set_bevcb(http, api_guard_bevcb, guard): each connection's bufferevent. */
struct bufferevent *api_guard_bevcb(struct event_base *base, void *guard);

#endif
