/*
 * CSV writing. Quoting follows RFC 4180; the apostrophe in front of
 * formula-like fields follows OWASP's advice on CSV injection. It changes
 * the field's text, which is why only fields that a spreadsheet would
 * otherwise evaluate get it.
 */
#include "report_csv.h"

#include <string.h>

static int needs_quotes(const char *s)
{
    return strpbrk(s, ",\"\r\n") != NULL;
}

static int looks_like_formula(const char *s)
{
    return s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;
}

static void append_field(usher_buf *b, const char *s)
{
    int quoted = needs_quotes(s);

    if (quoted)
        usher_buf_append(b, "\"", 1);
    if (looks_like_formula(s))
        usher_buf_append(b, "'", 1);
    for (const char *q; (q = strchr(s, '"')) != NULL; s = q + 1) {
        usher_buf_append(b, s, (size_t)(q - s + 1)); /* up to and with the quote */
        usher_buf_append(b, "\"", 1);                /* which is doubled */
    }
    usher_buf_append(b, s, strlen(s));
    if (quoted)
        usher_buf_append(b, "\"", 1);
}

void usher_csv_record(usher_buf *b, const char *const *fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            usher_buf_append(b, ",", 1);
        append_field(b, fields[i] != NULL ? fields[i] : "");
    }
    usher_buf_append(b, "\r\n", 2);
}
