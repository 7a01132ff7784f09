/*
 * usher-bench-beanstalkd: the peer, beanstalkd, measured the way
 * bench/workers measures Usher, so that the two meet in one run
 * (bench/beanstalkd starts the server and runs both). Its text protocol
 * (put, reserve-with-timeout, delete) is spoken directly over blocking
 * sockets, one connection per thread: no client library's costs on top.
 * Jobs carry bench_make_payload's 200 bytes, as Usher's do.
 *
 *   put      --jobs jobs from --producers threads, one job per call
 *            (the "8 producers enqueuing one job per call")
 *   drain    --consumers threads reserve and delete them all; the time
 *            runs from the first reserve to the last delete
 *   latency  the consumers wait in reserve; one producer puts --rate jobs
 *            a second for --seconds on an absolute schedule, each carrying
 *            CLOCK_REALTIME at the call's start: reserved minus that is the
 *            pickup, as bench/workers' enqueue call start -> handler start
 *
 * One JSON line per phase on stdout; errors on stderr, exit status 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"

#define MAX_THREADS 64
#define LINE_MAX_   256

const char bench_program[] = "usher-bench-beanstalkd";

typedef struct conn {
    int fd;
    size_t len; /* bytes in buf */
    char buf[4 * BENCH_PAYLOAD_BYTES];
} conn;

typedef struct opts {
    long long port, jobs, producers, consumers, rate, seconds;
} opts;

/* A failure with no errno to tell (a reply, a timeout); returns 1, the exit status. */
static int fail(const char *what)
{
    fprintf(stderr, "%s: %s\n", bench_program, what);
    return 1;
}

/* A failed system call. */
static int fail_sys(const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", bench_program, what, strerror(errno));
    return 1;
}

static int conn_open(conn *c, int port)
{
    struct sockaddr_in to = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int one = 1;

    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&to, sizeof(to)) != 0 ||
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        return fail_sys("connect to beanstalkd");
    }
    return 0;
}

static int send_all(conn *c, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail_sys("send");
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads until buf holds at least want bytes. */
static int fill(conn *c, size_t want)
{
    while (c->len < want) {
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || c->len + (size_t)n > sizeof(c->buf))
            return fail_sys("recv");
        c->len += (size_t)n;
    }
    return 0;
}

/* Drops the first n bytes of buf. */
static void consume(conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* The next reply line, without its CRLF, into line. */
static int read_line(conn *c, char *line, size_t cap)
{
    for (;;) {
        char *end = memchr(c->buf, '\n', c->len);

        if (end != NULL) {
            size_t n = (size_t)(end - c->buf) + 1;

            if (n < 2 || n - 2 >= cap)
                return fail("reply line");
            memcpy(line, c->buf, n - 2);
            line[n - 2] = '\0';
            consume(c, n);
            return 0;
        }
        if (fill(c, c->len + 1) != 0)
            return 1;
    }
}

/* Sends a command line and reads its one-line reply. */
static int command(conn *c, const char *cmd, char *reply, size_t cap)
{
    return send_all(c, cmd, strlen(cmd)) != 0 ? 1 : read_line(c, reply, cap);
}

static int put(conn *c, const char *body)
{
    char head[LINE_MAX_], reply[LINE_MAX_];
    size_t len = strlen(body);
    int n = snprintf(head, sizeof(head), "put 1024 0 60 %zu\r\n", len);

    if (send_all(c, head, (size_t)n) != 0 || send_all(c, body, len) != 0 ||
        send_all(c, "\r\n", 2) != 0 || read_line(c, reply, sizeof(reply)) != 0)
        return 1;
    return strncmp(reply, "INSERTED ", 9) == 0 ? 0 : fail(reply);
}

/*
 * reserve-with-timeout: 0 with *id and the body (NUL-terminated) when a job
 * came, 0 with *id = 0 on TIMED_OUT, 1 on an error.
 */
static int reserve(conn *c, int timeout_s, long long *id, char *body, size_t cap)
{
    char cmd[64], reply[LINE_MAX_];
    size_t bytes;

    *id = 0;
    snprintf(cmd, sizeof(cmd), "reserve-with-timeout %d\r\n", timeout_s);
    if (command(c, cmd, reply, sizeof(reply)) != 0)
        return 1;
    if (strcmp(reply, "TIMED_OUT") == 0)
        return 0;
    if (sscanf(reply, "RESERVED %lld %zu", id, &bytes) != 2 || bytes + 1 > cap)
        return fail(reply);
    if (fill(c, bytes + 2) != 0)
        return 1;
    memcpy(body, c->buf, bytes);
    body[bytes] = '\0';
    consume(c, bytes + 2);
    return 0;
}

static int delete_job(conn *c, long long id)
{
    char cmd[64], reply[LINE_MAX_];

    snprintf(cmd, sizeof(cmd), "delete %lld\r\n", id);
    if (command(c, cmd, reply, sizeof(reply)) != 0)
        return 1;
    return strcmp(reply, "DELETED") == 0 ? 0 : fail(reply);
}

/* ------------------------------------------------------------------ threads */

typedef struct shared {
    const opts *o;
    atomic_llong to_put, done, failed;
    atomic_bool stop;
    int64_t *lat_us; /* latency: per job, by its sequence number */
} shared;

/* A thread's own connection; a failure counts for the phase. */
static bool thread_conn(shared *s, conn *c)
{
    if (conn_open(c, (int)s->o->port) == 0)
        return true;
    atomic_fetch_add(&s->failed, 1);
    return false;
}

static void *producer_main(void *arg)
{
    shared *s = arg;
    char body[BENCH_PAYLOAD_BYTES + 1];
    conn c;

    if (!thread_conn(s, &c))
        return NULL;
    bench_make_payload(body, sizeof(body), 0, 0);
    while (atomic_fetch_sub(&s->to_put, 1) > 0) {
        if (put(&c, body) != 0) {
            atomic_fetch_add(&s->failed, 1);
            break;
        }
    }
    close(c.fd);
    return NULL;
}

/* Reserves and deletes until told to stop; in the latency phase notes each pickup. */
static void *consumer_main(void *arg)
{
    shared *s = arg;
    char body[BENCH_PAYLOAD_BYTES + 64];
    conn c;

    if (!thread_conn(s, &c))
        return NULL;
    while (!atomic_load(&s->stop)) {
        long long id, seq;
        int64_t sent_us, now_us;

        if (reserve(&c, 1, &id, body, sizeof(body)) != 0) {
            atomic_fetch_add(&s->failed, 1);
            break;
        }
        if (id == 0)
            continue;
        now_us = bench_wall_us();
        if (s->lat_us != NULL &&
            sscanf(body, "{\"seq\":%lld,\"sent_ns\":%" SCNd64, &seq, &sent_us) == 2 && seq >= 0 &&
            seq < s->o->rate * s->o->seconds)
            s->lat_us[seq] = now_us - sent_us;
        if (delete_job(&c, id) != 0) {
            atomic_fetch_add(&s->failed, 1);
            break;
        }
        atomic_fetch_add(&s->done, 1);
    }
    close(c.fd);
    return NULL;
}

/* Starts n threads running fn; how many started (all of them, or a failure was reported). */
static long long start(pthread_t *t, long long n, void *(*fn)(void *), shared *s)
{
    for (long long i = 0; i < n; i++) {
        if (pthread_create(&t[i], NULL, fn, s) != 0) {
            fail("cannot start a thread");
            return i;
        }
    }
    return n;
}

static void join(pthread_t *t, long long n)
{
    for (long long i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

/* Waits (polling every ms) until done reaches want or a thread failed. */
static int wait_done(shared *s, long long want)
{
    int64_t deadline = bench_now_ns() + 600 * NS_PER_S;

    while (atomic_load(&s->done) < want && atomic_load(&s->failed) == 0) {
        if (bench_now_ns() > deadline)
            return fail("jobs did not come back within 600 s");
        bench_sleep_until(bench_now_ns() + NS_PER_MS);
    }
    return atomic_load(&s->failed) != 0 ? 1 : 0;
}

/* ------------------------------------------------------------------- phases */

static int phase_put_and_drain(const opts *o)
{
    pthread_t t[MAX_THREADS];
    shared s = { .o = o };
    int64_t t0, t1, t2;
    long long started;
    int rc;

    atomic_store(&s.to_put, o->jobs);
    t0 = bench_now_ns();
    started = start(t, o->producers, producer_main, &s);
    join(t, started);
    t1 = bench_now_ns();
    if (started < o->producers || atomic_load(&s.failed) != 0)
        return 1;
    printf("{\"bench\":\"beanstalkd_put\",\"jobs\":%lld,\"producers\":%lld,\"seconds\":%.3f,"
           "\"jobs_per_s\":%.0f}\n",
           o->jobs, o->producers, bench_seconds_between(t0, t1),
           (double)o->jobs / bench_seconds_between(t0, t1));
    started = start(t, o->consumers, consumer_main, &s);
    rc = started < o->consumers ? 1 : wait_done(&s, o->jobs);
    t2 = bench_now_ns();
    atomic_store(&s.stop, true);
    join(t, started);
    if (rc != 0)
        return 1;
    printf("{\"bench\":\"beanstalkd_drain\",\"jobs\":%lld,\"consumers\":%lld,\"seconds\":%.3f,"
           "\"jobs_per_s\":%.0f}\n",
           o->jobs, o->consumers, bench_seconds_between(t1, t2),
           (double)o->jobs / bench_seconds_between(t1, t2));
    return 0;
}

static int phase_latency(const opts *o)
{
    long long n = o->rate * o->seconds;
    pthread_t t[MAX_THREADS];
    shared s = { .o = o, .lat_us = calloc((size_t)n, sizeof(int64_t)) };
    int64_t *call_ns = calloc((size_t)n, sizeof(*call_ns)), period = NS_PER_S / o->rate, t0;
    char body[BENCH_PAYLOAD_BYTES + 1];
    conn c = { .fd = -1 };
    long long started = 0;
    int rc = s.lat_us == NULL || call_ns == NULL ? fail("out of memory") : 0;

    if (rc == 0) {
        started = start(t, o->consumers, consumer_main, &s);
        rc = started < o->consumers;
    }
    if (rc == 0)
        rc = conn_open(&c, (int)o->port);
    t0 = bench_now_ns();
    for (long long i = 0; i < n && rc == 0; i++) {
        int64_t call;

        bench_sleep_until(t0 + i * period);
        bench_make_payload(body, sizeof(body), i, bench_wall_us());
        call = bench_now_ns();
        rc = put(&c, body);
        call_ns[i] = bench_now_ns() - call;
    }
    if (rc == 0)
        rc = wait_done(&s, n);
    atomic_store(&s.stop, true);
    join(t, started);
    if (c.fd >= 0)
        close(c.fd);
    for (long long i = 0; i < n && rc == 0; i++) {
        if (s.lat_us[i] <= 0)
            rc = fail("a job's pickup was not seen");
    }
    if (rc == 0) {
        printf("{\"bench\":\"beanstalkd_latency\",\"rate\":%lld,\"jobs\":%lld,\"consumers\":%lld,",
               o->rate, n, o->consumers);
        bench_print_latency(s.lat_us, n, 1000, call_ns, n);
    }
    free(s.lat_us);
    free(call_ns);
    return rc;
}

int main(int argc, char **argv)
{
    opts o = {
        .port = 0, .jobs = 20000, .producers = 8, .consumers = 16, .rate = 200, .seconds = 10
    };
    const bench_int_option ints[] = {
        { "--port", &o.port, 1, 65535 },
        { "--jobs", &o.jobs, 1, 10000000 },
        { "--producers", &o.producers, 1, MAX_THREADS },
        { "--consumers", &o.consumers, 1, MAX_THREADS },
        { "--rate", &o.rate, 1, 100000 },
        { "--seconds", &o.seconds, 1, 3600 },
    };
    int rc = bench_parse_options(argc, argv, ints, sizeof(ints) / sizeof(ints[0]), NULL, 0);

    if (rc == 0 && o.port == 0)
        rc = -1;
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr,
                    "usage: %s --port P [--jobs N] [--producers N] [--consumers N]"
                    " [--rate N] [--seconds N]\n",
                    bench_program);
        return 1;
    }
    rc = phase_put_and_drain(&o);
    if (rc == 0)
        rc = phase_latency(&o);
    return rc;
}
