/*
 * Clients that try to exhaust usher-api, through a real usher-api and raw
 * sockets to 127.0.0.1: huge declared bodies, heads and bodies trickled a
 * byte at a time, too many connections from one address, bodies beyond
 * what the process may receive at once, request smuggling shapes and
 * malformed requests (answered in JSON, never libevent's HTML pages); and
 * what must keep working behind the guard (keep-alive, pipelining, the
 * upload route's larger limit). Every wait has a deadline.
 */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testdb.h"
#include "testhttp.h"
#include "token.h"

TESTDB_SUITE(api_hostile, "usher_test_api_hostile");

#define MB (1024L * 1024L)

static testapi server;

static void start(void)
{
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 2);
}

static void stop(void)
{
    testapi_stop(&server);
}

static void start_quick_deadlines(void)
{
    setenv("USHER_API_HEADER_TIMEOUT_S", "1", 1);
    setenv("USHER_API_BODY_TIMEOUT_S", "1", 1);
    setenv("USHER_API_BODY_RATE_BYTES", "1000000", 1); /* ~1 s more for a 1,000-byte body */
    start();
}

static void start_few_connections(void)
{
    setenv("USHER_API_CONNECTIONS_PER_ADDRESS", "8", 1);
    start();
}

static void start_small_inflight(void)
{
    setenv("USHER_API_INFLIGHT_BODY_MAX_BYTES", "1048576", 1);
    start();
}

/* ---- raw HTTP over loopback */

static int dial(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)server.port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
                 strerror(errno));
    return fd;
}

static void send_text(int fd, const char *text)
{
    size_t len = strlen(text), off = 0;

    while (off < len) {
        ssize_t n = send(fd, text + off, len - off, MSG_NOSIGNAL);

        cr_assert_gt(n, 0, "send: %s", strerror(errno));
        off += (size_t)n;
    }
}

/* What came back on one connection. */
typedef struct wire {
    char data[65536];
    size_t len;
    bool eof; /* the server closed (or reset) the connection */
} wire;

/* One answer parsed out of a wire. */
typedef struct answer {
    int status;
    char head[2048];
    json_t *json;
} answer;

/* Parses answer number `which` (0 = first); false when it has not arrived whole. */
static bool answer_at(const wire *w, int which, answer *a)
{
    size_t at = 0;

    for (int i = 0; i <= which; i++) {
        const char *start = w->data + at, *end, *cl;
        size_t head_len, body_len;

        if (at >= w->len)
            return false;
        end = memmem(start, w->len - at, "\r\n\r\n", 4);
        if (end == NULL)
            return false;
        head_len = (size_t)(end + 4 - start);
        cl = memmem(start, head_len, "Content-Length: ", 16);
        body_len = cl != NULL ? strtoul(cl + 16, NULL, 10) : 0;
        if (at + head_len + body_len > w->len)
            return false;
        if (i == which) {
            memset(a, 0, sizeof(*a));
            cr_assert_eq(sscanf(start, "HTTP/1.%*d %d", &a->status), 1, "not HTTP: %.40s", start);
            snprintf(a->head, sizeof(a->head), "%.*s", (int)head_len, start);
            a->json = json_loadb(start + head_len, body_len, 0, NULL);
        }
        at += head_len + body_len;
    }
    return true;
}

/* True when the first `want` answers are in whole (each parse freed again). */
static bool have_answers(const wire *w, int want)
{
    answer a;

    if (!answer_at(w, want - 1, &a))
        return false;
    json_decref(a.json);
    return true;
}

/* Reads until `want` answers are in, the server closes, or ms pass. */
static void read_wire(int fd, wire *w, int want, long long ms)
{
    long long deadline = testdb_now_ms() + ms;

    while (!w->eof && !have_answers(w, want) && testdb_now_ms() < deadline) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (poll(&p, 1, 50) <= 0)
            continue;
        n = recv(fd, w->data + w->len, sizeof(w->data) - w->len, 0);
        if (n <= 0)
            w->eof = true;
        else
            w->len += (size_t)n;
        cr_assert_lt(w->len, sizeof(w->data), "more answer than expected");
    }
}

/* Waits (up to ms) for the server to close fd; true when it did. */
static bool closed_within(int fd, wire *w, long long ms)
{
    read_wire(fd, w, 1000, ms);
    return w->eof;
}

/* The JSON error code of an answer (asserting it is JSON), then frees it. */
static const char *error_code(answer *a, char out[64])
{
    json_t *code = json_object_get(json_object_get(a->json, "error"), "code");

    cr_assert(strstr(a->head, "Content-Type: application/json") != NULL, "not JSON: %s", a->head);
    cr_assert(json_is_string(code), "no error code: %s", a->head);
    snprintf(out, 64, "%s", json_string_value(code));
    json_decref(a->json);
    a->json = NULL;
    return out;
}

/* Sends text on a new connection; the one answer's status and code. */
static int ask(const char *text, char code[64])
{
    int fd = dial();
    wire w = { 0 };
    answer a;

    send_text(fd, text);
    read_wire(fd, &w, 1, 10000);
    close(fd);
    cr_assert(answer_at(&w, 0, &a), "no answer to %.60s", text);
    if (a.status >= 400)
        error_code(&a, code);
    else
        json_decref(a.json);
    return a.status;
}

static long vm_rss_kb(void)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)server.pid);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* ---- bodies */

#define FLOOD      40
#define FLOOD_BODY 19000000L

Test(api_hostile, forty_declared_19_mb_bodies_get_413_at_once_and_cost_no_memory, .init = start,
     .fini = stop)
{
    static const char head[] = "POST /v1/events/1/registrations HTTP/1.1\r\nHost: t\r\n"
                               "Content-Type: application/json\r\nContent-Length: 19000000\r\n\r\n";
    static char chunk[65536];
    int fds[FLOOD], answered = 0, refused = 0;
    long sent[FLOOD] = { 0 }, before = vm_rss_kb(), peak = before;
    wire *w = calloc(FLOOD, sizeof(*w));
    long long deadline = testdb_now_ms() + 30000;

    cr_assert_not_null(w);
    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < FLOOD; i++) {
        fds[i] = dial();
        send_text(fds[i], head);
        cr_assert_eq(fcntl(fds[i], F_SETFL, O_NONBLOCK), 0);
    }
    /* Every client pushes its body as fast as the server takes it, and reads. */
    while (answered < FLOOD && testdb_now_ms() < deadline) {
        for (int i = 0; i < FLOOD; i++) {
            ssize_t n;

            if (w[i].eof)
                continue;
            if (sent[i] < FLOOD_BODY && sent[i] >= 0) {
                n = send(fds[i], chunk, sizeof(chunk), MSG_NOSIGNAL);
                if (n > 0)
                    sent[i] += n;
                else if (errno != EAGAIN && errno != EWOULDBLOCK)
                    sent[i] = -1; /* the server closed: stop sending */
            }
            n = recv(fds[i], w[i].data + w[i].len, sizeof(w[i].data) - w[i].len, 0);
            if (n > 0)
                w[i].len += (size_t)n;
            else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                w[i].eof = true;
            if (w[i].eof) {
                answer a;
                char code[64];

                answered++;
                cr_assert(answer_at(&w[i], 0, &a), "connection %d closed without an answer", i);
                cr_assert_eq(a.status, 413);
                cr_assert_str_eq(error_code(&a, code), "too_large");
                refused++;
            }
        }
        long rss = vm_rss_kb();
        peak = rss > peak ? rss : peak;
    }
    cr_assert_eq(answered, FLOOD, "only %d of %d connections answered and closed", answered, FLOOD);
    cr_assert_eq(refused, FLOOD);
    for (int i = 0; i < FLOOD; i++) {
        cr_assert_lt(sent[i] < 0 ? 0 : sent[i], FLOOD_BODY, "connection %d sent its whole body", i);
        close(fds[i]);
    }
    cr_assert_lt(peak - before, 20 * 1024, "usher-api grew from %ld kB to %ld kB", before, peak);
    free(w);
}

Test(api_hostile, the_upload_route_alone_takes_bodies_past_body_max, .init = start, .fini = stop)
{
    char token[USHER_TOKEN_MAX], head[512], code[64];
    long long org = testdb_scalar(st, "INSERT INTO organizers (name) VALUES ('H') RETURNING id");
    size_t len = 200000;
    char *body = malloc(len + 1);
    int fd, status;
    wire w = { 0 };
    answer a;
    int64_t id;

    cr_assert_not_null(body);
    memset(body, 'a', len);
    body[len] = '\0';
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, org, 0, "h", token, &id), USHER_OK);
    /* 200 KB to an upload of an event that does not exist: past the guard, the route says 404. */
    snprintf(head, sizeof(head),
             "POST /v1/events/999999/content?session_id=1&filename=a.txt HTTP/1.1\r\nHost: t\r\n"
             "Authorization: Bearer %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n",
             token, len);
    fd = dial();
    send_text(fd, head);
    send_text(fd, body);
    read_wire(fd, &w, 1, 30000);
    close(fd);
    cr_assert(answer_at(&w, 0, &a));
    cr_assert_eq(a.status, 404, "%s", a.head);
    json_decref(a.json);
    /* The same upload without a token is refused before its body. */
    snprintf(head, sizeof(head),
             "POST /v1/events/999999/content?session_id=1&filename=a.txt HTTP/1.1\r\nHost: t\r\n"
             "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n",
             len);
    status = ask(head, code);
    cr_assert_eq(status, 401);
    cr_assert_str_eq(code, "unauthorized");
    /* And the same body on a JSON route is too large. */
    snprintf(head, sizeof(head),
             "POST /v1/events/1/registrations HTTP/1.1\r\nHost: t\r\n"
             "Authorization: Bearer %s\r\nContent-Length: %zu\r\n\r\n",
             token, len);
    status = ask(head, code);
    cr_assert_eq(status, 413);
    cr_assert_str_eq(code, "too_large");
    free(body);
}

/* Sends head (and body, when not NULL) on a new connection; the answer's status within ms, or 0. */
static int probe(const char *head, const char *body, long long ms)
{
    int fd = dial(), status = 0;
    wire w = { 0 };
    answer a;

    send_text(fd, head);
    if (body != NULL)
        send_text(fd, body);
    read_wire(fd, &w, 1, ms);
    close(fd);
    if (answer_at(&w, 0, &a)) {
        status = a.status;
        json_decref(a.json);
    }
    return status;
}

Test(api_hostile, bodies_beyond_what_the_process_may_receive_get_503, .init = start_small_inflight,
     .fini = stop)
{
    static const char head[] = "POST /v1/events/1/content?session_id=1&filename=a.txt HTTP/1.1\r\n"
                               "Host: t\r\nAuthorization: Bearer x\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 600000\r\n\r\n";
    char *body = malloc(600001);
    int first = dial(), status = 0;
    long long deadline = testdb_now_ms() + 20000;

    cr_assert_not_null(body);
    memset(body, 'a', 600000);
    body[600000] = '\0';
    /* The first body is being received (600 KB of the 1 MB); a second would go over. Until
     * the first head is read, a second is taken (no answer while its body is missing). */
    send_text(first, head);
    send_text(first, "partial");
    while (status != 503 && testdb_now_ms() < deadline) {
        status = probe(head, NULL, 1000);
        cr_assert(status == 503 || status == 0, "%d", status);
    }
    cr_assert_eq(status, 503);
    /* Once the first connection goes, its share is released: a whole body is read and the
     * route answers (the token is made up: 401). */
    close(first);
    while (status == 503 && testdb_now_ms() < deadline)
        status = probe(head, body, 10000);
    cr_assert_eq(status, 401, "%d", status);
    free(body);
}

/* ---- deadlines */

/* The server answered fd 408 and closed it within 1 s (the deadline) + 1.5 s of t0. */
static void assert_timed_out(int fd, wire *w, long long t0)
{
    answer a;
    char code[64];

    cr_assert(closed_within(fd, w, 3000), "still open after %lld ms", testdb_now_ms() - t0);
    cr_assert_lt(testdb_now_ms() - t0, 1000 + 1500, "answered after %lld ms", testdb_now_ms() - t0);
    close(fd);
    cr_assert(answer_at(w, 0, &a));
    cr_assert_eq(a.status, 408);
    cr_assert_str_eq(error_code(&a, code), "request_timeout");
}

Test(api_hostile, trickled_heads_get_408_within_their_deadline, .init = start_quick_deadlines,
     .fini = stop)
{
    static const char head[] =
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    int fd = dial();
    long long t0 = testdb_now_ms();
    wire w = { 0 };
    answer a;

    for (size_t i = 0; i < sizeof(head) - 1 && !w.eof; i++) {
        char byte[2] = { head[i], '\0' };

        if (send(fd, byte, 1, MSG_NOSIGNAL) != 1)
            break;
        read_wire(fd, &w, 1, 200); /* a byte every 200 ms, watching for the answer */
        if (answer_at(&w, 0, &a)) {
            json_decref(a.json);
            break;
        }
    }
    assert_timed_out(fd, &w, t0);
}

Test(api_hostile, a_trickled_body_gets_408_within_its_deadline, .init = start_quick_deadlines,
     .fini = stop)
{
    int fd = dial();
    long long t0 = testdb_now_ms();
    wire w = { 0 };

    send_text(fd, "POST /v1/checkins HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  "Content-Length: 1000\r\n\r\n{");
    for (int i = 0; i < 50 && !w.eof; i++) {
        if (send(fd, " ", 1, MSG_NOSIGNAL) != 1)
            break;
        read_wire(fd, &w, 1, 200);
    }
    /* 1 s plus 1,000 bytes at 1 MB/s (rounded down: 0 ms). */
    assert_timed_out(fd, &w, t0);
}

/* ---- connections */

#define CAP 8

Test(api_hostile, connections_past_the_cap_of_an_address_get_429, .init = start_few_connections,
     .fini = stop)
{
    int held[CAP], fd;
    char code[64];
    long long deadline;

    /* Each held connection answers once, so it is surely counted. */
    for (int i = 0; i < CAP; i++) {
        wire w = { 0 };
        answer a;

        held[i] = dial();
        send_text(held[i], "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
        read_wire(held[i], &w, 1, 10000);
        cr_assert(answer_at(&w, 0, &a) && a.status == 200, "held connection %d not served", i);
        json_decref(a.json);
    }
    /* Two more are refused at once, before they send anything. */
    for (int i = 0; i < 2; i++) {
        wire w = { 0 };
        answer a;

        fd = dial();
        cr_assert(closed_within(fd, &w, 5000), "connection %d past the cap stayed open", i);
        close(fd);
        cr_assert(answer_at(&w, 0, &a));
        cr_assert_eq(a.status, 429);
        cr_assert(strstr(a.head, "Retry-After: ") != NULL);
        cr_assert_str_eq(error_code(&a, code), "too_many_connections");
    }
    /* The held ones still work; closing one makes room. */
    cr_assert_eq(ask("GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", code), 429);
    {
        wire w = { 0 };
        answer a;

        send_text(held[0], "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n");
        read_wire(held[0], &w, 1, 10000);
        cr_assert(answer_at(&w, 0, &a) && a.status == 200);
        json_decref(a.json);
    }
    close(held[CAP - 1]);
    deadline = testdb_now_ms() + 10000;
    while (ask("GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", code) != 200)
        cr_assert_lt(testdb_now_ms(), deadline, "no room after a connection closed");
    for (int i = 0; i < CAP - 1; i++)
        close(held[i]);
}

/* ---- what passes, and what is refused in JSON */

Test(api_hostile, keep_alive_and_pipelined_requests_still_work, .init = start, .fini = stop)
{
    int fd = dial();
    wire w = { 0 };
    answer a;

    /* Three at once, one with a body, then one more on the same connection. */
    send_text(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                  "POST /v1/checkins HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  "Content-Length: 2\r\n\r\n{}"
                  "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n");
    read_wire(fd, &w, 3, 10000);
    cr_assert(answer_at(&w, 2, &a), "%zu bytes came back", w.len);
    json_decref(a.json);
    cr_assert(answer_at(&w, 0, &a) && a.status == 200);
    json_decref(a.json);
    cr_assert(answer_at(&w, 1, &a) && a.status == 401, "a check-in without a token");
    json_decref(a.json);
    send_text(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    cr_assert(closed_within(fd, &w, 10000));
    cr_assert(answer_at(&w, 3, &a) && a.status == 200);
    json_decref(a.json);
    close(fd);
}

Test(api_hostile, smuggling_attempts_get_400_and_nothing_behind_them_runs, .init = start,
     .fini = stop)
{
    static const char *const attempts[] = {
        /* CL.TE: a front reading the length and a back reading chunks disagree. */
        "POST /v1/checkins HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
        /* Two lengths. */
        "POST /v1/checkins HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: 37\r\n\r\n"
        "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
        /* Bare LF line ends (libevent would take them). */
        "POST /v1/checkins HTTP/1.1\nHost: t\nContent-Length: 0\n\n"
        "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
        /* A Transfer-Encoding hidden behind obs-fold. */
        "POST /v1/checkins HTTP/1.1\r\nHost: t\r\nX: y\r\n Transfer-Encoding: chunked\r\n"
        "Content-Length: 0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    };

    for (size_t i = 0; i < sizeof(attempts) / sizeof(attempts[0]); i++) {
        int fd = dial();
        wire w = { 0 };
        answer a;
        char code[64];

        send_text(fd, attempts[i]);
        cr_assert(closed_within(fd, &w, 10000), "attempt %zu: still open", i);
        close(fd);
        cr_assert(answer_at(&w, 0, &a), "attempt %zu: no answer", i);
        cr_assert_eq(a.status, 400, "attempt %zu: %s", i, a.head);
        cr_assert_str_eq(error_code(&a, code), "bad_request");
        cr_assert(!answer_at(&w, 1, &a), "attempt %zu: the smuggled request was answered", i);
    }
}

typedef struct malformed {
    const char *request;
    int status;
    const char *code;
} malformed;

/* What libevent 2.1.12 answered with an HTML page (or 501) before the guard. */
static const malformed cases[] = {
    { "GET /healthz HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n", 400, "bad_request" },
    { "GET /healthz HTTP/1.1\r\n\r\n", 400, "bad_request" },
    { "GET /healthz\r\nHost: t\r\n\r\n", 400, "bad_request" },
    { "GET /healthz HTTP/1.1 extra\r\nHost: t\r\n\r\n", 400, "bad_request" },
    { "GET  /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 400, "bad_request" },
    { "GET healthz HTTP/1.1\r\nHost: t\r\n\r\n", 400, "bad_request" },
    { "GET /a\x80 HTTP/1.1\r\nHost: t\r\n\r\n", 400, "bad_request" },
    { "GET http://h:99999999/ HTTP/1.1\r\nHost: t\r\n\r\n", 400, "bad_request" },
    { "GET /healthz HTTP/9.9\r\nHost: t\r\n\r\n", 505, "http_version_not_supported" },
    { "GET /healthz FTP/1.1\r\nHost: t\r\n\r\n", 400, "bad_request" },
    { "FOO /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 501, "not_implemented" },
    { "get /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 501, "not_implemented" },
    { "GET /healthz HTTP/1.1\r\nHost t\r\n\r\n", 400, "bad_request" },
    { "GET /healthz HTTP/1.1\r\nHost: t\r\nX\x01Y: z\r\n\r\n", 400, "bad_request" },
    { "GET /healthz HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n", 400, "bad_request" },
    { "GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc", 400, "bad_request" },
    { "POST /v1/checkins HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400, "bad_request" },
    { "POST /v1/checkins HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n", 400, "bad_request" },
    { "POST /v1/checkins HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999\r\n\r\n", 400,
      "bad_request" },
    { "POST /v1/checkins HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411,
      "length_required" },
    { "POST /v1/checkins HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 411,
      "length_required" },
    { "POST /v1/checkins HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n\r\n", 411,
      "length_required" },
    { "POST /v1/checkins HTTP/1.1\r\nHost: t\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\n{}", 417,
      "expectation_failed" },
    { "POST /v1/events/1/registrations HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n\r\n", 413,
      "too_large" },
};

Test(api_hostile, malformed_requests_get_json_never_html, .init = start, .fini = stop)
{
    char big[10000], code[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int status = ask(cases[i].request, code);

        cr_assert_eq(status, cases[i].status, "case %zu: %d for %.50s", i, status,
                     cases[i].request);
        cr_assert_str_eq(code, cases[i].code, "case %zu", i);
    }
    /* A head past api.header_max_bytes (8192). */
    snprintf(big, sizeof(big), "GET /healthz HTTP/1.1\r\nHost: t\r\nX: %09000d\r\n\r\n", 0);
    cr_assert_eq(ask(big, code), 431);
    cr_assert_str_eq(code, "headers_too_large");
    /* A method libevent knows but no route takes: the router's JSON 405. */
    cr_assert_eq(ask("TRACE /healthz HTTP/1.1\r\nHost: t\r\n\r\n", code), 405);
    cr_assert_str_eq(code, "method_not_allowed");
}
