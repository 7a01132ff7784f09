#include "server.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "auth.h"
#include "cache_warm.h"
#include "loop_batch.h"
#include "flight.h"
#include "http_guard.h"
#include "routes/routes.h"
#include "log.h"
#include "offload.h"
#include "metrics.h"
#include "metrics_http.h"
#include "pgpool.h"
#include "redis.h"
#include "replica.h"
#include "token.h"
#include "wake_after_commit.h"
#include "router.h"

struct api_threads {
    int n;
    api_loop **loops;
    api_metrics_http *metrics; /* /metrics, on loop 0's base */
    api_cache_warm *warm;      /* the cache warm-up, on loop 0's base */
};

/* HOST:PORT -> a listening SO_REUSEPORT socket; *port gets the bound port. */
static int listen_on(const char *listen_addr, int *port, char *errbuf, size_t errlen)
{
    char host[256], service[16];
    const char *colon = strrchr(listen_addr, ':');
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof(bound);
    int fd = -1, one = 1, rc;

    if (colon == NULL || (size_t)(colon - listen_addr) >= sizeof(host)) {
        snprintf(errbuf, errlen, "api.listen '%s' is not HOST:PORT", listen_addr);
        return -1;
    }
    memcpy(host, listen_addr, (size_t)(colon - listen_addr));
    host[colon - listen_addr] = '\0';
    snprintf(service, sizeof(service), "%d", *port >= 0 ? *port : atoi(colon + 1));
    rc = getaddrinfo(host[0] != '\0' ? host : NULL, service, &hints, &ai);
    if (rc != 0) {
        snprintf(errbuf, errlen, "api.listen '%s': %s", listen_addr, gai_strerror(rc));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        /* Accepted sockets inherit it: without it the last piece of a large
         * answer (a 100 KB download) waits ~40 ms for the client's delayed ACK. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 4096) != 0 ||
        getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0) {
        snprintf(errbuf, errlen, "api.listen '%s': %s", listen_addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    *port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
    return fd;
}

#define PRUNE_BATCH "10000"

static void pruned(PGresult *res, const char *errmsg, void *arg)
{
    api_loop *loop = arg;

    loop->pruning = false;
    loop->prune_behind = false;
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
        usher_log(USHER_LOG_WARNING, "pruning idempotency keys failed: %s",
                  errmsg != NULL ? errmsg : "connection lost");
    else
        loop->prune_behind = strcmp(PQcmdTuples(res), PRUNE_BATCH) == 0;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    api_loop *loop = arg;

    (void)fd;
    (void)what;
    atomic_store(&loop->pg_up, api_pgpool_connected(loop->pg));
    atomic_store(&loop->pg_busy, api_pgpool_busy(loop->pg));
    atomic_store(&loop->redis_up, api_redis_up(loop->redis) ? 1 : 0);
    atomic_store(&loop->alive_ns, api_now_ns());
    /* Idempotency keys are kept a day. Loop 0 of every host prunes at its
     * first tick and then once a minute, a bounded batch at a time, and every
     * second while a batch comes back full (keyed registrations faster than
     * 10,000 a minute); hosts doing it twice is harmless. */
    if (loop->index == 0 && (loop->ticks++ % 60 == 0 || loop->prune_behind) && !loop->pruning) {
        /* Set first: pruned() may run within the call (a send that fails at once). */
        loop->pruning = true;
        if (api_pgpool_query(loop->pg,
                             "DELETE FROM api_idempotency WHERE ctid IN (SELECT ctid"
                             " FROM api_idempotency WHERE created_at < now() - interval '24 hours'"
                             " LIMIT " PRUNE_BATCH ")",
                             0, NULL, pruned, loop) != USHER_OK) {
            loop->pruning = false;
            loop->prune_behind = true; /* not sent (no connection): try again next tick */
        }
    }
}

static void loop_free(api_loop *loop)
{
    if (loop == NULL)
        return;
    /* HTTP first (requests lose their clients), then Redis and PostgreSQL,
     * whose pending callbacks then finish the requests without answering. */
    if (loop->http != NULL)
        evhttp_free(loop->http);
    api_redis_free(loop->redis);
    /* Before the pool: they answer what waits. */
    api_loop_batch_free(loop->checkins);
    api_loop_batch_free(loop->registrations);
    route_register_texts_free(loop->register_texts);
    api_pgpool_free(loop->pg);
    api_replica_free(loop->replica); /* after the primary: its samples' callbacks point here */
    api_wake_free(loop->wake);
    if (loop->tick != NULL)
        event_free(loop->tick);
    api_token_cache_free(loop->tokens);
    if (loop->base != NULL)
        event_base_free(loop->base);
    api_guard_free(loop->guard); /* after the base: its last connections end there */
    free(loop);
}

static void statement_timed(double queued_s, double ran_s, void *arg)
{
    api_metrics_statement(((api_loop *)arg)->srv->metrics, queued_s, ran_s);
}

static void listening(PGresult *res, const char *errmsg, void *arg)
{
    (void)arg;
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
        usher_log(USHER_LOG_WARNING, "LISTEN " USHER_TOKENS_CHANNEL " failed: %s",
                  errmsg != NULL ? errmsg : "connection lost");
}

/*
 * Each (re)connected connection listens for token revocations (api/auth.h).
 * pg_up follows every change at once: readiness (/readyz and READY=1) reads it.
 */
static void db_connected(usher_pgloop *pg, void *arg)
{
    api_loop *loop = arg;

    if (usher_pgloop_query(pg, "LISTEN " USHER_TOKENS_CHANNEL, 0, NULL, listening, arg) != USHER_OK)
        usher_log(USHER_LOG_WARNING, "cannot LISTEN " USHER_TOKENS_CHANNEL);
    if (loop->pg != NULL) /* NULL while the pool is still being made */
        atomic_store(&loop->pg_up, api_pgpool_connected(loop->pg));
}

static void db_disconnected(const char *why, void *arg)
{
    api_loop *loop = arg;

    (void)why;
    if (loop->pg != NULL)
        atomic_store(&loop->pg_up, api_pgpool_connected(loop->pg));
}

static void db_notified(const char *channel, void *arg)
{
    api_loop *loop = arg;

    if (strcmp(channel, USHER_TOKENS_CHANNEL) == 0)
        api_token_cache_clear(loop->tokens);
}

/*
 * A loop's event base with libevent's change list: the epoll_ctl calls a
 * turn of the loop asks for are merged and made once, before it waits (a
 * keep-alive request turns its connection's read and write events off and
 * on several times between two waits). Measured (issue 17, session 17,
 * bench/api, 4 alternated pairs): cached event reads 1.04-1.14x, session
 * access 1.06-1.23x, check-ins 1.03-1.21x, registrations unchanged. The
 * list is unsafe only for descriptors cloned with dup(), which usher-api
 * never makes; a descriptor closed and reused within one turn libevent
 * handles (a MOD that finds no descriptor is retried as an ADD).
 */
static struct event_base *loop_base_new(void)
{
    struct event_config *ec = event_config_new();
    struct event_base *base = NULL;

    if (ec == NULL)
        return NULL;
    if (event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) == 0)
        base = event_base_new_with_config(ec);
    event_config_free(ec);
    return base;
}

static api_loop *loop_new(api_server *srv, int index, int fd, char *errbuf, size_t errlen)
{
    const usher_config *cfg = srv->cfg;
    api_loop *loop = usher_calloc(1, sizeof(*loop));
    struct timeval second = { 1, 0 };
    size_t body_max =
        (size_t)(cfg->api_body_max_bytes > cfg->api_upload_max_bytes ? cfg->api_body_max_bytes
                                                                     : cfg->api_upload_max_bytes);

    loop->srv = srv;
    loop->index = index;
    atomic_store(&loop->alive_ns, api_now_ns());
    loop->base = loop_base_new();
    loop->tokens = api_token_cache_new();
    if (loop->base == NULL)
        goto failed;
    loop->http = usher_need(evhttp_new(loop->base));
    loop->tick = usher_need(event_new(loop->base, -1, EV_PERSIST, tick, loop));
    loop->guard = api_guard_new(cfg);
    if (event_add(loop->tick, &second) != 0)
        goto failed;
    /* Every connection through the guard, which holds each route to its own body limit,
     * and heads and bodies to deadlines, before evhttp reads them: the limits below are
     * only a backstop. */
    evhttp_set_bevcb(loop->http, api_guard_bevcb, loop->guard);
    evhttp_set_max_body_size(loop->http, (ev_ssize_t)body_max);
    evhttp_set_max_headers_size(loop->http, (ev_ssize_t)cfg->api_header_max_bytes);
    evhttp_set_timeout(loop->http, cfg->api_timeout_s);
    /* All it knows, so that the router answers 405 (the guard answers 501 to others). */
    evhttp_set_allowed_methods(loop->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PATCH |
                                               EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD |
                                               EVHTTP_REQ_PUT | EVHTTP_REQ_OPTIONS |
                                               EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT);
    evhttp_set_gencb(loop->http, api_dispatch, loop);
    loop->bound = evhttp_accept_socket_with_handle(loop->http, fd);
    if (loop->bound == NULL) {
        snprintf(errbuf, errlen, "evhttp could not take the listening socket");
        close(fd);
        loop_free(loop);
        return NULL;
    }
    fd = -1; /* evhttp owns it now: loop_free closes it */
    if (api_pgpool_new(loop->base, cfg->database_url, cfg->api_db_connections, cfg->api_db_wait_ms,
                       &(usher_pgloop_hooks){ .connected = db_connected,
                                              .disconnected = db_disconnected,
                                              .notified = db_notified,
                                              .timed = statement_timed,
                                              .arg = loop },
                       &loop->pg) != USHER_OK)
        goto failed;
    if (api_replica_new(loop, &loop->replica) != USHER_OK)
        goto failed;
    loop->wake = api_wake_new(loop);
    loop->checkins = api_loop_batch_new(loop, &route_checkin_batch);
    loop->registrations = api_loop_batch_new(loop, &route_register_batch);
    loop->redis = api_redis_new(loop->base, cfg->redis_url, errbuf, errlen);
    if (loop->redis == NULL) {
        loop_free(loop);
        return NULL;
    }
    return loop;
failed:
    snprintf(errbuf, errlen, "could not set up loop %d", index);
    if (fd >= 0)
        close(fd);
    loop_free(loop);
    return NULL;
}

static void *run(void *arg)
{
    api_loop *loop = arg;

    event_base_loop(loop->base, 0);
    return NULL;
}

void api_conn_need(const usher_config *cfg, int nthreads, usher_conn_need *need)
{
    *need = (usher_conn_need){ 0 };
    usher_conn_need_add(need, nthreads * cfg->api_db_connections,
                        "%d loop threads x [api] db_connections %d", nthreads,
                        cfg->api_db_connections);
    usher_conn_need_add(need, API_OFFLOAD_THREADS, "offload threads (admin routes)");
    if (usher_config_has_read_url(cfg)) {
        usher_conn_need_add(need, nthreads * cfg->api_db_connections,
                            "%d loop threads x %d replica connections ([database] read_url)",
                            nthreads, cfg->api_db_connections);
        usher_conn_need_add(need, API_OFFLOAD_THREADS, "offload threads' replica connections");
    }
}

/*
 * Frees the t->n loops (and the /metrics endpoint, if made) after a failure
 * at start: no thread runs them yet (api_threads_stop would join threads
 * never started).
 */
static void free_unstarted(api_threads *t)
{
    api_cache_warm_free(t->warm);
    api_metrics_http_free(t->metrics);
    for (int i = 0; i < t->n; i++)
        loop_free(t->loops[i]);
    free(t->loops);
    free(t);
}

usher_err api_threads_start(api_server *srv, int nthreads, api_threads **out, char *errbuf,
                            size_t errlen)
{
    api_threads *t = usher_calloc(1, sizeof(*t));
    int port = -1;
    usher_err err;

    *out = NULL;
    t->loops = usher_calloc((size_t)nthreads, sizeof(*t->loops));
    if (evthread_use_pthreads() != 0) {
        snprintf(errbuf, errlen, "libevent has no pthreads support");
        free(t->loops);
        free(t);
        return USHER_ERR_CONFIG;
    }
    for (int i = 0; i < nthreads; i++) {
        /* The first socket picks the port (maybe 0 = any); the rest share it. */
        int fd = listen_on(srv->cfg->api_listen, &port, errbuf, errlen);

        if (fd < 0 || (t->loops[i] = loop_new(srv, i, fd, errbuf, errlen)) == NULL) {
            free_unstarted(t);
            return USHER_ERR_CONFIG;
        }
        t->n = i + 1;
    }
    srv->port = port;
    t->metrics = api_metrics_http_start(t->loops[0], srv->cfg->api_metrics_listen,
                                        &srv->metrics_port, errbuf, errlen);
    if (t->metrics == NULL) {
        free_unstarted(t);
        return USHER_ERR_CONFIG;
    }
    err = api_cache_warm_start(t->loops[0], &t->warm);
    if (err != USHER_OK) {
        snprintf(errbuf, errlen, "cannot arm the cache warm-up's timer");
        free_unstarted(t);
        return err;
    }
    err = api_offload_start(API_OFFLOAD_THREADS);
    if (err != USHER_OK) {
        snprintf(errbuf, errlen, "could not start the offload threads");
        free_unstarted(t);
        return err;
    }
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&t->loops[i]->thread, NULL, run, t->loops[i]) != 0) {
            snprintf(errbuf, errlen, "could not start loop thread %d", i);
            /* Threads already started are stopped through their bases. */
            for (int j = 0; j < i; j++) {
                event_base_loopexit(t->loops[j]->base, NULL);
                pthread_join(t->loops[j]->thread, NULL);
            }
            api_offload_stop();
            free_unstarted(t);
            return USHER_ERR_SYSTEM;
        }
    }
    srv->loops = t->loops;
    atomic_store(&srv->nloops, t->n); /* /metrics and /readyz read them from now on */
    *out = t;
    return USHER_OK;
}

/* Runs on a loop's own thread: stop accepting there. */
static void stop_accepting(evutil_socket_t fd, short what, void *arg)
{
    api_loop *loop = arg;

    (void)fd;
    (void)what;
    if (loop->bound != NULL) {
        evhttp_del_accept_socket(loop->http, loop->bound);
        loop->bound = NULL;
    }
}

void api_threads_stop(api_threads *t, int grace_ms)
{
    if (t == NULL)
        return;
    {
        uint64_t deadline = api_now_ns() + (uint64_t)grace_ms * 1000000u;
        bool idle = false;

        for (int i = 0; i < t->n; i++)
            event_base_once(t->loops[i]->base, -1, EV_TIMEOUT, stop_accepting, t->loops[i], NULL);
        while (!idle && api_now_ns() < deadline) {
            struct timespec ms10 = { 0, 10000000 };

            idle = true;
            for (int i = 0; i < t->n; i++)
                idle = idle && atomic_load(&t->loops[i]->inflight) == 0;
            if (!idle)
                nanosleep(&ms10, NULL);
        }
        for (int i = 0; i < t->n; i++)
            event_base_loopexit(t->loops[i]->base, NULL);
        for (int i = 0; i < t->n; i++)
            pthread_join(t->loops[i]->thread, NULL);
        atomic_store(&t->loops[0]->srv->nloops, 0);
        api_flight_stop(); /* requests still waiting for another loop's read */
    }
    /* After the loops (no new work) and before their bases go (pending dones). */
    api_offload_stop();
    api_cache_warm_free(t->warm); /* before its base; a pending answer frees it in loop_free */
    api_metrics_http_free(t->metrics);
    for (int i = 0; i < t->n; i++)
        loop_free(t->loops[i]);
    free(t->loops);
    free(t);
}
