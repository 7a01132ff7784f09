/*
 * The route table and the dispatcher: match method and path, parse and
 * check the body, authenticate, check the role, then run the route.
 */
#ifndef USHER_API_ROUTER_H
#define USHER_API_ROUTER_H

#include <stddef.h>

#include "api.h"

#define API_PUBLIC 0u /* roles mask of a route anyone may call */
#define API_ADMIN  ((unsigned)USHER_ROLE_ADMIN)
#define API_ORG    ((unsigned)(USHER_ROLE_ADMIN | USHER_ROLE_ORGANIZER))
#define API_SCAN   ((unsigned)(USHER_ROLE_ADMIN | USHER_ROLE_SCANNER))

struct api_route {
    enum evhttp_cmd_type method;
    const char *pattern; /* "/v1/events/{id}": {id} is a positive integer; {name} a
                            queue name ([a-z0-9_.-], 1..63) */
    unsigned roles;      /* API_PUBLIC, or the roles allowed */
    bool json_body;      /* takes a JSON object body */
    bool rate_limited;   /* counted against api.rate_per_minute (api/ratelimit.h) */
    void (*run)(api_req *r);
};

extern const api_route api_routes[];
extern const size_t api_nroutes;

/* evhttp's callback for every request; arg is the api_loop. */
void api_dispatch(struct evhttp_request *req, void *arg);

/* The label of a route for metrics ("unmatched" for index api_nroutes). */
const char *api_route_label(size_t index);
/* Its method ("any" for unmatched). */
const char *api_route_method(size_t index);

#endif
