/*
 * usher-worker forks while its maintenance is busy. Jobs of the kind
 * test.crash kill their own child (SIGKILL) 300 times, spread over 20
 * seconds, and the supervisor forks a new child for each; meanwhile its
 * maintenance process rescues 4,000 expired leases in waves and looks at
 * two dozen periodic jobs every round. Every fork must come from a
 * supervisor with a single thread (it logs "fork: threads=1" before each),
 * no new child may hang (it would hold its job until the timeout, and the
 * log would say "lost: timeout"), the children alive at the end must each
 * take a job, and every other job must run and complete exactly once. A
 * second test kills the maintenance process and sees another take over.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "enqueue.h"
#include "testdb.h"
#include "testproc.h"

/* The suite's config (a pool of 8, debug logs, 24 periodics) is this binary's default. */
__attribute__((constructor)) static void use_forks_config(void)
{
    setenv("USHER_CONFIG", FORKS_TEST_CONF, 1);
}

TESTDB_SUITE(forks, "usher_test_forks");

#define POOL_SIZE        8 /* [pool.forks] min = max = initial */
#define CRASHES          300
#define WORK_JOBS        1200
#define SPREAD_US        (20 * 1000000LL) /* crashes and work run over this long */
#define EXPIRED_WAVES    4
#define EXPIRED_PER_WAVE 1000
#define RESCUED_TOTAL    (EXPIRED_WAVES * EXPIRED_PER_WAVE)
#define RUNS_MAX         (WORK_JOBS + RESCUED_TOTAL + 64)
#define GHOST            "vanished-host:1"
#define PERIODICS        24 /* [periodic.every-minute-01..24] */
#define STR2(x)          #x
#define STR(x)           STR2(x)

typedef struct run_log {
    char path[128];
    long long ids[RUNS_MAX];
    int attempts[RUNS_MAX];
    size_t n;
} run_log;

static run_log runs, hangs;
static pid_t worker;
static char workdir[64], worker_log[128];

static void kill_leftover(void)
{
    if (worker > 0)
        testproc_kill(worker);
}

static void new_run_log(run_log *log, const char *what)
{
    snprintf(log->path, sizeof(log->path), "/tmp/usher-test-forks-%s-%d.log", what, (int)getpid());
    unlink(log->path);
    log->n = 0;
}

static void read_run_log(run_log *log)
{
    FILE *f = fopen(log->path, "r");
    long long started_us;

    log->n = 0;
    if (f == NULL)
        return;
    while (log->n < RUNS_MAX &&
           fscanf(f, "%lld %d %lld", &log->ids[log->n], &log->attempts[log->n], &started_us) == 3)
        log->n++;
    fclose(f);
}

static int compare_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;

    return x < y ? -1 : x > y;
}

static void assert_no_double_runs(const run_log *log)
{
    long long *sorted = malloc(log->n * sizeof(*sorted) + 1);

    cr_assert_not_null(sorted);
    memcpy(sorted, log->ids, log->n * sizeof(*sorted));
    qsort(sorted, log->n, sizeof(*sorted), compare_ll);
    for (size_t i = 1; i < log->n; i++)
        cr_assert_neq(sorted[i], sorted[i - 1], "job %lld ran twice", sorted[i]);
    free(sorted);
}

static size_t runs_at_attempt(const run_log *log, int attempt)
{
    size_t n = 0;

    for (size_t i = 0; i < log->n; i++)
        n += log->attempts[i] == attempt;
    return n;
}

static long long wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* n jobs into "work", the i-th to run at from_us + i * spread_us / n (0: now). */
static void enqueue_spread(const char *kind, const char *payload, size_t n, int max_attempts,
                           int timeout_ms, long long from_us, long long spread_us)
{
    usher_enqueue_opts *jobs = calloc(n, sizeof(*jobs));
    usher_enqueued *out = calloc(n, sizeof(*out));

    cr_assert(jobs != NULL && out != NULL);
    for (size_t i = 0; i < n; i++)
        jobs[i] = (usher_enqueue_opts){
            .queue = "work",
            .kind = kind,
            .payload = payload,
            .max_attempts = max_attempts,
            .timeout_ms = timeout_ms,
            .run_at_us = from_us > 0 ? from_us + (long long)i * spread_us / (long long)n : 0
        };
    for (size_t i = 0; i < n; i += 1000)
        cr_assert_eq(usher_enqueue_batch(st, jobs + i, n - i < 1000 ? n - i : 1000, out + i),
                     USHER_OK, "%s", usher_store_errstr(st));
    free(jobs);
    free(out);
}

static void log_payload(const run_log *log, char *payload, size_t len)
{
    snprintf(payload, len, "{\"log\":\"%s\"}", log->path);
}

/*
 * n jobs held by a worker that vanished: claimed (attempt 1) with a lease
 * that ran out a second ago. Enqueued an hour ahead first, so the pool
 * cannot claim them before they are made so.
 */
static void add_expired_leases(size_t n)
{
    char payload[256];

    log_payload(&runs, payload, sizeof(payload));
    enqueue_spread("test.noop", payload, n, 3, 10000, wall_us() + 3600 * 1000000LL, 0);
    testdb_exec(st, "UPDATE usher_jobs SET state = 'running', attempt = attempt + 1,"
                    " locked_by = '" GHOST "', attempted_at = now(),"
                    " locked_until = now() - interval '1 second', run_at = now()"
                    " WHERE queue = 'work' AND state = 'available'"
                    " AND run_at > now() + interval '30 minutes'");
}

/*
 * Moves every periodic's record an hour back, unfired, so that the next
 * round fires each one (its transaction, its enqueue: the job of the
 * current slot, or the one already there).
 */
static void rewind_periodics(void)
{
    testdb_exec(st,
                "INSERT INTO usher_periodic (name, last_slot)"
                " SELECT 'every-minute-' || lpad(i::text, 2, '0'), now() - interval '1 hour'"
                " FROM generate_series(1, " STR(
                    PERIODICS) ") i"
                               " ON CONFLICT (name) DO UPDATE SET last_slot = EXCLUDED.last_slot,"
                               " fired_job = NULL");
}

static bool periodics_fired(void *arg)
{
    (void)arg;
    return testdb_scalar(st, "SELECT count(*) FROM usher_periodic WHERE fired_job IS NOT NULL"
                             " AND last_slot > now() - interval '30 minutes'") == PERIODICS;
}

static bool leases_rescued(void *arg)
{
    (void)arg;
    return testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'running'"
                             " AND locked_by = '" GHOST "'") == 0;
}

static bool crashes_dead(void *arg)
{
    (void)arg;
    return testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'test.crash'"
                             " AND state = 'dead'") == CRASHES;
}

/* No test.noop job is left in "work": each one completed (completions delete the row). */
static bool work_done(void *arg)
{
    (void)arg;
    return testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE queue = 'work'"
                             " AND kind = 'test.noop'") == 0;
}

static bool hangs_started(void *arg)
{
    read_run_log(&hangs);
    return hangs.n >= *(size_t *)arg;
}

static pid_t start_worker_with(const char *config)
{
    pid_t pid = testproc_start_worker(USHER_WORKER_PATH, config, "forks", cfg.database_url, "forks",
                                      workdir);

    snprintf(worker_log, sizeof(worker_log), "%s/worker.log", workdir);
    atexit(kill_leftover);
    return pid;
}

static pid_t start_worker(void)
{
    return start_worker_with(FORKS_TEST_CONF);
}

/* Lines of the worker's log that contain text. */
static size_t log_lines_with(const char *text)
{
    cr_assert_eq(access(worker_log, R_OK), 0, "%s", worker_log);
    return (size_t)testproc_log_lines(worker_log, text);
}

/* The sum of N over the log's "maintenance: rescued=N" lines. */
static long long rescued_logged(void)
{
    FILE *f = fopen(worker_log, "r");
    char line[2048];
    long long total = 0;

    cr_assert_not_null(f, "%s", worker_log);
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *at = strstr(line, "maintenance: rescued=");

        if (at != NULL)
            total += strtoll(at + strlen("maintenance: rescued="), NULL, 10);
    }
    fclose(f);
    return total;
}

static void assert_clean_log(void)
{
    cr_assert_eq(log_lines_with("Sanitizer") + log_lines_with("runtime error"), 0,
                 "a sanitizer report in %s", worker_log);
    cr_assert_eq(log_lines_with("fork: forking with"), 0, "a fork with threads (%s)", worker_log);
}

/* The children alive now each take a job: POOL_SIZE jobs that never end all start. */
static void assert_every_child_takes_work(void)
{
    size_t want = POOL_SIZE;
    pid_t kids[64];
    char payload[256];

    log_payload(&hangs, payload, sizeof(payload));
    enqueue_spread("test.hang", payload, POOL_SIZE, 1, 600000, 0, 0);
    cr_assert(testproc_wait_for(hangs_started, &want, 120000),
              "%zu of %d children took a job (log %s)", hangs.n, POOL_SIZE, worker_log);
    assert_no_double_runs(&hangs);
    cr_assert_eq(testproc_pool_children(worker, kids, 64), POOL_SIZE);
}

Test(forks, hundreds_of_forks_while_maintenance_is_busy_lose_no_child_and_no_job, .timeout = 900)
{
    long long from_us = wall_us() + 2000000;
    char payload[256];

    new_run_log(&runs, "runs");
    new_run_log(&hangs, "hangs");
    log_payload(&runs, payload, sizeof(payload));
    add_expired_leases(EXPIRED_PER_WAVE);
    rewind_periodics();
    enqueue_spread("test.crash", "{\"signal\":9}", CRASHES, 1, 10000, from_us, SPREAD_US);
    enqueue_spread("test.noop", payload, WORK_JOBS, 3, 10000, from_us, SPREAD_US);
    worker = start_worker();
    for (int wave = 1; wave < EXPIRED_WAVES; wave++) {
        cr_assert(testproc_wait_for(leases_rescued, NULL, 120000), "wave %d never rescued (%s)",
                  wave, worker_log);
        add_expired_leases(EXPIRED_PER_WAVE);
        rewind_periodics();
    }
    cr_assert(testproc_wait_for(crashes_dead, NULL, 300000), "crash jobs left (log %s)",
              worker_log);
    cr_assert(testproc_wait_for(work_done, NULL, 300000), "work left (log %s)", worker_log);
    cr_assert(testproc_wait_for(periodics_fired, NULL, 120000), "periodics not fired (%s)",
              worker_log);
    assert_every_child_takes_work();
    testproc_stop_cleanly(worker);
    worker = 0;

    /* Each crash killed a child and a fork replaced it, from a single thread, and none hung. */
    cr_assert_eq(log_lines_with("lost: worker crashed: signal 9"), CRASHES, "log %s", worker_log);
    cr_assert_geq(log_lines_with("fork: threads=1"), POOL_SIZE + CRASHES + 1, "log %s", worker_log);
    cr_assert_eq(log_lines_with("lost: timeout"), 0, "a child hung (log %s)", worker_log);
    assert_clean_log();
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'test.crash'"
                                   " AND state = 'dead' AND attempt = 1"
                                   " AND errors->0->>'error' LIKE 'worker crashed: signal 9%'"),
                 CRASHES);

    /* Every other job ran once: the plain ones at attempt 1, the rescued ones at attempt 2. */
    read_run_log(&runs);
    cr_assert_eq(runs.n, WORK_JOBS + RESCUED_TOTAL, "%zu runs logged", runs.n);
    assert_no_double_runs(&runs);
    cr_assert_eq(runs_at_attempt(&runs, 1), WORK_JOBS);
    cr_assert_eq(runs_at_attempt(&runs, 2), RESCUED_TOTAL);
    cr_assert_eq(rescued_logged(), RESCUED_TOTAL, "log %s", worker_log);
    cr_assert_eq(testdb_scalar(st, "SELECT coalesce(sum(completed), 0) FROM usher_queue_stats"
                                   " WHERE queue = 'work'"),
                 WORK_JOBS + RESCUED_TOTAL);
    cr_assert_eq(testdb_scalar(st, "SELECT coalesce(sum(failed), 0) FROM usher_queue_stats"
                                   " WHERE queue = 'work'"),
                 CRASHES + RESCUED_TOTAL);
    /* Each periodic's job of the current slot, one per slot whatever the rewinds. */
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE queue = 'parked'"),
                 testdb_scalar(st, "SELECT count(DISTINCT unique_key) FROM usher_jobs"
                                   " WHERE queue = 'parked'"));
    cr_assert_geq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE queue = 'parked'"),
                  PERIODICS);
    unlink(runs.path);
    unlink(hangs.path);
}

static bool leading(void *arg)
{
    (void)arg;
    return testdb_scalar(st, "SELECT count(*) FROM usher_pools WHERE leader") == 1;
}

/* A maintenance process other than *(pid_t *)arg runs (the killed one is reaped). */
static bool replaced(void *arg)
{
    pid_t now = testproc_maintenance(worker);

    return now > 0 && now != *(pid_t *)arg;
}

Test(forks, a_killed_maintenance_process_is_replaced_and_leads_again, .timeout = 300)
{
    pid_t first;
    char killed[96];

    new_run_log(&runs, "runs");
    worker = start_worker();
    cr_assert(testproc_wait_for(leading, NULL, 60000), "never the leader (log %s)", worker_log);
    first = testproc_maintenance(worker);
    cr_assert_gt(first, 0, "no maintenance process");
    cr_assert_eq(kill(first, SIGKILL), 0);
    cr_assert(testproc_wait_for(replaced, &first, 60000), "not replaced (log %s)", worker_log);
    add_expired_leases(100);
    cr_assert(testproc_wait_for(work_done, NULL, 120000), "not rescued (log %s)", worker_log);
    cr_assert(testproc_wait_for(leading, NULL, 60000), "not the leader again (%s)", worker_log);
    testproc_stop_cleanly(worker);
    worker = 0;

    read_run_log(&runs);
    cr_assert_eq(runs.n, 100);
    assert_no_double_runs(&runs);
    cr_assert_eq(runs_at_attempt(&runs, 2), 100);
    snprintf(killed, sizeof(killed), "maintenance: process=%d killed by signal 9", (int)first);
    cr_assert_eq(log_lines_with(killed), 1, "log %s", worker_log);
    assert_clean_log();
    unlink(runs.path);
}

/* Copies the suite's config to path with [log] level = level. */
static void write_config(const char *path, const char *level)
{
    FILE *in = fopen(FORKS_TEST_CONF, "r"), *out = fopen(path, "w");
    char line[256];
    int replaced = 0;

    cr_assert(in != NULL && out != NULL);
    while (fgets(line, sizeof(line), in) != NULL) {
        if (strcmp(line, "level = debug\n") == 0 && ++replaced)
            fprintf(out, "level = %s\n", level);
        else
            fputs(line, out);
    }
    fclose(in);
    cr_assert_eq(fclose(out), 0);
    cr_assert_eq(replaced, 1, "%s has no 'level = debug' line", FORKS_TEST_CONF);
}

static bool reload_done(void *arg)
{
    (void)arg;
    return log_lines_with("reload done") == 1;
}

/* A reload renews the maintenance process, which runs with the new values and leads again. */
Test(forks, a_reload_renews_the_maintenance_process, .timeout = 300)
{
    char path[] = "/tmp/usher-forks-conf-XXXXXX", ended[96];
    int fd = mkstemp(path);
    pid_t first;

    cr_assert_geq(fd, 0);
    close(fd);
    new_run_log(&runs, "runs");
    write_config(path, "debug");
    worker = start_worker_with(path);
    cr_assert(testproc_wait_for(leading, NULL, 60000), "never the leader (log %s)", worker_log);
    first = testproc_maintenance(worker);
    cr_assert_gt(first, 0, "no maintenance process");
    write_config(path, "info");
    cr_assert_eq(kill(worker, SIGHUP), 0);
    cr_assert(testproc_wait_for(reload_done, NULL, 60000), "no reload (log %s)", worker_log);
    cr_assert(testproc_wait_for(replaced, &first, 60000), "not renewed (log %s)", worker_log);
    add_expired_leases(10);
    cr_assert(testproc_wait_for(work_done, NULL, 120000), "not rescued (log %s)", worker_log);
    testproc_stop_cleanly(worker);
    worker = 0;

    snprintf(ended, sizeof(ended), "maintenance: process=%d ended for the reload", (int)first);
    cr_assert_eq(log_lines_with(ended), 1, "log %s", worker_log);
    cr_assert_eq(log_lines_with("killed by signal"), 0, "log %s", worker_log);
    read_run_log(&runs);
    cr_assert_eq(runs.n, 10);
    assert_clean_log();
    unlink(runs.path);
    unlink(path);
}
