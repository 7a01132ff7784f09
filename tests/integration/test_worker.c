/*
 * usher-worker as a real process against the test database: every job
 * done exactly once, crashes and hangs of children, a killed supervisor,
 * graceful shutdown, a database that goes away, and two supervisors
 * sharing one queue. Test handlers log every run ("ID ATTEMPT" lines) to
 * a file, which is how double runs would show.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "enqueue.h"
#include "testdb.h"
#include "testproc.h"

/* The suite's config (small timeouts, a test pool) is this binary's default. */
__attribute__((constructor)) static void use_worker_config(void)
{
    setenv("USHER_CONFIG", WORKER_TEST_CONF, 1);
}

TESTDB_SUITE(worker, "usher_test_worker");

#define RUN_LOG_MAX 200000

typedef struct run_log {
    char path[128];
    long long ids[RUN_LOG_MAX];
    int attempts[RUN_LOG_MAX];
    size_t n;
} run_log;

static run_log runs;
static char worker_log[128];

static void new_run_log(void)
{
    snprintf(runs.path, sizeof(runs.path), "/tmp/usher-test-runs-%d.log", (int)getpid());
    snprintf(worker_log, sizeof(worker_log), "/tmp/usher-test-worker-%d.log", (int)getpid());
    unlink(runs.path);
    unlink(worker_log);
    runs.n = 0;
}

static void read_run_log(void)
{
    FILE *f = fopen(runs.path, "r");
    long long started_us;

    runs.n = 0;
    if (f == NULL)
        return;
    while (runs.n < RUN_LOG_MAX &&
           fscanf(f, "%lld %d %lld", &runs.ids[runs.n], &runs.attempts[runs.n], &started_us) == 3)
        runs.n++;
    fclose(f);
}

/* How many times job id ran, per the handlers' log. */
static int times_run(long long id)
{
    int n = 0;

    for (size_t i = 0; i < runs.n; i++)
        n += runs.ids[i] == id;
    return n;
}

static int compare_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;

    return x < y ? -1 : x > y;
}

/* Asserts that no job ran twice (the log has no repeated id). */
static void assert_no_double_runs(void)
{
    long long *sorted = malloc(runs.n * sizeof(*sorted) + 1);

    cr_assert_not_null(sorted);
    memcpy(sorted, runs.ids, runs.n * sizeof(*sorted));
    qsort(sorted, runs.n, sizeof(*sorted), compare_ll);
    for (size_t i = 1; i < runs.n; i++)
        cr_assert_neq(sorted[i], sorted[i - 1], "job %lld ran twice", sorted[i]);
    free(sorted);
}

/* Workers a failed assertion left running are killed when the test process ends. */
static pid_t started[16];
static size_t nstarted;

static void kill_leftovers(void)
{
    for (size_t i = 0; i < nstarted; i++) {
        if (kill(started[i], 0) == 0)
            testproc_kill(started[i]);
    }
}

static pid_t start_pool(const char *config, const char *pool)
{
    const char *argv[] = { USHER_WORKER_PATH, "--config", config, "--pool", pool, NULL };
    pid_t pid;

    cr_assert_eq(setenv("USHER_DATABASE_URL", cfg.database_url, 1), 0);
    pid = testproc_start(argv, worker_log);
    cr_assert_gt(pid, 0);
    if (nstarted == 0)
        atexit(kill_leftovers);
    if (nstarted < sizeof(started) / sizeof(started[0]))
        started[nstarted++] = pid;
    return pid;
}

static pid_t start_worker(void)
{
    return start_pool(WORKER_TEST_CONF, "tests");
}

/* Fails the test if the worker's log shows a sanitizer report (in the ASan build). */
static void assert_no_sanitizer_report(void)
{
    FILE *f = fopen(worker_log, "r");
    char line[512];

    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        cr_assert(strstr(line, "Sanitizer") == NULL && strstr(line, "runtime error") == NULL,
                  "usher-worker: %s(see %s)", line, worker_log);
    }
    fclose(f);
}

/* SIGTERM, then the exit status; fails the test if it does not exit in time. */
static int stop_worker(pid_t pid)
{
    int status;

    kill(pid, SIGTERM);
    if (!testproc_wait(pid, 60000, &status)) {
        testproc_kill(pid);
        cr_assert_fail("usher-worker did not stop within 60 s after SIGTERM (log %s)", worker_log);
    }
    assert_no_sanitizer_report();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void enqueue_into(const char *queue, const char *kind, const char *extra, size_t n,
                         int max_attempts, int timeout_ms)
{
    usher_enqueue_opts *jobs = calloc(n, sizeof(*jobs));
    usher_enqueued *out = calloc(n, sizeof(*out));
    char payload[512];

    cr_assert(jobs != NULL && out != NULL);
    snprintf(payload, sizeof(payload), "{\"log\":\"%s\"%s%s}", runs.path, extra[0] ? "," : "",
             extra);
    for (size_t i = 0; i < n; i++)
        jobs[i] = (usher_enqueue_opts){ .queue = queue,
                                        .kind = kind,
                                        .payload = payload,
                                        .max_attempts = max_attempts,
                                        .timeout_ms = timeout_ms };
    for (size_t i = 0; i < n; i += 1000)
        cr_assert_eq(usher_enqueue_batch(st, jobs + i, n - i < 1000 ? n - i : 1000, out + i),
                     USHER_OK, "%s", usher_store_errstr(st));
    free(jobs);
    free(out);
}

static void enqueue_jobs(const char *kind, const char *extra, size_t n, int max_attempts,
                         int timeout_ms)
{
    enqueue_into("work", kind, extra, n, max_attempts, timeout_ms);
}

static long long jobs_left(void)
{
    return testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state IN"
                             " ('available', 'running')");
}

static bool queue_empty(void *arg)
{
    (void)arg;
    return jobs_left() == 0;
}

static bool some_running(void *arg)
{
    long long want = *(long long *)arg;

    return testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'running'") >= want;
}

static long long completed_total(void)
{
    return testdb_scalar(st, "SELECT coalesce(sum(completed), 0) FROM usher_queue_stats");
}

Test(worker, ten_thousand_noop_jobs_complete_exactly_once, .timeout = 600)
{
    pid_t pid;

    new_run_log();
    enqueue_jobs("test.noop", "", 10000, 3, 10000);
    pid = start_worker();
    cr_assert(testproc_wait_for(queue_empty, NULL, 300000), "%lld jobs left", jobs_left());
    cr_assert_eq(stop_worker(pid), 0);
    read_run_log();
    cr_assert_eq(runs.n, 10000, "%zu runs logged", runs.n);
    assert_no_double_runs();
    cr_assert_eq(completed_total(), 10000);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 0);
}

/* True once the handlers logged at least *arg runs. */
static bool runs_logged(void *arg)
{
    read_run_log();
    return runs.n >= *(size_t *)arg;
}

Test(worker, a_killed_child_costs_one_attempt_and_the_job_completes, .timeout = 300)
{
    size_t one = 1;
    pid_t pid, kids[64];
    size_t n;

    new_run_log();
    enqueue_jobs("test.sleep", "\"ms\":2000", 1, 3, 30000);
    pid = start_worker();
    /* Its handler has begun (claimed alone is not enough: a loaded machine may
     * still hold the job in the supervisor when the children die). */
    cr_assert(testproc_wait_for(runs_logged, &one, 60000), "the job never started");
    n = testproc_pool_children(pid, kids, 64);
    cr_assert_gt(n, 0);
    for (size_t i = 0; i < n; i++)
        kill(kids[i], SIGKILL); /* the busy one among them */
    cr_assert(testproc_wait_for(queue_empty, NULL, 120000), "the job never completed");
    cr_assert_eq(stop_worker(pid), 0);
    read_run_log();
    cr_assert_eq(runs.n, 2, "%zu runs", runs.n);
    cr_assert_eq(runs.attempts[0], 1);
    cr_assert_eq(runs.attempts[1], 2);
    cr_assert_eq(completed_total(), 1);
}

Test(worker, a_crashing_handler_fails_the_attempt_with_the_signal, .timeout = 300)
{
    pid_t pid;

    new_run_log();
    enqueue_jobs("test.crash", "", 1, 2, 30000);
    pid = start_worker();
    cr_assert(testproc_wait_for(queue_empty, NULL, 120000), "the job never died");
    cr_assert_eq(stop_worker(pid), 0);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'dead'"
                                   " AND jsonb_array_length(errors) = 2"
                                   " AND errors->0->>'error' LIKE 'worker crashed: signal 11%'"),
                 1);
}

Test(worker, a_hanging_job_is_killed_at_its_timeout_then_dies_after_max_attempts, .timeout = 300)
{
    pid_t pid;

    new_run_log();
    enqueue_jobs("test.hang", "", 1, 2, 500);
    pid = start_worker();
    cr_assert(testproc_wait_for(queue_empty, NULL, 120000), "the job never died");
    cr_assert_eq(stop_worker(pid), 0);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'dead'"
                                   " AND errors->0->>'error' LIKE 'timeout%'"
                                   " AND errors->1->>'error' LIKE 'timeout%'"),
                 1);
    read_run_log();
    cr_assert_eq(runs.n, 2);
}

Test(worker, sigterm_lets_running_jobs_finish_and_loses_nothing, .timeout = 300)
{
    long long running = 2, ran, available;
    pid_t pid;

    new_run_log();
    enqueue_jobs("test.sleep", "\"ms\":500", 40, 3, 30000);
    pid = start_worker();
    cr_assert(testproc_wait_for(some_running, &running, 60000));
    cr_assert_eq(stop_worker(pid), 0, "see %s", worker_log);
    read_run_log();
    assert_no_double_runs();
    ran = (long long)runs.n;
    available = testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'available'"
                                  " AND attempt = 0");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'running'"), 0);
    cr_assert_eq(completed_total(), ran, "a job that ran was not completed");
    cr_assert_eq(ran + available, 40, "ran %lld + waiting %lld", ran, available);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_pools"), 0,
                 "the supervisor left its row behind");
}

Test(worker, a_killed_supervisor_leaves_leases_that_another_one_rescues, .timeout = 600)
{
    long long running = 2;
    pid_t first, second;

    new_run_log();
    enqueue_jobs("test.sleep", "\"ms\":300", 60, 5, 30000);
    first = start_worker();
    cr_assert(testproc_wait_for(some_running, &running, 60000));
    testproc_kill(first); /* its children die with it (PR_SET_PDEATHSIG) */
    second = start_worker();
    cr_assert(testproc_wait_for(queue_empty, NULL, 300000), "%lld jobs left", jobs_left());
    cr_assert_eq(stop_worker(second), 0);
    read_run_log();
    cr_assert_eq(completed_total(), 60);
    /* Every job ran; only those cut off by the kill ran a second time, as attempt 2. */
    for (size_t i = 0; i < runs.n; i++) {
        if (times_run(runs.ids[i]) > 1)
            cr_assert(runs.attempts[i] <= 2, "job %lld attempt %d", runs.ids[i], runs.attempts[i]);
    }
    cr_assert_gt(testdb_scalar(st, "SELECT count(*) FROM usher_queue_stats WHERE failed > 0"), 0,
                 "no rescued attempt was counted");
}

/* Ends every other session of the test database, as a restart or a network cut would. */
static long long cut_connections(void)
{
    return testdb_scalar(st, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                             " WHERE datname = current_database() AND pid <> pg_backend_pid()");
}

static bool some_completed(void *arg)
{
    return completed_total() >= *(long long *)arg;
}

Test(worker, the_pool_survives_its_database_connections_dropping, .timeout = 600)
{
    long long running = 1, half = 100;
    pid_t pid;

    new_run_log();
    enqueue_jobs("test.sleep", "\"ms\":50", 200, 5, 30000);
    pid = start_worker();
    cr_assert(testproc_wait_for(some_running, &running, 60000));
    cr_assert_geq(cut_connections(), 1, "the worker had no session to cut");
    cr_assert(testproc_wait_for(some_completed, &half, 300000), "no progress after the cut");
    cr_assert_geq(cut_connections(), 1);
    cr_assert(testproc_wait_for(queue_empty, NULL, 300000), "%lld jobs left", jobs_left());
    cr_assert_eq(stop_worker(pid), 0);
    read_run_log();
    cr_assert_eq(completed_total(), 200);
}

/*
 * A real restart of PostgreSQL, when the test script says how
 * (USHER_PG_RESTART is a shell command, e.g. scripts/stack.sh restart-pg).
 */
Test(worker, the_pool_recovers_from_a_postgres_restart, .timeout = 600)
{
    const char *restart = getenv("USHER_PG_RESTART");
    long long running = 1;
    pid_t pid;

    if (restart == NULL || restart[0] == '\0')
        cr_skip_test("USHER_PG_RESTART is not set");
    new_run_log();
    enqueue_jobs("test.sleep", "\"ms\":50", 200, 5, 30000);
    pid = start_worker();
    cr_assert(testproc_wait_for(some_running, &running, 60000));
    usher_store_free(st);
    cr_assert_eq(system(restart), 0, "%s failed", restart);
    st = testdb_store(&cfg);
    cr_assert(testproc_wait_for(queue_empty, NULL, 300000), "%lld jobs left", jobs_left());
    cr_assert_eq(stop_worker(pid), 0);
    cr_assert_eq(completed_total(), 200);
}

Test(worker, two_supervisors_share_the_work_without_running_a_job_twice, .timeout = 600)
{
    pid_t a, b;

    new_run_log();
    enqueue_jobs("test.noop", "", 5000, 3, 10000);
    a = start_worker();
    b = start_worker();
    cr_assert(testproc_wait_for(queue_empty, NULL, 300000), "%lld jobs left", jobs_left());
    cr_assert_eq(stop_worker(a), 0);
    cr_assert_eq(stop_worker(b), 0);
    read_run_log();
    cr_assert_eq(runs.n, 5000);
    assert_no_double_runs();
    cr_assert_eq(completed_total(), 5000);
}

static long long pool_size(void)
{
    return testdb_scalar(st, "SELECT coalesce(max(current_size), -1) FROM usher_pools");
}

static bool pool_at_least(void *arg)
{
    return pool_size() >= *(long long *)arg;
}

static bool pool_exactly(void *arg)
{
    return pool_size() == *(long long *)arg;
}

Test(worker, a_backlog_scales_the_pool_out_and_an_empty_queue_back_to_its_floor, .timeout = 600)
{
    long long grown = 8, floor = 2;
    pid_t pid, kids[64];

    new_run_log();
    enqueue_jobs("test.sleep", "\"ms\":20", 2000, 3, 30000);
    pid = start_worker();
    cr_assert(testproc_wait_for(pool_at_least, &grown, 120000), "the pool stayed at %lld",
              pool_size());
    cr_assert(testproc_wait_for(queue_empty, NULL, 300000), "%lld jobs left", jobs_left());
    cr_assert(testproc_wait_for(pool_exactly, &floor, 120000), "the pool stayed at %lld",
              pool_size());
    cr_assert_eq(testproc_pool_children(pid, kids, 64), 2, "the floor is 2 children");
    cr_assert_eq(stop_worker(pid), 0);
    cr_assert_eq(completed_total(), 2000);
}

/*
 * Writes the test config into path with [pool.tests]'s lines that start with
 * one of drop (NULL-terminated) left out and lines added after its header.
 */
static void write_tests_pool_config(const char *path, const char *const *drop, const char *added)
{
    FILE *in = fopen(WORKER_TEST_CONF, "r"), *out = fopen(path, "w");
    char line[256];
    bool in_pool = false;

    cr_assert(in != NULL && out != NULL);
    while (fgets(line, sizeof(line), in) != NULL) {
        if (line[0] == '[')
            in_pool = strncmp(line, "[pool.tests]", 12) == 0;
        bool dropped = false;

        for (size_t i = 0; in_pool && drop[i] != NULL && !dropped; i++)
            dropped = strncmp(line, drop[i], strlen(drop[i])) == 0;
        if (dropped)
            continue;
        fputs(line, out);
        if (strncmp(line, "[pool.tests]", 12) == 0)
            fputs(added, out);
    }
    fclose(in);
    cr_assert_eq(fclose(out), 0);
}

/* Writes the test config with the pool "tests" at a fixed size into path. */
static void write_sized_config(const char *path, int size)
{
    static const char *const drop[] = { "min =", "initial =", NULL };
    char added[64];

    snprintf(added, sizeof(added), "min = %d\ninitial = %d\n", size, size);
    write_tests_pool_config(path, drop, added);
}

/* Writes the test config without its [worker] test_handlers line: what production runs. */
static void write_production_config(const char *path)
{
    FILE *in = fopen(WORKER_TEST_CONF, "r"), *out = fopen(path, "w");
    char line[256];
    int dropped = 0;

    cr_assert(in != NULL && out != NULL);
    while (fgets(line, sizeof(line), in) != NULL) {
        if (strncmp(line, "test_handlers = true", 20) == 0 && ++dropped)
            continue;
        fputs(line, out);
    }
    fclose(in);
    cr_assert_eq(fclose(out), 0);
    cr_assert_eq(dropped, 1, "%s has no 'test_handlers = true' line", WORKER_TEST_CONF);
}

/*
 * The test kinds ship in usher-worker but run only where the configuration
 * asks for them: elsewhere test.sleep is an unknown kind, dead at its first
 * attempt, and its "log" file is never created.
 */
Test(worker, test_kinds_run_only_where_the_configuration_enables_them, .timeout = 300)
{
    char path[] = "/tmp/usher-production-XXXXXX";
    int fd = mkstemp(path);
    pid_t pid;

    cr_assert_geq(fd, 0);
    close(fd);
    write_production_config(path);
    new_run_log();
    enqueue_jobs("test.sleep", "\"ms\":1", 1, 3, 10000);
    pid = start_pool(path, "tests");
    cr_assert(testproc_wait_for(queue_empty, NULL, 120000), "the job never left the queue");
    cr_assert_eq(stop_worker(pid), 0);
    unlink(path);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'dead'"
                                   " AND jsonb_array_length(errors) = 1 AND errors->0->>'error' ="
                                   " 'no handler for kind ''test.sleep'' (test kinds run only with"
                                   " [worker] test_handlers = true)'"),
                 1);
    cr_assert_eq(access(runs.path, F_OK), -1, "%s was created", runs.path);
    cr_assert_eq(completed_total(), 0);

    enqueue_jobs("test.sleep", "\"ms\":1", 1, 3, 10000);
    pid = start_worker();
    cr_assert(testproc_wait_for(queue_empty, NULL, 120000), "%lld jobs left", jobs_left());
    cr_assert_eq(stop_worker(pid), 0);
    read_run_log();
    cr_assert_eq(runs.n, 1, "%zu runs logged", runs.n);
    cr_assert_eq(completed_total(), 1);
}

Test(worker, sighup_reloads_the_pool_size, .timeout = 300)
{
    char path[] = "/tmp/usher-reload-XXXXXX";
    long long three = 3, six = 6;
    int fd = mkstemp(path);
    pid_t pid, kids[64];

    cr_assert_geq(fd, 0);
    close(fd);
    new_run_log();
    write_sized_config(path, 3);
    pid = start_pool(path, "tests");
    cr_assert(testproc_wait_for(pool_exactly, &three, 60000), "size %lld", pool_size());
    write_sized_config(path, 6);
    kill(pid, SIGHUP);
    cr_assert(testproc_wait_for(pool_exactly, &six, 60000), "size %lld after SIGHUP", pool_size());
    cr_assert_eq(testproc_pool_children(pid, kids, 64), 6);
    cr_assert_eq(stop_worker(pid), 0);
    unlink(path);
}

static bool capped_sizes_settled(void *arg)
{
    (void)arg;
    return testdb_scalar(st, "SELECT count(*) FROM usher_pools WHERE pool = 'capped'") == 2 &&
           testdb_scalar(st, "SELECT sum(current_size) FROM usher_pools WHERE pool = 'capped'") ==
               3;
}

/* The most runs started after after_us that began within any window_us, from the log. */
static size_t most_overlapping(long long window_us, long long after_us)
{
    FILE *f = fopen(runs.path, "r");
    long long starts[4096], id;
    size_t n = 0, most = 0;
    int attempt;

    cr_assert_not_null(f);
    while (n < 4096 && fscanf(f, "%lld %d %lld", &id, &attempt, &starts[n]) == 3)
        n += starts[n] >= after_us;
    fclose(f);
    qsort(starts, n, sizeof(starts[0]), compare_ll);
    for (size_t i = 0, j = 0; i < n; i++) {
        while (starts[i] - starts[j] >= window_us)
            j++;
        most = i - j + 1 > most ? i - j + 1 : most;
    }
    return most;
}

Test(worker, a_downstream_cap_holds_across_supervisors, .timeout = 600)
{
    pid_t a, b;
    size_t most;
    struct timespec settled;

    new_run_log();
    enqueue_into("capped", "test.sleep", "\"ms\":100", 300, 3, 30000);
    a = start_pool(WORKER_TEST_CONF, "capped");
    b = start_pool(WORKER_TEST_CONF, "capped");
    /* Each floor is 2, so 4 children would run without the shared cap of 3. */
    cr_assert(testproc_wait_for(capped_sizes_settled, NULL, 60000), "sizes never settled at 3");
    clock_gettime(CLOCK_REALTIME, &settled);
    cr_assert(testproc_wait_for(queue_empty, NULL, 300000), "%lld jobs left", jobs_left());
    cr_assert_eq(stop_worker(a), 0);
    cr_assert_eq(stop_worker(b), 0);
    /*
     * Each job sleeps 100 ms, so runs that start within 95 ms of each other
     * overlap. Before the sizes settled both floors ran (4 children); once
     * they had (and the jobs then running were done), never more than 3.
     */
    read_run_log();
    cr_assert_eq(runs.n, 300);
    most = most_overlapping(95000,
                            (long long)settled.tv_sec * 1000000 + settled.tv_nsec / 1000 + 200000);
    cr_assert_leq(most, 3, "%zu jobs ran at once", most);
    cr_assert_geq(most, 2, "the pools never ran jobs side by side");
}

/* The test config with [pool.tests] at size 2, adaptive and claiming its whole window. */
static void write_window_config(const char *path)
{
    static const char *const drop[] = { "min =", "max =", "initial =", "claim_batch", NULL };

    write_tests_pool_config(path, drop, "min = 2\nmax = 2\ninitial = 2\n");
}

static long long jobs_in(const char *state)
{
    return testdb_scalarf(st,
                          "SELECT count(*) FROM usher_jobs WHERE state = '%s'"
                          " AND kind = 'test.sleep'",
                          state);
}

/* n no-op jobs that log nothing: the shortest jobs there are. */
static void enqueue_silent_noops(size_t n)
{
    usher_enqueue_opts *jobs = calloc(n, sizeof(*jobs));
    usher_enqueued *out = calloc(n, sizeof(*out));

    cr_assert(jobs != NULL && out != NULL);
    for (size_t i = 0; i < n; i++)
        jobs[i] = (usher_enqueue_opts){ .queue = "work", .kind = "test.noop", .payload = "{}" };
    for (size_t i = 0; i < n; i += 1000)
        cr_assert_eq(usher_enqueue_batch(st, jobs + i, n - i < 1000 ? n - i : 1000, out + i),
                     USHER_OK, "%s", usher_store_errstr(st));
    free(jobs);
    free(out);
}

/* The pool holds (has claimed) more than 40 sleep jobs. */
static bool sleeps_claimed(void *arg)
{
    (void)arg;
    return jobs_in("running") > 40;
}

/* At most 40 sleep jobs held (running) by the pool, the rest back in the queue. */
static bool sleeps_given_back(void *arg)
{
    (void)arg;
    return jobs_in("available") >= 560;
}

/*
 * After a flood of no-op jobs an adaptive pool's window is at its largest
 * and its next claim takes hundreds of jobs; when those turn out to take
 * 20 ms each, the window shrinks to one and the jobs it no longer has room
 * for go back to the queue, unspent, instead of waiting in the supervisor
 * for seconds. Every job still runs once.
 */
Test(worker, a_shrunk_window_gives_back_the_jobs_it_claimed_beyond_it, .timeout = 300)
{
    char path[] = "/tmp/usher-window-XXXXXX";
    int fd = mkstemp(path);
    pid_t pid;

    cr_assert_geq(fd, 0);
    close(fd);
    new_run_log();
    write_window_config(path);
    pid = start_pool(path, "tests");
    enqueue_silent_noops(3000);
    cr_assert(testproc_wait_for(queue_empty, NULL, 120000), "%lld jobs left", jobs_left());
    enqueue_jobs("test.sleep", "\"ms\":20", 600, 1, 10000);
    cr_assert(testproc_wait_for(sleeps_claimed, NULL, 60000),
              "the pool claimed %lld sleep jobs, want more than 40 (its window after the flood)",
              jobs_in("running"));
    cr_assert(testproc_wait_for(sleeps_given_back, NULL, 60000),
              "%lld sleep jobs still held, %lld available", jobs_in("running"),
              jobs_in("available"));
    cr_assert(testproc_wait_for(queue_empty, NULL, 240000), "%lld jobs left", jobs_left());
    cr_assert_eq(stop_worker(pid), 0);
    read_run_log();
    cr_assert_eq(runs.n, 600, "%zu runs logged", runs.n);
    assert_no_double_runs();
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 0, "none dead");
    unlink(path);
}
