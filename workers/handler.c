/*
 * The handler registry: one table of every job kind this binary can run.
 * Each handlers/ file exports its entries; the table lists them. Adding a
 * kind is one line here and one file there.
 */
#include "handler.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/job_handlers.h"
#include "handlers/test_handlers.h"

static const usher_handler *const handler_sets[] = {
    usher_job_handlers,
    usher_test_handlers,
};

/* Process-wide: set in the supervisor before fork, inherited by each child. */
static usher_gcra *smtp_limiter;

struct usher_handler_ctx {
    const usher_config *cfg;
    usher_store *store;
};

usher_handler_ctx *usher_handler_ctx_new(const usher_config *cfg)
{
    usher_handler_ctx *ctx = calloc(1, sizeof(*ctx));

    if (ctx != NULL)
        ctx->cfg = cfg;
    return ctx;
}

void usher_handler_ctx_free(usher_handler_ctx *ctx)
{
    if (ctx == NULL)
        return;
    usher_store_free(ctx->store);
    free(ctx);
}

const usher_config *usher_handler_config(const usher_handler_ctx *ctx)
{
    return ctx->cfg;
}

usher_store *usher_handler_store(usher_handler_ctx *ctx, usher_handler_result *result)
{
    char errbuf[256];

    if (ctx->store != NULL && PQstatus(usher_store_conn(ctx->store)) == CONNECTION_BAD) {
        usher_store_free(ctx->store); /* a restart or a cut: open a new one */
        ctx->store = NULL;
    }
    if (ctx->store == NULL &&
        usher_store_open(ctx->cfg, &ctx->store, errbuf, sizeof(errbuf)) != USHER_OK) {
        usher_handler_fail(result, USHER_OUTCOME_RETRY, "%s", errbuf);
        return NULL;
    }
    return ctx->store;
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

const usher_handler *usher_handler_find(const char *kind)
{
    for (size_t s = 0; s < sizeof(handler_sets) / sizeof(handler_sets[0]); s++) {
        for (const usher_handler *h = handler_sets[s]; h->kind != NULL; h++) {
            if (strcmp(h->kind, kind) == 0)
                return h;
        }
    }
    return NULL;
}
