/*
 * The engine's blocking calls (engine/admin.h, engine/queues.h: libpq in
 * blocking mode) for the admins' routes: each runs on the offload pool
 * with that worker thread's own connection, never on a loop thread. Admin
 * actions are rare, so this reuses the engine's statements (the same ones
 * usherctl runs) instead of writing them again in callback form.
 */
#ifndef USHER_API_BLOCKING_H
#define USHER_API_BLOCKING_H

#include "request.h"
#include "store.h"

/* Runs on a worker thread; may set *out (handed to done). */
typedef usher_err (*api_blocking_fn)(usher_store *st, void *arg, json_t **out);

/*
 * Back on the loop: err and the store's reason (why), out (done owns it),
 * and arg. done must end the request.
 */
typedef void (*api_blocking_done)(api_req *r, usher_err err, const char *why, json_t *out,
                                  void *arg);

/*
 * Runs fn(arg) on the pool, then done on the loop. When the pool cannot
 * take it, done runs at once with USHER_ERR_TIMEOUT (busy: 503), so done
 * always runs exactly once and can free arg.
 */
void api_blocking(api_req *r, api_blocking_fn fn, api_blocking_done done, void *arg);

/*
 * api_blocking for a fn that only reads and may see a replica
 * ([database] read_url): it runs on one that has replayed everything the
 * primary has when the call starts, so the caller's own last change is in
 * it, else on the primary (engine/replica_reader.h). A read the replica
 * fails runs again on the primary. Counted in usher_db_reads_total.
 */
void api_blocking_read(api_req *r, api_blocking_fn fn, api_blocking_done done, void *arg);

/*
 * The usual done: the engine error as api_reply_engine_error does, or out
 * as 200 JSON (not cacheable). Frees arg (heap or NULL).
 */
void api_blocking_reply(api_req *r, usher_err err, const char *why, json_t *out, void *arg);

/* Answers an engine error with its status: 404, 409, 422 or 503. */
void api_reply_engine_error(api_req *r, usher_err err, const char *why);

#endif
