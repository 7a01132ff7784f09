/*
 * How the guard sits in front of evhttp (libevent 2.1.12, which has no
 * hook before a request's headers are read): evhttp_set_bevcb lets us make
 * each connection's bufferevent, and we give evhttp a filter bufferevent
 * over the socket's own. Its input filter (read_in) sees the bytes first:
 * it holds back a head until it is complete, reads it (api/http_head.h),
 * decides, and moves what passes into evhttp's input with
 * evbuffer_remove_buffer (chains move, nothing is copied); body bytes move
 * as they come, counted against the declared Content-Length so the next
 * head is found where evhttp will look for it. The filter's free_context
 * (conn_free) tells us when evhttp has let the connection go.
 *
 * The output side works around two things a 2.1.12 filter does under
 * evhttp: an answer added while evhttp has writing disabled (it enables it
 * just after) is never pushed down, and the filter reports an answer
 * "written" once it is in the socket bufferevent's buffer, after which
 * evhttp may shut the socket and lose it. So write_out sends evhttp's
 * buffer to the socket itself (evbuffer_write: writev, or sendfile for a
 * file segment) and reports progress only for bytes the kernel took; the
 * socket bufferevent, whose own buffer stays empty, only tells it when the
 * socket is writable again (output_added arms that for each new answer),
 * through sock_writable rather than libevent's own callback (see there).
 *
 * A refusal is written straight to the socket, which is then shut for
 * writing; what the client still sends is read and dropped for LINGER_MS
 * or LINGER_BYTES (closing with unread data would reset the connection and
 * could destroy the answer before the client reads it), then the
 * connection is failed through evhttp's own error path. A refusal waits
 * while evhttp still owes answers to requests passed before it, so answers
 * keep their order. Deadlines, the first look at a new connection and the
 * linger share one timer per connection. Timers and filters never touch a
 * connection evhttp has freed: alive() checks that first.
 */
#include "http_guard.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event_struct.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "alloc.h"
#include "http_head.h"
#include "log.h"

#define LINGER_MS       2000
#define LINGER_BYTES    (1024 * 1024)
#define ADDRESS_BUCKETS 1024

struct api_guard {
    int64_t header_max, body_max, upload_max, inflight_max;
    int header_timeout_s, body_timeout_s, body_rate, per_address, timeout_s;
};

typedef enum conn_state {
    CONN_NEW,     /* accepted; its address not yet counted */
    CONN_HEAD,    /* reading a head (or between requests) */
    CONN_BODY,    /* passing a body on */
    CONN_CLOSING, /* refused: answer, linger, close */
} conn_state;

typedef struct conn {
    api_guard *guard;
    struct bufferevent *sock;   /* the socket's bufferevent, under the filter */
    struct bufferevent *filter; /* what evhttp holds */
    struct event timer;         /* the deadline in force, the first look, or the linger */
    conn_state state;
    api_head_scan scan;     /* the head held back so far */
    int64_t body_len;       /* the body being passed: its declared length... */
    int64_t body_left;      /* ...the bytes of it still to come */
    int64_t reserved;       /* counted in `inflight` for it */
    int pending;            /* requests passed whole whose answers are not written yet */
    bool replying, interim; /* an answer is being written; it is a 100 Continue */
    char *refusal;          /* a refusal not sent yet (waiting for pending answers) */
    size_t refusal_len;     /* its length */
    bool refused;           /* the refusal is out and the socket shut for writing */
    size_t dropped;         /* bytes read and dropped since */
    unsigned char addr[16]; /* the client's address, counted when addr_len > 0 */
    unsigned char addr_len;
} conn;

/* ---- what the loops share: bodies in flight, connections per address */

static atomic_llong inflight;

typedef struct address {
    struct address *next;
    unsigned char addr[16];
    unsigned char len;
    int connections;
} address;

static pthread_mutex_t addresses_lock = PTHREAD_MUTEX_INITIALIZER;
static address *addresses[ADDRESS_BUCKETS];

static address **bucket(const unsigned char *addr, unsigned char len)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (unsigned i = 0; i < len; i++)
        h = (h ^ addr[i]) * 16777619u;
    return &addresses[h % ADDRESS_BUCKETS];
}

/*
 * Counts one more connection from addr: 1, or 0 (nothing counted) when it has
 * max already, or -1 (nothing counted, let in) when out of memory.
 */
static int address_take(const unsigned char *addr, unsigned char len, int max)
{
    address **head = bucket(addr, len), *a;
    int taken = -1;

    pthread_mutex_lock(&addresses_lock);
    for (a = *head; a != NULL && (a->len != len || memcmp(a->addr, addr, len) != 0); a = a->next)
        ;
    if (a == NULL) {
        a = usher_calloc(1, sizeof(*a));
        memcpy(a->addr, addr, len);
        a->len = len;
        a->next = *head;
        *head = a;
    }
    if (a->connections >= max)
        taken = 0;
    else if (++a->connections > 0)
        taken = 1;
    pthread_mutex_unlock(&addresses_lock);
    return taken;
}

static void address_give(const unsigned char *addr, unsigned char len)
{
    address **link = bucket(addr, len), *a;

    pthread_mutex_lock(&addresses_lock);
    for (; (a = *link) != NULL; link = &a->next) {
        if (a->len == len && memcmp(a->addr, addr, len) == 0) {
            if (--a->connections == 0) {
                *link = a->next;
                free(a);
            }
            break;
        }
    }
    pthread_mutex_unlock(&addresses_lock);
}

/* ---- one connection's timer and lifetime */

static bool alive(const conn *c)
{
    bufferevent_data_cb readcb = NULL;

    /* The filter sets the socket bufferevent's callbacks; freeing it clears them. */
    bufferevent_getcb(c->sock, &readcb, NULL, NULL, NULL);
    return readcb != NULL;
}

static void timer_in(conn *c, int64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

    if (event_add(&c->timer, &tv) != 0)
        usher_log(USHER_LOG_ERR, "guard: cannot arm a connection's timer");
}

static void release(conn *c)
{
    if (c->reserved > 0)
        atomic_fetch_sub(&inflight, c->reserved);
    c->reserved = 0;
}

/* free_context of the filter: evhttp has freed the connection. */
static void conn_free(void *arg)
{
    conn *c = arg;

    event_del(&c->timer);
    release(c);
    if (c->addr_len > 0)
        address_give(c->addr, c->addr_len);
    free(c->refusal);
    free(c);
}

/* Fails the connection through evhttp's error path (evhttp frees it). */
static void force_close(conn *c)
{
    bufferevent_trigger_event(c->filter, BEV_EVENT_ERROR | BEV_EVENT_READING, 0);
}

/* ---- refusing */

static const char *reason(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 417:
        return "Expectation Failed";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

/* The whole answer, in c->refusal (NULL when out of memory: the connection just closes). */
static void compose(conn *c, int status, const char *code, bool retry, const char *message)
{
    char body[512], date[64], text[1024];
    time_t now = time(NULL);
    struct tm tm;
    int blen, len;

    blen = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code,
                    message);
    if (gmtime_r(&now, &tm) == NULL ||
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
        date[0] = '\0';
    len = snprintf(text, sizeof(text),
                   "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\nConnection: close\r\n%s\r\n%s",
                   status, reason(status), date, blen, retry ? "Retry-After: 1\r\n" : "", body);
    if (len <= 0 || (size_t)len >= sizeof(text))
        return;
    c->refusal = usher_malloc((size_t)len);
    memcpy(c->refusal, text, (size_t)len);
    c->refusal_len = (size_t)len;
}

/* Writes the refusal, shuts the socket for writing, and lingers. */
static void send_refusal(conn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->sock);

    if (c->refusal != NULL && fd >= 0 &&
        send(fd, c->refusal, c->refusal_len, MSG_NOSIGNAL | MSG_DONTWAIT) !=
            (ssize_t)c->refusal_len)
        usher_log(USHER_LOG_DEBUG, "guard: a refusal was not sent whole");
    if (fd >= 0)
        shutdown(fd, SHUT_WR);
    free(c->refusal);
    c->refusal = NULL;
    c->refused = true;
    timer_in(c, LINGER_MS);
}

/* Answers status with {"error":{"code","message"}} and closes (message: no quotes). */
__attribute__((format(printf, 5, 6))) static void refuse(conn *c, int status, const char *code,
                                                         bool retry, const char *fmt, ...)
{
    char message[256];
    va_list ap;

    if (c->state == CONN_CLOSING)
        return;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    usher_log(USHER_LOG_DEBUG, "guard: refused with %d %s: %s", status, code, message);
    c->state = CONN_CLOSING;
    release(c);
    event_del(&c->timer);
    compose(c, status, code, retry, message);
    if (c->pending == 0 && !c->replying)
        send_refusal(c);
    else /* evhttp owes earlier answers: ours follows them (or the connection just closes) */
        timer_in(c, (int64_t)c->guard->timeout_s * 1000);
}

/* ---- reading: admission, heads, bodies */

/* Counts the connection against its address (the first look at it). */
static void admit(conn *c)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    evutil_socket_t fd = bufferevent_getfd(c->sock);
    int max = c->guard->per_address, taken;

    event_del(&c->timer);
    c->state = CONN_HEAD;
    if (max <= 0 || fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        memcpy(c->addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        c->addr_len = 4;
    } else if (ss.ss_family == AF_INET6) {
        memcpy(c->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
        c->addr_len = 16;
    } else {
        return;
    }
    taken = address_take(c->addr, c->addr_len, max);
    if (taken != 1)
        c->addr_len = 0; /* not counted: nothing to give back */
    if (taken == 0)
        refuse(c, 429, "too_many_connections", true,
               "this address has %d connections open already; reuse them", max);
}

/* Scans what arrived of the head; API_HEAD_MORE past header_max means too long. */
static api_head_state scan(conn *c, struct evbuffer *src)
{
    size_t have = evbuffer_get_length(src), limit = (size_t)c->guard->header_max;
    api_head_state st = API_HEAD_MORE;

    while (st == API_HEAD_MORE && c->scan.len < have && c->scan.len < limit) {
        struct evbuffer_ptr at;
        struct evbuffer_iovec vec[8];
        int n;

        if (evbuffer_ptr_set(src, &at, c->scan.len, EVBUFFER_PTR_SET) != 0)
            return API_HEAD_BAD;
        n = evbuffer_peek(src, (ev_ssize_t)(have - c->scan.len), &at, vec, 8);
        for (int i = 0; i < n && i < 8 && st == API_HEAD_MORE; i++) {
            size_t room = limit - c->scan.len;

            st = api_head_scan_feed(&c->scan, vec[i].iov_base,
                                    vec[i].iov_len < room ? vec[i].iov_len : room);
        }
        if (n <= 0)
            break;
    }
    return st;
}

/* The one route that takes upload_max_bytes: POST /v1/events/{id}/content (content_upload.c). */
static bool is_upload(const api_head *h)
{
    static const char prefix[] = "/v1/events/", suffix[] = "/content";
    const char *p = h->target, *end = h->target + h->target_len, *q;
    size_t digits = 0;

    if (h->method != EVHTTP_REQ_POST)
        return false;
    if (*p != '/' && (q = memchr(p, ':', (size_t)(end - p))) != NULL && end - q > 3 &&
        (p = memchr(q + 3, '/', (size_t)(end - q - 3))) == NULL)
        return false; /* absolute-form: the path follows the authority */
    if ((q = memchr(p, '?', (size_t)(end - p))) != NULL)
        end = q;
    if ((size_t)(end - p) < sizeof(prefix) - 1 || memcmp(p, prefix, sizeof(prefix) - 1) != 0)
        return false;
    for (p += sizeof(prefix) - 1; p < end && *p >= '0' && *p <= '9'; p++)
        digits++;
    if (end > p && end[-1] == '/')
        end--;
    return digits > 0 && (size_t)(end - p) == sizeof(suffix) - 1 &&
           memcmp(p, suffix, sizeof(suffix) - 1) == 0;
}

/* May this head's body come in? Refuses (and returns false) when not. */
static bool body_allowed(conn *c, const api_head *h, size_t here)
{
    const api_guard *g = c->guard;
    int64_t len = h->content_length, max = is_upload(h) ? g->upload_max : g->body_max;

    if (len <= 0)
        return true;
    if (len > g->body_max && max > g->body_max && !h->authorization) {
        refuse(c, 401, "unauthorized", false, "uploads need a bearer token");
        return false;
    }
    if (len > max) {
        refuse(c, 413, "too_large", false, "the body is larger than %lld bytes", (long long)max);
        return false;
    }
    if ((int64_t)here >= len)
        return true; /* already read whole: nothing more to wait for */
    if (atomic_fetch_add(&inflight, len) + len > g->inflight_max) {
        atomic_fetch_sub(&inflight, len);
        refuse(c, 503, "unavailable", true, "the server is receiving too many bodies; retry");
        return false;
    }
    c->reserved = len;
    return true;
}

static void request_passed(conn *c)
{
    c->pending++;
    c->state = CONN_HEAD;
    c->scan = (api_head_scan){ 0 };
}

/* Passes a complete head on (or refuses it); false while it is incomplete or refused. */
static bool pass_head(conn *c, struct evbuffer *src, struct evbuffer *dst)
{
    const api_guard *g = c->guard;
    api_head_state st = scan(c, src);
    api_head head;
    api_head_error err;
    const char *text;

    if (st == API_HEAD_BAD) {
        refuse(c, 400, "bad_request", false, "the head has a bare CR or LF or a control character");
        return false;
    }
    if (st == API_HEAD_MORE && c->scan.len >= (size_t)g->header_max) {
        refuse(c, 431, "headers_too_large", false, "the request line and headers exceed %lld bytes",
               (long long)g->header_max);
        return false;
    }
    if (st == API_HEAD_MORE) {
        if (!evtimer_pending(&c->timer, NULL)) /* the head's first bytes: its deadline starts */
            timer_in(c, (int64_t)g->header_timeout_s * 1000);
        return false;
    }
    text = (const char *)evbuffer_pullup(src, (ev_ssize_t)c->scan.len);
    if (text == NULL) {
        refuse(c, 503, "unavailable", true, "out of memory");
        return false;
    }
    if (!api_head_parse(text + c->scan.skip, c->scan.len - c->scan.skip, &head, &err)) {
        refuse(c, err.status, err.code, false, "%s", err.message);
        return false;
    }
    if (!body_allowed(c, &head, evbuffer_get_length(src) - c->scan.len))
        return false;
    event_del(&c->timer);
    if (evbuffer_drain(src, c->scan.skip) != 0 ||
        evbuffer_remove_buffer(src, dst, c->scan.len - c->scan.skip) < 0) {
        refuse(c, 503, "unavailable", true, "out of memory");
        return false;
    }
    c->body_len = c->body_left = head.content_length > 0 ? head.content_length : 0;
    if (c->body_left > 0)
        c->state = CONN_BODY;
    else
        request_passed(c);
    return true;
}

/* Passes what arrived of the body on; true when anything moved. */
static bool pass_body(conn *c, struct evbuffer *src, struct evbuffer *dst)
{
    size_t have = evbuffer_get_length(src);
    size_t n = (int64_t)have < c->body_left ? have : (size_t)c->body_left;
    const api_guard *g = c->guard;

    if (evbuffer_remove_buffer(src, dst, n) != (int)n) {
        refuse(c, 503, "unavailable", true, "out of memory");
        return false;
    }
    c->body_left -= (int64_t)n;
    if (c->body_left == 0) {
        release(c);
        event_del(&c->timer);
        request_passed(c);
    } else if (!evtimer_pending(&c->timer, NULL)) {
        timer_in(c, (int64_t)g->body_timeout_s * 1000 + c->body_len * 1000 / g->body_rate);
    }
    return n > 0;
}

/* Reads the input after a refusal into nothing; lingers at most LINGER_BYTES. */
static void drop(conn *c, struct evbuffer *src)
{
    size_t n = evbuffer_get_length(src);

    if (n > 0 && evbuffer_drain(src, n) == 0)
        c->dropped += n;
    if (c->dropped > LINGER_BYTES)
        event_active(&c->timer, EV_TIMEOUT, 1);
}

/* The filter's input side: src is what the socket gave, dst what evhttp reads. */
static enum bufferevent_filter_result read_in(struct evbuffer *src, struct evbuffer *dst,
                                              ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                              void *arg)
{
    conn *c = arg;
    bool moved = false;

    (void)limit; /* evhttp sets no read watermark */
    (void)mode;
    if (c->state == CONN_NEW)
        admit(c);
    while (c->state != CONN_CLOSING && evbuffer_get_length(src) > 0) {
        if (c->state == CONN_BODY)
            moved = pass_body(c, src, dst) || moved;
        else if (pass_head(c, src, dst))
            moved = true;
        else
            break; /* held back, or refused */
    }
    if (c->state == CONN_CLOSING)
        drop(c, src);
    /* BEV_OK tells the filter to run evhttp's read callback; only say it when data moved. */
    return moved ? BEV_OK : BEV_NEED_MORE;
}

/* The one timer: the first look, a deadline, or the end of a linger. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    const api_guard *g = c->guard;

    (void)fd;
    (void)what;
    if (!alive(c))
        return;
    switch (c->state) {
    case CONN_NEW:
        admit(c);
        break;
    case CONN_HEAD:
        refuse(c, 408, "request_timeout", false, "the request line and headers took over %d s",
               g->header_timeout_s);
        break;
    case CONN_BODY:
        refuse(c, 408, "request_timeout", false,
               "the body came slower than %d bytes a second after %d s", g->body_rate,
               g->body_timeout_s);
        break;
    case CONN_CLOSING:
        force_close(c);
        break;
    }
}

/* ---- writing: evhttp's answers, straight to the socket */

/* An answer has been written whole. */
static void answered(conn *c)
{
    c->replying = false;
    if (!c->interim && c->pending > 0)
        c->pending--;
    if (c->state == CONN_CLOSING && !c->refused && c->pending == 0) {
        event_del(&c->timer);
        send_refusal(c);
    }
}

/* The filter's output side: src is evhttp's output, dst the socket bufferevent's (kept empty). */
static enum bufferevent_filter_result write_out(struct evbuffer *src, struct evbuffer *dst,
                                                ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                void *arg)
{
    conn *c = arg;
    size_t len = evbuffer_get_length(src);
    char start[13];
    int n;

    (void)limit;
    (void)mode;
    if (len == 0 || evbuffer_get_length(dst) > 0)
        return BEV_NEED_MORE;
    if (c->refused) { /* the socket is shut for writing: nothing more goes out */
        evbuffer_drain(src, len);
        return BEV_OK;
    }
    if (!c->replying) {
        c->replying = true;
        c->interim = evbuffer_copyout(src, start, sizeof(start)) == (ev_ssize_t)sizeof(start) &&
                     memcmp(start, "HTTP/1.1 100 ", sizeof(start)) == 0;
    }
    n = evbuffer_write(src, bufferevent_getfd(c->sock));
    if (evbuffer_get_length(src) == 0) {
        answered(c);
        return BEV_OK;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        /* The socket bufferevent meets the error itself and tells evhttp. */
        evbuffer_add_buffer(dst, src);
        return BEV_OK;
    }
    /* The rest when the socket can take it: its bufferevent calls us back. */
    if (bufferevent_enable(c->sock, EV_WRITE) != 0)
        usher_log(USHER_LOG_ERR, "guard: cannot wait for a socket to be writable");
    return n > 0 ? BEV_OK : BEV_NEED_MORE;
}

/*
 * The socket can take more. libevent's own callback here (be_filter_writecb)
 * runs the output filter without holding a reference on the filter: when
 * evhttp frees the connection in the write callback it triggers (an answer
 * with Connection: close), the filter then re-arms its write timeout on a
 * bufferevent already being finalized, which fires later on freed memory.
 * bufferevent_flush holds a reference across the same work.
 */
static void sock_writable(struct bufferevent *sock, void *filter)
{
    (void)sock;
    bufferevent_flush(filter, EV_WRITE, BEV_NORMAL);
}

/* evhttp added to its output: have the socket bufferevent call write_out when writable. */
static void output_added(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    conn *c = arg;

    (void)buf;
    if (info->orig_size == 0 && info->n_added > 0 && bufferevent_enable(c->sock, EV_WRITE) != 0)
        usher_log(USHER_LOG_ERR, "guard: cannot wait for a socket to be writable");
}

/* ---- setting up */

struct bufferevent *api_guard_bevcb(struct event_base *base, void *arg)
{
    conn *c = usher_calloc(1, sizeof(*c));
    struct timeval now = { 0, 0 };
    bufferevent_data_cb readcb;
    bufferevent_event_cb eventcb;
    void *filter;

    c->guard = arg;
    if (evtimer_assign(&c->timer, base, on_timer, c) != 0) {
        free(c);
        return NULL;
    }
    c->sock = usher_need(bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE));
    c->filter = usher_need(
        bufferevent_filter_new(c->sock, read_in, write_out, BEV_OPT_CLOSE_ON_FREE, conn_free, c));
    /* From here, freeing the filter frees c (conn_free). */
    bufferevent_getcb(c->sock, &readcb, NULL, &eventcb, &filter);
    bufferevent_setcb(c->sock, readcb, sock_writable, eventcb, filter);
    usher_need(evbuffer_add_cb(bufferevent_get_output(c->filter), output_added, c));
    if (event_add(&c->timer, &now) != 0) { /* the first look, once evhttp has set the socket */
        bufferevent_free(c->filter);
        return NULL;
    }
    return c->filter;
}

api_guard *api_guard_new(const usher_config *cfg)
{
    api_guard *g = usher_calloc(1, sizeof(*g));

    g->header_max = cfg->api_header_max_bytes;
    g->body_max = cfg->api_body_max_bytes;
    g->upload_max = cfg->api_upload_max_bytes;
    g->inflight_max = cfg->api_inflight_body_max_bytes;
    g->header_timeout_s = cfg->api_header_timeout_s;
    g->body_timeout_s = cfg->api_body_timeout_s;
    g->body_rate = cfg->api_body_rate_bytes;
    g->per_address = cfg->api_connections_per_address;
    g->timeout_s = cfg->api_timeout_s;
    return g;
}

void api_guard_free(api_guard *g)
{
    free(g);
}
