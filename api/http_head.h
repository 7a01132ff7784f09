/*
 * A request head (request line, header fields, the empty line) read
 * strictly, as RFC 9112 asks of a server, before libevent sees it: api/http_guard.c
 * feeds the bytes as they arrive to the scanner, which finds where the
 * head ends and refuses a bare CR, a bare LF or a control byte at once;
 * the parser then reads the whole head and refuses what libevent would
 * read differently from us (request smuggling) or answer with its own
 * HTML page. No I/O; an absolute-form target (rare) goes through
 * libevent's own URI parser, as it would after us.
 */
#ifndef USHER_API_HTTP_HEAD_H
#define USHER_API_HTTP_HEAD_H

#include <event2/http.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Where the scanner is in a head; zero-initialise before the first byte. */
typedef struct api_head_scan {
    size_t len; /* bytes scanned so far (the whole head once DONE, through the bad byte once BAD) */
    size_t skip;     /* empty lines before the request line (RFC 9112 2.2 lets us drop them) */
    size_t line_len; /* bytes of the current line, CR LF excluded */
    bool cr;         /* the byte before was a CR */
    bool started;    /* the request line has begun */
} api_head_scan;

typedef enum api_head_state {
    API_HEAD_MORE, /* the head goes on past these bytes */
    API_HEAD_DONE, /* s->len is the head's length, through its empty line */
    API_HEAD_BAD,  /* a bare CR or LF, or a control byte: refuse with 400 */
} api_head_state;

/* Scans the next n bytes of a head; stops at the end of the head. */
api_head_state api_head_scan_feed(api_head_scan *s, const unsigned char *p, size_t n);

/* What the guard needs of a head; pointers point into the head. */
typedef struct api_head {
    enum evhttp_cmd_type method; /* one that libevent 2.1.12 knows */
    const char *target;          /* the request-target, len target_len (not NUL-terminated) */
    size_t target_len;
    int minor;              /* HTTP/1.minor: 0 or 1 */
    int64_t content_length; /* -1: no Content-Length field */
    bool authorization;     /* an Authorization field is present */
    bool expect_continue;   /* Expect: 100-continue */
    bool connection_other;  /* a Connection field whose first value is not "close" */
} api_head;

/* Why a head was refused: the status to answer and the API's error code. */
typedef struct api_head_error {
    int status;          /* 400, 411, 417, 501 or 505 */
    const char *code;    /* "bad_request", ... */
    const char *message; /* a sentence for the client (no quotes or backslashes) */
} api_head_error;

/*
 * Parses a whole head of len bytes (as scanned: no bare CR or LF, no
 * control bytes, empty lines before it already dropped). Returns true and
 * fills out, or false with err set.
 */
USHER_MUSTCHECK bool api_head_parse(const char *head, size_t len, api_head *out,
                                    api_head_error *err);

/* True for the methods whose requests may carry a body (libevent reads no other's). */
bool api_head_method_has_body(enum evhttp_cmd_type method);

#endif
