/*
 * Text for every usher_err, indexed by the code itself so a new code that
 * is forgotten here shows up as "unknown error" rather than a crash.
 */
#include "error.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

static const char *const messages[] = {
    [USHER_OK] = "ok",
    [USHER_ERR_NOMEM] = "out of memory",
    [USHER_ERR_INVALID] = "invalid argument",
    [USHER_ERR_CONFIG] = "invalid configuration",
    [USHER_ERR_PAYLOAD] = "invalid payload",
    [USHER_ERR_TOO_LARGE] = "too large",
    [USHER_ERR_UNKNOWN_QUEUE] = "unknown queue",
    [USHER_ERR_NOT_FOUND] = "not found",
    [USHER_ERR_STATE] = "job is not in a state that allows this",
    [USHER_ERR_CONFLICT] = "unique key conflict",
    [USHER_ERR_DB] = "database error",
    [USHER_ERR_IO] = "i/o error",
    [USHER_ERR_NOT_LEADER] = "not the maintenance leader",
    [USHER_ERR_TIMEOUT] = "timed out",
    [USHER_ERR_CHANGED] = "changed since it was recorded",
    [USHER_ERR_SYSTEM] = "the system refused a resource",
};

const char *usher_strerror(usher_err err)
{
    size_t i = (size_t)err;

    if (i >= sizeof(messages) / sizeof(messages[0]) || messages[i] == NULL)
        return "unknown error";
    return messages[i];
}

usher_err usher_errbuf(char *errbuf, size_t errlen, usher_err err, const char *fmt, ...)
{
    va_list ap;

    if (errbuf != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return err;
}
