/*
 * Parameters are kept as text: every value the engine sends is a
 * parameter, never spliced into SQL, and arrays travel as array literals
 * that PostgreSQL casts ($1::int8[]).
 */
#include "stmt.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* The storage of parameter i, or a scratch buffer (and overflow set) when i is out of range. */
static usher_buf *slot(usher_stmt *s, int i)
{
    static _Thread_local usher_buf scratch;

    if (i >= 0 && i < USHER_STMT_MAX_PARAMS)
        return &s->text[i];
    s->overflow = true;
    usher_buf_release(&scratch);
    return &scratch;
}

usher_buf *usher_stmt_array(usher_stmt *s, int i)
{
    if (i < 0 || i >= USHER_STMT_MAX_PARAMS)
        return slot(s, i);
    s->is_array[i] = true;
    usher_buf_array_open(&s->text[i]);
    return &s->text[i];
}

void usher_stmt_text(usher_stmt *s, int i, const char *value)
{
    if (value != NULL)
        usher_buf_append(slot(s, i), value, strlen(value));
}

void usher_stmt_int(usher_stmt *s, int i, int64_t value)
{
    usher_buf_appendf(slot(s, i), "%" PRId64, value);
}

usher_err usher_stmt_finish(usher_stmt *s, int nparams)
{
    usher_err err = USHER_OK;

    if (s->overflow || nparams > USHER_STMT_MAX_PARAMS)
        return USHER_ERR_INVALID;
    s->nparams = nparams;
    for (int i = 0; i < nparams; i++) {
        usher_buf *b = &s->text[i];

        if (s->is_array[i])
            usher_buf_array_close(b);
        if (usher_buf_failed(b))
            err = USHER_ERR_INVALID; /* a value that could not be formatted */
        s->params[i] = b->data;      /* NULL (never appended to) means SQL NULL */
    }
    return err;
}

void usher_stmt_release(usher_stmt *s)
{
    for (int i = 0; i < USHER_STMT_MAX_PARAMS; i++)
        usher_buf_release(&s->text[i]);
    *s = (usher_stmt){ 0 };
}

size_t usher_stmt_count(const PGresult *res)
{
    if (PQntuples(res) < 1 || PQnfields(res) < 1)
        return 0;
    return (size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10);
}
