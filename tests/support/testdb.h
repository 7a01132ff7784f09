/*
 * Test support for integration tests: each test binary gets a database of
 * its own on the stack's PostgreSQL (USHER_DATABASE_URL), created fresh
 * and migrated, and resets the queue tables between tests.
 */
#ifndef USHER_TESTDB_H
#define USHER_TESTDB_H

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <stdbool.h>

#include "config.h"
#include "store.h"

/*
 * Loads conf/usher.conf and points cfg->database_url at the database
 * `name` next to the one USHER_DATABASE_URL names. With create, the
 * database is (re)created and migrated (schema and the config's queues).
 * Fails the test on any error.
 */
void testdb_setup(const char *name, usher_config *cfg, bool create);

/*
 * Declares the test suite `suite` of a binary whose tests share the
 * database `dbname`: it is created once, before the first test (Criterion
 * runs each test in a process of its own), and each test starts with an
 * open store `st` on emptied queue tables and the configuration `cfg`.
 */
#define TESTDB_SUITE(suite, dbname)                        \
    static usher_config cfg;                               \
    static usher_store *st;                                \
    ReportHook(PRE_ALL)(struct criterion_test_set * tests) \
    {                                                      \
        usher_config once = { 0 };                         \
        (void)tests;                                       \
        testdb_setup(dbname, &once, true);                 \
        usher_config_free(&once);                          \
    }                                                      \
    static void suite##_setup(void)                        \
    {                                                      \
        testdb_setup(dbname, &cfg, false);                 \
        st = testdb_store(&cfg);                           \
        testdb_reset(st);                                  \
    }                                                      \
    static void suite##_teardown(void)                     \
    {                                                      \
        usher_store_free(st);                              \
        usher_config_free(&cfg);                           \
    }                                                      \
    TestSuite(suite, .init = suite##_setup, .fini = suite##_teardown)

/* Opens a store on cfg's database; fails the test if it cannot. */
usher_store *testdb_store(const usher_config *cfg);

/* Empties the job and statistics tables and resumes every queue. */
void testdb_reset(usher_store *st);

/* Runs sql (no parameters); fails the test if it fails. */
void testdb_exec(usher_store *st, const char *sql);

/* The first column of the first row of sql, as a number; fails the test on error. */
long long testdb_scalar(usher_store *st, const char *sql);

/* testdb_scalar of the printf-formatted fmt (at most 2 KiB). */
long long testdb_scalarf(usher_store *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A new organizer named name; its id. Fails the test on error. */
long long testdb_organizer(usher_store *st, const char *name);

/* What testdb_event_new made: the event and its ticket type (0 if none). */
typedef struct testdb_event {
    long long id, ticket_type;
} testdb_event;

/*
 * A new event of organizer named name, from now to days later, and when
 * capacity > 0 its ticket type 'GA' of capacity seats. Fails the test on error.
 */
testdb_event testdb_event_new(usher_store *st, long long organizer, const char *name, int days,
                              int capacity);

/* The monotonic clock in milliseconds, for deadlines. */
long long testdb_now_ms(void);

#endif
