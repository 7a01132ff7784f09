/*
 * The offload pool: a mutex-protected FIFO of jobs and a fixed set of
 * worker threads. A finished job goes back to its loop with
 * event_base_once() (libevent's threading is on, so another thread may
 * add an event and wake the loop), and waits on the `finished` list until
 * the loop runs it: at shutdown the jobs still on that list are the ones
 * whose loop stopped first, and api_offload_stop() finishes them. What a
 * worker keeps in slots (api_offload_keep) lives in its own thread-local
 * table, closed when the worker returns.
 */
#include "offload.h"

#include <assert.h>
#include <event2/event.h>
#include <stdlib.h>

#include "alloc.h"
#include "log.h"

typedef struct job {
    struct job *next, *prev; /* prev: only on the finished list */
    api_loop *loop;
    api_offload_fn work, done;
    void *arg;
} job;

typedef struct pool {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    job *head, *tail; /* queued, oldest first */
    job *finished;    /* worked, waiting for their loop to call done */
    bool stopping;
    int nthreads;
    pthread_t *threads;
} pool;

static pool *the_pool;

/* What this worker keeps, one row a slot it has used (two slots exist today). */
#define KEPT_MAX 8
static _Thread_local struct {
    const api_offload_slot *slot;
    void *value;
} kept[KEPT_MAX];

static void **kept_value(const api_offload_slot *slot)
{
    size_t i = 0;

    while (i < KEPT_MAX && kept[i].slot != NULL && kept[i].slot != slot)
        i++;
    assert(i < KEPT_MAX && "KEPT_MAX counts the slots");
    kept[i].slot = slot;
    return &kept[i].value;
}

void *api_offload_resource(const api_offload_slot *slot, const void *arg, usher_err *err, char *why,
                           size_t whylen)
{
    void **value = kept_value(slot);

    *err = USHER_OK;
    if (*value == NULL)
        *value = slot->open(arg, err, why, whylen);
    return *value;
}

void api_offload_drop(const api_offload_slot *slot)
{
    void **value = kept_value(slot);

    if (*value != NULL)
        slot->close(*value);
    *value = NULL;
}

static void close_kept(void)
{
    for (size_t i = 0; i < KEPT_MAX && kept[i].slot != NULL; i++) {
        if (kept[i].value != NULL)
            kept[i].slot->close(kept[i].value);
        kept[i].value = NULL;
    }
}

static void unlink_finished(pool *p, job *j)
{
    if (j->prev != NULL)
        j->prev->next = j->next;
    else
        p->finished = j->next;
    if (j->next != NULL)
        j->next->prev = j->prev;
}

/* On the loop thread: the job is back. */
static void deliver(evutil_socket_t fd, short what, void *arg)
{
    job *j = arg;
    pool *p = the_pool;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&p->mu);
    unlink_finished(p, j);
    pthread_mutex_unlock(&p->mu);
    j->done(j->arg);
    free(j);
}

static void *worker(void *arg)
{
    pool *p = arg;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        job *j = p->head;

        if (j == NULL) {
            if (p->stopping)
                break;
            pthread_cond_wait(&p->wake, &p->mu);
            continue;
        }
        p->head = j->next;
        if (p->head == NULL)
            p->tail = NULL;
        pthread_mutex_unlock(&p->mu);
        j->work(j->arg);
        pthread_mutex_lock(&p->mu);
        j->prev = NULL;
        j->next = p->finished;
        if (p->finished != NULL)
            p->finished->prev = j;
        p->finished = j;
        /* Under the lock, so deliver cannot run (and free j) before this returns. */
        if (event_base_once(j->loop->base, -1, EV_TIMEOUT, deliver, j, NULL) != 0)
            usher_log(USHER_LOG_ERR,
                      "offload: cannot hand a job back to loop %d; it finishes"
                      " at shutdown",
                      j->loop->index);
    }
    pthread_mutex_unlock(&p->mu);
    close_kept();
    return NULL;
}

usher_err api_offload_start(int nthreads)
{
    pool *p = usher_calloc(1, sizeof(*p));

    p->threads = usher_calloc((size_t)nthreads, sizeof(*p->threads));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    the_pool = p;
    for (; p->nthreads < nthreads; p->nthreads++) {
        if (pthread_create(&p->threads[p->nthreads], NULL, worker, p) != 0) {
            api_offload_stop();
            return USHER_ERR_SYSTEM;
        }
    }
    return USHER_OK;
}

void api_offload_stop(void)
{
    pool *p = the_pool;

    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    /* The loops are stopped: their undelivered jobs end here. The once
     * events that carried them are freed with the bases. */
    while (p->finished != NULL) {
        job *j = p->finished;

        unlink_finished(p, j);
        j->done(j->arg);
        free(j);
    }
    the_pool = NULL;
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}

bool api_offload(api_loop *loop, api_offload_fn work, api_offload_fn done, void *arg)
{
    pool *p = the_pool;
    job *j;

    if (p == NULL)
        return false;
    j = usher_calloc(1, sizeof(*j));
    *j = (job){ .loop = loop, .work = work, .done = done, .arg = arg };
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        free(j);
        return false;
    }
    if (p->tail != NULL)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
    return true;
}
