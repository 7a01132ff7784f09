/*
 * A statement ready to send: SQL, and text parameters with the storage
 * behind them. The engine's batch operations build one of these, so the
 * same statement runs on a blocking store or through the event loop's
 * connection (pgloop), and one function reads the result either way.
 */
#ifndef USHER_STMT_H
#define USHER_STMT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

#define USHER_STMT_MAX_PARAMS 16

typedef struct usher_stmt {
    const char *sql;
    int nparams;
    const char *params[USHER_STMT_MAX_PARAMS];
    usher_buf text[USHER_STMT_MAX_PARAMS]; /* storage for params built here */
    bool is_array[USHER_STMT_MAX_PARAMS];
    bool overflow; /* a parameter index past the maximum was used */
} usher_stmt;

/* Starts parameter i as an array literal built in s->text[i]. */
usher_buf *usher_stmt_array(usher_stmt *s, int i);

/* Sets parameter i to a copy of value (NULL: SQL NULL). */
void usher_stmt_text(usher_stmt *s, int i, const char *value);
void usher_stmt_int(usher_stmt *s, int i, int64_t value);

/*
 * Closes the arrays, points params at the built text and checks that
 * every value was formatted (USHER_ERR_INVALID; too many parameters too).
 * Call once, after the last param.
 */
USHER_MUSTCHECK usher_err usher_stmt_finish(usher_stmt *s, int nparams);

void usher_stmt_release(usher_stmt *s);

/* The first column of the first row as a count (0 if there is no row). */
size_t usher_stmt_count(const PGresult *res);

#endif
