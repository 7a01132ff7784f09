/*
 * Mail templates: NAME.subject, NAME.txt and NAME.html in a directory,
 * with {{var}} placeholders filled from a JSON object. Values are
 * HTML-escaped in the HTML part only. An unknown variable, a value that is
 * neither a string nor a number, or a missing file is an error, so a typo
 * never sends a half-filled mail.
 */
#ifndef USHER_MAIL_TEMPLATE_H
#define USHER_MAIL_TEMPLATE_H

#include <jansson.h>
#include <stddef.h>

#include "buf.h"
#include "error.h"

/* Where the shipped templates live, relative to the source tree. */
#define USHER_MAIL_TEMPLATE_DIR "conf/templates"

/* A template file larger than this is refused. */
#define USHER_MAIL_TEMPLATE_MAX (256 * 1024)

typedef struct usher_mail_rendered {
    char *subject; /* one line, no trailing newline */
    char *text;    /* the text/plain part */
    char *html;    /* the text/html part */
} usher_mail_rendered;

/*
 * Renders template name (letters, digits, '_' and '-' only) from dir with
 * vars. On USHER_OK out holds three strings the caller releases with
 * usher_mail_rendered_release(); on failure out is empty and errbuf says
 * why (USHER_ERR_IO for a missing or unreadable file, USHER_ERR_INVALID
 * for an unknown variable, a bad value or a malformed placeholder).
 */
USHER_MUSTCHECK usher_err usher_mail_template_render(const char *dir, const char *name,
                                                     const json_t *vars, usher_mail_rendered *out,
                                                     char *errbuf, size_t errlen);

/* Frees the strings of r and zeroes it; accepts a zeroed r. */
void usher_mail_rendered_release(usher_mail_rendered *r);

/* Appends s[0..n) to b with & < > " ' escaped for HTML text and attribute values. */
void usher_mail_html_escape(usher_buf *b, const char *s, size_t n);

/*
 * Expands {{var}} in tmpl with vars; html_escape escapes & < > " ' in the
 * values. On USHER_OK *out is a malloc'd string the caller frees.
 */
USHER_MUSTCHECK usher_err usher_mail_template_expand(const char *tmpl, const json_t *vars,
                                                     int html_escape, char **out, char *errbuf,
                                                     size_t errlen);

#endif
