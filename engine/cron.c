/*
 * The cron parser and matcher. Parsing turns each field into a bit set
 * (minute 17 is bit 17), so matching a minute is a few bit tests once the
 * minute is split into date and time. That split is done here, from days
 * since the epoch in the proleptic Gregorian calendar, not with gmtime_r:
 * the module reads no time zone state and handles any int64 time.
 *
 * usher_cron_latest walks backwards from now: a day that does not match is
 * skipped whole, a matching day is searched hour by hour, and within an
 * hour the highest allowed minute is one mask away. A search costs about
 * one step per day of the look-back window, not one per minute.
 */
#include "cron.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MINUTES_PER_DAY 1440
#define NUMBER_CAP      100000 /* digits past this are still read, the value stops growing */

enum field_index { MINUTE, HOUR, MDAY, MONTH, WDAY, NFIELDS };

typedef struct field {
    const char *name;         /* for messages */
    int lo, hi;               /* the values a number may take */
    const char *const *names; /* names of lo, lo + 1, ... (NULL: numbers only) */
} field;

static const char *const month_names[] = { "jan", "feb", "mar", "apr", "may", "jun", "jul",
                                           "aug", "sep", "oct", "nov", "dec", NULL };
static const char *const wday_names[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL };

static const field fields[NFIELDS] = {
    { "minute", 0, 59, NULL },           { "hour", 0, 23, NULL },
    { "day-of-month", 1, 31, NULL },     { "month", 1, 12, month_names },
    { "day-of-week", 0, 7, wday_names },
};

/* ---- parsing ------------------------------------------------------------ */

typedef struct parser {
    const field *f; /* the field being parsed; NULL for the whole expression */
    char *errbuf;
    size_t errlen;
} parser;

/* Writes "FIELD: reason" (or the bare reason) into the error buffer; returns false. */
__attribute__((format(printf, 2, 3))) static bool refuse(const parser *p, const char *fmt, ...)
{
    char reason[192];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (p->errbuf == NULL || p->errlen == 0)
        return false;
    if (p->f != NULL)
        snprintf(p->errbuf, p->errlen, "%s: %s", p->f->name, reason);
    else
        snprintf(p->errbuf, p->errlen, "%s", reason);
    return false;
}

/* Decimal digits at *s (at least one); advances *s. */
static bool read_number(const char **s, int *out)
{
    const char *d = *s;
    int value = 0;

    if (!isdigit((unsigned char)*d))
        return false;
    for (; isdigit((unsigned char)*d); d++) {
        if (value < NUMBER_CAP)
            value = value * 10 + (*d - '0');
    }
    *s = d;
    *out = value;
    return true;
}

/* A three-letter name of the field at *s, in any case; advances *s. */
static bool read_name(const field *f, const char **s, int *out)
{
    const char *t = *s;

    /* Three characters before the one after them: t may end sooner, at the end of its buffer. */
    if (f->names == NULL || strnlen(t, 3) < 3 || isalpha((unsigned char)t[3]))
        return false;
    for (int i = 0; f->names[i] != NULL; i++) {
        if (strncasecmp(t, f->names[i], 3) == 0) {
            *s = t + 3;
            *out = f->lo + i;
            return true;
        }
    }
    return false;
}

/* A number or name within the field's bounds at *s, in item; advances *s. */
static bool read_value(const parser *p, const char *item, const char **s, int *out)
{
    const char *start = *s;
    int len = (int)strcspn(start, "-/");

    if (len == 0)
        return refuse(p, "'%s': a value is missing", item);
    if (!read_number(s, out) && !read_name(p->f, s, out)) {
        if (p->f->names != NULL)
            return refuse(p, "'%.*s' is neither a number nor a name like %s", len, start,
                          p->f->names[0]);
        return refuse(p, "'%.*s' is not a number", len, start);
    }
    if (*out < p->f->lo || *out > p->f->hi)
        return refuse(p, "%.*s is out of range (%d..%d)", (int)(*s - start), start, p->f->lo,
                      p->f->hi);
    return true;
}

/* "/n" at *s: the step, 1 .. the field's span; advances *s. */
static bool read_step(const parser *p, const char *item, const char **s, int *step)
{
    int span = p->f->hi - p->f->lo + 1;

    (*s)++; /* the '/' */
    if (!read_number(s, step))
        return refuse(p, "'%s': the step is not a number", item);
    if (*step < 1 || *step > span)
        return refuse(p, "step %d is out of range (1..%d)", *step, span);
    return true;
}

/* One list item: *, N, A-B, each optionally /STEP (not after a lone N). */
static bool parse_item(const parser *p, const char *item, uint64_t *bits)
{
    const char *s = item;
    int first = p->f->lo, last = p->f->hi, step = 1;
    bool ranged = *s == '*';

    if (*s == '\0')
        return refuse(p, "empty list item");
    if (ranged) {
        s++;
    } else {
        if (!read_value(p, item, &s, &first))
            return false;
        last = first;
        if (*s == '-') {
            s++;
            ranged = true;
            if (!read_value(p, item, &s, &last))
                return false;
            if (last < first)
                return refuse(p, "range %d-%d runs backwards", first, last);
        }
    }
    if (*s == '/' && !ranged)
        return refuse(p, "'%s': a step needs * or a range before it", item);
    if (*s == '/' && !read_step(p, item, &s, &step))
        return false;
    if (*s != '\0')
        return refuse(p, "unexpected '%s' in '%s'", s, item);
    for (int v = first; v <= last; v += step)
        *bits |= (uint64_t)1 << v;
    return true;
}

/* A comma-separated list (text is modified). */
static bool parse_field(const parser *p, char *text, uint64_t *bits)
{
    char *next = text;

    *bits = 0;
    while (next != NULL) {
        if (!parse_item(p, strsep(&next, ","), bits))
            return false;
    }
    return true;
}

/* Splits copy at blanks into at most NFIELDS tokens; returns how many there were. */
static size_t split_fields(char *copy, char *tokens[NFIELDS])
{
    static const char blanks[] = " \t\r\n\f\v";
    char *save = NULL;
    size_t n = 0;

    for (char *t = strtok_r(copy, blanks, &save); t != NULL; t = strtok_r(NULL, blanks, &save)) {
        if (n < NFIELDS)
            tokens[n] = t;
        n++;
    }
    return n;
}

static void assemble(usher_cron *out, const uint64_t bits[NFIELDS], char *const tokens[NFIELDS])
{
    uint64_t wdays = bits[WDAY];

    if (wdays & (1u << 7))
        wdays = (wdays | 1u) & 0x7f; /* 7 is Sunday too */
    out->minutes = bits[MINUTE];
    out->hours = (uint32_t)bits[HOUR];
    out->mdays = (uint32_t)bits[MDAY];
    out->months = (uint16_t)bits[MONTH];
    out->wdays = (uint8_t)wdays;
    out->mday_any = tokens[MDAY][0] == '*';
    out->wday_any = tokens[WDAY][0] == '*';
}

usher_err usher_cron_parse(const char *expr, usher_cron *out, char *errbuf, size_t errlen)
{
    parser p = { .f = NULL, .errbuf = errbuf, .errlen = errlen };
    char copy[USHER_CRON_TEXT_MAX];
    char *tokens[NFIELDS];
    uint64_t bits[NFIELDS];
    size_t n;

    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    if (out == NULL)
        return USHER_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    if (expr == NULL || strlen(expr) >= sizeof(copy)) {
        refuse(&p, "expression missing or longer than %zu characters", sizeof(copy) - 1);
        return USHER_ERR_INVALID;
    }
    memcpy(copy, expr, strlen(expr) + 1);
    n = split_fields(copy, tokens);
    if (n != NFIELDS) {
        refuse(&p, "expected 5 fields (minute hour day-of-month month day-of-week), found %zu", n);
        return USHER_ERR_INVALID;
    }
    for (int i = 0; i < NFIELDS; i++) {
        p.f = &fields[i];
        if (!parse_field(&p, tokens[i], &bits[i]))
            return USHER_ERR_INVALID;
    }
    assemble(out, bits, tokens);
    memcpy(out->text, expr, strlen(expr) + 1);
    return USHER_OK;
}

/* ---- matching ----------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/*
 * Month (1..12) and day of month (1..31) of the day `days` after
 * 1970-01-01, in the proleptic Gregorian calendar. The algorithm counts
 * 400-year eras starting on March 1st, so the leap day ends a year
 * (Howard Hinnant's civil_from_days).
 */
static void civil_from_days(int64_t days, int *month, int *mday)
{
    int64_t z = days + 719468; /* days since 0000-03-01 */
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;                                      /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                    /* March = 0 */

    *mday = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
}

static bool day_matches(const usher_cron *c, int64_t days)
{
    int month, mday;
    int wday = (int)(days + 4 - floor_div(days + 4, 7) * 7); /* 1970-01-01 was a Thursday */
    bool by_mday, by_wday;

    civil_from_days(days, &month, &mday);
    if (!(c->months >> month & 1))
        return false;
    by_mday = c->mdays >> mday & 1;
    by_wday = c->wdays >> wday & 1;
    return c->mday_any || c->wday_any ? by_mday && by_wday : by_mday || by_wday;
}

bool usher_cron_matches(const usher_cron *c, int64_t epoch_minute)
{
    int64_t days = floor_div(epoch_minute, MINUTES_PER_DAY);
    int64_t of_day = epoch_minute - days * MINUTES_PER_DAY;

    return day_matches(c, days) && (c->hours >> (of_day / 60) & 1) &&
           (c->minutes >> (of_day % 60) & 1);
}

/* The highest set bit of a non-zero x. */
static int top_bit(uint64_t x)
{
    return 63 - __builtin_clzll(x);
}

/*
 * The latest slot at or before minute m (since the epoch) on m's day, into
 * *slot; false when that day has none.
 */
static bool latest_on_day(const usher_cron *c, int64_t m, int64_t *slot)
{
    int64_t day_start = floor_div(m, MINUTES_PER_DAY) * MINUTES_PER_DAY;
    int hour = (int)((m - day_start) / 60), minute = (int)((m - day_start) % 60);

    if (!day_matches(c, day_start / MINUTES_PER_DAY))
        return false;
    for (;;) {
        uint32_t hours = c->hours & ((2u << hour) - 1); /* the allowed hours <= hour */
        uint64_t minutes;

        if (hours == 0)
            return false;
        if (top_bit(hours) < hour)
            minute = 59; /* an earlier hour: search it from its last minute */
        hour = top_bit(hours);
        minutes = c->minutes & (((uint64_t)2 << minute) - 1);
        if (minutes != 0) {
            *slot = day_start + hour * 60 + top_bit(minutes);
            return true;
        }
        if (hour == 0)
            return false;
        hour--;
        minute = 59;
    }
}

int64_t usher_cron_latest(const usher_cron *c, int64_t now_s, int64_t after_s)
{
    int64_t m = floor_div(now_s, 60);
    int64_t first = floor_div(after_s, 60) + 1; /* the first minute starting after after_s */
    int64_t oldest = m - USHER_CRON_LOOKBACK_S / 60;
    int64_t slot;

    if (first < oldest)
        first = oldest;
    while (m >= first) {
        if (latest_on_day(c, m, &slot))
            return slot >= first ? slot * 60 : -1;
        m = floor_div(m, MINUTES_PER_DAY) * MINUTES_PER_DAY - 1; /* the previous day's end */
    }
    return -1;
}
