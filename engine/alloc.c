/*
 * The allocation wrappers (alloc.h): the C library's allocators, and one
 * place that gives up when they fail. usher_oom writes with write(2), not
 * stdio, so that it allocates nothing itself.
 */
#include "alloc.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void usher_oom(size_t size)
{
    char msg[80];
    int n = snprintf(msg, sizeof(msg), "usher: out of memory allocating %zu bytes\n", size);

    if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) < 0)
        abort(); /* nothing else to tell: stderr is gone too */
    abort();
}

void *usher_malloc(size_t size)
{
    void *p = malloc(size > 0 ? size : 1); /* never NULL for 0 either */

    if (p == NULL)
        usher_oom(size);
    return p;
}

void *usher_calloc(size_t n, size_t size)
{
    void *p = calloc(n > 0 ? n : 1, size > 0 ? size : 1);

    if (p == NULL)
        usher_oom(size != 0 && n > SIZE_MAX / size ? SIZE_MAX : n * size);
    return p;
}

void *usher_realloc(void *p, size_t size)
{
    void *grown = realloc(p, size > 0 ? size : 1); /* realloc(p, 0) frees p */

    if (grown == NULL)
        usher_oom(size);
    return grown;
}

char *usher_strdup(const char *s)
{
    char *copy = strdup(s);

    if (copy == NULL)
        usher_oom(strlen(s) + 1);
    return copy;
}

char *usher_strndup(const char *s, size_t n)
{
    char *copy = strndup(s, n);

    if (copy == NULL)
        usher_oom(strnlen(s, n) + 1);
    return copy;
}

bool usher_alloc_keep_heap(void)
{
    return mallopt(M_MMAP_THRESHOLD, 1 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 16 << 20) == 1;
}
