/*
 * A store is Usher's handle on one PostgreSQL connection: every queue
 * operation takes one. It either owns the connection (usher_store_open) or
 * borrows the caller's (usher_store_attach), which is how a job is enqueued
 * inside the caller's own transaction. The detail of the last failure is in
 * usher_store_errstr().
 */
#ifndef USHER_STORE_H
#define USHER_STORE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"

typedef struct usher_store usher_store;

/* Connects to cfg->database_url. cfg is borrowed and must outlive the store. */
USHER_MUSTCHECK usher_err usher_store_open(const usher_config *cfg, usher_store **out, char *errbuf,
                                           size_t errlen);

/* Connects to url (another server of cfg's: a replica), with cfg for everything else. */
USHER_MUSTCHECK usher_err usher_store_open_url(const usher_config *cfg, const char *url,
                                               usher_store **out, char *errbuf, size_t errlen);

/* Wraps conn, which stays the caller's: usher_store_free does not close it. */
USHER_MUSTCHECK usher_err usher_store_attach(const usher_config *cfg, PGconn *conn,
                                             usher_store **out);

void usher_store_free(usher_store *st);

PGconn *usher_store_conn(usher_store *st);

/*
 * False once the connection is broken, or a statement on it failed with a
 * SQLSTATE that condemns it (engine/sqlstate.h: the server shutting down,
 * or a standby now, 25006): whoever keeps the store frees it and opens
 * another, which finds the primary again with a multi-host URL.
 */
bool usher_store_usable(const usher_store *st);
const usher_config *usher_store_config(const usher_store *st);

/* The detail of the last failure on this store ("" if none); kept until the next failure. */
const char *usher_store_errstr(const usher_store *st);

/*
 * The building blocks the engine's modules share. Each runs one
 * parameterised statement; on failure the store's errstr says why and the
 * result is cleared. fail() records a message and returns err.
 */
usher_err usher_store_fail(usher_store *st, usher_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
USHER_MUSTCHECK usher_err usher_store_exec(usher_store *st, const char *sql, int nparams,
                                           const char *const *params, PGresult **out);
USHER_MUSTCHECK usher_err usher_store_command(usher_store *st, const char *sql);

/*
 * After a failure: rolls back the transaction the connection has open, if
 * any. Its own failure goes unreported on purpose: the caller returns the
 * first error, and a connection that cannot roll back is broken, which the
 * next statement finds (PostgreSQL aborts the transaction when it closes).
 */
void usher_store_rollback(usher_store *st);

/*
 * Ends the transaction the caller opened: COMMIT when err is USHER_OK,
 * otherwise usher_store_rollback. Returns err, or COMMIT's own failure.
 */
USHER_MUSTCHECK usher_err usher_store_end(usher_store *st, usher_err err);

/*
 * usher_store_exec for the engine's hot statements (enqueue, claim,
 * complete, fail): sql must be a static string, which is prepared once per
 * connection and then only executed, saving the parse and plan of every
 * call. Falls back to usher_store_exec on a borrowed connection.
 */
USHER_MUSTCHECK usher_err usher_store_exec_hot(usher_store *st, const char *sql, int nparams,
                                               const char *const *params, PGresult **out);

/*
 * Runs a statement whose single row and column is JSON text (built with
 * json_agg and friends in SQL) and parses it. The caller owns *out.
 */
USHER_MUSTCHECK usher_err usher_store_query_json(usher_store *st, const char *sql, int nparams,
                                                 const char *const *params, json_t **out);

/*
 * For statements about one thing named by id: run with $1 = id, they must
 * yield exactly one row (exec_one) or a JSON value other than null
 * (json_one); anything else is USHER_ERR_NOT_FOUND with the message
 * "no WHAT ID" and *out NULL. Otherwise as usher_store_exec and
 * usher_store_query_json.
 */
USHER_MUSTCHECK usher_err usher_store_exec_one(usher_store *st, const char *sql, int64_t id,
                                               const char *what, PGresult **out);
USHER_MUSTCHECK usher_err usher_store_json_one(usher_store *st, const char *sql, int64_t id,
                                               const char *what, json_t **out);

/* The SQLSTATE of the last failed statement ("" if none), e.g. "23505". */
const char *usher_store_sqlstate(const usher_store *st);

#endif
