/*
 * The handler registry: one table of every job kind this binary can run.
 * Each handlers/ file exports its entries; the table lists them. Adding a
 * kind is one line here and one file there. The test kinds are in the
 * binary but found only when the configuration asks for them ([worker]
 * test_handlers): they crash or hang a child on request and append to any
 * file a payload names, nothing a production pool should do for whoever
 * can enqueue a job.
 */
#include "handler.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "claim.h"
#include "handlers/job_handlers.h"
#include "handlers/test_handlers.h"
#include "replica_reader.h"

static const struct {
    const usher_handler *handlers;
    bool test_only; /* found only with [worker] test_handlers = true */
} handler_sets[] = {
    { usher_job_handlers, false },
    { usher_test_handlers, true },
};

/* Process-wide: set in the supervisor before fork, inherited by each child. */
static usher_gcra *smtp_limiter;
static char worker[320];

struct usher_handler_ctx {
    const usher_config *cfg;
    usher_store *store;
    usher_replica_reader *replicas; /* made at first use */
};

usher_handler_ctx *usher_handler_ctx_new(const usher_config *cfg)
{
    usher_handler_ctx *ctx = usher_calloc(1, sizeof(*ctx));

    ctx->cfg = cfg;
    return ctx;
}

void usher_handler_ctx_free(usher_handler_ctx *ctx)
{
    if (ctx == NULL)
        return;
    usher_store_free(ctx->store);
    usher_replica_reader_free(ctx->replicas);
    free(ctx);
}

const usher_config *usher_handler_config(const usher_handler_ctx *ctx)
{
    return ctx->cfg;
}

/*
 * An idle connection of a child has nothing to read: it LISTENs to nothing
 * and no statement is running. Anything readable means the server has
 * spoken out of turn, which in practice is its FATAL "terminating
 * connection" or the close after it (a restart): the connection is not
 * worth a job's attempt, so it is replaced before the job runs.
 */
static bool spoke_out_of_turn(PGconn *conn)
{
    struct pollfd p = { .fd = PQsocket(conn), .events = POLLIN };

    if (p.fd < 0)
        return true;
    return poll(&p, 1, 0) != 0;
}

usher_store *usher_handler_store(usher_handler_ctx *ctx, usher_handler_result *result)
{
    char errbuf[256];

    if (ctx->store != NULL &&
        (!usher_store_usable(ctx->store) || spoke_out_of_turn(usher_store_conn(ctx->store)))) {
        /* A restart, a cut, or a failover: open a new one (it finds the primary). */
        usher_store_free(ctx->store);
        ctx->store = NULL;
    }
    if (ctx->store == NULL &&
        usher_store_open(ctx->cfg, &ctx->store, errbuf, sizeof(errbuf)) != USHER_OK) {
        usher_handler_fail(result, USHER_OUTCOME_RETRY, "%s", errbuf);
        return NULL;
    }
    return ctx->store;
}

usher_replica_reader *usher_handler_replicas(usher_handler_ctx *ctx)
{
    if (ctx->replicas == NULL)
        ctx->replicas = usher_replica_reader_new(ctx->cfg);
    return ctx->replicas;
}

void usher_handler_fail(usher_handler_result *result, usher_outcome outcome, const char *fmt, ...)
{
    va_list ap;

    result->outcome = outcome;
    va_start(ap, fmt);
    vsnprintf(result->error, sizeof(result->error), fmt, ap);
    va_end(ap);
}

void usher_handler_set_smtp_limiter(usher_gcra *limiter)
{
    smtp_limiter = limiter;
}

usher_gcra *usher_handler_smtp_limiter(const usher_handler_ctx *ctx)
{
    (void)ctx;
    return smtp_limiter;
}

void usher_handler_set_worker(const char *worker_id)
{
    snprintf(worker, sizeof(worker), "%s", worker_id);
}

usher_err usher_handler_commit(usher_handler_ctx *ctx, usher_store *st, const usher_job *job,
                               usher_handler_result *result)
{
    size_t completed = 0;
    usher_err err = USHER_OK;

    (void)ctx;
    if (worker[0] != '\0')
        err = usher_complete(st, worker, &job->id, 1, &completed);
    if (err == USHER_OK && worker[0] != '\0' && completed == 0) {
        usher_store_rollback(st);
        usher_handler_fail(result, USHER_OUTCOME_RETRY,
                           "job %lld is no longer held by %s (lease lost): its writes were"
                           " rolled back",
                           (long long)job->id, worker);
        return USHER_ERR_STATE;
    }
    return usher_store_end(st, err);
}

/* The handler of kind among every set, enabled or not; NULL for an unknown kind. */
static const usher_handler *find_in_sets(const char *kind, bool *test_only)
{
    for (size_t s = 0; s < sizeof(handler_sets) / sizeof(handler_sets[0]); s++) {
        for (const usher_handler *h = handler_sets[s].handlers; h->kind != NULL; h++) {
            if (strcmp(h->kind, kind) == 0) {
                *test_only = handler_sets[s].test_only;
                return h;
            }
        }
    }
    return NULL;
}

const usher_handler *usher_handler_find(const usher_handler_ctx *ctx, const char *kind)
{
    bool test_only = false;
    const usher_handler *h = find_in_sets(kind, &test_only);

    return h != NULL && (!test_only || ctx->cfg->worker_test_handlers) ? h : NULL;
}

void usher_handler_missing(usher_handler_result *result, const char *kind)
{
    bool test_only = false;

    if (find_in_sets(kind, &test_only) != NULL && test_only)
        usher_handler_fail(result, USHER_OUTCOME_PERMANENT,
                           "no handler for kind '%s' (test kinds run only with [worker]"
                           " test_handlers = true)",
                           kind);
    else
        usher_handler_fail(result, USHER_OUTCOME_PERMANENT, "no handler for kind '%s'", kind);
}
