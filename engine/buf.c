/*
 * Array literal quoting follows PostgreSQL's rules for text arrays: each
 * element in double quotes with '"' and '\' backslash-escaped, so any
 * string (JSON included) round-trips; an unquoted NULL is a null element.
 */
#include "buf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

static bool reserve(usher_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    size_t cap = b->cap ? b->cap : 256;
    char *data;

    if (b->failed)
        return false;
    if (need <= b->cap)
        return true;
    while (cap < need)
        cap *= 2;
    data = usher_realloc(b->data, cap);
    b->data = data;
    b->cap = cap;
    return true;
}

void usher_buf_append(usher_buf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void usher_buf_appendf(usher_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void separate(usher_buf *b)
{
    if (b->len > 0 && b->data[b->len - 1] != '{')
        usher_buf_append(b, ",", 1);
}

void usher_buf_array_open(usher_buf *b)
{
    usher_buf_append(b, "{", 1);
}

void usher_buf_array_text(usher_buf *b, const char *s)
{
    separate(b);
    if (s == NULL) {
        usher_buf_append(b, "NULL", 4);
        return;
    }
    if (!reserve(b, 2 * strlen(s) + 2))
        return;
    b->data[b->len++] = '"';
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            b->data[b->len++] = '\\';
        b->data[b->len++] = *s;
    }
    b->data[b->len++] = '"';
    b->data[b->len] = '\0';
}

void usher_buf_array_int(usher_buf *b, int64_t v)
{
    separate(b);
    usher_buf_appendf(b, "%" PRId64, v);
}

void usher_buf_array_close(usher_buf *b)
{
    usher_buf_append(b, "}", 1);
}

bool usher_buf_failed(const usher_buf *b)
{
    return b->failed;
}

const char *usher_buf_str(const usher_buf *b)
{
    return b->data != NULL ? b->data : "";
}

void usher_buf_release(usher_buf *b)
{
    free(b->data);
    *b = (usher_buf){ 0 };
}
