/*
 * usher-api across a real PostgreSQL restart (USHER_PG_RESTART, set by
 * scripts/test.sh to `scripts/stack.sh restart-pg`; skipped without it):
 * registrations keep coming while the database goes down and up. Every
 * answer is a 201 or a 503 (never a 500, never a hang); a client that
 * retries a 503 with the same Idempotency-Key ends with exactly one
 * registration, whether or not the lost attempt had committed; and the API
 * is ready again afterwards without a restart of its own.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"

TESTDB_SUITE(api_restart, "usher_test_api_restart");

#define KEYS_MAX 5000

static testapi server;

/* Also after a failed assertion: no usher-api outlives its test. */
static void stop_server(void)
{
    testapi_stop(&server);
}
static atomic_bool restarted;

static void *restart_postgres(void *arg)
{
    int rc = system(arg);

    atomic_store(&restarted, true);
    return (void *)(intptr_t)rc;
}

/* Registers attendee i with key "restart-i", retrying 503s; its registration id. */
static long long register_until_created(long long event, long long ticket_type, int i,
                                        int *unavailable)
{
    char path[96], body[200], header[64];
    long long id = 0;
    long long deadline = testdb_now_ms() + 120000;

    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", event);
    snprintf(body, sizeof(body),
             "{\"ticket_type_id\":%lld,\"name\":\"Restart %d\",\"email\":\"r%d@example.org\"}",
             ticket_type, i, i);
    snprintf(header, sizeof(header), "Idempotency-Key: restart-%d", i);
    while (id == 0) {
        testhttp_resp resp;
        long status =
            testhttp(&server, &(testhttp_req){ "POST", path, NULL, body, header, NULL }, &resp);

        cr_assert(status == 201 || status == 503, "registration %d answered %ld: %s", i, status,
                  resp.body);
        if (status == 201)
            id = json_integer_value(json_object_get(resp.json, "registration_id"));
        else
            ++*unavailable;
        testhttp_resp_free(&resp);
        cr_assert(id != 0 || testdb_now_ms() < deadline, "registration %d: 503 for 120 s", i);
    }
    return id;
}

static bool ready(void *arg)
{
    testhttp_resp resp;
    long status;

    (void)arg;
    status = testhttp(&server, &(testhttp_req){ "GET", "/readyz", NULL, NULL, NULL, NULL }, &resp);
    testhttp_resp_free(&resp);
    return status == 200;
}

Test(api_restart, registrations_through_a_database_restart_are_neither_lost_nor_doubled,
     .fini = stop_server, .timeout = 600)
{
    static long long ids[KEYS_MAX];
    const char *restart = getenv("USHER_PG_RESTART");
    long long org, event, ticket_type;
    int n = 0, unavailable = 0;
    pthread_t thread;
    void *rc;
    char sql[256];

    if (restart == NULL || restart[0] == '\0')
        cr_skip_test("USHER_PG_RESTART is not set");
    org = testdb_organizer(st, "R");
    testdb_event e = testdb_event_new(st, org, "Restart", 1, 100000);
    event = e.id;
    ticket_type = e.ticket_type;
    setenv("USHER_API_RATE_PER_MINUTE", "0", 1);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 2);
    for (; n < 20; n++)
        ids[n] = register_until_created(event, ticket_type, n, &unavailable);

    usher_store_free(st); /* the test's own connection goes down with the server */
    st = NULL;
    atomic_store(&restarted, false);
    cr_assert_eq(pthread_create(&thread, NULL, restart_postgres, (void *)restart), 0);
    /* Registrations all through the restart, and some after it. */
    for (int after = 0; after < 20 && n < KEYS_MAX; n++) {
        ids[n] = register_until_created(event, ticket_type, n, &unavailable);
        after += atomic_load(&restarted);
    }
    cr_assert_eq(pthread_join(thread, &rc), 0);
    cr_assert_eq((intptr_t)rc, 0, "%s failed", restart);
    cr_assert(testproc_wait_for(ready, NULL, 60000), "usher-api never got ready again");
    fprintf(stderr, "%d registrations, %d answers 503 on the way\n", n, unavailable);

    st = testdb_store(&cfg);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM registrations WHERE event_id = %lld", event);
    cr_assert_eq(testdb_scalar(st, sql), n, "registrations lost or doubled");
    snprintf(sql, sizeof(sql),
             "SELECT count(DISTINCT registration_id) FROM api_idempotency"
             " WHERE key LIKE 'restart-%%' AND status = 'confirmed'");
    cr_assert_eq(testdb_scalar(st, sql), n);
    for (int i = 0; i < n; i++) {
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM registrations r JOIN api_idempotency k"
                 " ON k.registration_id = r.id WHERE r.id = %lld AND k.key = 'restart-%d'",
                 ids[i], i);
        cr_assert_eq(testdb_scalar(st, sql), 1, "key restart-%d answered registration %lld", i,
                     ids[i]);
    }
    snprintf(sql, sizeof(sql), "SELECT sum(sold) FROM ticket_stripes WHERE ticket_type_id = %lld",
             ticket_type);
    cr_assert_eq(testdb_scalar(st, sql), n, "seats counted twice or not at all");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'pdf.ticket'"), n,
                 "a registration without its ticket job, or with two");
    testapi_stop(&server);
}
