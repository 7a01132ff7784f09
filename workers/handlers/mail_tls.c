/*
 * The TLS context and the session watch of mail_tls.h.
 *
 * The context: libesmtp 1.1 (Debian 12) verifies the relay's certificate
 * itself after the handshake (SSL_get_verify_result, then the host name
 * against the certificate's DNS names) and quits unless an event callback
 * accepts a failure, which ours never does. What it trusts is the
 * context's CA store. Left to itself, libesmtp builds one context per
 * process from ~/.config/libesmtp/ca.pem or the system's CAs, caches it in
 * a static and yet frees it with the first session; so every session here
 * gets a context of its own, trusting [smtp] ca_file or the system's CAs.
 * smtp_starttls_set_ctx takes a reference and the session drops it, so we
 * drop ours straight away. The context stops at TLS 1.2: libesmtp 1.1.0
 * reads its non-blocking socket in a way that takes a TLS 1.3 server's
 * post-handshake messages (session tickets, sent next to the reply to the
 * EHLO after STARTTLS) for a dropped connection, now and then; with 1.3 a
 * quarter of the sessions to aiosmtpd failed so in the tests, with 1.2
 * none did.
 *
 * The watch: the event callback records why STARTTLS failed (not offered
 * while required, certificate untrusted or for another name); the monitor
 * callback, which sees the protocol in clear text on both sides of TLS,
 * records a refused AUTH, because libesmtp then carries on without it and
 * the reply that reaches the message status is only the relay's later
 * "530 authentication required". Nothing of the AUTH exchange itself (the
 * credentials) is kept.
 */
#include "mail_tls.h"

#include <dirent.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The TCP port of a connected socket's peer, or -1 (not a TCP socket, not connected). */
static int peer_port(int fd)
{
    struct sockaddr_storage addr;
    socklen_t alen = sizeof(addr);
    int type = 0;
    socklen_t len = sizeof(type);

    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM ||
        getpeername(fd, (struct sockaddr *)&addr, &alen) != 0)
        return -1;
    if (addr.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&addr)->sin_port);
    if (addr.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    return -1;
}

/*
 * libesmtp writes a message in 2 KB pieces and never sets TCP_NODELAY, nor
 * shows its socket: the last piece of a message then waits for the relay's
 * delayed ACK (Nagle), about 40 ms per message with an attachment (21
 * messages/s with a ticket PDF against 309 without the wait, measured).
 * When it reports the connection (SMTP_EV_CONNECT comes right after its
 * connect()), the socket is found among the process's open descriptors,
 * listed from /proc/self/fd (a handful: asking every number up to
 * RLIMIT_NOFILE cost 20,000 system calls a session at a limit of 20,000):
 * the TCP socket connected to the relay's port (libesmtp closes it when the
 * session ends, so no older one is left; sessions in other threads of the
 * process, the bench's senders, get what they want too). Other sockets
 * (libpq's, a webhook's) are left as they are. Without /proc the session
 * still works, only slower.
 */
static void nodelay_to(int relay_port)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *ent;
    int one = 1;

    if (dir == NULL)
        return;
    while ((ent = readdir(dir)) != NULL) {
        char *end;
        long fd = strtol(ent->d_name, &end, 10);

        if (end == ent->d_name || *end != '\0' || fd == dirfd(dir) || fd > INT_MAX)
            continue;
        if (peer_port((int)fd) == relay_port)
            (void)setsockopt((int)fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    closedir(dir);
}

static void on_event(smtp_session_t session, int event, void *arg, ...)
{
    usher_mail_watch *w = arg;
    va_list ap;
    long verify;

    (void)session;
    va_start(ap, arg);
    switch (event) {
    case SMTP_EV_CONNECT:
        nodelay_to(w->relay_port);
        break;
    case SMTP_EV_EXTNA_STARTTLS:
        snprintf(w->tls_error, sizeof w->tls_error,
                 "the relay does not offer STARTTLS, which [smtp] starttls requires");
        break;
    case SMTP_EV_INVALID_PEER_CERTIFICATE:
        verify = va_arg(ap, long);
        snprintf(w->tls_error, sizeof w->tls_error,
                 "the relay's certificate does not verify: %s (trusted CAs: [smtp] ca_file or "
                 "the system's)",
                 X509_verify_cert_error_string(verify));
        break;
    case SMTP_EV_WRONG_PEER_CERTIFICATE: {
        (void)va_arg(ap, int *);
        const char *name = va_arg(ap, const char *);

        snprintf(w->tls_error, sizeof w->tls_error,
                 "the relay's certificate is for '%s', not the host of [smtp] url",
                 name != NULL ? name : "?");
        break;
    }
    case SMTP_EV_NO_PEER_CERTIFICATE:
        snprintf(w->tls_error, sizeof w->tls_error, "the relay sent no certificate");
        break;
    case SMTP_EV_WEAK_CIPHER:
        snprintf(w->tls_error, sizeof w->tls_error, "the relay negotiated a weak cipher");
        break;
    default:
        break;
    }
    va_end(ap);
}

/* Keeps the first line of a refusal seen during an AUTH exchange. */
static void on_traffic(const char *buf, int len, int writing, void *arg)
{
    usher_mail_watch *w = arg;
    size_t n;

    if (writing == SMTP_CB_WRITING) {
        if (len >= 5 && strncmp(buf, "AUTH ", 5) == 0)
            w->in_auth = 1; /* the answers to a challenge keep it set */
        return;
    }
    if (writing != SMTP_CB_READING || !w->in_auth || len < 4)
        return;
    if (buf[0] == '3')
        return; /* a challenge: the exchange goes on */
    w->in_auth = 0;
    if (buf[0] != '4' && buf[0] != '5')
        return;
    w->auth_code = (buf[0] - '0') * 100 + (buf[1] - '0') * 10 + (buf[2] - '0');
    n = strcspn(buf, "\r\n");
    if (n > (size_t)len)
        n = (size_t)len;
    snprintf(w->auth_reply, sizeof w->auth_reply, "%.*s", (int)n, buf);
}

usher_err usher_mail_watch_install(smtp_session_t session, int relay_port, usher_mail_watch *watch)
{
    memset(watch, 0, sizeof *watch);
    watch->relay_port = relay_port;
    if (!smtp_set_eventcb(session, on_event, watch) ||
        !smtp_set_monitorcb(session, on_traffic, watch, 0))
        return USHER_ERR_NOMEM;
    return USHER_OK;
}

usher_err usher_mail_tls_prepare(smtp_session_t session, int relay_port, const char *ca_file,
                                 usher_mail_watch *watch, char *err, size_t errlen)
{
    SSL_CTX *ctx;
    int ok;

    if (usher_mail_watch_install(session, relay_port, watch) != USHER_OK)
        return usher_errbuf(err, errlen, USHER_ERR_NOMEM, "cannot watch the SMTP session");
    if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
        return usher_errbuf(err, errlen, USHER_ERR_NOMEM, "cannot create a TLS context");
    ok = SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) &&
         SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) &&
         (ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                          : SSL_CTX_set_default_verify_paths(ctx));
    if (ok)
        ok = smtp_starttls_set_ctx(session, ctx);
    SSL_CTX_free(ctx); /* the session holds its own reference */
    if (!ok)
        return usher_errbuf(err, errlen, USHER_ERR_CONFIG, "cannot load the CAs of %s",
                            ca_file != NULL ? ca_file : "the system");
    return USHER_OK;
}
