/*
 * Organizers' webhook endpoints: POST /v1/webhooks registers one and
 * answers its signing secret, once; GET lists and reads them without it.
 * Deliveries are signed with the secret (workers/handlers/webhook.c).
 *
 * The URL is parsed with libcurl's URL API, the parser the worker's
 * libcurl uses. Unless [webhooks] allow_private_targets is true, a host
 * that is a forbidden address (platform/netguard.h: loopback, private,
 * link-local..., in any spelling the resolver accepts) or a localhost name
 * is refused with 422. Other names are not resolved here: a DNS lookup has
 * no place on a loop thread, and its answer would prove nothing, as DNS may
 * answer differently at delivery time; the worker checks every address it
 * actually connects to.
 */
#include <curl/curl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "../validate.h"
#include "alloc.h"
#include "inttext.h"
#include "netguard.h"
#include "routes.h"
#include "reply.h"
#include "query.h"
#include "webhooks.h"

static const char *const webhook_events[] = { "registration.created",
                                              "registration.cancelled",
                                              "checkin.created",
                                              "report.done",
                                              "event.cancelled",
                                              "schedule.fired",
                                              NULL };

static void created(PGresult *res, const char *errmsg, void *arg)
{
    api_add_header(arg, "Cache-Control", "no-store");
    api_reply_row(arg, res, errmsg, 201, "organizer");
}

static bool valid_url(const char *url)
{
    const char *host = strncmp(url, "https://", 8) == 0  ? url + 8
                       : strncmp(url, "http://", 7) == 0 ? url + 7
                                                         : NULL;

    return host != NULL && host[0] != '\0' && host[0] != '/' &&
           strpbrk(url, " \t\"<>\\^`{|}") == NULL;
}

/*
 * Checks url with libcurl's parser and, when guard, its host against
 * netguard. False when the request was answered (422, or 500).
 */
static bool allowed_target(api_req *r, const char *url, bool guard)
{
    CURLU *u = curl_url();
    CURLUcode rc = u != NULL ? curl_url_set(u, CURLUPART_URL, url, 0) : CURLUE_OUT_OF_MEMORY;
    char *host = NULL;
    usher_net_class cls = USHER_NET_PUBLIC;

    if (rc == CURLUE_OK)
        rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
    if (rc == CURLUE_OUT_OF_MEMORY)
        api_reply_error(r, 500, "internal", "out of memory");
    else if (rc != CURLUE_OK)
        api_reply_invalid(r, "url", "url is not a valid URL: %s", curl_url_strerror(rc));
    else if (guard && usher_netguard_host(host, &cls) && cls != USHER_NET_PUBLIC)
        api_reply_invalid(r, "url", "url's host %s is not allowed (%s)", host,
                          usher_netguard_class_name(cls));
    curl_free(host);
    curl_url_cleanup(u);
    return rc == CURLUE_OK && cls == USHER_NET_PUBLIC;
}

bool api_webhook_url_ok(api_req *r, const char *url)
{
    if (!valid_url(url)) {
        api_reply_invalid(r, "url", "url must be an http:// or https:// URL");
        return false;
    }
    return allowed_target(r, url, !r->loop->srv->cfg->webhooks_allow_private_targets);
}

bool api_webhook_events_ok(api_req *r, json_t *events)
{
    json_t *item;
    size_t i;

    json_array_foreach(events, i, item)
    {
        bool known = false;

        for (size_t k = 0; webhook_events[k] != NULL; k++)
            known = known || strcmp(json_string_value(item), webhook_events[k]) == 0;
        if (!known) {
            api_reply_invalid(r, "events",
                              "events[%zu] must be registration.created,"
                              " registration.cancelled, checkin.created, report.done,"
                              " event.cancelled or schedule.fired",
                              i);
            return false;
        }
    }
    return true;
}

void api_webhook_new_secret(char secret[API_WEBHOOK_SECRET_HEX])
{
    unsigned char key[32];

    randombytes_buf(key, sizeof(key));
    sodium_bin2hex(secret, API_WEBHOOK_SECRET_HEX, key, sizeof(key));
    sodium_memzero(key, sizeof(key));
}

void route_webhook_create(api_req *r)
{
    const char *url = NULL;
    int64_t organizer = r->auth.organizer_id;
    json_t *events = NULL;
    char secret[API_WEBHOOK_SECRET_HEX], org[USHER_INT_TEXT_MAX], *events_text;

    if (!api_get_string(r, "url", true, 8, 2000, &url) ||
        !api_get_strings(r, "events", true, API_WEBHOOK_EVENTS_MAX, 64, &events))
        return;
    if (!api_webhook_url_ok(r, url) || !api_webhook_events_ok(r, events))
        return;
    if (!api_get_owner(r, &organizer))
        return;
    api_webhook_new_secret(secret);
    events_text = usher_need(json_dumps(events, JSON_COMPACT));
    const char *params[] = { api_id_text(organizer, org), url, events_text, secret };

    api_query(r,
              "WITH w AS (INSERT INTO webhook_endpoints (organizer_id, url, events, secret)"
              " SELECT $1, $2, ARRAY(SELECT jsonb_array_elements_text($3::jsonb)), $4"
              " RETURNING *)"
              " SELECT (" ENDPOINT_JSON "::jsonb || jsonb_build_object('secret', w.secret))::text"
              " FROM w",
              4, params, created);
    free(events_text);
}

static void listed(PGresult *res, const char *errmsg, void *arg)
{
    api_reply_row(arg, res, errmsg, 200, "webhook endpoint");
}

void route_webhook_list(api_req *r)
{
    char org[USHER_INT_TEXT_MAX];
    const char *params[] = { api_scope_org(r, org) };

    api_query(r,
              "SELECT json_build_object('webhooks', coalesce(json_agg(" ENDPOINT_JSON
              " ORDER BY w.id), '[]'::json))::text FROM webhook_endpoints w"
              " WHERE $1::bigint IS NULL OR w.organizer_id = $1",
              1, params, listed);
}

void route_webhook_get(api_req *r)
{
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX];
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org) };

    api_query(r,
              "SELECT " ENDPOINT_JSON "::text FROM webhook_endpoints w"
              " WHERE w.id = $1 AND ($2::bigint IS NULL OR w.organizer_id = $2)",
              2, params, listed);
}
