/*
 * Readiness for a load balancer: /readyz says "not ready" (503) while
 * usher-api has no database connection, so HAProxy's health check takes
 * the host out, and ready (200) again once it reconnects by itself;
 * /healthz (the process is alive) stays 200 throughout. A real usher-api
 * through a real PostgreSQL restart (USHER_PG_RESTART, e.g.
 * `scripts/stack.sh restart-pg`; skipped without it), and one started on a
 * database that never answers.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"

TESTDB_SUITE(api_ready, "usher_test_api_ready");

#define LOOPS 2

static testapi server;

static void stop_server(void)
{
    testapi_stop(&server);
}

static long probe(const char *path, char *code, size_t len)
{
    testhttp_resp resp;
    long status = testhttp(&server, &(testhttp_req){ "GET", path, NULL, NULL, NULL, NULL }, &resp);

    if (code != NULL)
        snprintf(code, len, "%s", testhttp_error_code(&resp));
    testhttp_resp_free(&resp);
    return status;
}

static atomic_bool restarted;

static void *restart_postgres(void *arg)
{
    int rc = system(arg);

    atomic_store(&restarted, true);
    return (void *)(intptr_t)rc;
}

Test(api_ready, readyz_is_503_while_the_database_is_down_and_200_once_it_is_back,
     .fini = stop_server, .timeout = 300)
{
    const char *restart = getenv("USHER_PG_RESTART");
    long long deadline = testdb_now_ms() + 120000;
    int not_ready = 0, ready_after = 0, probes = 0;
    pthread_t thread;
    void *rc;

    if (restart == NULL || restart[0] == '\0')
        cr_skip_test("USHER_PG_RESTART is not set");
    testapi_start(&server, USHER_API_PATH, cfg.database_url, LOOPS);
    cr_assert_eq(probe("/readyz", NULL, 0), 200);
    usher_store_free(st); /* the test's own connection goes down with the server */
    st = NULL;
    atomic_store(&restarted, false);
    cr_assert_eq(pthread_create(&thread, NULL, restart_postgres, (void *)restart), 0);
    /* Until the restart is over and the API has said ready again. */
    while (ready_after == 0) {
        bool done = atomic_load(&restarted);
        char code[64];
        long ready = probe("/readyz", code, sizeof(code));

        cr_assert(ready == 200 || (ready == 503 && strcmp(code, "unavailable") == 0),
                  "/readyz answered %ld %s", ready, code);
        not_ready += ready == 503;
        ready_after += done && ready == 200;
        cr_assert_eq(probe("/healthz", NULL, 0), 200, "/healthz failed during the restart");
        probes++;
        cr_assert_lt(testdb_now_ms(), deadline, "not ready again 120 s on; see %s", server.log);
        usleep(2000);
    }
    cr_assert_eq(pthread_join(thread, &rc), 0);
    cr_assert_eq((intptr_t)rc, 0, "%s failed", restart);
    fprintf(stderr, "%d probes, %d not ready\n", probes, not_ready);
    cr_assert_gt(not_ready, 0, "/readyz never said not ready while the database was down");
    st = testdb_store(&cfg);
}

Test(api_ready, without_a_database_at_start_readyz_is_503_and_healthz_200, .fini = stop_server,
     .timeout = 120)
{
    char code[64];

    /* Nothing listens on port 1: every connection attempt is refused at once. */
    testapi_launch(&server, USHER_API_PATH, "postgresql://postgres@127.0.0.1:1/usher", LOOPS);
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(probe("/readyz", code, sizeof(code)), 503);
        cr_assert_str_eq(code, "unavailable");
        cr_assert_eq(probe("/healthz", NULL, 0), 200);
    }
}
