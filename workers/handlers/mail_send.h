/*
 * Sending one message over SMTP with libesmtp, and saying what became of
 * it in the terms of the job queue: delivered, temporary (retry later) or
 * permanent (the server refused it for good). Only this file and
 * mail_tls.c include libesmtp.
 */
#ifndef USHER_MAIL_SEND_H
#define USHER_MAIL_SEND_H

#include <stddef.h>

#include "error.h"

typedef enum usher_smtp_tls {
    USHER_SMTP_TLS_OFF = 0,    /* never STARTTLS */
    USHER_SMTP_TLS_IF_OFFERED, /* STARTTLS when the server offers it */
    USHER_SMTP_TLS_REQUIRED,   /* fail (temporary) unless STARTTLS succeeds */
} usher_smtp_tls;

/* Zero-initialisable. */
typedef struct usher_smtp_opts {
    /* smtp://[user[:password]@]host[:port] (port 25 by default); user and
     * password may be %-encoded. smtps:// is refused: libesmtp 1.1 has no
     * implicit TLS, use port 587 with starttls = USHER_SMTP_TLS_REQUIRED. */
    const char *url;
    usher_smtp_tls starttls; /* with TLS the relay's certificate must verify and name the host */
    long timeout_ms;         /* each protocol step; 0 = 30000, at least 1000 */
    const char *helo_name;   /* the EHLO name; NULL = this host's name */
    const char *username;    /* AUTH PLAIN/LOGIN as this user; NULL = the URL's user, if any */
    const char *password;    /* with username */
    const char *ca_file;     /* PEM CAs trusted for STARTTLS; NULL = the system's */
} usher_smtp_opts;

typedef enum usher_mail_status {
    USHER_MAIL_DELIVERED = 0, /* the server accepted the message (2xx after DATA) */
    USHER_MAIL_TEMPORARY,     /* connection failure, timeout, failed STARTTLS or 4xx: retry */
    USHER_MAIL_PERMANENT,     /* 5xx for AUTH, sender, recipient or message: do not retry */
} usher_mail_status;

typedef struct usher_mail_result {
    usher_mail_status status;
    int smtp_code;   /* the deciding SMTP reply code; 0 when there was none */
    char error[512]; /* "" when delivered; else the SMTP reply or the failure */
} usher_mail_result;

/*
 * Sends msg (len bytes, CRLF line endings, as built by
 * usher_mail_message_build) from from_addr to to_addr (envelope
 * addresses). Returns USHER_OK when an attempt was made, whatever its
 * outcome: read res. USHER_ERR_CONFIG for a URL it cannot use and
 * USHER_ERR_INVALID for bad arguments (res PERMANENT); USHER_ERR_NOMEM
 * (res TEMPORARY). Blocks for at most a few timeouts; SIGPIPE is blocked
 * while the session runs.
 */
USHER_MUSTCHECK usher_err usher_mail_send(const usher_smtp_opts *opts, const char *from_addr,
                                          const char *to_addr, const char *msg, size_t len,
                                          usher_mail_result *res);

/* One message of a session: envelope addresses and the built message. */
typedef struct usher_mail_envelope {
    const char *from_addr;
    const char *to_addr;
    const char *msg; /* CRLF line endings, as built by usher_mail_message_build */
    size_t len;
} usher_mail_envelope;

#define USHER_MAIL_SESSION_MAX 64 /* messages one session carries at most */

/*
 * Sends mails[0..n) (1 <= n <= USHER_MAIL_SESSION_MAX) over one SMTP
 * session, in order, saving a connection, EHLO, STARTTLS and AUTH per
 * message; results[i] says what became of mails[i], as usher_mail_send's
 * res. An envelope with bad arguments is PERMANENT alone and not sent.
 * When the session breaks midway, the messages the server had accepted
 * are DELIVERED and the rest TEMPORARY. Returns USHER_OK when an attempt
 * was made; USHER_ERR_CONFIG (all PERMANENT) or USHER_ERR_NOMEM (all
 * TEMPORARY) otherwise, USHER_ERR_INVALID for n out of range.
 */
USHER_MUSTCHECK usher_err usher_mail_send_many(const usher_smtp_opts *opts,
                                               const usher_mail_envelope *mails, size_t n,
                                               usher_mail_result *results);

/* "delivered", "temporary" or "permanent". */
const char *usher_mail_status_name(usher_mail_status status);

#endif
