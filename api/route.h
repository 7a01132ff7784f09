/*
 * What a route is: a method and a path pattern, the roles that may call
 * it, whether it takes a JSON body and which rate class it counts in, and
 * the function that runs it. The table itself is api/router.c's.
 */
#ifndef USHER_API_ROUTE_H
#define USHER_API_ROUTE_H

#include <event2/http.h>
#include <stdbool.h>

#include "request.h"

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
    bool rate_limited;   /* a write: api.rate_per_minute; else read or manage (api/ratelimit.h) */
    void (*run)(api_req *r);
};

/* The name of an HTTP method ("any" for one a route does not name). */
const char *api_method_name(enum evhttp_cmd_type method);

#endif
