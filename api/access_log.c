#include "access_log.h"

#include <event2/http.h>
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>

#include "cidr.h"
#include "log.h"
#include "reply.h"
#include "route.h"

#define ID_MAX 64

static bool peer_trusted(const api_req *r, const char *peer)
{
    api_addr a;

    return peer != NULL && api_addr_parse(peer, strlen(peer), &a) &&
           api_cidr_list_contains(&r->loop->srv->trusted_proxies, &a);
}

static bool acceptable(const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;

    return n >= 1 && n <= ID_MAX &&
           strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") == n;
}

void api_request_id(api_req *r, const char *peer)
{
    const char *sent =
        evhttp_find_header(evhttp_request_get_input_headers(r->http), "X-Request-Id");
    unsigned char random[8];

    if (acceptable(sent) && peer_trusted(r, peer)) {
        memcpy(r->request_id, sent, strlen(sent) + 1);
    } else {
        randombytes_buf(random, sizeof(random));
        sodium_bin2hex(r->request_id, sizeof(r->request_id), random, sizeof(random));
    }
    api_add_header(r, "X-Request-Id", r->request_id);
}

void api_access_log(const api_req *r, int status)
{
    static const char *const methods[] = { "GET",     "POST",  "HEAD",    "PUT",  "DELETE",
                                           "OPTIONS", "TRACE", "CONNECT", "PATCH" };
    const usher_config *cfg = atomic_load(&r->loop->srv->cfg);
    const char *method = "?";

    if (cfg == NULL || !cfg->api_access_log)
        return; /* off, or a harness without a configuration */
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (r->method == 1 << i)
            method = methods[i];
    usher_log(USHER_LOG_INFO,
              "access request_id=%s client=%s method=%s route=%s status=%d bytes=%zu ms=%.1f"
              " token=%lld",
              r->request_id, r->client, method, r->route != NULL ? r->route->pattern : "-", status,
              r->bytes, (double)(api_now_ns() - r->start_ns) / 1e6, (long long)r->auth.token_id);
}
