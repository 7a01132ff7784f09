/*
 * Ending a request: its answer, its headers, its metrics. Each api_reply_*
 * sends the answer (dropped when the client has gone), counts it and frees
 * the request: a route calls exactly one of them, once.
 */
#ifndef USHER_API_REPLY_H
#define USHER_API_REPLY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include <event2/http.h>

#include "request.h"

/* Answers with JSON (takes body's reference) and ends the request. */
void api_reply_json(api_req *r, int status, json_t *body);

/* Answers {"error": {"code", "message"}} and ends the request; a 503 gets
 * Retry-After: 1 unless the route set one. */
void api_reply_error(api_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Answers with raw bytes of a content type and ends the request. */
void api_reply_raw(api_req *r, int status, const char *content_type, const char *data, size_t len);

/*
 * A streamed answer, for a body sent piece by piece as the client takes it
 * (a document read from the database, api/docsend.c). The caller sets
 * Content-Length before the start (so no chunked encoding is used), then
 * sends the pieces one after another: sent(conn, arg) runs once a piece has
 * gone to the socket, and never when the client goes first; it may also run
 * for a piece that api_reply_stream_send said had gone. Whoever
 * streams watches the connection (evhttp_connection_set_closecb on r->conn)
 * and, when it closes, sets r->conn to NULL and keeps r->http: libevent
 * leaves that request to api_reply_stream_end to free. api_reply_stream_end
 * ends the answer (or what is left of it), counts it and frees the request.
 */
void api_reply_stream_start(api_req *r, int status, const char *content_type);
/*
 * Queues piece's bytes (moved out of it): 0 when they wait for the socket
 * (sent will be called), 1 when they have gone already (sent is not called
 * for them), -1 when the client has gone.
 */
USHER_MUSTCHECK int api_reply_stream_send(api_req *r, struct evbuffer *piece,
                                          void (*sent)(struct evhttp_connection *, void *),
                                          void *arg);
void api_reply_stream_end(api_req *r, int status);

/* Adds a response header before the reply (no-op when the client has gone). */
void api_add_header(api_req *r, const char *name, const char *value);

#endif
