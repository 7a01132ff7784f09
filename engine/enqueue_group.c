/*
 * Leader and followers on one mutex: callers queue a request and wait on
 * its own condition variable until it is done; whoever finds no batch in
 * flight takes the queue (at most BATCH_MAX requests) and writes it with
 * the lock released, then marks the requests done and wakes their callers
 * and the next in line, who leads the next batch. One write at a time:
 * two or three at once made smaller batches and no more jobs per second
 * (bench/README.md, shared commits). Requests live on their callers'
 * stacks: the queue holds pointers, and a caller leaves only once its
 * request is done.
 */
#include "enqueue_group.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define BATCH_MAX 512
#define ERR_MAX   256

typedef struct request {
    const usher_enqueue_opts *job;
    usher_enqueued out;
    usher_err err;
    char errstr[ERR_MAX]; /* the leader's store's errstr on failure */
    pthread_cond_t wake;  /* signalled when done, or to lead */
    bool done;
} request;

struct usher_enqueue_group {
    pthread_mutex_t lock;
    request **waiting; /* queued, not yet taken by a leader */
    size_t nwaiting, cap;
    bool writing;           /* a leader is writing a batch */
    size_t leaving;         /* callers whose job is written, not yet returned */
    uint64_t commits, jobs; /* written so far (usher_enqueue_group_stats) */
};

usher_enqueue_group *usher_enqueue_group_new(void)
{
    usher_enqueue_group *g = calloc(1, sizeof(*g));

    if (g == NULL)
        return NULL;
    if (pthread_mutex_init(&g->lock, NULL) != 0) {
        free(g);
        return NULL;
    }
    return g;
}

void usher_enqueue_group_free(usher_enqueue_group *g)
{
    if (g == NULL)
        return;
    pthread_mutex_destroy(&g->lock);
    free(g->waiting);
    free(g);
}

void usher_enqueue_group_stats(usher_enqueue_group *g, uint64_t *commits, uint64_t *jobs)
{
    pthread_mutex_lock(&g->lock);
    *commits = g->commits;
    *jobs = g->jobs;
    pthread_mutex_unlock(&g->lock);
}

static void settle(request *r, usher_err err, const usher_store *st)
{
    r->err = err;
    if (err != USHER_OK)
        snprintf(r->errstr, sizeof(r->errstr), "%s", usher_store_errstr(st));
}

/* Writes the batch on st: one statement and one commit, or one job at a time if refused. */
static void write_batch(usher_store *st, request **batch, size_t n)
{
    usher_enqueue_opts *jobs = usher_malloc(n * sizeof(*jobs));
    usher_enqueued *outs = usher_malloc(n * sizeof(*outs));
    usher_err err;

    for (size_t i = 0; i < n; i++)
        jobs[i] = *batch[i]->job;
    err = usher_enqueue_batch(st, jobs, n, outs);
    for (size_t i = 0; i < n; i++) {
        if (err == USHER_OK) {
            batch[i]->out = outs[i];
            batch[i]->err = USHER_OK;
        } else if (n == 1) {
            settle(batch[i], err, st);
        } else {
            settle(batch[i], usher_enqueue(st, batch[i]->job, &batch[i]->out), st);
        }
    }
    free(jobs);
    free(outs);
}

/* With the lock held: takes up to BATCH_MAX waiting requests into batch. */
static size_t take(usher_enqueue_group *g, request **batch)
{
    size_t n = g->nwaiting < BATCH_MAX ? g->nwaiting : BATCH_MAX;

    memcpy(batch, g->waiting, n * sizeof(*batch));
    memmove(g->waiting, g->waiting + n, (g->nwaiting - n) * sizeof(*g->waiting));
    g->nwaiting -= n;
    return n;
}

static void queue_request(usher_enqueue_group *g, request *r)
{
    if (g->nwaiting == g->cap) {
        size_t cap = g->cap > 0 ? 2 * g->cap : 64;

        g->waiting = usher_realloc(g->waiting, cap * sizeof(*g->waiting));
        g->cap = cap;
    }
    g->waiting[g->nwaiting++] = r;
}

usher_err usher_enqueue_shared(usher_enqueue_group *g, usher_store *st,
                               const usher_enqueue_opts *job, usher_enqueued *out)
{
    request r = { .job = job, .wake = PTHREAD_COND_INITIALIZER };
    request *batch[BATCH_MAX];
    bool yielded = false;

    pthread_mutex_lock(&g->lock);
    queue_request(g, &r);
    while (!r.done) {
        if (g->writing) {
            pthread_cond_wait(&r.wake, &g->lock);
            continue;
        }
        /*
         * The callers of the last batch are on their way out, and under
         * load they call again at once: let them queue first, or they wait
         * a whole write for the next batch (two cohorts taking turns).
         */
        if (g->leaving > 0 && !yielded) {
            yielded = true;
            pthread_mutex_unlock(&g->lock);
            sched_yield();
            pthread_mutex_lock(&g->lock);
            continue;
        }
        /* r is in the batch unless more than BATCH_MAX wait before it: then it leads again. */
        size_t n = take(g, batch);

        g->writing = true;
        pthread_mutex_unlock(&g->lock);
        write_batch(st, batch, n);
        pthread_mutex_lock(&g->lock);
        g->writing = false;
        g->commits++;
        g->jobs += n;
        g->leaving += n;
        /* Only the batch's callers and the next leader wake: no herd. */
        for (size_t i = 0; i < n; i++) {
            batch[i]->done = true;
            if (batch[i] != &r)
                pthread_cond_signal(&batch[i]->wake);
        }
        if (g->nwaiting > 0)
            pthread_cond_signal(&g->waiting[0]->wake);
    }
    g->leaving--;
    pthread_mutex_unlock(&g->lock);
    pthread_cond_destroy(&r.wake);
    *out = r.out;
    if (r.err != USHER_OK)
        return usher_store_fail(st, r.err, "%s", r.errstr);
    return USHER_OK;
}
