/*
 * usher-bench-analytics: analytics.rollup events folded per second through
 * a real usher-worker (supervisor and children) against a real PostgreSQL.
 * Each run empties the queue and the analytics tables, fills --jobs
 * analytics.rollup jobs (untimed) spread over --events events, the three
 * metrics and 60 minutes, then starts the worker: the time runs from fork
 * until usher_queue_stats counts every job completed (polled every 10 ms).
 * Then SIGTERM, and checks: no job left, every job's id in
 * analytics_folded, and the counters adding up to exactly what was filled.
 *
 * One JSON line per run on stdout, then a summary line with the median of
 * the runs; errors on stderr and a non-zero exit status. The database must
 * be migrated (usherctl migrate) and hold the demo schema; the benchmark
 * seeds its events itself. The pool's children batch as many jobs as its
 * child_queue lets them hold (bench/analytics.conf: 64), so running it with
 * child_queue = 1 measures the same handler one job per statement.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"
#include "cli.h"
#include "config.h"
#include "enqueue.h"
#include "error.h"
#include "seed.h"
#include "store.h"

#define PROGRAM    "usher-bench-analytics"
#define QUEUE      "analytics"
#define KIND       "analytics.rollup"
#define POLL_MS    10
#define WAIT_S     600 /* give up on a run whose jobs do not complete by then */
#define STOP_S     60  /* SIGKILL a worker that has not exited this long after SIGTERM */
#define EVENTS_MAX 100
#define RUNS_MAX   15

const char bench_program[] = PROGRAM;

typedef struct bench_opts {
    const char *worker; /* the usher-worker binary */
    const char *pool;   /* the pool it runs; it must serve the queue `analytics` */
    const char *dir;    /* where the worker's stderr goes */
    long long jobs, events, runs;
} bench_opts;

struct bench {
    usher_config cfg;
    bench_opts opts;
    const usher_pool_conf *pool;
    usher_store *admin;
    int64_t event_ids[EVENTS_MAX];
};

/* ---------------------------------------------------------------- setup */

static int reset(bench *b)
{
    usher_err err = usher_store_command(b->admin, "TRUNCATE analytics_minute, analytics_folded");

    if (err != USHER_OK)
        return bench_fail(b->admin, err,
                          "truncate the analytics tables (is the database migrated?)");
    return bench_reset_queue(b->admin);
}

static int seed_events(bench *b)
{
    usher_seed_result seed;

    for (long long i = 0; i < b->opts.events; i++) {
        usher_err err = usher_seed_demo(b->admin, 1, &seed);

        if (err != USHER_OK)
            return bench_fail(b->admin, err, "seed an event");
        b->event_ids[i] = seed.event_id;
    }
    return 0;
}

/* Fills the jobs in batches; *total is the sum of their counts. */
static int fill(bench *b, long long *total)
{
    static const char *const metrics[] = { "registration", "checkin", "session_access" };
    static char payloads[BENCH_FILL_BATCH][160];
    static usher_enqueue_opts opts[BENCH_FILL_BATCH];
    static usher_enqueued out[BENCH_FILL_BATCH];

    *total = 0;
    for (long long done = 0; done < b->opts.jobs;) {
        long long k =
            b->opts.jobs - done < BENCH_FILL_BATCH ? b->opts.jobs - done : BENCH_FILL_BATCH;
        usher_err err;

        for (long long i = 0; i < k; i++) {
            long long seq = done + i, count = 1 + seq % 3;

            snprintf(payloads[i], sizeof(payloads[i]),
                     "{\"event_id\":%lld,\"metric\":\"%s\",\"count\":%lld,"
                     "\"at\":\"2026-05-04T09:%02lld:%02lldZ\"}",
                     (long long)b->event_ids[seq % b->opts.events], metrics[(seq / 7) % 3], count,
                     (seq / 13) % 60, seq % 60);
            opts[i] = (usher_enqueue_opts){ .queue = QUEUE, .kind = KIND, .payload = payloads[i] };
            *total += count;
        }
        err = usher_enqueue_batch(b->admin, opts, (size_t)k, out);
        if (err != USHER_OK)
            return bench_fail(b->admin, err, "fill");
        done += k;
    }
    return 0;
}

/* ---------------------------------------------------------------- the worker */

static int worker_start(const bench *b, pid_t *pid)
{
    char log[4096];
    int fd;

    snprintf(log, sizeof(log), "%s/worker.log", b->opts.dir);
    fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "%s: cannot open %s: %s\n", PROGRAM, log, strerror(errno));
        return 1;
    }
    fflush(NULL);
    *pid = fork();
    if (*pid == 0) {
        if (dup2(fd, STDERR_FILENO) < 0)
            _exit(126);
        execl(b->opts.worker, b->opts.worker, "--config", b->cfg.path, "--pool", b->opts.pool,
              (char *)NULL);
        _exit(127);
    }
    close(fd);
    if (*pid > 0)
        return 0;
    fprintf(stderr, "%s: cannot fork: %s\n", PROGRAM, strerror(errno));
    return 1;
}

/* SIGTERM, then waits (SIGKILL after STOP_S); 0 only when it exited with status 0. */
static int worker_stop(pid_t pid, struct rusage *usage)
{
    int64_t deadline = bench_now_ns() + STOP_S * NS_PER_S;
    int status = 0;
    pid_t r;

    kill(pid, SIGTERM);
    while ((r = wait4(pid, &status, WNOHANG, usage)) == 0 && bench_now_ns() < deadline)
        bench_sleep_until(bench_now_ns() + POLL_MS * NS_PER_MS);
    if (r == 0) {
        fprintf(stderr, "%s: usher-worker still running %d s after SIGTERM; killing it\n", PROGRAM,
                STOP_S);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return 1;
    }
    if (r == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    fprintf(stderr, "%s: usher-worker ended with status 0x%x\n", PROGRAM, status);
    return 1;
}

/* Polls usher_queue_stats until every job completed; fails on a failed job or a dead worker. */
static int wait_completed(bench *b, pid_t pid, int64_t *done_ns)
{
    int64_t deadline = bench_now_ns() + WAIT_S * NS_PER_S;
    long long v[2];
    int status;

    for (;;) {
        if (bench_query_ints(b->admin,
                             "SELECT coalesce(sum(completed), 0), coalesce(sum(failed), 0)"
                             " FROM usher_queue_stats",
                             v, 2) != 0)
            return 1;
        if (v[0] >= b->opts.jobs || v[1] > 0)
            break;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "%s: usher-worker ended (status 0x%x) with %lld of %lld jobs done\n",
                    PROGRAM, status, v[0], b->opts.jobs);
            return 1;
        }
        if (bench_now_ns() > deadline) {
            fprintf(stderr, "%s: timed out with %lld of %lld jobs done\n", PROGRAM, v[0],
                    b->opts.jobs);
            return 1;
        }
        bench_sleep_until(bench_now_ns() + POLL_MS * NS_PER_MS);
    }
    *done_ns = bench_now_ns();
    if (v[0] == b->opts.jobs && v[1] == 0)
        return 0;
    fprintf(stderr, "%s: %lld jobs completed and %lld failed, want %lld and 0\n", PROGRAM, v[0],
            v[1], b->opts.jobs);
    return 1;
}

/* No job left, every job folded once, the counters add up; *statements is how many folded. */
static int verify(bench *b, long long total, long long *statements)
{
    long long v[4];

    if (bench_query_ints(b->admin,
                         "SELECT (SELECT count(*) FROM usher_jobs),"
                         " (SELECT count(*) FROM analytics_folded),"
                         " (SELECT coalesce(sum(count), 0) FROM analytics_minute),"
                         " (SELECT count(DISTINCT folded_at) FROM analytics_folded)",
                         v, 4) != 0)
        return 1;
    *statements = v[3];
    if (v[0] == 0 && v[1] == b->opts.jobs && v[2] == total)
        return 0;
    fprintf(stderr,
            "%s: after the run %lld jobs are left, %lld folded, counters sum to %lld (want 0, "
            "%lld, %lld)\n",
            PROGRAM, v[0], v[1], v[2], b->opts.jobs, total);
    return 1;
}

static double cpu_seconds(const struct rusage *ru)
{
    return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) +
           (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;
}

/* ---------------------------------------------------------------- runs */

static int run_once(bench *b, int run, double *rate)
{
    long long total = 0, statements = 0;
    struct rusage usage = { 0 };
    int64_t started_ns = 0, done_ns = 0;
    double seconds;
    pid_t pid = 0;
    int rc = reset(b);

    if (rc == 0)
        rc = fill(b, &total);
    if (rc == 0) {
        started_ns = bench_now_ns();
        rc = worker_start(b, &pid);
    }
    if (rc == 0)
        rc = wait_completed(b, pid, &done_ns);
    if (pid > 0)
        rc = worker_stop(pid, &usage) != 0 ? 1 : rc;
    if (rc == 0)
        rc = verify(b, total, &statements);
    if (rc != 0)
        return rc;
    seconds = bench_seconds_between(started_ns, done_ns);
    *rate = (double)b->opts.jobs / seconds;
    printf("{\"bench\":\"analytics_fold\",\"run\":%d,\"jobs\":%lld,\"events\":%lld,"
           "\"children\":%d,\"child_queue\":%d,\"seconds\":%.3f,\"events_per_s\":%.0f,"
           "\"statements\":%lld,\"jobs_per_statement\":%.1f,\"worker_cpu_us_per_job\":%.1f,"
           "\"verified\":true}\n",
           run, b->opts.jobs, b->opts.events, b->pool->initial, b->pool->child_queue, seconds,
           *rate, statements, (double)b->opts.jobs / (double)statements,
           cpu_seconds(&usage) * 1e6 / (double)b->opts.jobs);
    fflush(stdout);
    return 0;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static int run_all(bench *b)
{
    double rates[RUNS_MAX], median;
    int n = (int)b->opts.runs;
    int rc = seed_events(b);

    for (int i = 0; i < n && rc == 0; i++)
        rc = run_once(b, i + 1, &rates[i]);
    if (rc != 0)
        return rc;
    qsort(rates, (size_t)n, sizeof(rates[0]), compare_double);
    median = n % 2 == 1 ? rates[n / 2] : (rates[n / 2 - 1] + rates[n / 2]) / 2;
    printf("{\"bench\":\"analytics_fold_summary\",\"runs\":%d,\"jobs\":%lld,\"children\":%d,"
           "\"child_queue\":%d,\"median_events_per_s\":%.0f,\"min_events_per_s\":%.0f,"
           "\"max_events_per_s\":%.0f}\n",
           n, b->opts.jobs, b->pool->initial, b->pool->child_queue, median, rates[0], rates[n - 1]);
    return 0;
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
    fprintf(stderr,
            "usage: %s [--config FILE] --worker PATH --dir DIR [--pool NAME] [--jobs N]\n"
            "       [--events N] [--runs N]\n",
            PROGRAM);
}

static int parse_args(int argc, char **argv, bench_opts *o)
{
    const bench_int_option ints[] = {
        { "--jobs", &o->jobs, 1, 10000000 },
        { "--events", &o->events, 1, EVENTS_MAX },
        { "--runs", &o->runs, 1, RUNS_MAX },
    };
    const bench_text_option texts[] = {
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

/* The pool must exist and serve the analytics queue. */
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
    static bench b = { .opts = { .pool = "bench", .jobs = 50000, .events = 10, .runs = 3 } };
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
        rc = run_all(&b);
    usher_store_free(b.admin);
    usher_config_free(&b.cfg);
    return rc;
}
