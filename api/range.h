/*
 * The Range header of a GET (RFC 9110 14.1.2), as /v1/content/{id} serves
 * it: a single range "bytes=A-B", "bytes=A-" or "bytes=-N" over a file of
 * known size. Pure, so the parser is fuzzed on its own (tests/fuzz/).
 */
#ifndef USHER_API_RANGE_H
#define USHER_API_RANGE_H

#include <stdint.h>

typedef enum api_range {
    API_RANGE_NONE,          /* absent, malformed, not bytes, or several ranges: send it all */
    API_RANGE_ONE,           /* send bytes first..last (206) */
    API_RANGE_UNSATISFIABLE, /* starts past the end, or asks for none (416) */
} api_range;

/*
 * Reads header h (NULL: absent) against a file of size bytes. With
 * API_RANGE_ONE, first <= last < size are written; otherwise nothing is.
 */
api_range api_range_parse(const char *h, uint64_t size, uint64_t *first, uint64_t *last);

#endif
