/*
 * Single flight for cache misses (see flight.h). The reads in flight are
 * one table for the whole process, behind one mutex: a loop thread that
 * misses a key looks it up there, and either joins the read in flight or
 * starts one on its own database connections. A waiter is a request plus
 * a timer on its own loop; the read's answer, copied into each waiter under
 * the mutex, wakes that timer with event_active() (thread-safe: the bases
 * are made with libevent's pthreads locking), so every request is answered
 * on the thread that owns it. The timer, when it fires on its own, is the
 * end of the wait: whichever of the two takes the mutex first decides.
 * A waiter is always on one list: its flight's while it waits, then the
 * answered list until its loop runs it, so api_flight_stop() finds every
 * one of them when the loops have stopped.
 *
 * Process-wide rather than per loop: with N loops a per-loop table still
 * sends N reads of a hot key to PostgreSQL at each miss, and the lock is
 * held only for a lookup and a list insert (a miss is rare by design), so
 * the loops do not contend on it in the steady state.
 */
#include "flight.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cache.h"
#include "metrics.h"
#include "replica.h"
#include "reply.h"

#define BUCKETS 64
#define KEY_MAX 128

typedef struct flight flight;

typedef struct waiter {
    struct waiter *next, **pprev; /* on its flight's list, then on the answered list */
    flight *flight;               /* NULL once answered or given up */
    api_req *r;
    api_flight_fn done;
    struct event *wake; /* on r's loop: the answer, or the end of the wait */
    bool leads;         /* its request started the read */
    api_flight_answer answer;
    char *value;
    size_t len;
} waiter;

struct flight {
    flight *next; /* in its bucket */
    api_loop *loop;
    char key[KEY_MAX], cache[16];
    int ttl_s, stale_s;
    waiter *waiters;
    atomic_bool forgotten; /* the key changed while it was read: joined by no one more */
};

/* All below, and every waiter's links, under the mutex. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static flight *buckets[BUCKETS];
static waiter *answered; /* woken, not yet run by their loops */

static flight **bucket_of(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
        h = (h ^ *p) * 16777619u;
    return &buckets[h % BUCKETS];
}

static void push(waiter **head, waiter *w)
{
    w->next = *head;
    if (*head != NULL)
        (*head)->pprev = &w->next;
    *head = w;
    w->pprev = head;
}

static void unlink_waiter(waiter *w)
{
    *w->pprev = w->next;
    if (w->next != NULL)
        w->next->pprev = w->pprev;
}

/* The flight that misses of key join, or NULL. Under the mutex. */
static flight *find(const char *key)
{
    flight *f = *bucket_of(key);

    while (f != NULL && (strcmp(f->key, key) != 0 || atomic_load(&f->forgotten)))
        f = f->next;
    return f;
}

static void unlink_flight(flight *f)
{
    for (flight **at = bucket_of(f->key); *at != NULL; at = &(*at)->next) {
        if (*at == f) {
            *at = f->next;
            return;
        }
    }
}

/* Runs on the waiter's loop: hands it its answer, or ends its wait. */
static void woken(evutil_socket_t fd, short what, void *arg)
{
    waiter *w = arg;
    bool gave_up;
    char cache[16];

    (void)fd;
    (void)what;
    pthread_mutex_lock(&lock);
    unlink_waiter(w);
    gave_up = w->flight != NULL; /* waited long enough: it reads on its own */
    if (gave_up) {
        memcpy(cache, w->flight->cache, sizeof(cache));
        w->answer = API_FLIGHT_OWN;
    }
    pthread_mutex_unlock(&lock);
    if (gave_up)
        api_metrics_cache_load(w->r->loop->srv->metrics, cache, API_CACHE_WAITED);
    event_free(w->wake);
    w->done(w->r, w->answer, w->value, w->len);
    free(w->value);
    free(w);
}

/* Answers every waiter of f (each on its own loop) and forgets f. */
static void land(flight *f, api_flight_answer answer, const char *value, size_t len)
{
    api_metrics *m = f->loop->srv->metrics;

    pthread_mutex_lock(&lock);
    unlink_flight(f);
    while (f->waiters != NULL) {
        waiter *w = f->waiters;

        unlink_waiter(w);
        push(&answered, w);
        w->flight = NULL;
        w->answer = answer;
        if (value != NULL) {
            w->value = usher_malloc(len + 1);
            memcpy(w->value, value, len);
            w->value[len] = '\0';
            w->len = len;
        }
        if (w->answer == API_FLIGHT_OWN || !w->leads)
            api_metrics_cache_load(m, f->cache,
                                   w->answer == API_FLIGHT_OWN ? API_CACHE_READ : API_CACHE_SHARED);
        event_active(w->wake, EV_TIMEOUT, 1);
    }
    pthread_mutex_unlock(&lock);
    free(f);
}

static void landed(PGresult *res, const char *errmsg, void *arg)
{
    flight *f = arg;
    bool ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;

    (void)errmsg; /* a failed read is read again by each waiter, which answers the error */
    if (ok && PQntuples(res) == 0) {
        land(f, API_FLIGHT_NO_ROW, NULL, 0);
    } else if (ok && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        const char *value = PQgetvalue(res, 0, 0);
        size_t len = (size_t)PQgetlength(res, 0, 0);

        if (!atomic_load(&f->forgotten))
            api_cache_put(f->loop, f->key, value, len, f->ttl_s, f->stale_s);
        land(f, API_FLIGHT_ROW, value, len);
    } else {
        land(f, API_FLIGHT_OWN, NULL, 0);
    }
}

/* A new flight for read, in its bucket. Under the mutex. */
static flight *flight_new(api_loop *loop, const api_flight_read *read)
{
    flight *f = usher_calloc(1, sizeof(*f));
    flight **head = bucket_of(read->key);

    f->loop = loop;
    atomic_init(&f->forgotten, false);
    memcpy(f->key, read->key, strlen(read->key) + 1);
    strncpy(f->cache, read->cache, sizeof(f->cache) - 1);
    f->ttl_s = read->ttl_s;
    f->stale_s = read->stale_s;
    f->next = *head;
    *head = f;
    return f;
}

/*
 * Puts w on the flight of read's key, starting one when none is in flight
 * (*started: w's request leads it and must send its read). False when
 * w's wait could not be timed (event_add failed): w is on no list.
 */
static bool enlist(waiter *w, const api_flight_read *read, flight **started)
{
    const struct timeval wait = { API_FLIGHT_WAIT_MS / 1000, API_FLIGHT_WAIT_MS % 1000 * 1000 };
    flight *f;

    *started = NULL;
    pthread_mutex_lock(&lock);
    f = find(read->key);
    if (f == NULL)
        f = *started = flight_new(w->r->loop, read);
    /* The one that leads waits for its own read: no end to its wait. */
    if (*started != NULL || evtimer_add(w->wake, &wait) == 0) {
        w->flight = f;
        w->leads = *started != NULL;
        push(&f->waiters, w);
    }
    pthread_mutex_unlock(&lock);
    return w->flight != NULL;
}

static waiter *waiter_new(api_req *r, api_flight_fn done)
{
    waiter *w = usher_calloc(1, sizeof(*w));

    *w = (waiter){ .r = r, .done = done };
    w->wake = usher_need(evtimer_new(r->loop->base, woken, w));
    return w;
}

void api_flight_join(api_req *r, const api_flight_read *read, api_flight_fn done)
{
    api_metrics *m = r->loop->srv->metrics;
    waiter *w = strlen(read->key) < KEY_MAX ? waiter_new(r, done) : NULL;
    flight *started = NULL;

    if (w == NULL || !enlist(w, read, &started)) {
        if (w != NULL)
            event_free(w->wake);
        free(w);
        api_metrics_cache_load(m, read->cache, API_CACHE_READ);
        done(r, API_FLIGHT_OWN, NULL, 0);
        return;
    }
    if (started == NULL)
        return; /* woken() answers it */
    if (api_read(r->loop, read->sql, read->nparams, read->params, landed, started) == USHER_OK)
        api_metrics_cache_load(m, read->cache, API_CACHE_READ);
    else
        land(started, API_FLIGHT_OWN, NULL, 0); /* no connection: each one answers it */
}

void api_flight_forget(const char *key)
{
    flight *f;

    pthread_mutex_lock(&lock);
    if ((f = find(key)) != NULL)
        atomic_store(&f->forgotten, true);
    pthread_mutex_unlock(&lock);
}

/* Ends w's request with a 503 (the loops are stopped) and frees w. */
static void abandon(waiter *w)
{
    unlink_waiter(w);
    event_free(w->wake);
    api_reply_error(w->r, 503, "unavailable", "the server is stopping");
    free(w->value);
    free(w);
}

void api_flight_stop(void)
{
    pthread_mutex_lock(&lock);
    for (size_t b = 0; b < BUCKETS; b++) {
        for (flight *f = buckets[b]; f != NULL; f = f->next) {
            while (f->waiters != NULL)
                abandon(f->waiters);
        }
    }
    while (answered != NULL)
        abandon(answered);
    pthread_mutex_unlock(&lock);
}
