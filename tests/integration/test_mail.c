/*
 * Email building blocks against a real SMTP server: templates render and
 * escape, messages are well-formed MIME with deterministic bytes and no
 * header injection, delivery to the aiosmtpd sink (scripts/stack.sh)
 * lands a message in $USHER_MAILDIR whose headers and attachment survive
 * the trip, and failures are classified: a closed port is temporary, a
 * 550 from a fake server in a thread is permanent, a 451 temporary.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mail_message.h"
#include "mail_send.h"
#include "mail_template.h"
#include "testproc.h"

#define TEMPLATE_DIR USHER_SOURCE_DIR "/conf/templates"
#define FROM_ADDR    "tickets@usher.test"
#define TO_ADDR      "zoe@example.test"

static const char *need_env(const char *name)
{
    const char *v = getenv(name);

    cr_assert(v != NULL && *v != '\0',
              "%s is not set: run scripts/stack.sh start and eval \"$(scripts/stack.sh env)\"",
              name);
    return v;
}

static json_t *confirmation_vars(void)
{
    json_t *vars =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "event_name", "Rust & C Conf", "attendee_name",
                  "Ann <script>alert(1)</script> & Bob", "ticket_type", "Early bird", "starts_at",
                  "2027-03-14 09:00 CET", "venue", "Hall \"A\"", "ticket_code", "TCK-7Q2Z");

    cr_assert_not_null(vars);
    return vars;
}

/* ------------------------------------------------------------ templates */

Test(mail_template, html_part_escapes_values_and_text_part_keeps_them)
{
    json_t *vars = confirmation_vars();
    usher_mail_rendered r = { 0 };
    char err[256] = "";

    cr_assert_eq(usher_mail_template_render(TEMPLATE_DIR, "registration_confirmation", vars, &r,
                                            err, sizeof err),
                 USHER_OK, "%s", err);
    cr_assert_str_eq(r.subject, "Your ticket for Rust & C Conf");
    cr_assert_not_null(strstr(r.text, "Hello Ann <script>alert(1)</script> & Bob,\n"));
    cr_assert_not_null(strstr(r.text, "TCK-7Q2Z"));
    cr_assert_not_null(
        strstr(r.html, "Hello Ann &lt;script&gt;alert(1)&lt;/script&gt; &amp; Bob,"));
    cr_assert_not_null(strstr(r.html, "Hall &quot;A&quot;"));
    cr_assert_not_null(strstr(r.html, "Rust &amp; C Conf"));
    cr_assert_null(strstr(r.html, "<script>"));
    cr_assert_null(strstr(r.html, "{{"));
    cr_assert_null(strstr(r.text, "{{"));
    usher_mail_rendered_release(&r);
    json_decref(vars);
}

Test(mail_template, unknown_variable_is_refused_by_name)
{
    json_t *vars = confirmation_vars();
    usher_mail_rendered r = { 0 };
    char *out = NULL;
    char err[256] = "";

    cr_assert_eq(
        usher_mail_template_expand("Hi {{ attendee_nmae }}!", vars, 0, &out, err, sizeof err),
        USHER_ERR_INVALID);
    cr_assert_null(out);
    cr_assert_str_eq(err, "unknown template variable 'attendee_nmae'");

    cr_assert_eq(json_object_del(vars, "ticket_code"), 0);
    cr_assert_eq(usher_mail_template_render(TEMPLATE_DIR, "registration_confirmation", vars, &r,
                                            err, sizeof err),
                 USHER_ERR_INVALID);
    cr_assert_str_eq(err, "unknown template variable 'ticket_code'");
    cr_assert_null(r.subject);
    cr_assert_null(r.text);
    cr_assert_null(r.html);
    json_decref(vars);
}

Test(mail_template, numbers_expand_and_other_types_are_refused)
{
    json_t *vars = json_pack("{s:i, s:f, s:b}", "n", 42, "x", 2.5, "flag", 1);
    char *out = NULL;
    char err[256] = "";

    cr_assert_not_null(vars);
    cr_assert_eq(usher_mail_template_expand("{{n}}/{{x}} {{n}}", vars, 1, &out, err, sizeof err),
                 USHER_OK, "%s", err);
    cr_assert_str_eq(out, "42/2.5 42");
    free(out);
    cr_assert_eq(usher_mail_template_expand("{{flag}}", vars, 0, &out, err, sizeof err),
                 USHER_ERR_INVALID);
    cr_assert_eq(usher_mail_template_expand("{{n", vars, 0, &out, err, sizeof err),
                 USHER_ERR_INVALID);
    json_decref(vars);
}

Test(mail_template, missing_template_is_an_error)
{
    json_t *vars = confirmation_vars();
    usher_mail_rendered r = { 0 };
    char err[256] = "";

    cr_assert_eq(
        usher_mail_template_render(TEMPLATE_DIR, "no_such_template", vars, &r, err, sizeof err),
        USHER_ERR_IO);
    cr_assert_not_null(strstr(err, "no_such_template.subject"), "%s", err);
    cr_assert_eq(usher_mail_template_render(TEMPLATE_DIR, "../usher", vars, &r, err, sizeof err),
                 USHER_ERR_INVALID);
    json_decref(vars);
}

/* ------------------------------------------------------------- messages */

static const unsigned char pdf_bytes[] = "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\n"
                                         "\x00\x01\x02\xfd\xfe\xff--=_usher_\r\n.\r\n"
                                         "%%EOF\n";

static usher_mail_attachment test_attachment = { "ticket.pdf", "application/pdf", pdf_bytes,
                                                 sizeof pdf_bytes - 1 };

static usher_mail_message base_message(const char *message_id, const char *subject)
{
    usher_mail_message m = { 0 };

    m.from_name = "Usher Tickets";
    m.from_addr = FROM_ADDR;
    m.to_name = "Zoë Ångström";
    m.to_addr = TO_ADDR;
    m.subject = subject;
    m.message_id = message_id;
    m.date = 1795000000; /* 2026-11-18 */
    m.text = "Hello Zoë,\nyour ticket: TCK-7Q2Z = ok \n.\nbye\n";
    m.html = "<p>Hello Zo&euml;, caf\xc3\xa9</p>\n";
    m.attachments = &test_attachment;
    m.attachment_count = 1;
    return m;
}

Test(mail_message, message_id_is_derived_from_the_job)
{
    char buf[128];

    cr_assert_eq(usher_mail_message_id(buf, sizeof buf, 42, "usher.example.org"), USHER_OK);
    cr_assert_str_eq(buf, "<usher-job-42@usher.example.org>");
    cr_assert_eq(usher_mail_message_id(buf, sizeof buf, 42, "bad\r\nBcc: x"), USHER_ERR_INVALID);
    cr_assert_eq(usher_mail_message_id(buf, sizeof buf, 42, "a@b"), USHER_ERR_INVALID);
    cr_assert_eq(usher_mail_message_id(buf, sizeof buf, 42, ""), USHER_ERR_INVALID);
    cr_assert_eq(usher_mail_message_id(buf, 10, 42, "usher.example.org"), USHER_ERR_INVALID);
}

Test(mail_message, is_deterministic_crlf_and_well_formed)
{
    usher_mail_message m = base_message("<usher-job-7@usher.test>", "Plain subject");
    char *a = NULL, *b = NULL, err[256] = "";
    size_t alen = 0, blen = 0, col = 0;

    cr_assert_eq(usher_mail_message_build(&m, &a, &alen, err, sizeof err), USHER_OK, "%s", err);
    cr_assert_eq(usher_mail_message_build(&m, &b, &blen, err, sizeof err), USHER_OK, "%s", err);
    cr_assert_eq(alen, blen);
    cr_assert_eq(memcmp(a, b, alen), 0);
    cr_assert_eq(strlen(a), alen);
    for (size_t i = 0; i < alen; i++) {
        if (a[i] == '\n') {
            cr_assert(i > 0 && a[i - 1] == '\r', "bare LF at byte %zu", i);
            cr_assert_leq(col, 79, "line of %zu chars before byte %zu", col, i);
            col = 0;
        } else {
            cr_assert((unsigned char)a[i] < 0x80, "8-bit byte at %zu", i);
            col++;
        }
    }
    cr_assert_not_null(strstr(a, "\r\nSubject: Plain subject\r\n"));
    cr_assert_not_null(strstr(a, "\r\nDate: Wed, 18 Nov 2026 11:06:40 +0000\r\n"));
    cr_assert_not_null(strstr(a, "\r\nMessage-ID: <usher-job-7@usher.test>\r\n"));
    cr_assert_not_null(strstr(a, "From: \"Usher Tickets\" <" FROM_ADDR ">\r\n"));
    cr_assert_not_null(strstr(a, "your ticket: TCK-7Q2Z =3D ok=20\r\n"));
    cr_assert_not_null(
        strstr(a, "Content-Disposition: attachment;\r\n filename=\"ticket.pdf\"\r\n"));
    free(a);
    free(b);
}

Test(mail_message, refuses_cr_or_lf_in_any_header_value)
{
    usher_mail_attachment bad_file = test_attachment;
    usher_mail_message m;
    char *out = NULL, err[256] = "";
    size_t len = 0;

    m = base_message("<usher-job-1@usher.test>", "Hi\r\nBcc: victim@example.test");
    cr_assert_eq(usher_mail_message_build(&m, &out, &len, err, sizeof err), USHER_ERR_INVALID);
    cr_assert_str_eq(err, "subject contains CR or LF");
    cr_assert_null(out);
    m = base_message("<usher-job-1@usher.test>", "ok");
    m.to_name = "Zoë\nBcc: victim@example.test";
    cr_assert_eq(usher_mail_message_build(&m, &out, &len, err, sizeof err), USHER_ERR_INVALID);
    cr_assert_str_eq(err, "to_name contains CR or LF");
    m = base_message("<usher-job-1@usher.test>", "ok");
    m.from_addr = "a@b.test\r\nBcc: victim@example.test";
    cr_assert_eq(usher_mail_message_build(&m, &out, &len, err, sizeof err), USHER_ERR_INVALID);
    m = base_message("<usher-job-1@usher.test>\r\nX: y", "ok");
    cr_assert_eq(usher_mail_message_build(&m, &out, &len, err, sizeof err), USHER_ERR_INVALID);
    m = base_message("<usher-job-1@usher.test>", "ok");
    bad_file.filename = "ticket.pdf\r\nContent-Type: text/html";
    m.attachments = &bad_file;
    cr_assert_eq(usher_mail_message_build(&m, &out, &len, err, sizeof err), USHER_ERR_INVALID);
    cr_assert_str_eq(err, "attachment 0: filename empty, too long or contains CR or LF");
    m = base_message("<usher-job-1@usher.test>", "ok");
    m.to_addr = "not an address";
    cr_assert_eq(usher_mail_message_build(&m, &out, &len, err, sizeof err), USHER_ERR_INVALID);
    cr_assert_null(out);
}

/* ------------------------------------------------------ reading the sink */

typedef struct sink_query {
    const char *maildir;
    const char *message_id;
    char path[1400];
} sink_query;

static char *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (data = malloc((size_t)n + 1)) != NULL) {
        *len = fread(data, 1, (size_t)n, f);
        data[*len] = '\0';
    }
    fclose(f);
    return data;
}

/* Drops every CR: the sink may store LF or CRLF line ends. */
static void strip_cr(char *s)
{
    char *w = s;

    for (char *r = s; *r != '\0'; r++) {
        if (*r != '\r')
            *w++ = *r;
    }
    *w = '\0';
}

static bool message_arrived(void *arg)
{
    sink_query *q = arg;
    char dir[1024], needle[300];
    struct dirent *e;
    DIR *d;
    bool found = false;

    snprintf(dir, sizeof dir, "%s/new", q->maildir);
    snprintf(needle, sizeof needle, "Message-ID: %s", q->message_id);
    if ((d = opendir(dir)) == NULL)
        return false;
    while (!found && (e = readdir(d)) != NULL) {
        size_t len = 0;
        char *data;

        if (e->d_name[0] == '.')
            continue;
        snprintf(q->path, sizeof q->path, "%s/%s", dir, e->d_name);
        if ((data = read_whole(q->path, &len)) == NULL)
            continue;
        strip_cr(data);
        found = strstr(data, needle) != NULL;
        free(data);
    }
    closedir(d);
    return found;
}

/* The value of header name in the (CR-free) message, unfolded; malloc'd. */
static char *header_value(const char *msg, const char *name)
{
    size_t nlen = strlen(name), o = 0;
    const char *end = strstr(msg, "\n\n"), *p = msg;
    char *out;

    cr_assert_not_null(end);
    while (p < end && !(strncasecmp(p, name, nlen) == 0 && p[nlen] == ':')) {
        p = strchr(p, '\n');
        cr_assert_not_null(p);
        p++;
    }
    cr_assert(p < end, "no %s header", name);
    p += nlen + 1;
    while (*p == ' ')
        p++;
    out = calloc(1, (size_t)(end - p) + 1);
    cr_assert_not_null(out);
    for (; p < end && !(p[0] == '\n' && p[1] != ' ' && p[1] != '\t'); p++) {
        if (*p != '\n')
            out[o++] = *p;
    }
    return out;
}

/* Decodes adjacent RFC 2047 UTF-8 B encoded-words (and plain text between). */
static void decode_words(const char *in, char *out, size_t cap)
{
    size_t o = 0, blen;
    const char *p = in, *start, *stop;
    int prev_word = 0;

    while (*p != '\0') {
        start = strstr(p, "=?UTF-8?B?");
        if (start == NULL)
            start = p + strlen(p);
        if (!(prev_word && strspn(p, " \t") == (size_t)(start - p))) {
            cr_assert_lt(o + (size_t)(start - p), cap);
            memcpy(out + o, p, (size_t)(start - p));
            o += (size_t)(start - p);
        }
        if (*start == '\0')
            break;
        stop = strstr(start + 10, "?=");
        cr_assert_not_null(stop);
        cr_assert_eq(sodium_base642bin((unsigned char *)out + o, cap - o - 1, start + 10,
                                       (size_t)(stop - start - 10), NULL, &blen, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
        o += blen;
        p = stop + 2;
        prev_word = 1;
    }
    out[o] = '\0';
}

/* The base64 body of the part whose headers name filename, decoded. */
static unsigned char *attachment_bytes(const char *msg, const char *filename, size_t *len)
{
    char needle[256];
    const char *p, *body, *stop;
    unsigned char *out;
    size_t cap;

    snprintf(needle, sizeof needle, "filename=\"%s\"", filename);
    p = strstr(msg, needle);
    cr_assert_not_null(p, "no attachment %s", filename);
    body = strstr(p, "\n\n");
    cr_assert_not_null(body);
    body += 2;
    stop = strstr(body, "\n--");
    cr_assert_not_null(stop);
    cap = (size_t)(stop - body);
    out = malloc(cap + 1);
    cr_assert_not_null(out);
    cr_assert_eq(sodium_base642bin(out, cap, body, (size_t)(stop - body), "\n", len, NULL,
                                   sodium_base64_VARIANT_ORIGINAL),
                 0);
    return out;
}

/* ------------------------------------------------------------- sending */

static usher_mail_result send_built(const char *url, const usher_mail_message *m)
{
    usher_smtp_opts opts = { 0 };
    usher_mail_result res;
    char *msg = NULL, err[256] = "";
    size_t len = 0;

    cr_assert_eq(usher_mail_message_build(m, &msg, &len, err, sizeof err), USHER_OK, "%s", err);
    opts.url = url;
    opts.timeout_ms = 5000;
    opts.helo_name = "usher-test.local";
    cr_assert_eq(usher_mail_send(&opts, m->from_addr, m->to_addr, msg, len, &res), USHER_OK, "%s",
                 res.error);
    free(msg);
    return res;
}

static void unique_message_id(char *buf, size_t len)
{
    struct timespec ts;

    cr_assert_eq(clock_gettime(CLOCK_REALTIME, &ts), 0);
    cr_assert_eq(usher_mail_message_id(buf, len, (int64_t)getpid() * 1000000 + ts.tv_nsec / 1000,
                                       "mail-test.usher.test"),
                 USHER_OK);
}

/* Sends m to the sink and returns the stored message (CRs dropped); removes the file. */
static char *deliver_and_fetch(const usher_mail_message *m)
{
    sink_query q = { need_env("USHER_MAILDIR"), m->message_id, "" };
    usher_mail_result res = send_built(need_env("USHER_SMTP_URL"), m);
    size_t len = 0;
    char *data;

    cr_assert_eq(res.status, USHER_MAIL_DELIVERED, "%s: %s", usher_mail_status_name(res.status),
                 res.error);
    cr_assert_eq(res.smtp_code, 250);
    cr_assert_str_eq(res.error, "");
    cr_assert(testproc_wait_for(message_arrived, &q, 10000), "%s never reached %s/new",
              m->message_id, q.maildir);
    data = read_whole(q.path, &len);
    cr_assert_not_null(data);
    cr_assert_eq(unlink(q.path), 0);
    strip_cr(data);
    return data;
}

Test(mail_send, delivers_to_the_sink_with_headers_and_attachment_intact)
{
    char id[128], subject[256];
    usher_mail_message m;
    unsigned char *att;
    char *data, *v;
    size_t att_len = 0;

    unique_message_id(id, sizeof id);
    m = base_message(id, "Your ticket for Rust & C Conf");
    data = deliver_and_fetch(&m);
    v = header_value(data, "Message-ID");
    cr_assert_str_eq(v, id);
    free(v);
    v = header_value(data, "Subject");
    cr_assert_str_eq(v, "Your ticket for Rust & C Conf");
    free(v);
    v = header_value(data, "From");
    cr_assert_str_eq(v, "\"Usher Tickets\" <" FROM_ADDR ">");
    free(v);
    v = header_value(data, "To");
    decode_words(v, subject, sizeof subject);
    cr_assert_str_eq(subject, "Zoë Ångström <" TO_ADDR ">");
    free(v);
    att = attachment_bytes(data, "ticket.pdf", &att_len);
    cr_assert_eq(att_len, sizeof pdf_bytes - 1);
    cr_assert_eq(memcmp(att, pdf_bytes, att_len), 0);
    free(att);
    free(data);
}

Test(mail_send, utf8_subject_round_trips)
{
    const char *subject =
        "Dein Ticket für »Zoë’s Café« – 2027 🎟️ — a long subject that must "
        "be split into several encoded-words without cutting a character";
    char id[128], decoded[512];
    usher_mail_message m;
    char *data, *v;

    unique_message_id(id, sizeof id);
    m = base_message(id, subject);
    m.attachment_count = 0;
    data = deliver_and_fetch(&m);
    v = header_value(data, "Subject");
    cr_assert_not_null(strstr(v, "=?UTF-8?B?"), "%s", v);
    decode_words(v, decoded, sizeof decoded);
    cr_assert_str_eq(decoded, subject);
    free(v);
    free(data);
}

static int listen_local(int *port)
{
    struct sockaddr_in sa = { 0 };
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert_geq(fd, 0);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

Test(mail_send, closed_port_is_temporary)
{
    char id[128], url[64];
    usher_mail_message m;
    usher_mail_result res;
    int port, fd = listen_local(&port);

    cr_assert_eq(close(fd), 0);
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", port);
    unique_message_id(id, sizeof id);
    m = base_message(id, "never sent");
    res = send_built(url, &m);
    cr_assert_eq(res.status, USHER_MAIL_TEMPORARY, "%s", res.error);
    cr_assert_eq(res.smtp_code, 0);
    cr_assert_not_null(strstr(res.error, "refused"), "%s", res.error);
}

typedef struct fake_smtp {
    int listen_fd;
    const char *rcpt_reply;
    int saw_data;
    struct sockaddr_in client; /* the client's end of the connection */
    int client_nodelay;        /* TCP_NODELAY on that end at MAIL FROM; -1: not found */
} fake_smtp;

/*
 * The client is this process: finds the descriptor whose local end is
 * f->client (listing /proc/self/fd) and reads its TCP_NODELAY. No
 * assertions: it runs on the server's thread.
 */
static int client_nodelay(const fake_smtp *f)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *ent;
    int found = -1;

    while (dir != NULL && found < 0 && (ent = readdir(dir)) != NULL) {
        struct sockaddr_in local;
        socklen_t len = sizeof local;
        int fd = atoi(ent->d_name), on = 0;
        socklen_t onlen = sizeof on;

        if (ent->d_name[0] == '.' || fd == dirfd(dir) ||
            getsockname(fd, (struct sockaddr *)&local, &len) != 0 || local.sin_family != AF_INET ||
            local.sin_port != f->client.sin_port ||
            local.sin_addr.s_addr != f->client.sin_addr.s_addr)
            continue;
        if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &onlen) == 0)
            found = on != 0;
    }
    if (dir != NULL)
        closedir(dir);
    return found;
}

static void reply(int fd, const char *line)
{
    size_t n = strlen(line);

    cr_assert_eq(write(fd, line, n), (ssize_t)n);
}

/* One connection, one command per line, just enough SMTP to reach RCPT. */
static void *fake_smtp_run(void *arg)
{
    fake_smtp *f = arg;
    char line[1024];
    size_t used = 0;
    ssize_t n;
    socklen_t len = sizeof f->client;
    int fd = accept(f->listen_fd, (struct sockaddr *)&f->client, &len);

    if (fd < 0)
        return NULL;
    reply(fd, "220 fake.test ESMTP\r\n");
    while ((n = read(fd, line + used, sizeof line - 1 - used)) > 0) {
        char *eol;

        used += (size_t)n;
        line[used] = '\0';
        while ((eol = strstr(line, "\r\n")) != NULL) {
            *eol = '\0';
            if (strncasecmp(line, "EHLO", 4) == 0 || strncasecmp(line, "HELO", 4) == 0)
                reply(fd, "250 fake.test\r\n");
            else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
                f->client_nodelay = client_nodelay(f);
                reply(fd, "250 2.1.0 ok\r\n");
            } else if (strncasecmp(line, "RCPT TO:", 8) == 0)
                reply(fd, f->rcpt_reply);
            else if (strncasecmp(line, "DATA", 4) == 0 && (f->saw_data = 1))
                reply(fd, "503 5.5.1 no valid recipients\r\n");
            else if (strncasecmp(line, "RSET", 4) == 0)
                reply(fd, "250 2.0.0 ok\r\n");
            else if (strncasecmp(line, "QUIT", 4) == 0) {
                reply(fd, "221 2.0.0 bye\r\n");
                close(fd);
                return NULL;
            } else
                reply(fd, "500 5.5.2 what?\r\n");
            used -= (size_t)(eol + 2 - line);
            memmove(line, eol + 2, used + 1);
        }
    }
    close(fd);
    return NULL;
}

static usher_mail_result send_to_fake(const char *rcpt_reply, fake_smtp *f)
{
    char id[128], url[64];
    usher_mail_message m;
    usher_mail_result res;
    pthread_t thread;
    int port;

    f->listen_fd = listen_local(&port);
    f->rcpt_reply = rcpt_reply;
    f->saw_data = 0;
    f->client_nodelay = -1;
    cr_assert_eq(listen(f->listen_fd, 1), 0);
    cr_assert_eq(pthread_create(&thread, NULL, fake_smtp_run, f), 0);
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", port);
    unique_message_id(id, sizeof id);
    m = base_message(id, "refused");
    res = send_built(url, &m);
    cr_assert_eq(pthread_join(thread, NULL), 0);
    cr_assert_eq(close(f->listen_fd), 0);
    return res;
}

Test(mail_send, rcpt_550_is_permanent)
{
    fake_smtp f;
    usher_mail_result res = send_to_fake("550 5.1.1 no such user\r\n", &f);

    cr_assert_eq(res.status, USHER_MAIL_PERMANENT, "%s: %s", usher_mail_status_name(res.status),
                 res.error);
    cr_assert_eq(res.smtp_code, 550);
    cr_assert_str_eq(res.error, "SMTP 550 5.1.1 no such user (RCPT TO)");
}

Test(mail_send, rcpt_451_is_temporary)
{
    fake_smtp f;
    usher_mail_result res = send_to_fake("451 4.3.0 try again later\r\n", &f);

    cr_assert_eq(res.status, USHER_MAIL_TEMPORARY, "%s: %s", usher_mail_status_name(res.status),
                 res.error);
    cr_assert_eq(res.smtp_code, 451);
    cr_assert_str_eq(res.error, "SMTP 451 4.3.0 try again later (RCPT TO)");
}

/* A connected TCP pair of this process's own, neither end touched. */
static void tcp_pair(int *listen_fd, int *client_fd)
{
    struct sockaddr_in sa = { 0 };
    int port;

    *listen_fd = listen_local(&port);
    cr_assert_eq(listen(*listen_fd, 1), 0);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    *client_fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(*client_fd, 0);
    cr_assert_eq(connect(*client_fd, (struct sockaddr *)&sa, sizeof sa), 0);
}

/*
 * libesmtp never sets TCP_NODELAY: the session sets it on its socket to the
 * relay, and on no other socket of the process (once it set it on every
 * socket it found, asking each descriptor number up to RLIMIT_NOFILE).
 */
Test(mail_send, only_the_relays_socket_gets_tcp_nodelay)
{
    fake_smtp f;
    usher_mail_result res;
    int listen_fd, other_fd, on = -1;
    socklen_t len = sizeof on;

    tcp_pair(&listen_fd, &other_fd);
    res = send_to_fake("550 5.1.1 no such user\r\n", &f);
    cr_assert_eq(res.smtp_code, 550, "%s", res.error);
    cr_assert_eq(f.client_nodelay, 1, "the socket to the relay: TCP_NODELAY %d (-1: not found)",
                 f.client_nodelay);
    cr_assert_eq(getsockopt(other_fd, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
    cr_assert_eq(on, 0, "a socket to somewhere else got TCP_NODELAY");
    cr_assert_eq(close(other_fd), 0);
    cr_assert_eq(close(listen_fd), 0);
}

Test(mail_send, smtps_and_bad_urls_are_refused_as_config_errors)
{
    usher_smtp_opts opts = { 0 };
    usher_mail_result res;

    opts.url = "smtps://127.0.0.1:465";
    cr_assert_eq(usher_mail_send(&opts, FROM_ADDR, TO_ADDR, "x", 1, &res), USHER_ERR_CONFIG);
    cr_assert_eq(res.status, USHER_MAIL_PERMANENT);
    cr_assert_not_null(strstr(res.error, "smtps://"));
    opts.url = "http://127.0.0.1:25";
    cr_assert_eq(usher_mail_send(&opts, FROM_ADDR, TO_ADDR, "x", 1, &res), USHER_ERR_CONFIG);
    opts.url = "smtp://user:%zz@127.0.0.1:25";
    cr_assert_eq(usher_mail_send(&opts, FROM_ADDR, TO_ADDR, "x", 1, &res), USHER_ERR_CONFIG);
    opts.url = "smtp://127.0.0.1:submission";
    cr_assert_eq(usher_mail_send(&opts, FROM_ADDR, TO_ADDR, "x", 1, &res), USHER_ERR_CONFIG);
    cr_assert_str_eq(res.error, "SMTP URL's port is not a number from 1 to 65535");
    opts.url = "smtp://127.0.0.1:65536";
    cr_assert_eq(usher_mail_send(&opts, FROM_ADDR, TO_ADDR, "x", 1, &res), USHER_ERR_CONFIG);
    opts.url = "smtp://127.0.0.1:25";
    cr_assert_eq(usher_mail_send(&opts, FROM_ADDR, "a@b\r\nRCPT TO:<c@d>", "x", 1, &res),
                 USHER_ERR_INVALID);
}

Test(mail_send, silent_server_times_out_as_temporary)
{
    usher_smtp_opts opts = { 0 };
    usher_mail_result res;
    struct timespec t0, t1;
    char url[64];
    int port, fd = listen_local(&port);

    /* The kernel completes the handshake; nobody ever sends a greeting. */
    cr_assert_eq(listen(fd, 1), 0);
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", port);
    opts.url = url;
    opts.timeout_ms = 1000;
    cr_assert_eq(clock_gettime(CLOCK_MONOTONIC, &t0), 0);
    cr_assert_eq(usher_mail_send(&opts, FROM_ADDR, TO_ADDR, "x\r\n", 3, &res), USHER_OK);
    cr_assert_eq(clock_gettime(CLOCK_MONOTONIC, &t1), 0);
    cr_assert_eq(res.status, USHER_MAIL_TEMPORARY, "%s", res.error);
    cr_assert_eq(res.smtp_code, 0);
    cr_assert_lt(t1.tv_sec - t0.tv_sec, 5, "took %lds", (long)(t1.tv_sec - t0.tv_sec));
    cr_assert_eq(close(fd), 0);
}
