/*
 * Rate limits of every route class, through a real usher-api and a Redis of
 * the test's own: public reads per address, management routes per token,
 * and bearer-token lookups per address, so that a client guessing tokens
 * is refused without a query per guess. Limits are set low (60 a minute: a
 * bucket of 10) so that a burst of 15 shows them.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"
#include "testredis.h"
#include "token.h"

TESTDB_SUITE(api_limits, "usher_test_api_limits");

#define BURST 15

static testapi server;
static pid_t redis_pid;
static long long event_id;
static char organizer[USHER_TOKEN_MAX];

static void start(void)
{
    long long org = testdb_organizer(st, "L");
    int64_t id;

    event_id = testdb_event_new(st, org, "Limited", 1, 0).id;
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, org, 0, "t", organizer, &id),
                 USHER_OK);
    redis_pid = testredis_start();
    setenv("USHER_API_RATE_PER_MINUTE", "60", 1);
    setenv("USHER_API_RATE_READ_PER_MINUTE", "60", 1);
    setenv("USHER_API_RATE_MANAGE_PER_MINUTE", "60", 1);
    setenv("USHER_API_AUTH_FAILURES_PER_MINUTE", "60", 1);
    /* Exact counts: on a loaded machine no limiter answer may be dropped as late (50 ms). */
    setenv("USHER_API_REDIS_TIMEOUT_MS", "5000", 1);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 2);
}

static void stop(void)
{
    testapi_stop(&server);
    if (redis_pid > 0)
        testproc_kill(redis_pid);
    redis_pid = 0;
}

typedef struct burst {
    int ok, limited, other;
    long other_status;
} burst;

/* Sends BURST requests; counts 2xx, 429 (each with Retry-After and JSON) and the rest. */
static burst send_burst(const char *path, const char *token, long ok_status)
{
    burst b = { 0 };

    for (int i = 0; i < BURST; i++) {
        testhttp_resp resp;

        testhttp(&server, &(testhttp_req){ "GET", path, token, NULL, NULL, NULL }, &resp);
        if (resp.status == ok_status) {
            b.ok++;
        } else if (resp.status == 429) {
            b.limited++;
            cr_assert_not_null(strstr(resp.headers, "Retry-After: "), "%s", resp.headers);
            cr_assert_str_eq(testhttp_error_code(&resp), "rate_limited");
        } else {
            b.other++;
            b.other_status = resp.status;
        }
        testhttp_resp_free(&resp);
    }
    return b;
}

/* A bucket of 10, plus what a slow machine refilled meanwhile (one a second). */
static void assert_limited(burst b, const char *what)
{
    cr_assert_eq(b.other, 0, "%s: an answer %ld", what, b.other_status);
    cr_assert(b.ok >= 10 && b.ok < BURST, "%s: %d passed, %d limited", what, b.ok, b.limited);
    cr_assert_eq(b.ok + b.limited, BURST);
}

Test(api_limits, public_reads_are_limited_per_address, .init = start, .fini = stop)
{
    char path[64];

    snprintf(path, sizeof(path), "/v1/events/%lld", event_id);
    assert_limited(send_burst(path, NULL, 200), "event details");
}

Test(api_limits, management_routes_are_limited_per_token, .init = start, .fini = stop)
{
    burst b = send_burst("/v1/events", organizer, 200);

    assert_limited(b, "event list");
    /* Probes are never limited. */
    b = send_burst("/healthz", NULL, 200);
    cr_assert_eq(b.ok, BURST, "/healthz was limited");
}

Test(api_limits, guessed_tokens_are_refused_without_a_query_each, .init = start, .fini = stop)
{
    burst b = { 0 };

    for (int i = 0; i < BURST; i++) {
        char token[64];
        testhttp_resp resp;

        snprintf(token, sizeof(token), "usher_guess%040d", i);
        testhttp(&server, &(testhttp_req){ "GET", "/v1/events", token, NULL, NULL, NULL }, &resp);
        b.ok += resp.status == 401;
        b.limited += resp.status == 429;
        testhttp_resp_free(&resp);
    }
    cr_assert(b.ok >= 10 && b.ok < BURST, "%d guesses reached the database", b.ok);
    cr_assert_eq(b.ok + b.limited, BURST);
}

Test(api_limits, valid_tokens_are_never_charged_for_their_lookups, .init = start, .fini = stop)
{
    long long org = testdb_scalar(st, "SELECT organizer_id FROM events LIMIT 1");

    /* Twice the failure bucket of distinct valid tokens, each looked up once. */
    for (int i = 0; i < 20; i++) {
        char token[USHER_TOKEN_MAX];
        testhttp_resp resp;
        int64_t id;

        cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, org, 0, "v", token, &id),
                     USHER_OK);
        testhttp(&server, &(testhttp_req){ "GET", "/v1/events", token, NULL, NULL, NULL }, &resp);
        cr_assert_eq(resp.status, 200, "token %d: %ld %s", i, resp.status, resp.body);
        testhttp_resp_free(&resp);
    }
}
