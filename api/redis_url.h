/*
 * redis.url read strictly: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB].
 * HOST is a name, an IPv4 address or a bracketed IPv6 address; PORT
 * defaults to 6379 and DB (SELECT) to 0. With a password every connection
 * sends AUTH first: `AUTH PASSWORD` (redis://:PASSWORD@...) or, with a
 * user, Redis 6's ACL form `AUTH USER PASSWORD`. USER and PASSWORD may
 * carry %XX escapes (for '@', ':', '/' and the like). Pure: no I/O; a
 * refusal names what is wrong, never the URL, which may hold a secret.
 */
#ifndef USHER_API_REDIS_URL_H
#define USHER_API_REDIS_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define API_REDIS_DEFAULT_PORT 6379
#define API_REDIS_DB_MAX       1000000 /* Redis's `databases` is set at its start; 16 by default */

typedef struct api_redis_url {
    char host[256]; /* without brackets */
    int port;
    int db;
    char user[128];     /* "": the default user */
    char password[256]; /* "": no AUTH */
} api_redis_url;

/* Reads url into *out; on a bad URL returns USHER_ERR_CONFIG with the reason in why. */
USHER_MUSTCHECK usher_err api_redis_url_parse(const char *url, api_redis_url *out, char *why,
                                              size_t whylen);

#endif
