/*
 * usher_mail_send with STARTTLS and AUTH against a real server
 * (tests/support/smtp_test_server.py: aiosmtpd requiring STARTTLS, with a
 * self-signed certificate made for this run, and AUTH PLAIN/LOGIN for one
 * user), and with STARTTLS required against the stack's plain sink. The
 * client trusts the certificate through opts.ca_file, verification on.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mail_message.h"
#include "mail_send.h"
#include "smtpserver.h"
#include "testproc.h"

static smtpserver server;

static void stop_server(void)
{
    smtpserver_stop(&server);
}

TestSuite(mail_tls, .fini = stop_server);

static void start_server_offering(const char *only_auth)
{
    char err[256] = "";

    cr_assert(smtpserver_start(&server, true, only_auth, err, sizeof err), "%s", err);
}

static void start_tls_server(void)
{
    start_server_offering(NULL);
}

/* A small message with a Message-ID unique to this run; the id goes to id. */
static char *build(char *id, size_t idlen, size_t *len)
{
    usher_mail_message m = { .from_name = "Usher",
                             .from_addr = "tickets@usher.test",
                             .to_addr = "attendee@example.com",
                             .subject = "TLS test",
                             .text = "hello over TLS\n",
                             .date = 1764000000 };
    struct timespec ts;
    char err[256] = "", *msg = NULL;

    cr_assert_eq(clock_gettime(CLOCK_REALTIME, &ts), 0);
    cr_assert_eq(usher_mail_message_id(id, idlen, (int64_t)getpid() * 1000000 + ts.tv_nsec / 1000,
                                       "tls-test.usher.test"),
                 USHER_OK);
    m.message_id = id;
    cr_assert_eq(usher_mail_message_build(&m, &msg, len, err, sizeof err), USHER_OK, "%s", err);
    return msg;
}

static usher_mail_result send_with(const usher_smtp_opts *opts, char *id, size_t idlen)
{
    usher_mail_result res;
    size_t len = 0;
    char *msg = build(id, idlen, &len);

    cr_assert_eq(
        usher_mail_send(opts, "tickets@usher.test", "attendee@example.com", msg, len, &res),
        USHER_OK, "%s", res.error);
    free(msg);
    return res;
}

static usher_smtp_opts tls_opts(const char *password)
{
    return (usher_smtp_opts){ .url = server.url,
                              .starttls = USHER_SMTP_TLS_REQUIRED,
                              .timeout_ms = 10000,
                              .username = SMTPSERVER_USER,
                              .password = password,
                              .ca_file = server.cert };
}

Test(mail_tls, right_credentials_deliver_over_starttls, .timeout = 120)
{
    usher_smtp_opts opts;
    usher_mail_result res;
    char id[128], *stored;

    start_tls_server();
    opts = tls_opts(SMTPSERVER_PASSWORD);
    res = send_with(&opts, id, sizeof id);
    cr_assert_eq(res.status, USHER_MAIL_DELIVERED, "%s", res.error);
    cr_assert_eq(smtpserver_count(&server), 1);
    stored = smtpserver_message(&server, 1);
    cr_assert_not_null(stored);
    cr_assert_not_null(strstr(stored, id), "%s", stored);
    free(stored);
}

Test(mail_tls, credentials_in_the_url_work_too, .timeout = 120)
{
    usher_smtp_opts opts;
    usher_mail_result res;
    char id[128], url[128];

    start_tls_server();
    opts = tls_opts(NULL);
    opts.username = NULL;
    snprintf(url, sizeof url, "smtp://%s:%s@localhost:%d", SMTPSERVER_USER, SMTPSERVER_PASSWORD,
             server.port);
    opts.url = url;
    res = send_with(&opts, id, sizeof id);
    cr_assert_eq(res.status, USHER_MAIL_DELIVERED, "%s", res.error);
    cr_assert_eq(smtpserver_count(&server), 1);
}

Test(mail_tls, wrong_password_is_a_permanent_535, .timeout = 120)
{
    usher_smtp_opts opts;
    usher_mail_result res;
    char id[128];

    start_tls_server();
    opts = tls_opts("not-the-password");
    res = send_with(&opts, id, sizeof id);
    cr_assert_eq(res.status, USHER_MAIL_PERMANENT, "%s: %s", usher_mail_status_name(res.status),
                 res.error);
    cr_assert_eq(res.smtp_code, 535, "%d %s", res.smtp_code, res.error);
    cr_assert_not_null(strstr(res.error, "AUTH refused: 535"), "%s", res.error);
    cr_assert_eq(smtpserver_count(&server), 0);
}

Test(mail_tls, an_untrusted_certificate_stops_the_session, .timeout = 120)
{
    usher_smtp_opts opts;
    usher_mail_result res;
    char id[128];

    start_tls_server();
    opts = tls_opts(SMTPSERVER_PASSWORD);
    opts.ca_file = NULL; /* the system's CAs do not know our self-signed certificate */
    res = send_with(&opts, id, sizeof id);
    cr_assert_eq(res.status, USHER_MAIL_TEMPORARY, "%s", res.error);
    cr_assert_not_null(strstr(res.error, "certificate does not verify"), "%s", res.error);
    cr_assert_eq(smtpserver_count(&server), 0);
}

Test(mail_tls, a_certificate_for_another_name_stops_the_session, .timeout = 120)
{
    usher_smtp_opts opts;
    usher_mail_result res;
    char id[128], url[64];

    start_tls_server();
    opts = tls_opts(SMTPSERVER_PASSWORD);
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", server.port); /* the cert names localhost */
    opts.url = url;
    res = send_with(&opts, id, sizeof id);
    cr_assert_eq(res.status, USHER_MAIL_TEMPORARY, "%s", res.error);
    cr_assert_not_null(strstr(res.error, "certificate is for 'localhost'"), "%s", res.error);
    cr_assert_eq(smtpserver_count(&server), 0);
}

Test(mail_tls, required_starttls_against_the_plain_sink_fails_clearly, .timeout = 60)
{
    const char *sink = getenv("USHER_SMTP_URL");
    usher_smtp_opts opts = { .starttls = USHER_SMTP_TLS_REQUIRED, .timeout_ms = 10000 };
    usher_mail_result res;
    char id[128];

    cr_assert(sink != NULL && *sink != '\0', "source .state/env first: USHER_SMTP_URL");
    opts.url = sink;
    res = send_with(&opts, id, sizeof id);
    cr_assert_eq(res.status, USHER_MAIL_TEMPORARY, "%s", res.error);
    cr_assert_not_null(strstr(res.error, "does not offer STARTTLS"), "%s", res.error);
}

Test(mail_tls, an_unreadable_ca_file_is_a_configuration_error, .timeout = 60)
{
    usher_smtp_opts opts = { .url = "smtp://localhost:1",
                             .starttls = USHER_SMTP_TLS_REQUIRED,
                             .ca_file = "/nonexistent/ca.pem" };
    usher_mail_result res;
    size_t len = 0;
    char id[128], *msg = build(id, sizeof id, &len);

    cr_assert_eq(usher_mail_send(&opts, "a@usher.test", "b@example.com", msg, len, &res),
                 USHER_ERR_CONFIG);
    cr_assert_eq(res.status, USHER_MAIL_PERMANENT);
    cr_assert_not_null(strstr(res.error, "/nonexistent/ca.pem"), "%s", res.error);
    free(msg);
}

/* The relay offers one mechanism at a time: both of libesmtp's plain-text plugins work. */
Test(mail_tls, auth_plain_and_auth_login_each_work, .timeout = 120)
{
    static const char *const mechanisms[] = { "PLAIN", "LOGIN" };

    for (int i = 0; i < 2; i++) {
        usher_smtp_opts opts;
        usher_mail_result res;
        char id[128];

        start_server_offering(mechanisms[i]);
        opts = tls_opts(SMTPSERVER_PASSWORD);
        res = send_with(&opts, id, sizeof id);
        cr_assert_eq(res.status, USHER_MAIL_DELIVERED, "AUTH %s: %s", mechanisms[i], res.error);
        cr_assert_eq(smtpserver_count(&server), 1, "AUTH %s", mechanisms[i]);
        smtpserver_stop(&server);
    }
}

Test(mail_tls, if_available_uses_tls_when_offered_and_plain_when_not, .timeout = 120)
{
    const char *sink = getenv("USHER_SMTP_URL");
    usher_smtp_opts opts;
    usher_mail_result res;
    char id[128];

    cr_assert(sink != NULL && *sink != '\0', "source .state/env first: USHER_SMTP_URL");
    start_tls_server(); /* which refuses MAIL before STARTTLS */
    opts = tls_opts(SMTPSERVER_PASSWORD);
    opts.starttls = USHER_SMTP_TLS_IF_OFFERED;
    res = send_with(&opts, id, sizeof id);
    cr_assert_eq(res.status, USHER_MAIL_DELIVERED, "%s", res.error);
    cr_assert_eq(smtpserver_count(&server), 1);
    opts = (usher_smtp_opts){ .url = sink,
                              .starttls = USHER_SMTP_TLS_IF_OFFERED,
                              .timeout_ms = 10000 };
    res = send_with(&opts, id, sizeof id);
    cr_assert_eq(res.status, USHER_MAIL_DELIVERED, "plain sink: %s", res.error);
}
