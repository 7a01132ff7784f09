/*
 * A growable text buffer, used to build PostgreSQL array literals for the
 * batch statements (one statement, many jobs, every value still a
 * parameter). A failed format is sticky: check usher_buf_failed() once at
 * the end instead of after every append (running out of memory aborts,
 * alloc.h).
 */
#ifndef USHER_BUF_H
#define USHER_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct usher_buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
} usher_buf;

void usher_buf_append(usher_buf *b, const char *s, size_t n);
void usher_buf_appendf(usher_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Array literals: "{" elem "," elem "}". NULL is SQL NULL; text is quoted. */
void usher_buf_array_open(usher_buf *b);
void usher_buf_array_text(usher_buf *b, const char *s);
void usher_buf_array_int(usher_buf *b, int64_t v);
void usher_buf_array_close(usher_buf *b);

bool usher_buf_failed(const usher_buf *b);
/* The NUL-terminated text ("" when empty). */
const char *usher_buf_str(const usher_buf *b);
void usher_buf_release(usher_buf *b);

#endif
