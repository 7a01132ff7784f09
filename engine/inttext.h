/*
 * Integers as decimal text: the form every id, count and limit takes as a
 * PostgreSQL text parameter or a Redis argument. One size for the buffer,
 * counted by the compiler instead of by hand.
 */
#ifndef USHER_INTTEXT_H
#define USHER_INTTEXT_H

#include <stdint.h>

/*
 * Room for any 64-bit integer in decimal with its NUL: the longest are
 * INT64_MIN and UINT64_MAX (20 characters each), so "%zu" fits too.
 */
#define USHER_INT_TEXT_MAX 21
_Static_assert(sizeof("-9223372036854775808") == USHER_INT_TEXT_MAX,
               "USHER_INT_TEXT_MAX holds INT64_MIN and its NUL");

/* Writes v in decimal into out and returns out. */
const char *usher_int_text(int64_t v, char out[USHER_INT_TEXT_MAX]);

#endif
