/*
 * One pass over the header: the unit, the first number (absent for a
 * suffix range), the dash, the last number. Numbers that would overflow
 * 64 bits make the header malformed, and a malformed header is ignored
 * (the whole file is sent), as RFC 9110 lets a server do.
 */
#include "range.h"

#include <stdbool.h>
#include <string.h>

/* Reads digits at *s into *v (no sign, no overflow); false when there are none. */
static bool read_number(const char **s, uint64_t *v)
{
    const char *p = *s;

    *v = 0;
    while (*p >= '0' && *p <= '9') {
        if (*v > (UINT64_MAX - 9) / 10)
            return false;
        *v = *v * 10 + (uint64_t)(*p++ - '0');
    }
    if (p == *s)
        return false;
    *s = p;
    return true;
}

api_range api_range_parse(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
    uint64_t a = 0, b = 0;
    bool suffix, has_end;

    if (h == NULL || strncmp(h, "bytes=", 6) != 0 || strchr(h, ',') != NULL)
        return API_RANGE_NONE;
    h += 6;
    suffix = *h == '-';
    if (!suffix && !read_number(&h, &a))
        return API_RANGE_NONE;
    if (*h++ != '-')
        return API_RANGE_NONE;
    has_end = read_number(&h, &b);
    if (*h != '\0' || (suffix && !has_end) || (has_end && !suffix && b < a))
        return API_RANGE_NONE; /* malformed, or "A-B" with B before A: ignored */
    if (suffix) {              /* "-N": the last N bytes */
        if (b == 0 || size == 0)
            return API_RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return API_RANGE_ONE;
    }
    if (a >= size)
        return API_RANGE_UNSATISFIABLE;
    *first = a;
    *last = !has_end || b >= size ? size - 1 : b;
    return API_RANGE_ONE;
}
