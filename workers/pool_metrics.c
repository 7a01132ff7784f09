#include "pool_metrics.h"

#include <event2/buffer.h>
#include <stddef.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "claim.h"
#include "prom.h"

#define SERIES_MAX 256 /* (queue, kind) pairs tracked; more are counted as kind "other" */

/* A queue or kind name as a label value, and the label sets of a series and of a queue. */
#define LABEL_NAME_MAX USHER_PROM_ESCAPED_MAX(USHER_NAME_MAX)
#define SERIES_LABELS_MAX \
    (sizeof("pool=\"\",queue=\"\",kind=\"\"") + USHER_NAME_MAX + 2 * LABEL_NAME_MAX)
#define QUEUE_LABELS_MAX (sizeof("pool=\"\",queue=\"\"") + USHER_NAME_MAX + LABEL_NAME_MAX)

typedef struct series {
    char queue[USHER_NAME_MAX], kind[USHER_NAME_MAX];
    uint64_t completed, failed, retried, dead, returned;
    usher_prom_histogram duration;
} series;

typedef struct queue_latency {
    char queue[USHER_NAME_MAX];
    usher_prom_histogram latency;
    bool aged; /* oldest_s and budget_s have been set */
    double oldest_s;
    int budget_s;
} queue_latency;

struct usher_pool_metrics {
    char pool[USHER_NAME_MAX];
    struct evhttp *http;
    series *series;
    size_t nseries;
    queue_latency *queues;
    size_t nqueues;
    usher_pool_gauges gauges;
};

static series *series_of(usher_pool_metrics *m, const char *queue, const char *kind)
{
    for (size_t i = 0; i < m->nseries; i++) {
        if (strcmp(m->series[i].queue, queue) == 0 && strcmp(m->series[i].kind, kind) == 0)
            return &m->series[i];
    }
    if (m->nseries == SERIES_MAX)
        kind = "other";
    if (m->nseries == SERIES_MAX) {
        for (size_t i = 0; i < m->nseries; i++) {
            if (strcmp(m->series[i].kind, "other") == 0)
                return &m->series[i];
        }
        return &m->series[SERIES_MAX - 1];
    }
    series *s = &m->series[m->nseries++];

    memset(s, 0, sizeof(*s));
    snprintf(s->queue, sizeof(s->queue), "%s", queue);
    snprintf(s->kind, sizeof(s->kind), "%s", kind);
    return s;
}

static queue_latency *latency_of(usher_pool_metrics *m, const char *queue)
{
    for (size_t i = 0; i < m->nqueues; i++) {
        if (strcmp(m->queues[i].queue, queue) == 0)
            return &m->queues[i];
    }
    if (m->nqueues == SERIES_MAX)
        return &m->queues[SERIES_MAX - 1];
    queue_latency *q = &m->queues[m->nqueues++];

    memset(q, 0, sizeof(*q));
    snprintf(q->queue, sizeof(q->queue), "%s", queue);
    return q;
}

void usher_pool_metrics_started(usher_pool_metrics *m, const usher_job *job, int64_t now_us)
{
    if (m == NULL || job->run_at_us <= 0)
        return;
    usher_prom_observe(&latency_of(m, job->queue)->latency,
                       (double)(now_us - job->run_at_us) / 1e6);
}

void usher_pool_metrics_finished(usher_pool_metrics *m, const usher_job *job,
                                 const usher_handler_result *r, int64_t started_us, int64_t now_us)
{
    series *s;

    if (m == NULL)
        return;
    s = series_of(m, job->queue, job->kind);
    switch (r->outcome) {
    case USHER_OUTCOME_OK:
        s->completed++;
        break;
    case USHER_OUTCOME_SNOOZE:
        s->returned++; /* given back or snoozed: no attempt spent */
        break;
    default:
        s->failed++;
        /* The fail statement retries while attempts remain, unless permanent. */
        if (r->outcome == USHER_OUTCOME_RETRY && job->attempt < job->max_attempts)
            s->retried++;
        else
            s->dead++;
    }
    if (started_us > 0 && r->outcome != USHER_OUTCOME_SNOOZE)
        usher_prom_observe(&s->duration, (double)(now_us - started_us) / 1e6);
}

void usher_pool_metrics_gauges(usher_pool_metrics *m, const usher_pool_gauges *g)
{
    if (m != NULL)
        m->gauges = *g;
}

void usher_pool_metrics_queue_age(usher_pool_metrics *m, const char *queue, double oldest_s,
                                  int budget_s)
{
    queue_latency *q;

    if (m == NULL)
        return;
    q = latency_of(m, queue);
    q->aged = true;
    q->oldest_s = oldest_s;
    q->budget_s = budget_s;
}

/* A gauge per queue whose age has been read: the field at offset as a double or an int. */
static int queue_gauge(struct evbuffer *out, usher_pool_metrics *m, const char *name,
                       const char *help, bool is_double, size_t field)
{
    int rc = evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);

    for (size_t i = 0; i < m->nqueues && rc >= 0; i++) {
        const char *at = (const char *)&m->queues[i] + field;
        char q[LABEL_NAME_MAX];

        if (!m->queues[i].aged)
            continue;
        usher_prom_escape(m->queues[i].queue, q, sizeof(q));
        rc = is_double ? evbuffer_add_printf(out, "%s{pool=\"%s\",queue=\"%s\"} %.3f\n", name,
                                             m->pool, q, *(const double *)at)
                       : evbuffer_add_printf(out, "%s{pool=\"%s\",queue=\"%s\"} %d\n", name,
                                             m->pool, q, *(const int *)at);
    }
    return rc;
}

static int counter(struct evbuffer *out, usher_pool_metrics *m, const char *name, const char *help,
                   size_t field)
{
    int rc = evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);

    for (size_t i = 0; i < m->nseries && rc >= 0; i++) {
        char q[LABEL_NAME_MAX], k[LABEL_NAME_MAX];

        usher_prom_escape(m->series[i].queue, q, sizeof(q));
        usher_prom_escape(m->series[i].kind, k, sizeof(k));
        rc = evbuffer_add_printf(out, "%s{pool=\"%s\",queue=\"%s\",kind=\"%s\"} %llu\n", name,
                                 m->pool, q, k,
                                 (unsigned long long)*(uint64_t *)((char *)&m->series[i] + field));
    }
    return rc;
}

/* The claims' deadline counters (engine/claim.h), for the whole pool. */
static int deadline_counters(struct evbuffer *out, const usher_pool_metrics *m)
{
    uint64_t missed, dropped;

    usher_claim_deadline_counts(&missed, &dropped);
    return evbuffer_add_printf(
        out,
        "# HELP usher_jobs_deadline_missed_total Jobs claimed after their deadline.\n"
        "# TYPE usher_jobs_deadline_missed_total counter\n"
        "usher_jobs_deadline_missed_total{pool=\"%s\"} %llu\n"
        "# HELP usher_jobs_deadline_dropped_total Jobs claimed after their deadline and cancelled"
        " (their kind's deadline_drop).\n"
        "# TYPE usher_jobs_deadline_dropped_total counter\n"
        "usher_jobs_deadline_dropped_total{pool=\"%s\"} %llu\n",
        m->pool, (unsigned long long)missed, m->pool, (unsigned long long)dropped);
}

static int render(usher_pool_metrics *m, struct evbuffer *out)
{
    const usher_pool_gauges *g = &m->gauges;
    int rc = 0;

    rc = counter(out, m, "usher_jobs_completed_total", "Jobs that completed.",
                 offsetof(series, completed));
    if (rc >= 0)
        rc = counter(out, m, "usher_jobs_failed_total",
                     "Attempts that failed (then retried or dead).", offsetof(series, failed));
    if (rc >= 0)
        rc = counter(out, m, "usher_jobs_retried_total", "Failed attempts that will be retried.",
                     offsetof(series, retried));
    if (rc >= 0)
        rc = counter(out, m, "usher_jobs_dead_total", "Jobs that went to the dead-letter queue.",
                     offsetof(series, dead));
    if (rc >= 0)
        rc = counter(out, m, "usher_jobs_returned_total",
                     "Jobs given back or snoozed without spending an attempt.",
                     offsetof(series, returned));
    if (rc >= 0)
        rc = deadline_counters(out, m);
    if (rc >= 0)
        rc = evbuffer_add_printf(out, "# HELP usher_job_duration_seconds From a job handed to a"
                                      " child to its outcome.\n"
                                      "# TYPE usher_job_duration_seconds histogram\n");
    for (size_t i = 0; i < m->nseries && rc >= 0; i++) {
        char labels[SERIES_LABELS_MAX], q[LABEL_NAME_MAX], k[LABEL_NAME_MAX];

        if (atomic_load(&m->series[i].duration.count) == 0)
            continue;
        usher_prom_escape(m->series[i].queue, q, sizeof(q));
        usher_prom_escape(m->series[i].kind, k, sizeof(k));
        snprintf(labels, sizeof(labels), "pool=\"%s\",queue=\"%s\",kind=\"%s\"", m->pool, q, k);
        rc = usher_prom_histogram_render(out, "usher_job_duration_seconds", labels,
                                         &m->series[i].duration);
    }
    if (rc >= 0)
        rc = evbuffer_add_printf(out, "# HELP usher_job_start_latency_seconds From a job becoming"
                                      " runnable to a child getting it.\n"
                                      "# TYPE usher_job_start_latency_seconds histogram\n");
    for (size_t i = 0; i < m->nqueues && rc >= 0; i++) {
        char labels[QUEUE_LABELS_MAX], q[LABEL_NAME_MAX];

        usher_prom_escape(m->queues[i].queue, q, sizeof(q));
        snprintf(labels, sizeof(labels), "pool=\"%s\",queue=\"%s\"", m->pool, q);
        rc = usher_prom_histogram_render(out, "usher_job_start_latency_seconds", labels,
                                         &m->queues[i].latency);
    }
    if (rc >= 0)
        rc = queue_gauge(out, m, "usher_queue_oldest_job_age_seconds",
                         "Age of the queue's oldest runnable job (0: none waits, or the queue is"
                         " paused), read every second.",
                         true, offsetof(queue_latency, oldest_s));
    if (rc >= 0)
        rc = queue_gauge(out, m, "usher_queue_age_budget_seconds",
                         "The queue's age_budget_s: a runnable job older than this is late.", false,
                         offsetof(queue_latency, budget_s));
    if (rc >= 0)
        rc = evbuffer_add_printf(
            out,
            "# HELP usher_pool_size Children of the pool: running now, wanted by the"
            " autoscaling rule, granted by the downstream cap, busy with a job, and the"
            " pool's configured bounds.\n"
            "# TYPE usher_pool_size gauge\n"
            "usher_pool_size{pool=\"%s\",state=\"current\"} %d\n"
            "usher_pool_size{pool=\"%s\",state=\"desired\"} %d\n"
            "usher_pool_size{pool=\"%s\",state=\"granted\"} %d\n"
            "usher_pool_size{pool=\"%s\",state=\"busy\"} %d\n"
            "usher_pool_size{pool=\"%s\",state=\"min\"} %d\n"
            "usher_pool_size{pool=\"%s\",state=\"max\"} %d\n"
            "# HELP usher_pool_scale_out_depth The queue depth past which the pool grows.\n"
            "# TYPE usher_pool_scale_out_depth gauge\n"
            "usher_pool_scale_out_depth{pool=\"%s\"} %d\n"
            "# HELP usher_pool_queue_depth Runnable jobs in the pool's queues (counted up to"
            " 100000).\n"
            "# TYPE usher_pool_queue_depth gauge\n"
            "usher_pool_queue_depth{pool=\"%s\"} %lld\n"
            "# HELP usher_pool_cpu_ratio CPU use of the pool's supervisor and children over the"
            " last seconds, of all the host's cores (0..1).\n"
            "# TYPE usher_pool_cpu_ratio gauge\n"
            "usher_pool_cpu_ratio{pool=\"%s\"} %.4f\n"
            "# HELP usher_pool_memory_bytes Resident memory of the pool's supervisor and"
            " children.\n"
            "# TYPE usher_pool_memory_bytes gauge\n"
            "usher_pool_memory_bytes{pool=\"%s\"} %.0f\n"
            "# HELP usher_database_up 1 while the supervisor's PostgreSQL connection is up.\n"
            "# TYPE usher_database_up gauge\n"
            "usher_database_up{pool=\"%s\"} %d\n",
            m->pool, g->current, m->pool, g->desired, m->pool, g->granted, m->pool, g->busy,
            m->pool, g->min, m->pool, g->max, m->pool, g->scale_out_depth, m->pool,
            (long long)g->depth, m->pool, g->cpu, m->pool, g->rss_bytes, m->pool,
            g->database_up ? 1 : 0);
    return rc < 0 ? -1 : 0;
}

static void serve(struct evhttp_request *req, void *arg)
{
    usher_pool_metrics *m = arg;
    struct evbuffer *out;

    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET ||
        strcmp(evhttp_request_get_uri(req), "/metrics") != 0) {
        evhttp_send_error(req, 404, "only GET /metrics here");
        return;
    }
    out = usher_need(evbuffer_new());
    usher_prom_reply(req, out, render(m, out) == 0);
}

usher_pool_metrics *usher_pool_metrics_new(struct event_base *base, const char *pool,
                                           const char *address, int port, char *errbuf,
                                           size_t errlen)
{
    usher_pool_metrics *m = usher_calloc(1, sizeof(*m));

    m->series = usher_calloc(SERIES_MAX, sizeof(*m->series));
    m->queues = usher_calloc(SERIES_MAX, sizeof(*m->queues));
    usher_prom_escape(pool, m->pool, sizeof(m->pool));
    if (port == 0)
        return m;
    m->http = usher_need(evhttp_new(base));
    if (evhttp_bind_socket(m->http, address, (ev_uint16_t)port) != 0) {
        snprintf(errbuf, errlen, "metrics_port %d: cannot listen on %s:%d", port, address, port);
        usher_pool_metrics_free(m);
        return NULL;
    }
    evhttp_set_gencb(m->http, serve, m);
    return m;
}

void usher_pool_metrics_free(usher_pool_metrics *m)
{
    if (m == NULL)
        return;
    if (m->http != NULL)
        evhttp_free(m->http);
    free(m->series);
    free(m->queues);
    free(m);
}
