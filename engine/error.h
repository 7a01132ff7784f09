/*
 * One error code for every fallible engine call, like curl's CURLcode.
 * Functions return it and hand results back through out-parameters; the
 * human detail of the last failure lives in the handle's errstr.
 */
#ifndef USHER_ERROR_H
#define USHER_ERROR_H

typedef enum usher_err {
    USHER_OK = 0,
    USHER_ERR_NOMEM,         /* an allocation failed */
    USHER_ERR_INVALID,       /* an argument is out of range or malformed */
    USHER_ERR_CONFIG,        /* the configuration was refused */
    USHER_ERR_PAYLOAD,       /* the job payload is not a valid JSON object */
    USHER_ERR_TOO_LARGE,     /* a payload or body exceeds its size limit */
    USHER_ERR_UNKNOWN_QUEUE, /* the queue is not declared */
    USHER_ERR_NOT_FOUND,     /* no job (or queue) with that id */
    USHER_ERR_STATE,         /* the job is not in a state that allows this */
    USHER_ERR_CONFLICT,      /* a live job already holds that unique key */
    USHER_ERR_DB,            /* PostgreSQL failed or the connection broke */
    USHER_ERR_IO,            /* a file could not be read or written */
    USHER_ERR_NOT_LEADER,    /* another process holds the maintenance lock */
    USHER_ERR_TIMEOUT,       /* a wait ran out */
    USHER_ERR_CHANGED,       /* a file differs from what was recorded of it (a migration) */
    USHER_ERR_SYSTEM,        /* the system refused a resource: a thread, the random source */
} usher_err;

#include <stddef.h>

/*
 * A result the caller must look at (pgbouncer's _MUSTCHECK): every function
 * that returns usher_err, a resource to free, or a bool that says the work
 * was not done. The compiler warns where one is dropped (-Werror: fails).
 * GCC ignores a (void) cast here: a result dropped on purpose goes through
 * usher_ignore(), with a comment saying why.
 */
#define USHER_MUSTCHECK __attribute__((warn_unused_result))

/* Drops a must-check usher_err on purpose; the call site says why. */
static inline void usher_ignore(usher_err err)
{
    (void)err;
}

/* A static, human-readable description of err; never NULL. */
const char *usher_strerror(usher_err err);

/*
 * Writes a printf-style message into errbuf (if errbuf is not NULL and
 * errlen > 0) and returns err: `return usher_errbuf(buf, len, ERR, ...)`.
 */
usher_err usher_errbuf(char *errbuf, size_t errlen, usher_err err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
