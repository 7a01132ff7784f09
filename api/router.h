/*
 * The route table and the dispatcher: match method and path, parse and
 * check the body, authenticate, check the role, then run the route.
 */
#ifndef USHER_API_ROUTER_H
#define USHER_API_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "request.h"
#include "route.h"

extern const api_route api_routes[];
extern const size_t api_nroutes;

#define API_JSON_DEPTH_MAX 32 /* request bodies nest at most this deep */

/* evhttp's callback for every request; arg is the api_loop. */
void api_dispatch(struct evhttp_request *req, void *arg);

/* The label of a route for metrics ("unmatched" for index api_nroutes). */
const char *api_route_label(size_t index);
/* Its method ("any" for unmatched). */
const char *api_route_method(size_t index);

/*
 * The route that serves method on path: its index in api_routes, with the
 * path's {id}s written into ids and its {name} into name; api_nroutes when
 * none does. *path_known tells whether another method has a route there
 * (405 rather than 404). Pure: the dispatcher's first step, and a fuzz target.
 */
size_t api_route_find(enum evhttp_cmd_type method, const char *path, int64_t ids[2],
                      char name[USHER_NAME_MAX], bool *path_known);

/*
 * Parses a JSON route's body of len bytes: a JSON object without duplicate
 * names, nesting at most API_JSON_DEPTH_MAX deep. Returns it (the caller
 * owns it), or NULL with the reason, for a 400, in why.
 */
USHER_MUSTCHECK json_t *api_body_parse(const char *data, size_t len, char *why, size_t whylen);

#endif
