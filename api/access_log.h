/*
 * Following one request: its id and, when [api] access_log is on, one log
 * line when it ends. The id is the X-Request-Id a trusted proxy
 * ([api] trusted_proxies) sent, if it is 1 to 64 of [A-Za-z0-9._:-], or
 * 16 random hex digits; every answer carries it back in X-Request-Id.
 * The line, at level info: "access request_id=... client=... method=...
 * route=/v1/events/{id} status=201 bytes=312 ms=4.2 token=17": the route's
 * template and the token's id, never the path's ids, a query string, a
 * token or a ticket code.
 */
#ifndef USHER_API_ACCESS_LOG_H
#define USHER_API_ACCESS_LOG_H

#include "request.h"

/* Sets r->request_id from peer and the request's headers, and adds the answer's header. */
void api_request_id(api_req *r, const char *peer);

/* The access line of r, answered with status after bytes of body, if access_log is on. */
void api_access_log(const api_req *r, int status);

#endif
