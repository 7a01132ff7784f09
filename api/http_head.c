/*
 * Reading a request head strictly. The scanner runs over bytes as they
 * arrive and keeps four facts (bytes seen, bytes of empty lines before the
 * request line, the current line's length, whether the last byte was a
 * CR), so a head split over many reads costs no more than one read whole.
 * The parser then walks the complete head line by line; the scanner has
 * already made sure every CR is followed by LF and no LF stands alone.
 *
 * The rules follow RFC 9112 where libevent 2.1.12 is lenient (it takes a
 * bare LF as a line end, joins obs-fold lines, reads the first of two
 * Content-Lengths and strtoll's the value, prefers Transfer-Encoding):
 * whatever the two of us could read differently is refused here, so that
 * what passes means the same to libevent as it did to the guard. The
 * value trimming copies libevent's (leading spaces, trailing spaces and
 * tabs), so a Connection value reads the same to both.
 */
#include "http_head.h"

#include <string.h>
#include <strings.h>

#include "validate.h"

/* Bytes a line may hold as they are: visible ASCII, space, tab and obs-text (0x80-0xff). */
static bool ordinary(unsigned char c)
{
    return (c >= 0x20 && c != 0x7f) || c == '\t';
}

api_head_state api_head_scan_feed(api_head_scan *s, const unsigned char *p, size_t n)
{
    api_head_state st = API_HEAD_MORE;
    size_t i = 0;

    while (i < n && st == API_HEAD_MORE) {
        unsigned char c = p[i++];

        if (s->cr) {
            s->cr = false;
            if (c != '\n')
                st = API_HEAD_BAD; /* a CR not followed by LF */
            else if (s->line_len > 0)
                s->line_len = 0;
            else if (s->started)
                st = API_HEAD_DONE;
            else
                s->skip = s->len + i; /* an empty line before the request line */
        } else if (ordinary(c)) {
            size_t from = i - 1;

            while (i < n && ordinary(p[i]))
                i++;
            s->line_len += i - from;
            s->started = true;
        } else if (c == '\r') {
            s->cr = true;
        } else {
            st = API_HEAD_BAD; /* a bare LF, NUL or another control byte */
        }
    }
    s->len += i;
    return st;
}

static const struct {
    const char *name;
    enum evhttp_cmd_type method;
} methods[] = {
    { "GET", EVHTTP_REQ_GET },       { "POST", EVHTTP_REQ_POST },
    { "HEAD", EVHTTP_REQ_HEAD },     { "PUT", EVHTTP_REQ_PUT },
    { "DELETE", EVHTTP_REQ_DELETE }, { "OPTIONS", EVHTTP_REQ_OPTIONS },
    { "TRACE", EVHTTP_REQ_TRACE },   { "CONNECT", EVHTTP_REQ_CONNECT },
    { "PATCH", EVHTTP_REQ_PATCH },
};

bool api_head_method_has_body(enum evhttp_cmd_type method)
{
    return method == EVHTTP_REQ_POST || method == EVHTTP_REQ_PUT || method == EVHTTP_REQ_PATCH;
}

static bool fail(api_head_error *err, int status, const char *code, const char *message)
{
    err->status = status;
    err->code = code;
    err->message = message;
    return false;
}

/* RFC 9110 5.6.2: a token character. */
static bool tchar(unsigned char c)
{
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return true;
    default:
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    }
}

static size_t token_len(const char *p, const char *end)
{
    const char *q = p;

    while (q < end && tchar((unsigned char)*q))
        q++;
    return (size_t)(q - p);
}

static bool visible(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
            return false;
    return true;
}

/* An origin-form path, "*", or an absolute http(s) URI that libevent can parse. */
static bool target_ok(const char *t, size_t len)
{
    char copy[2048];
    struct evhttp_uri *uri;

    if (len == 0 || !visible(t, len))
        return false;
    if (t[0] == '/' || (len == 1 && t[0] == '*'))
        return true;
    if (!(len > 7 && strncasecmp(t, "http://", 7) == 0) &&
        !(len > 8 && strncasecmp(t, "https://", 8) == 0))
        return false;
    /* Absolute-form is rare (proxies): libevent's own parser decides, as it
     * would after us (it refuses some ports and hosts with a 400 page). */
    if (len >= sizeof(copy))
        return false;
    memcpy(copy, t, len);
    copy[len] = '\0';
    uri = evhttp_uri_parse_with_flags(copy, EVHTTP_URI_NONCONFORMANT);
    if (uri == NULL)
        return false;
    evhttp_uri_free(uri);
    return true;
}

static bool parse_request_line(const char *p, const char *eol, api_head *out, api_head_error *err)
{
    size_t mlen = token_len(p, eol);
    const char *target = p + mlen + 1, *version;

    if (mlen == 0 || target >= eol || p[mlen] != ' ')
        return fail(err, 400, "bad_request", "the request line is not METHOD TARGET HTTP/1.1");
    version = memchr(target, ' ', (size_t)(eol - target));
    if (version == NULL)
        return fail(err, 400, "bad_request", "the request line is not METHOD TARGET HTTP/1.1");
    out->target = target;
    out->target_len = (size_t)(version - target);
    version++;
    if (eol - version == 8 && memcmp(version, "HTTP/1.", 7) == 0 &&
        (version[7] == '0' || version[7] == '1')) {
        out->minor = version[7] - '0';
    } else if (eol - version == 8 && memcmp(version, "HTTP/", 5) == 0 && version[5] >= '0' &&
               version[5] <= '9' && version[6] == '.' && version[7] >= '0' && version[7] <= '9') {
        return fail(err, 505, "http_version_not_supported", "this server speaks HTTP/1.0 and 1.1");
    } else {
        return fail(err, 400, "bad_request", "the request line is not METHOD TARGET HTTP/1.1");
    }
    out->method = 0;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strlen(methods[i].name) == mlen && memcmp(methods[i].name, p, mlen) == 0)
            out->method = methods[i].method;
    if (out->method == 0)
        return fail(err, 501, "not_implemented", "this server does not implement that method");
    if (!target_ok(out->target, out->target_len))
        return fail(err, 400, "bad_request",
                    "the request target must be a path of visible ASCII characters");
    return true;
}

/* Counts of the fields that must not repeat, and what the checks after the fields need. */
typedef struct fields {
    int content_lengths, hosts, expects, connections;
    bool transfer_encoding, expect_other;
} fields;

static bool named(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* A Content-Length value: 1 to 18 digits, nothing else. */
static bool content_length(const char *v, size_t len, int64_t *out)
{
    char digits[20];

    if (len >= sizeof(digits))
        return false;
    memcpy(digits, v, len);
    digits[len] = '\0';
    return api_parse_whole(digits, 0, INT64_MAX, out);
}

static bool parse_field(const char *p, const char *eol, api_head *out, fields *f,
                        api_head_error *err)
{
    size_t nlen = token_len(p, eol);
    const char *v = p + nlen + 1, *vend = eol;

    if (*p == ' ' || *p == '\t')
        return fail(err, 400, "bad_request", "folded header lines (obs-fold) are not accepted");
    if (nlen == 0 || p + nlen >= eol || p[nlen] != ':')
        return fail(err, 400, "bad_request",
                    "a header line is not NAME: VALUE (no space may precede the colon)");
    while (v < vend && *v == ' ')
        v++;
    while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
        vend--;
    if (named(p, nlen, "Content-Length")) {
        if (++f->content_lengths > 1)
            return fail(err, 400, "bad_request", "the request has more than one Content-Length");
        if (!content_length(v, (size_t)(vend - v), &out->content_length))
            return fail(err, 400, "bad_request", "Content-Length must be a number of bytes");
    } else if (named(p, nlen, "Transfer-Encoding")) {
        f->transfer_encoding = true;
    } else if (named(p, nlen, "Host")) {
        f->hosts++;
    } else if (named(p, nlen, "Authorization")) {
        out->authorization = true;
    } else if (named(p, nlen, "Expect") && f->expects++ == 0) {
        out->expect_continue = named(v, (size_t)(vend - v), "100-continue");
        f->expect_other = !out->expect_continue;
    } else if (named(p, nlen, "Connection") && f->connections++ == 0) {
        out->connection_other = !named(v, (size_t)(vend - v), "close");
    }
    return true;
}

/* The checks across fields, in libevent's order of reading them. */
static bool framing_ok(const api_head *h, const fields *f, api_head_error *err)
{
    if (f->transfer_encoding && h->content_length >= 0)
        return fail(err, 400, "bad_request",
                    "the request has both Content-Length and Transfer-Encoding");
    if (f->transfer_encoding)
        return fail(err, 411, "length_required",
                    "send the body with a Content-Length (chunked bodies are not accepted)");
    if (f->hosts > 1 || (h->minor == 1 && f->hosts == 0))
        return fail(err, 400, "bad_request", "an HTTP/1.1 request has exactly one Host field");
    if (h->content_length > 0 && !api_head_method_has_body(h->method))
        return fail(err, 400, "bad_request", "only POST, PUT and PATCH requests take a body");
    if (h->minor == 1 && h->content_length > 0 && f->expect_other)
        return fail(err, 417, "expectation_failed", "the only expectation met is 100-continue");
    /* libevent cannot tell where such a body ends and answers 400 itself. */
    if (h->content_length < 0 && api_head_method_has_body(h->method) && h->connection_other)
        return fail(err, 411, "length_required",
                    "a request that keeps its connection open needs a Content-Length");
    return true;
}

bool api_head_parse(const char *head, size_t len, api_head *out, api_head_error *err)
{
    const char *end = head + len, *p = head, *eol;
    fields f = { 0 };

    memset(out, 0, sizeof(*out));
    out->content_length = -1;
    eol = memchr(p, '\r', (size_t)(end - p));
    if (eol == NULL || !parse_request_line(p, eol, out, err))
        return eol != NULL ? false : fail(err, 400, "bad_request", "the head is incomplete");
    for (p = eol + 2; p < end; p = eol + 2) {
        eol = memchr(p, '\r', (size_t)(end - p));
        if (eol == NULL)
            return fail(err, 400, "bad_request", "the head is incomplete");
        if (eol == p)
            break; /* the empty line */
        if (!parse_field(p, eol, out, &f, err))
            return false;
    }
    return framing_ok(out, &f, err);
}
