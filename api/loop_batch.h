/*
 * Requests gathered per loop thread into one statement and one commit: the
 * items a loop reads in one turn of its event loop (or 64 at most) go to
 * PostgreSQL as a JSON array, $1, of a set-returning function whose rows
 * start with idx (the item's index), and each request gets its own row
 * back. At the door's and a sale's rates one statement per request spent
 * most of the database's CPU on per-statement and per-commit work.
 * Check-ins (usher_checkin_batch(), 0009_checkin_jobs.sql) and
 * registrations (usher_register_batch(), 0029_register_batch.sql) use it.
 */
#ifndef USHER_API_LOOP_BATCH_H
#define USHER_API_LOOP_BATCH_H

#include <jansson.h>
#include <libpq-fe.h>

#include "error.h"
#include "request.h"

typedef struct api_loop_batch api_loop_batch;

/*
 * r's row of the batch's result: column 0 is idx, the request's own
 * columns follow. item is r's, borrowed.
 */
typedef void (*api_batch_row_fn)(api_req *r, json_t *item, PGresult *res, int row);

/*
 * The statement failed as a whole (res an error, or NULL with errmsg when
 * the connection was lost): what r hears. item is r's, borrowed.
 */
typedef void (*api_batch_failed_fn)(api_req *r, json_t *item, PGresult *res, const char *errmsg);

typedef struct api_batch_kind {
    const char *sql; /* $1 the items (jsonb), $2 what param2 gives, if it is not NULL */
    const char *(*param2)(api_loop *loop); /* read at each send: a reload may change it */
    api_batch_row_fn row;                  /* each request's row */
    api_batch_failed_fn failed;            /* NULL: api_result_ok() answers */
} api_batch_kind;

/* kind must outlive the batcher. */
USHER_MUSTCHECK api_loop_batch *api_loop_batch_new(api_loop *loop, const api_batch_kind *kind);

/* Answers what is still waiting (503) and frees the batcher. */
void api_loop_batch_free(api_loop_batch *b);

/* Queues r's item (taken); it is sent at the end of this loop turn. */
void api_loop_batch_add(api_loop_batch *b, api_req *r, json_t *item);

/*
 * The same, with more of the item as JSON text: tail, which starts with
 * ',' and ends with '}', takes the place of the item's closing brace in
 * what is sent (item must have a member). The callbacks see only item: it
 * holds what they need, tail what only the statement needs (text a loop
 * can keep from one request to the next instead of building it each time).
 */
void api_loop_batch_add_tail(api_loop_batch *b, api_req *r, json_t *item, const char *tail);

#endif
