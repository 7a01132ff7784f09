/*
 * Periodic jobs against the real PostgreSQL, with fixed clocks (no
 * sleeping): the first sighting records without firing, each slot fires
 * exactly one job with the configured queue, kind, payload and priority,
 * repeated and concurrent calls (threads with connections of their own)
 * fire nothing more, a jump over many slots fires only the latest, and a
 * failed enqueue leaves the slot to the next call. The config is
 * tests/integration/periodic-test.conf: every-five (every 5 minutes, priority 0, a
 * payload) and nightly (03:00 UTC, the kind's priority, no payload).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "periodic.h"
#include "queues.h"
#include "testdb.h"

#define RACE_ROUNDS 20

__attribute__((constructor)) static void use_periodic_config(void)
{
    setenv("USHER_CONFIG", USHER_SOURCE_DIR "/tests/integration/periodic-test.conf", 1);
}

TESTDB_SUITE(periodic, "usher_test_periodic");

/* "YYYY-MM-DD HH:MM:SS" in UTC to epoch seconds. */
static int64_t at(const char *utc)
{
    struct tm tm = { 0 };
    const char *end = strptime(utc, "%Y-%m-%d %H:%M:%S", &tm);

    cr_assert(end != NULL && *end == '\0', "bad time in the test: %s", utc);
    return (int64_t)timegm(&tm);
}

/* No periodic records, and the suite's queue declared (a test may remove it). */
static void start(void)
{
    testdb_exec(st, "TRUNCATE usher_periodic");
    cr_assert_eq(usher_queues_sync(st), USHER_OK, "%s", usher_store_errstr(st));
}

/* Fires on store s at now; returns how many jobs it enqueued. */
static size_t fire_on(usher_store *s, int64_t now)
{
    size_t fired = 99;

    cr_assert_eq(usher_periodic_fire(s, now, &fired), USHER_OK, "%s", usher_store_errstr(s));
    return fired;
}

static size_t fire(const char *utc)
{
    return fire_on(st, at(utc));
}

static long long jobs(void)
{
    return testdb_scalar(st, "SELECT count(*) FROM usher_jobs");
}

/* The recorded slot of name, in epoch seconds. */
static long long last_slot(const char *name)
{
    char sql[160];

    snprintf(sql, sizeof(sql),
             "SELECT extract(epoch FROM last_slot)::int8 FROM usher_periodic WHERE name = '%s'",
             name);
    return testdb_scalar(st, sql);
}

/* How many jobs carry the unique key of name's slot at utc. */
static long long jobs_of_slot(const char *name, const char *utc)
{
    char sql[200];

    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs WHERE unique_key = 'periodic:%s:%lld'", name,
             (long long)at(utc));
    return testdb_scalar(st, sql);
}

Test(periodic, first_call_records_the_latest_slots_without_firing, .init = start)
{
    cr_assert_eq(fire("2026-03-02 10:02:10"), 0);
    cr_assert_eq(jobs(), 0);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_periodic"), 2);
    cr_assert_eq(last_slot("every-five"), at("2026-03-02 10:00:00"));
    cr_assert_eq(last_slot("nightly"), at("2026-03-02 03:00:00"));
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_periodic WHERE fired_job IS NULL"),
                 2);
}

Test(periodic, next_slot_fires_one_job_in_the_configured_queue_with_kind_payload_and_priority,
     .init = start)
{
    long long id;

    fire("2026-03-02 10:02:10");
    cr_assert_eq(fire("2026-03-02 10:05:30"), 1);
    cr_assert_eq(jobs(), 1);
    cr_assert_eq(jobs_of_slot("every-five", "2026-03-02 10:05:00"), 1);
    id = testdb_scalar(st, "SELECT id FROM usher_jobs");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE queue = 'reports'"
                                   " AND kind = 'report.checkins' AND priority = 0"
                                   " AND state = 'available' AND max_attempts = 5"
                                   " AND payload = '{\"scope\":\"all\",\"n\":[1,2]}'::jsonb"),
                 1);
    cr_assert_eq(testdb_scalar(st, "SELECT fired_job FROM usher_periodic"
                                   " WHERE name = 'every-five'"),
                 id);
    cr_assert_eq(last_slot("every-five"), at("2026-03-02 10:05:00"));
    cr_assert_eq(last_slot("nightly"), at("2026-03-02 03:00:00"));
}

Test(periodic, calling_again_for_the_same_slot_fires_nothing, .init = start)
{
    usher_store *other = testdb_store(&cfg);

    fire("2026-03-02 10:02:10");
    cr_assert_eq(fire("2026-03-02 10:05:30"), 1);
    cr_assert_eq(fire("2026-03-02 10:05:30"), 0);
    cr_assert_eq(fire("2026-03-02 10:09:59"), 0);
    cr_assert_eq(fire_on(other, at("2026-03-02 10:06:00")), 0, "a new leader, same slot");
    usher_store_free(other);
    cr_assert_eq(jobs(), 1);
}

Test(periodic, nightly_slot_fires_with_the_kinds_priority_and_an_empty_payload, .init = start)
{
    fire("2026-03-02 02:58:00");
    cr_assert_eq(fire("2026-03-02 03:00:05"), 2, "every-five at 03:00 and nightly");
    cr_assert_eq(jobs_of_slot("nightly", "2026-03-02 03:00:00"), 1);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE unique_key LIKE"
                                   " 'periodic:nightly:%' AND priority = 2 AND payload = '{}'"),
                 1);
}

Test(periodic, a_jump_over_many_slots_fires_only_the_latest, .init = start)
{
    fire("2026-03-02 10:02:10");
    cr_assert_eq(fire("2026-03-02 13:31:10"), 1);
    cr_assert_eq(jobs_of_slot("every-five", "2026-03-02 13:30:00"), 1);
    cr_assert_eq(fire("2026-03-05 04:00:00"), 2, "every-five at 04:00 and nightly at 03:00");
    cr_assert_eq(jobs_of_slot("every-five", "2026-03-05 04:00:00"), 1);
    cr_assert_eq(jobs_of_slot("nightly", "2026-03-05 03:00:00"), 1);
    cr_assert_eq(jobs(), 3);
    cr_assert_eq(last_slot("nightly"), at("2026-03-05 03:00:00"));
}

typedef struct racer {
    usher_store *st;
    pthread_barrier_t *go;
    int64_t now;
    size_t fired;
    usher_err err;
} racer;

static void *race(void *arg)
{
    racer *r = arg;

    if (r->go != NULL)
        pthread_barrier_wait(r->go);
    r->err = usher_periodic_fire(r->st, r->now, &r->fired);
    return NULL;
}

Test(periodic, two_stores_racing_for_each_slot_fire_one_job_in_total, .init = start)
{
    racer racers[2] = { { .st = testdb_store(&cfg) }, { .st = testdb_store(&cfg) } };
    pthread_barrier_t go;
    pthread_t threads[2];
    int64_t now = at("2026-03-02 10:02:10");

    fire_on(st, now);
    for (int round = 1; round <= RACE_ROUNDS; round++) {
        now += 300; /* the next every-five slot */
        cr_assert_eq(pthread_barrier_init(&go, NULL, 2), 0);
        for (int i = 0; i < 2; i++) {
            racers[i].go = &go;
            racers[i].now = now;
            racers[i].fired = 99;
            cr_assert_eq(pthread_create(&threads[i], NULL, race, &racers[i]), 0);
        }
        for (int i = 0; i < 2; i++)
            cr_assert_eq(pthread_join(threads[i], NULL), 0);
        cr_assert_eq(pthread_barrier_destroy(&go), 0);
        for (int i = 0; i < 2; i++)
            cr_assert_eq(racers[i].err, USHER_OK, "%s", usher_store_errstr(racers[i].st));
        cr_assert_eq(racers[0].fired + racers[1].fired, 1, "round %d", round);
        cr_assert_eq(jobs(), round);
    }
    for (int i = 0; i < 2; i++)
        usher_store_free(racers[i].st);
}

/* Waits (10 s at most) until a session of this database waits for a lock. */
static void wait_for_a_lock_wait(void)
{
    const struct timespec pause = { .tv_nsec = 5 * 1000 * 1000 };
    long long deadline = testdb_now_ms() + 10000;

    while (testdb_scalar(st, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                             " AND datname = current_database()") == 0) {
        cr_assert_lt(testdb_now_ms(), deadline, "nobody waited for the periodic's row lock");
        nanosleep(&pause, NULL);
    }
}

/*
 * Another host takes the slot while this one is mid-round, and its job has
 * already run and been deleted when this one gets the row: the unique key
 * no longer protects, only the UPDATE's last_slot condition does.
 */
Test(periodic, a_slot_taken_while_waiting_for_the_row_is_not_fired_again, .init = start)
{
    usher_store *winner = testdb_store(&cfg);
    racer loser = { .st = testdb_store(&cfg), .now = at("2026-03-02 10:05:30"), .fired = 99 };
    char take[160];
    pthread_t thread;

    fire("2026-03-02 10:02:10");
    snprintf(take, sizeof(take),
             "UPDATE usher_periodic SET last_slot = to_timestamp(%lld) WHERE name = 'every-five'",
             (long long)at("2026-03-02 10:05:00"));
    testdb_exec(winner, "BEGIN");
    testdb_exec(winner, take);
    cr_assert_eq(pthread_create(&thread, NULL, race, &loser), 0);
    wait_for_a_lock_wait();
    testdb_exec(winner, "COMMIT");
    cr_assert_eq(pthread_join(thread, NULL), 0);
    cr_assert_eq(loser.err, USHER_OK, "%s", usher_store_errstr(loser.st));
    cr_assert_eq(loser.fired, 0);
    cr_assert_eq(jobs(), 0);
    usher_store_free(loser.st);
    usher_store_free(winner);
}

Test(periodic, a_failed_enqueue_rolls_back_and_the_slot_fires_on_the_next_call, .init = start)
{
    size_t fired = 99;

    fire("2026-03-02 10:02:10");
    testdb_exec(st, "DELETE FROM usher_queues WHERE name = 'reports'");
    cr_assert_eq(usher_periodic_fire(st, at("2026-03-02 10:05:30"), &fired),
                 USHER_ERR_UNKNOWN_QUEUE);
    cr_assert_eq(fired, 0);
    cr_assert(strstr(usher_store_errstr(st), "periodic every-five: ") == usher_store_errstr(st),
              "%s", usher_store_errstr(st));
    cr_assert_eq(last_slot("every-five"), at("2026-03-02 10:00:00"));
    cr_assert_eq(jobs(), 0);
    cr_assert_eq(PQtransactionStatus(usher_store_conn(st)), PQTRANS_IDLE);
    cr_assert_eq(usher_queues_sync(st), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_eq(fire("2026-03-02 10:06:00"), 1);
    cr_assert_eq(jobs_of_slot("every-five", "2026-03-02 10:05:00"), 1);
}

Test(periodic, refuses_a_store_with_an_open_transaction, .init = start)
{
    size_t fired = 99;

    testdb_exec(st, "BEGIN");
    cr_assert_eq(usher_periodic_fire(st, at("2026-03-02 10:02:10"), &fired), USHER_ERR_STATE);
    cr_assert_eq(fired, 0);
    testdb_exec(st, "ROLLBACK");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_periodic"), 0);
}
