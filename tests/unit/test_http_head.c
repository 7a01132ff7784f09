/*
 * The strict reading of request heads (api/http_head.c): where a head
 * ends, what is refused and with which status, and what a good head
 * tells the guard.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "http_head.h"

/* Scans text whole; returns the state and leaves the scan in s. */
static api_head_state scan_all(const char *text, api_head_scan *s)
{
    memset(s, 0, sizeof(*s));
    return api_head_scan_feed(s, (const unsigned char *)text, strlen(text));
}

/* Parses a head that scans whole; returns the status (0 when accepted). */
static int parse(const char *text, api_head *h)
{
    api_head_scan s;
    api_head_error err = { 0 };

    cr_assert_eq(scan_all(text, &s), API_HEAD_DONE, "did not scan: %s", text);
    cr_assert_eq(s.len, strlen(text), "%s", text);
    return api_head_parse(text + s.skip, s.len - s.skip, h, &err) ? 0 : err.status;
}

Test(http_head, the_scanner_stops_at_the_empty_line_byte_by_byte)
{
    const char *text = "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next";
    api_head_scan s = { 0 };
    api_head_state st = API_HEAD_MORE;
    size_t fed = 0;

    while (st == API_HEAD_MORE && fed < strlen(text))
        st = api_head_scan_feed(&s, (const unsigned char *)text + fed++, 1);
    cr_assert_eq(st, API_HEAD_DONE);
    cr_assert_eq(s.len, 27);
    cr_assert_eq(fed, 27);
}

Test(http_head, the_scanner_refuses_bare_line_ends_and_control_bytes)
{
    api_head_scan s;

    cr_assert_eq(scan_all("GET / HTTP/1.1\nHost: x\n\n", &s), API_HEAD_BAD);
    cr_assert_eq(scan_all("GET / HTTP/1.1\rHost: x\r\n\r\n", &s), API_HEAD_BAD);
    cr_assert_eq(scan_all("GET / HTTP/1.1\r\nHost: \x01x\r\n\r\n", &s), API_HEAD_BAD);
    cr_assert_eq(scan_all("GET / HTTP/1.1\r\nHost: x\x7f\r\n\r\n", &s), API_HEAD_BAD);
    cr_assert_eq(api_head_scan_feed(&(api_head_scan){ 0 }, (const unsigned char *)"GET /\0", 6),
                 API_HEAD_BAD);
    cr_assert_eq(scan_all("GET / HTTP/1.1\r\nX: a\tb\r\n\r\n", &s), API_HEAD_DONE, "a tab is fine");
}

Test(http_head, empty_lines_before_the_request_line_are_skipped)
{
    api_head h;
    api_head_scan s;

    cr_assert_eq(scan_all("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", &s), API_HEAD_DONE);
    cr_assert_eq(s.skip, 4);
    cr_assert_eq(parse("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", &h), 0);
}

Test(http_head, a_good_head_tells_method_target_length_and_token)
{
    api_head h;

    cr_assert_eq(parse("POST /v1/checkins?x=1 HTTP/1.1\r\nhost: a\r\ncontent-length:  42 \r\n"
                       "Authorization: Bearer t\r\nExpect: 100-continue\r\n\r\n",
                       &h),
                 0);
    cr_assert_eq(h.method, EVHTTP_REQ_POST);
    cr_assert_eq(h.target_len, strlen("/v1/checkins?x=1"));
    cr_assert_eq(memcmp(h.target, "/v1/checkins?x=1", h.target_len), 0);
    cr_assert_eq(h.minor, 1);
    cr_assert_eq(h.content_length, 42);
    cr_assert(h.authorization);
    cr_assert(h.expect_continue);
    cr_assert_eq(parse("GET /healthz HTTP/1.0\r\n\r\n", &h), 0, "HTTP/1.0 needs no Host");
    cr_assert_eq(h.content_length, -1);
    cr_assert_eq(parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", &h), 0);
    cr_assert_eq(parse("GET http://a.example/x HTTP/1.1\r\nHost: a\r\n\r\n", &h), 0);
}

Test(http_head, smuggling_shapes_are_400)
{
    api_head h;

    cr_assert_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n",
                       &h),
                 400);
    cr_assert_eq(
        parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n", &h),
        400);
    cr_assert_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\n", &h), 400);
    cr_assert_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\n", &h), 400);
    cr_assert_eq(
        parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n", &h),
        400);
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", &h), 400, "obs-fold");
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost : a\r\n\r\n", &h), 400, "space before colon");
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost a\r\n\r\n", &h), 400, "no colon");
    cr_assert_eq(parse("GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n", &h), 400, "no name");
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", &h), 400);
    cr_assert_eq(parse("GET / HTTP/1.1\r\n\r\n", &h), 400, "HTTP/1.1 without Host");
    cr_assert_eq(parse("HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", &h), 400,
                 "libevent reads no body after HEAD");
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", &h), 400);
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &h), 0);
}

Test(http_head, bodies_without_a_length_are_411)
{
    api_head h;

    cr_assert_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &h),
                 411);
    cr_assert_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", &h), 411);
    cr_assert_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &h), 0);
    cr_assert_eq(parse("POST / HTTP/1.1\r\nHost: a\r\n\r\n", &h), 0, "no length: no body");
}

Test(http_head, request_lines_are_read_strictly)
{
    api_head h;

    cr_assert_eq(parse("HELLO\r\n\r\n", &h), 400);
    cr_assert_eq(parse("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", &h), 400);
    cr_assert_eq(parse("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", &h), 400);
    cr_assert_eq(parse("GET / http/1.1\r\nHost: a\r\n\r\n", &h), 400);
    cr_assert_eq(parse("GET x HTTP/1.1\r\nHost: a\r\n\r\n", &h), 400, "not a path");
    cr_assert_eq(parse("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", &h), 400);
    cr_assert_eq(parse("GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", &h), 400, "raw UTF-8");
    cr_assert_eq(parse("GET http://a:99999999/ HTTP/1.1\r\nHost: a\r\n\r\n", &h), 400,
                 "a port libevent refuses");
    cr_assert_eq(parse("GET / HTTP/2.0\r\nHost: a\r\n\r\n", &h), 505);
    cr_assert_eq(parse("GET / HTTP/1.2\r\nHost: a\r\n\r\n", &h), 505);
    cr_assert_eq(parse("get / HTTP/1.1\r\nHost: a\r\n\r\n", &h), 501, "methods are case-sensitive");
    cr_assert_eq(parse("PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n", &h), 501);
    cr_assert_eq(parse("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", &h), 0, "the router answers 405");
}

Test(http_head, only_100_continue_is_expected)
{
    api_head h;

    cr_assert_eq(
        parse("POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n", &h),
        417);
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", &h), 0,
                 "libevent looks at Expect only for a body");
}
