/*
 * A Redis of a test's own (so the test may stop it): redis-server on a
 * free loopback port, no persistence, USHER_REDIS_URL pointed at it.
 */
#ifndef USHER_TESTREDIS_H
#define USHER_TESTREDIS_H

#include <sys/types.h>

/* Starts it and waits (up to 30 s) until it accepts connections; fails the test otherwise. */
pid_t testredis_start(void);

/*
 * The same with more redis-server arguments (NULL-terminated, or NULL),
 * e.g. --requirepass; *port gets its port. USHER_REDIS_URL names no password.
 */
pid_t testredis_start_with(const char *const *extra, int *port);

/* The same on a given port (a restart of a Redis the test stopped). */
pid_t testredis_start_on(int port, const char *const *extra);

#endif
