/*
 * A request as usher-api's routes see it, and where it lives: the server
 * (one per process) and its loop threads (each with its own event base,
 * HTTP server, database connections and token cache). Types, and the
 * small readers of a request (its headers, query string, scope).
 *
 * A request lives on the loop thread that accepted it. Routes never block:
 * they queue one statement at a time (query.h) and answer from its
 * callback. Every request ends in exactly one api_reply_* call (reply.h),
 * which sends the answer (unless the client has gone), counts it, and
 * frees it.
 */
#ifndef USHER_API_REQUEST_H
#define USHER_API_REQUEST_H

#include <event2/http.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cidr.h"
#include "config.h"
#include "inttext.h"
#include "ticket.h"
#include "token.h"

typedef struct api_metrics api_metrics;
typedef struct api_pgpool api_pgpool;
typedef struct api_replica api_replica;
typedef struct api_redis api_redis;
typedef struct api_wake api_wake;
typedef struct api_loop_batch api_loop_batch;
typedef struct api_token_cache api_token_cache;
typedef struct api_route api_route;
typedef struct api_guard api_guard;
typedef struct api_loop api_loop;
typedef struct api_register_texts api_register_texts;

typedef struct api_server {
    /*
     * The configuration. A reload (api/reload.c) publishes a new one whole;
     * each is immutable and lives until exit, so a pointer read from here
     * stays valid however long a request or an offload keeps it. The field
     * is _Atomic: every read of it is an atomic load, and it never races the
     * main thread's swap.
     */
    const usher_config *_Atomic cfg;
    unsigned char ticket_key[USHER_TICKET_KEY_BYTES]; /* usher-api does not start without it */
    api_cidr_list trusted_proxies; /* api.trusted_proxies, read at start (api/client_addr.h) */
    api_metrics *metrics;
    atomic_bool draining;           /* SIGTERM: finish what is in flight, take nothing new */
    int port;                       /* the port bound (useful when listen asked for port 0) */
    int metrics_port;               /* the port of the /metrics listener (api.metrics_listen) */
    char *_Atomic webhook_template; /* notify.webhook's queue and policy, as JSON (api/jobs.h);
                                       a reload swaps it with cfg */
    api_loop **loops;               /* set by api_threads_start (server.h) before nloops */
    atomic_int nloops;       /* loops running: 0 before the threads start and after they stop */
    atomic_uint token_epoch; /* bumped by a revocation here: every loop's token cache drops
                                what it holds before its next lookup (api/auth.h) */
} api_server;

struct api_loop {
    api_server *srv;
    int index;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    api_pgpool *pg;
    api_replica *replica; /* reads that may see a replica ([database] read_url); may be NULL */
    api_redis *redis;     /* the cache and the rate limiter; may be down */
    api_token_cache *tokens;
    api_wake *wake;                     /* NOTIFYs for the jobs its statements enqueued */
    api_loop_batch *checkins;           /* scans gathered into one statement per turn */
    api_loop_batch *registrations;      /* registrations, the same way */
    api_register_texts *register_texts; /* their templates as text (routes/registrations.c) */
    api_guard *guard;                   /* refuses what would exhaust us before evhttp reads it */
    struct event *tick;                 /* publishes the gauges below once a second */
    unsigned long ticks;
    bool pruning;      /* loop 0: a prune of idempotency keys is in flight */
    bool prune_behind; /* loop 0: the last prune was a full batch: go on next tick */
    pthread_t thread;
    atomic_int inflight;           /* requests accepted and not yet answered */
    atomic_int pg_up;              /* connections up, as of the last tick */
    atomic_int pg_busy;            /* connections with statements waiting, as of the last tick */
    atomic_int redis_up;           /* 1 while its Redis connection is up, as of the last tick */
    atomic_uint_fast64_t alive_ns; /* the last tick: a loop that stops ticking is stuck */
};

typedef struct api_auth {
    usher_role role; /* USHER_ROLE_NONE: no token */
    int64_t token_id;
    int64_t organizer_id; /* organizer and scanner tokens */
    int64_t event_id;     /* a scanner narrowed to one event; 0 = any of its organizer's */
} api_auth;

typedef struct api_req {
    api_loop *loop;
    struct evhttp_request *http; /* NULL once the client has gone */
    struct evhttp_connection *conn;
    const api_route *route;
    int64_t ids[2];            /* the {id}s of the path, in order */
    char name[USHER_NAME_MAX]; /* the {name} of the path (a queue), or "" */
    json_t *body;              /* the parsed JSON body of a route that takes one, else NULL */
    api_auth auth;
    uint64_t start_ns;
    char client[64]; /* the client's address (api/client_addr.h): the peer, or behind a
                        trusted proxy the address it forwarded */
    void *state;     /* a route's own state between its steps (freed by the route) */
    bool audited;    /* the route's own statement records its write in audit_log (api/audit.h) */
    int method;      /* enum evhttp_cmd_type, kept for the access log (api/access_log.h) */
    char request_id[65]; /* X-Request-Id: a trusted proxy's, or 16 random hex digits */
    size_t bytes;        /* of the answer's body, for the access log */
} api_req;

/* Parses the query string into q (evhttp_clear_headers it after); -1 if malformed. */
int api_query_params(const api_req *r, struct evkeyvalq *q);
/* The same for a query string (NULL: none), as a client sent it. */
int api_query_parse(const char *query, struct evkeyvalq *q);

/* A request header, or NULL. */
const char *api_header(const api_req *r, const char *name);

/*
 * The organizer a statement must stay within, as a parameter: the token's
 * organizer, or NULL (any) for an admin.
 */
const char *api_scope_org(const api_req *r, char out[USHER_INT_TEXT_MAX]);

/* True when the role may act on the organizer's data (admin: every organizer). */
bool api_may_manage(const api_req *r, int64_t organizer_id);

/* id as decimal text for a statement parameter; NULL (SQL NULL) for 0. */
const char *api_id_text(int64_t id, char out[USHER_INT_TEXT_MAX]);

/* The server's running loops, read-only (none before they start or after they stop). */
api_loop *const *api_server_loops(api_server *srv, int *n);

/* The running loops with no live database connection right now. */
int api_server_loops_without_db(api_server *srv);

/* Monotonic nanoseconds. */
uint64_t api_now_ns(void);

#endif
