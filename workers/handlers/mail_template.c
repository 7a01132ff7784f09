/*
 * Mail templates. A template is three files in one directory: NAME.subject
 * (one line), NAME.txt and NAME.html. Rendering reads each file whole,
 * then copies it to a buffer while replacing every {{ name }} with the
 * value of that key of the variables object: strings as they are, numbers
 * printed, anything else refused. The HTML part gets the value escaped
 * (& < > " '), except a variable whose name ends in "_html", which holds
 * HTML that the handler made (email.send refuses such names in a payload);
 * the subject and text part get every value verbatim. Expansion is a
 * single pass, so a value that itself contains "{{x}}" is never expanded.
 */
#include "mail_template.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define VAR_NAME_MAX 64

static int valid_name(const char *name)
{
    if (name == NULL || *name == '\0' || strlen(name) > 128)
        return 0;
    for (const char *p = name; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return 0;
    }
    return 1;
}

static int var_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

void usher_mail_html_escape(usher_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&':
            usher_buf_append(b, "&amp;", 5);
            break;
        case '<':
            usher_buf_append(b, "&lt;", 4);
            break;
        case '>':
            usher_buf_append(b, "&gt;", 4);
            break;
        case '"':
            usher_buf_append(b, "&quot;", 6);
            break;
        case '\'':
            usher_buf_append(b, "&#39;", 5);
            break;
        default:
            usher_buf_append(b, s + i, 1);
            break;
        }
    }
}

/* A variable whose value is HTML already: its name ends in "_html". */
static bool html_made(const char *name)
{
    size_t n = strlen(name);

    return n >= 5 && strcmp(name + n - 5, "_html") == 0;
}

/* Appends the value of vars[name]; USHER_ERR_INVALID if absent or of a bad type. */
static USHER_MUSTCHECK usher_err append_value(usher_buf *b, const json_t *vars, const char *name,
                                              int html, char *errbuf, size_t errlen)
{
    const json_t *v = json_object_get(vars, name);
    char num[64];
    const char *s;
    size_t n;

    if (v == NULL)
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "unknown template variable '%s'",
                            name);
    if (json_is_string(v)) {
        s = json_string_value(v);
        n = json_string_length(v);
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        s = num;
        n = strlen(num);
    } else if (json_is_real(v)) {
        snprintf(num, sizeof num, "%.15g", json_real_value(v));
        s = num;
        n = strlen(num);
    } else {
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID,
                            "template variable '%s' is neither a string nor a number", name);
    }
    if (memchr(s, '\0', n) != NULL)
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "template variable '%s' holds a NUL",
                            name);
    if (html && !html_made(name))
        usher_mail_html_escape(b, s, n);
    else
        usher_buf_append(b, s, n);
    return USHER_OK;
}

/* Parses "{{ name }}" at p (which starts with "{{"); sets *end past it. */
static USHER_MUSTCHECK usher_err parse_placeholder(const char *p, char name[VAR_NAME_MAX + 1],
                                                   const char **end, char *errbuf, size_t errlen)
{
    const char *q = p + 2;
    size_t n = 0;

    while (*q == ' ')
        q++;
    while (var_char(*q)) {
        if (n == VAR_NAME_MAX)
            return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID,
                                "template variable name too long");
        name[n++] = *q++;
    }
    name[n] = '\0';
    while (*q == ' ')
        q++;
    if (n == 0 || q[0] != '}' || q[1] != '}')
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "malformed placeholder near '%.20s'",
                            p);
    *end = q + 2;
    return USHER_OK;
}

usher_err usher_mail_template_expand(const char *tmpl, const json_t *vars, int html_escape,
                                     char **out, char *errbuf, size_t errlen)
{
    usher_buf b = { 0 };
    char name[VAR_NAME_MAX + 1];
    const char *p = tmpl, *open, *end = NULL;
    usher_err err = USHER_OK;

    *out = NULL;
    if (!json_is_object(vars))
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID,
                            "template variables must be an object");
    while ((open = strstr(p, "{{")) != NULL) {
        usher_buf_append(&b, p, (size_t)(open - p));
        err = parse_placeholder(open, name, &end, errbuf, errlen);
        if (err == USHER_OK)
            err = append_value(&b, vars, name, html_escape, errbuf, errlen);
        if (err != USHER_OK)
            goto out;
        p = end;
    }
    usher_buf_append(&b, p, strlen(p));
    if (usher_buf_failed(&b)) {
        err = usher_errbuf(errbuf, errlen, USHER_ERR_NOMEM, "out of memory expanding a template");
        goto out;
    }
    if (b.data == NULL)
        usher_buf_append(&b, "", 0);
    if (usher_buf_failed(&b)) {
        err = usher_errbuf(errbuf, errlen, USHER_ERR_NOMEM, "out of memory expanding a template");
        goto out;
    }
    *out = b.data;
    return USHER_OK;
out:
    usher_buf_release(&b);
    return err;
}

/* Reads dir/name.ext whole into a malloc'd NUL-terminated string. */
static USHER_MUSTCHECK usher_err read_part(const char *dir, const char *name, const char *ext,
                                           char **out, char *errbuf, size_t errlen)
{
    char path[4096];
    usher_buf b = { 0 };
    char chunk[8192];
    size_t n;
    FILE *f;
    usher_err err = USHER_OK;

    *out = NULL;
    if (snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext) >= (int)sizeof path)
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "template path too long");
    if ((f = fopen(path, "rb")) == NULL)
        return usher_errbuf(errbuf, errlen, USHER_ERR_IO, "template %s: %s", path, strerror(errno));
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > USHER_MAIL_TEMPLATE_MAX) {
            err = usher_errbuf(errbuf, errlen, USHER_ERR_TOO_LARGE, "template %s too large", path);
            goto out;
        }
        usher_buf_append(&b, chunk, n);
    }
    if (ferror(f)) {
        err = usher_errbuf(errbuf, errlen, USHER_ERR_IO, "template %s: read error", path);
        goto out;
    }
    if (b.data == NULL)
        usher_buf_append(&b, "", 0);
    if (usher_buf_failed(&b)) {
        err = usher_errbuf(errbuf, errlen, USHER_ERR_NOMEM, "out of memory reading %s", path);
        goto out;
    }
    if (strlen(b.data) != b.len) {
        err = usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "template %s contains a NUL byte",
                           path);
        goto out;
    }
    *out = b.data;
    b.data = NULL;
out:
    usher_buf_release(&b);
    fclose(f);
    return err;
}

static USHER_MUSTCHECK usher_err render_part(const char *dir, const char *name, const char *ext,
                                             const json_t *vars, int html, char **out, char *errbuf,
                                             size_t errlen)
{
    char *tmpl = NULL;
    usher_err err = read_part(dir, name, ext, &tmpl, errbuf, errlen);

    if (err != USHER_OK)
        return err;
    err = usher_mail_template_expand(tmpl, vars, html, out, errbuf, errlen);
    free(tmpl);
    return err;
}

/* The subject is one line: trailing newlines go, an inner one is an error. */
static USHER_MUSTCHECK usher_err trim_subject(char *subject, char *errbuf, size_t errlen)
{
    size_t n = strlen(subject);

    while (n > 0 && (subject[n - 1] == '\n' || subject[n - 1] == '\r'))
        subject[--n] = '\0';
    if (strpbrk(subject, "\r\n") != NULL)
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "the rendered subject spans lines");
    return USHER_OK;
}

usher_err usher_mail_template_render(const char *dir, const char *name, const json_t *vars,
                                     usher_mail_rendered *out, char *errbuf, size_t errlen)
{
    usher_err err;

    memset(out, 0, sizeof *out);
    if (dir == NULL || !valid_name(name))
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "invalid template name '%s'",
                            name != NULL ? name : "(null)");
    err = render_part(dir, name, "subject", vars, 0, &out->subject, errbuf, errlen);
    if (err == USHER_OK)
        err = trim_subject(out->subject, errbuf, errlen);
    if (err == USHER_OK)
        err = render_part(dir, name, "txt", vars, 0, &out->text, errbuf, errlen);
    if (err == USHER_OK)
        err = render_part(dir, name, "html", vars, 1, &out->html, errbuf, errlen);
    if (err != USHER_OK)
        usher_mail_rendered_release(out);
    return err;
}

void usher_mail_rendered_release(usher_mail_rendered *r)
{
    if (r == NULL)
        return;
    free(r->subject);
    free(r->text);
    free(r->html);
    memset(r, 0, sizeof *r);
}
