/*
 * usher-bench-api-hold: holds many keep-alive clients open on usher-api, as a
 * large event's attendees' apps do (issue 17, goal 7: 20,000 of them), each
 * reading one cached route (an event's details) every --interval-s seconds,
 * a little under the server's idle timeout, so that every connection stays
 * open. bench/api runs it beside a load scenario, whose own figures then
 * show what the held connections cost the others.
 *
 *   usher-bench-api-hold --url http://HOST:PORT --path /v1/events/ID
 *       [--connections N] [--seconds N] [--interval-s N] [--ramp-per-s N]
 *       [--first-address A.B.C.D] [--per-address N] [--ready-file PATH]
 *
 * Connections open at --ramp-per-s (default 2,000) from loopback source
 * addresses --first-address (127.0.0.2) upwards, --per-address (1,000) on
 * each: usher-api limits the connections of one address ([api]
 * connections_per_address, 1,024 by default), as a real crowd comes from
 * many. Each sends its first read at once, then one every --interval-s
 * (default 20) at its own phase. Once every connection has had its first
 * answer (or the ramp failed), --ready-file is created. After --seconds of
 * holding (from then), one JSON line: connections asked for, established
 * (answered 200 at least once), closed by the server while held, reads
 * sent, answered 200, failed, and the reads' latency p50/p99/max from
 * their scheduled time. Raises its own descriptor limit as far as it may.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_common.h"

const char bench_program[] = "usher-bench-api-hold";

#define TIMEOUT_S 60

typedef struct hold hold;

typedef struct hold_conn {
    hold *h;
    struct evhttp_connection *evcon;
    struct event *timer;
    int64_t sched_ns; /* when the read in flight was due */
    bool established;
} hold_conn;

struct hold {
    struct event_base *base;
    char host[256], hostport[300];
    const char *path, *ready_file;
    long long port, connections, seconds, interval_s, ramp_per_s, per_address;
    struct in_addr first_address;
    hold_conn *conns;
    long long opened, established, closed, sent, ok, failed;
    int64_t *lat_ns;
    long long nlat, lat_cap;
    struct event *ramp, *end;
    int64_t start_ns, ready_ns;
    bool ready, stopping;
};

static void read_done(struct evhttp_request *req, void *arg);

static void send_read(evutil_socket_t fd, short what, void *arg)
{
    hold_conn *c = arg;
    hold *h = c->h;
    struct evhttp_request *req = evhttp_request_new(read_done, c);

    (void)fd;
    (void)what;
    if (h->stopping)
        return;
    if (req == NULL ||
        evhttp_add_header(evhttp_request_get_output_headers(req), "Host", h->hostport) != 0) {
        if (req != NULL)
            evhttp_request_free(req);
        h->failed++;
        return;
    }
    if (c->sched_ns == 0)
        c->sched_ns = bench_now_ns();
    if (evhttp_make_request(c->evcon, req, EVHTTP_REQ_GET, h->path) != 0) {
        h->failed++; /* libevent freed req */
        return;
    }
    h->sent++;
}

static void record(hold *h, int64_t ns)
{
    if (h->nlat == h->lat_cap) {
        long long cap = h->lat_cap != 0 ? h->lat_cap * 2 : 65536;
        int64_t *lat = realloc(h->lat_ns, (size_t)cap * sizeof(*lat));

        if (lat == NULL)
            return; /* the figure loses a sample; the counts stay exact */
        h->lat_ns = lat;
        h->lat_cap = cap;
    }
    h->lat_ns[h->nlat++] = ns;
}

static void check_ready(hold *h)
{
    if (h->ready || h->opened < h->connections || h->established + h->failed < h->connections)
        return;
    h->ready = true;
    h->ready_ns = bench_now_ns();
    fprintf(stderr, "%s: %lld of %lld connections established in %.1f s\n", bench_program,
            h->established, h->connections, bench_seconds_between(h->start_ns, h->ready_ns));
    if (h->ready_file != NULL) {
        FILE *f = fopen(h->ready_file, "w");

        if (f == NULL || fclose(f) != 0)
            fprintf(stderr, "%s: cannot create %s: %s\n", bench_program, h->ready_file,
                    strerror(errno));
    }
    struct timeval hold_for = { .tv_sec = (time_t)h->seconds };
    if (evtimer_add(h->end, &hold_for) != 0)
        event_base_loopbreak(h->base);
}

static void read_done(struct evhttp_request *req, void *arg)
{
    hold_conn *c = arg;
    hold *h = c->h;
    int64_t now = bench_now_ns();
    int status = req != NULL ? evhttp_request_get_response_code(req) : 0;

    if (status == 200) {
        h->ok++;
        record(h, now - c->sched_ns);
        if (!c->established) {
            c->established = true;
            h->established++;
        }
    } else {
        h->failed++;
    }
    check_ready(h);
    if (h->stopping)
        return;
    /* The next read at this connection's own phase, a fixed step after the last one due. */
    c->sched_ns += h->interval_s * NS_PER_S;
    if (c->sched_ns < now)
        c->sched_ns = now;
    struct timeval in = { .tv_sec = (c->sched_ns - now) / NS_PER_S,
                          .tv_usec = (c->sched_ns - now) % NS_PER_S / 1000 };
    if (evtimer_add(c->timer, &in) != 0)
        h->failed++;
}

/* The server (or the network) closed a held connection: libevent reconnects at the next read. */
static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    hold_conn *c = arg;

    (void)evcon;
    if (!c->h->stopping && c->established)
        c->h->closed++;
}

static int open_one(hold *h)
{
    hold_conn *c = &h->conns[h->opened];
    struct in_addr a = { .s_addr = htonl(ntohl(h->first_address.s_addr) +
                                         (uint32_t)(h->opened / h->per_address)) };
    char local[INET_ADDRSTRLEN];

    c->h = h;
    c->evcon = evhttp_connection_base_new(h->base, NULL, h->host, (uint16_t)h->port);
    c->timer = evtimer_new(h->base, send_read, c);
    if (c->evcon == NULL || c->timer == NULL ||
        inet_ntop(AF_INET, &a, local, sizeof(local)) == NULL)
        return -1;
    evhttp_connection_set_local_address(c->evcon, local);
    evhttp_connection_set_timeout(c->evcon, TIMEOUT_S);
    evhttp_connection_set_retries(c->evcon, 0);
    evhttp_connection_set_closecb(c->evcon, conn_closed, c);
    h->opened++;
    /* Its phase is when the ramp opens it: the reads spread as the ramp did. */
    c->sched_ns = 0;
    send_read(-1, 0, c);
    return 0;
}

#define RAMP_TICK_MS 10

static void ramp(evutil_socket_t fd, short what, void *arg)
{
    hold *h = arg;
    long long due =
        (long long)((double)h->ramp_per_s * bench_seconds_between(h->start_ns, bench_now_ns())) + 1;

    (void)fd;
    (void)what;
    while (h->opened < h->connections && h->opened < due) {
        if (open_one(h) != 0) {
            fprintf(stderr, "%s: cannot open connection %lld\n", bench_program, h->opened);
            event_base_loopbreak(h->base);
            return;
        }
    }
    if (h->opened < h->connections) {
        struct timeval tick = { .tv_usec = RAMP_TICK_MS * 1000 };

        if (evtimer_add(h->ramp, &tick) != 0)
            event_base_loopbreak(h->base);
    }
    check_ready(h);
}

static void end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(((hold *)arg)->base);
}

/* Room for n connections and a margin: the soft limit up to the hard one, which root may raise. */
static int raise_nofile(long long n)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)n + 256;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur >= need)
        return 0;
    rl.rlim_cur = need;
    if (rl.rlim_max < need)
        rl.rlim_max = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "%s: cannot raise the descriptor limit to %llu: %s\n", bench_program,
                (unsigned long long)need, strerror(errno));
        return -1;
    }
    return 0;
}

static int parse_url(hold *h, const char *url)
{
    const char *rest = strncmp(url, "http://", 7) == 0 ? url + 7 : NULL;
    const char *colon = rest != NULL ? strrchr(rest, ':') : NULL;
    char *endp;

    if (colon == NULL || (size_t)(colon - rest) >= sizeof(h->host))
        return -1;
    memcpy(h->host, rest, (size_t)(colon - rest));
    h->host[colon - rest] = '\0';
    h->port = strtol(colon + 1, &endp, 10);
    if (h->port <= 0 || h->port > 65535 || (*endp != '\0' && *endp != '/'))
        return -1;
    snprintf(h->hostport, sizeof(h->hostport), "%s:%lld", h->host, h->port);
    return 0;
}

static void print_result(hold *h)
{
    qsort(h->lat_ns, (size_t)h->nlat, sizeof(*h->lat_ns), bench_compare_int64);
    printf("{\"bench\":\"api_hold\",\"connections\":%lld,\"established\":%lld,"
           "\"ramp_s\":%.1f,\"held_s\":%lld,\"closed_while_held\":%lld,\"reads_sent\":%lld,"
           "\"reads_ok\":%lld,\"failed\":%lld,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}\n",
           h->connections, h->established,
           h->ready ? bench_seconds_between(h->start_ns, h->ready_ns) : -1.0, h->seconds, h->closed,
           h->sent, h->ok, h->failed, bench_percentile_ms(h->lat_ns, h->nlat, 50, NS_PER_MS),
           bench_percentile_ms(h->lat_ns, h->nlat, 99, NS_PER_MS),
           h->nlat > 0 ? (double)h->lat_ns[h->nlat - 1] / NS_PER_MS : 0.0);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: %s --url http://HOST:PORT --path PATH [--connections N] "
            "[--seconds N] [--interval-s N] [--ramp-per-s N] [--first-address A.B.C.D] "
            "[--per-address N] [--ready-file PATH]\n",
            bench_program);
    return 2;
}

int main(int argc, char **argv)
{
    hold h = { .connections = 20000,
               .seconds = 60,
               .interval_s = 20,
               .ramp_per_s = 2000,
               .per_address = 1000 };
    const char *url = NULL, *first = "127.0.0.2";
    const bench_int_option ints[] = {
        { "--connections", &h.connections, 1, 1000000 },
        { "--seconds", &h.seconds, 1, 86400 },
        { "--interval-s", &h.interval_s, 1, 3600 },
        { "--ramp-per-s", &h.ramp_per_s, 1, 1000000 },
        { "--per-address", &h.per_address, 1, 65000 },
    };
    const bench_text_option texts[] = {
        { "--url", &url },
        { "--path", &h.path },
        { "--first-address", &first },
        { "--ready-file", &h.ready_file },
    };
    int rc = bench_parse_options(argc, argv, ints, sizeof(ints) / sizeof(ints[0]), texts,
                                 sizeof(texts) / sizeof(texts[0]));

    if (rc > 0)
        return rc;
    if (rc < 0 || url == NULL || h.path == NULL || parse_url(&h, url) != 0 ||
        inet_pton(AF_INET, first, &h.first_address) != 1)
        return usage();
    if (raise_nofile(h.connections) != 0)
        return 1;
    h.conns = calloc((size_t)h.connections, sizeof(*h.conns));
    h.base = event_base_new();
    if (h.conns == NULL || h.base == NULL)
        return 1;
    h.ramp = evtimer_new(h.base, ramp, &h);
    h.end = evtimer_new(h.base, end, &h);
    if (h.ramp == NULL || h.end == NULL)
        return 1;
    h.start_ns = bench_now_ns();
    ramp(-1, 0, &h);
    event_base_dispatch(h.base);
    h.stopping = true;
    print_result(&h);
    rc = h.ready && h.established == h.connections ? 0 : 1;
    for (long long i = 0; i < h.opened; i++) {
        evhttp_connection_free(h.conns[i].evcon);
        event_free(h.conns[i].timer);
    }
    event_free(h.ramp);
    event_free(h.end);
    event_base_free(h.base);
    free(h.conns);
    free(h.lat_ns);
    return rc;
}
