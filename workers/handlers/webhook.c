/*
 * notify.webhook: POSTs an event to an organizer's endpoint with
 * X-Usher-Timestamp and X-Usher-Signature ("v1=" + hex HMAC-SHA256 of
 * "TIMESTAMP.BODY" under the endpoint's secret), and logs every attempt
 * (status, latency, error) in webhook_deliveries. 2xx is done; 410 Gone
 * disables the endpoint; 429 retries after its Retry-After; anything else
 * retries with the kind's backoff. Redirects are not followed and only
 * http(s) is spoken, so an endpoint cannot point the worker elsewhere.
 *
 * Unless [webhooks] allow_private_targets is true, every address libcurl
 * is about to connect to passes platform/netguard.h first (its
 * CURLOPT_OPENSOCKETFUNCTION, after DNS): a loopback, private, link-local
 * ... address gets no socket, so neither a URL naming one nor a name that
 * resolves (or re-resolves, DNS rebinding) to one reaches our network.
 * When every address was refused the delivery fails for good: "target
 * address 127.0.0.1 is not allowed (loopback)". Proxies from the
 * environment are ignored then, as the guard must see the real target.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alloc.h"
#include "inttext.h"
#include "job_handlers.h"
#include "netguard.h"

#define RETRY_AFTER_MAX_S 3600
#define RESPONSE_KEEP     512 /* bytes of the response body kept in the error */

static const char endpoint_sql[] =
    "SELECT url, secret, enabled FROM webhook_endpoints WHERE id = $1";
static const char log_sql[] =
    "INSERT INTO webhook_deliveries (endpoint_id, job_id, attempt, event, payload, status_code,"
    " latency_ms, error) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8)";
static const char disable_sql[] =
    "UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2 WHERE id = $1";

typedef struct delivery {
    bool guard; /* refuse what netguard forbids (allow_private_targets is off) */
    long status;
    long retry_after_s; /* -1: none given */
    int latency_ms;
    int sockets;                    /* opened to allowed addresses */
    char refused[INET6_ADDRSTRLEN]; /* the last address refused... */
    usher_net_class refused_class;  /* ...and why */
    bool forbidden;                 /* every address was refused: a permanent failure */
    char error[512];
    char response[RESPONSE_KEEP + 1];
    size_t response_len;
} delivery;

static size_t keep_response(char *data, size_t size, size_t n, void *arg)
{
    delivery *d = arg;
    size_t len = size * n, room = RESPONSE_KEEP - d->response_len;

    memcpy(d->response + d->response_len, data, len < room ? len : room);
    d->response_len += len < room ? len : room;
    d->response[d->response_len] = '\0';
    return len;
}

static size_t read_header(char *line, size_t size, size_t n, void *arg)
{
    delivery *d = arg;
    size_t len = size * n;

    if (len > 12 && strncasecmp(line, "Retry-After:", 12) == 0)
        d->retry_after_s = strtol(line + 12, NULL, 10);
    return len;
}

/*
 * libcurl's CURLOPT_OPENSOCKETFUNCTION: the address it is about to connect
 * to, resolved. A forbidden one gets no socket; curl tries the next one
 * (another A or AAAA record) or fails the transfer with COULDNT_CONNECT.
 */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *address)
{
    delivery *d = arg;
    usher_net_class cls = usher_netguard_sockaddr(&address->addr, address->addrlen);
    curl_socket_t fd;

    (void)purpose; /* http(s) only ever opens connections (CURLSOCKTYPE_IPCXN) */
    if (cls != USHER_NET_PUBLIC) {
        usher_netguard_format(&address->addr, address->addrlen, d->refused, sizeof(d->refused));
        d->refused_class = cls;
        return CURL_SOCKET_BAD;
    }
    fd = socket(address->family, address->socktype, address->protocol);
    if (fd != CURL_SOCKET_BAD)
        d->sockets++;
    return fd;
}

/* What curl may reach: http(s), no redirect, and with d->guard no forbidden address. */
static CURLcode restrict_targets(CURL *curl, delivery *d)
{
    CURLcode rc = curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");

    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    if (rc != CURLE_OK || !d->guard)
        return rc;
    rc = curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, d);
    if (rc == CURLE_OK) /* not $http_proxy: the guard must see the target itself */
        rc = curl_easy_setopt(curl, CURLOPT_PROXY, "");
    return rc;
}

/* hex(HMAC-SHA256(secret, "timestamp.body")) into sig (65 bytes). */
static void sign(const char *secret, const char *timestamp, const char *body, char *sig)
{
    crypto_auth_hmacsha256_state state;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];

    crypto_auth_hmacsha256_init(&state, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&state, (const unsigned char *)timestamp, strlen(timestamp));
    crypto_auth_hmacsha256_update(&state, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&state, (const unsigned char *)body, strlen(body));
    crypto_auth_hmacsha256_final(&state, mac);
    sodium_bin2hex(sig, 2 * sizeof(mac) + 1, mac, sizeof(mac));
}

static void post(const char *url, const char *secret, const char *body, long timeout_ms,
                 delivery *d)
{
    char timestamp[USHER_INT_TEXT_MAX], sig[2 * crypto_auth_hmacsha256_BYTES + 1], header[160];
    struct curl_slist *headers = NULL;
    CURL *curl = curl_easy_init();
    CURLcode rc;
    double seconds = 0;

    d->retry_after_s = -1;
    if (curl == NULL) {
        snprintf(d->error, sizeof(d->error), "cannot start libcurl");
        return;
    }
    usher_int_text(time(NULL), timestamp);
    sign(secret, timestamp, body, sig);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    snprintf(header, sizeof(header), "X-Usher-Timestamp: %s", timestamp);
    headers = curl_slist_append(headers, header);
    snprintf(header, sizeof(header), "X-Usher-Signature: v1=%s", sig);
    headers = curl_slist_append(headers, header);
    rc = restrict_targets(curl, d);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "Usher-Webhooks/1");
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? timeout_ms : 5000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, keep_response);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, d);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, read_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, d);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME, &seconds);
    d->latency_ms = (int)(seconds * 1000);
    d->forbidden = rc != CURLE_OK && d->refused[0] != '\0' && d->sockets == 0;
    if (d->forbidden)
        snprintf(d->error, sizeof(d->error), "target address %s is not allowed (%s)", d->refused,
                 usher_netguard_class_name(d->refused_class));
    else if (rc != CURLE_OK)
        snprintf(d->error, sizeof(d->error), "%s", curl_easy_strerror(rc));
    else
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &d->status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
}

/* Writes the attempt to the delivery log; a failure there only warns in the error. */
static void log_delivery(usher_store *st, int64_t endpoint, const usher_job *job, const char *event,
                         const char *body, const delivery *d)
{
    char ep[USHER_INT_TEXT_MAX], jobid[USHER_INT_TEXT_MAX], attempt[USHER_INT_TEXT_MAX],
        status[USHER_INT_TEXT_MAX], latency[USHER_INT_TEXT_MAX];
    const char *params[] = { ep,      jobid,
                             attempt, event,
                             body,    d->status ? status : NULL,
                             latency, d->error[0] ? d->error : NULL };
    PGresult *res;

    usher_int_text(endpoint, ep);
    usher_int_text(job->id, jobid);
    usher_int_text(job->attempt, attempt);
    usher_int_text(d->status, status);
    usher_int_text(d->latency_ms, latency);
    if (usher_store_exec(st, log_sql, 8, params, &res) == USHER_OK)
        PQclear(res);
}

static void decide(usher_store *st, int64_t endpoint, const delivery *d, usher_handler_result *r)
{
    char ep[USHER_INT_TEXT_MAX];
    const char *params[] = { ep, "410 Gone from the endpoint" };
    PGresult *res;

    if (d->status >= 200 && d->status < 300)
        return;
    if (d->forbidden) {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "%s", d->error);
        return;
    }
    if (d->status == 410) {
        usher_int_text(endpoint, ep);
        if (usher_store_exec(st, disable_sql, 2, params, &res) == USHER_OK)
            PQclear(res);
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "410 Gone: endpoint %lld disabled",
                           (long long)endpoint);
        return;
    }
    if (d->status == 0)
        usher_handler_fail(r, USHER_OUTCOME_RETRY, "%s", d->error);
    else
        usher_handler_fail(r, USHER_OUTCOME_RETRY, "HTTP %ld: %.200s", d->status, d->response);
    if (d->status == 429 && d->retry_after_s >= 0)
        r->delay_ms =
            1000 * (d->retry_after_s < RETRY_AFTER_MAX_S ? d->retry_after_s : RETRY_AFTER_MAX_S);
}

/* The endpoint's url and secret; false (r set) if it is missing or disabled. */
static bool load_endpoint(usher_store *st, int64_t id, char *url, size_t urllen, char *secret,
                          size_t secretlen, usher_handler_result *r)
{
    PGresult *res;
    usher_err err = usher_store_exec_one(st, endpoint_sql, id, "webhook endpoint", &res);
    bool enabled;

    if (err != USHER_OK) {
        usher_handler_store_failed(r, st, err, "notify.webhook");
        return false;
    }
    snprintf(url, urllen, "%s", PQgetvalue(res, 0, 0));
    snprintf(secret, secretlen, "%s", PQgetvalue(res, 0, 1));
    enabled = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
    PQclear(res);
    if (!enabled)
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "endpoint %lld is disabled", (long long)id);
    return enabled;
}

void usher_run_notify_webhook(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                              usher_handler_result *r)
{
    int64_t endpoint = usher_payload_id(payload, "endpoint_id", r);
    const char *event = json_string_value(json_object_get(payload, "event"));
    json_t *data = json_object_get(payload, "data");
    char url[2048], secret[256];
    delivery d = { .guard = !usher_handler_config(ctx)->webhooks_allow_private_targets };
    usher_store *st;
    json_t *envelope;
    char *body;

    if (endpoint == 0)
        return;
    if (event == NULL || event[0] == '\0') {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "payload.event must be a string");
        return;
    }
    if ((st = usher_handler_store(ctx, r)) == NULL ||
        !load_endpoint(st, endpoint, url, sizeof(url), secret, sizeof(secret), r))
        return;
    envelope = json_pack("{s:I, s:s, s:O}", "id", (json_int_t)job->id, "event", event, "data",
                         data != NULL ? data : json_null());
    body =
        envelope != NULL ? usher_need(json_dumps(envelope, JSON_COMPACT | JSON_SORT_KEYS)) : NULL;
    json_decref(envelope);
    if (body == NULL) {
        usher_handler_fail(r, USHER_OUTCOME_RETRY, "cannot build the webhook's envelope");
        return;
    }
    post(url, secret, body, job->timeout_ms > 2000 ? job->timeout_ms - 1000 : 1000, &d);
    log_delivery(st, endpoint, job, event, body, &d);
    decide(st, endpoint, &d, r);
    free(body);
}
