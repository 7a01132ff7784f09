/*
 * Fuzz target: what usher-api makes of a request's target (the URI of the
 * request line) before any route runs. The input is that URI; it is split
 * as evhttp splits it (evhttp_uri_parse_with_flags, NONCONFORMANT), then
 *   - the path goes through the route table (api_route_find, router.c) for
 *     every method;
 *   - the query string through api_query_parse (reply.c), and each value
 *     through the checks routes apply to query parameters: whole numbers
 *     (api_parse_whole), text (api_text_chars), queue names, times
 *     (usher_cli_parse_time), ticket codes.
 * Properties: a matched route is one its method may take, and expanding
 * its pattern with the captured {id}s and {name} gives the path back
 * (less a trailing slash); whether some route knows the path does not
 * depend on the method; a query that parses has only well-formed escapes;
 * a number read from a value is the value's digits.
 */
#include <sys/queue.h>

#include <ctype.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdbool.h>

#include "cli.h"
#include "fuzz.h"
#include "router.h"
#include "ticket.h"
#include "validate.h"

static const enum evhttp_cmd_type methods[] = {
    EVHTTP_REQ_GET,  EVHTTP_REQ_POST, EVHTTP_REQ_PATCH,
    EVHTTP_REQ_HEAD, EVHTTP_REQ_PUT,  EVHTTP_REQ_DELETE,
};

/* The path route i's pattern stands for, with ids and name put in its {id}s and {name}. */
static void expand(size_t i, const int64_t ids[2], const char *name, char *out, size_t len)
{
    const char *p = api_routes[i].pattern;
    size_t used = 0;
    int nids = 0;

    out[0] = '\0';
    while (*p != '\0' && used + 1 < len) {
        if (strncmp(p, "{id}", 4) == 0) {
            FUZZ_CHECK(nids < 2 && ids[nids] > 0, "route %s: id %d is %lld", api_routes[i].pattern,
                       nids, nids < 2 ? (long long)ids[nids] : 0LL);
            used += (size_t)snprintf(out + used, len - used, "%lld", (long long)ids[nids++]);
            p += 4;
        } else if (strncmp(p, "{name}", 6) == 0) {
            FUZZ_CHECK(usher_config_valid_name(name), "route %s: name '%s'", api_routes[i].pattern,
                       name);
            used += (size_t)snprintf(out + used, len - used, "%s", name);
            p += 6;
        } else {
            out[used++] = *p++;
            out[used] = '\0';
        }
    }
}

static void check_path(const char *path)
{
    bool known_any = false;

    for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
        int64_t ids[2] = { -1, -1 };
        char name[USHER_NAME_MAX] = "", expanded[8192];
        bool known = false;
        size_t i = api_route_find(methods[m], path, ids, name, &known);
        size_t len = strlen(path);

        FUZZ_CHECK(api_route_label(i) != NULL && api_route_method(i) != NULL, "labels");
        FUZZ_CHECK(m == 0 || known == known_any, "'%s': known under one method, not another", path);
        known_any = known;
        if (i == api_nroutes)
            continue;
        FUZZ_CHECK(i < api_nroutes && known, "'%s': index %zu", path, i);
        FUZZ_CHECK(api_routes[i].method == methods[m] ||
                       (methods[m] == EVHTTP_REQ_HEAD && api_routes[i].method == EVHTTP_REQ_GET),
                   "'%s': route %s for the wrong method", path, api_routes[i].pattern);
        expand(i, ids, name, expanded, sizeof(expanded));
        if (len > 1 && path[len - 1] == '/')
            len--; /* "/v1/events/" is "/v1/events" */
        FUZZ_CHECK(strlen(expanded) == len && strncmp(expanded, path, len) == 0,
                   "'%s' matched %s, which expands to '%s'", path, api_routes[i].pattern, expanded);
    }
}

static void check_escapes(const char *query)
{
    for (const char *p = strchr(query, '%'); p != NULL; p = strchr(p + 1, '%'))
        FUZZ_CHECK(isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2]),
                   "query '%s' parsed with a broken escape", query);
}

static void check_value(const char *key, const char *value)
{
    static const unsigned char key0[USHER_TICKET_KEY_BYTES];
    size_t len = strlen(value), chars = api_text_chars(value, len);
    int64_t n = -1, us, event, registration;

    if (api_parse_whole(value, 0, INT64_MAX, &n)) {
        FUZZ_CHECK(len >= 1 && len <= 18 && strspn(value, "0123456789") == len &&
                       n == strtoll(value, NULL, 10),
                   "'%s' read as %lld", value, (long long)n);
    }
    FUZZ_CHECK(chars == (size_t)-1 || chars <= len, "'%s': %zu characters", value, chars);
    (void)usher_config_valid_name(value);
    (void)usher_cli_parse_time(value, &us);
    if (strcmp(key, "ticket_code") == 0)
        usher_ignore(
            usher_ticket_verify(key0, value, &event, &registration)); /* no crash is the property */
}

static void check_query(const char *query)
{
    struct evkeyvalq q;
    struct evkeyval *kv;

    if (api_query_parse(query, &q) == 0) {
        if (query != NULL)
            check_escapes(query);
        TAILQ_FOREACH(kv, &q, next) {
            check_value(kv->key, kv->value);
        }
    }
    evhttp_clear_headers(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    struct evhttp_uri *uri;

    if (text == NULL)
        return 0;
    uri = evhttp_uri_parse_with_flags(text, EVHTTP_URI_NONCONFORMANT);
    if (uri != NULL) {
        if (evhttp_uri_get_path(uri) != NULL)
            check_path(evhttp_uri_get_path(uri));
        check_query(evhttp_uri_get_query(uri));
        evhttp_uri_free(uri);
    }
    /* The raw text too: a path evhttp would not have split the same way. */
    check_path(text);
    check_query(text);
    free(text);
    return 0;
}
