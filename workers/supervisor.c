/*
 * The supervisor. Everything happens on one libevent loop:
 *
 *   claim:  when children are idle (and the pool is not draining), claim
 *           up to that many jobs in one statement and hand one to each.
 *           Claimed jobs wait in a FIFO (ready) until a child can take
 *           them; the pool holds up to a window of jobs per child, fixed
 *           (1 + prefetch) or, when the pool sets neither prefetch nor
 *           child_queue, adapted to the jobs' service times (engine/hold.h,
 *           children.h), with jobs queued behind a slow one handed back.
 *   flush:  outcomes collect in an outbox; whenever no flush is in
 *           flight, the outbox goes out as one complete statement and
 *           one fail statement. A flush that the database did not confirm
 *           goes back into the outbox and is sent again: completing or
 *           failing a job twice is a no-op, losing an outcome is not.
 *   wake:   NOTIFY on the pool's queues, a poll timer as the fallback, and
 *           one re-check shortly after the queue looked empty (enqueuers
 *           debounce their NOTIFYs, see engine/wake.h).
 *   ticks:  (on the flush connection, never delaying a claim)
 *           lease heartbeats; every second the queue depth, the desired
 *           size, the pool's row in usher_pools (which grants the size a
 *           downstream cap allows), and sd_notify STATUS/WATCHDOG.
 *   stop:   SIGTERM stops claiming, lets running jobs finish within the
 *           grace period (then kills them: their jobs are returned without
 *           spending an attempt), flushes, and exits 0.
 *
 * The supervisor never starts a thread, so that it may fork at any moment
 * (fork.h): the maintenance leader's work runs in a child process of its
 * own (maintenance.h), which the loop watches and restarts.
 */
#include "supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "autoscale.h"
#include "children.h"
#include "claim.h"
#include "config.h"
#include "config_reload.h"
#include "conn_budget.h"
#include "fate.h"
#include "handler.h"
#include "job_requests.h"
#include "log.h"
#include "maintenance.h"
#include "outbox.h"
#include "pgloop.h"
#include "pool_metrics.h"
#include "proc_usage.h"
#include "stmt.h"
#include "wake.h"
#include "xapian_wrap.h"

#define QUEUES_MAX        64
#define TICK_MS           1000
#define USAGE_TICKS       5 /* ticks between two readings of /proc */
#define MAINT_INTERVAL_MS 5000
#define CLAIM_MAX         10000 /* jobs per claim of a pool whose claims fill its window */

typedef struct supervisor {
    struct event_base *base;
    const char *config_path;
    usher_config cfg;
    const usher_pool_conf *pool;
    char pool_name[USHER_NAME_MAX];
    char host[256];
    char worker_id[320];
    char queue_names[QUEUES_MAX][USHER_NAME_MAX];
    const char *queues[QUEUES_MAX];
    size_t nqueues;

    usher_pgloop *pg;
    usher_pgloop *pg_flush; /* a second connection: completions, failures, side statements */
    usher_children *children;
    usher_maintenance *maint;
    usher_autoscale *autoscale;
    usher_pool_metrics *metrics;
    usher_gcra *smtp_limiter; /* shared with the children: [pool.NAME] smtp_rate */
    int desired;              /* what the autoscaling policy asks for */
    int granted;              /* the size usher_pools last granted (-1: not asked yet) */

    usher_outbox pending;  /* outcomes not yet sent */
    usher_outbox inflight; /* outcomes sent, not yet confirmed */
    int flushes_in_flight;
    bool flush_failed;

    bool claiming;
    bool wake_pending; /* a wake-up came while a claim was in flight: claim again after it */
    usher_job **ready; /* claimed, waiting for an idle child: ready[ready_first..ready_end) */
    size_t ready_first, ready_end, ready_cap;
    size_t prefetch;       /* jobs kept ready per child, beyond the one it runs */
    bool adaptive;         /* the window per child follows the jobs (usher_children_adapt) */
    int64_t notified_us;   /* the last NOTIFY (job traces) */
    usher_job_trace claim; /* the claim in flight: its notified_us and claim_sent_us */
    int recheck_ms;        /* next look after an empty claim; doubles up to the poll interval */
    bool draining;
    bool finished;
    bool ready_sent;
    int64_t depth;
    int usage_ticks;       /* ticks since CPU and memory were last measured */
    double usage_cpu_s;    /* the supervisor's and children's CPU seconds then */
    double usage_wall_s;   /* monotonic seconds then */
    double cpu, rss_bytes; /* the last measurement */

    struct event *signals[4];
    struct event *poll_timer, *heartbeat_timer, *tick_timer, *watchdog_timer;
    struct event *recheck_timer, *grace_timer;
    int exit_status;
} supervisor;

static void maybe_claim(supervisor *s);
static void flush(supervisor *s);
static void return_ready(supervisor *s);
static void check_drained(supervisor *s);
static void children_idle(void *arg);

static void ms_to_tv(int ms, struct timeval *tv)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

static bool result_ok(PGresult *res, const char *errmsg, const char *what)
{
    ExecStatusType status = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)
        return true;
    usher_log(USHER_LOG_WARNING, "%s failed: %s", what, errmsg);
    return false;
}

/* ------------------------------------------------------------------ outcomes */

static int64_t wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *const outcome_names[] = { "ok", "retry", "permanent", "snooze" };

/* What an attempt's line says but its request id. */
typedef struct attempt_line {
    const usher_job *job;
    const usher_handler_result *r;
    const char *outcome;
    double ms;
} attempt_line;

static void log_attempt_line(const char *rid, void *arg)
{
    const attempt_line *a = arg;

    usher_log(USHER_LOG_INFO,
              "job=%lld kind=%s queue=%s attempt=%d outcome=%s ms=%.1f request_id=%s%s%s",
              (long long)a->job->id, a->job->kind, a->job->queue, a->job->attempt, a->outcome,
              a->ms, rid, a->r->outcome == USHER_OUTCOME_OK ? "" : " error=", a->r->error);
}

/*
 * The attempt's line: every failure, and with [worker] job_log every
 * success. request_id is the request's (or the chaining job's) X-Request-Id,
 * "-" when no request caused the job; a job several requests share has a
 * line for each (job_requests.h).
 */
static void log_attempt(const supervisor *s, const usher_job *job, const usher_handler_result *r,
                        int64_t now_us)
{
    attempt_line a = {
        .job = job,
        .r = r,
        .outcome = (unsigned)r->outcome < sizeof(outcome_names) / sizeof(outcome_names[0])
                       ? outcome_names[r->outcome]
                       : "unknown",
        .ms = job->started_us > 0 ? (double)(now_us - job->started_us) / 1000.0 : 0.0,
    };

    if (r->outcome == USHER_OUTCOME_OK && !s->cfg.worker_job_log)
        return;
    usher_job_requests_each(job, log_attempt_line, &a);
}

static void job_finished(usher_job *job, const usher_handler_result *r, void *arg)
{
    supervisor *s = arg;
    int64_t now_us = wall_us();

    usher_pool_metrics_finished(s->metrics, job, r, job->started_us, now_us);
    log_attempt(s, job, r, now_us);
    if (!usher_outbox_add(&s->pending, job, r))
        usher_log(USHER_LOG_ERR, "out of memory keeping an outcome; its lease will expire");
    flush(s);
}

/* One statement of a flush is done; when all are, confirm or re-queue the outbox. */
static void flush_settled(supervisor *s)
{
    if (--s->flushes_in_flight > 0)
        return;
    if (s->flush_failed && !usher_outbox_merge(&s->pending, &s->inflight))
        usher_log(USHER_LOG_ERR, "out of memory re-queuing outcomes; their leases will expire");
    usher_outbox_clear(&s->inflight);
    if (!s->flush_failed)
        flush(s);
    s->flush_failed = false;
    check_drained(s);
}

static void flushed(PGresult *res, const char *errmsg, void *arg)
{
    supervisor *s = arg;

    if (!result_ok(res, errmsg, "flush"))
        s->flush_failed = true;
    flush_settled(s);
}

/* Sends one statement of a flush; false if it could not be queued. */
static bool send_on(supervisor *s, usher_pgloop *pg, usher_stmt *st, usher_err built,
                    usher_pg_result_fn done)
{
    usher_err err = built;

    if (err == USHER_OK)
        err = usher_pgloop_query(pg, st->sql, st->nparams, st->params, done, s);
    usher_stmt_release(st);
    return err == USHER_OK;
}

/*
 * The side statements (lease heartbeats, the pool's row, depth and age)
 * go on the flush connection: a claim never waits behind them.
 */
static bool send_stmt(supervisor *s, usher_stmt *st, usher_err built, usher_pg_result_fn done)
{
    return send_on(s, s->pg_flush, st, built, done);
}

static bool send_failures(supervisor *s)
{
    usher_job_result *results = usher_calloc(s->inflight.nfailed, sizeof(*results));
    usher_stmt st = { 0 };
    bool sent;

    for (size_t i = 0; i < s->inflight.nfailed; i++) {
        const usher_failed_job *f = &s->inflight.failed[i];

        results[i] = (usher_job_result){ .job = f->job,
                                         .outcome = f->result.outcome,
                                         .delay_ms = f->result.delay_ms,
                                         .error = f->result.error };
    }
    sent =
        send_on(s, s->pg_flush, &st,
                usher_fate_stmt(&st, &s->cfg, s->worker_id, results, s->inflight.nfailed), flushed);
    free(results);
    return sent;
}

static void flush(supervisor *s)
{
    usher_stmt st = { 0 };

    if (s->flushes_in_flight > 0 || usher_outbox_empty(&s->pending) ||
        !usher_pgloop_connected(s->pg_flush))
        return;
    if (!usher_outbox_merge(&s->inflight, &s->pending))
        return;
    s->flush_failed = false;
    s->flushes_in_flight = 1; /* held while sending, so a synchronous failure cannot finish it */
    if (s->inflight.ndone > 0) {
        if (send_on(s, s->pg_flush, &st,
                    usher_complete_stmt(&st, s->worker_id, s->inflight.done, s->inflight.ndone),
                    flushed))
            s->flushes_in_flight++;
        else
            s->flush_failed = true;
    }
    if (s->inflight.nfailed > 0) {
        if (send_failures(s))
            s->flushes_in_flight++;
        else
            s->flush_failed = true;
    }
    flush_settled(s);
}

/* -------------------------------------------------------------------- claims */

static size_t nready(const supervisor *s)
{
    return s->ready_end - s->ready_first;
}

/* Puts jobs (oldest first) at the head of the FIFO: they were claimed before the rest. */
static void ready_unshift(supervisor *s, usher_job **jobs, size_t n)
{
    if (s->ready_first < n) {
        size_t have = nready(s), cap = s->ready_cap;

        while (cap < have + n)
            cap = cap > 0 ? 2 * cap : 64;
        usher_job **more = usher_malloc(cap * sizeof(*more));

        if (have > 0)
            memcpy(more + n, s->ready + s->ready_first, have * sizeof(*more));
        free(s->ready);
        s->ready = more;
        s->ready_cap = cap;
        s->ready_first = n;
        s->ready_end = n + have;
    }
    s->ready_first -= n;
    memcpy(s->ready + s->ready_first, jobs, n * sizeof(*jobs));
}

static void ready_push(supervisor *s, usher_job *job)
{
    if (s->ready_first == s->ready_end)
        s->ready_first = s->ready_end = 0;
    if (s->ready_end == s->ready_cap && s->ready_first > 0) {
        memmove(s->ready, s->ready + s->ready_first, nready(s) * sizeof(*s->ready));
        s->ready_end -= s->ready_first;
        s->ready_first = 0;
    }
    if (s->ready_end == s->ready_cap) {
        size_t cap = s->ready_cap > 0 ? 2 * s->ready_cap : 64;
        usher_job **more = usher_realloc(s->ready, cap * sizeof(*more));

        s->ready = more;
        s->ready_cap = cap;
    }
    s->ready[s->ready_end++] = job;
}

/* Gives a job back without spending an attempt. */
static void give_back(supervisor *s, usher_job *job, const char *why)
{
    usher_handler_result back = { .outcome = USHER_OUTCOME_SNOOZE, .delay_ms = 0 };

    snprintf(back.error, sizeof(back.error), "returned: %s", why);
    job_finished(job, &back, s);
}

/* Hands ready jobs to idle children. */
static void feed(supervisor *s)
{
    while (nready(s) > 0 && usher_children_idle(s->children) > 0) {
        usher_job *job = s->ready[s->ready_first];
        int64_t before = job->started_us; /* 0 unless a child handed it back */
        usher_err err;

        job->started_us = wall_us();
        err = usher_children_dispatch(s->children, job);
        if (err == USHER_ERR_STATE) { /* every child with room runs a slow job: wait */
            job->started_us = before;
            return;
        }
        s->ready_first++;
        if (err != USHER_OK) {
            job->started_us = 0;
            give_back(s, job, "no idle child");
            continue;
        }
        if (before == 0)
            usher_pool_metrics_started(s->metrics, job, job->started_us);
    }
}

/* Jobs a child had queued behind a slow one: first in line for the others. */
static void children_returned(usher_job **jobs, size_t n, void *arg)
{
    supervisor *s = arg;

    ready_unshift(s, jobs, n);
    if (s->draining)
        return_ready(s);
    else
        feed(s);
}

/*
 * An adaptive pool claims for the window its jobs have had so far: after a
 * flood of short jobs, up to 256 per child. When its jobs then turn out
 * slow (the window down to one: the last dozen or so took 2 ms or more),
 * the ready jobs beyond that window go back to the queue (newest first, no
 * attempt spent), for other hosts and later claims, rather than waiting
 * here for seconds under renewed leases, out of the autoscaler's depth.
 * Not sooner: one slow job among short ones shrinks the window for a few
 * jobs only, and the short jobs queued here are soon run by the others.
 */
static void trim_ready(supervisor *s)
{
    size_t window = usher_children_window(s->children);
    size_t capacity = usher_children_open(s->children) * window;
    size_t held = usher_children_busy(s->children) + nready(s);

    if (!s->adaptive || s->draining || window > 1 || held <= 2 * capacity)
        return;
    for (; held > capacity && nready(s) > 0; held--)
        give_back(s, s->ready[--s->ready_end], "its jobs run slow: fewer held");
}

/* Returns every ready job (the pool is stopping). */
static void return_ready(supervisor *s)
{
    while (nready(s) > 0)
        give_back(s, s->ready[s->ready_first++], "worker shut down before it started");
}

/* Moves each claimed job into an allocation of its own, queues it, and feeds the children. */
static void dispatch_all(supervisor *s, usher_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        usher_job *job = usher_malloc(sizeof(*job));

        *job = jobs[i];
        ready_push(s, job);
    }
    free(jobs);
    feed(s);
    if (s->draining)
        return_ready(s);
}

static void recheck_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    maybe_claim(arg);
}

static void claimed(PGresult *res, const char *errmsg, void *arg)
{
    supervisor *s = arg;
    usher_job *jobs;
    size_t n;
    struct timeval tv;

    s->claiming = false;
    if (!result_ok(res, errmsg, "claim"))
        return;
    if (usher_claim_read(res, &jobs, &n) != USHER_OK) {
        usher_log(USHER_LOG_ERR, "out of memory reading claimed jobs; their leases will expire");
        return;
    }
    /*
     * An enqueue inside the debounce window sends no NOTIFY, and its commit
     * may land after this claim looked: look again after 2, 4, 8... ms,
     * up to the poll interval, rather than waiting a whole poll.
     */
    if (n > 0) {
        s->recheck_ms = 2 * s->cfg.notify_debounce_ms + 1;
    } else if (s->recheck_ms < s->cfg.poll_interval_ms) {
        ms_to_tv(s->recheck_ms, &tv);
        evtimer_add(s->recheck_timer, &tv);
        s->recheck_ms *= 2;
    }
    s->claim.claimed_us = wall_us();
    for (size_t i = 0; i < n; i++)
        jobs[i].trace = s->claim;
    dispatch_all(s, jobs, n);
    if (n > 0 || s->wake_pending)
        maybe_claim(s);
}

static void maybe_claim(supervisor *s)
{
    size_t busy = usher_children_busy(s->children);
    /* Fixed: (1 + prefetch) per job slot of the children (child_queue each). */
    size_t capacity = s->adaptive
                          ? usher_children_open(s->children) * usher_children_window(s->children)
                          : (usher_children_idle(s->children) + busy) * (1 + s->prefetch);
    size_t batch = (size_t)(s->pool->claim_window ? CLAIM_MAX : s->pool->claim_batch);
    size_t held = busy + nready(s), room = held < capacity ? capacity - held : 0;
    size_t threshold = capacity / 4 > batch ? batch : capacity / 4;
    usher_stmt st = { 0 };
    usher_err err;

    if (s->draining || s->claiming || room == 0 || !usher_pgloop_connected(s->pg))
        return;
    s->wake_pending = false;
    /* Under load, wait for room for a few jobs so that one claim feeds many. */
    if (held > 0 && room < (threshold > 0 ? threshold : 1))
        return;
    err = usher_claim_stmt(&st, &s->cfg, s->queues, s->nqueues, s->worker_id,
                           room < batch ? room : batch);
    if (err == USHER_OK)
        err = usher_pgloop_query(s->pg, st.sql, st.nparams, st.params, claimed, s);
    usher_stmt_release(&st);
    s->claiming = err == USHER_OK;
    s->claim = (usher_job_trace){ .notified_us = s->notified_us, .claim_sent_us = wall_us() };
}

/* --------------------------------------------------------------------- ticks */

static void heartbeat_done(PGresult *res, const char *errmsg, void *arg)
{
    (void)arg;
    result_ok(res, errmsg, "lease heartbeat");
}

static void heartbeat_due(evutil_socket_t fd, short what, void *arg)
{
    supervisor *s = arg;
    size_t max = usher_children_busy(s->children) + nready(s);
    int lease_ms = s->cfg.lease_grace_ms + 2 * s->pool->heartbeat_ms;
    usher_stmt st = { 0 };
    int64_t *ids;
    size_t n;

    (void)fd;
    (void)what;
    if (max == 0 || !usher_pgloop_connected(s->pg_flush))
        return;
    ids = usher_malloc(max * sizeof(*ids));
    n = usher_children_running_ids(s->children, ids, max);
    /* Prefetched jobs hold leases too. */
    for (size_t i = s->ready_first; i < s->ready_end && n < max; i++)
        ids[n++] = s->ready[i]->id;
    send_stmt(s, &st, usher_heartbeat_stmt(&st, s->worker_id, ids, n, lease_ms), heartbeat_done);
    free(ids);
}

static void status_notify(supervisor *s)
{
    sd_notifyf(0, "STATUS=pool=%s size=%zu busy=%zu target=%zu depth=%lld%s%s", s->pool_name,
               usher_children_count(s->children), usher_children_busy(s->children),
               usher_children_target(s->children), (long long)s->depth,
               usher_pgloop_connected(s->pg) ? "" : " database=down",
               s->draining ? " draining" : "");
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The size the pool should have now: the policy's wish, capped by the grant. */
static size_t desired_size(const supervisor *s)
{
    return (size_t)(s->granted >= 0 && s->granted < s->desired ? s->granted : s->desired);
}

/* Applies a new size, telling the policy so its rate limits count it. */
static void resize(supervisor *s)
{
    size_t from = usher_children_target(s->children), to = desired_size(s);

    if (s->draining || from == to)
        return;
    usher_log(USHER_LOG_NOTICE, "pool=%s size %zu -> %zu (%s, depth %lld, granted %d)",
              s->pool_name, from, to, usher_autoscale_reason(s->autoscale), (long long)s->depth,
              s->granted);
    usher_autoscale_applied(s->autoscale, (int)from, (int)to, wall_ms());
    usher_children_set_target(s->children, to);
}

static void registered(PGresult *res, const char *errmsg, void *arg)
{
    supervisor *s = arg;

    if (!result_ok(res, errmsg, "pool heartbeat") || PQntuples(res) != 1)
        return;
    s->granted = atoi(PQgetvalue(res, 0, 0));
    resize(s);
}

static void register_pool(supervisor *s)
{
    const usher_pool_conf *p = s->pool;
    usher_stmt st = { 0 };
    usher_err err;

    usher_stmt_text(&st, 0, s->worker_id);
    usher_stmt_text(&st, 1, s->pool_name);
    usher_stmt_text(&st, 2, s->host);
    usher_stmt_int(&st, 3, (int64_t)getpid());
    usher_stmt_int(&st, 4, (int64_t)usher_children_count(s->children));
    usher_stmt_int(&st, 5, s->desired);
    usher_stmt_int(&st, 6, p->min);
    usher_stmt_int(&st, 7, p->max);
    usher_stmt_int(&st, 8, (int64_t)usher_children_busy(s->children));
    usher_stmt_int(&st, 9, s->depth);
    usher_stmt_text(&st, 10, usher_maintenance_is_leader(s->maint) ? "t" : "f");
    usher_stmt_text(&st, 11, p->downstream);
    usher_stmt_int(&st, 12, p->downstream_limit);
    st.sql = "SELECT usher_pool_heartbeat($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
    err = usher_stmt_finish(&st, 13);
    send_stmt(s, &st, err, registered);
}

static double monotonic_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Every USAGE_TICKS ticks: the CPU use (since the last time, of the host's
 * cores) and resident memory of the supervisor and its children, from
 * /proc. A child that exited in between takes its last seconds with it.
 */
static void measure_usage(supervisor *s)
{
    pid_t pids[1 + 1000];
    size_t n;
    double cpu = 0, rss = 0, wall = monotonic_s();

    if (s->usage_ticks++ % USAGE_TICKS != 0)
        return;
    pids[0] = getpid();
    n = 1 + usher_children_pids(s->children, pids + 1, sizeof(pids) / sizeof(pids[0]) - 1);
    for (size_t i = 0; i < n; i++) {
        double c, r;

        if (usher_proc_usage(pids[i], &c, &r)) {
            cpu += c;
            rss += r;
        }
    }
    if (s->usage_wall_s > 0 && wall > s->usage_wall_s && cpu >= s->usage_cpu_s)
        s->cpu = (cpu - s->usage_cpu_s) / (wall - s->usage_wall_s) / (double)usher_host_cores();
    s->cpu = s->cpu > 1 ? 1 : s->cpu;
    s->usage_cpu_s = cpu;
    s->usage_wall_s = wall;
    s->rss_bytes = rss;
}

static void depth_read(PGresult *res, const char *errmsg, void *arg)
{
    supervisor *s = arg;

    if (!result_ok(res, errmsg, "queue depth"))
        return;
    s->depth = (int64_t)usher_stmt_count(res);
    if (!s->draining) {
        usher_autoscale_observe(s->autoscale, wall_ms(), s->depth,
                                (int)usher_children_busy(s->children));
        /* The downstream cap is applied by usher_pools' grant, across hosts. */
        s->desired = usher_autoscale_desired(
            s->autoscale, s->pool, (int)usher_children_target(s->children), -1, wall_ms());
    }
    usher_pool_metrics_gauges(
        s->metrics, &(usher_pool_gauges){ .current = (int)usher_children_count(s->children),
                                          .desired = s->desired,
                                          .granted = s->granted,
                                          .busy = (int)usher_children_busy(s->children),
                                          .min = s->pool->min,
                                          .max = s->pool->max,
                                          .scale_out_depth = s->pool->scale_out_depth,
                                          .depth = s->depth,
                                          .database_up = usher_pgloop_connected(s->pg),
                                          .cpu = s->cpu,
                                          .rss_bytes = s->rss_bytes });
    if (s->draining)
        return;
    register_pool(s);
}

static void oldest_read(PGresult *res, const char *errmsg, void *arg)
{
    supervisor *s = arg;

    if (!result_ok(res, errmsg, "oldest job"))
        return;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *queue = PQgetvalue(res, i, 0);
        const usher_queue_conf *q = usher_config_queue(&s->cfg, queue);

        usher_pool_metrics_queue_age(s->metrics, queue, strtod(PQgetvalue(res, i, 1), NULL),
                                     q != NULL ? q->age_budget_s : 0);
    }
}

/*
 * The age of each queue's oldest runnable job: per priority the first entry
 * of the claim index (queue, priority, run_at), so three index probes per
 * queue, however long the backlog. Paused queues count as 0: their backlog
 * waits on purpose.
 */
static void read_oldest(supervisor *s)
{
    usher_stmt st = { 0 };
    usher_buf *names = usher_stmt_array(&st, 0);

    for (size_t i = 0; i < s->nqueues; i++)
        usher_buf_array_text(names, s->queues[i]);
    st.sql = "SELECT q.name, COALESCE(extract(epoch FROM now() - min(o.run_at)), 0)::float8"
             " FROM unnest($1::text[]) AS q(name)"
             " CROSS JOIN (VALUES (0::smallint), (1::smallint), (2::smallint)) AS p(priority)"
             " LEFT JOIN LATERAL (SELECT j.run_at FROM usher_jobs j"
             "   WHERE j.queue = q.name AND j.priority = p.priority AND j.state = 'available'"
             "     AND j.run_at <= now()"
             "     AND NOT EXISTS (SELECT 1 FROM usher_queues u WHERE u.name = q.name AND u.paused)"
             "   ORDER BY j.run_at LIMIT 1) o ON true"
             " GROUP BY q.name";
    send_stmt(s, &st, usher_stmt_finish(&st, 1), oldest_read);
}

static void tick_due(evutil_socket_t fd, short what, void *arg)
{
    supervisor *s = arg;
    usher_stmt st = { 0 };
    usher_buf *names;

    (void)fd;
    (void)what;
    status_notify(s);
    measure_usage(s);
    if (!usher_pgloop_connected(s->pg_flush))
        return;
    /* Only now: the array's buffer is allocated at once and send_stmt frees it. */
    names = usher_stmt_array(&st, 0);
    for (size_t i = 0; i < s->nqueues; i++)
        usher_buf_array_text(names, s->queues[i]);
    usher_stmt_int(&st, 1, USHER_AUTOSCALE_DEPTH_CAP);
    st.sql = "SELECT count(*) FROM (SELECT 1 FROM usher_jobs WHERE queue = ANY($1::text[])"
             " AND state = 'available' AND run_at <= now() LIMIT $2) d";
    send_stmt(s, &st, usher_stmt_finish(&st, 2), depth_read);
    read_oldest(s);
}

static void poll_due(evutil_socket_t fd, short what, void *arg)
{
    supervisor *s = arg;

    (void)fd;
    (void)what;
    flush(s);
    maybe_claim(s);
}

static void watchdog_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    sd_notify(0, "WATCHDOG=1");
}

/* ------------------------------------------------------------------ database */

static void listened(PGresult *res, const char *errmsg, void *arg)
{
    (void)arg;
    result_ok(res, errmsg, "LISTEN");
}

static void db_connected(usher_pgloop *pg, void *arg)
{
    supervisor *s = arg;

    for (size_t i = 0; i < s->nqueues; i++) {
        char channel[USHER_NAME_MAX + 8], sql[USHER_NAME_MAX + 32];

        /* Queue names are [a-z0-9_.-] (checked by the config), safe inside quotes. */
        usher_wake_channel(s->queues[i], channel, sizeof(channel));
        snprintf(sql, sizeof(sql), "LISTEN \"%s\"", channel);
        /* Fails only when the connection dropped again: the next connected hook LISTENs. */
        usher_ignore(usher_pgloop_query(pg, sql, 0, NULL, listened, s));
    }
    if (!s->ready_sent) {
        sd_notify(0, "READY=1");
        s->ready_sent = true;
        usher_log(USHER_LOG_NOTICE, "pool=%s worker=%s ready: %zu children, queues served: %zu",
                  s->pool_name, s->worker_id, usher_children_count(s->children), s->nqueues);
    }
    s->claiming = false;
    flush(s);
    maybe_claim(s);
}

static void flush_connected(usher_pgloop *pg, void *arg)
{
    (void)pg;
    flush(arg);
}

static void db_disconnected(const char *why, void *arg)
{
    supervisor *s = arg;

    usher_log(USHER_LOG_WARNING, "pool=%s database lost (%s); children keep running", s->pool_name,
              why);
}

static void db_notified(const char *channel, void *arg)
{
    supervisor *s = arg;

    (void)channel;
    s->notified_us = wall_us();
    if (s->claiming)
        s->wake_pending = true; /* its job may have committed after the claim in flight looked */
    maybe_claim(s);
}

/* ------------------------------------------------------------------- signals */

static void unregistered(PGresult *res, const char *errmsg, void *arg)
{
    supervisor *s = arg;

    result_ok(res, errmsg, "pool unregister");
    event_base_loopexit(s->base, NULL);
}

/* Exits the loop once a draining pool has no child and nothing left to write. */
static void check_drained(supervisor *s)
{
    const char *params[1];

    if (!s->draining || s->finished || usher_children_count(s->children) > 0 ||
        !usher_outbox_empty(&s->pending) || s->flushes_in_flight > 0)
        return;
    s->finished = true;
    usher_log(USHER_LOG_NOTICE, "pool=%s drained", s->pool_name);
    params[0] = s->worker_id;
    if (usher_pgloop_query(s->pg, "DELETE FROM usher_pools WHERE worker_id = $1", 1, params,
                           unregistered, s) != USHER_OK)
        event_base_loopexit(s->base, NULL);
}

static void grace_over(evutil_socket_t fd, short what, void *arg)
{
    supervisor *s = arg;

    (void)fd;
    (void)what;
    if (usher_children_busy(s->children) > 0) {
        usher_log(USHER_LOG_WARNING, "pool=%s grace period over: killing %zu running job(s)",
                  s->pool_name, usher_children_busy(s->children));
        usher_children_kill_busy(s->children, "returned: worker shut down before it finished");
        return;
    }
    if (!usher_pgloop_connected(s->pg)) {
        /* Nothing more can be written; the leases of what is left will expire. */
        usher_log(USHER_LOG_ERR, "pool=%s database still down at shutdown; exiting", s->pool_name);
        s->exit_status = 1;
        event_base_loopexit(s->base, NULL);
    }
}

static void begin_drain(supervisor *s)
{
    struct timeval tv;

    if (s->draining)
        return;
    s->draining = true;
    sd_notify(0, "STOPPING=1");
    usher_log(USHER_LOG_NOTICE, "pool=%s stopping: %zu job(s) running, grace %d ms", s->pool_name,
              usher_children_busy(s->children), s->pool->shutdown_grace_ms);
    usher_children_set_target(s->children, 0);
    return_ready(s);
    ms_to_tv(s->pool->shutdown_grace_ms, &tv);
    evtimer_add(s->grace_timer, &tv);
    /* Keep the grace timer firing: first to kill, then to give up on a dead database. */
    check_drained(s);
}

/* systemd 253+ pairs the reload with its request by the clock (Type=notify-reload). */
static void notify_reloading(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               (unsigned long long)now.tv_sec * 1000000u + (unsigned long long)now.tv_nsec / 1000u);
}

/* Timers whose period is a reloadable key start a new period when it changed. */
static void rearm(struct event *timer, int old_ms, int new_ms)
{
    struct timeval tv;

    if (old_ms == new_ms)
        return;
    ms_to_tv(new_ms, &tv);
    evtimer_add(timer, &tv);
}

/*
 * The PostgreSQL connections of this pool's process tree at most
 * (engine/conn_budget.h): the supervisor's two (claims, LISTEN and
 * heartbeats; completions), the maintenance process's one, and one per
 * child, opened at its first job that needs the database. A reload's
 * renewal adds, for as long as they finish their jobs, the old children
 * still busy (README: Connection budget).
 */
static usher_err check_budget(const usher_config *cfg, const usher_pool_conf *pool, char *why,
                              size_t whylen)
{
    usher_conn_need need = { 0 };
    char remedy[128], parts[512];

    usher_conn_need_add(&need, 2, "supervisor");
    usher_conn_need_add(&need, 1, "maintenance process");
    usher_conn_need_add(&need, pool->max, "children at [pool.%s] max", pool->name);
    if (usher_config_has_read_url(cfg))
        usher_conn_need_add(&need, pool->max, "their replica connections ([database] read_url)");
    snprintf(remedy, sizeof(remedy), "lower [pool.%s] max or raise the budget", pool->name);
    if (usher_conn_budget_check(cfg, "usher-worker", &need, remedy, why, whylen) != USHER_OK)
        return USHER_ERR_CONFIG;
    usher_conn_need_text(&need, parts, sizeof(parts));
    snprintf(why, whylen, "database connections: at most %d (%s)", usher_conn_need_total(&need),
             parts);
    return USHER_OK;
}

/*
 * SIGHUP: the reloadable keys of the file take effect here, in a new
 * maintenance process and in new children, which replace the old ones as
 * they finish their round or their jobs; the others are logged as needing
 * a restart.
 */
static void reload(supervisor *s)
{
    usher_config merged;
    int poll_ms = s->cfg.poll_interval_ms, heartbeat_ms = s->pool->heartbeat_ms;
    size_t napplied = 0;
    char why[1024];

    notify_reloading();
    bool apply = usher_config_reread(&s->cfg, &merged, &napplied) == USHER_OK && napplied > 0;

    /* A pool's max may grow on a reload: past the budget, nothing changes. */
    if (apply && check_budget(&merged, usher_config_pool(&merged, s->pool_name), why,
                              sizeof(why)) != USHER_OK) {
        usher_log(USHER_LOG_ERR, "pool=%s reload refused, keeping the running configuration: %s",
                  s->pool_name, why);
        apply = false;
    }
    if (apply) {
        usher_config_free(&s->cfg);
        s->cfg = merged; /* the pool and every key a restart needs are as they were */
        s->pool = usher_config_pool(&s->cfg, s->pool_name);
        usher_log_set_level((usher_log_level)s->cfg.log_level);
        usher_gcra_set_rate(s->smtp_limiter, s->pool->smtp_rate);
        rearm(s->poll_timer, poll_ms, s->cfg.poll_interval_ms);
        rearm(s->heartbeat_timer, heartbeat_ms, s->pool->heartbeat_ms);
        usher_maintenance_reload(s->maint, &s->cfg);
        usher_children_renew(s->children);
        resize(s);
        children_idle(s);
        usher_log(USHER_LOG_NOTICE, "pool=%s reload done: %zu key(s) applied, children renewed",
                  s->pool_name, napplied);
    } else {
        usher_config_free(&merged);
    }
    sd_notify(0, "READY=1");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    supervisor *s = arg;

    (void)what;
    if (sig == SIGCHLD) {
        usher_children_reap(s->children);
        check_drained(s);
    } else if (sig == SIGHUP) {
        reload(s);
    } else {
        begin_drain(s);
    }
}

static void other_exited(pid_t pid, int status, void *arg)
{
    supervisor *s = arg;

    usher_maintenance_exited(s->maint, pid, status);
}

static void children_idle(void *arg)
{
    supervisor *s = arg;

    trim_ready(s);
    feed(s);
    maybe_claim(s);
    check_drained(s);
}

/* --------------------------------------------------------------------- setup */

/* The queues this pool serves, copied so a reload cannot change them under the loop. */
static int collect_queues(supervisor *s)
{
    for (size_t i = 0; i < s->cfg.nqueues; i++) {
        if (strcmp(s->cfg.queues[i].pool, s->pool_name) != 0)
            continue;
        if (s->nqueues == QUEUES_MAX)
            return -1;
        snprintf(s->queue_names[s->nqueues], USHER_NAME_MAX, "%s", s->cfg.queues[i].name);
        s->queues[s->nqueues] = s->queue_names[s->nqueues];
        s->nqueues++;
    }
    return s->nqueues > 0 ? 0 : -1;
}

static struct event *timer(supervisor *s, int ms, bool persist, event_callback_fn fn)
{
    struct event *ev = usher_need(event_new(s->base, -1, persist ? EV_PERSIST : 0, fn, s));
    struct timeval tv;

    if (persist) {
        ms_to_tv(ms, &tv);
        event_add(ev, &tv);
    }
    return ev;
}

static void start_timers(supervisor *s)
{
    uint64_t watchdog_usec = 0;

    s->poll_timer = timer(s, s->cfg.poll_interval_ms, true, poll_due);
    s->heartbeat_timer = timer(s, s->pool->heartbeat_ms, true, heartbeat_due);
    s->tick_timer = timer(s, TICK_MS, true, tick_due);
    s->recheck_timer = timer(s, 0, false, recheck_due);
    s->grace_timer = usher_need(event_new(s->base, -1, EV_PERSIST, grace_over, s));
    if (sd_watchdog_enabled(0, &watchdog_usec) > 0)
        s->watchdog_timer = timer(s, (int)(watchdog_usec / 2000), true, watchdog_due);
}

/* The signals, then the timers. */
static int start_events(supervisor *s)
{
    static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };

    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < 4; i++) {
        s->signals[i] = usher_need(evsignal_new(s->base, sigs[i], on_signal, s));
        if (event_add(s->signals[i], NULL) != 0)
            return -1;
    }
    start_timers(s);
    return 0;
}

static int start(supervisor *s)
{
    usher_children_hooks ch = { .finished = job_finished,
                                .idle = children_idle,
                                .exited = other_exited,
                                .returned = children_returned,
                                .arg = s };
    usher_pgloop_hooks pg = { .connected = db_connected,
                              .disconnected = db_disconnected,
                              .notified = db_notified,
                              .arg = s };
    usher_pgloop_hooks pgf = { .connected = flush_connected,
                               .disconnected = db_disconnected,
                               .arg = s };

    if (gethostname(s->host, sizeof(s->host)) != 0)
        snprintf(s->host, sizeof(s->host), "unknown");
    snprintf(s->worker_id, sizeof(s->worker_id), "%s:%d", s->host, (int)getpid());
    usher_handler_set_worker(
        s->worker_id); /* before any fork: children complete in their commits */
    s->base = event_base_new();
    s->desired = s->pool->initial;
    s->recheck_ms = 2 * s->cfg.notify_debounce_ms + 1;
    s->prefetch = (size_t)s->pool->prefetch;
    if (s->base == NULL || start_events(s) != 0 || usher_autoscale_new(&s->autoscale) != USHER_OK ||
        usher_gcra_shared_new(s->pool->smtp_rate, &s->smtp_limiter) != USHER_OK ||
        usher_children_new(s->base, &s->cfg, (size_t)s->pool->child_queue, &ch, &s->children) !=
            USHER_OK) {
        usher_log(USHER_LOG_ERR, "cannot set up the event loop");
        return -1;
    }
    s->adaptive = s->pool->adaptive;
    if (s->adaptive)
        usher_children_adapt(s->children, s->prefetch);
    /* Children first: they fork before any connection exists (and inherit the limiter). */
    usher_handler_set_smtp_limiter(s->smtp_limiter);
    usher_children_set_target(s->children, desired_size(s));
    if (usher_maintenance_start(s->base, &s->cfg, MAINT_INTERVAL_MS, &s->maint) != USHER_OK ||
        usher_pgloop_new(s->base, s->cfg.database_url, &pg, &s->pg) != USHER_OK ||
        usher_pgloop_new(s->base, s->cfg.database_url, &pgf, &s->pg_flush) != USHER_OK) {
        usher_log(USHER_LOG_ERR, "cannot start the database connection or maintenance");
        return -1;
    }
    /* After the first children: they should not hold the metrics socket. */
    char why[256];

    s->metrics = usher_pool_metrics_new(s->base, s->pool_name, s->cfg.worker_metrics_address,
                                        s->pool->metrics_port, why, sizeof(why));
    if (s->metrics == NULL) {
        usher_log(USHER_LOG_ERR, "pool=%s %s", s->pool_name, why);
        return -1;
    }
    return 0;
}

static void stop(supervisor *s)
{
    /*
     * Freeing the children reports their jobs and freeing the connections
     * fails their pending statements, both through callbacks: finished
     * keeps those callbacks from looking at the pool again.
     */
    s->finished = true;
    usher_children_free(s->children); /* reports lost jobs into pending: dropped below */
    usher_pgloop_free(s->pg);
    usher_pgloop_free(s->pg_flush);
    usher_maintenance_stop(s->maint);
    usher_autoscale_free(s->autoscale);
    usher_handler_set_smtp_limiter(NULL);
    usher_gcra_shared_free(s->smtp_limiter);
    usher_outbox_release(&s->pending);
    usher_outbox_release(&s->inflight);
    for (size_t i = s->ready_first; i < s->ready_end; i++) {
        free(s->ready[i]->payload);
        free(s->ready[i]);
    }
    free(s->ready);
    usher_pool_metrics_free(s->metrics); /* after the children's last reports */
    for (size_t i = 0; i < 4; i++) {
        if (s->signals[i] != NULL)
            event_free(s->signals[i]);
    }
    struct event *timers[] = { s->poll_timer,     s->heartbeat_timer, s->tick_timer,
                               s->watchdog_timer, s->recheck_timer,   s->grace_timer };
    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
        if (timers[i] != NULL)
            event_free(timers[i]);
    }
    if (s->base != NULL)
        event_base_free(s->base);
    usher_config_free(&s->cfg);
}

int usher_supervisor_run(const char *config_path, const char *pool_name)
{
    supervisor s = { .config_path = config_path, .granted = -1 };
    char errbuf[512];

    if (usher_config_load(&s.cfg, config_path, errbuf, sizeof(errbuf)) != USHER_OK) {
        fprintf(stderr, "usher-worker: %s\n", errbuf);
        return 1;
    }
    usher_log_set_level((usher_log_level)s.cfg.log_level);
    /* Before any fork or thread: the index.document children inherit it. */
    if (usher_index_keep_changesets(s.cfg.search_changesets, errbuf, sizeof(errbuf)) != USHER_OK) {
        fprintf(stderr, "usher-worker: %s\n", errbuf);
        usher_config_free(&s.cfg);
        return 1;
    }
    snprintf(s.pool_name, sizeof(s.pool_name), "%s", pool_name);
    s.pool = usher_config_pool(&s.cfg, pool_name);
    if (s.pool == NULL || collect_queues(&s) != 0) {
        fprintf(stderr, "usher-worker: pool '%s' is not declared in %s or serves no queue\n",
                pool_name, config_path);
        usher_config_free(&s.cfg);
        return 1;
    }
    if (check_budget(&s.cfg, s.pool, errbuf, sizeof(errbuf)) != USHER_OK) {
        fprintf(stderr, "usher-worker: pool=%s %s\n", pool_name, errbuf);
        usher_config_free(&s.cfg);
        return 1;
    }
    usher_log(USHER_LOG_INFO, "pool=%s %s", pool_name, errbuf);
    if (start(&s) == 0)
        event_base_dispatch(s.base);
    else
        s.exit_status = 1;
    stop(&s);
    return s.exit_status;
}
