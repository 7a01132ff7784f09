/*
 * usher-bench-queue: the queue engine's throughput and latency, measured
 * in-process against a real PostgreSQL. Three phases, each starting from
 * an empty queue `default` (usher_jobs and usher_queue_stats truncated):
 *
 *   enqueue  P producer threads, each with its own connection, call
 *            usher_enqueue once per job (~200-byte payload).
 *   enqueue_shared  the same through usher_enqueue_shared with one group
 *            (engine/enqueue_group.h): concurrent calls share commits.
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
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "claim.h"
#include "cli.h"
#include "config.h"
#include "enqueue.h"
#include "enqueue_group.h"
#include "error.h"
#include "listener.h"
#include "store.h"

#define PROGRAM       "usher-bench-queue"
#define QUEUE         BENCH_QUEUE
#define LATENCY_BATCH 100

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

const char bench_program[] = PROGRAM;

static usher_enqueue_opts job_opts(const char *payload)
{
    return (usher_enqueue_opts){ .queue = QUEUE, .kind = BENCH_KIND, .payload = payload };
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
    usher_err err = bench_store_open(&b->cfg, st);

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
        return bench_fail(NULL, USHER_ERR_NOMEM, "threads");
    for (; started < n && rc == 0; started++) {
        rc = pthread_create(&tids[started], NULL, fn, (char *)args + started * size);
        if (rc != 0) {
            fprintf(stderr, "%s: pthread_create: %s\n", PROGRAM, strerror(rc));
            break;
        }
    }
    gate_open(start, started);
    t0 = bench_now_ns();
    for (size_t i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    *seconds = bench_seconds_between(t0, bench_now_ns());
    free(tids);
    return rc != 0;
}

/* ---------------------------------------------------------------- enqueue */

typedef struct producer {
    const bench *b;
    gate *start;
    usher_enqueue_group *group; /* shared commits, or NULL: one commit per call */
    long long first, count;     /* the seq numbers it enqueues */
    int rc;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    usher_store *st = NULL;
    char payload[BENCH_PAYLOAD_BYTES + 1] = "";
    usher_enqueue_opts job = job_opts(payload);
    usher_enqueued out;
    usher_err err = open_and_wait(p->b, p->start, &st);

    for (long long i = 0; i < p->count && err == USHER_OK; i++) {
        bench_make_payload(payload, sizeof(payload), p->first + i, 0);
        err = p->group != NULL ? usher_enqueue_shared(p->group, st, &job, &out)
                               : usher_enqueue(st, &job, &out);
        if (err != USHER_OK)
            bench_fail(st, err, "enqueue");
    }
    p->rc = err != USHER_OK;
    usher_store_free(st);
    return NULL;
}

/* The enqueue phases; group NULL: one commit per call. */
static int enqueue_with(bench *b, const char *name, usher_enqueue_group *group)
{
    long long jobs = b->opts.jobs > 0 ? b->opts.jobs : 20000, nprod = b->opts.producers;
    producer *prods = calloc((size_t)nprod, sizeof(*prods));
    gate start = GATE_INIT;
    double seconds = 0;
    int rc;

    if (prods == NULL)
        return bench_fail(NULL, USHER_ERR_NOMEM, "producers");
    rc = bench_reset_queue(b->admin);
    for (long long i = 0; i < nprod; i++) {
        long long share = jobs / nprod + (i < jobs % nprod);

        prods[i] = (producer){ .b = b, .start = &start, .group = group, .count = share };
        prods[i].first = i > 0 ? prods[i - 1].first + prods[i - 1].count : 0;
    }
    if (rc == 0)
        rc = run_threads((size_t)nprod, produce, prods, sizeof(*prods), &start, &seconds);
    for (long long i = 0; i < nprod; i++)
        rc |= prods[i].rc;
    if (rc == 0) {
        printf("{\"bench\":\"%s\",\"producers\":%lld,\"jobs\":%lld,\"seconds\":%.3f,"
               "\"jobs_per_s\":%.0f",
               name, nprod, jobs, seconds, (double)jobs / seconds);
        if (group != NULL) {
            uint64_t commits, written;

            usher_enqueue_group_stats(group, &commits, &written);
            printf(",\"commits\":%llu,\"jobs_per_commit\":%.2f", (unsigned long long)commits,
                   commits > 0 ? (double)written / (double)commits : 0.0);
        }
        printf("}\n");
    }
    free(prods);
    return rc;
}

static int phase_enqueue(bench *b)
{
    return enqueue_with(b, "enqueue", NULL);
}

static int phase_enqueue_shared(bench *b)
{
    usher_enqueue_group *g = usher_enqueue_group_new();
    int rc = g == NULL ? bench_fail(NULL, USHER_ERR_NOMEM, "group")
                       : enqueue_with(b, "enqueue_shared", g);

    usher_enqueue_group_free(g);
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

/* Sizes the ledger from the first of the n filled ids and records them. */
static int ledger_add(ledger *led, const int64_t *ids, size_t n)
{
    led->first_id = ids[0];
    led->span = n * 2; /* ids of one session are consecutive; room for gaps */
    led->filled = calloc(led->span, 1);
    led->claimed = calloc(led->span, sizeof(*led->claimed));
    if (led->filled == NULL || led->claimed == NULL)
        return bench_fail(NULL, USHER_ERR_NOMEM, "ledger");
    for (size_t i = 0; i < n; i++) {
        int64_t at = ids[i] - led->first_id;

        if (at < 0 || (size_t)at >= led->span) {
            fprintf(stderr, "%s: fill: id %" PRId64 " out of range\n", PROGRAM, ids[i]);
            return 1;
        }
        led->filled[at] = 1;
    }
    return 0;
}

/* Enqueues total jobs on the admin store and records their ids in led. */
static int fill(bench *b, size_t total, ledger *led)
{
    int64_t *ids = calloc(total, sizeof(*ids));
    char payload[BENCH_PAYLOAD_BYTES + 1] = "";
    int rc = ids == NULL ? bench_fail(NULL, USHER_ERR_NOMEM, "fill") : 0;

    bench_make_payload(payload, sizeof(payload), 0, 0);
    if (rc == 0)
        rc = bench_fill(b->admin, (long long)total, payload, ids);
    if (rc == 0)
        rc = ledger_add(led, ids, total);
    free(ids);
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
        bench_fail(NULL, err, "consumer");
    }
    while (err == USHER_OK && n > 0) {
        err = drain_batch(c, st, worker, ids, &n);
        if (err != USHER_OK)
            bench_fail(st, err, "claim/complete");
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
    if (bench_query_ints(b->admin, "SELECT count(*) FROM usher_jobs", &left, 1) != 0 ||
        bench_query_ints(b->admin, "SELECT coalesce(sum(completed), 0) FROM usher_queue_stats",
                         &counted, 1) != 0)
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
        return bench_fail(NULL, USHER_ERR_NOMEM, "consumers");
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
    int rc = bench_reset_queue(b->admin);

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

static void *latency_produce(void *arg)
{
    latency_run *r = arg;
    usher_store *st = NULL;
    char payload[BENCH_PAYLOAD_BYTES + 1] = "";
    usher_enqueue_opts job = job_opts(payload);
    usher_enqueued out;
    int64_t period = NS_PER_S / r->b->opts.rate, t0;
    usher_err err = open_and_wait(r->b, r->start, &st);

    t0 = bench_now_ns();
    for (long long i = 0; i < r->jobs && err == USHER_OK; i++) {
        int64_t sent;

        bench_sleep_until(t0 + i * period);
        sent = bench_now_ns();
        bench_make_payload(payload, sizeof(payload), i, sent);
        err = usher_enqueue(st, &job, &out);
        if (err != USHER_OK)
            bench_fail(st, err, "enqueue");
        r->enq_ns[r->enqueued++] = bench_now_ns() - sent;
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
        return bench_fail(st, err, "claim");
    claimed_at = bench_now_ns();
    for (size_t i = 0; i < *n && rc == 0; i++) {
        ids[i] = jobs[i].id;
        rc = sent_time(&jobs[i], &sent);
        if (rc == 0 && r->received < r->jobs)
            r->lat_ns[r->received++] = claimed_at - sent;
    }
    usher_jobs_free(jobs, *n);
    if (rc == 0 && (err = usher_complete(st, "bench-latency", ids, *n, NULL)) != USHER_OK)
        rc = bench_fail(st, err, "complete");
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
    int timeout = bench_now_ns() - last_claim_ns < debounce_ns ? cfg->notify_debounce_ms
                                                               : cfg->poll_interval_ms;
    usher_err err = usher_listener_wait(l, timeout);

    if (err != USHER_OK && err != USHER_ERR_TIMEOUT)
        return bench_fail(NULL, err, "listener wait");
    return 0;
}

static int latency_loop(latency_run *r, usher_store *st, usher_listener *l)
{
    int64_t last_claim_ns = 0;
    int64_t deadline = bench_now_ns() + (r->b->opts.seconds + 30) * NS_PER_S;
    int rc = 0;

    while (rc == 0 && r->received < r->jobs) {
        size_t n = 0;

        rc = claim_and_record(r, st, &n);
        if (rc != 0 || n > 0) {
            last_claim_ns = bench_now_ns();
            continue;
        }
        if (atomic_load(&r->producer_failed))
            return 1;
        if (bench_now_ns() > deadline) {
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

/*
 * The enqueue call's own percentiles come along: latency minus the
 * enqueue call is the wake-up and claim path.
 */
static void print_latency(latency_run *r)
{
    printf("{\"bench\":\"latency\",\"rate\":%lld,\"jobs\":%lld,", r->b->opts.rate, r->received);
    bench_print_latency(r->lat_ns, r->received, NS_PER_MS, r->enq_ns, r->enqueued);
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
    rc = r.lat_ns == NULL || r.enq_ns == NULL ? bench_fail(NULL, USHER_ERR_NOMEM, "latency") : 0;
    if (rc == 0)
        rc = bench_reset_queue(b->admin);
    if (rc == 0)
        rc = run_threads(2, latency_thread, roles, sizeof(roles[0]), &start, &seconds);
    rc |= r.producer_rc | r.consumer_rc;
    if (rc == 0)
        print_latency(&r);
    free(r.lat_ns);
    free(r.enq_ns);
    return rc;
}

/* ---------------------------------------------------------------- main */

static int parse_args(int argc, char **argv, bench_opts *o)
{
    const bench_int_option ints[] = {
        { "--jobs", &o->jobs, 1, 10000000 },     { "--producers", &o->producers, 1, 64 },
        { "--consumers", &o->consumers, 1, 64 }, { "--batch", &o->batch, 1, 10000 },
        { "--rate", &o->rate, 1, 10000 },        { "--seconds", &o->seconds, 1, 3600 },
    };
    const bench_text_option texts[] = { { "--phase", &o->phase } };
    int rc = bench_parse_options(argc, argv, ints, sizeof(ints) / sizeof(ints[0]), texts,
                                 sizeof(texts) / sizeof(texts[0]));

    if (rc >= 0)
        return rc;
    fprintf(
        stderr,
        "usage: %s [--config FILE] [--phase enqueue|enqueue_shared|drain|latency|all] [--jobs N]\n"
        "       [--producers N] [--consumers N] [--batch N] [--rate N] [--seconds N]\n",
        PROGRAM);
    return 1;
}

static const bench_phase phases[] = {
    { "enqueue", phase_enqueue },
    { "enqueue_shared", phase_enqueue_shared },
    { "drain", phase_drain },
    { "latency", phase_latency },
};

int main(int argc, char **argv)
{
    bench b = { .opts = { .phase = "all",
                          .producers = 8,
                          .consumers = DRAIN_CONSUMERS,
                          .batch = DRAIN_BATCH,
                          .rate = 200,
                          .seconds = 10 } };
    int rc;

    if (usher_cli_load_config(PROGRAM, &argc, argv, &b.cfg) != 0)
        return 1;
    rc = parse_args(argc, argv, &b.opts);
    if (rc == 0 && bench_store_open(&b.cfg, &b.admin) != USHER_OK)
        rc = 1;
    if (rc == 0)
        rc = bench_run_phases(phases, sizeof(phases) / sizeof(phases[0]), b.opts.phase, &b);
    usher_store_free(b.admin);
    usher_config_free(&b.cfg);
    return rc;
}
