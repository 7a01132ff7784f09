/*
 * Sending messages with libesmtp (1.1), one or several per session.
 *
 * The URL is parsed into host:port and optional credentials, a session
 * with the messages (one recipient each) is set up, the protocol timeouts are
 * shortened (libesmtp defaults to RFC 5321's minutes), and the session
 * runs to completion in smtp_start_session(). Each message is fed from
 * memory through a message callback. Afterwards the statuses libesmtp
 * recorded for each message are read in protocol order (MAIL FROM, RCPT
 * TO, DATA): the first that is not 2xx decides, 5xx is permanent and 4xx temporary. No
 * reply at all (refused connection, timeout, dropped link) is temporary.
 * Two reasons come first, from the session watch (mail_tls.h): a failed
 * STARTTLS (temporary, with why) and a refused AUTH (its own reply: 535
 * is permanent), since libesmtp goes on after either and the statuses
 * would only show a later, vaguer refusal.
 *
 * SIGPIPE is blocked in this thread during the session, so a server that
 * closes its socket mid-transfer makes a write fail instead of killing the
 * process; a SIGPIPE left pending is consumed before unblocking.
 */
#include "mail_send.h"

#include "mail_tls.h"

#include <auth-client.h>
#include <ctype.h>
#include <libesmtp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_MS 30000L
#define CHUNK              (64 * 1024)

typedef struct parsed_url {
    char hostport[300];
    int port; /* the number after hostport's colon */
    char user[256];
    char password[256];
    int has_auth;
} parsed_url;

typedef struct source {
    const char *data;
    size_t len;
    size_t pos;
} source;

static void set_result(usher_mail_result *res, usher_mail_status status, int code, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));

static void set_result(usher_mail_result *res, usher_mail_status status, int code, const char *fmt,
                       ...)
{
    va_list ap;

    res->status = status;
    res->smtp_code = code;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof res->error, fmt, ap);
    va_end(ap);
}

const char *usher_mail_status_name(usher_mail_status status)
{
    switch (status) {
    case USHER_MAIL_DELIVERED:
        return "delivered";
    case USHER_MAIL_TEMPORARY:
        return "temporary";
    case USHER_MAIL_PERMANENT:
        return "permanent";
    }
    return "unknown";
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Copies s[0..n) to out with %XX decoded; 0 when malformed or too long. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (c == '%') {
            if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
                return 0;
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        if (c == '\0' || o + 1 >= cap)
            return 0;
        out[o++] = c;
    }
    out[o] = '\0';
    return 1;
}

static int parse_userinfo(const char *s, size_t n, parsed_url *u)
{
    const char *colon = memchr(s, ':', n);
    size_t ulen = colon != NULL ? (size_t)(colon - s) : n;

    u->has_auth = 1;
    if (!pct_decode(s, ulen, u->user, sizeof u->user) || u->user[0] == '\0')
        return 0;
    if (colon == NULL)
        return 1;
    return pct_decode(colon + 1, n - ulen - 1, u->password, sizeof u->password);
}

/* "587" -> 587; -1 unless it is all digits, 1 to 65535 (no service names). */
static int port_number(const char *text)
{
    char *end;
    long port;

    if (!isdigit((unsigned char)text[0]))
        return -1;
    port = strtol(text, &end, 10);
    return *end == '\0' && port >= 1 && port <= 65535 ? (int)port : -1;
}

static USHER_MUSTCHECK usher_err parse_url(const char *url, parsed_url *u, char *err, size_t errlen)
{
    const char *rest, *at, *end;
    size_t hlen;

    memset(u, 0, sizeof *u);
    if (url == NULL || strncmp(url, "smtp://", 7) != 0) {
        snprintf(err, errlen, "%s",
                 url != NULL && strncmp(url, "smtps://", 8) == 0
                     ? "smtps:// (implicit TLS) is not supported by libesmtp 1.1; use "
                       "smtp://host:587 with STARTTLS required"
                     : "SMTP URL must start with smtp://");
        return USHER_ERR_CONFIG;
    }
    rest = url + 7;
    end = rest + strcspn(rest, "/?#");
    at = memchr(rest, '@', (size_t)(end - rest));
    if (at != NULL) {
        if (!parse_userinfo(rest, (size_t)(at - rest), u)) {
            snprintf(err, errlen, "SMTP URL has malformed credentials");
            return USHER_ERR_CONFIG;
        }
        rest = at + 1;
    }
    hlen = (size_t)(end - rest);
    if (hlen == 0 || hlen + 4 >= sizeof u->hostport || memchr(rest, '[', hlen) != NULL ||
        rest[0] == ':' || strpbrk(url, " \r\n") != NULL) {
        snprintf(err, errlen, "SMTP URL has no usable host (IPv6 literals are not supported)");
        return USHER_ERR_CONFIG;
    }
    memcpy(u->hostport, rest, hlen);
    u->hostport[hlen] = '\0';
    if (strchr(u->hostport, ':') == NULL)
        strcat(u->hostport, ":25");
    if ((u->port = port_number(strchr(u->hostport, ':') + 1)) < 0) {
        snprintf(err, errlen, "SMTP URL's port is not a number from 1 to 65535");
        return USHER_ERR_CONFIG;
    }
    return USHER_OK;
}

/* opts->username and password replace the URL's credentials. */
static USHER_MUSTCHECK usher_err use_credentials(const usher_smtp_opts *opts, parsed_url *u,
                                                 char *err, size_t errlen)
{
    const char *password = opts->password != NULL ? opts->password : "";

    if (opts->username[0] == '\0' || strlen(opts->username) >= sizeof u->user ||
        strlen(password) >= sizeof u->password)
        return usher_errbuf(err, errlen, USHER_ERR_CONFIG,
                            "SMTP username empty, or username or password too long");
    snprintf(u->user, sizeof u->user, "%s", opts->username);
    snprintf(u->password, sizeof u->password, "%s", password);
    u->has_auth = 1;
    return USHER_OK;
}

/* libesmtp's message callback: NULL len means rewind; returns the next chunk. */
static const char *read_message(void **ctx, int *len, void *arg)
{
    source *src = arg;
    size_t n;
    const char *p;

    (void)ctx; /* left NULL: libesmtp frees what a callback allocates there */
    if (len == NULL) {
        src->pos = 0;
        return NULL;
    }
    n = src->len - src->pos;
    if (n > CHUNK)
        n = CHUNK;
    p = src->data + src->pos;
    src->pos += n;
    *len = (int)n;
    return n > 0 ? p : NULL;
}

static int auth_interact(auth_client_request_t request, char **result, int fields, void *arg)
{
    parsed_url *u = arg;

    for (int i = 0; i < fields; i++) {
        if (request[i].flags & AUTH_USER)
            result[i] = u->user;
        else if (request[i].flags & AUTH_PASS)
            result[i] = u->password;
        else
            return 0;
    }
    return 1;
}

static int set_timeouts(smtp_session_t session, long ms)
{
    static const int which[] = { Timeout_GREETING, Timeout_ENVELOPE, Timeout_DATA, Timeout_TRANSFER,
                                 Timeout_DATA2 };

    if (ms <= 0)
        ms = DEFAULT_TIMEOUT_MS;
    for (size_t i = 0; i < sizeof which / sizeof which[0]; i++) {
        if (smtp_set_timeout(session, which[i] | Timeout_OVERRIDE_RFC2822_MINIMUM, ms) == 0)
            return 0;
    }
    return 1;
}

/* Copies a server reply without its trailing CRLF. */
static void reply_text(const smtp_status_t *st, char *out, size_t cap)
{
    size_t n;

    snprintf(out, cap, "%s", st->text != NULL ? st->text : "");
    n = strlen(out);
    while (n > 0 && isspace((unsigned char)out[n - 1]))
        out[--n] = '\0';
}

/* The first non-2xx status in protocol order decides; see the file comment. */
static void classify(smtp_message_t message, smtp_recipient_t rcpt, const usher_mail_watch *w,
                     usher_mail_result *res)
{
    const smtp_status_t *steps[3];
    static const char *const names[3] = { "MAIL FROM", "RCPT TO", "DATA" };
    char text[400];
    int err;

    steps[0] = smtp_reverse_path_status(message);
    steps[1] = smtp_recipient_status(rcpt);
    steps[2] = smtp_message_transfer_status(message);
    /* Delivered: the recipient and the message both taken (a server may take
     * DATA after refusing the only recipient; nobody gets the message then). */
    if (steps[1] != NULL && steps[1]->code >= 200 && steps[1]->code < 300 && steps[2] != NULL &&
        steps[2]->code >= 200 && steps[2]->code < 300) {
        set_result(res, USHER_MAIL_DELIVERED, steps[2]->code, "%s", "");
        return;
    }
    if (w->tls_error[0] != '\0') {
        set_result(res, USHER_MAIL_TEMPORARY, 0, "SMTP STARTTLS failed: %s", w->tls_error);
        return;
    }
    if (w->auth_code != 0) {
        set_result(res, w->auth_code >= 500 ? USHER_MAIL_PERMANENT : USHER_MAIL_TEMPORARY,
                   w->auth_code, "SMTP AUTH refused: %s (check [smtp] username and password)",
                   w->auth_reply);
        return;
    }
    for (int i = 0; i < 3; i++) {
        if (steps[i] == NULL || steps[i]->code < 400)
            continue;
        reply_text(steps[i], text, sizeof text);
        set_result(res, steps[i]->code >= 500 ? USHER_MAIL_PERMANENT : USHER_MAIL_TEMPORARY,
                   steps[i]->code, "SMTP %d %s (%s)", steps[i]->code, text, names[i]);
        return;
    }
    err = smtp_errno();
    set_result(res, USHER_MAIL_TEMPORARY, 0, "SMTP session ended without a reply: %s",
               smtp_strerror(err, text, sizeof text) != NULL ? text : "unknown error");
}

static USHER_MUSTCHECK usher_err configure(smtp_session_t session, const usher_smtp_opts *opts,
                                           parsed_url *url, auth_context_t *auth,
                                           usher_mail_watch *watch, usher_mail_result *res)
{
    usher_err err;

    if (!smtp_set_server(session, url->hostport) || !set_timeouts(session, opts->timeout_ms))
        return USHER_ERR_NOMEM;
    if (opts->helo_name != NULL && !smtp_set_hostname(session, opts->helo_name))
        return USHER_ERR_NOMEM;
    if (opts->starttls == USHER_SMTP_TLS_OFF)
        err = usher_mail_watch_install(session, url->port, watch);
    else
        err = usher_mail_tls_prepare(session, url->port, opts->ca_file, watch, res->error,
                                     sizeof res->error);
    if (err != USHER_OK)
        return err;
    if (opts->starttls != USHER_SMTP_TLS_OFF &&
        !smtp_starttls_enable(session, opts->starttls == USHER_SMTP_TLS_REQUIRED
                                           ? Starttls_REQUIRED
                                           : Starttls_ENABLED))
        return USHER_ERR_CONFIG;
    if (!url->has_auth)
        return USHER_OK;
    if ((*auth = auth_create_context()) == NULL)
        return USHER_ERR_NOMEM;
    if (!auth_set_mechanism_flags(*auth, AUTH_PLUGIN_PLAIN, 0) ||
        !auth_set_interact_cb(*auth, auth_interact, url) || !smtp_auth_set_context(session, *auth))
        return USHER_ERR_CONFIG;
    return USHER_OK;
}

/* Why a session ended early: the watch's STARTTLS reason, else libesmtp's error. */
static const char *failure_reason(const usher_mail_watch *w, char *buf, size_t len)
{
    if (w->tls_error[0] != '\0') {
        snprintf(buf, len, "STARTTLS: %s", w->tls_error);
        return buf;
    }
    return smtp_strerror(smtp_errno(), buf, len) != NULL ? buf : "?";
}

/* Runs the session with SIGPIPE blocked; consumes a SIGPIPE it raised. */
static int run_session(smtp_session_t session)
{
    sigset_t pipe_set, old_set, pending;
    struct timespec zero = { 0, 0 };
    int already_pending, ok;

    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    already_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    ok = smtp_start_session(session);
    sigpending(&pending);
    if (!already_pending && sigismember(&pending, SIGPIPE))
        sigtimedwait(&pipe_set, NULL, &zero);
    pthread_sigmask(SIG_SETMASK, &old_set, NULL);
    return ok;
}

static bool envelope_ok(const usher_mail_envelope *m)
{
    return m->from_addr != NULL && m->to_addr != NULL && m->msg != NULL && m->len <= INT32_MAX &&
           strpbrk(m->from_addr, "\r\n<> ") == NULL && strpbrk(m->to_addr, "\r\n<> ") == NULL;
}

/* Every result of the session that is not decided yet (error empty) gets status and why. */
static void set_undecided(usher_mail_result *results, size_t n, usher_mail_status status,
                          const char *why)
{
    for (size_t i = 0; i < n; i++) {
        if (results[i].error[0] == '\0' && results[i].status == USHER_MAIL_DELIVERED)
            set_result(&results[i], status, 0, "%s", why);
    }
}

typedef struct queued {
    source src;
    smtp_message_t message;
    smtp_recipient_t rcpt;
} queued;

static USHER_MUSTCHECK usher_err send_with(smtp_session_t session, const usher_smtp_opts *opts,
                                           parsed_url *url, const usher_mail_envelope *mails,
                                           size_t n, queued *q, usher_mail_result *results)
{
    auth_context_t auth = NULL;
    usher_mail_watch watch = { 0 };
    usher_mail_result setup = { 0 };
    char text[512];
    usher_err err;

    err = configure(session, opts, url, &auth, &watch, &setup);
    for (size_t i = 0; err == USHER_OK && i < n; i++) {
        if (results[i].status == USHER_MAIL_PERMANENT)
            continue; /* refused envelope */
        q[i].src = (source){ mails[i].msg, mails[i].len, 0 };
        if ((q[i].message = smtp_add_message(session)) == NULL ||
            !smtp_set_reverse_path(q[i].message, mails[i].from_addr) ||
            !smtp_set_messagecb(q[i].message, read_message, &q[i].src) ||
            (q[i].rcpt = smtp_add_recipient(q[i].message, mails[i].to_addr)) == NULL)
            err = USHER_ERR_NOMEM;
    }
    if (err != USHER_OK) {
        usher_mail_status status =
            err == USHER_ERR_NOMEM ? USHER_MAIL_TEMPORARY : USHER_MAIL_PERMANENT;

        if (setup.error[0] == '\0')
            set_result(&setup, status, 0, "SMTP setup failed: %s",
                       smtp_strerror(smtp_errno(), text, sizeof text) != NULL ? text : "?");
        set_undecided(results, n, status, setup.error);
    } else if (!run_session(session)) {
        set_result(&setup, USHER_MAIL_TEMPORARY, 0, "SMTP session to %s failed: %s", url->hostport,
                   failure_reason(&watch, text, sizeof text));
        set_undecided(results, n, USHER_MAIL_TEMPORARY, setup.error);
    } else {
        for (size_t i = 0; i < n; i++) {
            if (q[i].message != NULL)
                classify(q[i].message, q[i].rcpt, &watch, &results[i]);
        }
    }
    if (auth != NULL)
        auth_destroy_context(auth);
    return err;
}

usher_err usher_mail_send_many(const usher_smtp_opts *opts, const usher_mail_envelope *mails,
                               size_t n, usher_mail_result *results)
{
    parsed_url url;
    queued q[USHER_MAIL_SESSION_MAX] = { 0 };
    smtp_session_t session;
    size_t valid = 0;
    usher_err err;

    if (n == 0 || n > USHER_MAIL_SESSION_MAX || mails == NULL || results == NULL)
        return USHER_ERR_INVALID;
    memset(results, 0, n * sizeof *results);
    for (size_t i = 0; i < n; i++) {
        if (envelope_ok(&mails[i]))
            valid++;
        else
            set_result(&results[i], USHER_MAIL_PERMANENT, 0,
                       "invalid arguments to usher_mail_send");
    }
    if (valid == 0)
        return USHER_ERR_INVALID;
    if (opts == NULL) {
        set_undecided(results, n, USHER_MAIL_PERMANENT, "no SMTP options");
        return USHER_ERR_INVALID;
    }
    char why[sizeof results[0].error] = "";

    if ((err = parse_url(opts->url, &url, why, sizeof why)) == USHER_OK && opts->username != NULL)
        err = use_credentials(opts, &url, why, sizeof why);
    if (err != USHER_OK) {
        set_undecided(results, n, USHER_MAIL_PERMANENT, why);
        explicit_bzero(url.password, sizeof url.password);
        return err;
    }
    if (url.has_auth)
        auth_client_init();
    if ((session = smtp_create_session()) == NULL) {
        set_undecided(results, n, USHER_MAIL_TEMPORARY, "out of memory creating the SMTP session");
        err = USHER_ERR_NOMEM;
    } else {
        err = send_with(session, opts, &url, mails, n, q, results);
        smtp_destroy_session(session);
    }
    if (url.has_auth)
        auth_client_exit();
    explicit_bzero(url.password, sizeof url.password);
    return err;
}

usher_err usher_mail_send(const usher_smtp_opts *opts, const char *from_addr, const char *to_addr,
                          const char *msg, size_t len, usher_mail_result *res)
{
    usher_mail_envelope mail = { from_addr, to_addr, msg, len };

    return usher_mail_send_many(opts, &mail, 1, res);
}
