/*
 * A loop thread's PostgreSQL connections (pgpool.h). A statement goes to
 * the connected connection with the fewest statements waiting. While no
 * connection is up (the first connect after start, or a database restart)
 * statements wait in the pool, in order, for at most wait_ms: the first
 * connection to come up takes them all, and those still waiting at their
 * deadline fail as the database being unreachable. So a request that
 * arrives a moment too early, or during a short restart, is answered late
 * rather than refused.
 */
#include "pgpool.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "log.h"

typedef struct waiter {
    struct waiter *next;
    usher_pg_stmt stmt;
    usher_pg_result_fn done;
    void *arg;
    uint64_t deadline_ms; /* CLOCK_MONOTONIC */
} waiter;

struct api_pgpool {
    int size;
    int wait_ms;
    usher_pgloop **conns;
    bool gated;               /* api_pgpool_gate: only usable connections take statements */
    bool *usable;             /* per connection, while gated */
    usher_pgloop_hooks hooks; /* the caller's */
    waiter *head, *tail;
    struct event *expire; /* fails the waiters whose deadline passed */
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void waiter_free(waiter *w)
{
    usher_pg_stmt_release(&w->stmt);
    free(w);
}

static waiter *waiter_new(const char *sql, int nparams, const char *const *params)
{
    waiter *w = usher_calloc(1, sizeof(*w));

    usher_pg_stmt_copy(&w->stmt, sql, nparams, params);
    return w;
}

/* Arms the expiry timer for the oldest waiter (deadlines only grow). */
static void arm_expiry(api_pgpool *pool)
{
    uint64_t now = now_ms(), left;
    struct timeval tv;

    if (pool->head == NULL) {
        event_del(pool->expire);
        return;
    }
    left = pool->head->deadline_ms > now ? pool->head->deadline_ms - now : 0;
    tv.tv_sec = (time_t)(left / 1000);
    tv.tv_usec = (suseconds_t)(left % 1000 * 1000);
    if (event_add(pool->expire, &tv) != 0)
        usher_log(USHER_LOG_ERR, "cannot arm the database wait timer");
}

static waiter *pop(api_pgpool *pool)
{
    waiter *w = pool->head;

    if (w != NULL) {
        pool->head = w->next;
        if (pool->head == NULL)
            pool->tail = NULL;
    }
    return w;
}

static void expire_due(evutil_socket_t fd, short what, void *arg)
{
    api_pgpool *pool = arg;
    uint64_t now = now_ms();

    (void)fd;
    (void)what;
    while (pool->head != NULL && pool->head->deadline_ms <= now) {
        waiter *w = pop(pool);

        w->done(NULL, "the database is not reachable", w->arg);
        waiter_free(w);
    }
    arm_expiry(pool);
}

/* The connection pg came up: it takes every waiting statement, in order. */
static void flush_waiters(api_pgpool *pool, usher_pgloop *pg)
{
    waiter *w;

    while ((w = pop(pool)) != NULL) {
        usher_err err = usher_pgloop_query(pg, w->stmt.sql, w->stmt.nparams,
                                           (const char *const *)w->stmt.params, w->done, w->arg);

        if (err != USHER_OK)
            w->done(NULL, usher_strerror(err), w->arg);
        waiter_free(w);
    }
    arm_expiry(pool);
}

static void on_connected(usher_pgloop *pg, void *arg)
{
    api_pgpool *pool = arg;

    for (int i = 0; i < pool->size; i++) {
        if (pool->conns[i] == pg)
            pool->usable[i] = false; /* maybe another server now: judged again */
    }
    /* The caller's hook first: a LISTEN it sends goes ahead of the waiters. */
    if (pool->hooks.connected != NULL)
        pool->hooks.connected(pg, pool->hooks.arg);
    flush_waiters(pool, pg);
}

static void on_disconnected(const char *why, void *arg)
{
    api_pgpool *pool = arg;

    if (pool->hooks.disconnected != NULL)
        pool->hooks.disconnected(why, pool->hooks.arg);
}

static void on_notified(const char *channel, void *arg)
{
    api_pgpool *pool = arg;

    if (pool->hooks.notified != NULL)
        pool->hooks.notified(channel, pool->hooks.arg);
}

static void on_timed(double queued_s, double ran_s, void *arg)
{
    api_pgpool *pool = arg;

    if (pool->hooks.timed != NULL)
        pool->hooks.timed(queued_s, ran_s, pool->hooks.arg);
}

usher_err api_pgpool_new(struct event_base *base, const char *conninfo, int size, int wait_ms,
                         const usher_pgloop_hooks *hooks, api_pgpool **out)
{
    api_pgpool *pool = usher_calloc(1, sizeof(*pool));
    usher_pgloop_hooks ours = { .connected = on_connected,
                                .disconnected = on_disconnected,
                                .notified = on_notified,
                                .timed = on_timed,
                                .arg = pool };

    *out = NULL;
    pool->conns = usher_calloc((size_t)size, sizeof(*pool->conns));
    pool->usable = usher_calloc((size_t)size, sizeof(*pool->usable));
    pool->expire = usher_need(evtimer_new(base, expire_due, pool));
    pool->wait_ms = wait_ms;
    if (hooks != NULL)
        pool->hooks = *hooks;
    for (int i = 0; i < size; i++) {
        usher_err err = usher_pgloop_new(base, conninfo, &ours, &pool->conns[i]);

        if (err != USHER_OK) {
            api_pgpool_free(pool);
            return err;
        }
        pool->size = i + 1;
    }
    *out = pool;
    return USHER_OK;
}

void api_pgpool_free(api_pgpool *pool)
{
    waiter *w;

    if (pool == NULL)
        return;
    for (int i = 0; i < pool->size; i++)
        usher_pgloop_free(pool->conns[i]);
    while ((w = pop(pool)) != NULL) {
        w->done(NULL, "usher-api is stopping", w->arg);
        waiter_free(w);
    }
    if (pool->expire != NULL)
        event_free(pool->expire);
    free(pool->conns);
    free(pool->usable);
    free(pool);
}

/* Holds the statement until a connection comes up or wait_ms pass. */
static USHER_MUSTCHECK usher_err wait_for_connection(api_pgpool *pool, const char *sql, int nparams,
                                                     const char *const *params,
                                                     usher_pg_result_fn done, void *arg)
{
    waiter *w;

    if (pool->wait_ms <= 0)
        return USHER_ERR_DB;
    w = waiter_new(sql, nparams, params);
    w->done = done;
    w->arg = arg;
    w->deadline_ms = now_ms() + (uint64_t)pool->wait_ms;
    if (pool->tail != NULL)
        pool->tail->next = w;
    else
        pool->head = w;
    pool->tail = w;
    if (pool->head == w)
        arm_expiry(pool);
    return USHER_OK;
}

usher_err api_pgpool_query(api_pgpool *pool, const char *sql, int nparams,
                           const char *const *params, usher_pg_result_fn done, void *arg)
{
    usher_pgloop *best = NULL;
    int best_pending = 0;

    for (int i = 0; i < pool->size; i++) {
        int pending = usher_pgloop_pending(pool->conns[i]);

        if (!api_pgpool_usable(pool, i))
            continue;
        if (best == NULL || pending < best_pending) {
            best = pool->conns[i];
            best_pending = pending;
        }
    }
    if (best == NULL)
        return wait_for_connection(pool, sql, nparams, params, done, arg);
    return usher_pgloop_query(best, sql, nparams, params, done, arg);
}

int api_pgpool_connected(const api_pgpool *pool)
{
    int n = 0;

    for (int i = 0; i < pool->size; i++)
        n += usher_pgloop_connected(pool->conns[i]);
    return n;
}

int api_pgpool_busy(const api_pgpool *pool)
{
    int n = 0;

    for (int i = 0; i < pool->size; i++)
        n += usher_pgloop_pending(pool->conns[i]) > 0;
    return n;
}

int api_pgpool_size(const api_pgpool *pool)
{
    return pool->size;
}

void api_pgpool_gate(api_pgpool *pool)
{
    pool->gated = true;
}

void api_pgpool_set_usable(api_pgpool *pool, int i, bool usable)
{
    pool->usable[i] = usable;
}

bool api_pgpool_usable(const api_pgpool *pool, int i)
{
    return usher_pgloop_connected(pool->conns[i]) && (!pool->gated || pool->usable[i]);
}

int api_pgpool_usable_count(const api_pgpool *pool)
{
    int n = 0;

    for (int i = 0; i < pool->size; i++)
        n += api_pgpool_usable(pool, i);
    return n;
}

usher_err api_pgpool_query_on(api_pgpool *pool, int i, const char *sql, int nparams,
                              const char *const *params, usher_pg_result_fn done, void *arg)
{
    if (i < 0 || i >= pool->size)
        return USHER_ERR_DB;
    return usher_pgloop_query(pool->conns[i], sql, nparams, params, done, arg);
}
