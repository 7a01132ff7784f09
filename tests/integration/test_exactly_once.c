/*
 * Exactly once across lost replies: a storm of registrations through a real
 * usher-api while PostgreSQL restarts under it (fast, then immediate, then
 * fast again, USHER_PG_RESTART; skipped without it), with a real
 * usher-worker rendering tickets and mailing them through the SMTP sink
 * all along. Clients retry 503s with their Idempotency-Key. Afterwards the
 * test counts, per registration: one row, one seat, and exactly one email
 * in the Maildir, whatever commits the restarts cut off.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testdb.h"
#include "testhttp.h"
#include "testmail.h"
#include "testproc.h"

__attribute__((constructor)) static void use_test_config(void)
{
    setenv("USHER_CONFIG", EXACTLY_ONCE_TEST_CONF, 1);
}

TESTDB_SUITE(exactly_once, "usher_test_exactly_once");

#define CLIENTS     4
#define PER_CLIENT  60
#define N           (CLIENTS * PER_CLIENT)
#define RESTARTS    3
#define DEADLINE_MS 240000

static testapi server;
static pid_t worker;
static char workdir[64];
static char run_id[32];
static long long event_id, ticket_type_id;
static atomic_int created;

static void stop_all(void)
{
    testapi_stop(&server);
    if (worker > 0)
        testproc_stop_cleanly(worker);
    worker = 0;
}

typedef struct client {
    int first;
    long long ids[PER_CLIENT];
    testhttp_retries r; /* r.failure: an answer was neither 201, 503 nor a cut */
} client;

/* Registers attendee i, retrying 503s with the same key; its id, or 0 (c->r.failure set). */
static long long register_one(client *c, int i)
{
    char path[96], body[256], header[96];
    long long deadline = testdb_now_ms() + DEADLINE_MS;

    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", event_id);
    snprintf(body, sizeof(body),
             "{\"ticket_type_id\":%lld,\"name\":\"Storm %d\",\"email\":\"eo-%s-%d@example.org\"}",
             ticket_type_id, i, run_id, i);
    snprintf(header, sizeof(header), "Idempotency-Key: eo-%s-%d", run_id, i);
    /* 503, or the connection cut by a restart: the same key again */
    return testhttp_post_retrying(&server, path, body, header, "registration_id", true, deadline,
                                  &c->r);
}

static void *run_client(void *arg)
{
    client *c = arg;

    for (int k = 0; k < PER_CLIENT && c->r.failure[0] == '\0'; k++) {
        c->ids[k] = register_one(c, c->first + k);
        atomic_fetch_add(&created, 1);
    }
    return NULL;
}

/* Restarts PostgreSQL each time another quarter of the storm has registered. */
static void *run_restarts(void *arg)
{
    static const char *const modes[RESTARTS] = { "fast", "immediate", "fast" };
    const char *restart = arg;
    intptr_t failed = 0;

    for (int k = 0; k < RESTARTS; k++) {
        char cmd[1024];
        long long deadline = testdb_now_ms() + DEADLINE_MS;

        while (atomic_load(&created) < N * (k + 1) / (RESTARTS + 1) && testdb_now_ms() < deadline)
            usleep(10000);
        snprintf(cmd, sizeof(cmd), "%s %s >/dev/null", restart, modes[k]);
        failed |= system(cmd) != 0;
    }
    return (void *)failed;
}

/* Counts this run's mails per attendee into counts[N]; the total. */
static int count_mails(int *counts)
{
    char prefix[64];

    snprintf(prefix, sizeof(prefix), "eo-%s-", run_id);
    return testmail_count(prefix, counts, N);
}

static bool all_mailed(void *arg)
{
    int *counts = arg;

    return count_mails(counts) >= N;
}

/* Every pdf.ticket and email.send job has finished (none waits, runs or died). */
static bool chain_done(void *arg)
{
    usher_store *db = testdb_store(&cfg);
    bool done = testdb_scalar(db, "SELECT count(*) FROM usher_jobs WHERE kind IN"
                                  " ('pdf.ticket', 'email.send')") == 0;

    (void)arg;
    usher_store_free(db);
    return done;
}

static void make_event(void)
{
    testdb_event e = testdb_event_new(st, testdb_organizer(st, "EO"), "Storm", 1, N);

    event_id = e.id;
    ticket_type_id = e.ticket_type;
}

Test(exactly_once, restarts_during_a_storm_mail_every_registration_exactly_once, .fini = stop_all,
     .timeout = 900)
{
    static client clients[CLIENTS];
    static int counts[N];
    const char *restart = getenv("USHER_PG_RESTART");
    pthread_t threads[CLIENTS], restarter;
    void *restart_rc;
    int unavailable = 0, total;
    char sql[256];

    if (restart == NULL || restart[0] == '\0')
        cr_skip_test("USHER_PG_RESTART is not set");
    snprintf(run_id, sizeof(run_id), "%lx%x", (unsigned long)time(NULL), (unsigned)getpid());
    make_event();
    worker = testproc_start_worker(USHER_WORKER_PATH, EXACTLY_ONCE_TEST_CONF, "storm",
                                   cfg.database_url, "exactly-once", workdir);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 2);

    usher_store_free(st); /* the test's own connection would die with the restarts */
    st = NULL;
    atomic_store(&created, 0);
    cr_assert_eq(pthread_create(&restarter, NULL, run_restarts, (void *)restart), 0);
    for (int c = 0; c < CLIENTS; c++) {
        clients[c].first = c * PER_CLIENT;
        cr_assert_eq(pthread_create(&threads[c], NULL, run_client, &clients[c]), 0);
    }
    for (int c = 0; c < CLIENTS; c++)
        cr_assert_eq(pthread_join(threads[c], NULL), 0);
    atomic_store(&created, N); /* a restart still waiting goes now */
    cr_assert_eq(pthread_join(restarter, &restart_rc), 0);
    cr_assert_eq((intptr_t)restart_rc, 0, "%s failed", restart);
    for (int c = 0; c < CLIENTS; c++) {
        cr_assert_eq(clients[c].r.failure[0], '\0', "%s", clients[c].r.failure);
        unavailable += clients[c].r.unavailable;
    }

    cr_assert(testproc_wait_for(all_mailed, counts, DEADLINE_MS),
              "only %d of %d attendees got mail", count_mails(counts), N);
    cr_assert(testproc_wait_for(chain_done, NULL, DEADLINE_MS),
              "ticket or email jobs still waiting, running or dead");
    total = count_mails(counts); /* after the last job: a late duplicate shows */
    fprintf(stderr, "%d registrations through %d restarts, %d answers 503 or cut, %d mails\n", N,
            RESTARTS, unavailable, total);
    for (int i = 0; i < N; i++)
        cr_assert_eq(counts[i], 1, "attendee %d got %d mails", i, counts[i]);

    st = testdb_store(&cfg);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM registrations WHERE event_id = %lld",
             event_id);
    cr_assert_eq(testdb_scalar(st, sql), N, "registrations lost or doubled");
    snprintf(sql, sizeof(sql), "SELECT sum(sold) FROM ticket_stripes WHERE ticket_type_id = %lld",
             ticket_type_id);
    cr_assert_eq(testdb_scalar(st, sql), N, "seats counted twice or not at all");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_effects"
                                   " WHERE key LIKE 'confirmation:%'"),
                 N, "a confirmation chained twice or not at all");
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM documents d JOIN registrations r ON r.id = d.registration_id"
             " WHERE d.kind = 'ticket' AND r.event_id = %lld",
             event_id);
    cr_assert_eq(testdb_scalar(st, sql), N, "a ticket not recorded");
    stop_all();
}
