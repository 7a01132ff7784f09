/*
 * usher-api behind a load balancer: X-Forwarded-For is believed only from
 * api.trusted_proxies, so the rate limits (a bucket of 10 at 1 a minute:
 * exact counts) and the auth-failure bucket see the real client behind a
 * trusted proxy, and the connecting address otherwise. A real usher-api
 * and a Redis of the test's own; the test's connections come from
 * 127.0.0.1, which plays the proxy.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"
#include "testredis.h"

TESTDB_SUITE(api_proxy, "usher_test_api_proxy");

#define BURST  15
#define BUCKET 10 /* 1 a minute refills nothing during a test */

static testapi server;
static pid_t redis_pid;
static char event_path[64];

static void start_trusting(const char *proxies)
{
    long long org = testdb_organizer(st, "P");

    snprintf(event_path, sizeof(event_path), "/v1/events/%lld",
             testdb_event_new(st, org, "Proxied", 1, 0).id);
    redis_pid = testredis_start();
    setenv("USHER_API_RATE_PER_MINUTE", "1", 1);
    setenv("USHER_API_RATE_READ_PER_MINUTE", "1", 1);
    setenv("USHER_API_AUTH_FAILURES_PER_MINUTE", "1", 1);
    /* Exact counts: on a loaded machine no limiter answer may be dropped as late (50 ms). */
    setenv("USHER_API_REDIS_TIMEOUT_MS", "5000", 1);
    if (proxies != NULL)
        setenv("USHER_API_TRUSTED_PROXIES", proxies, 1);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 2);
}

static void trusting_loopback(void)
{
    start_trusting("10.0.0.0/8, 127.0.0.1 2001:db8::/32");
}

static void trusting_nobody(void)
{
    start_trusting(NULL);
}

static void trusting_others(void)
{
    start_trusting("10.0.0.0/8 ::1");
}

static void stop(void)
{
    testapi_stop(&server);
    if (redis_pid > 0)
        testproc_kill(redis_pid);
    redis_pid = 0;
}

/* BURST reads of the event with header (or none); how many were served (the rest must be 429). */
static int served(const char *header)
{
    int ok = 0;

    for (int i = 0; i < BURST; i++) {
        testhttp_resp resp;

        testhttp(&server, &(testhttp_req){ "GET", event_path, NULL, NULL, header, NULL }, &resp);
        cr_assert(resp.status == 200 || resp.status == 429, "%s: %ld %s", header, resp.status,
                  resp.body);
        ok += resp.status == 200;
        testhttp_resp_free(&resp);
    }
    return ok;
}

/* BURST guessed tokens with header; how many were looked up (401; the rest must be 429). */
static int guesses_looked_up(const char *header)
{
    int looked_up = 0;

    for (int i = 0; i < BURST; i++) {
        char token[64];
        testhttp_resp resp;

        snprintf(token, sizeof(token), "usher_guess%040d", i);
        testhttp(&server, &(testhttp_req){ "GET", "/v1/events", token, NULL, header, NULL }, &resp);
        cr_assert(resp.status == 401 || resp.status == 429, "%s: %ld %s", header, resp.status,
                  resp.body);
        looked_up += resp.status == 401;
        testhttp_resp_free(&resp);
    }
    return looked_up;
}

Test(api_proxy, behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket,
     .init = trusting_loopback, .fini = stop)
{
    cr_assert_eq(served("X-Forwarded-For: 203.0.113.7"), BUCKET);
    cr_assert_eq(served("X-Forwarded-For: 203.0.113.8"), BUCKET,
                 "a second client is not the first");
    /* What the client wrote left of its own address is never read. */
    cr_assert_eq(served("X-Forwarded-For: 203.0.113.8, 203.0.113.9"), BUCKET);
    /* A trusted hop (10.x) is skipped; the same client in another spelling shares its bucket. */
    cr_assert_eq(served("X-Forwarded-For: 198.51.100.1, 203.0.113.7, 10.1.2.3"), 0);
    cr_assert_eq(served("X-Forwarded-For: ::ffff:203.0.113.7"), 0);
    cr_assert_eq(served("X-Forwarded-For: 2001:0db8::7, 2001:db8:1::1"), BUCKET,
                 "2001:db8::/32 is trusted: every entry is, so the left-most is the client");
    cr_assert_eq(served("X-Forwarded-For: 2001:db8::7"), 0, "the same client as the line above");
    /* No header, then a malformed one: the proxy itself (127.0.0.1) is the client. */
    cr_assert_eq(served(NULL), BUCKET);
    cr_assert_eq(served("X-Forwarded-For: unknown"), 0, "a malformed header counts as the peer");
    cr_assert_eq(served("X-Forwarded-For: 203.0.113.50,"), 0);
}

Test(api_proxy, behind_a_trusted_proxy_token_guesses_are_counted_per_forwarded_client,
     .init = trusting_loopback, .fini = stop)
{
    cr_assert_eq(guesses_looked_up("X-Forwarded-For: 192.0.2.10"), BUCKET);
    cr_assert_eq(guesses_looked_up("X-Forwarded-For: 192.0.2.10"), 0);
    cr_assert_eq(guesses_looked_up("X-Forwarded-For: 192.0.2.11"), BUCKET,
                 "one guesser behind the balancer locked another out");
    cr_assert_eq(guesses_looked_up(NULL), BUCKET);
}

/* One request from each of BURST forwarded addresses: all must share the peer's bucket. */
static void assert_header_ignored(void)
{
    int ok = 0;

    for (int i = 0; i < BURST; i++) {
        char header[64];
        testhttp_resp resp;

        snprintf(header, sizeof(header), "X-Forwarded-For: 203.0.113.%d", i + 1);
        testhttp(&server, &(testhttp_req){ "GET", event_path, NULL, NULL, header, NULL }, &resp);
        cr_assert(resp.status == 200 || resp.status == 429, "%ld %s", resp.status, resp.body);
        ok += resp.status == 200;
        testhttp_resp_free(&resp);
    }
    cr_assert_eq(ok, BUCKET, "the forwarded addresses were believed");
    cr_assert_eq(served(NULL), 0);
    cr_assert_eq(guesses_looked_up("X-Forwarded-For: 192.0.2.10"), BUCKET);
    cr_assert_eq(guesses_looked_up("X-Forwarded-For: 192.0.2.11"), 0);
}

Test(api_proxy, without_trusted_proxies_the_header_is_ignored, .init = trusting_nobody,
     .fini = stop)
{
    assert_header_ignored();
}

Test(api_proxy, a_peer_outside_the_trusted_proxies_is_the_client, .init = trusting_others,
     .fini = stop)
{
    assert_header_ignored();
}

static void logging_trusting_loopback(void)
{
    setenv("USHER_API_ACCESS_LOG", "true", 1);
    trusting_loopback();
}

static void logging_trusting_others(void)
{
    setenv("USHER_API_ACCESS_LOG", "true", 1);
    trusting_others();
}

/* Lines of the server's log holding text. */
static int log_lines_with(const char *text)
{
    cr_assert_eq(access(server.log, R_OK), 0, "%s", server.log);
    return testproc_log_lines(server.log, text);
}

static bool logged(void *arg)
{
    return log_lines_with(arg) == 1;
}

/* GET the event with header; the X-Request-Id the answer carries, into id. */
static void get_event(const char *header, char id[80])
{
    testhttp_resp resp;
    const char *at;

    cr_assert_eq(
        testhttp(&server, &(testhttp_req){ "GET", event_path, NULL, NULL, header, NULL }, &resp),
        200);
    at = strstr(resp.headers, "X-Request-Id: ");
    cr_assert_not_null(at, "no X-Request-Id in %s", resp.headers);
    cr_assert_eq(sscanf(at, "X-Request-Id: %79[^\r\n]", id), 1);
    testhttp_resp_free(&resp);
}

static void assert_generated(const char *id)
{
    cr_assert_eq(strlen(id), 16, "%s", id);
    cr_assert_eq(strspn(id, "0123456789abcdef"), 16, "%s", id);
}

/*
 * A trusted proxy's X-Request-Id is kept, returned and logged with the
 * route's template (never the path's id); a malformed one is replaced.
 */
Test(api_proxy, a_trusted_proxys_request_id_is_kept_returned_and_logged,
     .init = logging_trusting_loopback, .fini = stop)
{
    char id[80], line[256];

    get_event("X-Request-Id: lb-2026.12.06:42", id);
    cr_assert_str_eq(id, "lb-2026.12.06:42");
    snprintf(line, sizeof(line),
             "access request_id=lb-2026.12.06:42 client=127.0.0.1 method=GET"
             " route=/v1/events/{id} status=200 bytes=");
    cr_assert(testproc_wait_for(logged, line, 30000), "no line \"%s\" in %s", line, server.log);
    cr_assert_eq(log_lines_with(event_path), 0, "the path's id was logged");
    get_event("X-Request-Id: two words", id);
    assert_generated(id);
    get_event(NULL, id);
    assert_generated(id);
}

Test(api_proxy, an_untrusted_peers_request_id_is_replaced, .init = logging_trusting_others,
     .fini = stop)
{
    char id[80], line[128];

    get_event("X-Request-Id: chosen-by-client", id);
    assert_generated(id);
    snprintf(line, sizeof(line), "access request_id=%s client=127.0.0.1", id);
    cr_assert(testproc_wait_for(logged, line, 30000), "no line \"%s\" in %s", line, server.log);
    cr_assert_eq(log_lines_with("chosen-by-client"), 0);
}

Test(api_proxy, a_bad_trusted_proxies_value_stops_usher_api_at_start)
{
    char said[1024];

    setenv("USHER_API_TRUSTED_PROXIES", "10.0.0.0/8, 10.1.0.0/8", 1);
    cr_assert_eq(testapi_refused(USHER_API_PATH, cfg.database_url, 1, said, sizeof(said)), 1, "%s",
                 said);
    cr_assert_not_null(strstr(said, "trusted_proxies"), "%s", said);
    cr_assert_not_null(strstr(said, "'10.1.0.0/8'"), "%s", said);
}
