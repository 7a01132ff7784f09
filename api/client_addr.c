/*
 * The client address rule of client_addr.h. An X-Forwarded-For entry is
 * an address, optionally with a port as some proxies write it
 * ("192.0.2.7:5123", "[2001:db8::7]:5123"); the list is walked from its
 * right end without copying, and every field of the header counts, the
 * later fields to the right of the earlier ones (RFC 9110 5.3).
 */
#include "client_addr.h"

#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "alloc.h"

#define XFF "X-Forwarded-For"

/* One entry of len bytes (trimmed) as an address, port dropped; false if it is not one. */
static bool parse_entry(const char *p, size_t len, api_addr *out)
{
    const char *colon = memchr(p, ':', len);

    if (len > 0 && p[0] == '[') { /* [v6] or [v6]:port */
        const char *close = memchr(p, ']', len);
        size_t after = close != NULL ? len - (size_t)(close - p) - 1 : 0;

        if (close == NULL || (after > 0 && (close[1] != ':' || after == 1 ||
                                            strspn(close + 2, "0123456789") < after - 1)))
            return false;
        return api_addr_parse(p + 1, (size_t)(close - p) - 1, out);
    }
    if (colon != NULL && memchr(colon + 1, ':', len - (size_t)(colon - p) - 1) == NULL) {
        size_t port_len = len - (size_t)(colon - p) - 1; /* v4:port */

        if (port_len == 0 || strspn(colon + 1, "0123456789") < port_len)
            return false;
        return api_addr_parse(p, (size_t)(colon - p), out) && out->len == 4;
    }
    return api_addr_parse(p, len, out);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/*
 * The entry of xff that ends before *end, trimmed, into [*start, *len);
 * *end moves before its comma. False when none is left.
 */
static bool previous_entry(const char *xff, const char **end, const char **start, size_t *len)
{
    const char *e = *end, *s;

    if (e == NULL)
        return false;
    s = e;
    while (s > xff && s[-1] != ',')
        s--;
    *end = s > xff ? s - 1 : NULL;
    while (s < e && is_space(*s))
        s++;
    while (e > s && is_space(e[-1]))
        e--;
    *start = s;
    *len = (size_t)(e - s);
    return true;
}

void api_client_addr(const api_cidr_list *trusted, const char *peer, const char *xff,
                     char out[API_ADDR_TEXT_MAX])
{
    api_addr addr, found;
    const char *end, *start;
    size_t len;
    bool any = false;

    if (!api_addr_parse(peer, strlen(peer), &addr)) {
        snprintf(out, API_ADDR_TEXT_MAX, "%s", peer);
        return;
    }
    api_addr_text(&addr, out); /* the peer, unless the header names someone else */
    if (xff == NULL || !api_cidr_list_contains(trusted, &addr))
        return;
    end = xff + strlen(xff);
    while (previous_entry(xff, &end, &start, &len)) {
        if (!parse_entry(start, len, &found))
            return; /* malformed: the peer it is */
        any = true;
        if (!api_cidr_list_contains(trusted, &found))
            break;
    }
    if (any)
        api_addr_text(&found, out);
}

void api_client_addr_of(const api_cidr_list *trusted, const char *peer,
                        const struct evkeyvalq *headers, char out[API_ADDR_TEXT_MAX])
{
    const struct evkeyval *h;
    char *joined = NULL;
    size_t used = 0;

    if (trusted->n == 0) { /* the common case: no header is read */
        api_client_addr(trusted, peer, NULL, out);
        return;
    }
    TAILQ_FOREACH(h, headers, next) {
        size_t len;

        if (strcasecmp(h->key, XFF) != 0)
            continue;
        len = strlen(h->value);
        joined = usher_realloc(joined, used + len + 2);
        if (used > 0)
            joined[used++] = ',';
        memcpy(joined + used, h->value, len + 1);
        used += len;
    }
    api_client_addr(trusted, peer, joined, out);
    free(joined);
}
