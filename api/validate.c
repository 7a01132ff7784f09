#include "validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

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

static json_t *field_of(api_req *r, const char *field, bool required, bool *done)
{
    json_t *v = json_object_get(r->body, field);

    *done = false;
    if (v == NULL || json_is_null(v)) {
        if (required)
            api_reply_invalid(r, field, "%s is required", field);
        *done = !required; /* absent and optional: nothing to read, no error */
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
    if (strchr(text, 'T') == NULL || usher_cli_parse_time(text, &us) != 0) {
        api_reply_invalid(r, field, "%s must be an RFC 3339 time, e.g. 2026-11-27T18:00:00Z",
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
