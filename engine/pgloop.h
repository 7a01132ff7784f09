/*
 * A PostgreSQL connection driven by a libevent loop: non-blocking libpq,
 * statements queued and sent one at a time, results handed to callbacks,
 * NOTIFYs handed to a hook, and reconnection with backoff when the
 * database goes away. The worker supervisor claims, completes and LISTENs
 * through one of these without ever blocking its loop.
 */
#ifndef USHER_PGLOOP_H
#define USHER_PGLOOP_H

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdbool.h>

#include "error.h"

typedef struct usher_pgloop usher_pgloop;

/*
 * A statement's result. res is NULL when the statement could not run
 * (the connection broke before or while it ran: it may or may not have
 * committed; or the server failed it with a SQLSTATE that condemns the
 * connection, engine/sqlstate.h, e.g. 25006 on a standby after a failover,
 * and the connection is replaced) and otherwise is valid only during the callback; errmsg says
 * why for NULL or error results.
 */
typedef void (*usher_pg_result_fn)(PGresult *res, const char *errmsg, void *arg);

typedef struct usher_pgloop_hooks {
    void (*connected)(usher_pgloop *pg, void *arg);   /* after every (re)connect */
    void (*disconnected)(const char *why, void *arg); /* the connection was lost */
    void (*notified)(const char *channel, void *arg); /* a NOTIFY arrived */
    /* A statement finished (any result): seconds queued here before it was
     * sent, and from its send to its last result (the database's time plus
     * the round trip, and its PREPARE on first use). */
    void (*timed)(double queued_s, double ran_s, void *arg);
    void *arg;
} usher_pgloop_hooks;

/*
 * A statement with copies of its text parameters (a NULL parameter stays
 * NULL), for whoever holds statements before they run: pgloop's queue and
 * usher-api's pool while no connection is up.
 */
typedef struct usher_pg_stmt {
    char *sql;
    char **params;
    int nparams;
} usher_pg_stmt;

/* Copies sql and its nparams params into s. */
void usher_pg_stmt_copy(usher_pg_stmt *s, const char *sql, int nparams, const char *const *params);

/* Frees what usher_pg_stmt_copy allocated and empties s; an empty s is accepted. */
void usher_pg_stmt_release(usher_pg_stmt *s);

/* Starts connecting at once; hooks are copied. */
USHER_MUSTCHECK usher_err usher_pgloop_new(struct event_base *base, const char *conninfo,
                                           const usher_pgloop_hooks *hooks, usher_pgloop **out);

/* Closes the connection; pending callbacks are called with res NULL first. */
void usher_pgloop_free(usher_pgloop *pg);

bool usher_pgloop_connected(const usher_pgloop *pg);

/* Statements waiting or running (0 = idle). */
int usher_pgloop_pending(const usher_pgloop *pg);

/*
 * Queues a parameterised statement (text parameters, copied). While the
 * connection is down the call fails with USHER_ERR_DB and nothing is
 * queued: the caller keeps what it wanted to write and tries again after
 * the connected hook.
 */
USHER_MUSTCHECK usher_err usher_pgloop_query(usher_pgloop *pg, const char *sql, int nparams,
                                             const char *const *params, usher_pg_result_fn done,
                                             void *arg);

#endif
