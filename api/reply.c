/*
 * Ending a request: the answer, its headers, its metrics, and freeing it.
 * A client that went away while its statement ran is noticed through the
 * connection's close callback, which forgets the evhttp request (libevent
 * frees it); the route still finishes and its answer is dropped.
 */
#include "reply.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access_log.h"
#include "alloc.h"
#include "audit.h"
#include "metrics.h"

/* Counts the answer and frees the request. */
static void done(api_req *r, int status)
{
    double seconds = (double)(api_now_ns() - r->start_ns) / 1e9;

    api_metrics_request(r->loop->srv->metrics, r->route, status, seconds);
    api_audit_request(r, status);
    api_access_log(r, status);
    r->loop->inflight--;
    json_decref(r->body);
    free(r);
}

static void finish(api_req *r, int status, struct evbuffer *out)
{
    r->bytes += out != NULL ? evbuffer_get_length(out) : 0;
    if (r->http != NULL) {
        evhttp_connection_set_closecb(r->conn, NULL, NULL);
        evhttp_send_reply(r->http, status, NULL, out);
    }
    done(r, status);
}

void api_reply_stream_start(api_req *r, int status, const char *content_type)
{
    api_add_header(r, "Content-Type", content_type);
    if (r->http != NULL)
        evhttp_send_reply_start(r->http, status, NULL);
}

int api_reply_stream_send(api_req *r, struct evbuffer *piece,
                          void (*sent)(struct evhttp_connection *, void *), void *arg)
{
    if (r->http == NULL || r->conn == NULL)
        return -1;
    r->bytes += evbuffer_get_length(piece);
    /* libevent adds the bytes, then registers sent: bytes the connection's
     * bufferevent writes out at once, as usher-api's guard does
     * (api/http_guard.c), leave before sent can be called for them. */
    evhttp_send_reply_chunk_with_cb(r->http, piece, sent, arg);
    return evbuffer_get_length(
               bufferevent_get_output(evhttp_connection_get_bufferevent(r->conn))) == 0
               ? 1
               : 0;
}

void api_reply_stream_end(api_req *r, int status)
{
    if (r->conn != NULL)
        evhttp_connection_set_closecb(r->conn, NULL, NULL);
    if (r->http != NULL)
        evhttp_send_reply_end(r->http); /* also frees a request whose connection went */
    done(r, status);
}

void api_add_header(api_req *r, const char *name, const char *value)
{
    if (r->http != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(r->http), name, value);
}
void api_reply_raw(api_req *r, int status, const char *content_type, const char *data, size_t len)
{
    struct evbuffer *out = usher_need(evbuffer_new());

    api_add_header(r, "Content-Type", content_type);
    if (evbuffer_add(out, data, len) != 0)
        usher_oom(len); /* a buffer of our own refuses only for memory */
    finish(r, status, out);
    evbuffer_free(out);
}

void api_reply_json(api_req *r, int status, json_t *body)
{
    char *text = body != NULL ? usher_need(json_dumps(body, JSON_COMPACT)) : NULL;

    json_decref(body);
    if (text == NULL) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";

        api_reply_raw(r, 500, "application/json", oom, sizeof(oom) - 1);
        return;
    }
    api_reply_raw(r, status, "application/json", text, strlen(text));
    free(text);
}

void api_reply_error(api_req *r, int status, const char *code, const char *fmt, ...)
{
    char message[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    /* Every 503 is "try again": no database (a restart, a failover with no
     * primary yet), a draining server, a full offload queue. Clients and
     * balancers are told when, unless the route said it already. */
    if (status == 503 && r->http != NULL &&
        evhttp_find_header(evhttp_request_get_output_headers(r->http), "Retry-After") == NULL)
        api_add_header(r, "Retry-After", "1");
    api_reply_json(r, status,
                   json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message));
}
