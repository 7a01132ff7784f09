/*
 * GET /v1/events/{id}/analytics over real HTTP against the real usher-api,
 * with the rollups folded by the real usher-worker: registrations,
 * cancellations and check-ins at known gates made through the API are
 * counted exactly, and rollups dated around midnight in Berlin (and across
 * the spring DST change) land in the right local-day buckets. Organizer
 * scope as the other routes; times without an offset are refused with 422
 * naming the field.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enqueue.h"
#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"
#include "token.h"

TESTDB_SUITE(api_analytics, "usher_test_api_analytics");

static testapi server;
static char admin[USHER_TOKEN_MAX], organizer[USHER_TOKEN_MAX], other[USHER_TOKEN_MAX],
    scanner[USHER_TOKEN_MAX];
static long long event, ticket_type;

static long call(testhttp_resp *out, const char *method, const char *tok, const char *body,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static long call(testhttp_resp *out, const char *method, const char *tok, const char *body,
                 const char *fmt, ...)
{
    char path[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    return testhttp(&server, &(testhttp_req){ method, path, tok, body, NULL, NULL }, out);
}

static void start(void)
{
    testhttp_resp resp;
    long long org, other_org;
    int64_t id;

    testdb_exec(st, "TRUNCATE organizers, api_tokens, audit_log RESTART IDENTITY CASCADE");
    org = testdb_scalar(st, "INSERT INTO organizers (name) VALUES ('Berlin') RETURNING id");
    other_org = testdb_scalar(st, "INSERT INTO organizers (name) VALUES ('Other') RETURNING id");
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ADMIN, 0, 0, "a", admin, &id), USHER_OK);
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, org, 0, "o", organizer, &id),
                 USHER_OK);
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, other_org, 0, "x", other, &id),
                 USHER_OK);
    cr_assert_eq(usher_token_create(st, USHER_ROLE_SCANNER, org, 0, "s", scanner, &id), USHER_OK);
    setenv("USHER_API_RATE_PER_MINUTE", "0", 1);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 2);
    cr_assert_eq(call(&resp, "POST", organizer,
                      "{\"name\":\"Nachtkonzert\",\"timezone\":\"Europe/Berlin\","
                      "\"starts_at\":\"2026-03-28T20:00:00+01:00\","
                      "\"ends_at\":\"2026-03-29T04:00:00+02:00\"}",
                      "/v1/events"),
                 201, "%s", resp.body);
    event = json_integer_value(json_object_get(resp.json, "id"));
    testhttp_resp_free(&resp);
    cr_assert_eq(call(&resp, "POST", organizer, "{\"name\":\"Stehplatz\",\"capacity\":100}",
                      "/v1/events/%lld/ticket-types", event),
                 201, "%s", resp.body);
    ticket_type = json_integer_value(json_object_get(resp.json, "id"));
    testhttp_resp_free(&resp);
}

static void stop(void)
{
    testapi_stop(&server);
}

/* A rollup job as a producer dates it: at an instant of our choosing. */
static void rollup(const char *metric, const char *gate, const char *at, int count)
{
    char payload[256];
    usher_enqueued out;

    snprintf(payload, sizeof(payload),
             "{\"event_id\":%lld,\"metric\":\"%s\",\"gate\":\"%s\",\"at\":\"%s\",\"count\":%d}",
             event, metric, gate, at, count);
    cr_assert_eq(usher_enqueue(st,
                               &(usher_enqueue_opts){ .queue = "analytics",
                                                      .kind = "analytics.rollup",
                                                      .payload = payload },
                               &out),
                 USHER_OK, "%s", usher_store_errstr(st));
}

static bool rollups_folded(void *arg)
{
    (void)arg;
    return testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'analytics.rollup'"
                             " AND state IN ('available', 'running')") == 0;
}

/* Runs the analytics pool until every rollup job is folded. */
static void fold_all(void)
{
    char workdir[64];
    pid_t worker = testproc_start_worker(USHER_WORKER_PATH, ANALYTICS_TEST_CONF, "batch",
                                         cfg.database_url, "analytics", workdir);

    cr_assert(testproc_wait_for(rollups_folded, NULL, 60000), "rollups left (see %s)", workdir);
    testproc_stop_cleanly(worker);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'analytics.rollup'"
                                   " AND state = 'dead'"),
                 0, "a rollup died (see %s)", workdir);
}

static long long int_at(json_t *v, const char *a, const char *b)
{
    json_t *x = json_object_get(v, a);

    return json_integer_value(b != NULL ? json_object_get(x, b) : x);
}

Test(api_analytics, local_days_in_berlin_split_at_local_midnight_and_the_dst_change, .init = start,
     .fini = stop)
{
    testhttp_resp resp;
    json_t *buckets, *b;

    rollup("registration", "", "2026-03-28T22:59:30Z", 3); /* 23:59:30 CET, the 28th */
    rollup("registration", "", "2026-03-28T23:00:30Z", 5); /* 00:00:30 CET, the 29th */
    rollup("checkin", "North", "2026-03-28T23:10:00Z", 2);
    rollup("checkin", "South", "2026-03-29T01:30:00Z", 1); /* 03:30 CEST, after the change */
    rollup("cancellation", "", "2026-03-29T21:59:59Z", 1); /* 23:59:59 CEST, the 29th */
    rollup("registration", "", "2026-03-29T22:00:00Z", 4); /* 00:00 CEST, the 30th */
    fold_all();
    cr_assert_eq(call(&resp, "GET", organizer, NULL,
                      "/v1/events/%lld/analytics?from=2026-03-28T00:00:00%%2B01:00"
                      "&to=2026-03-31T00:00:00%%2B02:00&step=day",
                      event),
                 200, "%s", resp.body);
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "timezone")), "Europe/Berlin");
    buckets = json_object_get(resp.json, "buckets");
    cr_assert_eq(json_array_size(buckets), 3, "%s", resp.body);
    b = json_array_get(buckets, 0);
    cr_assert_str_eq(json_string_value(json_object_get(b, "start")), "2026-03-28T00:00:00+01:00");
    cr_assert_eq(int_at(b, "sales", NULL), 3);
    cr_assert_eq(int_at(b, "checkins", NULL), 0);
    b = json_array_get(buckets, 1);
    cr_assert_str_eq(json_string_value(json_object_get(b, "start")), "2026-03-29T00:00:00+01:00");
    cr_assert_eq(int_at(b, "sales", NULL), 5);
    cr_assert_eq(int_at(b, "checkins", NULL), 3);
    cr_assert_eq(int_at(b, "checkins_by_gate", "North"), 2);
    cr_assert_eq(int_at(b, "checkins_by_gate", "South"), 1);
    cr_assert_eq(int_at(b, "cancellations", NULL), 1);
    b = json_array_get(buckets, 2);
    cr_assert_str_eq(json_string_value(json_object_get(b, "start")), "2026-03-30T00:00:00+02:00");
    cr_assert_eq(int_at(b, "sales", NULL), 4);
    cr_assert_eq(int_at(b, "cancellations", NULL), 0);
    cr_assert_eq(int_at(resp.json, "totals", "sales"), 12);
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "to")),
                     "2026-03-31T00:00:00+02:00");
    cr_assert(strstr(resp.headers, "private, max-age=") != NULL, "%s", resp.headers);
    testhttp_resp_free(&resp);
    /* Hours across the change: 00:00 and 01:00 CET, then 03:00 CEST (02:00 never was). */
    cr_assert_eq(call(&resp, "GET", admin, NULL,
                      "/v1/events/%lld/analytics?from=2026-03-29T00:00:00%%2B01:00"
                      "&to=2026-03-29T04:00:00%%2B02:00&step=hour",
                      event),
                 200, "%s", resp.body);
    buckets = json_object_get(resp.json, "buckets");
    cr_assert_eq(json_array_size(buckets), 3, "%s", resp.body);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(buckets, 2), "start")),
                     "2026-03-29T03:00:00+02:00");
    cr_assert_eq(int_at(json_array_get(buckets, 0), "sales", NULL), 5);
    cr_assert_eq(int_at(json_array_get(buckets, 2), "checkins_by_gate", "South"), 1);
    testhttp_resp_free(&resp);
}

/* Now and an hour either side, as RFC 3339 UTC. */
static void around_now(char from[32], char to[32])
{
    long long now_s = (long long)time(NULL) / 60 * 60; /* a whole minute: 120 buckets */
    time_t lo = (time_t)(now_s - 3600), hi = (time_t)(now_s + 3600);
    struct tm tm;

    strftime(from, 32, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&lo, &tm));
    strftime(to, 32, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&hi, &tm));
}

Test(api_analytics, registrations_cancellations_and_checkins_through_the_api_count_exactly,
     .init = start, .fini = stop)
{
    enum { REGISTRATIONS = 12, NORTH = 4, SOUTH = 3, CANCELLED = 2 };
    long long regs[REGISTRATIONS];
    char codes[REGISTRATIONS][128], body[256], from[32], to[32];
    testhttp_resp resp;
    json_t *b;
    size_t i;
    long long sales = 0, checkins = 0;

    for (int k = 0; k < REGISTRATIONS; k++) {
        snprintf(body, sizeof(body),
                 "{\"ticket_type_id\":%lld,\"name\":\"Gast %d\",\"email\":\"g%d@example.org\"}",
                 ticket_type, k, k);
        cr_assert_eq(call(&resp, "POST", NULL, body, "/v1/events/%lld/registrations", event), 201,
                     "%s", resp.body);
        regs[k] = json_integer_value(json_object_get(resp.json, "registration_id"));
        snprintf(codes[k], sizeof(codes[k]), "%s",
                 json_string_value(json_object_get(resp.json, "ticket_code")));
        testhttp_resp_free(&resp);
    }
    for (int k = 0; k < NORTH + SOUTH; k++) {
        snprintf(body, sizeof(body), "{\"ticket_code\":\"%.100s\",\"gate\":\"%s\"}", codes[k],
                 k < NORTH ? "North" : "South");
        cr_assert_eq(call(&resp, "POST", scanner, body, "/v1/checkins"), 200, "%s", resp.body);
        testhttp_resp_free(&resp);
    }
    /* A second scan is not a check-in. */
    snprintf(body, sizeof(body), "{\"ticket_code\":\"%.100s\",\"gate\":\"North\"}", codes[0]);
    cr_assert_eq(call(&resp, "POST", scanner, body, "/v1/checkins"), 409, "%s", resp.body);
    testhttp_resp_free(&resp);
    for (int k = REGISTRATIONS - CANCELLED; k < REGISTRATIONS; k++) {
        cr_assert_eq(call(&resp, "POST", organizer, NULL, "/v1/registrations/%lld/cancel", regs[k]),
                     200, "%s", resp.body);
        testhttp_resp_free(&resp);
    }
    /* Cancelling again counts nothing more. */
    cr_assert_eq(call(&resp, "POST", organizer, NULL, "/v1/registrations/%lld/cancel",
                      regs[REGISTRATIONS - 1]),
                 200);
    testhttp_resp_free(&resp);
    fold_all();
    around_now(from, to);
    cr_assert_eq(call(&resp, "GET", organizer, NULL,
                      "/v1/events/%lld/analytics?from=%s&to=%s&step=minute", event, from, to),
                 200, "%s", resp.body);
    cr_assert_eq(int_at(resp.json, "totals", "sales"), REGISTRATIONS, "%s", resp.body);
    cr_assert_eq(int_at(resp.json, "totals", "cancellations"), CANCELLED);
    cr_assert_eq(int_at(resp.json, "totals", "checkins"), NORTH + SOUTH);
    cr_assert_eq(int_at(json_object_get(resp.json, "totals"), "checkins_by_gate", "North"), NORTH);
    cr_assert_eq(int_at(json_object_get(resp.json, "totals"), "checkins_by_gate", "South"), SOUTH);
    cr_assert_eq(
        json_object_size(json_object_get(json_object_get(resp.json, "totals"), "checkins_by_gate")),
        2);
    /* 120 minutes, each listed; the buckets add up to the totals. */
    cr_assert_eq(json_array_size(json_object_get(resp.json, "buckets")), 120);
    json_array_foreach(json_object_get(resp.json, "buckets"), i, b)
    {
        sales += int_at(b, "sales", NULL);
        checkins += int_at(b, "checkins", NULL);
    }
    cr_assert_eq(sales, REGISTRATIONS);
    cr_assert_eq(checkins, NORTH + SOUTH);
    testhttp_resp_free(&resp);
    /* The same rows in the event's local day. */
    cr_assert_eq(call(&resp, "GET", admin, NULL, "/v1/events/%lld/analytics?from=%s&to=%s&step=day",
                      event, from, to),
                 200, "%s", resp.body);
    cr_assert_eq(int_at(resp.json, "totals", "sales"), REGISTRATIONS);
    cr_assert_eq(int_at(resp.json, "totals", "cancellations"), CANCELLED);
    /* Local midnight, at CET or CEST as the date falls. */
    cr_assert(strstr(json_string_value(json_object_get(resp.json, "from")), "T00:00:00+0") != NULL,
              "%s", resp.body);
    testhttp_resp_free(&resp);
}

/* The count of the event's rows of table that match cond. */
static long long event_rows(const char *table, const char *cond)
{
    char sql[256];

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE event_id = %lld AND %s", table, event,
             cond);
    return testdb_scalar(st, sql);
}

static bool fanout_done(void *arg)
{
    (void)arg;
    return event_rows("event_messages", "kind = 'event_cancelled' AND state = 'done'") == 1 &&
           testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'message.fanout'"
                             " AND state IN ('available', 'running')") == 0;
}

/*
 * The event's cancellation cancels its registrations in message.fanout
 * batches (the shipped configuration's notifications pool runs them); each
 * cancellation is counted once, as one through its own route is.
 */
Test(api_analytics, an_event_cancellation_counts_each_cancelled_registration_once, .init = start,
     .fini = stop)
{
    enum { REGISTRATIONS = 9, CANCELLED_BEFORE = 2 };
    long long regs[REGISTRATIONS];
    char body[256], from[32], to[32], workdir[64];
    const char *shipped = getenv("USHER_CONFIG");
    testhttp_resp resp;
    pid_t fanout;

    cr_assert(shipped != NULL, "USHER_CONFIG names the shipped configuration under ctest");
    for (int k = 0; k < REGISTRATIONS; k++) {
        snprintf(body, sizeof(body),
                 "{\"ticket_type_id\":%lld,\"name\":\"Gast %d\",\"email\":\"c%d@example.org\"}",
                 ticket_type, k, k);
        cr_assert_eq(call(&resp, "POST", NULL, body, "/v1/events/%lld/registrations", event), 201,
                     "%s", resp.body);
        regs[k] = json_integer_value(json_object_get(resp.json, "registration_id"));
        testhttp_resp_free(&resp);
    }
    for (int k = 0; k < CANCELLED_BEFORE; k++) {
        cr_assert_eq(call(&resp, "POST", organizer, NULL, "/v1/registrations/%lld/cancel", regs[k]),
                     200, "%s", resp.body);
        testhttp_resp_free(&resp);
    }
    cr_assert_eq(call(&resp, "POST", organizer, "{}", "/v1/events/%lld/cancel", event), 202, "%s",
                 resp.body);
    testhttp_resp_free(&resp);
    fanout = testproc_start_worker(USHER_WORKER_PATH, shipped, "realtime", cfg.database_url,
                                   "fanout", workdir);
    cr_assert(testproc_wait_for(fanout_done, NULL, 60000), "the fan-out did not finish (see %s)",
              workdir);
    testproc_stop_cleanly(fanout);
    cr_assert_eq(event_rows("registrations", "status = 'cancelled'"), REGISTRATIONS);
    fold_all();
    around_now(from, to);
    cr_assert_eq(call(&resp, "GET", organizer, NULL,
                      "/v1/events/%lld/analytics?from=%s&to=%s&step=hour", event, from, to),
                 200, "%s", resp.body);
    cr_assert_eq(int_at(resp.json, "totals", "sales"), REGISTRATIONS, "%s", resp.body);
    cr_assert_eq(int_at(resp.json, "totals", "cancellations"), REGISTRATIONS, "%s", resp.body);
    testhttp_resp_free(&resp);
}

Test(api_analytics, organizers_see_only_their_own_events, .init = start, .fini = stop)
{
    static const char q[] = "from=2026-03-28T00:00:00Z&to=2026-03-29T00:00:00Z&step=hour";
    testhttp_resp resp;

    /* Twice each: a miss, then the cached answer, which is scoped the same way. */
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(call(&resp, "GET", organizer, NULL, "/v1/events/%lld/analytics?%s", event, q),
                     200, "%s", resp.body);
        cr_assert_eq(json_array_size(json_object_get(resp.json, "buckets")), 24);
        testhttp_resp_free(&resp);
        cr_assert_eq(call(&resp, "GET", other, NULL, "/v1/events/%lld/analytics?%s", event, q), 404,
                     "%s", resp.body);
        cr_assert(strstr(resp.body, "Berlin") == NULL, "%s", resp.body);
        testhttp_resp_free(&resp);
    }
    cr_assert_eq(call(&resp, "GET", admin, NULL, "/v1/events/%lld/analytics?%s", event, q), 200);
    testhttp_resp_free(&resp);
    cr_assert_eq(call(&resp, "GET", scanner, NULL, "/v1/events/%lld/analytics?%s", event, q), 403);
    testhttp_resp_free(&resp);
    cr_assert_eq(call(&resp, "GET", NULL, NULL, "/v1/events/%lld/analytics?%s", event, q), 401);
    testhttp_resp_free(&resp);
    cr_assert_eq(call(&resp, "GET", admin, NULL, "/v1/events/987654321/analytics?%s", q), 404);
    testhttp_resp_free(&resp);
}

Test(api_analytics, times_without_an_offset_and_other_bad_parameters_are_422_naming_the_field,
     .init = start, .fini = stop)
{
    static const char *const cases[][2] = {
        { "from=2026-03-28T00:00:00&to=2026-03-29T00:00:00Z", "from" },
        { "from=2026-03-28&to=2026-03-29T00:00:00Z", "from" },
        { "from=2026-03-28T00:00:00Z&to=2026-03-29T00:00:00", "to" },
        { "from=2026-03-28T00:00:00Z", "to" },
        { "to=2026-03-29T00:00:00Z", "from" },
        { "from=2026-03-29T00:00:00Z&to=2026-03-28T00:00:00Z", "to" },
        { "from=2026-03-28T00:00:00Z&to=2026-03-29T00:00:00Z&step=week", "step" },
        { "from=2026-03-28T00:00:00Z&to=2026-03-30T00:00:00Z&step=minute", "step" },
        { "from=2026-03-28T00:00:00Z&to=2030-03-30T00:00:00Z&step=day", "step" },
    };
    testhttp_resp resp;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(
            call(&resp, "GET", organizer, NULL, "/v1/events/%lld/analytics?%s", event, cases[i][0]),
            422, "%s: %s", cases[i][0], resp.body);
        cr_assert_str_eq(
            json_string_value(json_object_get(json_object_get(resp.json, "error"), "field")),
            cases[i][1], "%s: %s", cases[i][0], resp.body);
        testhttp_resp_free(&resp);
    }
    /* A "+" sent unencoded reads as a space: taken back as the offset it was. */
    cr_assert_eq(call(&resp, "GET", organizer, NULL,
                      "/v1/events/%lld/analytics?from=2026-03-28T00:00:00+01:00"
                      "&to=2026-03-29T00:00:00+01:00&step=day",
                      event),
                 200, "%s", resp.body);
    cr_assert_eq(json_array_size(json_object_get(resp.json, "buckets")), 1);
    testhttp_resp_free(&resp);
}
