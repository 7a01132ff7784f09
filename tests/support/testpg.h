/*
 * Private PostgreSQL 15 servers for tests that need more than the stack's
 * one: a primary, and streaming standbys made from it with pg_basebackup
 * -R, each with its own data directory under a temporary directory of the
 * test, its own port on 127.0.0.1 and its own socket directory. A test
 * kills, promotes, pauses and stops them, and testpg_cleanup removes every
 * trace. As root the servers run as the postgres user (PostgreSQL refuses
 * root), as scripts/stack.sh does.
 *
 * Ports: $USHER_TEST_PG_PORT_BASE, +1, +2... when set (a shared machine
 * hands out ranges), otherwise free ports the kernel picks.
 */
#ifndef USHER_TESTPG_H
#define USHER_TESTPG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

typedef struct testpg {
    char dir[200]; /* data directory */
    char log[200];
    int port;
} testpg;

/* A temporary directory for the servers of one test (postgres may enter it). */
void testpg_root(char root[96], const char *name);

/* The index-th port for this test's servers (see the header comment). */
int testpg_port(int index);

/*
 * initdb + start a primary named name under root on port, with trust on
 * loopback (replication too) and a database "usher".
 */
void testpg_primary(testpg *pg, const char *root, const char *name, int port);

/*
 * A streaming standby of primary (pg_basebackup -R), started, named name
 * (its application_name on the primary) on port; with no synchronous
 * standby of its own, so that after a promotion it commits alone.
 */
void testpg_standby(testpg *pg, const testpg *primary, const char *root, const char *name,
                    int port);

/*
 * synchronous_standby_names = name on primary (ALTER SYSTEM, reload), and
 * waits until that standby is synchronous: from then on a commit is
 * acknowledged only once the standby has flushed it.
 */
void testpg_synchronous(testpg *primary, const char *name);

/* libpq conninfo of the database "usher" on pg (caller's buffer). */
void testpg_conninfo(const testpg *pg, char *out, size_t len);

/*
 * Runs sql on pg's database usher (the test's own connections always write:
 * default_transaction_read_only is off for them); fails the test on error.
 */
void testpg_exec(const testpg *pg, const char *sql);

/* Runs sql on pg's database usher; its first value as a number (-1 on NULL). */
long long testpg_scalar(const testpg *pg, const char *sql);

/* The postmaster's pid (from postmaster.pid), 0 if none. */
pid_t testpg_postmaster(const testpg *pg);

/* kill -9 of the postmaster, waiting until it is gone (no clean shutdown). */
void testpg_kill9(testpg *pg);

/* pg_ctl promote, waiting until the standby takes writes. */
void testpg_promote(testpg *pg);

/* pg_ctl stop -m fast (waiting), and start again. */
void testpg_stop(testpg *pg);
void testpg_start(testpg *pg);

/*
 * Loads the configuration (USHER_CONFIG or conf/usher.conf) into cfg with
 * database_url = pg's database usher, migrates it and syncs the queues.
 */
void testpg_migrate(const testpg *pg, usher_config *cfg);

/* Stops what still runs under root (immediate) and removes root. */
void testpg_cleanup(const char *root, testpg *const *servers, int n);

#endif
