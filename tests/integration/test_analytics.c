/*
 * The batch handlers: analytics.rollup through a real usher-worker whose
 * children hold 64 jobs each (every enqueued count ends up in
 * analytics_minute exactly once; bad jobs die alone), the fold statement
 * called directly (a batch run twice folds once; an unknown event in a
 * batch fails only its job; expired fold records are pruned), and
 * index.document committing a batch of documents to a real Xapian index.
 */
#define _GNU_SOURCE /* vasprintf */
#include <criterion/criterion.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "enqueue.h"
#include "handler.h"
#include "job_handlers.h"
#include "seed.h"
#include "testdb.h"
#include "testproc.h"
#include "xapian_wrap.h"

__attribute__((constructor)) static void use_analytics_config(void)
{
    setenv("USHER_CONFIG", ANALYTICS_TEST_CONF, 1);
}

TESTDB_SUITE(analytics, "usher_test_analytics");

#define EVENTS      3
#define METRICS     3
#define MINUTES     5
#define JOBS        3000
#define ENQUEUE_MAX 500 /* jobs per usher_enqueue_batch */

static const char *const metric_names[METRICS] = { "registration", "checkin", "session_access" };
static char workdir[64];

/* ---------------------------------------------------------------- helpers */

static void fresh_tables(void)
{
    testdb_exec(st, "TRUNCATE analytics_minute, analytics_folded");
}

/* Seeds one demo event per slot of ids (with its sessions and one attendee). */
static void seed_events(int64_t *ids, size_t n)
{
    usher_seed_result seed;

    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(usher_seed_demo(st, 1, &seed), USHER_OK, "%s", usher_store_errstr(st));
        ids[i] = seed.event_id;
    }
}

static void make_workdir(void)
{
    snprintf(workdir, sizeof(workdir), "/tmp/usher-analytics-XXXXXX");
    cr_assert_not_null(mkdtemp(workdir));
}

static pid_t start_worker(void)
{
    const char *argv[] = { USHER_WORKER_PATH, "--config", ANALYTICS_TEST_CONF,
                           "--pool",          "batch",    NULL };
    char log[128], search[128];
    pid_t pid;

    make_workdir();
    snprintf(log, sizeof(log), "%s/worker.log", workdir);
    snprintf(search, sizeof(search), "%s/search", workdir);
    cr_assert_eq(setenv("USHER_SEARCH_DIR", search, 1), 0);
    cr_assert_eq(setenv("USHER_DATABASE_URL", cfg.database_url, 1), 0);
    pid = testproc_start(argv, log);
    cr_assert_gt(pid, 0);
    return pid;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Stops the worker; its directory (and log) is removed when it exited well. */
static void stop_worker(pid_t pid)
{
    int status;

    kill(pid, SIGTERM);
    cr_assert(testproc_wait(pid, 60000, &status), "usher-worker did not stop");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "usher-worker exit %d (see %s)",
              status, workdir);
    nftw(workdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* No job left to run (dead ones do not count: the tests look at them). */
static bool jobs_done(void *arg)
{
    (void)arg;
    return testdb_scalar(st, "SELECT count(*) FROM usher_jobs"
                             " WHERE state IN ('available', 'running')") == 0;
}

/* Enqueues n jobs of kind on queue with the given payloads; ids (may be NULL) gets their ids. */
static void enqueue_all(const char *queue, const char *kind, char **payloads, size_t n,
                        int64_t *ids)
{
    usher_enqueue_opts opts[ENQUEUE_MAX];
    usher_enqueued out[ENQUEUE_MAX];

    for (size_t done = 0; done < n;) {
        size_t k = n - done < ENQUEUE_MAX ? n - done : ENQUEUE_MAX;

        for (size_t i = 0; i < k; i++)
            opts[i] =
                (usher_enqueue_opts){ .queue = queue, .kind = kind, .payload = payloads[done + i] };
        cr_assert_eq(usher_enqueue_batch(st, opts, k, out), USHER_OK, "%s", usher_store_errstr(st));
        for (size_t i = 0; ids != NULL && i < k; i++)
            ids[done + i] = out[i].id;
        done += k;
    }
}

static void free_all(char **texts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
}

static char *text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *text(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    cr_assert_geq(n, 0);
    return s;
}

/* The counter of (event, metric, minute), or 0 when there is no row. */
static long long counter(int64_t event, const char *metric, const char *minute)
{
    char sql[256];

    snprintf(sql, sizeof(sql),
             "SELECT coalesce(sum(count), 0) FROM analytics_minute WHERE event_id = %lld"
             " AND metric = '%s' AND minute = '%s'",
             (long long)event, metric, minute);
    return testdb_scalar(st, sql);
}

/* The error of job id's last attempt, into buf. */
static void last_error(int64_t id, char *buf, size_t len)
{
    char sql[128];
    PGresult *res;

    snprintf(sql, sizeof(sql), "SELECT errors->-1->>'error' FROM usher_jobs WHERE id = %lld",
             (long long)id);
    cr_assert_eq(usher_store_exec(st, sql, 0, NULL, &res), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_eq(PQntuples(res), 1, "job %lld is gone", (long long)id);
    snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
}

static long long job_state_count(int64_t id, const char *state)
{
    char sql[160];

    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs WHERE id = %lld AND state = '%s' AND attempt = 1",
             (long long)id, state);
    return testdb_scalar(st, sql);
}

/* ---------------------------------------------------------------- through the worker */

Test(analytics, every_enqueued_count_is_folded_exactly_once, .timeout = 300)
{
    static long long expected[EVENTS][METRICS][MINUTES];
    static char *payloads[JOBS];
    int64_t events[EVENTS];
    long long total = 0;
    pid_t pid;

    fresh_tables();
    seed_events(events, EVENTS);
    for (int i = 0; i < JOBS; i++) {
        int e = i % EVENTS, m = (i / EVENTS) % METRICS, minute = (i / 9) % MINUTES;
        long long count = i % 7 == 0 ? 1 : 1 + i % 4;
        char at[64], fields[160];

        /* The same UTC minute written in UTC and at +02:00, with seconds and fractions. */
        if (i % 2 == 0)
            snprintf(at, sizeof(at), "2026-05-04T09:0%d:%02dZ", minute, i % 60);
        else
            snprintf(at, sizeof(at), "2026-05-04T11:0%d:%02d.%03d+02:00", minute, i % 60, i % 1000);
        snprintf(fields, sizeof(fields), "\"at\":\"%s\"%s", at,
                 i % 7 == 0   ? ""
                 : i % 4 == 0 ? ",\"count\":1"
                              : "");
        if (i % 7 != 0 && i % 4 != 0)
            snprintf(fields + strlen(fields), sizeof(fields) - strlen(fields), ",\"count\":%lld",
                     count);
        payloads[i] = text("{\"event_id\":%lld,\"metric\":\"%s\",%s}", (long long)events[e],
                           metric_names[m], fields);
        expected[e][m][minute] += count;
        total += count;
    }
    enqueue_all("analytics", "analytics.rollup", payloads, JOBS, NULL);
    free_all(payloads, JOBS);
    pid = start_worker();
    cr_assert(testproc_wait_for(jobs_done, NULL, 120000), "the roll-ups did not finish (see %s)",
              workdir);
    stop_worker(pid);

    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 0, "jobs failed");
    for (int e = 0; e < EVENTS; e++) {
        for (int m = 0; m < METRICS; m++) {
            for (int minute = 0; minute < MINUTES; minute++) {
                char at[32];

                snprintf(at, sizeof(at), "2026-05-04 09:0%d:00Z", minute);
                cr_assert_eq(counter(events[e], metric_names[m], at), expected[e][m][minute],
                             "event %d %s at %s", e, metric_names[m], at);
            }
        }
    }
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM analytics_minute"),
                 EVENTS * METRICS * MINUTES);
    cr_assert_eq(testdb_scalar(st, "SELECT sum(count) FROM analytics_minute"), total);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM analytics_folded"), JOBS);
    /* One statement per batch: jobs folded together share its transaction's now(). */
    cr_assert_gt(testdb_scalar(st, "SELECT max(n) FROM (SELECT count(*) AS n FROM"
                                   " analytics_folded GROUP BY folded_at) AS batches"),
                 1, "no batch folded more than one job");
}

Test(analytics, a_job_without_a_time_counts_in_the_minute_it_runs, .timeout = 300)
{
    char *payloads[50];
    int64_t event;
    long long before;
    pid_t pid;

    fresh_tables();
    seed_events(&event, 1);
    for (size_t i = 0; i < 50; i++)
        payloads[i] = text("{\"event_id\":%lld,\"metric\":\"checkin\"}", (long long)event);
    before = testdb_scalar(st, "SELECT extract(epoch FROM date_trunc('minute', now()))::int8");
    enqueue_all("analytics", "analytics.rollup", payloads, 50, NULL);
    free_all(payloads, 50);
    pid = start_worker();
    cr_assert(testproc_wait_for(jobs_done, NULL, 120000), "the roll-ups did not finish");
    stop_worker(pid);
    cr_assert_eq(testdb_scalar(st, "SELECT sum(count) FROM analytics_minute"
                                   " WHERE metric = 'checkin'"),
                 50);
    cr_assert_geq(testdb_scalar(st, "SELECT extract(epoch FROM min(minute))::int8"
                                    " FROM analytics_minute"),
                  before, "counted before the jobs were enqueued");
    cr_assert_leq(testdb_scalar(st, "SELECT extract(epoch FROM max(minute))::int8"
                                    " FROM analytics_minute"),
                  testdb_scalar(st, "SELECT extract(epoch FROM now())::int8"),
                  "counted in the future");
}

Test(analytics, bad_jobs_go_dead_with_a_reason_and_the_rest_fold, .timeout = 300)
{
    enum { GOOD = 300 };
    static const struct {
        size_t at;
        long long event; /* 0: the seeded event, -1: none */
        const char *rest;
        const char *reason;
    } bad[] = {
        { 50, 0, "\"metric\":\"pageview\"", "payload.metric: must be one of" },
        { 150, 999999999, "\"metric\":\"checkin\"", "event 999999999 does not exist" },
        { 200, 0, "\"metric\":\"checkin\",\"count\":0", "payload.count: 0 is below minimum 1" },
        { 250, 0, "\"metric\":\"checkin\",\"at\":\"yesterday\"",
          "payload.at must be an RFC 3339 timestamp" },
        { 260, -1, "\"metric\":\"checkin\"", "payload: missing required property \"event_id\"" },
    };
    enum { BAD = sizeof(bad) / sizeof(bad[0]) };
    char *payloads[GOOD + BAD];
    int64_t ids[GOOD + BAD], event;
    size_t next_bad = 0;
    pid_t pid;

    fresh_tables();
    seed_events(&event, 1);
    for (size_t i = 0, good = 0; i < GOOD + BAD; i++) {
        if (next_bad < BAD && i == bad[next_bad].at) {
            long long e = bad[next_bad].event;

            payloads[i] = e < 0 ? text("{%s}", bad[next_bad].rest)
                                : text("{\"event_id\":%lld,%s}", e == 0 ? (long long)event : e,
                                       bad[next_bad].rest);
            next_bad++;
            continue;
        }
        payloads[i] = text("{\"event_id\":%lld,\"metric\":\"checkin\","
                           "\"at\":\"2026-05-04T09:30:00Z\"}",
                           (long long)event);
        good++;
    }
    enqueue_all("analytics", "analytics.rollup", payloads, GOOD + BAD, ids);
    free_all(payloads, GOOD + BAD);
    pid = start_worker();
    cr_assert(testproc_wait_for(jobs_done, NULL, 120000), "the roll-ups did not finish");
    stop_worker(pid);

    cr_assert_eq(counter(event, "checkin", "2026-05-04 09:30:00Z"), GOOD);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM analytics_folded"), GOOD);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'dead'"), BAD);
    for (size_t b = 0; b < BAD; b++) {
        char error[512];

        cr_assert_eq(job_state_count(ids[bad[b].at], "dead"), 1,
                     "job %zu is not dead after one attempt", bad[b].at);
        last_error(ids[bad[b].at], error, sizeof(error));
        cr_assert(strstr(error, bad[b].reason) != NULL, "job %zu died of '%s', not '%s'", bad[b].at,
                  error, bad[b].reason);
    }
}

/* ---------------------------------------------------------------- the batch function itself */

/* Runs analytics.rollup on n jobs (ids from first_id) with the given payloads. */
static void fold_directly(usher_handler_ctx *ctx, int64_t first_id, char **texts, size_t n,
                          usher_handler_result *results)
{
    usher_job jobs[16];
    json_t *payloads[16];

    cr_assert_leq(n, 16);
    for (size_t i = 0; i < n; i++) {
        jobs[i] = (usher_job){ .id = first_id + (int64_t)i, .attempt = 1, .payload = texts[i] };
        snprintf(jobs[i].kind, sizeof(jobs[i].kind), "analytics.rollup");
        payloads[i] = json_loads(texts[i], 0, NULL);
        cr_assert_not_null(payloads[i]);
        results[i] = (usher_handler_result){ .outcome = USHER_OUTCOME_OK, .delay_ms = -1 };
    }
    usher_batch_analytics_rollup(ctx, jobs, payloads, n, results);
    for (size_t i = 0; i < n; i++)
        json_decref(payloads[i]);
}

Test(analytics, a_batch_run_twice_folds_once)
{
    usher_handler_ctx *ctx = usher_handler_ctx_new(&cfg);
    usher_handler_result results[12];
    char *texts[12];
    int64_t event;

    cr_assert_not_null(ctx);
    fresh_tables();
    seed_events(&event, 1);
    for (size_t i = 0; i < 12; i++)
        texts[i] = text("{\"event_id\":%lld,\"metric\":\"registration\",\"count\":%zu,"
                        "\"at\":\"2026-05-04T10:00:00Z\"}",
                        (long long)event, i + 1);
    fold_directly(ctx, 800001, texts, 10, results);
    for (size_t i = 0; i < 10; i++)
        cr_assert_eq(results[i].outcome, USHER_OUTCOME_OK, "job %zu: %s", i, results[i].error);
    cr_assert_eq(counter(event, "registration", "2026-05-04 10:00:00Z"), 55);

    /* The child died before reporting: the rescued jobs run again, and add nothing. */
    fold_directly(ctx, 800001, texts, 10, results);
    for (size_t i = 0; i < 10; i++)
        cr_assert_eq(results[i].outcome, USHER_OUTCOME_OK, "job %zu: %s", i, results[i].error);
    cr_assert_eq(counter(event, "registration", "2026-05-04 10:00:00Z"), 55);

    /* Overlapping batches: only the two new jobs (counts 11 and 12) count. */
    fold_directly(ctx, 800001, texts, 12, results);
    cr_assert_eq(counter(event, "registration", "2026-05-04 10:00:00Z"), 55 + 11 + 12);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM analytics_folded"), 12);
    free_all(texts, 12);
    usher_handler_ctx_free(ctx);
}

Test(analytics, an_unknown_event_fails_alone_in_its_batch)
{
    usher_handler_ctx *ctx = usher_handler_ctx_new(&cfg);
    usher_handler_result results[6];
    char *texts[6];
    int64_t event;

    cr_assert_not_null(ctx);
    fresh_tables();
    seed_events(&event, 1);
    for (size_t i = 0; i < 6; i++)
        texts[i] = text("{\"event_id\":%lld,\"metric\":\"session_access\","
                        "\"at\":\"2026-05-04T10:00:00Z\"}",
                        i == 3 ? 999999999LL : (long long)event);
    fold_directly(ctx, 810001, texts, 6, results);
    for (size_t i = 0; i < 6; i++) {
        if (i == 3) {
            cr_assert_eq(results[i].outcome, USHER_OUTCOME_PERMANENT);
            cr_assert(strstr(results[i].error, "event 999999999 does not exist") != NULL, "%s",
                      results[i].error);
        } else {
            cr_assert_eq(results[i].outcome, USHER_OUTCOME_OK, "job %zu: %s", i, results[i].error);
        }
    }
    cr_assert_eq(counter(event, "session_access", "2026-05-04 10:00:00Z"), 5);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM analytics_folded"), 5);
    free_all(texts, 6);
    usher_handler_ctx_free(ctx);
}

Test(analytics, expired_fold_records_are_pruned_by_later_folds)
{
    usher_handler_ctx *ctx = usher_handler_ctx_new(&cfg);
    usher_handler_result result;
    char *payload;
    int64_t event;

    cr_assert_not_null(ctx);
    fresh_tables();
    seed_events(&event, 1);
    testdb_exec(st, "INSERT INTO analytics_folded (job_id, folded_at)"
                    " SELECT g, now() - interval '8 days' FROM generate_series(1, 300) AS g");
    testdb_exec(st, "INSERT INTO analytics_folded (job_id, folded_at)"
                    " VALUES (301, now() - interval '6 days')");
    payload = text("{\"event_id\":%lld,\"metric\":\"checkin\"}", (long long)event);
    fold_directly(ctx, 820001, &payload, 1, &result);
    cr_assert_eq(result.outcome, USHER_OUTCOME_OK, "%s", result.error);
    /* At most 256 a statement: the next fold takes the rest. */
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM analytics_folded"
                                   " WHERE folded_at < now() - interval '7 days'"),
                 300 - 256);
    fold_directly(ctx, 820002, &payload, 1, &result);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM analytics_folded"
                                   " WHERE folded_at < now() - interval '7 days'"),
                 0);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM analytics_folded WHERE job_id = 301"), 1,
                 "a record younger than 7 days was pruned");
    free(payload);
    usher_handler_ctx_free(ctx);
}
