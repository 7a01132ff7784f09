/*
 * The handler registry: one table of every job kind this binary can run.
 * Each handlers/ file exports its entries; the table lists them. Adding a
 * kind is one line here and one file there.
 */
#include "handler.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "handlers/test_handlers.h"

static const usher_handler *const handler_sets[] = {
    usher_test_handlers,
};

void usher_handler_fail(usher_handler_result *result, usher_outcome outcome, const char *fmt, ...)
{
    va_list ap;

    result->outcome = outcome;
    va_start(ap, fmt);
    vsnprintf(result->error, sizeof(result->error), fmt, ap);
    va_end(ap);
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
