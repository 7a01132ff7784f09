/*
 * A worker pool's Prometheus metrics, served on 127.0.0.1:[pool.NAME]
 * metrics_port from the supervisor's own loop: jobs completed, failed,
 * retried and dead by queue and kind, job duration (handed to a child →
 * outcome, so with child_queue > 1 it includes the wait in the child's
 * queue) and start latency (runnable → handed to a child) histograms, and
 * the pool's current, desired (the autoscaling rule's answer, for an
 * outside autoscaler to follow), granted and busy sizes, queue depth and
 * database connection state.
 */
#ifndef USHER_POOL_METRICS_H
#define USHER_POOL_METRICS_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "handler.h"
#include "job.h"

typedef struct usher_pool_metrics usher_pool_metrics;

typedef struct usher_pool_gauges {
    int current, desired, granted, busy;
    int min, max;        /* the pool's bounds, so an alert can see it at its ceiling */
    int scale_out_depth; /* the depth past which it grows */
    int64_t depth;
    bool database_up;
    double cpu;       /* the supervisor's and its children's CPU use, of the host's cores */
    double rss_bytes; /* their resident memory */
} usher_pool_gauges;

/*
 * Starts serving on address:port ([worker] metrics_address; port 0: counts
 * but serves nothing). NULL when it cannot listen there (errbuf says why).
 */
USHER_MUSTCHECK usher_pool_metrics *usher_pool_metrics_new(struct event_base *base,
                                                           const char *pool, const char *address,
                                                           int port, char *errbuf, size_t errlen);
void usher_pool_metrics_free(usher_pool_metrics *m);

/* A job was handed to a child at now_us (µs since the epoch). */
void usher_pool_metrics_started(usher_pool_metrics *m, const usher_job *job, int64_t now_us);

/* A job's attempt ended (started_us: when it was handed to a child; 0 = never). */
void usher_pool_metrics_finished(usher_pool_metrics *m, const usher_job *job,
                                 const usher_handler_result *r, int64_t started_us, int64_t now_us);

void usher_pool_metrics_gauges(usher_pool_metrics *m, const usher_pool_gauges *g);

/*
 * The age of queue's oldest runnable job as the supervisor last read it
 * (0 when none waits, or the queue is paused) and the queue's age_budget_s.
 */
void usher_pool_metrics_queue_age(usher_pool_metrics *m, const char *queue, double oldest_s,
                                  int budget_s);

#endif
