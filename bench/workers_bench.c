/*
 * usher-bench-workers: a real usher-worker (supervisor and children) against
 * a real PostgreSQL, from the outside. It starts the worker itself, so it
 * knows when the worker started, and watches the database for the rest.
 * The phases, each from an empty queue `default` served by --pool:
 *
 *   drain    100,000 test.noop jobs are filled with usher_enqueue_batch
 *            (untimed), then the worker is started; the time runs from
 *            fork until usher_queue_stats counts every job completed
 *            (polled every 10 ms). The time to the first completion is the
 *            worker's start-up, reported beside it. Then SIGTERM: the
 *            worker must exit 0 and leave no job behind.
 *   warm     the drain with the pool already up, as a running service meets
 *            a spike (beanstalkd's consumers, in bench/beanstalkd, connect
 *            in a millisecond; a pool forks, connects and plans its claim
 *            first, which the drain phase counts): the worker is started
 *            and runs WARM_JOBS jobs, the queue is paused and filled, and
 *            the time runs from the resume (which NOTIFYs the pool) until
 *            every job is counted completed.
 *   once     the same with fewer jobs whose payload names a log file: each
 *            handler run appends "ID ATTEMPT START_US", and every filled
 *            id must appear exactly once, at attempt 1. Logging costs a
 *            write per job, so this phase is not the throughput figure.
 *   latency  with the worker started and idle, one producer enqueues at a
 *            steady rate on an absolute schedule, noting CLOCK_REALTIME
 *            just before each usher_enqueue; the handler's START_US in the
 *            log minus that is the enqueue -> handler-start latency. Just
 *            before it, the same number of bare one-row INSERTs at the
 *            same rate: the floor of one durable commit ("commit_floor").
 *   mix      the same at --mix-rate, where one job in --slow-every is a
 *            test.sleep of --slow-ms: the pickup latency of the other
 *            (no-op) jobs, which must not wait behind the slow ones.
 *
 * One JSON line per phase on stdout; errors on stderr and a non-zero exit
 * status. bench/workers runs this next to usher-bench-queue's engine-only
 * drain and reports medians (bench/README.md).
 */
#include <errno.h>
#include <libpq-fe.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "cli.h"
#include "config.h"
#include "enqueue.h"
#include "error.h"
#include "queues.h"
#include "store.h"

#define PROGRAM   "usher-bench-workers"
#define QUEUE     BENCH_QUEUE
#define POLL_MS   10
#define WAIT_S    600 /* give up on a phase whose jobs do not complete by then */
#define STOP_S    60  /* SIGKILL a worker that has not exited this long after SIGTERM */
#define WARM_JOBS 200 /* the warm phase's first jobs: connections open, claim planned */

typedef struct bench_opts {
    const char *phase;       /* drain, once, latency or all */
    const char *worker;      /* the usher-worker binary */
    const char *pool;        /* the pool it runs; it must serve the queue `default` */
    const char *dir;         /* where the handler logs and the worker's stderr go */
    long long jobs;          /* drain */
    long long once_jobs;     /* once */
    long long rate, seconds; /* latency */
    long long mix_rate, slow_every, slow_ms; /* mix */
} bench_opts;

typedef struct bench {
    usher_config cfg;
    bench_opts opts;
    const usher_pool_conf *pool;
    usher_store *admin; /* truncates, fills, polls and verifies */
} bench;

/* A started usher-worker. */
typedef struct worker {
    pid_t pid;
    int64_t started_ns;  /* CLOCK_MONOTONIC just before fork */
    struct rusage usage; /* the worker and its children, once it is reaped */
    int status;
} worker;

/* ---------------------------------------------------------------- helpers */

const char bench_program[] = PROGRAM;

static int fail_errno(const char *what, const char *path)
{
    fprintf(stderr, "%s: %s %s: %s\n", PROGRAM, what, path, strerror(errno));
    return 1;
}

/* Jobs counted completed and failed in usher_queue_stats. */
static int stats(bench *b, long long *completed, long long *failed)
{
    long long v[2] = { 0, 0 };
    int rc = bench_query_ints(b->admin,
                              "SELECT coalesce(sum(completed), 0), coalesce(sum(failed), 0)"
                              " FROM usher_queue_stats",
                              v, 2);

    *completed = v[0];
    *failed = v[1];
    return rc;
}

/* The payload that makes the test handler log its run to path. */
static int log_payload(char *buf, size_t len, const char *path)
{
    int n = snprintf(buf, len, "{\"log\":\"%s\"}", path);

    if (n < 0 || (size_t)n >= len || strpbrk(path, "\"\\") != NULL) {
        fprintf(stderr, "%s: cannot put '%s' in a payload\n", PROGRAM, path);
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- the worker */

/* Starts the worker with its stderr appended to DIR/worker.log. */
static int worker_start(const bench *b, worker *w)
{
    char log[4096];
    int fd;

    snprintf(log, sizeof(log), "%s/worker.log", b->opts.dir);
    fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail_errno("cannot open", log);
    fflush(NULL);
    *w = (worker){ .started_ns = bench_now_ns() };
    w->pid = fork();
    if (w->pid == 0) {
        if (dup2(fd, STDERR_FILENO) < 0)
            _exit(126);
        execl(b->opts.worker, b->opts.worker, "--config", b->cfg.path, "--pool", b->opts.pool,
              (char *)NULL);
        _exit(127);
    }
    close(fd);
    if (w->pid < 0)
        return fail_errno("cannot fork for", b->opts.worker);
    return 0;
}

/* 1 if the worker has exited (and is reaped into w), 0 if it runs, -1 on error. */
static int worker_exited(worker *w)
{
    pid_t r = wait4(w->pid, &w->status, WNOHANG, &w->usage);

    if (r < 0)
        fprintf(stderr, "%s: wait4: %s\n", PROGRAM, strerror(errno));
    return r == w->pid ? 1 : r < 0 ? -1 : 0;
}

/*
 * SIGTERM, then waits for the exit (SIGKILL after STOP_S). 0 only when it
 * exited with status 0; *seconds is how long the drain took.
 */
static int worker_stop(worker *w, double *seconds)
{
    int64_t t0 = bench_now_ns();
    int r = 0;

    if (kill(w->pid, SIGTERM) != 0)
        return fail_errno("cannot signal", "usher-worker");
    while ((r = worker_exited(w)) == 0 && bench_now_ns() - t0 < STOP_S * NS_PER_S)
        bench_sleep_until(bench_now_ns() + POLL_MS * NS_PER_MS);
    if (r == 0) {
        fprintf(stderr, "%s: usher-worker still running %d s after SIGTERM; killing it\n", PROGRAM,
                STOP_S);
        kill(w->pid, SIGKILL);
        waitpid(w->pid, &w->status, 0);
        return 1;
    }
    *seconds = bench_seconds_between(t0, bench_now_ns());
    if (r < 0 || !WIFEXITED(w->status) || WEXITSTATUS(w->status) != 0) {
        fprintf(stderr, "%s: usher-worker ended with status 0x%x after SIGTERM\n", PROGRAM,
                w->status);
        return 1;
    }
    return 0;
}

/* Stops a worker after a failure, ignoring how it ends. */
static void worker_abandon(worker *w)
{
    double seconds;

    if (w->pid > 0)
        worker_stop(w, &seconds);
}

static double cpu_seconds(const struct rusage *ru)
{
    return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) +
           (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;
}

/* ---------------------------------------------------------------- waiting */

/* When the first job and the last of total were counted completed. */
typedef struct progress {
    int64_t first_ns, last_ns;
    long long completed, failed;
} progress;

/* Says how a worker that should still be running ended. */
static void describe_exit(const worker *w, long long completed, long long total)
{
    if (WIFSIGNALED(w->status))
        fprintf(stderr,
                "%s: usher-worker was killed by signal %d with %lld of %lld jobs completed\n",
                PROGRAM, WTERMSIG(w->status), completed, total);
    else
        fprintf(stderr, "%s: usher-worker exited with status %d with %lld of %lld jobs completed\n",
                PROGRAM, WEXITSTATUS(w->status), completed, total);
}

/* Polls usher_queue_stats until total jobs completed; fails on a failed job or a dead worker. */
static int wait_completed(bench *b, worker *w, long long total, progress *p)
{
    int64_t deadline = bench_now_ns() + WAIT_S * NS_PER_S;
    int exited;

    *p = (progress){ 0 };
    for (;;) {
        if (stats(b, &p->completed, &p->failed) != 0)
            return 1;
        if (p->completed > 0 && p->first_ns == 0)
            p->first_ns = bench_now_ns();
        if (p->completed >= total || p->failed > 0)
            break;
        if ((exited = worker_exited(w)) != 0) {
            if (exited > 0)
                describe_exit(w, p->completed, total);
            w->pid = 0;
            return 1;
        }
        if (bench_now_ns() > deadline) {
            fprintf(stderr, "%s: timed out with %lld of %lld jobs completed\n", PROGRAM,
                    p->completed, total);
            return 1;
        }
        bench_sleep_until(bench_now_ns() + POLL_MS * NS_PER_MS);
    }
    p->last_ns = bench_now_ns();
    if (p->completed == total && p->failed == 0)
        return 0;
    fprintf(stderr, "%s: %lld jobs completed and %lld failed, want %lld and 0\n", PROGRAM,
            p->completed, p->failed, total);
    return 1;
}

/* After the worker stopped: nothing left, every job counted once. */
static int verify_empty(bench *b, long long total)
{
    long long left = 0, completed = 0, failed = 0;

    if (bench_query_ints(b->admin, "SELECT count(*) FROM usher_jobs", &left, 1) != 0 ||
        stats(b, &completed, &failed) != 0)
        return 1;
    if (left == 0 && completed == total && failed == 0)
        return 0;
    fprintf(stderr,
            "%s: after the drain %lld jobs are left, %lld completed, %lld failed (want 0, "
            "%lld, 0)\n",
            PROGRAM, left, completed, failed, total);
    return 1;
}

/* ---------------------------------------------------------------- drain */

/* Fills, starts the worker, waits for every job, stops it. */
static int run_drain(bench *b, long long jobs, const char *payload, int64_t *ids, worker *w,
                     progress *p, double *stop_s)
{
    int rc = bench_reset_queue(b->admin);

    if (rc == 0)
        rc = bench_fill(b->admin, jobs, payload, ids);
    if (rc == 0)
        rc = worker_start(b, w);
    if (rc == 0 && (rc = wait_completed(b, w, jobs, p)) != 0)
        worker_abandon(w);
    if (rc == 0)
        rc = worker_stop(w, stop_s);
    if (rc == 0)
        rc = verify_empty(b, jobs);
    return rc;
}

static int phase_drain(bench *b)
{
    long long jobs = b->opts.jobs;
    char payload[BENCH_PAYLOAD_BYTES + 1];
    worker w = { 0 };
    progress p;
    double seconds, startup, stop_s = 0;
    int rc;

    bench_make_payload(payload, sizeof(payload), 0, 0);
    rc = run_drain(b, jobs, payload, NULL, &w, &p, &stop_s);
    if (rc != 0)
        return rc;
    seconds = bench_seconds_between(w.started_ns, p.last_ns);
    startup = bench_seconds_between(w.started_ns, p.first_ns);
    printf("{\"bench\":\"worker_drain\",\"jobs\":%lld,\"children\":%d,\"claim_batch\":%d,"
           "\"seconds\":%.3f,\"jobs_per_s\":%.0f,\"startup_s\":%.3f,\"after_startup_jobs_per_s\":"
           "%.0f,\"stop_s\":%.3f,\"worker_cpu_s\":%.2f,\"worker_cpu_us_per_job\":%.1f,"
           "\"worker_nvcsw\":%ld,\"verified\":true}\n",
           jobs, b->pool->initial, b->pool->claim_batch, seconds, (double)jobs / seconds, startup,
           (double)jobs / bench_seconds_between(p.first_ns, p.last_ns), stop_s,
           cpu_seconds(&w.usage), cpu_seconds(&w.usage) * 1e6 / (double)jobs, w.usage.ru_nvcsw);
    return 0;
}

/* ---------------------------------------------------------------- warm drain */

/* Starts the worker and lets it run WARM_JOBS jobs; then pauses the queue. */
static int warm_pool(bench *b, worker *w, const char *payload)
{
    progress p;
    usher_err err;
    int rc = bench_reset_queue(b->admin);

    if (rc == 0)
        rc = worker_start(b, w);
    if (rc == 0)
        rc = bench_fill(b->admin, WARM_JOBS, payload, NULL);
    if (rc == 0)
        rc = wait_completed(b, w, WARM_JOBS, &p);
    if (rc == 0 && (err = usher_queues_pause(b->admin, QUEUE)) != USHER_OK)
        rc = bench_fail(b->admin, err, "pause");
    return rc;
}

static int phase_warm(bench *b)
{
    long long jobs = b->opts.jobs;
    char payload[BENCH_PAYLOAD_BYTES + 1];
    worker w = { 0 };
    progress p;
    int64_t resumed_ns = 0;
    double stop_s = 0, seconds;
    usher_err err;
    int rc;

    bench_make_payload(payload, sizeof(payload), 0, 0);
    rc = warm_pool(b, &w, payload);
    if (rc == 0)
        rc = bench_fill(b->admin, jobs, payload, NULL);
    resumed_ns = bench_now_ns();
    /* Even after a failed fill: the queue is not left paused for the next phase. */
    if ((err = usher_queues_resume(b->admin, QUEUE)) != USHER_OK && rc == 0)
        rc = bench_fail(b->admin, err, "resume");
    if (rc == 0)
        rc = wait_completed(b, &w, WARM_JOBS + jobs, &p);
    if (rc != 0) {
        worker_abandon(&w);
        return rc;
    }
    if (worker_stop(&w, &stop_s) != 0 || verify_empty(b, WARM_JOBS + jobs) != 0)
        return 1;
    seconds = bench_seconds_between(resumed_ns, p.last_ns);
    printf("{\"bench\":\"worker_drain_warm\",\"jobs\":%lld,\"children\":%d,\"claim_batch\":%d,"
           "\"seconds\":%.3f,\"jobs_per_s\":%.0f,\"verified\":true}\n",
           jobs, b->pool->initial, b->pool->claim_batch, seconds, (double)jobs / seconds);
    return 0;
}

/* ---------------------------------------------------------------- the handler log */

/* One handler run, as the test handler logged it (trace: with "trace": true). */
typedef struct run_line {
    int64_t id;
    int attempt;
    int64_t start_us;
    int64_t sent_us, notified_us, claim_sent_us, claimed_us; /* 0 without a trace */
} run_line;

/* Reads the handler log at path into *lines (the caller frees it). */
static int read_log(const char *path, run_line **lines, size_t *n)
{
    FILE *f = fopen(path, "r");
    size_t cap = 4096;
    long long id, start, t[4];
    int attempt, got = EOF;
    char text[256];

    *n = 0;
    *lines = malloc(cap * sizeof(**lines));
    if (f == NULL || *lines == NULL) {
        if (f != NULL)
            fclose(f);
        return f == NULL ? fail_errno("cannot read", path)
                         : bench_fail(NULL, USHER_ERR_NOMEM, "log");
    }
    while (fgets(text, sizeof(text), f) != NULL) {
        t[0] = t[1] = t[2] = t[3] = 0;
        got = sscanf(text, "%lld %d %lld %lld %lld %lld %lld", &id, &attempt, &start, &t[0], &t[1],
                     &t[2], &t[3]);
        if (got < 3)
            break;
        got = EOF;
        if (*n == cap) {
            run_line *more = realloc(*lines, 2 * cap * sizeof(**lines));

            if (more == NULL)
                break;
            *lines = more;
            cap *= 2;
        }
        (*lines)[(*n)++] = (run_line){ id, attempt, start, t[0], t[1], t[2], t[3] };
    }
    fclose(f);
    if (got == EOF)
        return 0;
    fprintf(stderr, "%s: %s: unreadable line after %zu runs\n", PROGRAM, path, *n);
    return 1;
}

/* Where id is in the sorted ids, or -1. */
static long long find_id(const int64_t *ids, long long n, int64_t id)
{
    const int64_t *at = bsearch(&id, ids, (size_t)n, sizeof(*ids), bench_compare_int64);

    return at != NULL ? at - ids : -1;
}

/* How the runs in a log matched the jobs that were enqueued. */
typedef struct run_check {
    long long runs, missing, duplicates, strangers, retried;
} run_check;

/*
 * Counts runs per enqueued id (ids sorted); index[i] (may be NULL) receives
 * the line of id i's first run, or -1.
 */
static int check_runs(const int64_t *ids, long long n, const run_line *lines, size_t nlines,
                      long long *index, run_check *c)
{
    unsigned *runs = calloc((size_t)n, sizeof(*runs));

    *c = (run_check){ .runs = (long long)nlines };
    if (runs == NULL)
        return bench_fail(NULL, USHER_ERR_NOMEM, "check");
    for (size_t i = 0; i < nlines; i++) {
        long long at = find_id(ids, n, lines[i].id);

        if (at < 0) {
            c->strangers++;
            continue;
        }
        if (runs[at]++ == 0 && index != NULL)
            index[at] = (long long)i;
        c->retried += lines[i].attempt != 1;
    }
    for (long long i = 0; i < n; i++) {
        c->missing += runs[i] == 0;
        c->duplicates += runs[i] > 1 ? runs[i] - 1 : 0;
        if (runs[i] == 0 && index != NULL)
            index[i] = -1;
    }
    free(runs);
    return 0;
}

static bool runs_ok(const run_check *c)
{
    if (c->missing == 0 && c->duplicates == 0 && c->strangers == 0 && c->retried == 0)
        return true;
    fprintf(stderr,
            "%s: handler runs: %lld missing, %lld duplicated, %lld of unknown jobs, %lld not "
            "at attempt 1\n",
            PROGRAM, c->missing, c->duplicates, c->strangers, c->retried);
    return false;
}

/* ---------------------------------------------------------------- once */

static int check_once(const char *log, const int64_t *ids, long long jobs, run_check *c)
{
    run_line *lines = NULL;
    size_t nlines = 0;
    int rc = read_log(log, &lines, &nlines);

    if (rc == 0)
        rc = check_runs(ids, jobs, lines, nlines, NULL, c);
    if (rc == 0 && !runs_ok(c))
        rc = 1;
    free(lines);
    return rc;
}

static int phase_once(bench *b)
{
    long long jobs = b->opts.once_jobs;
    int64_t *ids = calloc((size_t)jobs, sizeof(*ids));
    char log[4096], payload[4200];
    worker w = { 0 };
    progress p;
    run_check c;
    double stop_s = 0, seconds;
    int rc;

    snprintf(log, sizeof(log), "%s/once.log", b->opts.dir);
    rc = ids == NULL ? bench_fail(NULL, USHER_ERR_NOMEM, "once")
                     : log_payload(payload, sizeof(payload), log);
    if (rc == 0 && unlink(log) != 0 && errno != ENOENT)
        rc = fail_errno("cannot remove", log);
    if (rc == 0)
        rc = run_drain(b, jobs, payload, ids, &w, &p, &stop_s);
    if (rc == 0) {
        qsort(ids, (size_t)jobs, sizeof(*ids), bench_compare_int64);
        rc = check_once(log, ids, jobs, &c);
    }
    if (rc == 0) {
        seconds = bench_seconds_between(w.started_ns, p.last_ns);
        printf("{\"bench\":\"worker_once\",\"jobs\":%lld,\"children\":%d,\"seconds\":%.3f,"
               "\"jobs_per_s\":%.0f,\"runs\":%lld,\"missing\":0,\"duplicates\":0,"
               "\"verified\":true}\n",
               jobs, b->pool->initial, seconds, (double)jobs / seconds, c.runs);
    }
    free(ids);
    return rc;
}

/* ---------------------------------------------------------------- latency */

typedef struct latency_run {
    long long jobs;
    int64_t *ids;     /* in enqueue order */
    int64_t *sent_us; /* CLOCK_REALTIME just before each usher_enqueue */
    int64_t *call_ns; /* how long each usher_enqueue took (insert + commit) */
} latency_run;

/* Whether job i of a run is a slow one (the mix phase; slow_every 0: none). */
static bool slow_job(long long slow_every, long long i)
{
    return slow_every > 0 && i % slow_every == slow_every - 1;
}

/*
 * Enqueues r->jobs jobs at rate a second on an absolute schedule; with
 * slow_every, every slow_every-th is test.sleep with slow_payload.
 */
static int produce(bench *b, latency_run *r, const char *payload, long long rate,
                   long long slow_every, const char *slow_payload)
{
    usher_enqueue_opts job = { .queue = QUEUE };
    int64_t period = NS_PER_S / rate, t0 = bench_now_ns();

    for (long long i = 0; i < r->jobs; i++) {
        usher_enqueued out;
        int64_t call;
        usher_err err;

        bool slow = slow_job(slow_every, i);

        job.kind = slow ? "test.sleep" : BENCH_KIND;
        job.payload = slow ? slow_payload : payload;
        bench_sleep_until(t0 + i * period);
        r->sent_us[i] = bench_wall_us();
        call = bench_now_ns();
        err = usher_enqueue(b->admin, &job, &out);
        if (err != USHER_OK)
            return bench_fail(b->admin, err, "enqueue");
        r->call_ns[i] = bench_now_ns() - call;
        r->ids[i] = out.id;
    }
    return 0;
}

/* One job through the started worker, so that it is connected and listening. */
static int warm_up(bench *b, worker *w, const char *dir)
{
    char log[4096], payload[4200];
    usher_enqueue_opts job = { .queue = QUEUE, .kind = BENCH_KIND, .payload = payload };
    usher_enqueued out;
    progress p;
    usher_err err;

    snprintf(log, sizeof(log), "%s/warmup.log", dir);
    if (log_payload(payload, sizeof(payload), log) != 0)
        return 1;
    if ((err = usher_enqueue(b->admin, &job, &out)) != USHER_OK)
        return bench_fail(b->admin, err, "enqueue");
    if (wait_completed(b, w, 1, &p) != 0)
        return 1;
    bench_sleep_until(bench_now_ns() + NS_PER_S); /* let the children settle idle */
    return 0;
}

/* The stages of a traced pickup, in µs, from one job's enqueue and its log line. */
enum { COMMIT, NOTIFY, WAKE, CLAIM, HOP, START, STAGES };

static void stages_of(const latency_run *r, long long i, const run_line *l, int64_t *st)
{
    int64_t enqueued = r->sent_us[i] + r->call_ns[i] / 1000;

    st[COMMIT] = enqueued - r->sent_us[i];  /* the enqueue call */
    st[NOTIFY] = l->notified_us - enqueued; /* its commit -> NOTIFY */
    st[WAKE] = l->claim_sent_us - (l->notified_us > 0 ? l->notified_us : enqueued); /* -> claim */
    st[CLAIM] = l->claimed_us - l->claim_sent_us; /* the claim's round trip */
    st[HOP] = l->sent_us - l->claimed_us;         /* -> written to a child */
    st[START] = l->start_us - l->sent_us;         /* -> the handler starts */
}

/*
 * One JSON line: each stage's p50 and p99 over the jobs whose claim was
 * woken by a NOTIFY after their enqueue began (the others were found by a
 * re-check or a claim already in flight: counted apart).
 */
static int report_breakdown(const latency_run *r, const run_line *lines, const long long *index)
{
    static const char *names[STAGES] = { "enqueue_call",     "commit_to_notify", "notify_to_claim",
                                         "claim_round_trip", "claimed_to_child", "child_to_start" };
    int64_t *v[STAGES], st[STAGES];
    long long n = 0, other = 0;

    for (int k = 0; k < STAGES; k++) {
        v[k] = calloc((size_t)r->jobs, sizeof(*v[k]));
        if (v[k] == NULL) {
            while (k-- > 0)
                free(v[k]);
            return bench_fail(NULL, USHER_ERR_NOMEM, "breakdown");
        }
    }
    for (long long i = 0; i < r->jobs; i++) {
        const run_line *l = &lines[index[i]];

        if (l->sent_us == 0 || l->notified_us < r->sent_us[i]) {
            other++;
            continue;
        }
        stages_of(r, i, l, st);
        for (int k = 0; k < STAGES; k++)
            v[k][n] = st[k];
        n++;
    }
    printf("{\"bench\":\"worker_latency_breakdown\",\"woken_by_notify\":%lld,\"other\":%lld", n,
           other);
    for (int k = 0; k < STAGES; k++) {
        qsort(v[k], (size_t)n, sizeof(*v[k]), bench_compare_int64);
        if (n > 0)
            printf(",\"%s_p50_ms\":%.3f,\"%s_p99_ms\":%.3f", names[k],
                   bench_percentile_ms(v[k], n, 50, 1000), names[k],
                   bench_percentile_ms(v[k], n, 99, 1000));
        free(v[k]);
    }
    printf("}\n");
    return 0;
}

/* The latency of each job from the log, sorted, then printed. */
static int report_latency(bench *b, latency_run *r, const run_line *lines, size_t nlines)
{
    long long *index = calloc((size_t)r->jobs, sizeof(*index)), n = r->jobs;
    int64_t *lat = calloc((size_t)r->jobs, sizeof(*lat));
    run_check c;
    int rc = index == NULL || lat == NULL ? bench_fail(NULL, USHER_ERR_NOMEM, "latency") : 0;

    /* One producer on one connection: ids come out increasing, as find_id needs. */
    if (rc == 0)
        rc = check_runs(r->ids, n, lines, nlines, index, &c);
    if (rc == 0 && !runs_ok(&c))
        rc = 1;
    for (long long i = 0; i < n && rc == 0; i++)
        lat[i] = lines[index[i]].start_us - r->sent_us[i];
    if (rc == 0)
        rc = report_breakdown(r, lines, index);
    if (rc == 0) {
        printf("{\"bench\":\"worker_latency\",\"rate\":%lld,\"jobs\":%lld,\"children\":%d,",
               b->opts.rate, n, b->pool->initial);
        bench_print_latency(lat, n, 1000, r->call_ns, n);
    }
    free(index);
    free(lat);
    return rc;
}

static bool ids_increasing(const latency_run *r)
{
    for (long long i = 1; i < r->jobs; i++) {
        if (r->ids[i] <= r->ids[i - 1]) {
            fprintf(stderr, "%s: latency: ids not increasing at %lld\n", PROGRAM, i);
            return false;
        }
    }
    return true;
}

/* Starts the worker, warms it up, produces, waits for every job, stops it. */
static int run_latency(bench *b, latency_run *r, const char *payload, long long rate,
                       long long slow_every, const char *slow_payload)
{
    worker w = { 0 };
    progress p;
    double stop_s;
    int rc = bench_reset_queue(b->admin);

    if (rc == 0)
        rc = worker_start(b, &w);
    if (rc == 0)
        rc = warm_up(b, &w, b->opts.dir);
    if (rc == 0)
        rc = produce(b, r, payload, rate, slow_every, slow_payload);
    if (rc == 0)
        rc = wait_completed(b, &w, r->jobs + 1, &p);
    if (rc != 0) {
        worker_abandon(&w);
        return rc;
    }
    return worker_stop(&w, &stop_s) != 0 || verify_empty(b, r->jobs + 1) != 0 || !ids_increasing(r);
}

typedef int (*report_fn)(bench *b, latency_run *r, const run_line *lines, size_t nlines);

/*
 * The open-loop phases: rate x --seconds jobs logged to DIR/name.log, one
 * in slow_every a test.sleep of --slow-ms (0: none), with the pickup
 * trace when trace; report reads the log.
 */
static int open_loop(bench *b, const char *name, long long rate, long long slow_every, bool trace,
                     report_fn report)
{
    latency_run r = { .jobs = rate * b->opts.seconds };
    char log[4096], payload[4200], slow_payload[4300];
    run_line *lines = NULL;
    size_t nlines = 0;
    int rc;

    r.ids = calloc((size_t)r.jobs, sizeof(*r.ids));
    r.sent_us = calloc((size_t)r.jobs, sizeof(*r.sent_us));
    r.call_ns = calloc((size_t)r.jobs, sizeof(*r.call_ns));
    snprintf(log, sizeof(log), "%s/%s.log", b->opts.dir, name);
    rc = r.ids == NULL || r.sent_us == NULL || r.call_ns == NULL
             ? bench_fail(NULL, USHER_ERR_NOMEM, name)
             : log_payload(payload, sizeof(payload) - 16, log);
    if (rc == 0 && trace) /* the handler logs each job's pickup trace too */
        memcpy(payload + strlen(payload) - 1, ",\"trace\":true}", 15);
    if (rc == 0)
        snprintf(slow_payload, sizeof(slow_payload), "{\"ms\":%lld,%s", b->opts.slow_ms,
                 payload + 1);
    if (rc == 0 && unlink(log) != 0 && errno != ENOENT)
        rc = fail_errno("cannot remove", log);
    if (rc == 0)
        rc = run_latency(b, &r, payload, rate, slow_every, slow_payload);
    if (rc == 0)
        rc = read_log(log, &lines, &nlines);
    if (rc == 0)
        rc = report(b, &r, lines, nlines);
    free(lines);
    free(r.ids);
    free(r.sent_us);
    free(r.call_ns);
    return rc;
}

/*
 * The floor under the pickup: one durable commit, a one-row INSERT into a
 * table of its own, at the latency phase's rate on the same schedule, just
 * before it. A pickup waits for two such commits (the enqueue's, the
 * claim's), so its p99 cannot beat this one's on the same machine.
 */
static int commit_floor(bench *b, long long rate, long long n)
{
    static const char insert_sql[] = "INSERT INTO bench_commit_floor DEFAULT VALUES";
    int64_t *lat = calloc((size_t)n, sizeof(*lat)), period = NS_PER_S / rate, t0;
    usher_err err = lat == NULL ? USHER_ERR_NOMEM : USHER_OK;

    if (err == USHER_OK)
        err = usher_store_command(b->admin, "CREATE TABLE IF NOT EXISTS bench_commit_floor"
                                            " (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                                            "  at timestamptz NOT NULL DEFAULT now())");
    t0 = bench_now_ns();
    for (long long i = 0; i < n && err == USHER_OK; i++) {
        PGresult *res = NULL;
        int64_t call;

        bench_sleep_until(t0 + i * period);
        call = bench_now_ns();
        err = usher_store_exec_hot(b->admin, insert_sql, 0, NULL, &res); /* prepared, as enqueue */
        lat[i] = bench_now_ns() - call;
        PQclear(res);
    }
    if (err == USHER_OK)
        err = usher_store_command(b->admin, "TRUNCATE bench_commit_floor");
    if (err != USHER_OK) {
        free(lat);
        return bench_fail(b->admin, err, "commit floor");
    }
    qsort(lat, (size_t)n, sizeof(*lat), bench_compare_int64);
    printf("{\"bench\":\"commit_floor\",\"rate\":%lld,\"commits\":%lld,\"p50_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"max_ms\":%.3f}\n",
           rate, n, bench_percentile_ms(lat, n, 50, NS_PER_MS),
           bench_percentile_ms(lat, n, 99, NS_PER_MS), (double)lat[n - 1] / (double)NS_PER_MS);
    free(lat);
    return 0;
}

static int phase_latency(bench *b)
{
    int rc = commit_floor(b, b->opts.rate, b->opts.rate * b->opts.seconds);

    return rc != 0 ? rc : open_loop(b, "latency", b->opts.rate, 0, true, report_latency);
}

/* ---------------------------------------------------------------- mix */

/* The fast jobs' pickup latencies from the log, sorted, then printed. */
static int report_mix(bench *b, latency_run *r, const run_line *lines, size_t nlines)
{
    long long *index = calloc((size_t)r->jobs, sizeof(*index)), n = 0, slow = 0;
    int64_t *lat = calloc((size_t)r->jobs, sizeof(*lat));
    run_check c;
    int rc = index == NULL || lat == NULL ? bench_fail(NULL, USHER_ERR_NOMEM, "mix") : 0;

    if (rc == 0)
        rc = check_runs(r->ids, r->jobs, lines, nlines, index, &c);
    if (rc == 0 && !runs_ok(&c))
        rc = 1;
    for (long long i = 0; i < r->jobs && rc == 0; i++) {
        if (slow_job(b->opts.slow_every, i))
            slow++;
        else
            lat[n++] = lines[index[i]].start_us - r->sent_us[i];
    }
    if (rc == 0) {
        printf("{\"bench\":\"worker_mix\",\"rate\":%lld,\"jobs\":%lld,\"slow_jobs\":%lld,"
               "\"slow_ms\":%lld,\"children\":%d,",
               b->opts.mix_rate, r->jobs, slow, b->opts.slow_ms, b->pool->initial);
        bench_print_latency(lat, n, 1000, r->call_ns, r->jobs);
    }
    free(index);
    free(lat);
    return rc;
}

static int phase_mix(bench *b)
{
    return open_loop(b, "mix", b->opts.mix_rate, b->opts.slow_every, false, report_mix);
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
    fprintf(
        stderr,
        "usage: %s [--config FILE] --worker PATH --dir DIR [--pool NAME]\n"
        "       [--phase drain|warm|once|latency|mix|all] [--jobs N] [--once-jobs N] [--rate N]\n"
        "       [--seconds N] [--mix-rate N] [--slow-every N] [--slow-ms N]\n",
        PROGRAM);
}

static int parse_args(int argc, char **argv, bench_opts *o)
{
    const bench_int_option ints[] = {
        { "--jobs", &o->jobs, 1, 10000000 },      { "--once-jobs", &o->once_jobs, 1, 10000000 },
        { "--rate", &o->rate, 1, 10000 },         { "--seconds", &o->seconds, 1, 3600 },
        { "--mix-rate", &o->mix_rate, 1, 10000 }, { "--slow-every", &o->slow_every, 0, 1000000 },
        { "--slow-ms", &o->slow_ms, 0, 60000 },
    };
    const bench_text_option texts[] = {
        { "--phase", &o->phase },
        { "--worker", &o->worker },
        { "--pool", &o->pool },
        { "--dir", &o->dir },
    };
    int rc = bench_parse_options(argc, argv, ints, sizeof(ints) / sizeof(ints[0]), texts,
                                 sizeof(texts) / sizeof(texts[0]));

    if (rc > 0)
        return rc;
    if (rc == 0 && o->worker != NULL && o->dir != NULL)
        return 0;
    usage();
    return 1;
}

static const bench_phase phases[] = {
    { "drain", phase_drain },     { "warm", phase_warm }, { "once", phase_once },
    { "latency", phase_latency }, { "mix", phase_mix },
};

/* The pool must exist and serve the queue the phases use. */
static int check_pool(bench *b)
{
    const usher_queue_conf *q = usher_config_queue(&b->cfg, QUEUE);

    b->pool = usher_config_pool(&b->cfg, b->opts.pool);
    if (b->pool != NULL && q != NULL && strcmp(q->pool, b->opts.pool) == 0 && b->cfg.path != NULL)
        return 0;
    fprintf(stderr, "%s: the configuration must declare [pool.%s] and [queue.%s] with pool = %s\n",
            PROGRAM, b->opts.pool, QUEUE, b->opts.pool);
    return 1;
}

int main(int argc, char **argv)
{
    bench b = { .opts = { .phase = "all",
                          .pool = "bench",
                          .jobs = 100000,
                          .once_jobs = 20000,
                          .rate = 200,
                          .seconds = 10,
                          .mix_rate = 400,
                          .slow_every = 100,
                          .slow_ms = 1000 } };
    int rc;

    if (usher_cli_load_config(PROGRAM, &argc, argv, &b.cfg) != 0)
        return 1;
    rc = parse_args(argc, argv, &b.opts);
    if (rc == 0)
        rc = check_pool(&b);
    if (rc == 0 && bench_store_open(&b.cfg, &b.admin) != USHER_OK)
        rc = 1;
    signal(SIGPIPE, SIG_IGN);
    if (rc == 0)
        rc = bench_run_phases(phases, sizeof(phases) / sizeof(phases[0]), b.opts.phase, &b);
    usher_store_free(b.admin);
    usher_config_free(&b.cfg);
    return rc;
}
