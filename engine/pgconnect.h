/*
 * Connecting to PostgreSQL with a bound on every host attempt. libpq
 * applies connect_timeout only in its blocking calls (PQconnectdb): with
 * PQconnectStart + PQconnectPoll the deadline is the caller's business,
 * and a multi-host URL cannot be told "give up on this host, try the
 * next" except by starting over. A host whose SYNs go unanswered (its link
 * cut) would hold every asynchronous attempt for the kernel's TCP connect
 * timeout, about two minutes.
 *
 * So a conninfo (URL or key=value) is split into attempts, one per host in
 * the order given, each a complete parameter set naming that host alone
 * and keeping target_session_attrs (prefer-standby becomes two passes:
 * every host as "standby", then every host as "any", as libpq does). The
 * caller starts them in order and abandons one at its deadline:
 * connect_timeout (seconds, libpq's minimum of 2 applies), 2 s when absent,
 * none when 0. Blocking connects go through usher_pg_connectdb, which
 * gives libpq the same default.
 */
#ifndef USHER_PGCONNECT_H
#define USHER_PGCONNECT_H

#include <libpq-fe.h>
#include <stddef.h>

#include "error.h"

#define USHER_PG_CONNECT_TIMEOUT_S 2 /* when the conninfo names none */

typedef struct usher_pg_attempts usher_pg_attempts;

/*
 * Splits conninfo into attempts; a conninfo libpq cannot parse, or whose
 * host, hostaddr and port lists do not match, is USHER_ERR_CONFIG (errbuf
 * says why).
 */
USHER_MUSTCHECK usher_err usher_pg_attempts_new(const char *conninfo, usher_pg_attempts **out,
                                                char *errbuf, size_t errlen);

void usher_pg_attempts_free(usher_pg_attempts *a);

size_t usher_pg_attempts_count(const usher_pg_attempts *a);

/* The deadline of each attempt in milliseconds; 0 for none. */
int usher_pg_attempts_timeout_ms(const usher_pg_attempts *a);

/*
 * Which host of the list attempt i tries (0-based): two attempts of a
 * prefer-standby plan share it.
 */
size_t usher_pg_attempts_host_index(const usher_pg_attempts *a, size_t i);

/* The value attempt i passes for keyword (e.g. "host"), or NULL (libpq's default). */
const char *usher_pg_attempts_param(const usher_pg_attempts *a, size_t i, const char *keyword);

/* PQconnectStartParams for attempt i: the caller polls it and PQfinishes it. */
USHER_MUSTCHECK PGconn *usher_pg_attempts_start(const usher_pg_attempts *a, size_t i);

/*
 * PQconnectdb with connect_timeout defaulting to USHER_PG_CONNECT_TIMEOUT_S
 * (libpq itself moves to the next host at it). Never NULL: an unparsable
 * conninfo gives a connection whose status is CONNECTION_BAD, as libpq's.
 */
USHER_MUSTCHECK PGconn *usher_pg_connectdb(const char *conninfo);

#endif
