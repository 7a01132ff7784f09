/*
 * Cron expressions: the classic five fields, parsed once into bit sets and
 * matched against minutes of UTC time. Pure: no clock, no time zone, no
 * allocation, so the periodic jobs' scheduling is tested with fixed times.
 *
 *   minute        0-59
 *   hour          0-23
 *   day-of-month  1-31
 *   month         1-12 or jan-dec
 *   day-of-week   0-7 or sun-sat (0 and 7 are both Sunday)
 *
 * Each field is a comma-separated list of items: `*`, a number or name, a
 * range `a-b` (a <= b), or `*` or a range followed by `/n`, which keeps
 * every n-th value from the first (n >= 1): `0-30/10` is 0,10,20,30.
 * Names are three letters, in any case. As in Vixie cron, when both
 * day-of-month and day-of-week are restricted (neither field starts with
 * `*`), a day matches if either does; otherwise both must.
 *
 * Times are UTC: every day has 1,440 minutes, so a slot is never skipped
 * or doubled by a daylight-saving change. `0 3 * * *` is 03:00 UTC.
 */
#ifndef USHER_CRON_H
#define USHER_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define USHER_CRON_TEXT_MAX 128 /* an expression's length, with the NUL */

/* How far back usher_cron_latest looks: 366 days covers every yearly slot. */
#define USHER_CRON_LOOKBACK_S (366 * 86400)

/* A parsed expression. A flat value: copy it freely. */
typedef struct usher_cron {
    uint64_t minutes;               /* bit m: minute m (0..59) */
    uint32_t hours;                 /* bit h: hour h (0..23) */
    uint32_t mdays;                 /* bit d: day of month d (1..31) */
    uint16_t months;                /* bit m: month m (1..12) */
    uint8_t wdays;                  /* bit w: day of week w (0 Sunday .. 6 Saturday) */
    bool mday_any;                  /* the day-of-month field starts with '*' */
    bool wday_any;                  /* the day-of-week field starts with '*' */
    char text[USHER_CRON_TEXT_MAX]; /* the expression as written, for messages */
} usher_cron;

/*
 * Parses expr into *out. On a malformed expression returns
 * USHER_ERR_INVALID, writes the reason into errbuf (e.g. "minute: 61 is
 * out of range (0..59)") and leaves *out zeroed.
 */
USHER_MUSTCHECK usher_err usher_cron_parse(const char *expr, usher_cron *out, char *errbuf,
                                           size_t errlen);

/* True when the minute starting at epoch_minute * 60 (UTC) is a slot of c. */
bool usher_cron_matches(const usher_cron *c, int64_t epoch_minute);

/*
 * The start (epoch seconds, a multiple of 60) of the latest slot of c in
 * (after_s, now_s], or -1 when there is none. Slots more than
 * USHER_CRON_LOOKBACK_S before now_s are not looked at, so a leap-day
 * expression usually returns -1. At most a few thousand steps.
 */
int64_t usher_cron_latest(const usher_cron *c, int64_t now_s, int64_t after_s);

#endif
