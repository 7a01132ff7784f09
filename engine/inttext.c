/*
 * Integers as decimal text (inttext.h). snprintf cannot truncate here: the
 * buffer holds INT64_MIN, the longest int64_t, and inttext.h asserts so.
 */
#include "inttext.h"

#include <inttypes.h>
#include <stdio.h>

const char *usher_int_text(int64_t v, char out[USHER_INT_TEXT_MAX])
{
    snprintf(out, USHER_INT_TEXT_MAX, "%" PRId64, v);
    return out;
}
