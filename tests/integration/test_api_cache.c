/*
 * usher-api with a Redis of the test's own (so it can be stopped): the
 * cache serves repeated reads without asking PostgreSQL, a change through
 * the API invalidates it, a stale entry is served while one refresh runs,
 * a cancellation closes the session doors at once and gives the seat back,
 * rate limits answer 429 with Retry-After, and with Redis gone the API
 * still answers correctly from the database.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"
#include "testredis.h"
#include "token.h"

TESTDB_SUITE(api_cache, "usher_test_api_cache");

static testapi server;
static pid_t redis_pid;
static long long event_id, ticket_type_id;
static char organizer[USHER_TOKEN_MAX];

static void start_with(const char *rate, const char *ttl)
{
    int64_t id;

    redis_pid = testredis_start();
    setenv("USHER_API_RATE_PER_MINUTE", rate, 1);
    setenv("USHER_API_CACHE_EVENT_TTL_S", ttl, 1);

    long long org = testdb_scalar(st, "INSERT INTO organizers (name) VALUES ('C') RETURNING id");
    char sql[512];

    snprintf(sql, sizeof(sql),
             "INSERT INTO events (organizer_id, name, starts_at, ends_at)"
             " VALUES (%lld, 'Cached', now(), now() + interval '1 day') RETURNING id",
             org);
    event_id = testdb_scalar(st, sql);
    snprintf(sql, sizeof(sql),
             "INSERT INTO ticket_types (event_id, name, capacity) VALUES (%lld, 'GA', 100)"
             " RETURNING id",
             event_id);
    ticket_type_id = testdb_scalar(st, sql);
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, org, 0, "t", organizer, &id),
                 USHER_OK);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 1);
}

static void start(void)
{
    start_with("0", "30");
}

static void stop(void)
{
    testapi_stop(&server);
    if (redis_pid > 0)
        testproc_kill(redis_pid);
}

static char *get_event(long expect_status, testhttp_resp *resp)
{
    char path[64];

    snprintf(path, sizeof(path), "/v1/events/%lld", event_id);
    testhttp(&server, &(testhttp_req){ "GET", path, NULL, NULL, NULL, NULL }, resp);
    cr_assert_eq(resp->status, expect_status, "%s", resp->body);
    return resp->body;
}

static const char *name_of(testhttp_resp *resp)
{
    return json_string_value(json_object_get(resp->json, "name"));
}

static long long metric(const char *line_prefix)
{
    testhttp_resp resp;
    const char *at;
    long long v = -1;

    testhttp(&server, &(testhttp_req){ "GET", "/metrics", NULL, NULL, NULL, NULL }, &resp);
    at = strstr(resp.body, line_prefix);
    if (at != NULL)
        v = atoll(at + strlen(line_prefix));
    testhttp_resp_free(&resp);
    return v;
}

Test(api_cache, a_second_read_comes_from_the_cache_and_a_change_invalidates_it, .init = start,
     .fini = stop)
{
    testhttp_resp a, b, c, d, e;
    char sql[256], path[64], header[128];

    get_event(200, &a);
    cr_assert_str_eq(name_of(&a), "Cached");
    /* Changed behind the API's back: a cached read cannot see it. */
    snprintf(sql, sizeof(sql), "UPDATE events SET name = 'Changed directly' WHERE id = %lld",
             event_id);
    testdb_exec(st, sql);
    get_event(200, &b);
    cr_assert_str_eq(b.body, a.body, "the second read went to the database");
    cr_assert_eq(metric("usher_cache_requests_total{cache=\"event\",result=\"hit\"} "), 1);
    cr_assert_eq(metric("usher_cache_requests_total{cache=\"event\",result=\"miss\"} "), 1);
    /* The browser's copy is still current: 304. */
    const char *etag = strstr(b.headers, "ETag: ");
    cr_assert_not_null(etag);
    snprintf(header, sizeof(header), "If-None-Match: %.*s", (int)strcspn(etag + 6, "\r\n"),
             etag + 6);
    snprintf(path, sizeof(path), "/v1/events/%lld", event_id);
    testhttp(&server, &(testhttp_req){ "GET", path, NULL, NULL, header, NULL }, &c);
    cr_assert_eq(c.status, 304, "%s", c.body);
    /* A change through the API drops the entry. */
    testhttp(&server,
             &(testhttp_req){ "PATCH", path, organizer, "{\"venue\":\"Hall 2\"}", NULL, NULL }, &d);
    cr_assert_eq(d.status, 200, "%s", d.body);
    get_event(200, &e);
    cr_assert_str_eq(name_of(&e), "Changed directly");
    cr_assert_str_eq(json_string_value(json_object_get(e.json, "venue")), "Hall 2");
    testhttp_resp_free(&a);
    testhttp_resp_free(&b);
    testhttp_resp_free(&c);
    testhttp_resp_free(&d);
    testhttp_resp_free(&e);
}

static void start_short_ttl(void)
{
    start_with("0", "1");
}

typedef struct wait_name {
    const char *want;
} wait_name;

static bool name_is(void *arg)
{
    testhttp_resp resp;
    bool same;

    get_event(200, &resp);
    same = strcmp(name_of(&resp), ((wait_name *)arg)->want) == 0;
    testhttp_resp_free(&resp);
    return same;
}

static bool hit_count_grows(void *arg)
{
    testhttp_resp resp;

    get_event(200, &resp);
    testhttp_resp_free(&resp);
    return metric("usher_cache_requests_total{cache=\"event\",result=\"hit\"} ") >
           *(long long *)arg;
}

Test(api_cache, a_stale_entry_is_served_while_one_refresh_reloads_it, .init = start_short_ttl,
     .fini = stop)
{
    testhttp_resp first;
    char sql[256];
    long long hits = 0;

    get_event(200, &first);
    testhttp_resp_free(&first);
    snprintf(sql, sizeof(sql), "UPDATE events SET name = 'Refreshed' WHERE id = %lld", event_id);
    testdb_exec(st, sql);
    /* Within the TTL: hits of the old entry. Past it: stale hits, then the refresh lands. */
    cr_assert(testproc_wait_for(hit_count_grows, &hits, 10000));
    cr_assert(testproc_wait_for(name_is, &(wait_name){ "Refreshed" }, 30000),
              "the stale entry was never refreshed");
    /* Only hits: the refresh ran behind requests, none of them missed. */
    cr_assert_eq(metric("usher_cache_requests_total{cache=\"event\",result=\"miss\"} "), 1);
}

/* A registration through the API and a session of its event: *reg, code, *session. */
static void attendee(long long *reg, char *code, size_t len, long long *session)
{
    testhttp_resp resp;
    char path[96], sql[256], body[160];

    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", event_id);
    snprintf(body, sizeof(body),
             "{\"ticket_type_id\":%lld,\"name\":\"Door\",\"email\":\"door@example.org\"}",
             ticket_type_id);
    cr_assert_eq(testhttp(&server, &(testhttp_req){ "POST", path, NULL, body, NULL, NULL }, &resp),
                 201, "%s", resp.body);
    *reg = json_integer_value(json_object_get(resp.json, "registration_id"));
    snprintf(code, len, "%s", json_string_value(json_object_get(resp.json, "ticket_code")));
    testhttp_resp_free(&resp);
    snprintf(sql, sizeof(sql),
             "INSERT INTO sessions (event_id, title, starts_at, ends_at)"
             " VALUES (%lld, 'Keynote', now(), now() + interval '1 hour') RETURNING id",
             event_id);
    *session = testdb_scalar(st, sql);
}

typedef struct door {
    long long session;
    const char *code;
} door;

static double wall_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool wall_past(void *arg)
{
    return wall_s() > *(double *)arg;
}

/* The session door's answer for the code: true for access. */
static bool door_open(const door *d)
{
    testhttp_resp resp;
    char path[256];
    bool open;

    snprintf(path, sizeof(path), "/v1/sessions/%lld/access?ticket_code=%s", d->session, d->code);
    cr_assert_eq(testhttp(&server, &(testhttp_req){ "GET", path, NULL, NULL, NULL, NULL }, &resp),
                 200, "%s", resp.body);
    open = json_is_true(json_object_get(resp.json, "access"));
    testhttp_resp_free(&resp);
    return open;
}

static bool door_closed(void *arg)
{
    return !door_open(arg);
}

/* The value of key in the test's Redis (redis-cli), "" when there is none; malloc'd. */
static char *redis_get(const char *key)
{
    char cmd[512], *out = calloc(1, 256);
    FILE *p;

    cr_assert_not_null(out);
    snprintf(cmd, sizeof(cmd), "redis-cli -u '%s' --raw GET '%s'", getenv("USHER_REDIS_URL"), key);
    p = popen(cmd, "r");
    cr_assert_not_null(p, "%s", cmd);
    if (fgets(out, 256, p) == NULL)
        out[0] = '\0';
    cr_assert_eq(pclose(p), 0, "%s", cmd);
    out[strcspn(out, "\r\n")] = '\0';
    return out;
}

static const char *door_key(long long session, long long reg)
{
    static char key[64];

    snprintf(key, sizeof(key), "usher:v1:access:%lld:%lld", session, reg);
    return key;
}

static long cancel(long long reg, const char *token, testhttp_resp *resp)
{
    char path[96];

    snprintf(path, sizeof(path), "/v1/registrations/%lld/cancel", reg);
    return testhttp(&server, &(testhttp_req){ "POST", path, token, NULL, NULL, NULL }, resp);
}

Test(api_cache, a_cancellation_closes_every_door_at_once_and_gives_the_seat_back, .init = start,
     .fini = stop)
{
    char code[128], sql[256], other[USHER_TOKEN_MAX];
    long long reg, session;
    testhttp_resp resp;
    int64_t id;

    attendee(&reg, code, sizeof(code), &session);
    door d = { session, code };
    cr_assert(door_open(&d));
    cr_assert(door_open(&d)); /* from the cache */
    cr_assert_eq(metric("usher_cache_requests_total{cache=\"access\",result=\"hit\"} "), 1);
    snprintf(sql, sizeof(sql), "SELECT sum(sold) FROM ticket_stripes WHERE ticket_type_id = %lld",
             ticket_type_id);
    cr_assert_eq(testdb_scalar(st, sql), 1);

    long long org2 = testdb_scalar(st, "INSERT INTO organizers (name) VALUES ('O') RETURNING id");
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, org2, 0, "o", other, &id), USHER_OK);
    cr_assert_eq(cancel(reg, other, &resp), 404, "%s", resp.body); /* not theirs */
    testhttp_resp_free(&resp);
    cr_assert_eq(cancel(reg, NULL, &resp), 401, "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(cancel(987654321, organizer, &resp), 404, "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert(door_open(&d), "a refused cancellation changed something");
    cr_assert_eq(testhttp(&server,
                          &(testhttp_req){ "POST", "/v1/webhooks", organizer,
                                           "{\"url\":\"https://hooks.example.org/c\","
                                           "\"events\":[\"registration.cancelled\"]}",
                                           NULL, NULL },
                          &resp),
                 201, "%s", resp.body);
    testhttp_resp_free(&resp);

    cr_assert_eq(cancel(reg, organizer, &resp), 200, "%s", resp.body);
    cr_assert(json_is_true(json_object_get(resp.json, "changed")), "%s", resp.body);
    testhttp_resp_free(&resp);
    /* By the 200 the door's key is held (refusing puts), unless 4 s went by already. */
    {
        double answered = wall_s();
        char *value = redis_get(door_key(session, reg));

        cr_assert(strcmp(value, "-") == 0 || wall_s() - answered > 4.0,
                  "the door's key is not held: '%s'", value);
        free(value);
    }
    /* The cached "yes" is gone at once: the door asks the database. */
    cr_assert_not(door_open(&d), "a cancelled ticket still opens the door");
    cr_assert_eq(metric("usher_cache_requests_total{cache=\"access\",result=\"miss\"} "), 2);
    cr_assert_eq(testdb_scalar(st, sql), 0, "the seat was not given back");
    cr_assert_eq(cancel(reg, organizer, &resp), 200, "%s", resp.body);
    cr_assert(json_is_false(json_object_get(resp.json, "changed")), "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(testdb_scalar(st, sql), 0, "a second cancellation gave a seat back again");
    /* The attendee leaves the search index: a second index job, after the registration's. */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs WHERE kind = 'index.document'"
             " AND payload->>'type' = 'attendee' AND (payload->>'id')::bigint = %lld",
             reg);
    cr_assert_eq(testdb_scalar(st, sql), 2);
    /* One webhook delivery for the one cancellation that changed something. */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs WHERE kind = 'notify.webhook'"
             " AND payload->>'event' = 'registration.cancelled'"
             " AND (payload->'data'->>'registration_id')::bigint = %lld",
             reg);
    cr_assert_eq(testdb_scalar(st, sql), 1);
}

static void start_short_access_ttl(void)
{
    setenv("USHER_API_CACHE_ACCESS_TTL_S", "1", 1);
    start();
    unsetenv("USHER_API_CACHE_ACCESS_TTL_S");
}

Test(api_cache, a_stale_door_answer_is_served_while_one_refresh_reloads_it,
     .init = start_short_access_ttl, .fini = stop)
{
    char code[128], sql[256];
    long long reg, session;

    attendee(&reg, code, sizeof(code), &session);
    door d = { session, code };
    cr_assert(door_open(&d));
    /* The entry was stored before that answer came: fresh for 1 s at most after it. */
    double expired = wall_s() + 1.01;
    /* Cancelled behind the API's back. Once the entry is past its TTL, the
     * first request still gets the stale "yes" (and reloads it behind
     * itself); the requests after it get "no". */
    snprintf(sql, sizeof(sql), "UPDATE registrations SET status = 'cancelled' WHERE id = %lld",
             reg);
    testdb_exec(st, sql);
    cr_assert(testproc_wait_for(wall_past, &expired, 30000));
    cr_assert(door_open(&d), "the expired entry was reloaded before it answered, not served stale");
    cr_assert(testproc_wait_for(door_closed, &d, 30000), "the stale answer was never refreshed");
    /* Only the first lookup missed: the refresh ran behind a request. */
    cr_assert_eq(metric("usher_cache_requests_total{cache=\"access\",result=\"miss\"} "), 1);
}

static void start_limited(void)
{
    start_with("60", "30"); /* a bucket of 10, refilled one per second */
}

Test(api_cache, registrations_past_the_rate_limit_get_429_with_retry_after, .init = start_limited,
     .fini = stop)
{
    char path[96], body[256];
    int created = 0, limited = 0;

    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", event_id);
    for (int i = 0; i < 15; i++) {
        testhttp_resp resp;

        snprintf(body, sizeof(body),
                 "{\"ticket_type_id\":%lld,\"name\":\"R %d\",\"email\":\"r%d@example.org\"}",
                 ticket_type_id, i, i);
        testhttp(&server, &(testhttp_req){ "POST", path, NULL, body, NULL, NULL }, &resp);
        if (resp.status == 201)
            created++;
        if (resp.status == 429) {
            limited++;
            cr_assert(strstr(resp.headers, "Retry-After: ") != NULL, "%s", resp.headers);
            cr_assert_str_eq(testhttp_error_code(&resp), "rate_limited");
        }
        testhttp_resp_free(&resp);
    }
    /* A bucket of 10, plus what a slow machine refilled meanwhile. */
    cr_assert(created >= 10 && created < 15, "created %d", created);
    cr_assert_eq(created + limited, 15);
}

Test(api_cache, with_redis_gone_the_api_still_answers_correctly, .init = start_limited,
     .fini = stop)
{
    testhttp_resp a, b, c;
    char sql[256], path[96], body[256];
    int status;

    get_event(200, &a);
    kill(redis_pid, SIGTERM);
    cr_assert(testproc_wait(redis_pid, 30000, &status));
    redis_pid = 0;
    snprintf(sql, sizeof(sql), "UPDATE events SET name = 'After redis' WHERE id = %lld", event_id);
    testdb_exec(st, sql);
    get_event(200, &b);
    cr_assert_str_eq(name_of(&b), "After redis", "served a cache that is gone: %s", b.body);
    /* The limiter fails open: more than a bucket's worth still registers. */
    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", event_id);
    for (int i = 0; i < 15; i++) {
        snprintf(body, sizeof(body),
                 "{\"ticket_type_id\":%lld,\"name\":\"N %d\",\"email\":\"n%d@example.org\"}",
                 ticket_type_id, i, i);
        testhttp(&server, &(testhttp_req){ "POST", path, NULL, body, NULL, NULL }, &c);
        cr_assert_eq(c.status, 201, "%s", c.body);
        testhttp_resp_free(&c);
    }
    /* A cancellation still answers: the door keys cannot be held, they expire by their TTL. */
    {
        long long reg = testdb_scalar(st, "SELECT max(id) FROM registrations");

        snprintf(sql, sizeof(sql),
                 "INSERT INTO sessions (event_id, title, starts_at, ends_at)"
                 " VALUES (%lld, 'Late', now(), now() + interval '1 hour')",
                 event_id);
        testdb_exec(st, sql);
        cr_assert_eq(cancel(reg, organizer, &c), 200, "%s", c.body);
        testhttp_resp_free(&c);
    }
    testhttp(&server, &(testhttp_req){ "GET", "/readyz", NULL, NULL, NULL, NULL }, &c);
    cr_assert_eq(c.status, 200);
    testhttp_resp_free(&a);
    testhttp_resp_free(&b);
    testhttp_resp_free(&c);
}
