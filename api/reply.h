/*
 * Ending a request: its answer, its headers, its metrics. Each api_reply_*
 * sends the answer (dropped when the client has gone), counts it and frees
 * the request: a route calls exactly one of them, once.
 */
#ifndef USHER_API_REPLY_H
#define USHER_API_REPLY_H

#include <jansson.h>
#include <stddef.h>

#include "request.h"

/* Answers with JSON (takes body's reference) and ends the request. */
void api_reply_json(api_req *r, int status, json_t *body);

/* Answers {"error": {"code", "message"}} and ends the request; a 503 gets
 * Retry-After: 1 unless the route set one. */
void api_reply_error(api_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Answers with raw bytes of a content type and ends the request. */
void api_reply_raw(api_req *r, int status, const char *content_type, const char *data, size_t len);

/* Adds a response header before the reply (no-op when the client has gone). */
void api_add_header(api_req *r, const char *name, const char *value);

#endif
