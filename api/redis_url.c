/*
 * The parts of redis.url (redis_url.h), left to right: scheme, userinfo
 * up to the last '@', host (bracketed for IPv6), port, then "/DB" and
 * nothing after it. Userinfo is decoded from %XX; a NUL byte, a
 * userinfo without ':' (is it a user or a password?) and anything after
 * DB (a query, another slash) are refused.
 */
#include "redis_url.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEME "redis://"
#define SHAPE  "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]"

__attribute__((format(printf, 3, 4))) static usher_err refuse(char *why, size_t whylen,
                                                              const char *fmt, ...)
{
    char reason[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    snprintf(why, whylen, "redis.url is not " SHAPE ": %s", reason);
    return USHER_ERR_CONFIG;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes len bytes of p from %XX into out (of size room); false if bad or too long. */
static bool decode(const char *p, size_t len, char *out, size_t room)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++, n++) {
        char c = p[i];

        if (c == '%') {
            int hi = i + 2 < len ? hex_digit(p[i + 1]) : -1;
            int lo = i + 2 < len ? hex_digit(p[i + 2]) : -1;

            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) /* cut short, not hex, or a NUL */
                return false;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (n + 1 >= room)
            return false;
        out[n] = c;
    }
    out[n] = '\0';
    return true;
}

/* Decimal digits only, within [min, max]; -1 otherwise. */
static long number(const char *p, size_t len, long min, long max)
{
    long value = 0;

    if (len == 0 || len > 10)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        value = value * 10 + (p[i] - '0');
    }
    return value >= min && value <= max ? value : -1;
}

static usher_err parse_userinfo(const char *p, size_t len, api_redis_url *out, char *why,
                                size_t whylen)
{
    const char *colon = memchr(p, ':', len);

    if (colon == NULL)
        return refuse(why, whylen,
                      "the part before '@' has no ':' (a password alone is "
                      "redis://:PASSWORD@HOST)");
    if (!decode(p, (size_t)(colon - p), out->user, sizeof(out->user)) ||
        !decode(colon + 1, len - (size_t)(colon - p) - 1, out->password, sizeof(out->password)))
        return refuse(why, whylen, "the user or password is too long or has a bad %% escape");
    if (out->password[0] == '\0')
        return refuse(why, whylen, "the password is empty");
    return USHER_OK;
}

/* HOST[:PORT] of len bytes. */
static usher_err parse_hostport(const char *p, size_t len, api_redis_url *out, char *why,
                                size_t whylen)
{
    const char *host = p, *port = NULL;
    size_t host_len;

    if (len > 0 && p[0] == '[') {
        const char *close = memchr(p, ']', len);

        if (close == NULL)
            return refuse(why, whylen, "an IPv6 host has no ']'");
        host = p + 1;
        host_len = (size_t)(close - host);
        if (close + 1 < p + len && close[1] != ':')
            return refuse(why, whylen, "']' is not followed by ':PORT'");
        port = close + 1 < p + len ? close + 2 : NULL;
    } else {
        const char *colon = memchr(p, ':', len);

        host_len = colon != NULL ? (size_t)(colon - p) : len;
        port = colon != NULL ? colon + 1 : NULL;
    }
    if (host_len == 0 || host_len >= sizeof(out->host))
        return refuse(why, whylen, "the host is empty or too long");
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    out->port = API_REDIS_DEFAULT_PORT;
    if (port != NULL && (out->port = (int)number(port, (size_t)(p + len - port), 1, 65535)) < 0)
        return refuse(why, whylen, "the port is not a number in 1..65535");
    return USHER_OK;
}

usher_err api_redis_url_parse(const char *url, api_redis_url *out, char *why, size_t whylen)
{
    const char *p, *at, *slash, *end;
    usher_err err;

    *out = (api_redis_url){ 0 };
    if (url == NULL || strncmp(url, SCHEME, strlen(SCHEME)) != 0)
        return refuse(why, whylen, "it does not start with " SCHEME);
    p = url + strlen(SCHEME);
    slash = strchr(p, '/');
    end = slash != NULL ? slash : p + strlen(p);
    at = NULL;
    for (const char *q = p; q < end; q++)
        at = *q == '@' ? q : at;
    if (at != NULL && (err = parse_userinfo(p, (size_t)(at - p), out, why, whylen)) != USHER_OK)
        return err;
    err = parse_hostport(at != NULL ? at + 1 : p, (size_t)(end - (at != NULL ? at + 1 : p)), out,
                         why, whylen);
    if (err != USHER_OK)
        return err;
    if (slash != NULL && slash[1] != '\0' &&
        (out->db = (int)number(slash + 1, strlen(slash + 1), 0, API_REDIS_DB_MAX)) < 0)
        return refuse(why, whylen, "the database after '/' is not a number in 0..%d",
                      API_REDIS_DB_MAX);
    return USHER_OK;
}
