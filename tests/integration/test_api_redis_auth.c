/*
 * usher-api on a Redis that asks for a password (a redis-server of the
 * test's own, --requirepass, or an ACL user): rate limits and the cache
 * work through it on every loop, in the database the URL names, and again
 * after Redis restarts. A wrong or missing password is Redis unavailable:
 * usher-api serves from PostgreSQL without limits, says why once per loop
 * and never prints the password. Limits: 1 a minute, a bucket of 10.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"
#include "testredis.h"

TESTDB_SUITE(api_redis_auth, "usher_test_api_redis_auth");

#define BURST    15
#define BUCKET   10
#define LOOPS    2
#define PASSWORD "Pw-4f9c1e-secret"

static testapi server;
static pid_t redis_pid;
static int redis_port;
static char event_path[64];

static const char *const requirepass[] = { "--requirepass", PASSWORD, NULL };

/* usher-api on redis://USERINFO127.0.0.1:PORT/DB (userinfo: "" or "USER:PASSWORD@"). */
static void start_api(const char *userinfo, int db)
{
    char url[160];
    long long org = testdb_organizer(st, "A");

    snprintf(event_path, sizeof(event_path), "/v1/events/%lld",
             testdb_event_new(st, org, "Authenticated", 1, 0).id);
    snprintf(url, sizeof(url), "redis://%s127.0.0.1:%d/%d", userinfo, redis_port, db);
    setenv("USHER_REDIS_URL", url, 1);
    setenv("USHER_API_RATE_PER_MINUTE", "1", 1);
    setenv("USHER_API_RATE_READ_PER_MINUTE", "1", 1);
    /* Exact counts: on a loaded machine no limiter answer may be dropped as late (50 ms). */
    setenv("USHER_API_REDIS_TIMEOUT_MS", "5000", 1);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, LOOPS);
}

static void stop(void)
{
    testapi_stop(&server);
    if (redis_pid > 0)
        testproc_kill(redis_pid);
    redis_pid = 0;
}

static long long metric(const char *line_prefix)
{
    testhttp_resp resp;
    const char *at;
    long long v = -1;

    testapi_scrape(&server, &resp);
    at = resp.body != NULL ? strstr(resp.body, line_prefix) : NULL;
    if (at != NULL)
        v = atoll(at + strlen(line_prefix));
    testhttp_resp_free(&resp);
    return v;
}

#define REDIS_UP "usher_redis_connections{state=\"up\"} "

static bool redis_up_on_every_loop(void *arg)
{
    (void)arg;
    return metric(REDIS_UP) == LOOPS;
}

static bool redis_down_on_every_loop(void *arg)
{
    (void)arg;
    return metric(REDIS_UP) == 0;
}

/* BURST reads of the event; how many were served (the rest must be 429). */
static int served(void)
{
    int ok = 0;

    for (int i = 0; i < BURST; i++) {
        testhttp_resp resp;

        testhttp(&server, &(testhttp_req){ "GET", event_path, NULL, NULL, NULL, NULL }, &resp);
        cr_assert(resp.status == 200 || resp.status == 429, "%ld %s", resp.status, resp.body);
        ok += resp.status == 200;
        testhttp_resp_free(&resp);
    }
    return ok;
}

/* The output of a redis-cli command against the test's Redis, trimmed; malloc'd. */
static char *redis_cli(const char *args)
{
    char cmd[512], *out = calloc(1, 256);
    FILE *p;
    size_t got;

    cr_assert_not_null(out);
    snprintf(cmd, sizeof(cmd), "redis-cli --no-auth-warning -p %d -a '%s' %s", redis_port, PASSWORD,
             args);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    got = fread(out, 1, 255, p);
    cr_assert_eq(pclose(p), 0, "%s", cmd);
    while (got > 0 && (out[got - 1] == '\n' || out[got - 1] == '\r'))
        out[--got] = '\0';
    return out;
}

static long long redis_number(const char *args)
{
    char *out = redis_cli(args);
    long long v = atoll(out);

    free(out);
    return v;
}

/* Lines of the API's log that contain text. */
static int log_lines_with(const char *text)
{
    cr_assert_eq(access(server.log, R_OK), 0, "%s", server.log);
    return testproc_log_lines(server.log, text);
}

typedef struct log_wait {
    const char *text;
    int count;
} log_wait;

static bool log_has(void *arg)
{
    const log_wait *w = arg;

    return log_lines_with(w->text) >= w->count;
}

static void assert_password_never_logged(void)
{
    cr_assert_eq(log_lines_with(PASSWORD), 0, "the password is in %s", server.log);
    cr_assert_eq(log_lines_with("Pw-4f9c1e"), 0, "part of the password is in %s", server.log);
}

Test(api_redis_auth, with_the_password_limits_and_cache_work_in_the_urls_database, .fini = stop)
{
    redis_pid = testredis_start_with(requirepass, &redis_port);
    start_api(":" PASSWORD "@", 3);
    cr_assert(testproc_wait_for(redis_up_on_every_loop, NULL, 30000), "Redis never came up");
    cr_assert_eq(served(), BUCKET);
    /* Every read but the first came from the cache, in database 3 and only there. */
    cr_assert_eq(metric("usher_cache_requests_total{cache=\"event\",result=\"miss\"} "), 1);
    cr_assert_eq(metric("usher_cache_requests_total{cache=\"event\",result=\"hit\"} "), BUCKET - 1);
    cr_assert_eq(redis_number("-n 3 EXISTS usher:v1:rate:read:ip:127.0.0.1"), 1);
    cr_assert_gt(redis_number("-n 3 DBSIZE"), 1);
    cr_assert_eq(redis_number("-n 0 DBSIZE"), 0);
    assert_password_never_logged();
}

Test(api_redis_auth, every_new_connection_authenticates_after_redis_restarts, .fini = stop)
{
    int status;

    redis_pid = testredis_start_with(requirepass, &redis_port);
    start_api(":" PASSWORD "@", 0);
    cr_assert(testproc_wait_for(redis_up_on_every_loop, NULL, 30000), "Redis never came up");
    cr_assert_eq(served(), BUCKET);
    kill(redis_pid, SIGTERM);
    cr_assert(testproc_wait(redis_pid, 30000, &status));
    redis_pid = 0;
    cr_assert(testproc_wait_for(redis_down_on_every_loop, NULL, 30000), "Redis never went down");
    cr_assert_eq(served(), BURST, "without Redis every read is served, from PostgreSQL");
    redis_pid = testredis_start_on(redis_port, requirepass); /* empty: full buckets */
    cr_assert(testproc_wait_for(redis_up_on_every_loop, NULL, 30000),
              "the loops did not authenticate again");
    cr_assert_eq(served(), BUCKET);
    assert_password_never_logged();
}

Test(api_redis_auth, an_acl_user_authenticates_with_its_name_and_password, .fini = stop)
{
    static const char *const acl[] = { "--user", "usher",  "on",      ">" PASSWORD, "~*", "&*",
                                       "+@all",  "--user", "default", "off",        NULL };

    redis_pid = testredis_start_with(acl, &redis_port);
    start_api("usher:" PASSWORD "@", 0);
    cr_assert(testproc_wait_for(redis_up_on_every_loop, NULL, 30000), "Redis never came up");
    cr_assert_eq(served(), BUCKET);
    assert_password_never_logged();
}

/* Redis refuses the handshake: served from PostgreSQL, no limits, said once per loop. */
static void assert_degraded(const char *said)
{
    log_wait w = { said, LOOPS };

    cr_assert(testproc_wait_for(log_has, &w, 30000), "no '%s' in %s", said, server.log);
    cr_assert_eq(metric(REDIS_UP), 0);
    cr_assert_eq(served(), BURST, "without Redis every read is served");
    cr_assert_eq(served(), BURST);
    cr_assert_eq(log_lines_with(said), LOOPS, "said more than once per loop");
    cr_assert_eq(log_lines_with("level=err "), LOOPS, "other errors in %s", server.log);
    assert_password_never_logged();
}

Test(api_redis_auth, a_wrong_password_is_redis_unavailable_said_once_per_loop, .fini = stop)
{
    redis_pid = testredis_start_with(requirepass, &redis_port);
    start_api(":Pw-4f9c1e-wrong@", 0);
    assert_degraded("redis refused AUTH: WRONGPASS");
}

Test(api_redis_auth, no_password_for_a_redis_that_wants_one_is_redis_unavailable, .fini = stop)
{
    redis_pid = testredis_start_with(requirepass, &redis_port);
    start_api("", 0);
    assert_degraded("redis refused PING: NOAUTH");
}

Test(api_redis_auth, a_malformed_url_stops_usher_api_without_printing_it)
{
    char said[2048];

    setenv("USHER_REDIS_URL", "redis://:" PASSWORD "@127.0.0.1:port/0", 1);
    cr_assert_eq(testapi_refused(USHER_API_PATH, cfg.database_url, 1, said, sizeof(said)), 1, "%s",
                 said);
    cr_assert_not_null(strstr(said, "redis.url is not redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]"),
                       "%s", said);
    cr_assert_null(strstr(said, PASSWORD), "%s", said);
}
