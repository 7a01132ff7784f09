/*
 * The /metrics listener of metrics_http.h. A scrape renders the counters of
 * api/metrics.h and the last pool depths read, and answers at once: nothing
 * in it waits for the database.
 *
 * The depths: every DEPTH_READ_S seconds loop 0 reads usher_pools, where
 * each worker supervisor writes its pool's depth (runnable jobs in the
 * pool's queues, counted up to USHER_AUTOSCALE_DEPTH_CAP) with every
 * heartbeat. Supervisors of one pool on several hosts count the same
 * queues, so a pool's depth is the largest among those heard from in the
 * last 15 seconds (usher_pool_heartbeat's own idea of alive); a pool with
 * none alive has no sample. usher_database_up says whether the last read
 * answered; the depths stay those of the last read that did.
 */
#include "metrics_http.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "alloc.h"
#include "fleet.h"
#include "metrics.h"
#include "replica.h"
#include "pgpool.h"
#include "prom.h"
#include "request.h"

#define DEPTH_READ_S 5
#define POOLS_MAX    256

#define DEPTH_SQL                              \
    "SELECT pool, max(depth) FROM usher_pools" \
    " WHERE heartbeat_at > now() - interval '15 seconds' GROUP BY pool ORDER BY pool LIMIT 256"

typedef struct pool_depth {
    char pool[2 * USHER_NAME_MAX]; /* escaped for a label value */
    long long depth;
} pool_depth;

struct api_metrics_http {
    api_loop *loop;
    struct evhttp *http;
    struct event *read_timer;
    api_fleet *fleet; /* the API tier's scaling signals (fleet.h) */
    pool_depth pools[POOLS_MAX];
    size_t npools;
    bool database_up; /* the last read answered */
    bool reading;     /* a read is queued on the loop's connections */
    bool closing;     /* freed while reading: the read's answer frees it */
};

static void depths_read(PGresult *res, const char *errmsg, void *arg)
{
    api_metrics_http *m = arg;

    (void)errmsg;
    m->reading = false;
    if (m->closing) {
        free(m);
        return;
    }
    m->database_up = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!m->database_up)
        return;
    m->npools = 0;
    for (int i = 0; i < PQntuples(res) && m->npools < POOLS_MAX; i++) {
        pool_depth *p = &m->pools[m->npools++];

        usher_prom_escape(PQgetvalue(res, i, 0), p->pool, sizeof(p->pool));
        p->depth = strtoll(PQgetvalue(res, i, 1), NULL, 10);
    }
}

static void read_depths(evutil_socket_t fd, short what, void *arg)
{
    api_metrics_http *m = arg;

    (void)fd;
    (void)what;
    if (m->reading)
        return;        /* the last read is still waiting for a connection */
    m->reading = true; /* first: depths_read may run within the call */
    if (api_pgpool_query(m->loop->pg, DEPTH_SQL, 0, NULL, depths_read, m) != USHER_OK) {
        m->reading = false;
        m->database_up = false;
    }
}

static int render_depths(const api_metrics_http *m, struct evbuffer *out)
{
    int rc = evbuffer_add_printf(
        out,
        "# HELP usher_pool_queue_depth Runnable jobs in each pool's queues, as its"
        " supervisors last counted them (up to 100000; read from usher_pools every %d s).\n"
        "# TYPE usher_pool_queue_depth gauge\n",
        DEPTH_READ_S);

    for (size_t i = 0; i < m->npools && rc >= 0; i++)
        rc = evbuffer_add_printf(out, "usher_pool_queue_depth{pool=\"%s\"} %lld\n",
                                 m->pools[i].pool, m->pools[i].depth);
    if (rc >= 0)
        rc = evbuffer_add_printf(out,
                                 "# HELP usher_database_up 1 when the last read of the pools'"
                                 " depths answered.\n"
                                 "# TYPE usher_database_up gauge\nusher_database_up %d\n",
                                 m->database_up ? 1 : 0);
    return rc < 0 ? -1 : 0;
}

static void serve(struct evhttp_request *req, void *arg)
{
    api_metrics_http *m = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    int nloops = 0;
    api_loop *const *loops = api_server_loops(m->loop->srv, &nloops);
    struct evbuffer *out;

    if (path == NULL || strcmp(path, "/metrics") != 0) {
        evhttp_send_error(req, 404, "only /metrics here");
        return;
    }
    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        evhttp_send_error(req, 405, NULL);
        return;
    }
    out = usher_need(evbuffer_new());
    usher_prom_reply(req, out,
                     api_metrics_render(m->loop->srv->metrics, loops, nloops, out) == 0 &&
                         render_depths(m, out) == 0 && api_fleet_render(m->fleet, out) == 0 &&
                         api_replica_render(loops, nloops, out) == 0);
}

/* The port a bound listener got (listen_addr may ask for port 0). */
static int bound_port(struct evhttp_bound_socket *bound)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);

    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&addr, &len) != 0)
        return -1;
    return ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                            : ((struct sockaddr_in *)&addr)->sin_port);
}

/* Binds HOST:PORT on m->http; *port gets the port; -1 with errbuf set. */
static int bind_listener(api_metrics_http *m, const char *listen_addr, int *port, char *errbuf,
                         size_t errlen)
{
    const char *colon = strrchr(listen_addr, ':');
    char host[256];
    char *end;
    long want = colon != NULL ? strtol(colon + 1, &end, 10) : -1;
    struct evhttp_bound_socket *bound;

    if (colon == NULL || colon == listen_addr || (size_t)(colon - listen_addr) >= sizeof(host) ||
        colon[1] == '\0' || *end != '\0' || want < 0 || want > 65535) {
        snprintf(errbuf, errlen, "api.metrics_listen '%s' is not HOST:PORT", listen_addr);
        return -1;
    }
    memcpy(host, listen_addr, (size_t)(colon - listen_addr));
    host[colon - listen_addr] = '\0';
    bound = evhttp_bind_socket_with_handle(m->http, host, (ev_uint16_t)want);
    if (bound == NULL || (*port = bound_port(bound)) < 0) {
        snprintf(errbuf, errlen, "api.metrics_listen '%s': cannot listen there", listen_addr);
        return -1;
    }
    return 0;
}

api_metrics_http *api_metrics_http_start(api_loop *loop, const char *listen_addr, int *port,
                                         char *errbuf, size_t errlen)
{
    api_metrics_http *m = usher_calloc(1, sizeof(*m));
    struct timeval every = { DEPTH_READ_S, 0 };

    m->loop = loop;
    m->http = usher_need(evhttp_new(loop->base));
    m->read_timer = usher_need(event_new(loop->base, -1, EV_PERSIST, read_depths, m));
    if (event_add(m->read_timer, &every) != 0) {
        snprintf(errbuf, errlen, "cannot arm the queue depth timer");
        api_metrics_http_free(m);
        return NULL;
    }
    if (api_fleet_start(loop, &m->fleet) != USHER_OK) {
        snprintf(errbuf, errlen, "cannot arm the fleet sampling timer");
        api_metrics_http_free(m);
        return NULL;
    }
    if (bind_listener(m, listen_addr, port, errbuf, errlen) != 0) {
        api_metrics_http_free(m);
        return NULL;
    }
    evhttp_set_timeout(m->http, 10);
    evhttp_set_gencb(m->http, serve, m);
    event_active(m->read_timer, EV_TIMEOUT, 0); /* the first read as soon as the loop runs */
    return m;
}

void api_metrics_http_free(api_metrics_http *m)
{
    if (m == NULL)
        return;
    if (m->http != NULL)
        evhttp_free(m->http);
    api_fleet_free(m->fleet);
    m->fleet = NULL;
    if (m->read_timer != NULL)
        event_free(m->read_timer);
    m->http = NULL;
    m->read_timer = NULL;
    if (m->reading)
        m->closing = true; /* depths_read frees it when the pool answers the read */
    else
        free(m);
}
