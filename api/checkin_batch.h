/*
 * Check-ins gathered per loop thread: the scans a loop reads in one turn of
 * its event loop (or 64 at most) go to PostgreSQL as one statement and one
 * commit (usher_checkin_batch() in schemas/migrations/0007_api.sql), and
 * each request gets its own row back. At the door's rates one statement
 * per scan spent most of the database's CPU on per-statement and
 * per-commit work.
 */
#ifndef USHER_API_CHECKIN_BATCH_H
#define USHER_API_CHECKIN_BATCH_H

#include <jansson.h>

#include "error.h"
#include "request.h"

typedef struct api_checkin_batch api_checkin_batch;

/* Called with each request's row: result, first check-in time (or NULL) and gate (or NULL). */
typedef void (*api_checkin_answer)(api_req *r, const char *result, const char *first_at,
                                   const char *first_gate);

USHER_MUSTCHECK api_checkin_batch *api_checkin_batch_new(api_loop *loop, api_checkin_answer answer);

/* Answers what is still waiting (503) and frees the batcher. */
void api_checkin_batch_free(api_checkin_batch *b);

/* Queues r's scan (item is taken); it is sent at the end of this loop turn. */
void api_checkin_batch_add(api_loop *loop, api_req *r, json_t *item);

#endif
