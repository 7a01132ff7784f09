/*
 * Reading fields of a JSON body. Each getter checks type and range; on a
 * bad or missing required field it answers 422 with
 * {"error": {"code": "invalid", "field": NAME, "message": ...}} and returns
 * false (the request is then over). An absent optional field leaves *out;
 * null is refused like any other wrong type (a route where null means
 * something reads it before the getter).
 */
#ifndef USHER_API_VALIDATE_H
#define USHER_API_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "request.h"

void api_reply_invalid(api_req *r, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A string of min..max characters (code points), without control characters. */
USHER_MUSTCHECK bool api_get_string(api_req *r, const char *field, bool required, size_t min,
                                    size_t max, const char **out);

/*
 * Free text of at most max characters that may span lines: line breaks
 * (LF, CR) and tabs are the only control characters allowed.
 */
USHER_MUSTCHECK bool api_get_text(api_req *r, const char *field, bool required, size_t max,
                                  const char **out);

/* An integer in min..max. */
USHER_MUSTCHECK bool api_get_int(api_req *r, const char *field, bool required, int64_t min,
                                 int64_t max, int64_t *out);

/*
 * The organizer a new event or webhook belongs to: an admin names it in
 * organizer_id (required); for anyone else it is the token's, and an
 * organizer_id sent is checked like any integer field, then ignored.
 */
USHER_MUSTCHECK bool api_get_owner(api_req *r, int64_t *organizer);

/* One of words (NULL-terminated). */
USHER_MUSTCHECK bool api_get_enum(api_req *r, const char *field, bool required,
                                  const char *const *words, const char **out);

/*
 * An RFC 3339 timestamp: YYYY-MM-DDTHH:MM:SS, an optional fraction of 1 to 9
 * digits, then Z or +HH:MM/-HH:MM ("2026-11-27T18:00:00Z", "...+01:00"), a
 * day that exists, between 0001-01-01 and 9999-12-31 in UTC.
 */
USHER_MUSTCHECK bool api_get_time(api_req *r, const char *field, bool required, const char **out);

/* An array of at most max_items strings of 1..max_chars characters; *out is borrowed. */
USHER_MUSTCHECK bool api_get_strings(api_req *r, const char *field, bool required, size_t max_items,
                                     size_t max_chars, json_t **out);

/*
 * Parses an api_get_time timestamp into microseconds since 1970 (UTC); with
 * date_alone, YYYY-MM-DD by itself too (midnight UTC). False if malformed.
 */
USHER_MUSTCHECK bool api_parse_time(const char *text, bool date_alone, int64_t *us);

/* Does ends come before starts (two api_get_time timestamps)? */
bool api_ends_before_start(const char *starts, const char *ends);

/* Reads a whole number in min..max written with digits only (a query parameter). */
USHER_MUSTCHECK bool api_parse_whole(const char *text, int64_t min, int64_t max, int64_t *out);

/* The number of code points of valid UTF-8 s, or (size_t)-1 if it holds a control character. */
size_t api_text_chars(const char *s, size_t len);

#endif
