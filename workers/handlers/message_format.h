/*
 * The formatting an organizer's message body may use, rendered to HTML for
 * the email's HTML part (the text part and the inbox keep the body as
 * written). The body is plain text; the only formatting is:
 *   - a blank line separates paragraphs; a single line break stays one (<br>);
 *   - a paragraph whose every line starts with "- " is a bullet list;
 *   - **bold** and *italic*, opened and closed on the same line;
 *   - http:// and https:// URLs become links (trailing . , ; : ! ? ) stay text).
 * Everything else is text: every character HTML would read (& < > " ') is
 * escaped, so no markup, attribute or script of the sender's passes through.
 */
#ifndef USHER_MESSAGE_FORMAT_H
#define USHER_MESSAGE_FORMAT_H

/* The HTML of body (NUL-terminated UTF-8); the caller frees it. Never NULL. */
char *usher_message_html(const char *body);

#endif
