/*
 * Building an email as bytes: RFC 5322 headers and a MIME body
 * (multipart/mixed holding a multipart/alternative text + HTML part and
 * the attachments), CRLF line endings, ready for SMTP DATA. Output is a
 * pure function of the input: the date and the Message-ID come from the
 * caller and the MIME boundaries are derived from the Message-ID, so a
 * retried job produces the very same bytes.
 */
#ifndef USHER_MAIL_MESSAGE_H
#define USHER_MAIL_MESSAGE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "error.h"

typedef struct usher_mail_attachment {
    const char *filename;     /* e.g. "ticket-ABC123.pdf"; no CR/LF */
    const char *content_type; /* e.g. "application/pdf" */
    const unsigned char *data;
    size_t len;
} usher_mail_attachment;

/* Zero-initialisable; every string is borrowed and UTF-8. */
typedef struct usher_mail_message {
    const char *from_name; /* display name, may be NULL */
    const char *from_addr; /* addr-spec: local@domain */
    const char *to_name;   /* may be NULL */
    const char *to_addr;
    const char *subject;
    const char *message_id; /* "<id@domain>", see usher_mail_message_id() */
    time_t date;            /* the Date: header, written in UTC */
    const char *text;       /* the text/plain part (LF or CRLF line ends) */
    const char *html;       /* the text/html part; NULL for text only */
    const usher_mail_attachment *attachments;
    size_t attachment_count;
} usher_mail_message;

/*
 * Writes "<usher-job-JOB_ID@DOMAIN>" into buf. USHER_ERR_INVALID when the
 * domain is empty or holds characters not allowed in a Message-ID, or when
 * buf is too small.
 */
USHER_MUSTCHECK usher_err usher_mail_message_id(char *buf, size_t len, int64_t job_id,
                                                const char *domain);

/*
 * Builds the message. On USHER_OK *out is a malloc'd NUL-terminated
 * buffer of *out_len bytes that the caller frees. USHER_ERR_INVALID (with
 * errbuf saying which field) when a header value holds CR or LF or an
 * address, Message-ID, content type or filename is malformed.
 */
USHER_MUSTCHECK usher_err usher_mail_message_build(const usher_mail_message *m, char **out,
                                                   size_t *out_len, char *errbuf, size_t errlen);

#endif
