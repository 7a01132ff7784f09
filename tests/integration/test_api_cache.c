/*
 * usher-api with a Redis of the test's own (so it can be stopped): the
 * cache serves repeated reads without asking PostgreSQL, a change through
 * the API invalidates it, a stale entry is served while one refresh runs,
 * a cancellation closes the session doors at once and gives the seat back,
 * rate limits answer 429 with Retry-After, and with Redis gone the API
 * still answers correctly from the database. A sell-out drops the cached
 * event once, not on every refused registration, and concurrent misses of
 * one key (on every loop) make one database read.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pthread.h>
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
static int loops = 1; /* usher-api's loop threads */

static void start_with(const char *rate, const char *ttl)
{
    int64_t id;

    redis_pid = testredis_start();
    setenv("USHER_API_RATE_PER_MINUTE", rate, 1);
    setenv("USHER_API_CACHE_EVENT_TTL_S", ttl, 1);

    long long org = testdb_organizer(st, "C");
    testdb_event e = testdb_event_new(st, org, "Cached", 1, 100);

    event_id = e.id;
    ticket_type_id = e.ticket_type;
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, org, 0, "t", organizer, &id),
                 USHER_OK);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, loops);
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

    testapi_scrape(&server, &resp);
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
    /*
     * The attendee leaves the search index: a second index job, after the
     * registration's (which its statement's sales share: "ids", 0038).
     */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs WHERE kind = 'index.document'"
             " AND payload->>'type' = 'attendee' AND ((payload->>'id')::bigint = %lld"
             " OR payload->'ids' @> '%lld'::jsonb)",
             reg, reg);
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

#define EVENT_MISSES "usher_cache_requests_total{cache=\"event\",result=\"miss\"} "
#define EVENT_READS  "usher_cache_loads_total{cache=\"event\",by=\"read\"} "
#define EVENT_SHARED "usher_cache_loads_total{cache=\"event\",by=\"shared\"} "
#define EVENT_WAITED "usher_cache_loads_total{cache=\"event\",by=\"waited\"} "

/* The event cache's database reads so far (its own and after waiting). */
static long long event_db_reads(void)
{
    return metric(EVENT_READS) + metric(EVENT_WAITED);
}

/* The test's ticket type in a read of the event: its seats available. */
static long long seats_shown(testhttp_resp *resp)
{
    json_t *types = json_object_get(resp->json, "ticket_types");

    cr_assert_eq(json_array_size(types), 1, "%s", resp->body);
    return json_integer_value(json_object_get(json_array_get(types, 0), "available"));
}

static long long seats_read(void)
{
    testhttp_resp resp;
    long long n;

    get_event(200, &resp);
    n = seats_shown(&resp);
    testhttp_resp_free(&resp);
    return n;
}

static long register_as(const char *email)
{
    testhttp_resp resp;
    char path[96], body[200];
    long status;

    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", event_id);
    snprintf(body, sizeof(body), "{\"ticket_type_id\":%lld,\"name\":\"Fan\",\"email\":\"%s\"}",
             ticket_type_id, email);
    status = testhttp(&server, &(testhttp_req){ "POST", path, NULL, body, NULL, NULL }, &resp);
    testhttp_resp_free(&resp);
    return status;
}

Test(api_cache, a_sell_out_drops_the_cached_event_once_not_on_every_refusal, .init = start,
     .fini = stop)
{
    enum { N = 100 };
    testhttp_req reqs[2 * N];
    testhttp_resp resps[2 * N];
    char sql[160], path[96], event_path[64], bodies[N][160];
    long long misses, reads;

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM usher_ticket_stripes_set(%lld, 100, 99)",
             ticket_type_id);
    cr_assert_eq(testdb_scalar(st, sql), 1);
    cr_assert_eq(seats_read(), 1); /* now cached */
    cr_assert_eq(register_as("last@example.org"), 201);
    /* The first refusal drops the entry that still shows the seat. */
    cr_assert_eq(register_as("late@example.org"), 409);
    cr_assert_eq(seats_read(), 0, "after a refusal a read still shows the sold seat");
    misses = metric(EVENT_MISSES);
    reads = event_db_reads();
    cr_assert_eq(misses, 2);
    cr_assert_eq(reads, 2);

    /* The storm: N refusals and N reads at once. */
    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", event_id);
    snprintf(event_path, sizeof(event_path), "/v1/events/%lld", event_id);
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], sizeof(bodies[i]),
                 "{\"ticket_type_id\":%lld,\"name\":\"Fan\",\"email\":\"fan%d@example.org\"}",
                 ticket_type_id, i);
        reqs[2 * i] = (testhttp_req){ "POST", path, NULL, bodies[i], NULL, NULL };
        reqs[2 * i + 1] = (testhttp_req){ "GET", event_path, NULL, NULL, NULL, NULL };
    }
    testhttp_many(&server, reqs, resps, 2 * N, 8);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(resps[2 * i].status, 409, "%s", resps[2 * i].body);
        cr_assert_str_eq(testhttp_error_code(&resps[2 * i]), "sold_out");
        cr_assert_eq(resps[2 * i + 1].status, 200, "%s", resps[2 * i + 1].body);
        cr_assert_eq(seats_shown(&resps[2 * i + 1]), 0, "%s", resps[2 * i + 1].body);
        testhttp_resp_free(&resps[2 * i]);
        testhttp_resp_free(&resps[2 * i + 1]);
    }
    cr_assert_leq(metric(EVENT_MISSES) - misses, 2, "%d refusals dropped the entry %lld times", N,
                  metric(EVENT_MISSES) - misses);
    cr_assert_leq(event_db_reads() - reads, 2);
}

static void start_two_loops(void)
{
    loops = 2;
    start();
}

/* A connection that holds a table locked, so reads of it wait. */
static PGconn *lock_table(const char *table)
{
    PGconn *c = PQconnectdb(cfg.database_url);
    PGresult *res;
    char sql[128];

    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    snprintf(sql, sizeof(sql), "BEGIN; LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", table);
    res = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
    PQclear(res);
    return c;
}

/* GET commands the test's Redis has run (each a cache lookup here). */
static long long redis_gets(void)
{
    char cmd[512], line[512];
    long long calls = -1;
    FILE *p;

    snprintf(cmd, sizeof(cmd), "redis-cli -u '%s' INFO commandstats", getenv("USHER_REDIS_URL"));
    p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    while (fgets(line, sizeof(line), p) != NULL) {
        if (strncmp(line, "cmdstat_get:calls=", 18) == 0)
            calls = atoll(line + 18);
    }
    return pclose(p) == 0 ? calls : -1;
}

/* Statements waiting for a lock on the events or ticket_types table. */
static long long lock_waiters(PGconn *c)
{
    PGresult *res = PQexec(c, "SELECT count(*) FROM pg_locks WHERE NOT granted"
                              " AND relation IN ('events'::regclass, 'ticket_types'::regclass)");
    long long n = -1;

    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        n = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

/*
 * Holds the lock until the reads are where the test wants them (or 30 s),
 * judged from Redis or PostgreSQL, not from /metrics: its own statement
 * would queue behind the blocked reads of an API without single flight.
 */
typedef struct releaser {
    PGconn *lock;
    long long redis_gets; /* release at this many Redis GETs (all have missed), or */
    long long waiters;    /* at this many statements waiting for the lock */
    bool reached;
} releaser;

static bool reads_in_place(void *arg)
{
    releaser *rl = arg;

    if (rl->redis_gets > 0)
        return redis_gets() >= rl->redis_gets;
    return lock_waiters(rl->lock) >= rl->waiters;
}

static void *release_when(void *arg)
{
    releaser *rl = arg;

    rl->reached = testproc_wait_for(reads_in_place, rl, 30000);
    PQclear(PQexec(rl->lock, "ROLLBACK"));
    return NULL;
}

/* k reads of the (uncached) event at once, the lock held until rl's metric is reached. */
static void reads_at_once(releaser *rl, testhttp_resp *resps, size_t k)
{
    testhttp_req reqs[32];
    char path[64];
    pthread_t thread;

    cr_assert_leq(k, 32);
    snprintf(path, sizeof(path), "/v1/events/%lld", event_id);
    for (size_t i = 0; i < k; i++)
        reqs[i] = (testhttp_req){ "GET", path, NULL, NULL, NULL, NULL };
    cr_assert_eq(pthread_create(&thread, NULL, release_when, rl), 0);
    testhttp_many(&server, reqs, resps, k, (long)k);
    cr_assert_eq(pthread_join(thread, NULL), 0);
    PQfinish(rl->lock);
    for (size_t i = 0; i < k; i++) {
        cr_assert_eq(resps[i].status, 200, "%s", resps[i].body);
        cr_assert_str_eq(resps[i].body, resps[0].body);
    }
    cr_assert_str_eq(name_of(&resps[0]), "Cached");
}

Test(api_cache, concurrent_misses_of_a_cold_key_make_one_database_read, .init = start_two_loops,
     .fini = stop)
{
    enum { K = 16 };
    testhttp_resp resps[K];
    /* Every read has missed (and waits) before the lock goes. */
    releaser rl = { lock_table("events"), redis_gets() + K, 0, false };

    reads_at_once(&rl, resps, K);
    cr_assert(rl.reached, "the %d reads never all missed", K);
    cr_assert_eq(metric(EVENT_MISSES), K);
    cr_assert_eq(metric(EVENT_READS), 1, "%d concurrent misses made %lld database reads", K,
                 metric(EVENT_READS));
    cr_assert_eq(metric(EVENT_SHARED), K - 1);
    cr_assert_eq(metric(EVENT_WAITED), 0);
    for (int i = 0; i < K; i++)
        testhttp_resp_free(&resps[i]);
    /* Stored once: the next read is a hit. */
    cr_assert_eq(seats_read(), 100);
    cr_assert_eq(metric(EVENT_MISSES), K);
}

Test(api_cache, misses_that_wait_too_long_for_a_shared_read_read_on_their_own,
     .init = start_two_loops, .fini = stop)
{
    enum { K = 4 };
    testhttp_resp resps[K];
    /* The lock goes once the waiting misses have given up and sent reads of their own. */
    releaser rl = { lock_table("events"), 0, K, false };

    reads_at_once(&rl, resps, K);
    cr_assert(rl.reached, "the waiting misses never gave up");
    cr_assert_eq(metric(EVENT_READS), 1);
    cr_assert_eq(metric(EVENT_SHARED), 0);
    cr_assert_eq(metric(EVENT_WAITED), K - 1);
    for (int i = 0; i < K; i++)
        testhttp_resp_free(&resps[i]);
}

static void *read_event(void *arg)
{
    char path[64];

    snprintf(path, sizeof(path), "/v1/events/%lld", event_id);
    testhttp(&server, &(testhttp_req){ "GET", path, NULL, NULL, NULL, NULL }, arg);
    return NULL;
}

static bool waiters_reached(void *arg)
{
    releaser *rl = arg;

    return lock_waiters(rl->lock) >= rl->waiters;
}

Test(api_cache, a_miss_after_a_change_does_not_share_a_read_from_before_it, .init = start_two_loops,
     .fini = stop)
{
    char code[128];
    long long reg, session;
    testhttp_resp before, after, resp;
    pthread_t first, second;
    releaser rl = { NULL, 0, 1, false };

    attendee(&reg, code, sizeof(code), &session);
    /* A read of the event waits on ticket_types; a cancellation does not read it. */
    rl.lock = lock_table("ticket_types");
    cr_assert_eq(pthread_create(&first, NULL, read_event, &before), 0);
    cr_assert(testproc_wait_for(waiters_reached, &rl, 30000), "the first read never waited");
    cr_assert_eq(cancel(reg, organizer, &resp), 200, "%s", resp.body);
    testhttp_resp_free(&resp);
    /* A miss after the change starts its own read (a second statement waits). */
    rl.waiters = 2;
    cr_assert_eq(pthread_create(&second, NULL, read_event, &after), 0);
    rl.reached = testproc_wait_for(waiters_reached, &rl, 10000);
    PQclear(PQexec(rl.lock, "ROLLBACK"));
    PQfinish(rl.lock);
    cr_assert_eq(pthread_join(first, NULL), 0);
    cr_assert_eq(pthread_join(second, NULL), 0);
    cr_assert(rl.reached, "the miss after the cancellation joined the read from before it");
    cr_assert_eq(before.status, 200, "%s", before.body);
    cr_assert_eq(after.status, 200, "%s", after.body);
    cr_assert_eq(seats_shown(&after), 100, "%s", after.body);
    cr_assert_eq(metric(EVENT_READS), 2);
    cr_assert_eq(metric(EVENT_SHARED), 0);
    cr_assert_eq(metric(EVENT_WAITED), 0, "the miss after the change waited for the read");
    /* Stored: the next read is a hit. */
    cr_assert_eq(seats_read(), 100);
    cr_assert_eq(metric(EVENT_MISSES), 2);
    testhttp_resp_free(&before);
    testhttp_resp_free(&after);
}
