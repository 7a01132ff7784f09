/*
 * Per-host connection attempts (pgconnect.h). PQconninfoParse turns the
 * URL or key=value string into libpq's option array; host, hostaddr and
 * port are comma lists (one port may serve every host, as in libpq), split
 * here once. An attempt is a host index and a target_session_attrs; its
 * parameters are the parsed options with the lists replaced by that
 * host's elements, handed to PQconnectStartParams (expand_dbname 0: the
 * database name is never read as a conninfo again). Options the conninfo
 * leaves out stay out, so libpq still applies its environment and defaults.
 */
#include "pgconnect.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)

typedef struct attempt {
    size_t host;               /* index into the host lists */
    const char *session_attrs; /* a static string, or NULL: the parsed value */
} attempt;

typedef struct list {
    char **items;
    size_t n;
} list;

struct usher_pg_attempts {
    PQconninfoOption *opts;
    size_t nopts;
    list hosts, hostaddrs, ports;
    attempt *attempts;
    size_t n;
    int timeout_ms;
};

static const char *option(const PQconninfoOption *opts, const char *keyword)
{
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, keyword) == 0)
            return o->val;
    }
    return NULL;
}

/* Splits a comma list ("pg1,pg2"); an absent value is an empty list. */
static list split(const char *s)
{
    list l = { 0 };

    if (s == NULL)
        return l;
    for (const char *p = s;; p++) {
        size_t len = strcspn(p, ",");

        l.items = usher_realloc(l.items, (l.n + 1) * sizeof(*l.items));
        l.items[l.n++] = usher_strndup(p, len);
        p += len;
        if (*p == '\0')
            break;
    }
    return l;
}

static void list_free(list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    *l = (list){ 0 };
}

/* libpq's reading of connect_timeout, in ms: absent is our default, 1 is 2. */
static int timeout_ms(const char *value)
{
    char *end;
    long s;

    if (value == NULL || *value == '\0')
        return USHER_PG_CONNECT_TIMEOUT_S * 1000;
    errno = 0;
    s = strtol(value, &end, 10);
    if (errno != 0 || end == value)
        return USHER_PG_CONNECT_TIMEOUT_S * 1000; /* libpq refuses it when connecting */
    if (s <= 0)
        return 0;
    if (s < 2)
        s = 2;
    return s > INT_MAX / 1000 ? INT_MAX / 1000 * 1000 : (int)s * 1000;
}

/* One attempt per host, or two passes for prefer-standby. */
static void plan(usher_pg_attempts *a, size_t nhosts)
{
    const char *attrs = option(a->opts, "target_session_attrs");
    bool two_passes = attrs != NULL && strcmp(attrs, "prefer-standby") == 0;

    a->n = two_passes ? 2 * nhosts : nhosts;
    a->attempts = usher_calloc(a->n, sizeof(*a->attempts));
    for (size_t i = 0; i < a->n; i++) {
        a->attempts[i].host = i % nhosts;
        if (two_passes)
            a->attempts[i].session_attrs = i < nhosts ? "standby" : "any";
    }
}

usher_err usher_pg_attempts_new(const char *conninfo, usher_pg_attempts **out, char *errbuf,
                                size_t errlen)
{
    usher_pg_attempts *a;
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    size_t nhosts;

    *out = NULL;
    if (opts == NULL) {
        const char *why = err != NULL ? err : "out of memory";
        usher_err e = usher_errbuf(errbuf, errlen, USHER_ERR_CONFIG, "invalid database URL: %.*s",
                                   (int)strcspn(why, "\n"), why);

        PQfreemem(err);
        return e;
    }
    a = usher_calloc(1, sizeof(*a));
    a->opts = opts;
    a->hosts = split(option(opts, "host"));
    a->hostaddrs = split(option(opts, "hostaddr"));
    a->ports = split(option(opts, "port"));
    nhosts = a->hosts.n > 0 ? a->hosts.n : a->hostaddrs.n > 0 ? a->hostaddrs.n : 1;
    if ((a->hosts.n > 0 && a->hostaddrs.n > 0 && a->hosts.n != a->hostaddrs.n) ||
        (a->ports.n > 1 && a->ports.n != nhosts)) {
        usher_pg_attempts_free(a);
        return usher_errbuf(errbuf, errlen, USHER_ERR_CONFIG,
                            "database URL: %zu hosts do not match its hostaddr or port list",
                            nhosts);
    }
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
        a->nopts++;
    a->timeout_ms = timeout_ms(option(opts, "connect_timeout"));
    plan(a, nhosts);
    *out = a;
    return USHER_OK;
}

void usher_pg_attempts_free(usher_pg_attempts *a)
{
    if (a == NULL)
        return;
    list_free(&a->hosts);
    list_free(&a->hostaddrs);
    list_free(&a->ports);
    PQconninfoFree(a->opts);
    free(a->attempts);
    free(a);
}

size_t usher_pg_attempts_count(const usher_pg_attempts *a)
{
    return a->n;
}

int usher_pg_attempts_timeout_ms(const usher_pg_attempts *a)
{
    return a->timeout_ms;
}

size_t usher_pg_attempts_host_index(const usher_pg_attempts *a, size_t i)
{
    return a->attempts[i].host;
}

static const char *element(const list *l, size_t i, const char *parsed)
{
    if (l->n == 0)
        return parsed;
    return l->items[l->n == 1 ? 0 : i];
}

const char *usher_pg_attempts_param(const usher_pg_attempts *a, size_t i, const char *keyword)
{
    const attempt *at = &a->attempts[i];
    const char *parsed = option(a->opts, keyword);

    if (strcmp(keyword, "host") == 0)
        return element(&a->hosts, at->host, parsed);
    if (strcmp(keyword, "hostaddr") == 0)
        return element(&a->hostaddrs, at->host, parsed);
    if (strcmp(keyword, "port") == 0)
        return element(&a->ports, at->host, parsed);
    if (strcmp(keyword, "target_session_attrs") == 0 && at->session_attrs != NULL)
        return at->session_attrs;
    return parsed;
}

PGconn *usher_pg_attempts_start(const usher_pg_attempts *a, size_t i)
{
    const char **keywords = usher_calloc(a->nopts + 1, sizeof(*keywords));
    const char **values = usher_calloc(a->nopts + 1, sizeof(*values));
    size_t n = 0;
    PGconn *conn;

    for (size_t k = 0; k < a->nopts; k++) {
        const char *value = usher_pg_attempts_param(a, i, a->opts[k].keyword);

        if (value != NULL) {
            keywords[n] = a->opts[k].keyword;
            values[n++] = value;
        }
    }
    conn = PQconnectStartParams(keywords, values, 0);
    free(keywords);
    free(values);
    return conn;
}

PGconn *usher_pg_connectdb(const char *conninfo)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    const char **keywords, **values;
    size_t n = 0, nopts = 0;
    PGconn *conn;

    if (opts == NULL)
        return usher_need(PQconnectdb(conninfo)); /* libpq says what is wrong with it */
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
        nopts++;
    keywords = usher_calloc(nopts + 2, sizeof(*keywords));
    values = usher_calloc(nopts + 2, sizeof(*values));
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val != NULL) {
            keywords[n] = o->keyword;
            values[n++] = o->val;
        }
    }
    if (option(opts, "connect_timeout") == NULL) {
        keywords[n] = "connect_timeout";
        values[n++] = STRINGIFY(USHER_PG_CONNECT_TIMEOUT_S);
    }
    conn = usher_need(PQconnectdbParams(keywords, values, 0));
    free(keywords);
    free(values);
    PQconninfoFree(opts);
    return conn;
}
