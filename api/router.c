#include "router.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "access_log.h"
#include "alloc.h"
#include "auth.h"
#include "client_addr.h"
#include "ratelimit.h"
#include "routes/routes.h"
#include "reply.h"
#include "route.h"

const api_route api_routes[] = {
    { EVHTTP_REQ_GET, "/healthz", API_PUBLIC, false, false, route_healthz },
    { EVHTTP_REQ_GET, "/readyz", API_PUBLIC, false, false, route_readyz },
    { EVHTTP_REQ_GET, "/v1/events", API_ORG, false, false, route_event_list },
    { EVHTTP_REQ_POST, "/v1/events", API_ORG, true, false, route_event_create },
    { EVHTTP_REQ_GET, "/v1/events/{id}", API_PUBLIC, false, false, route_event_get },
    { EVHTTP_REQ_PATCH, "/v1/events/{id}", API_ORG, true, false, route_event_update },
    { EVHTTP_REQ_DELETE, "/v1/events/{id}", API_ORG, false, false, route_event_delete },
    { EVHTTP_REQ_POST, "/v1/events/{id}/ticket-types", API_ORG, true, false,
      route_ticket_type_create },
    { EVHTTP_REQ_GET, "/v1/ticket-types/{id}", API_ORG, false, false, route_ticket_type_get },
    { EVHTTP_REQ_PATCH, "/v1/ticket-types/{id}", API_ORG, true, false, route_ticket_type_update },
    { EVHTTP_REQ_POST, "/v1/ticket-types/{id}/close", API_ORG, false, false,
      route_ticket_type_close },
    { EVHTTP_REQ_POST, "/v1/ticket-types/{id}/reopen", API_ORG, false, false,
      route_ticket_type_reopen },
    { EVHTTP_REQ_POST, "/v1/events/{id}/registrations", API_PUBLIC, true, true, route_register },
    { EVHTTP_REQ_POST, "/v1/registrations/{id}/cancel", API_ORG, false, false,
      route_registration_cancel },
    { EVHTTP_REQ_GET, "/v1/events/{id}/registrations", API_ORG, false, false,
      route_registration_list },
    { EVHTTP_REQ_POST, "/v1/registrations/{id}/resend-confirmation", API_ORG, false, false,
      route_registration_resend },
    { EVHTTP_REQ_POST, "/v1/checkins", API_SCAN, true, true, route_checkin },
    /* Messages to attendees and event cancellation (messages.c, event_cancel.c). */
    { EVHTTP_REQ_POST, "/v1/events/{id}/messages", API_ORG, true, false, route_message_create },
    { EVHTTP_REQ_GET, "/v1/messages/{id}", API_ORG, false, false, route_message_get },
    { EVHTTP_REQ_POST, "/v1/messages/{id}/cancel", API_ORG, false, false, route_message_cancel },
    /* Schedules anchored to the event or its sessions (schedules.c). */
    { EVHTTP_REQ_POST, "/v1/events/{id}/schedules", API_ORG, true, false, route_schedule_create },
    { EVHTTP_REQ_GET, "/v1/events/{id}/schedules", API_ORG, false, false, route_schedule_list },
    { EVHTTP_REQ_DELETE, "/v1/schedules/{id}", API_ORG, false, false, route_schedule_delete },
    { EVHTTP_REQ_POST, "/v1/events/{id}/cancel", API_ORG, true, false, route_event_cancel },
    { EVHTTP_REQ_GET, "/v1/events/{id}/analytics", API_ORG, false, false, route_event_analytics },
    { EVHTTP_REQ_POST, "/v1/events/{id}/reports", API_ORG, true, false, route_report_create },
    { EVHTTP_REQ_GET, "/v1/reports/{id}", API_ORG, false, false, route_report_get },
    { EVHTTP_REQ_POST, "/v1/events/{id}/badges", API_ORG, false, false, route_badges_create },
    { EVHTTP_REQ_GET, "/v1/events/{id}/badges", API_ORG, false, false, route_badges_list },
    { EVHTTP_REQ_GET, "/v1/jobs/{id}", API_ORG, false, false, route_job_get },
    { EVHTTP_REQ_GET, "/v1/me/notifications", API_PUBLIC, false, false, route_inbox },
    { EVHTTP_REQ_GET, "/v1/search", API_PUBLIC, false, false, route_search },
    /* The admins' dashboard page and API (issue 6). */
    { EVHTTP_REQ_GET, "/dashboard", API_PUBLIC, false, false, route_dashboard },
    { EVHTTP_REQ_GET, "/dashboard/{name}", API_PUBLIC, false, false, route_dashboard_file },
    { EVHTTP_REQ_GET, "/v1/admin/queues", API_ADMIN, false, false, route_admin_queues },
    { EVHTTP_REQ_POST, "/v1/admin/queues/{name}/pause", API_ADMIN, false, false,
      route_admin_queue_pause },
    { EVHTTP_REQ_POST, "/v1/admin/queues/{name}/resume", API_ADMIN, false, false,
      route_admin_queue_resume },
    { EVHTTP_REQ_GET, "/v1/admin/pools", API_ADMIN, false, false, route_admin_pools },
    { EVHTTP_REQ_GET, "/v1/admin/webhooks/deliveries", API_ADMIN, false, false,
      route_admin_webhook_deliveries },
    { EVHTTP_REQ_POST, "/v1/admin/webhooks/deliveries/{id}/replay", API_ADMIN, false, false,
      route_admin_webhook_replay },
    { EVHTTP_REQ_GET, "/v1/admin/actions", API_ADMIN, false, false, route_admin_actions },
    { EVHTTP_REQ_GET, "/v1/admin/audit", API_ADMIN, false, false, route_admin_audit },
    { EVHTTP_REQ_POST, "/v1/admin/tokens", API_ADMIN, true, false, route_admin_token_create },
    { EVHTTP_REQ_GET, "/v1/admin/tokens", API_ADMIN, false, false, route_admin_token_list },
    { EVHTTP_REQ_GET, "/v1/admin/tokens/{id}", API_ADMIN, false, false, route_admin_token_get },
    { EVHTTP_REQ_POST, "/v1/admin/tokens/{id}/revoke", API_ADMIN, false, false,
      route_admin_token_revoke },
    { EVHTTP_REQ_POST, "/v1/admin/organizers", API_ADMIN, true, false,
      route_admin_organizer_create },
    { EVHTTP_REQ_GET, "/v1/admin/organizers", API_ADMIN, false, false, route_admin_organizer_list },
    { EVHTTP_REQ_GET, "/v1/admin/organizers/{id}", API_ADMIN, false, false,
      route_admin_organizer_get },
    { EVHTTP_REQ_GET, "/v1/admin/jobs", API_ADMIN, false, false, route_admin_jobs },
    { EVHTTP_REQ_GET, "/v1/admin/jobs/{id}", API_ADMIN, false, false, route_admin_job },
    { EVHTTP_REQ_POST, "/v1/admin/jobs/{id}/retry", API_ADMIN, false, false,
      route_admin_job_retry },
    { EVHTTP_REQ_POST, "/v1/admin/jobs/{id}/discard", API_ADMIN, false, false,
      route_admin_job_discard },
    { EVHTTP_REQ_POST, "/v1/admin/jobs/{id}/cancel", API_ADMIN, false, false,
      route_admin_job_cancel },
    { EVHTTP_REQ_POST, "/v1/admin/jobs/retry", API_ADMIN, true, false, route_admin_jobs_retry },
    { EVHTTP_REQ_POST, "/v1/admin/jobs/cancel", API_ADMIN, true, false, route_admin_jobs_cancel },
    { EVHTTP_REQ_POST, "/v1/admin/jobs/discard", API_ADMIN, true, false, route_admin_jobs_discard },
    { EVHTTP_REQ_POST, "/v1/admin/dead/retry", API_ADMIN, true, false, route_admin_dead_retry },
    { EVHTTP_REQ_POST, "/v1/admin/dead/discard", API_ADMIN, true, false, route_admin_dead_discard },
    { EVHTTP_REQ_POST, "/v1/webhooks", API_ORG, true, false, route_webhook_create },
    { EVHTTP_REQ_GET, "/v1/webhooks", API_ORG, false, false, route_webhook_list },
    { EVHTTP_REQ_GET, "/v1/webhooks/{id}", API_ORG, false, false, route_webhook_get },
    { EVHTTP_REQ_PATCH, "/v1/webhooks/{id}", API_ORG, true, false, route_webhook_update },
    { EVHTTP_REQ_DELETE, "/v1/webhooks/{id}", API_ORG, false, false, route_webhook_delete },
    { EVHTTP_REQ_POST, "/v1/webhooks/{id}/enable", API_ORG, false, false, route_webhook_enable },
    { EVHTTP_REQ_POST, "/v1/webhooks/{id}/rotate-secret", API_ORG, false, false,
      route_webhook_rotate_secret },
    { EVHTTP_REQ_GET, "/v1/webhooks/{id}/deliveries", API_ORG, false, false,
      route_webhook_deliveries },
    { EVHTTP_REQ_POST, "/v1/webhooks/deliveries/{id}/replay", API_ORG, false, false,
      route_webhook_replay },
    /* Sessions and their content (sessions.c, session_access.c, content*.c). */
    { EVHTTP_REQ_POST, "/v1/events/{id}/sessions", API_ORG, true, false, route_session_create },
    { EVHTTP_REQ_GET, "/v1/events/{id}/sessions", API_PUBLIC, false, false, route_session_list },
    { EVHTTP_REQ_GET, "/v1/sessions/{id}", API_PUBLIC, false, false, route_session_get },
    { EVHTTP_REQ_PATCH, "/v1/sessions/{id}", API_ORG, true, false, route_session_update },
    { EVHTTP_REQ_DELETE, "/v1/sessions/{id}", API_ORG, false, false, route_session_delete },
    { EVHTTP_REQ_POST, "/v1/sessions/{id}/cancel", API_ORG, false, false, route_session_cancel },
    { EVHTTP_REQ_GET, "/v1/sessions/{id}/access", API_PUBLIC, false, true, route_session_access },
    { EVHTTP_REQ_POST, "/v1/events/{id}/content", API_ORG, false, false, route_content_upload },
    { EVHTTP_REQ_GET, "/v1/events/{id}/content", API_ORG, false, false, route_content_list },
    { EVHTTP_REQ_GET, "/v1/content/{id}", API_PUBLIC, false, false, route_content_get },
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

const char *api_route_label(size_t index)
{
    return index < api_nroutes ? api_routes[index].pattern : "unmatched";
}

const char *api_route_method(size_t index)
{
    return index < api_nroutes ? api_method_name(api_routes[index].method) : "any";
}

/* A positive integer of at most 18 digits (fits int64), or 0. */
static int64_t path_id(const char *s, size_t len)
{
    int64_t v = 0;

    if (len == 0 || len > 18 || s[0] == '0')
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* The end of the segment that starts at s: the next '/' or the string's end. */
static const char *segment_end(const char *s)
{
    const char *slash = strchr(s, '/');

    return slash != NULL ? slash : s + strlen(s);
}

/* Matches path against pattern segment by segment, capturing {id}s and a {name}. */
static bool match(const char *pattern, const char *path, int64_t ids[2], char name[USHER_NAME_MAX])
{
    int nids = 0;

    while (*pattern != '\0' && *path != '\0') {
        const char *pe = segment_end(pattern + 1), *se = segment_end(path + 1);

        if (*pattern != '/' || *path != '/')
            return false;
        if (strncmp(pattern, "/{id}", 5) == 0 && pe == pattern + 5) {
            int64_t id = path_id(path + 1, (size_t)(se - path - 1));

            if (id == 0 || nids == 2)
                return false;
            ids[nids++] = id;
        } else if (strncmp(pattern, "/{name}", 7) == 0 && pe == pattern + 7) {
            size_t len = (size_t)(se - path - 1);

            if (len == 0 || len >= USHER_NAME_MAX)
                return false;
            memcpy(name, path + 1, len);
            name[len] = '\0';
            if (!usher_config_valid_name(name))
                return false;
        } else if (pe - pattern != se - path ||
                   strncmp(pattern, path, (size_t)(pe - pattern)) != 0) {
            return false;
        }
        pattern = pe;
        path = se;
    }
    return *pattern == '\0' && (*path == '\0' || strcmp(path, "/") == 0);
}

static int depth_of(const json_t *v, int limit)
{
    const char *key;
    json_t *child;
    size_t i;
    int deepest = 0;

    if (limit == 0)
        return 1;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, key, child)
        {
            int d = depth_of(child, limit - 1);
            deepest = d > deepest ? d : deepest;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, child)
        {
            int d = depth_of(child, limit - 1);
            deepest = d > deepest ? d : deepest;
        }
    } else {
        return 0;
    }
    return deepest + 1;
}

json_t *api_body_parse(const char *data, size_t len, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *body;

    if (data == NULL || len == 0) {
        snprintf(why, whylen, "the request needs a JSON object body");
        return NULL;
    }
    body = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (body == NULL) {
        snprintf(why, whylen, "the body is not valid JSON: %s (at byte %d)", jerr.text,
                 jerr.position);
        return NULL;
    }
    if (!json_is_object(body)) {
        snprintf(why, whylen, "the body must be a JSON object");
    } else if (depth_of(body, API_JSON_DEPTH_MAX + 1) > API_JSON_DEPTH_MAX) {
        snprintf(why, whylen, "the body nests deeper than %d levels", API_JSON_DEPTH_MAX);
    } else {
        return body;
    }
    json_decref(body);
    return NULL;
}

/* Parses the body of a JSON route; answers and returns false when it is not usable. */
static bool read_body(api_req *r)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->http);
    size_t len = evbuffer_get_length(in);
    const char *type = api_header(r, "Content-Type");
    char why[256];

    if (type != NULL && strncasecmp(type, "application/json", 16) != 0) {
        api_reply_error(r, 415, "unsupported_media_type", "send the body as application/json");
        return false;
    }
    if (len > (size_t)r->loop->srv->cfg->api_body_max_bytes) {
        api_reply_error(r, 413, "too_large", "the body is larger than %d bytes",
                        r->loop->srv->cfg->api_body_max_bytes);
        return false;
    }
    r->body = api_body_parse(len > 0 ? (const char *)evbuffer_pullup(in, -1) : NULL, len, why,
                             sizeof(why));
    if (r->body == NULL) {
        api_reply_error(r, 400, "malformed_json", "%s", why);
        return false;
    }
    return true;
}

/*
 * The rate limit class of a route: registration and check-in are writes;
 * the other /v1 routes are public reads or management; probes, /metrics
 * and the dashboard's files are not limited.
 */
static api_rate_class rate_class(const api_route *route)
{
    if (route->rate_limited)
        return API_RATE_WRITE;
    if (strncmp(route->pattern, "/v1/", 4) != 0)
        return API_RATE_NONE;
    return route->roles == API_PUBLIC ? API_RATE_READ : API_RATE_MANAGE;
}

static void authorized(api_req *r)
{
    unsigned roles = r->route->roles;

    if (roles != API_PUBLIC && (roles & (unsigned)r->auth.role) == 0) {
        if (r->auth.role == USHER_ROLE_NONE)
            api_reply_error(r, 401, "unauthorized", "this route needs a bearer token");
        else
            api_reply_error(r, 403, "forbidden", "the %s role may not call this route",
                            usher_role_name(r->auth.role));
        return;
    }
    api_rate_limit(r, rate_class(r->route), r->route->run);
}

static void client_gone(struct evhttp_connection *conn, void *arg)
{
    api_req *r = arg;

    (void)conn;
    r->http = NULL; /* libevent frees it; the route finishes without an audience */
}

/* Appends name to the comma-separated list allow (of size len) unless it is there. */
static void allow_add(char *allow, size_t len, const char *name)
{
    size_t used = strlen(allow);

    if (strstr(allow, name) != NULL)
        return;
    snprintf(allow + used, len - used, "%s%s", used > 0 ? ", " : "", name);
}

/* A 405 names the methods the path takes (RFC 9110 15.5.6); HEAD goes with GET. */
static void reply_method_not_allowed(api_req *r, const char *path)
{
    char allow[128] = "";

    for (size_t i = 0; i < api_nroutes; i++) {
        int64_t ids[2];
        char name[USHER_NAME_MAX];

        if (!match(api_routes[i].pattern, path, ids, name))
            continue;
        allow_add(allow, sizeof(allow), api_route_method(i));
        if (api_routes[i].method == EVHTTP_REQ_GET)
            allow_add(allow, sizeof(allow), "HEAD");
    }
    api_add_header(r, "Allow", allow);
    api_reply_error(r, 405, "method_not_allowed", "this path takes %s", allow);
}

size_t api_route_find(enum evhttp_cmd_type method, const char *path, int64_t ids[2],
                      char name[USHER_NAME_MAX], bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < api_nroutes; i++) {
        int64_t found_ids[2] = { 0, 0 };
        char found_name[USHER_NAME_MAX] = "";

        if (!match(api_routes[i].pattern, path, found_ids, found_name))
            continue;
        *path_known = true;
        /* HEAD is GET without the body (evhttp leaves it out). */
        if (api_routes[i].method != method &&
            !(method == EVHTTP_REQ_HEAD && api_routes[i].method == EVHTTP_REQ_GET))
            continue;
        memcpy(ids, found_ids, sizeof(found_ids));
        memcpy(name, found_name, sizeof(found_name));
        return i;
    }
    return api_nroutes;
}

static void route_request(api_req *r)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->http);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    bool path_known = false;
    size_t i;

    if (path == NULL) {
        api_reply_error(r, 400, "bad_request", "the request has no path");
        return;
    }
    i = api_route_find(evhttp_request_get_command(r->http), path, r->ids, r->name, &path_known);
    if (i == api_nroutes) {
        if (path_known)
            reply_method_not_allowed(r, path);
        else
            api_reply_error(r, 404, "not_found", "no such route");
        return;
    }
    r->route = &api_routes[i];
    if (r->route->json_body && !read_body(r))
        return;
    /* Only /v1 routes read a token: probes and the dashboard's files
     * answer whatever Authorization a client sends, and never ask the database. */
    if (strncmp(r->route->pattern, "/v1/", 4) != 0)
        authorized(r);
    else
        api_authenticate(r, authorized);
}

void api_dispatch(struct evhttp_request *req, void *arg)
{
    api_loop *loop = arg;
    api_req *r = usher_calloc(1, sizeof(*r));
    char *host = NULL;
    uint16_t port = 0;

    r->loop = loop;
    r->http = req;
    r->conn = evhttp_request_get_connection(req);
    r->start_ns = api_now_ns();
    atomic_fetch_add(&loop->inflight, 1);
    evhttp_connection_get_peer(r->conn, &host, &port);
    api_client_addr_of(&loop->srv->trusted_proxies, host != NULL ? host : "?",
                       evhttp_request_get_input_headers(req), r->client);
    r->method = (int)evhttp_request_get_command(req);
    api_request_id(r, host);
    evhttp_connection_set_closecb(r->conn, client_gone, r);
    if (atomic_load(&loop->srv->draining)) {
        api_add_header(r, "Connection", "close");
        api_reply_error(r, 503, "draining", "the server is shutting down; retry");
        return;
    }
    route_request(r);
}
