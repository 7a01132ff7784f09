/*
 * usher-bench-queue: the queue engine's throughput and latency, measured
 * in-process against a real PostgreSQL. Three phases, each starting from
 * an empty queue `default` (usher_jobs and usher_queue_stats truncated):
 *
 *   enqueue  P producer threads, each with its own connection, call
 *            usher_enqueue once per job (~200-byte payload).
 *   drain    100,000 jobs are filled with usher_enqueue_batch (untimed),
 *            then K consumer threads loop usher_claim(B) -> usher_complete
 *            until the queue is empty; every job must be completed once.
 *   latency  one producer enqueues at a steady rate on an absolute
 *            schedule, each payload carrying its CLOCK_MONOTONIC send time;
 *            one consumer waits on a usher_listener and records now - sent
 *            for every job it claims.
 *
 * Threads open their connections before a start gate, so the timed part
 * is queue work only. Each phase prints one JSON line on stdout; errors go
 * to stderr and make the exit status non-zero. bench/queue runs this
 * three times next to a pgbench floor and reports medians.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "claim.h"
#include "cli.h"
#include "config.h"
#include "enqueue.h"
#include "error.h"
#include "listener.h"
#include "store.h"

#define PROGRAM       "usher-bench-queue"
#define QUEUE         "default"
#define KIND          "test.noop"
#define PAYLOAD_BYTES 200
#define FILL_BATCH    1000
#define LATENCY_BATCH 100
#define NS_PER_S      1000000000LL
#define NS_PER_MS     1000000LL

/* The drain's defaults, chosen by measurement on 2 cores (bench/README.md). */
#define DRAIN_CONSUMERS 2
#define DRAIN_BATCH     1000

typedef struct bench_opts {
    const char *phase; /* enqueue, drain, latency or all */
    long long jobs;    /* enqueue and drain; 0: the phase's default */
    long long producers, consumers, batch, rate, seconds;
} bench_opts;

typedef struct bench {
    usher_config cfg;
    bench_opts opts;
    usher_store *admin; /* truncates, fills and verifies */
} bench;

/* ---------------------------------------------------------------- helpers */

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static double seconds_between(int64_t start_ns, int64_t end_ns)
{
    return (double)(end_ns - start_ns) / (double)NS_PER_S;
}

/* Reports a failed engine call on st; returns 1, the exit status. */
static int fail(usher_store *st, usher_err err, const char *what)
{
    const char *detail = st != NULL ? usher_store_errstr(st) : "";

    fprintf(stderr, "%s: %s: %s%s%s\n", PROGRAM, what, usher_strerror(err),
            detail[0] != '\0' ? ": " : "", detail);
    return 1;
}

/* A JSON object of exactly PAYLOAD_BYTES bytes carrying seq and sent_ns. */
static void make_payload(char *buf, size_t len, long long seq, int64_t sent_ns)
{
    int head = snprintf(buf, len, "{\"seq\":%lld,\"sent_ns\":%" PRId64 ",\"pad\":\"", seq, sent_ns);
    size_t pad;

    if (head < 0 || (size_t)head + 3 > len)
        return;
    pad = (size_t)head + 2 < PAYLOAD_BYTES ? PAYLOAD_BYTES - (size_t)head - 2 : 0;
    if ((size_t)head + pad + 3 > len)
        pad = len - (size_t)head - 3;
    memset(buf + head, 'x', pad);
    memcpy(buf + (size_t)head + pad, "\"}", 3);
}

static usher_enqueue_opts job_opts(const char *payload)
{
    return (usher_enqueue_opts){ .queue = QUEUE, .kind = KIND, .payload = payload };
}

/* Empties the queue's tables so a phase starts from nothing. */
static int reset_queue(bench *b)
{
    usher_err err = usher_store_command(b->admin, "TRUNCATE usher_jobs, usher_queue_stats");

    return err != USHER_OK ? fail(b->admin, err, "truncate") : 0;
}

/* Runs a one-value query on the admin store into *value. */
static int query_int(bench *b, const char *sql, long long *value)
{
    PGresult *res;
    usher_err err = usher_store_exec(b->admin, sql, 0, NULL, &res);

    if (err != USHER_OK)
        return fail(b->admin, err, sql);
    *value = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

/*
 * The start line: threads connect, arrive, and wait until main opens the
 * gate once every started thread has arrived, so connecting is not timed.
 */
typedef struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t arrived;
    bool open;
} gate;

#define GATE_INIT                                                     \
    {                                                                 \
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false \
    }

static void gate_arrive(gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->arrived++;
    pthread_cond_broadcast(&g->cond);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

/* Waits until n threads have arrived, then lets them all go. */
static void gate_open(gate *g, size_t n)
{
    pthread_mutex_lock(&g->lock);
    while (g->arrived < n)
        pthread_cond_wait(&g->cond, &g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* Opens a thread's store, then waits at the gate whether or not it opened. */
static usher_err open_and_wait(const bench *b, gate *start, usher_store **st)
{
    char errbuf[256];
    usher_err err = usher_store_open(&b->cfg, st, errbuf, sizeof(errbuf));

    if (err != USHER_OK)
        fprintf(stderr, "%s: connect: %s: %s\n", PROGRAM, usher_strerror(err), errbuf);
    gate_arrive(start);
    return err;
}

/*
 * Starts n threads running fn over args (an array of elements of size
 * bytes), releases them together and waits for all. *seconds is the time
 * from the release to the last one's end. Returns 1 if a thread could not
 * be started (the others still run and are joined).
 */
static int run_threads(size_t n, void *(*fn)(void *), void *args, size_t size, gate *start,
                       double *seconds)
{
    pthread_t *tids = calloc(n, sizeof(*tids));
    size_t started = 0;
    int rc = 0;
    int64_t t0;

    if (tids == NULL)
        return fail(NULL, USHER_ERR_NOMEM, "threads");
    for (; started < n && rc == 0; started++) {
        rc = pthread_create(&tids[started], NULL, fn, (char *)args + started * size);
        if (rc != 0) {
            fprintf(stderr, "%s: pthread_create: %s\n", PROGRAM, strerror(rc));
            break;
        }
    }
    gate_open(start, started);
    t0 = now_ns();
    for (size_t i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    *seconds = seconds_between(t0, now_ns());
    free(tids);
    return rc != 0;
}

/* ---------------------------------------------------------------- enqueue */

typedef struct producer {
    const bench *b;
    gate *start;
    long long first, count; /* the seq numbers it enqueues */
    int rc;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    usher_store *st = NULL;
    char payload[PAYLOAD_BYTES + 1] = "";
    usher_enqueue_opts job = job_opts(payload);
    usher_enqueued out;
    usher_err err = open_and_wait(p->b, p->start, &st);

    for (long long i = 0; i < p->count && err == USHER_OK; i++) {
        make_payload(payload, sizeof(payload), p->first + i, 0);
        err = usher_enqueue(st, &job, &out);
        if (err != USHER_OK)
            fail(st, err, "enqueue");
    }
    p->rc = err != USHER_OK;
    usher_store_free(st);
    return NULL;
}

static int phase_enqueue(bench *b)
{
    long long jobs = b->opts.jobs > 0 ? b->opts.jobs : 20000, nprod = b->opts.producers;
    producer *prods = calloc((size_t)nprod, sizeof(*prods));
    gate start = GATE_INIT;
    double seconds = 0;
    int rc;

    if (prods == NULL)
        return fail(NULL, USHER_ERR_NOMEM, "producers");
    rc = reset_queue(b);
    for (long long i = 0; i < nprod; i++) {
        long long share = jobs / nprod + (i < jobs % nprod);

        prods[i] = (producer){ .b = b, .start = &start, .count = share };
        prods[i].first = i > 0 ? prods[i - 1].first + prods[i - 1].count : 0;
    }
    if (rc == 0)
        rc = run_threads((size_t)nprod, produce, prods, sizeof(*prods), &start, &seconds);
    for (long long i = 0; i < nprod; i++)
        rc |= prods[i].rc;
    if (rc == 0)
        printf("{\"bench\":\"enqueue\",\"producers\":%lld,\"jobs\":%lld,\"seconds\":%.3f,"
               "\"jobs_per_s\":%.0f}\n",
               nprod, jobs, seconds, (double)jobs / seconds);
    free(prods);
    return rc;
}

/* ---------------------------------------------------------------- drain */

/* Which ids the fill created, and how often each was claimed. */
typedef struct ledger {
    int64_t first_id; /* ids span first_id .. first_id + span - 1 */
    size_t span;
    unsigned char *filled;
    atomic_uint *claimed;
} ledger;

typedef struct consumer {
    const bench *b;
    gate *start;
    ledger *led;
    int index;
    size_t batch;
    long long completed;
    int rc;
} consumer;

static void ledger_free(ledger *led)
{
    free(led->filled);
    free(led->claimed);
}

/* Records the ids of one fill batch; the first batch sizes the ledger. */
static int ledger_add(ledger *led, const usher_enqueued *out, size_t n, size_t total)
{
    if (led->filled == NULL) {
        led->first_id = out[0].id;
        led->span = total * 2; /* ids of one session are consecutive; room for gaps */
        led->filled = calloc(led->span, 1);
        led->claimed = calloc(led->span, sizeof(*led->claimed));
        if (led->filled == NULL || led->claimed == NULL)
            return fail(NULL, USHER_ERR_NOMEM, "ledger");
    }
    for (size_t i = 0; i < n; i++) {
        int64_t at = out[i].id - led->first_id;

        if (at < 0 || (size_t)at >= led->span) {
            fprintf(stderr, "%s: fill: id %" PRId64 " out of range\n", PROGRAM, out[i].id);
            return 1;
        }
        led->filled[at] = 1;
    }
    return 0;
}

/* Enqueues total jobs in batches of FILL_BATCH on the admin store. */
static int fill(bench *b, size_t total, ledger *led)
{
    usher_enqueue_opts *jobs = calloc(FILL_BATCH, sizeof(*jobs));
    usher_enqueued *out = calloc(FILL_BATCH, sizeof(*out));
    char payload[PAYLOAD_BYTES + 1] = "";
    int rc = jobs == NULL || out == NULL ? fail(NULL, USHER_ERR_NOMEM, "fill") : 0;

    make_payload(payload, sizeof(payload), 0, 0);
    for (size_t i = 0; i < FILL_BATCH && rc == 0; i++)
        jobs[i] = job_opts(payload);
    for (size_t done = 0; done < total && rc == 0;) {
        size_t n = total - done < FILL_BATCH ? total - done : FILL_BATCH;
        usher_err err = usher_enqueue_batch(b->admin, jobs, n, out);

        rc = err != USHER_OK ? fail(b->admin, err, "fill") : ledger_add(led, out, n, total);
        done += n;
    }
    free(jobs);
    free(out);
    return rc;
}

/* Claims and completes one batch; *n is how many were claimed (0: queue empty). */
static usher_err drain_batch(consumer *c, usher_store *st, const char *worker, int64_t *ids,
                             size_t *n)
{
    const char *queues[] = { QUEUE };
    usher_job *jobs;
    size_t completed;
    usher_err err = usher_claim(st, queues, 1, worker, c->batch, &jobs, n);

    if (err != USHER_OK)
        return err;
    for (size_t i = 0; i < *n; i++) {
        int64_t at = jobs[i].id - c->led->first_id;

        ids[i] = jobs[i].id;
        if (at >= 0 && (size_t)at < c->led->span)
            atomic_fetch_add(&c->led->claimed[at], 1);
    }
    usher_jobs_free(jobs, *n);
    err = usher_complete(st, worker, ids, *n, &completed);
    c->completed += (long long)completed;
    return err;
}

static void *consume(void *arg)
{
    consumer *c = arg;
    usher_store *st = NULL;
    int64_t *ids = calloc(c->batch, sizeof(*ids));
    char worker[32];
    size_t n = 1;
    usher_err err = open_and_wait(c->b, c->start, &st);

    snprintf(worker, sizeof(worker), "bench-%d", c->index);
    if (ids == NULL && err == USHER_OK) {
        err = USHER_ERR_NOMEM;
        fail(NULL, err, "consumer");
    }
    while (err == USHER_OK && n > 0) {
        err = drain_batch(c, st, worker, ids, &n);
        if (err != USHER_OK)
            fail(st, err, "claim/complete");
    }
    c->rc = err != USHER_OK;
    free(ids);
    usher_store_free(st);
    return NULL;
}

/* Every filled id claimed exactly once, nothing else claimed, nothing left behind. */
static int verify_drain(bench *b, const ledger *led, long long completed, long long jobs)
{
    long long left, counted, wrong = 0;

    for (size_t i = 0; i < led->span; i++)
        wrong += atomic_load(&led->claimed[i]) != led->filled[i];
    if (query_int(b, "SELECT count(*) FROM usher_jobs", &left) != 0 ||
        query_int(b, "SELECT coalesce(sum(completed), 0) FROM usher_queue_stats", &counted) != 0)
        return 1;
    if (wrong == 0 && left == 0 && completed == jobs && counted == jobs)
        return 0;
    fprintf(stderr,
            "%s: drain not verified: %lld ids claimed other than once, %lld jobs left, "
            "%lld completions reported, %lld counted in usher_queue_stats (want %lld)\n",
            PROGRAM, wrong, left, completed, counted, jobs);
    return 1;
}

static int time_drain(bench *b, ledger *led, long long jobs)
{
    long long ncons = b->opts.consumers, completed = 0;
    consumer *cons = calloc((size_t)ncons, sizeof(*cons));
    gate start = GATE_INIT;
    double seconds = 0;
    int rc;

    if (cons == NULL)
        return fail(NULL, USHER_ERR_NOMEM, "consumers");
    for (long long i = 0; i < ncons; i++)
        cons[i] = (consumer){
            .b = b, .start = &start, .led = led, .index = (int)i, .batch = (size_t)b->opts.batch
        };
    rc = run_threads((size_t)ncons, consume, cons, sizeof(*cons), &start, &seconds);
    for (long long i = 0; i < ncons; i++) {
        rc |= cons[i].rc;
        completed += cons[i].completed;
    }
    if (rc == 0)
        rc = verify_drain(b, led, completed, jobs);
    if (rc == 0)
        printf("{\"bench\":\"drain\",\"jobs\":%lld,\"consumers\":%lld,\"batch\":%lld,"
               "\"seconds\":%.3f,\"jobs_per_s\":%.0f,\"verified\":true}\n",
               jobs, ncons, b->opts.batch, seconds, (double)jobs / seconds);
    free(cons);
    return rc;
}

static int phase_drain(bench *b)
{
    long long jobs = b->opts.jobs > 0 ? b->opts.jobs : 100000;
    ledger led = { 0 };
    int rc = reset_queue(b);

    if (rc == 0)
        rc = fill(b, (size_t)jobs, &led);
    if (rc == 0)
        rc = time_drain(b, &led, jobs);
    ledger_free(&led);
    return rc;
}

/* ---------------------------------------------------------------- latency */

typedef struct latency_run {
    const bench *b;
    gate *start;
    long long jobs;
    int64_t *lat_ns; /* enqueue start -> claimed, one per received job */
    int64_t *enq_ns; /* how long each usher_enqueue call took (insert + commit) */
    long long enqueued;
    long long received;
    atomic_bool producer_failed;
    int producer_rc, consumer_rc;
} latency_run;

static void sleep_until(int64_t when_ns)
{
    struct timespec ts = { .tv_sec = when_ns / NS_PER_S, .tv_nsec = when_ns % NS_PER_S };

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static void *latency_produce(void *arg)
{
    latency_run *r = arg;
    usher_store *st = NULL;
    char payload[PAYLOAD_BYTES + 1] = "";
    usher_enqueue_opts job = job_opts(payload);
    usher_enqueued out;
    int64_t period = NS_PER_S / r->b->opts.rate, t0;
    usher_err err = open_and_wait(r->b, r->start, &st);

    t0 = now_ns();
    for (long long i = 0; i < r->jobs && err == USHER_OK; i++) {
        int64_t sent;

        sleep_until(t0 + i * period);
        sent = now_ns();
        make_payload(payload, sizeof(payload), i, sent);
        err = usher_enqueue(st, &job, &out);
        if (err != USHER_OK)
            fail(st, err, "enqueue");
        r->enq_ns[r->enqueued++] = now_ns() - sent;
    }
    r->producer_rc = err != USHER_OK;
    atomic_store(&r->producer_failed, err != USHER_OK);
    usher_store_free(st);
    return NULL;
}

/* The sent_ns a producer put in a claimed job's payload. */
static int sent_time(const usher_job *job, int64_t *sent_ns)
{
    json_t *root = json_loads(job->payload, 0, NULL);
    json_t *sent = root != NULL ? json_object_get(root, "sent_ns") : NULL;
    int rc = json_is_integer(sent) ? 0 : 1;

    if (rc == 0)
        *sent_ns = (int64_t)json_integer_value(sent);
    else
        fprintf(stderr, "%s: job %" PRId64 " has no sent_ns\n", PROGRAM, job->id);
    json_decref(root);
    return rc;
}

/* Records the latency of each claimed job and completes them; *n as drain_batch. */
static int claim_and_record(latency_run *r, usher_store *st, size_t *n)
{
    const char *queues[] = { QUEUE };
    int64_t ids[LATENCY_BATCH], sent, claimed_at;
    usher_job *jobs;
    usher_err err = usher_claim(st, queues, 1, "bench-latency", LATENCY_BATCH, &jobs, n);
    int rc = 0;

    if (err != USHER_OK)
        return fail(st, err, "claim");
    claimed_at = now_ns();
    for (size_t i = 0; i < *n && rc == 0; i++) {
        ids[i] = jobs[i].id;
        rc = sent_time(&jobs[i], &sent);
        if (rc == 0 && r->received < r->jobs)
            r->lat_ns[r->received++] = claimed_at - sent;
    }
    usher_jobs_free(jobs, *n);
    if (rc == 0 && (err = usher_complete(st, "bench-latency", ids, *n, NULL)) != USHER_OK)
        rc = fail(st, err, "complete");
    return rc;
}

/*
 * After an empty claim: wait on the listener. Right after a non-empty
 * claim, only for the debounce window (a job whose NOTIFY was debounced
 * away may be committing now); otherwise up to the poll interval.
 */
static int wait_for_work(latency_run *r, usher_listener *l, int64_t last_claim_ns)
{
    const usher_config *cfg = &r->b->cfg;
    int64_t debounce_ns = (int64_t)cfg->notify_debounce_ms * NS_PER_MS;
    int timeout =
        now_ns() - last_claim_ns < debounce_ns ? cfg->notify_debounce_ms : cfg->poll_interval_ms;
    usher_err err = usher_listener_wait(l, timeout);

    if (err != USHER_OK && err != USHER_ERR_TIMEOUT)
        return fail(NULL, err, "listener wait");
    return 0;
}

static int latency_loop(latency_run *r, usher_store *st, usher_listener *l)
{
    int64_t last_claim_ns = 0;
    int64_t deadline = now_ns() + (r->b->opts.seconds + 30) * NS_PER_S;
    int rc = 0;

    while (rc == 0 && r->received < r->jobs) {
        size_t n = 0;

        rc = claim_and_record(r, st, &n);
        if (rc != 0 || n > 0) {
            last_claim_ns = now_ns();
            continue;
        }
        if (atomic_load(&r->producer_failed))
            return 1;
        if (now_ns() > deadline) {
            fprintf(stderr, "%s: latency: only %lld of %lld jobs arrived\n", PROGRAM, r->received,
                    r->jobs);
            return 1;
        }
        rc = wait_for_work(r, l, last_claim_ns);
    }
    return rc;
}

static void *latency_consume(void *arg)
{
    latency_run *r = arg;
    const char *queues[] = { QUEUE };
    usher_listener *l = NULL;
    usher_store *st = NULL;
    char errbuf[256];
    usher_err err = usher_listener_open(&r->b->cfg, queues, 1, &l, errbuf, sizeof(errbuf));

    if (err != USHER_OK)
        fprintf(stderr, "%s: listener: %s: %s\n", PROGRAM, usher_strerror(err), errbuf);
    if (open_and_wait(r->b, r->start, &st) != USHER_OK || err != USHER_OK)
        r->consumer_rc = 1;
    else
        r->consumer_rc = latency_loop(r, st, l);
    usher_store_free(st);
    usher_listener_free(l);
    return NULL;
}

static int compare_ns(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values, in ms. */
static double percentile_ms(const int64_t *sorted, long long n, double p)
{
    long long rank = (long long)ceil(p / 100.0 * (double)n);

    if (rank < 1)
        rank = 1;
    return (double)sorted[(rank > n ? n : rank) - 1] / (double)NS_PER_MS;
}

/*
 * The enqueue call's own percentiles come along: latency minus the
 * enqueue call is the wake-up and claim path.
 */
static void print_latency(const latency_run *r)
{
    const int64_t *lat = r->lat_ns, *enq = r->enq_ns;
    long long n = r->received, m = r->enqueued;

    printf("{\"bench\":\"latency\",\"rate\":%lld,\"jobs\":%lld,\"p50_ms\":%.3f,\"p95_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"enqueue_call_p50_ms\":%.3f,"
           "\"enqueue_call_p99_ms\":%.3f}\n",
           r->b->opts.rate, n, percentile_ms(lat, n, 50), percentile_ms(lat, n, 95),
           percentile_ms(lat, n, 99), (double)lat[n - 1] / (double)NS_PER_MS,
           percentile_ms(enq, m, 50), percentile_ms(enq, m, 99));
}

/* One thread of the latency phase: the consumer (index 0) or the producer. */
typedef struct latency_role {
    latency_run *run;
    bool producer;
} latency_role;

static void *latency_thread(void *arg)
{
    latency_role *role = arg;

    return role->producer ? latency_produce(role->run) : latency_consume(role->run);
}

static int phase_latency(bench *b)
{
    latency_run r = { .b = b, .jobs = b->opts.rate * b->opts.seconds };
    latency_role roles[2] = { { &r, false }, { &r, true } };
    gate start = GATE_INIT;
    double seconds;
    int rc;

    r.start = &start;
    r.lat_ns = calloc((size_t)r.jobs, sizeof(*r.lat_ns));
    r.enq_ns = calloc((size_t)r.jobs, sizeof(*r.enq_ns));
    rc = r.lat_ns == NULL || r.enq_ns == NULL ? fail(NULL, USHER_ERR_NOMEM, "latency") : 0;
    if (rc == 0)
        rc = reset_queue(b);
    if (rc == 0)
        rc = run_threads(2, latency_thread, roles, sizeof(roles[0]), &start, &seconds);
    rc |= r.producer_rc | r.consumer_rc;
    if (rc == 0) {
        qsort(r.lat_ns, (size_t)r.received, sizeof(*r.lat_ns), compare_ns);
        qsort(r.enq_ns, (size_t)r.enqueued, sizeof(*r.enq_ns), compare_ns);
        print_latency(&r);
    }
    free(r.lat_ns);
    free(r.enq_ns);
    return rc;
}

/* ---------------------------------------------------------------- main */

typedef struct int_option {
    const char *name;
    long long *value;
    long long min, max;
} int_option;

static int parse_int(const int_option *o, const char *text)
{
    char *end;

    errno = 0;
    *o->value = strtoll(text, &end, 10);
    if (errno == 0 && end != text && *end == '\0' && *o->value >= o->min && *o->value <= o->max)
        return 0;
    fprintf(stderr, "%s: %s must be a whole number from %lld to %lld, not '%s'\n", PROGRAM, o->name,
            o->min, o->max, text);
    return 1;
}

static int parse_args(int argc, char **argv, bench_opts *o)
{
    const int_option ints[] = {
        { "--jobs", &o->jobs, 1, 10000000 },     { "--producers", &o->producers, 1, 64 },
        { "--consumers", &o->consumers, 1, 64 }, { "--batch", &o->batch, 1, 10000 },
        { "--rate", &o->rate, 1, 10000 },        { "--seconds", &o->seconds, 1, 3600 },
    };
    const size_t nints = sizeof(ints) / sizeof(ints[0]);

    for (int i = 1; i < argc; i += 2) {
        size_t k = 0;

        while (k < nints && strcmp(argv[i], ints[k].name) != 0)
            k++;
        if (i + 1 == argc || (k == nints && strcmp(argv[i], "--phase") != 0)) {
            fprintf(stderr,
                    "usage: %s [--config FILE] [--phase enqueue|drain|latency|all] [--jobs N]\n"
                    "       [--producers N] [--consumers N] [--batch N] [--rate N] [--seconds N]\n",
                    PROGRAM);
            return 1;
        }
        if (k == nints)
            o->phase = argv[i + 1];
        else if (parse_int(&ints[k], argv[i + 1]) != 0)
            return 1;
    }
    return 0;
}

typedef struct phase {
    const char *name;
    int (*run)(bench *b);
} phase;

static const phase phases[] = {
    { "enqueue", phase_enqueue },
    { "drain", phase_drain },
    { "latency", phase_latency },
};

static int run_phases(bench *b)
{
    bool all = strcmp(b->opts.phase, "all") == 0, known = all;
    int rc = 0;

    for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]) && rc == 0; i++) {
        if (all || strcmp(b->opts.phase, phases[i].name) == 0) {
            known = true;
            rc = phases[i].run(b);
            fflush(stdout);
        }
    }
    if (!known)
        fprintf(stderr, "%s: unknown phase '%s'\n", PROGRAM, b->opts.phase);
    return known ? rc : 2;
}

int main(int argc, char **argv)
{
    bench b = { .opts = { .phase = "all",
                          .producers = 8,
                          .consumers = DRAIN_CONSUMERS,
                          .batch = DRAIN_BATCH,
                          .rate = 200,
                          .seconds = 10 } };
    char errbuf[256];
    usher_err err;
    int rc;

    if (usher_cli_load_config(PROGRAM, &argc, argv, &b.cfg) != 0)
        return 1;
    rc = parse_args(argc, argv, &b.opts);
    if (rc == 0 && (err = usher_store_open(&b.cfg, &b.admin, errbuf, sizeof(errbuf))) != USHER_OK) {
        fprintf(stderr, "%s: connect: %s: %s\n", PROGRAM, usher_strerror(err), errbuf);
        rc = 1;
    }
    if (rc == 0)
        rc = run_phases(&b);
    usher_store_free(b.admin);
    usher_config_free(&b.cfg);
    return rc;
}
