/*
 * The cache warm-up (api/cache_warm.h) against a real usher-api, PostgreSQL
 * and a Redis of the test's own: it stores exactly the door answers of the
 * sessions in its window (every registration of their event, a cancelled
 * one's "no" included) and their event's details, and nothing of sessions
 * outside it or cancelled; it never overwrites a held key; a cancellation
 * after the warm-up closes the door at once and a later warm-up does not
 * open it again; two usher-api processes do not both warm a session; and
 * with Redis down everything answers from the database, the warm-up
 * resuming when Redis is back.
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

TESTDB_SUITE(cache_warm, "usher_test_cache_warm");

#define REGISTRATIONS 5 /* of the event with sessions in the window; one of them cancelled */
#define DEADLINE_MS   60000

static testapi api[2];
static pid_t redis_pid;
static int redis_port;
static long long event_id, other_event, ticket_type;
static long long reg[REGISTRATIONS];
static char code[REGISTRATIONS][128];
static long long running, soon, later, called_off, elsewhere; /* sessions */
static char organizer[USHER_TOKEN_MAX];

static long long insert_session(long long event, const char *starts, bool cancelled)
{
    char sql[384];

    snprintf(sql, sizeof(sql),
             "INSERT INTO sessions (event_id, title, starts_at, ends_at, cancelled_at)"
             " VALUES (%lld, 'S', now() + interval '%s', now() + interval '%s' + interval '1 hour',"
             " %s) RETURNING id",
             event, starts, starts, cancelled ? "now()" : "NULL");
    return testdb_scalar(st, sql);
}

/* Registers attendee i through the API (for its ticket code). */
static void register_attendee(int i)
{
    testhttp_resp resp;
    char path[96], body[192];

    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", event_id);
    snprintf(body, sizeof(body),
             "{\"ticket_type_id\":%lld,\"name\":\"A %d\",\"email\":\"a%d@example.org\"}",
             ticket_type, i, i);
    cr_assert_eq(testhttp(&api[0], &(testhttp_req){ "POST", path, NULL, body, NULL, NULL }, &resp),
                 201, "%s", resp.body);
    reg[i] = json_integer_value(json_object_get(resp.json, "registration_id"));
    snprintf(code[i], sizeof(code[i]), "%s",
             json_string_value(json_object_get(resp.json, "ticket_code")));
    testhttp_resp_free(&resp);
}

/*
 * Seeds, with the warm-up off: an event with REGISTRATIONS registrations
 * (the last cancelled in the database) and sessions running, starting in
 * 30 minutes, in 2 days (outside the window) and cancelled; another event
 * with one registration and a session in 10 days. Sessions of earlier tests
 * are cancelled, so they stay out of the window.
 */
static void seed(void)
{
    char sql[256];
    int64_t id;

    redis_pid = testredis_start_with(NULL, &redis_port);
    setenv("USHER_API_RATE_PER_MINUTE", "0", 1);
    testdb_exec(st, "UPDATE sessions SET cancelled_at = now() WHERE cancelled_at IS NULL");
    long long org = testdb_organizer(st, "W");
    testdb_event e = testdb_event_new(st, org, "Warm", 1, 100);
    testdb_event o = testdb_event_new(st, org, "Other", 20, 100);

    event_id = e.id;
    ticket_type = e.ticket_type;
    other_event = o.id;
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, org, 0, "t", organizer, &id),
                 USHER_OK);
    setenv("USHER_API_CACHE_WARM_WINDOW_S", "0", 1);
    testapi_start(&api[0], USHER_API_PATH, cfg.database_url, 1);
    for (int i = 0; i < REGISTRATIONS; i++)
        register_attendee(i);
    testapi_stop(&api[0]);
    snprintf(sql, sizeof(sql), "UPDATE registrations SET status = 'cancelled' WHERE id = %lld",
             reg[REGISTRATIONS - 1]);
    testdb_exec(st, sql);
    snprintf(sql, sizeof(sql),
             "INSERT INTO registrations (event_id, ticket_type_id, name, email)"
             " SELECT %lld, id, 'B', 'b@example.org' FROM ticket_types"
             " WHERE event_id = %lld",
             other_event, other_event);
    testdb_exec(st, sql);
    running = insert_session(event_id, "-10 minutes", false);
    soon = insert_session(event_id, "30 minutes", false);
    later = insert_session(event_id, "2 days", false);
    called_off = insert_session(event_id, "0 minutes", true);
    elsewhere = insert_session(other_event, "10 days", false);
    setenv("USHER_API_CACHE_WARM_WINDOW_S", "3600", 1);
}

static void stop(void)
{
    testapi_stop(&api[0]);
    testapi_stop(&api[1]);
    if (redis_pid > 0)
        testproc_kill(redis_pid);
}

static long long metric(const testapi *a, const char *line_prefix)
{
    testhttp_resp resp;
    const char *at;
    long long v = -1;

    testapi_scrape(a, &resp);
    at = strstr(resp.body, line_prefix);
    if (at != NULL)
        v = atoll(at + strlen(line_prefix));
    testhttp_resp_free(&resp);
    return v;
}

#define WARMED_SESSIONS "usher_cache_warm_sessions_total{result=\"warmed\"} "
#define CLAIMED         "usher_cache_warm_sessions_total{result=\"claimed\"} "
#define WARMED_ACCESS   "usher_cache_warmed_total{cache=\"access\"} "
#define WARMED_EVENTS   "usher_cache_warmed_total{cache=\"event\"} "
#define ACCESS_HITS     "usher_cache_requests_total{cache=\"access\",result=\"hit\"} "
#define ACCESS_MISSES   "usher_cache_requests_total{cache=\"access\",result=\"miss\"} "

/* Every running API has looked at n sessions in its window (warmed or left) at least. */
typedef struct looked {
    int napi;
    long long n;
} looked;

static bool all_looked(void *arg)
{
    const looked *l = arg;

    for (int i = 0; i < l->napi; i++) {
        if (metric(&api[i], WARMED_SESSIONS) + metric(&api[i], CLAIMED) < l->n)
            return false;
    }
    return true;
}

/* redis-cli's output for args, first line, "" if none; malloc'd. */
static char *redis(const char *args)
{
    char cmd[512], *out = calloc(1, 512);
    FILE *p;

    cr_assert_not_null(out);
    snprintf(cmd, sizeof(cmd), "redis-cli -u '%s' --raw %s", getenv("USHER_REDIS_URL"), args);
    p = popen(cmd, "r");
    cr_assert_not_null(p, "%s", cmd);
    if (fgets(out, 512, p) == NULL)
        out[0] = '\0';
    cr_assert_eq(pclose(p), 0, "%s", cmd);
    out[strcspn(out, "\r\n")] = '\0';
    return out;
}

static long long redis_number(const char *args)
{
    char *out = redis(args);
    long long v = atoll(out);

    free(out);
    return v;
}

/* The cached door answer of registration r at session s ("" if none); malloc'd. */
static char *door_entry(long long s, long long r)
{
    char args[128];

    snprintf(args, sizeof(args), "GET usher:v1:access:%lld:%lld", s, r);
    return redis(args);
}

/* The access keys in Redis (the test's Redis holds nothing else of the kind). */
static long long access_keys(void)
{
    char cmd[256];
    FILE *p;
    long long n = 0;
    char line[256];

    snprintf(cmd, sizeof(cmd), "redis-cli -u '%s' --raw --scan --pattern 'usher:v1:access:*'",
             getenv("USHER_REDIS_URL"));
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    while (fgets(line, sizeof(line), p) != NULL)
        n++;
    cr_assert_eq(pclose(p), 0);
    return n;
}

/* The door's answer for attendee i at session s: true for access. */
static bool door_open(long long s, int i)
{
    testhttp_resp resp;
    char path[256];
    bool open;

    snprintf(path, sizeof(path), "/v1/sessions/%lld/access?ticket_code=%s", s, code[i]);
    cr_assert_eq(testhttp(&api[0], &(testhttp_req){ "GET", path, NULL, NULL, NULL, NULL }, &resp),
                 200, "%s", resp.body);
    open = json_is_true(json_object_get(resp.json, "access"));
    testhttp_resp_free(&resp);
    return open;
}

Test(cache_warm, fills_exactly_the_door_answers_of_sessions_in_its_window, .init = seed,
     .fini = stop)
{
    char args[128], *v;
    looked l = { 1, 2 };

    /* A key held by a cancellation in progress is left alone. */
    snprintf(args, sizeof(args), "SET usher:v1:access:%lld:%lld - PX 600000", soon, reg[0]);
    free(redis(args));
    testapi_start(&api[0], USHER_API_PATH, cfg.database_url, 2);
    cr_assert(testproc_wait_for(all_looked, &l, DEADLINE_MS), "the warm-up never ran");
    cr_assert_eq(metric(&api[0], WARMED_SESSIONS), 2); /* the claims outlast the test */
    cr_assert_eq(metric(&api[0], WARMED_ACCESS), 2 * REGISTRATIONS - 1);
    cr_assert_eq(metric(&api[0], WARMED_EVENTS), 2);
    cr_assert_eq(access_keys(), 2 * REGISTRATIONS);
    for (int i = 0; i < REGISTRATIONS; i++) {
        const char *want = i == REGISTRATIONS - 1 ? "\"reason\":\"cancelled\"" : "\"access\":true";

        v = door_entry(running, reg[i]);
        cr_assert(strstr(v, want) != NULL, "running, registration %d: '%s'", i, v);
        free(v);
        v = door_entry(soon, reg[i]);
        if (i == 0)
            cr_assert_str_eq(v, "-", "the warm-up overwrote a held key");
        else
            cr_assert(strstr(v, want) != NULL, "soon, registration %d: '%s'", i, v);
        free(v);
        v = door_entry(later, reg[i]);
        cr_assert_str_eq(v, "", "a session outside the window was warmed");
        free(v);
        v = door_entry(called_off, reg[i]);
        cr_assert_str_eq(v, "", "a cancelled session was warmed");
        free(v);
    }
    snprintf(args, sizeof(args), "EXISTS usher:v1:event:%lld", event_id);
    cr_assert_eq(redis_number(args), 1, "the event's details were not warmed");
    snprintf(args, sizeof(args), "EXISTS usher:v1:event:%lld", other_event);
    cr_assert_eq(redis_number(args), 0);
    /* The doors answer from the cache: hits only, and the same answers as the database. */
    for (int i = 0; i < REGISTRATIONS; i++)
        cr_assert_eq(door_open(running, i), i != REGISTRATIONS - 1, "attendee %d", i);
    cr_assert_eq(metric(&api[0], ACCESS_HITS), REGISTRATIONS);
    cr_assert_eq(metric(&api[0], ACCESS_MISSES), 0);
}

static bool warmed_twice(void *arg)
{
    (void)arg;
    return metric(&api[0], WARMED_SESSIONS) >= 3;
}

Test(cache_warm, a_cancelled_registration_loses_access_after_the_warm_up, .init = seed,
     .fini = stop)
{
    testhttp_resp resp;
    char path[96], args[96];
    looked l = { 1, 2 };

    testapi_start(&api[0], USHER_API_PATH, cfg.database_url, 1);
    cr_assert(testproc_wait_for(all_looked, &l, DEADLINE_MS), "the warm-up never ran");
    cr_assert(door_open(running, 0));
    cr_assert_eq(metric(&api[0], ACCESS_HITS), 1);
    snprintf(path, sizeof(path), "/v1/registrations/%lld/cancel", reg[0]);
    cr_assert_eq(
        testhttp(&api[0], &(testhttp_req){ "POST", path, organizer, NULL, NULL, NULL }, &resp), 200,
        "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_not(door_open(running, 0), "a cancelled ticket still opens the warmed door");
    cr_assert_not(door_open(soon, 0));
    /* The next round (its claim dropped) stores the database's answer: still closed. */
    snprintf(args, sizeof(args), "DEL usher:v1:warm:%lld", running);
    free(redis(args));
    cr_assert(testproc_wait_for(warmed_twice, NULL, DEADLINE_MS), "no second warm-up");
    cr_assert_not(door_open(running, 0), "the warm-up opened a cancelled ticket's door again");
    cr_assert(door_open(running, 1));
}

Test(cache_warm, two_api_processes_do_not_both_warm_a_session, .init = seed, .fini = stop)
{
    looked l = { 2, 2 };

    testapi_start(&api[0], USHER_API_PATH, cfg.database_url, 1);
    testapi_start(&api[1], USHER_API_PATH, cfg.database_url, 1);
    cr_assert(testproc_wait_for(all_looked, &l, DEADLINE_MS), "the warm-ups never ran");
    /* Each process looked at both sessions; each was warmed by exactly one of them. */
    cr_assert_eq(metric(&api[0], WARMED_SESSIONS) + metric(&api[1], WARMED_SESSIONS), 2);
    cr_assert_geq(metric(&api[0], CLAIMED) + metric(&api[1], CLAIMED), 2);
    cr_assert_eq(metric(&api[0], WARMED_ACCESS) + metric(&api[1], WARMED_ACCESS),
                 2 * REGISTRATIONS);
    cr_assert_eq(metric(&api[0], WARMED_EVENTS) + metric(&api[1], WARMED_EVENTS), 2);
    cr_assert_eq(access_keys(), 2 * REGISTRATIONS);
}

Test(cache_warm, with_redis_down_everything_answers_and_the_warm_up_resumes_after, .init = seed,
     .fini = stop)
{
    testhttp_resp resp;
    char path[64];
    looked l = { 1, 2 };

    testproc_kill(redis_pid);
    redis_pid = 0;
    testapi_start(&api[0], USHER_API_PATH, cfg.database_url, 1);
    for (int i = 0; i < REGISTRATIONS; i++)
        cr_assert_eq(door_open(running, i), i != REGISTRATIONS - 1, "attendee %d", i);
    snprintf(path, sizeof(path), "/v1/events/%lld", event_id);
    cr_assert_eq(testhttp(&api[0], &(testhttp_req){ "GET", path, NULL, NULL, NULL, NULL }, &resp),
                 200, "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(
        testhttp(&api[0], &(testhttp_req){ "GET", "/readyz", NULL, NULL, NULL, NULL }, &resp), 200,
        "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(metric(&api[0], WARMED_SESSIONS), 0);
    cr_assert_eq(metric(&api[0], WARMED_ACCESS), 0);
    cr_assert_eq(metric(&api[0], ACCESS_MISSES), REGISTRATIONS);
    /* Redis is back: the warm-up does its work. */
    redis_pid = testredis_start_on(redis_port, NULL);
    cr_assert(testproc_wait_for(all_looked, &l, DEADLINE_MS), "the warm-up did not resume");
    cr_assert_eq(metric(&api[0], WARMED_ACCESS), 2 * REGISTRATIONS);
    cr_assert_eq(access_keys(), 2 * REGISTRATIONS);
}
