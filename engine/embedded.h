/*
 * Files built into a binary by cmake/embed_files.cmake: a table of
 * {name, bytes, size} ended by a NULL name. data is NUL-terminated (one
 * byte past size), so text files can be used as strings.
 */
#ifndef USHER_EMBEDDED_H
#define USHER_EMBEDDED_H

#include <stddef.h>

typedef struct usher_embedded_file {
    const char *name;
    const unsigned char *data;
    size_t size;
} usher_embedded_file;

/* The entry of table named name, or NULL. */
const usher_embedded_file *usher_embedded_find(const usher_embedded_file *table, const char *name);

#endif
