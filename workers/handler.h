/*
 * The handler interface: what a job kind's code receives and how it says
 * the attempt ended. Handlers run in a pre-forked child process, one job
 * at a time, so a crash or a hang costs one child, never the pool. A kind
 * whose jobs are cheaper together (one statement, one index commit) may
 * also take several jobs at once: see usher_batch_fn.
 */
#ifndef USHER_HANDLER_H
#define USHER_HANDLER_H

#include <jansson.h>
#include <stdint.h>

#include "config.h"
#include "job.h"
#include "ratelimit_shared.h"
#include "replica_reader.h"
#include "store.h"
#include "retry.h"

#define USHER_HANDLER_ERROR_MAX 2048

typedef struct usher_handler_result {
    usher_outcome outcome; /* OK, RETRY, PERMANENT or SNOOZE */
    int64_t delay_ms;      /* for RETRY or SNOOZE; -1 = the kind's policy */
    char error[USHER_HANDLER_ERROR_MAX];
} usher_handler_result;

/*
 * What a handler may use besides its job: the configuration and a
 * database connection of the child's own, opened on first use.
 */
typedef struct usher_handler_ctx usher_handler_ctx;

const usher_config *usher_handler_config(const usher_handler_ctx *ctx);

/*
 * The child's connection, (re)opened when needed. NULL when the database
 * cannot be reached; then result is already set to a retry saying why.
 */
USHER_MUSTCHECK usher_store *usher_handler_store(usher_handler_ctx *ctx,
                                                 usher_handler_result *result);

/*
 * The child's reader of replicas ([database] read_url; see
 * engine/replica_reader.h), made at first use: a handler whose reads may
 * be served by a replica picks the store for them with it.
 */
usher_replica_reader *usher_handler_replicas(usher_handler_ctx *ctx);

/*
 * Runs one attempt. job and payload (the parsed job->payload) are
 * borrowed for the call. result starts as OK with delay -1 and no error.
 */
typedef void (*usher_handler_fn)(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                                 usher_handler_result *result);

/*
 * Runs one attempt of each of n jobs (1 <= n <= the kind's batch_max) of
 * the kind, which the supervisor handed to the child one after the other.
 * jobs[i] and payloads[i] (parsed JSON) are borrowed for the call;
 * results[i] starts as OK with delay -1 and no error, and is reported for
 * jobs[i], in order, after the call returns: so a batch function must make
 * its work durable before it returns an OK.
 */
typedef void (*usher_batch_fn)(usher_handler_ctx *ctx, const usher_job *jobs,
                               json_t *const *payloads, size_t n, usher_handler_result *results);

/* Jobs one batch takes at most (a child holds at most this many anyway). */
#define USHER_BATCH_MAX 64

/*
 * A kind and its code: run, run_batch or both. When run_batch is set the
 * child uses it for every job of the kind, with the jobs of the kind that
 * are already waiting in its socket, up to batch_max (1..USHER_BATCH_MAX).
 */
typedef struct usher_handler {
    const char *kind;
    usher_handler_fn run;
    usher_batch_fn run_batch;
    size_t batch_max;
} usher_handler;

/* Sets result to a failure with a printf-style message. */
void usher_handler_fail(usher_handler_result *result, usher_outcome outcome, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* For the child process: a context over cfg (borrowed), and its end. */
USHER_MUSTCHECK usher_handler_ctx *usher_handler_ctx_new(const usher_config *cfg);
void usher_handler_ctx_free(usher_handler_ctx *ctx);

/*
 * The pool's SMTP rate limiter ([pool.NAME] smtp_rate), shared by all its
 * children, or NULL outside a pool. The supervisor sets it before it forks,
 * so every child inherits the same shared page.
 */
void usher_handler_set_smtp_limiter(usher_gcra *limiter);
usher_gcra *usher_handler_smtp_limiter(const usher_handler_ctx *ctx);

/*
 * The supervisor's worker id (the lease holder's name in usher_jobs), set
 * before it forks so that every child inherits it; "" outside a pool.
 */
void usher_handler_set_worker(const char *worker_id);

/*
 * Ends the transaction the handler opened on st, with job's completion in
 * it: the job leaves the queue in the same commit as the handler's writes,
 * so a handler whose reply is lost with the connection (a database restart)
 * is never run again after its writes committed. Returns USHER_OK when it
 * committed. When the job is no longer this worker's (its lease expired and
 * it was rescued), rolls back and returns USHER_ERR_STATE with result set
 * to a retry. On a database error (the commit's outcome may be unknown)
 * returns it; the caller reports it as usual, and if the commit did happen
 * the supervisor's retry of a job that is gone changes nothing. Outside a
 * pool (no worker id) it only commits.
 */
USHER_MUSTCHECK usher_err usher_handler_commit(usher_handler_ctx *ctx, usher_store *st,
                                               const usher_job *job, usher_handler_result *result);

/*
 * The handler registered for kind, or NULL. The test.* kinds are found only
 * when ctx's configuration sets [worker] test_handlers.
 */
const usher_handler *usher_handler_find(const usher_handler_ctx *ctx, const char *kind);

/* Fails result for good: no handler for kind here (and why, for a test kind). */
void usher_handler_missing(usher_handler_result *result, const char *kind);

#endif
