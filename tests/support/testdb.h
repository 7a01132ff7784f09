/*
 * Test support for integration tests: each test binary gets a database of
 * its own on the stack's PostgreSQL (USHER_DATABASE_URL), created fresh
 * and migrated, and resets the queue tables between tests.
 */
#ifndef USHER_TESTDB_H
#define USHER_TESTDB_H

#include "config.h"
#include "store.h"

/*
 * Loads conf/usher.conf, (re)creates the database `name` next to the one
 * USHER_DATABASE_URL names, points cfg->database_url at it and migrates it
 * (schema and the config's queues). Fails the test on any error.
 */
void testdb_setup(const char *name, usher_config *cfg);

/* Opens a store on cfg's database; fails the test if it cannot. */
usher_store *testdb_store(const usher_config *cfg);

/* Empties the job and statistics tables and resumes every queue. */
void testdb_reset(usher_store *st);

/* Runs sql (no parameters); fails the test if it fails. */
void testdb_exec(usher_store *st, const char *sql);

/* The first column of the first row of sql, as a number; fails the test on error. */
long long testdb_scalar(usher_store *st, const char *sql);

/* The monotonic clock in milliseconds, for deadlines. */
long long testdb_now_ms(void);

#endif
