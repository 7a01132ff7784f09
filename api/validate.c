#include "validate.h"
#include "reply.h"
#include "alloc.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

void api_reply_invalid(api_req *r, const char *field, const char *fmt, ...)
{
    char message[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    api_reply_json(r, 422,
                   json_pack("{s:{s:s,s:s,s:s}}", "error", "code", "invalid", "field", field,
                             "message", message));
}

bool api_parse_whole(const char *text, int64_t min, int64_t max, int64_t *out)
{
    int64_t v = 0;
    size_t len = text != NULL ? strlen(text) : 0;

    if (len == 0 || len > 18)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        v = v * 10 + (text[i] - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

size_t api_text_chars(const char *s, size_t len)
{
    size_t chars = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c == 0x7f)
            return (size_t)-1;
        /* C1 controls, U+0080..U+009F, are C2 80..C2 9F in UTF-8. */
        if (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] < 0xa0)
            return (size_t)-1;
        chars += (c & 0xc0) != 0x80;
    }
    return chars;
}

bool api_get_text(api_req *r, const char *field, bool required, size_t max, const char **out)
{
    json_t *v = json_object_get(r->body, field);
    size_t chars, len;
    char *plain;

    if (v == NULL && !required)
        return true;
    if (!json_is_string(v)) {
        api_reply_invalid(r, field, "%s must be a string", field);
        return false;
    }
    len = json_string_length(v);
    plain = usher_malloc(len + 1);
    memcpy(plain, json_string_value(v), len + 1);
    for (size_t i = 0; i < len; i++) {
        if (plain[i] == '\n' || plain[i] == '\r' || plain[i] == '\t')
            plain[i] = ' ';
    }
    chars = api_text_chars(plain, len); /* an embedded NUL counts as a control */
    free(plain);
    if (chars == (size_t)-1 || chars > max) {
        api_reply_invalid(r, field,
                          "%s must be at most %zu characters, without control characters"
                          " other than line breaks and tabs",
                          field, max);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

/* A calendar date's days since 1970-01-01 (proleptic Gregorian; H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* n digits at s into *out; false if any is not a digit. */
static bool digits(const char *s, int n, int *out)
{
    *out = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *out = *out * 10 + (s[i] - '0');
    }
    return true;
}

/* YYYY-MM-DD at s (10 characters), a day that exists, year 1 to 9999, into days since 1970. */
static bool parse_date(const char *s, int64_t *days)
{
    static const int month_days[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int y, m, d;

    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &m) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || y < 1 || m < 1 || m > 12 || d < 1 || d > month_days[m - 1])
        return false;
    if (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return false;
    *days = days_from_civil(y, m, d);
    return true;
}

/* "Z" or "+HH:MM"/"-HH:MM" (HH to 23, MM to 59) as seconds east of UTC. */
static bool parse_offset(const char *s, int64_t *seconds)
{
    int hh, mm;

    if (strcmp(s, "Z") == 0) {
        *seconds = 0;
        return true;
    }
    if ((s[0] != '+' && s[0] != '-') || strlen(s) != 6 || !digits(s + 1, 2, &hh) || s[3] != ':' ||
        !digits(s + 4, 2, &mm) || hh > 23 || mm > 59)
        return false;
    *seconds = (s[0] == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
    return true;
}

bool api_parse_time(const char *text, bool date_alone, int64_t *us)
{
    /* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z, in microseconds since 1970. */
    const int64_t first = -62135596800LL * 1000000, last = 253402300800LL * 1000000 - 1;
    int64_t days, offset, frac = 0, scale = 100000;
    int hh, mm, ss;
    const char *p = text + 19;

    if (strlen(text) < 10 || !parse_date(text, &days))
        return false;
    if (date_alone && text[10] == '\0') {
        *us = days * 86400 * 1000000;
        return true;
    }
    if (strlen(text) < 20 || text[10] != 'T' || !digits(text + 11, 2, &hh) || text[13] != ':' ||
        !digits(text + 14, 2, &mm) || text[16] != ':' || !digits(text + 17, 2, &ss) || hh > 23 ||
        mm > 59 || ss > 59)
        return false;
    if (*p == '.') {
        int n = 0;

        while (p[1 + n] >= '0' && p[1 + n] <= '9' && n < 10) {
            frac += scale * (p[1 + n] - '0');
            scale /= 10;
            n++;
        }
        if (n < 1 || n > 9)
            return false;
        p += 1 + n;
    }
    if (!parse_offset(p, &offset))
        return false;
    *us = ((days * 86400 + hh * 3600 + mm * 60 + ss) - offset) * 1000000 + frac;
    return *us >= first && *us <= last;
}

bool api_ends_before_start(const char *starts, const char *ends)
{
    int64_t s, e;

    return api_parse_time(starts, false, &s) && api_parse_time(ends, false, &e) && e < s;
}

static json_t *field_of(api_req *r, const char *field, bool required, bool *done)
{
    json_t *v = json_object_get(r->body, field);

    *done = false;
    if (v == NULL) {
        if (required)
            api_reply_invalid(r, field, "%s is required", field);
        *done = !required; /* absent and optional: nothing to read, no error */
        return NULL;
    }
    if (json_is_null(v)) {
        api_reply_invalid(r, field, "%s must not be null (leave it out instead)", field);
        return NULL;
    }
    return v;
}

bool api_get_string(api_req *r, const char *field, bool required, size_t min, size_t max,
                    const char **out)
{
    bool absent_ok;
    json_t *v = field_of(r, field, required, &absent_ok);
    size_t chars;

    if (v == NULL)
        return absent_ok;
    if (!json_is_string(v)) {
        api_reply_invalid(r, field, "%s must be a string", field);
        return false;
    }
    chars = api_text_chars(json_string_value(v), json_string_length(v));
    if (chars == (size_t)-1 || strlen(json_string_value(v)) != json_string_length(v)) {
        api_reply_invalid(r, field, "%s must not hold control characters", field);
        return false;
    }
    if (chars < min || chars > max) {
        api_reply_invalid(r, field, "%s must be %zu to %zu characters long", field, min, max);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

bool api_get_int(api_req *r, const char *field, bool required, int64_t min, int64_t max,
                 int64_t *out)
{
    bool absent_ok;
    json_t *v = field_of(r, field, required, &absent_ok);

    if (v == NULL)
        return absent_ok;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        api_reply_invalid(r, field, "%s must be an integer from %lld to %lld", field,
                          (long long)min, (long long)max);
        return false;
    }
    *out = (int64_t)json_integer_value(v);
    return true;
}

bool api_get_owner(api_req *r, int64_t *organizer)
{
    bool admin = r->auth.role == USHER_ROLE_ADMIN;
    int64_t named = 0;

    if (!api_get_int(r, "organizer_id", admin, 1, INT64_MAX, &named))
        return false;
    *organizer = admin ? named : r->auth.organizer_id;
    return true;
}

bool api_get_enum(api_req *r, const char *field, bool required, const char *const *words,
                  const char **out)
{
    bool absent_ok;
    json_t *v = field_of(r, field, required, &absent_ok);

    if (v == NULL)
        return absent_ok;
    for (size_t i = 0; json_is_string(v) && words[i] != NULL; i++) {
        if (strcmp(json_string_value(v), words[i]) == 0) {
            *out = words[i];
            return true;
        }
    }
    api_reply_invalid(r, field, "%s must be one of the allowed words (e.g. \"%s\")", field,
                      words[0]);
    return false;
}

bool api_get_time(api_req *r, const char *field, bool required, const char **out)
{
    const char *text = NULL;
    int64_t us;

    if (!api_get_string(r, field, required, 1, 40, &text))
        return false;
    if (text == NULL)
        return true;
    if (!api_parse_time(text, false, &us)) {
        api_reply_invalid(r, field,
                          "%s must be an RFC 3339 time in years 1 to 9999, e.g."
                          " 2026-11-27T18:00:00Z or 2026-11-27T19:00:00.250+01:00",
                          field);
        return false;
    }
    *out = text;
    return true;
}

bool api_get_strings(api_req *r, const char *field, bool required, size_t max_items,
                     size_t max_chars, json_t **out)
{
    bool absent_ok;
    json_t *v = field_of(r, field, required, &absent_ok), *item;
    size_t i;

    if (v == NULL)
        return absent_ok;
    if (!json_is_array(v) || json_array_size(v) > max_items) {
        api_reply_invalid(r, field, "%s must be an array of at most %zu strings", field, max_items);
        return false;
    }
    json_array_foreach(v, i, item)
    {
        size_t chars = json_is_string(item)
                           ? api_text_chars(json_string_value(item), json_string_length(item))
                           : (size_t)-1;

        if (chars == (size_t)-1 || chars < 1 || chars > max_chars ||
            strlen(json_string_value(item)) != json_string_length(item)) {
            api_reply_invalid(r, field, "%s[%zu] must be a string of 1 to %zu characters", field, i,
                              max_chars);
            return false;
        }
    }
    *out = v;
    return true;
}
