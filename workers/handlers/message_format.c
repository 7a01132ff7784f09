/*
 * A message body to HTML (message_format.h): the body is cut into lines,
 * the lines into blocks at blank lines, each block becomes a list or a
 * paragraph, and each line's text is written character by character,
 * escaped, with the few inline forms (bold, italic, links) recognised on
 * the way. Nothing is ever copied through unescaped.
 */
#include "message_format.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "mail_template.h"

#define NO_BOLD   1u
#define NO_ITALIC 2u

/* The length of the URL at s (n bytes left), or 0 when none starts there. */
static size_t url_at(const char *s, size_t n)
{
    size_t scheme = n >= 8 && strncmp(s, "https://", 8) == 0  ? 8
                    : n >= 7 && strncmp(s, "http://", 7) == 0 ? 7
                                                              : 0;
    size_t len = scheme;

    if (scheme == 0)
        return 0;
    while (len < n && s[len] != ' ' && s[len] != '\t' && s[len] != '<' && s[len] != '>' &&
           s[len] != '"' && s[len] != '\'')
        len++;
    while (len > scheme && strchr(".,;:!?)", s[len - 1]) != NULL)
        len--;
    return len > scheme ? len : 0;
}

static bool space(char c)
{
    return c == ' ' || c == '\t';
}

/*
 * Where the marker (1 or 2 stars) that closes one opened at s[0] is, or 0.
 * As in Markdown, an opening marker is followed by text and a closing one
 * follows text, so "2 * 3 * 4" stays arithmetic.
 */
static size_t closer(const char *s, size_t n, size_t width)
{
    if (n <= width || space(s[width]))
        return 0;
    for (size_t j = width + 1; j + width <= n; j++) {
        if (s[j] != '*' || space(s[j - 1]))
            continue;
        if (width == 2 && s[j + 1] == '*')
            return j;
        if (width == 1 && (j + 1 >= n || s[j + 1] != '*'))
            return j;
        if (width == 1)
            j++; /* a "**" inside an italic is text */
    }
    return 0;
}

/* One line's text (or part of it) with its inline forms; flags say which are open. */
static void inline_text(usher_buf *b, const char *s, size_t n, unsigned flags)
{
    size_t i = 0;

    while (i < n) {
        size_t len = url_at(s + i, n - i), end;

        if (len > 0) {
            usher_buf_append(b, "<a href=\"", 9);
            usher_mail_html_escape(b, s + i, len);
            usher_buf_append(b, "\">", 2);
            usher_mail_html_escape(b, s + i, len);
            usher_buf_append(b, "</a>", 4);
            i += len;
        } else if (!(flags & NO_BOLD) && n - i > 4 && strncmp(s + i, "**", 2) == 0 &&
                   (end = closer(s + i, n - i, 2)) > 0) {
            usher_buf_append(b, "<strong>", 8);
            inline_text(b, s + i + 2, end - 2, flags | NO_BOLD);
            usher_buf_append(b, "</strong>", 9);
            i += end + 2;
        } else if (!(flags & NO_ITALIC) && n - i > 2 && s[i] == '*' && s[i + 1] != '*' &&
                   (end = closer(s + i, n - i, 1)) > 0) {
            usher_buf_append(b, "<em>", 4);
            inline_text(b, s + i + 1, end - 1, flags | NO_ITALIC);
            usher_buf_append(b, "</em>", 5);
            i += end + 1;
        } else {
            usher_mail_html_escape(b, s + i, 1);
            i++;
        }
    }
}

typedef struct line {
    const char *s;
    size_t n;
} line;

static bool blank(line l)
{
    for (size_t i = 0; i < l.n; i++)
        if (l.s[i] != ' ' && l.s[i] != '\t')
            return false;
    return true;
}

static bool bullet(line l)
{
    return l.n >= 2 && l.s[0] == '-' && l.s[1] == ' ';
}

/* The line at *p (without its \n or \r\n); *p moves past it. */
static line next_line(const char **p)
{
    const char *nl = strchr(*p, '\n');
    line l = { *p, nl != NULL ? (size_t)(nl - *p) : strlen(*p) };

    *p = nl != NULL ? nl + 1 : *p + l.n;
    if (l.n > 0 && l.s[l.n - 1] == '\r')
        l.n--;
    return l;
}

/* The block of lines[0..n): a list when every line is a bullet, else a paragraph. */
static void block(usher_buf *b, const line *lines, size_t n)
{
    bool list = true;

    for (size_t i = 0; i < n; i++)
        list = list && bullet(lines[i]);
    usher_buf_append(b, list ? "<ul>" : "<p>", list ? 4 : 3);
    for (size_t i = 0; i < n; i++) {
        if (list) {
            usher_buf_append(b, "<li>", 4);
            inline_text(b, lines[i].s + 2, lines[i].n - 2, 0);
            usher_buf_append(b, "</li>", 5);
        } else {
            if (i > 0)
                usher_buf_append(b, "<br>\n", 5);
            inline_text(b, lines[i].s, lines[i].n, 0);
        }
    }
    usher_buf_append(b, list ? "</ul>\n" : "</p>\n", list ? 6 : 5);
}

char *usher_message_html(const char *body)
{
    usher_buf b = { 0 };
    const char *p = body;
    size_t n = 0, max = 1;
    line *lines;

    for (const char *c = body; *c != '\0'; c++)
        max += *c == '\n';
    lines = usher_calloc(max, sizeof(*lines));
    while (*p != '\0') {
        line l = next_line(&p);

        if (!blank(l)) {
            lines[n++] = l;
            continue;
        }
        if (n > 0)
            block(&b, lines, n);
        n = 0;
    }
    if (n > 0)
        block(&b, lines, n);
    free(lines);
    usher_buf_append(&b, "", 0);
    return b.data;
}
