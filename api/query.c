/*
 * A request's statements and the answers their failures call for.
 */
#include "query.h"

#include <string.h>

#include "log.h"
#include "pgpool.h"
#include "replica.h"
#include "reply.h"
#include "route.h"

/* The answer when a statement could not be queued. */
static bool queued(api_req *r, usher_err err)
{
    if (err == USHER_OK)
        return true;
    api_reply_error(r, 503, "unavailable", "the database is not reachable; try again shortly");
    return false;
}

bool api_query(api_req *r, const char *sql, int nparams, const char *const *params,
               usher_pg_result_fn done)
{
    return queued(r, api_pgpool_query(r->loop->pg, sql, nparams, params, done, r));
}

bool api_query_read(api_req *r, const char *sql, int nparams, const char *const *params,
                    usher_pg_result_fn done)
{
    return queued(r, api_read(r->loop, sql, nparams, params, done, r));
}

bool api_result_ok(api_req *r, PGresult *res, const char *errmsg)
{
    ExecStatusType status = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    if (res != NULL && (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK))
        return true;
    if (res == NULL) {
        api_reply_error(r, 503, "unavailable", "the database connection was lost; try again");
        return false;
    }
    /* Data the checks let through but the schema refuses: the client's fault. */
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    if (state != NULL && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)) {
        api_reply_error(r, 422, "invalid", "the data was refused: %s",
                        PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
        return false;
    }
    /* The database going away or backing off (a restart, a deadlock victim, out
     * of connections): nothing was written, and the client may simply retry. */
    if (state != NULL && (strncmp(state, "08", 2) == 0 || strncmp(state, "40", 2) == 0 ||
                          strncmp(state, "53", 2) == 0 || strncmp(state, "57", 2) == 0)) {
        usher_log(USHER_LOG_WARNING, "route=%s client=%s database said %s: %s",
                  r->route ? r->route->pattern : "?", r->client, state,
                  errmsg != NULL ? errmsg : "?");
        api_reply_error(r, 503, "unavailable", "the database asked us to retry; try again");
        return false;
    }
    usher_log(USHER_LOG_ERR, "route=%s client=%s statement failed: %s",
              r->route ? r->route->pattern : "?", r->client, errmsg != NULL ? errmsg : "?");
    api_reply_error(r, 500, "internal", "the request failed; it has been logged");
    return false;
}

void api_reply_row(api_req *r, PGresult *res, const char *errmsg, int status, const char *what)
{
    if (!api_result_ok(r, res, errmsg))
        return;
    if (PQntuples(res) < 1 || PQgetisnull(res, 0, 0)) {
        api_reply_error(r, 404, "not_found", "no such %s", what);
        return;
    }
    api_reply_raw(r, status, "application/json", PQgetvalue(res, 0, 0),
                  (size_t)PQgetlength(res, 0, 0));
}
