/*
 * Job payloads are JSON objects with a size limit. Checked before anything
 * reaches the database, so a bad payload is refused with a clear reason.
 */
#ifndef USHER_PAYLOAD_H
#define USHER_PAYLOAD_H

#include <stddef.h>

#include "error.h"

/*
 * USHER_OK when json is a JSON object of at most max_bytes bytes; else
 * USHER_ERR_TOO_LARGE or USHER_ERR_PAYLOAD with the reason (and for a parse
 * error, the line and column) in errbuf.
 */
USHER_MUSTCHECK usher_err usher_payload_check(const char *json, size_t max_bytes, char *errbuf,
                                              size_t errlen);

#endif
