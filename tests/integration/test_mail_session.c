/*
 * Several messages over one SMTP session (usher_mail_send_many), against a
 * small SMTP server in a thread that accepts one connection only, so every
 * message it takes came over the same session. Each message keeps its own
 * outcome: a refused recipient fails its message alone, and a session that
 * breaks midway leaves the accepted messages delivered and the rest to retry.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mail_send.h"

#define FROM_ADDR "tickets@usher.test"

typedef struct one_session {
    int listen_fd;
    int close_after; /* hang up after accepting this many messages (0: never) */
    int accepted;    /* messages taken (250 after DATA) */
    int recipients;  /* of the transaction under way */
    int connections;
} one_session;

/* No cr_assert here (this runs in the server's thread): a lost reply fails the client instead. */
static void reply(int fd, const char *line)
{
    ssize_t sent = write(fd, line, strlen(line));

    (void)sent;
}

/* Answers one command line; false when the session is over. */
static bool command(one_session *s, int fd, const char *line, bool *in_data)
{
    if (*in_data) {
        if (strcmp(line, ".") != 0)
            return true;
        *in_data = false;
        reply(fd, "250 2.0.0 queued\r\n");
        s->accepted++;
        s->recipients = 0;
        return s->close_after == 0 || s->accepted < s->close_after;
    }
    if (strncasecmp(line, "EHLO", 4) == 0 || strncasecmp(line, "HELO", 4) == 0)
        reply(fd, "250 one.test\r\n");
    else if ((strncasecmp(line, "MAIL FROM:", 10) == 0 || strncasecmp(line, "RSET", 4) == 0) &&
             (s->recipients = 0) == 0)
        reply(fd, "250 2.1.0 ok\r\n");
    else if (strncasecmp(line, "RCPT TO:", 8) == 0 && strstr(line, "<refused@") != NULL)
        reply(fd, "550 5.1.1 no such user\r\n");
    else if (strncasecmp(line, "RCPT TO:", 8) == 0 && (s->recipients = 1))
        reply(fd, "250 2.1.5 ok\r\n");
    else if (strncasecmp(line, "DATA", 4) == 0 && s->recipients == 0)
        reply(fd, "554 5.5.1 no valid recipients\r\n");
    else if (strncasecmp(line, "DATA", 4) == 0 && (*in_data = true))
        reply(fd, "354 go ahead\r\n");
    else if (strncasecmp(line, "QUIT", 4) == 0) {
        reply(fd, "221 2.0.0 bye\r\n");
        return false;
    } else
        reply(fd, "500 5.5.2 what?\r\n");
    return true;
}

static void *one_session_run(void *arg)
{
    one_session *s = arg;
    char buf[8192];
    size_t used = 0;
    ssize_t n;
    bool in_data = false, open = true;
    int fd = accept(s->listen_fd, NULL, NULL);

    if (fd < 0)
        return NULL;
    s->connections++;
    reply(fd, "220 one.test ESMTP\r\n");
    while (open && (n = read(fd, buf + used, sizeof buf - 1 - used)) > 0) {
        char *line = buf, *eol;

        used += (size_t)n;
        buf[used] = '\0';
        while (open && (eol = strstr(line, "\r\n")) != NULL) {
            *eol = '\0';
            open = command(s, fd, line, &in_data);
            line = eol + 2;
        }
        used -= (size_t)(line - buf);
        memmove(buf, line, used + 1);
    }
    close(fd);
    return NULL;
}

static int listen_local(int *port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    cr_assert_eq(listen(fd, 4), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Sends n messages to the listed recipients over one session; s says what the server saw. */
static void send_all(one_session *s, const char *const *to, size_t n, usher_mail_result *results)
{
    static char bodies[USHER_MAIL_SESSION_MAX][160];
    usher_mail_envelope mails[USHER_MAIL_SESSION_MAX];
    usher_smtp_opts opts = { .timeout_ms = 5000, .helo_name = "usher-test.local" };
    pthread_t thread;
    char url[64];
    int port;

    s->listen_fd = listen_local(&port);
    cr_assert_eq(pthread_create(&thread, NULL, one_session_run, s), 0);
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", port);
    opts.url = url;
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(bodies[i], sizeof bodies[i],
                           "From: <%s>\r\nTo: <%s>\r\nSubject: Message %zu\r\n\r\nHello %zu.\r\n",
                           FROM_ADDR, to[i], i, i);

        mails[i] = (usher_mail_envelope){ FROM_ADDR, to[i], bodies[i], (size_t)len };
    }
    cr_assert_eq(usher_mail_send_many(&opts, mails, n, results), USHER_OK);
    cr_assert_eq(pthread_join(thread, NULL), 0);
    cr_assert_eq(close(s->listen_fd), 0);
}

Test(mail_session, one_session_carries_every_message_and_a_refusal_fails_only_its_own)
{
    const char *const to[] = { "a@example.test", "b@example.test", "refused@example.test",
                               "c@example.test", "d@example.test" };
    usher_mail_result res[5];
    one_session s = { 0 };

    send_all(&s, to, 5, res);
    cr_assert_eq(s.connections, 1);
    cr_assert_eq(s.accepted, 4, "%d", s.accepted);
    for (size_t i = 0; i < 5; i++) {
        if (i == 2)
            continue;
        cr_assert_eq(res[i].status, USHER_MAIL_DELIVERED, "message %zu: %s", i, res[i].error);
        cr_assert_eq(res[i].smtp_code, 250);
    }
    cr_assert_eq(res[2].status, USHER_MAIL_PERMANENT, "%s", res[2].error);
    cr_assert_eq(res[2].smtp_code, 550);
    cr_assert_str_eq(res[2].error, "SMTP 550 5.1.1 no such user (RCPT TO)");
}

Test(mail_session, a_session_broken_midway_keeps_what_was_accepted_and_retries_the_rest)
{
    const char *const to[] = { "a@example.test", "b@example.test", "c@example.test",
                               "d@example.test" };
    usher_mail_result res[4];
    one_session s = { .close_after = 2 };

    send_all(&s, to, 4, res);
    cr_assert_eq(s.accepted, 2);
    cr_assert_eq(res[0].status, USHER_MAIL_DELIVERED, "%s", res[0].error);
    cr_assert_eq(res[1].status, USHER_MAIL_DELIVERED, "%s", res[1].error);
    cr_assert_eq(res[2].status, USHER_MAIL_TEMPORARY, "%s", res[2].error);
    cr_assert_eq(res[3].status, USHER_MAIL_TEMPORARY, "%s", res[3].error);
    cr_assert_neq(res[3].error[0], '\0');
}

Test(mail_session, a_bad_envelope_fails_alone_and_bad_counts_are_refused)
{
    const char *const to[] = { "a@example.test", "b@example.test\r\nRCPT TO:<x@y>",
                               "c@example.test" };
    usher_mail_result res[3];
    one_session s = { 0 };
    usher_smtp_opts opts = { .url = "smtp://127.0.0.1:25" };
    usher_mail_envelope one = { FROM_ADDR, "a@example.test", "x", 1 };

    send_all(&s, to, 3, res);
    cr_assert_eq(s.accepted, 2);
    cr_assert_eq(res[0].status, USHER_MAIL_DELIVERED, "%s", res[0].error);
    cr_assert_eq(res[1].status, USHER_MAIL_PERMANENT);
    cr_assert_str_eq(res[1].error, "invalid arguments to usher_mail_send");
    cr_assert_eq(res[2].status, USHER_MAIL_DELIVERED, "%s", res[2].error);
    cr_assert_eq(usher_mail_send_many(&opts, &one, 0, res), USHER_ERR_INVALID);
    cr_assert_eq(usher_mail_send_many(&opts, &one, USHER_MAIL_SESSION_MAX + 1, res),
                 USHER_ERR_INVALID);
}
