/*
 * A request's statements: queued on its loop's connections (api/pgpool.h),
 * their results read back with the answers a failure calls for (503 when
 * the database is away or asks for a retry, 422 for data it refused, 500
 * for the rest, logged).
 */
#ifndef USHER_API_QUERY_H
#define USHER_API_QUERY_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "error.h"
#include "pgloop.h"
#include "request.h"

/*
 * Queues a statement on the loop's connections; done runs on the loop with
 * the result. When the database is unreachable this answers 503 itself and
 * returns false (done is not called).
 */
bool api_query(api_req *r, const char *sql, int nparams, const char *const *params,
               usher_pg_result_fn done);

/*
 * api_query for a read that may see data a moment old: it goes to a fresh
 * replica when there is one (api/replica.h), else to the primary. For
 * routes whose client did not just write what it reads (the README's
 * "Read replicas" table).
 */
bool api_query_read(api_req *r, const char *sql, int nparams, const char *const *params,
                    usher_pg_result_fn done);

/*
 * For a callback: true when res is a good result; otherwise answers 503
 * (connection lost) or 500 (statement failed, logged) and returns false.
 */
USHER_MUSTCHECK bool api_result_ok(api_req *r, PGresult *res, const char *errmsg);

/*
 * Answers the JSON text in the first column of res's first row with
 * status; no row, or NULL, answers 404 "no such WHAT". A failed statement
 * is answered as api_result_ok does.
 */
void api_reply_row(api_req *r, PGresult *res, const char *errmsg, int status, const char *what);

#endif
