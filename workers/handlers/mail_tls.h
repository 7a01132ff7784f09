/*
 * What one SMTP session of mail_send.c needs besides libesmtp's defaults:
 * its own OpenSSL context, so that the CAs trusted for STARTTLS come from
 * the configuration (or the system) rather than libesmtp's per-user files
 * (~/.config/libesmtp/ca.pem), and a watch over the session that keeps the
 * reasons libesmtp only reports through callbacks: a STARTTLS that did not
 * happen or a certificate that did not verify, and a refused AUTH.
 */
#ifndef USHER_MAIL_TLS_H
#define USHER_MAIL_TLS_H

/* libesmtp.h declares what it offers by what came before it: keep this order. */
// clang-format off
#include <stddef.h>
#include <auth-client.h>
#include <openssl/ssl.h>
#include <libesmtp.h>
// clang-format on

#include "error.h"

typedef struct usher_mail_watch {
    char tls_error[256];  /* why STARTTLS failed; "" when it did not */
    int auth_code;        /* the last AUTH reply that refused us (4xx/5xx); 0 = none */
    char auth_reply[256]; /* its text, without CRLF */
    int in_auth;          /* an AUTH exchange is under way */
    int relay_port;       /* the relay's TCP port: its socket gets TCP_NODELAY at connect */
} usher_mail_watch;

/*
 * Gives session a fresh TLS client context (TLS 1.2 or later) that trusts
 * ca_file, or the system's CAs when ca_file is NULL, and installs the watch
 * (which must outlive the session). USHER_ERR_CONFIG with the reason in
 * err when the CA file cannot be read; USHER_ERR_NOMEM.
 */
USHER_MUSTCHECK usher_err usher_mail_tls_prepare(smtp_session_t session, int relay_port,
                                                 const char *ca_file, usher_mail_watch *watch,
                                                 char *err, size_t errlen);

/*
 * Installs only the watch (a session without STARTTLS). relay_port is the
 * port of the session's server: when libesmtp connects, the socket to it
 * gets TCP_NODELAY (libesmtp's own writes would wait for delayed ACKs).
 */
USHER_MUSTCHECK usher_err usher_mail_watch_install(smtp_session_t session, int relay_port,
                                                   usher_mail_watch *watch);

#endif
