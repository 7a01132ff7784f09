/*
 * The connection handle every queue operation goes through. Statements are
 * sent with PQexecParams in text format, so every value is a parameter and
 * nothing a caller passes is ever spliced into SQL. A failed statement
 * leaves its message and SQLSTATE on the store for the caller to report.
 */
#include "store.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "inttext.h"
#include "log.h"
#include "pgconnect.h"
#include "sqlstate.h"

/* Hot statements are prepared once per owned connection (see usher_store_exec_hot). */
#define PREPARED_MAX 16

typedef struct prepared {
    const char *sql; /* a static string: its address is the key */
    char name[16];
} prepared;

struct usher_store {
    PGconn *conn;
    bool owns_conn;
    bool condemned; /* a statement failed with a SQLSTATE of sqlstate.h */
    prepared prepared[PREPARED_MAX];
    size_t nprepared;
    const usher_config *cfg;
    char errstr[512];
    char sqlstate[6];
};

/* Server notices ("relation already exists, skipping") are debug detail, not output. */
static void route_notice(void *arg, const char *message)
{
    (void)arg;
    usher_log(USHER_LOG_DEBUG, "postgres: %s", message);
}

static usher_store *store_new(const usher_config *cfg, PGconn *conn, bool owns)
{
    usher_store *st = usher_calloc(1, sizeof(*st));

    st->conn = conn;
    st->owns_conn = owns;
    st->cfg = cfg;
    return st;
}

usher_err usher_store_open(const usher_config *cfg, usher_store **out, char *errbuf, size_t errlen)
{
    return usher_store_open_url(cfg, cfg->database_url, out, errbuf, errlen);
}

usher_err usher_store_open_url(const usher_config *cfg, const char *url, usher_store **out,
                               char *errbuf, size_t errlen)
{
    PGconn *conn = usher_pg_connectdb(url); /* connect_timeout (pgconnect.h) */

    *out = NULL;
    if (conn == NULL)
        usher_oom(0); /* libpq's only reason for no connection object (alloc.h) */
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(errbuf, errlen, "cannot connect to the database: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return USHER_ERR_DB;
    }
    PQsetNoticeProcessor(conn, route_notice, NULL);
    *out = store_new(cfg, conn, true);
    return USHER_OK;
}

usher_err usher_store_attach(const usher_config *cfg, PGconn *conn, usher_store **out)
{
    *out = store_new(cfg, conn, false);
    return USHER_OK;
}

void usher_store_free(usher_store *st)
{
    if (st == NULL)
        return;
    if (st->owns_conn)
        PQfinish(st->conn);
    free(st);
}

PGconn *usher_store_conn(usher_store *st)
{
    return st->conn;
}

bool usher_store_usable(const usher_store *st)
{
    return PQstatus(st->conn) == CONNECTION_OK && !st->condemned;
}

const usher_config *usher_store_config(const usher_store *st)
{
    return st->cfg;
}

const char *usher_store_errstr(const usher_store *st)
{
    return st->errstr;
}

const char *usher_store_sqlstate(const usher_store *st)
{
    return st->sqlstate;
}

usher_err usher_store_fail(usher_store *st, usher_err err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(st->errstr, sizeof(st->errstr), fmt, ap);
    va_end(ap);
    return err;
}

/* Copies libpq's message without its trailing newline. */
static void keep_pg_error(usher_store *st, const PGresult *res)
{
    const char *msg = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(st->conn);
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    size_t len;

    if (msg == NULL || msg[0] == '\0')
        msg = PQerrorMessage(st->conn);
    snprintf(st->errstr, sizeof(st->errstr), "%s", msg);
    len = strlen(st->errstr);
    while (len > 0 && (st->errstr[len - 1] == '\n' || st->errstr[len - 1] == ' '))
        st->errstr[--len] = '\0';
    snprintf(st->sqlstate, sizeof(st->sqlstate), "%s", state != NULL ? state : "");
    if (usher_sqlstate_conn_lost(st->sqlstate))
        st->condemned = true;
}

/* Hands a successful result to *out; keeps the error of a failed one. */
static USHER_MUSTCHECK usher_err take_result(usher_store *st, PGresult *res, PGresult **out)
{
    ExecStatusType status = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    *out = NULL;
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        keep_pg_error(st, res);
        PQclear(res);
        return USHER_ERR_DB;
    }
    *out = res;
    return USHER_OK;
}

usher_err usher_store_exec(usher_store *st, const char *sql, int nparams, const char *const *params,
                           PGresult **out)
{
    return take_result(st, PQexecParams(st->conn, sql, nparams, NULL, params, NULL, NULL, 0), out);
}

/*
 * The prepared statement for sql on this connection, preparing it on first
 * use. NULL when the table is full, or (with *failed set and the error
 * kept) when PREPARE failed.
 */
static const prepared *prepare(usher_store *st, const char *sql, int nparams, bool *failed)
{
    prepared *p;
    PGresult *res;
    bool ok;

    for (size_t i = 0; i < st->nprepared; i++) {
        if (st->prepared[i].sql == sql)
            return &st->prepared[i];
    }
    if (st->nprepared == PREPARED_MAX)
        return NULL;
    p = &st->prepared[st->nprepared];
    snprintf(p->name, sizeof(p->name), "usher_%zu", st->nprepared);
    res = PQprepare(st->conn, p->name, sql, nparams, NULL);
    ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) {
        keep_pg_error(st, res);
        *failed = true;
    }
    PQclear(res);
    if (!ok)
        return NULL;
    p->sql = sql;
    st->nprepared++;
    return p;
}

usher_err usher_store_exec_hot(usher_store *st, const char *sql, int nparams,
                               const char *const *params, PGresult **out)
{
    const prepared *p;
    bool failed = false;

    /*
     * Only on connections the store owns: on a borrowed one a failed
     * PREPARE (the name taken by another wrapper) would abort the
     * caller's transaction. A full table of prepared statements falls
     * back to sending the statement as it is.
     */
    if (!st->owns_conn || (p = prepare(st, sql, nparams, &failed)) == NULL) {
        if (failed) {
            *out = NULL;
            return USHER_ERR_DB;
        }
        return usher_store_exec(st, sql, nparams, params, out);
    }
    return take_result(st, PQexecPrepared(st->conn, p->name, nparams, params, NULL, NULL, 0), out);
}

usher_err usher_store_command(usher_store *st, const char *sql)
{
    PGresult *res;
    usher_err err = usher_store_exec(st, sql, 0, NULL, &res);

    PQclear(res);
    return err;
}

void usher_store_rollback(usher_store *st)
{
    if (PQtransactionStatus(st->conn) != PQTRANS_IDLE)
        usher_ignore(usher_store_command(st, "ROLLBACK")); /* see store.h */
}

usher_err usher_store_end(usher_store *st, usher_err err)
{
    if (err == USHER_OK)
        err = usher_store_command(st, "COMMIT");
    if (err != USHER_OK)
        usher_store_rollback(st);
    return err;
}

/* Parses the one JSON value of res (its only row and column) into *out; clears res. */
static USHER_MUSTCHECK usher_err take_json(usher_store *st, PGresult *res, json_t **out)
{
    json_error_t jerr;

    if (PQntuples(res) != 1 || PQnfields(res) != 1) {
        PQclear(res);
        return usher_store_fail(st, USHER_ERR_DB, "expected one JSON value");
    }
    *out = json_loads(PQgetvalue(res, 0, 0), JSON_DECODE_ANY, &jerr);
    PQclear(res);
    if (*out == NULL)
        return usher_store_fail(st, USHER_ERR_DB, "the database returned invalid JSON: %s",
                                jerr.text);
    return USHER_OK;
}

usher_err usher_store_query_json(usher_store *st, const char *sql, int nparams,
                                 const char *const *params, json_t **out)
{
    PGresult *res;
    usher_err err = usher_store_exec(st, sql, nparams, params, &res);

    *out = NULL;
    return err != USHER_OK ? err : take_json(st, res, out);
}

/* "no WHAT ID": what the _one functions answer when the thing is missing. */
static usher_err not_found(usher_store *st, const char *what, int64_t id)
{
    return usher_store_fail(st, USHER_ERR_NOT_FOUND, "no %s %" PRId64, what, id);
}

usher_err usher_store_exec_one(usher_store *st, const char *sql, int64_t id, const char *what,
                               PGresult **out)
{
    char idtext[USHER_INT_TEXT_MAX];
    const char *params[] = { usher_int_text(id, idtext) };
    usher_err err = usher_store_exec(st, sql, 1, params, out);

    if (err != USHER_OK || PQntuples(*out) == 1)
        return err;
    PQclear(*out);
    *out = NULL;
    return not_found(st, what, id);
}

usher_err usher_store_json_one(usher_store *st, const char *sql, int64_t id, const char *what,
                               json_t **out)
{
    PGresult *res;
    usher_err err = usher_store_exec_one(st, sql, id, what, &res);

    *out = NULL;
    if (err == USHER_OK)
        err = take_json(st, res, out);
    if (err != USHER_OK || !json_is_null(*out))
        return err;
    json_decref(*out);
    *out = NULL;
    return not_found(st, what, id);
}
