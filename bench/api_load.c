/*
 * usher-bench-api-load: an open-loop load generator for usher-api, for the
 * seed's load-test scenarios. wrk is closed-loop: a slow answer delays the
 * next request, so the latency a queue of waiting users would see is never
 * measured (coordinated omission). Here each request type has its own
 * schedule (a timer per type, a fixed rate times the scenario's factor at
 * that moment), requests go out on a pool of keep-alive connections (a new
 * one when all are busy, up to --connections; past that they wait in a
 * queue), and a request's latency runs from its scheduled send time to the
 * end of its answer, queueing in this client included.
 *
 *   usher-bench-api-load --url http://HOST:PORT --profile steady|peak|spike|endurance
 *       [--seconds N] [--scale X] [--connections N] [--drain-s N] [--tag TEXT]
 *       [--event ID --ticket-type ID]            registration, POST (fresh email each)
 *       [--scanner TOKEN --codes FILE]           check-in, POST (one code each, never reused)
 *       [--access-codes FILE]                    attendees' codes, cycled by the two GETs:
 *       [--session ID]                           session access, GET ?ticket_code=
 *       [--content ID]                           content download, GET ?ticket_code=
 *       [--sold-out-event ID --sold-out-ticket-type ID]
 *                                                a sold-out event: its details, GET, and
 *                                                registrations into it, POST (each a 409)
 *
 * A type runs when its options are given, at the seed's peak rate (100, 50,
 * 200 and 500 a second; a sold-out event's reads and refused registrations
 * 200 each, twice the registrations: buyers trying again) x --scale x the profile's
 * factor: steady 0.5, peak
 * 1, endurance 0.7, spike 1 with 4 in the middle third of the run. Defaults:
 * 30 s (spike 45 s, endurance 60 s), scale 1 (any of 0.01..10000), 512 connections. After the
 * run, answers still due get --drain-s (default 10) seconds; those that do
 * not come are counted as unfinished. Prints one JSON line per type and one
 * for all of them together (api_load_report.c); options in api_load_opts.c.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_load.h"

#define TIMEOUT_S 30

typedef struct load load;

typedef struct load_conn {
    struct evhttp_connection *evcon;
    struct load_conn *next_idle;
} load_conn;

/* A request from its scheduled time to its answer; on l->pending while sent. */
typedef struct pending {
    load *l;
    int type;
    int64_t sched_ns;
    long long seq; /* the type's request number: its email or ticket code */
    load_conn *conn;
    struct pending *prev, *next;
} pending;

typedef struct type_timer {
    load *l;
    int type;
    struct event *ev;
} type_timer;

struct load {
    load_opts o;
    struct event_base *base;
    type_timer timers[LOAD_NTYPES];
    struct event *end, *deadline;
    load_stats stats[LOAD_NTYPES];
    int64_t next_ns[LOAD_NTYPES], start_ns, end_ns;
    long long seq[LOAD_NTYPES];
    load_conn conns[LOAD_CONNECTIONS_MAX], *idle;
    int nconns;
    pending **backlog; /* a ring of requests waiting for a connection */
    size_t backlog_cap, backlog_head, backlog_len;
    pending *sent; /* requests on the wire, to count and free what never answers */
    long long inflight;
    bool failed; /* an allocation failed: the figures are not usable */
};

static const int expected_status[LOAD_NTYPES] = { 201, 200, 200, 200, 200, 409 };

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct timeval timeval_of(int64_t ns)
{
    if (ns < 0)
        ns = 0;
    return (struct timeval){ .tv_sec = ns / 1000000000LL, .tv_usec = ns % 1000000000LL / 1000 };
}

/* The profile's rate factor at t_ns into the run. */
static double factor(const load_opts *o, int64_t t_ns)
{
    double t = (double)t_ns / 1e9, third = (double)o->seconds / 3;

    switch (o->profile) {
    case LOAD_STEADY:
        return 0.5;
    case LOAD_ENDURANCE:
        return 0.7;
    case LOAD_SPIKE:
        return t >= third && t < 2 * third ? 4.0 : 1.0;
    default:
        return 1.0;
    }
}

static void finish_if_done(load *l)
{
    if (now_ns() >= l->end_ns && l->inflight == 0 && l->backlog_len == 0)
        event_base_loopbreak(l->base);
}

static void request_done(struct evhttp_request *req, void *arg);

/* Body bytes as they arrive: libevent drains them after this returns, so a
 * 100 KB download is never held whole (nothing here reads the bodies). */
static void body_chunk(struct evhttp_request *req, void *arg)
{
    (void)req;
    (void)arg;
}

/* A registration into event's ticket_type, a fresh email each (WHO-TAG-SEQ); 0 or -1. */
static int registration(struct evkeyvalq *h, struct evbuffer *body, char *path, size_t len,
                        long long event, long long ticket_type, const char *who, const char *tag,
                        long long seq)
{
    snprintf(path, len, "/v1/events/%lld/registrations", event);
    if (evhttp_add_header(h, "Content-Type", "application/json") != 0 ||
        evbuffer_add_printf(body,
                            "{\"ticket_type_id\":%lld,\"name\":\"Load Bench\","
                            "\"email\":\"%s-%s-%lld@bench.example.org\"}",
                            ticket_type, who, tag, seq) < 0)
        return -1;
    return 0;
}

/* Writes p's request into req; 0, or -1 when a header or the body could not be added. */
static int build(load *l, pending *p, struct evhttp_request *req, char *path, size_t len)
{
    const load_opts *o = &l->o;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *body = evhttp_request_get_output_buffer(req);
    long long seq = p->seq;
    int rc = evhttp_add_header(h, "Host", o->host);

    switch (p->type) {
    case LOAD_REGISTRATION:
        rc |= registration(h, body, path, len, o->event, o->ticket_type, "load", o->tag, seq);
        break;
    case LOAD_CHECKIN:
        snprintf(path, len, "/v1/checkins");
        rc |= evhttp_add_header(h, "Content-Type", "application/json");
        rc |= evhttp_add_header(h, "Authorization", o->scanner_auth);
        rc |= evbuffer_add_printf(body, "{\"ticket_code\":\"%s\",\"gate\":\"load\"}",
                                  o->codes.lines[seq]) < 0;
        break;
    case LOAD_ACCESS:
        snprintf(path, len, "/v1/sessions/%lld/access?ticket_code=%s", o->session,
                 o->access_codes.lines[seq % o->access_codes.n]);
        break;
    case LOAD_CONTENT:
        snprintf(path, len, "/v1/content/%lld?ticket_code=%s", o->content,
                 o->access_codes.lines[seq % o->access_codes.n]);
        break;
    case LOAD_EVENT:
        snprintf(path, len, "/v1/events/%lld", o->sold_out_event);
        break;
    default:
        rc |= registration(h, body, path, len, o->sold_out_event, o->sold_out_ticket_type, "late",
                           o->tag, seq);
        break;
    }
    return rc != 0 ? -1 : 0;
}

/* Sends p on p->conn; false when it could not be sent. */
static bool send_on(load *l, pending *p)
{
    struct evhttp_request *req = evhttp_request_new(request_done, p);
    char path[256];
    enum evhttp_cmd_type method =
        p->type == LOAD_REGISTRATION || p->type == LOAD_CHECKIN || p->type == LOAD_SOLD_OUT
            ? EVHTTP_REQ_POST
            : EVHTTP_REQ_GET;

    if (req == NULL)
        return false;
    evhttp_request_set_chunked_cb(req, body_chunk);
    if (build(l, p, req, path, sizeof(path)) != 0) {
        evhttp_request_free(req);
        return false;
    }
    if (evhttp_make_request(p->conn->evcon, req, method, path) != 0)
        return false; /* libevent has freed req */
    p->prev = NULL;
    p->next = l->sent;
    if (l->sent != NULL)
        l->sent->prev = p;
    l->sent = p;
    l->inflight++;
    l->stats[p->type].sent++;
    return true;
}

/* A free connection (reused, else a new one while under the cap), or NULL. */
static load_conn *take_conn(load *l)
{
    load_conn *c = l->idle;

    if (c != NULL) {
        l->idle = c->next_idle;
        return c;
    }
    if (l->nconns == l->o.connections)
        return NULL;
    c = &l->conns[l->nconns];
    c->evcon = evhttp_connection_base_new(l->base, NULL, l->o.host_name, (uint16_t)l->o.port);
    if (c->evcon == NULL)
        return NULL;
    evhttp_connection_set_timeout(c->evcon, TIMEOUT_S);
    evhttp_connection_set_retries(c->evcon, 0);
    l->nconns++;
    return c;
}

static void give_back(load *l, load_conn *c)
{
    c->next_idle = l->idle;
    l->idle = c;
}

static void fail(load *l, pending *p, const char *why)
{
    load_stats_error(&l->stats[p->type], why);
    free(p);
}

static bool backlog_push(load *l, pending *p)
{
    if (l->backlog_len == l->backlog_cap) {
        size_t cap = l->backlog_cap != 0 ? l->backlog_cap * 2 : 1024;
        pending **ring = malloc(cap * sizeof(*ring));

        if (ring == NULL)
            return false;
        for (size_t i = 0; i < l->backlog_len; i++)
            ring[i] = l->backlog[(l->backlog_head + i) % l->backlog_cap];
        free(l->backlog);
        l->backlog = ring;
        l->backlog_cap = cap;
        l->backlog_head = 0;
    }
    l->backlog[(l->backlog_head + l->backlog_len++) % l->backlog_cap] = p;
    return true;
}

static pending *backlog_pop(load *l)
{
    pending *p = l->backlog[l->backlog_head];

    l->backlog_head = (l->backlog_head + 1) % l->backlog_cap;
    l->backlog_len--;
    return p;
}

/* The request of type scheduled at sched_ns: sent now on a free connection, or queued. */
static void issue(load *l, int type, int64_t sched_ns)
{
    pending *p;

    l->stats[type].scheduled++;
    if (type == LOAD_CHECKIN && l->seq[type] >= l->o.codes.n) {
        load_stats_error(&l->stats[type], "ran out of ticket codes");
        return;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        l->failed = true;
        load_stats_error(&l->stats[type], "out of memory");
        return;
    }
    *p = (pending){ .l = l, .type = type, .sched_ns = sched_ns, .seq = l->seq[type]++ };
    if (l->backlog_len == 0 && (p->conn = take_conn(l)) != NULL) {
        if (!send_on(l, p)) {
            give_back(l, p->conn);
            fail(l, p, "cannot send");
        }
    } else if (!backlog_push(l, p)) {
        l->failed = true;
        fail(l, p, "out of memory");
    }
}

/* Gives conn to the oldest waiting request, or back to the idle list. */
static void release(load *l, load_conn *conn)
{
    while (l->backlog_len > 0) {
        pending *p = backlog_pop(l);

        p->conn = conn;
        if (send_on(l, p))
            return;
        fail(l, p, "cannot send");
    }
    give_back(l, conn);
}

static void request_done(struct evhttp_request *req, void *arg)
{
    pending *p = arg;
    load *l = p->l;
    load_conn *conn = p->conn;
    int status = req != NULL ? evhttp_request_get_response_code(req) : 0;

    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        l->sent = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    l->inflight--;
    if (status == expected_status[p->type]) {
        if (load_stats_add(&l->stats[p->type], now_ns() - p->sched_ns) != 0)
            l->failed = true;
        free(p);
    } else {
        char why[32];

        if (status == 0)
            snprintf(why, sizeof(why), "no answer");
        else
            snprintf(why, sizeof(why), "status %d", status);
        fail(l, p, why);
    }
    release(l, conn);
    finish_if_done(l);
}

/* A type's timer: sends every request now due, and waits for the next one. */
static void tick(evutil_socket_t fd, short what, void *arg)
{
    type_timer *tt = arg;
    load *l = tt->l;
    int t = tt->type;
    int64_t now = now_ns();
    struct timeval tv;

    (void)fd;
    (void)what;
    while (l->next_ns[t] <= now && l->next_ns[t] < l->end_ns) {
        double rate = load_peak_rate[t] * l->o.scale * factor(&l->o, l->next_ns[t] - l->start_ns);

        issue(l, t, l->next_ns[t]);
        l->next_ns[t] += (int64_t)(1e9 / rate);
    }
    if (l->next_ns[t] < l->end_ns) {
        tv = timeval_of(l->next_ns[t] - now);
        evtimer_add(tt->ev, &tv);
    }
}

static void end_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    finish_if_done(arg);
}

/* The drain time is over: what is still waiting never answered in time. */
static void deadline_tick(evutil_socket_t fd, short what, void *arg)
{
    load *l = arg;

    (void)fd;
    (void)what;
    event_base_loopbreak(l->base);
}

/* Counts and frees the requests that were not answered. */
static void count_unfinished(load *l)
{
    while (l->backlog_len > 0) {
        pending *p = backlog_pop(l);

        l->stats[p->type].unfinished++;
        free(p);
    }
    for (pending *p = l->sent, *next; p != NULL; p = next) {
        next = p->next;
        l->stats[p->type].unfinished++;
        free(p); /* its request is freed with its connection */
    }
    l->sent = NULL;
    free(l->backlog);
    l->backlog = NULL;
}

static int run(load *l)
{
    struct timeval end, deadline;

    l->start_ns = now_ns();
    l->end_ns = l->start_ns + l->o.seconds * 1000000000LL;
    end = timeval_of(l->end_ns - l->start_ns);
    deadline = timeval_of(l->end_ns - l->start_ns + l->o.drain_s * 1000000000LL);
    l->end = evtimer_new(l->base, end_tick, l);
    l->deadline = evtimer_new(l->base, deadline_tick, l);
    if (l->end == NULL || l->deadline == NULL || evtimer_add(l->end, &end) != 0 ||
        evtimer_add(l->deadline, &deadline) != 0)
        return -1;
    for (int t = 0; t < LOAD_NTYPES; t++) {
        struct timeval zero = { 0, 0 };

        if (!l->o.enabled[t])
            continue;
        l->timers[t] = (type_timer){ .l = l, .type = t };
        l->timers[t].ev = evtimer_new(l->base, tick, &l->timers[t]);
        l->next_ns[t] = l->start_ns;
        if (l->timers[t].ev == NULL || evtimer_add(l->timers[t].ev, &zero) != 0)
            return -1;
    }
    return event_base_dispatch(l->base) < 0 ? -1 : 0;
}

static void load_free(load *l)
{
    count_unfinished(l);
    for (int i = 0; i < l->nconns; i++)
        evhttp_connection_free(l->conns[i].evcon);
    for (int t = 0; t < LOAD_NTYPES; t++) {
        if (l->timers[t].ev != NULL)
            event_free(l->timers[t].ev);
    }
    if (l->end != NULL)
        event_free(l->end);
    if (l->deadline != NULL)
        event_free(l->deadline);
    if (l->base != NULL)
        event_base_free(l->base);
    for (int t = 0; t < LOAD_NTYPES; t++)
        free(l->stats[t].lat_ns);
    free(l->o.codes.text);
    free(l->o.codes.lines);
    free(l->o.access_codes.text);
    free(l->o.access_codes.lines);
    free(l);
}

int main(int argc, char **argv)
{
    load *l = calloc(1, sizeof(*l));
    int rc = 1;

    if (l == NULL) {
        fprintf(stderr, "usher-bench-api-load: out of memory\n");
        return 1;
    }
    rc = load_parse_options(argc, argv, &l->o);
    if (rc == 0) {
        signal(SIGPIPE, SIG_IGN);
        l->base = event_base_new();
        if (l->base == NULL || run(l) != 0) {
            fprintf(stderr, "usher-bench-api-load: cannot run the event loop\n");
            rc = 1;
        } else {
            count_unfinished(l);
            rc = load_report(&l->o, l->stats, (double)l->o.seconds);
            if (l->failed) {
                fprintf(stderr, "usher-bench-api-load: out of memory during the run\n");
                rc = 1;
            }
        }
    }
    load_free(l);
    return rc;
}
