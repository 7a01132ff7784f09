/*
 * The dashboard page in headless Chromium (tests/browser/dashboard.mjs,
 * Playwright): it loads, lists the seeded queues, retries a dead job with
 * a click and pauses and resumes a queue; finds a dead job by kind, opens
 * it, retries it and sees it run (a real usher-worker runs it); filters a
 * set and cancels it in bulk with the count confirmed, by keyboard alone;
 * and passes axe-core's accessibility check on every view. This side
 * seeds the jobs and checks the database afterwards, exactly. The
 * screenshot is kept in build/tests/artifacts/.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "enqueue.h"
#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"
#include "token.h"

/* The suite's config (a test pool for the queue "work") is this binary's default. */
__attribute__((constructor)) static void use_dashboard_config(void)
{
    setenv("USHER_CONFIG", DASHBOARD_TEST_CONF, 1);
}

TESTDB_SUITE(dashboard, "usher_test_dashboard");

#define BULK_MATCHING 7
#define BULK_OTHERS   3

static testapi server;
static pid_t worker;
static char workdir[64];

static void start(void)
{
    setenv("USHER_API_RATE_PER_MINUTE", "0", 1);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 1);
    worker = testproc_start_worker(USHER_WORKER_PATH, DASHBOARD_TEST_CONF, "tests",
                                   cfg.database_url, "dashboard", workdir);
}

static void stop(void)
{
    testapi_stop(&server);
    testproc_stop_cleanly(worker);
}

static long long enqueue(const char *queue, const char *kind, const char *payload)
{
    usher_enqueued out;

    cr_assert_eq(
        usher_enqueue(st, &(usher_enqueue_opts){ .queue = queue, .kind = kind, .payload = payload },
                      &out),
        USHER_OK, "%s", usher_store_errstr(st));
    return out.id;
}

/* Makes job id dead after one attempt that ended with error. */
static void kill_job(long long id, const char *error)
{
    char sql[512];

    snprintf(sql, sizeof(sql),
             "UPDATE usher_jobs SET state = 'dead', attempt = 1, finished_at = now(), errors ="
             " jsonb_build_array(jsonb_build_object('attempt', 1, 'error', '%s',"
             " 'started_at', now() - interval '1.5 seconds', 'at', now(), 'worker', 'w1'))"
             " WHERE id = %lld",
             error, id);
    testdb_exec(st, sql);
}

static void set_env_id(const char *name, long long id)
{
    char text[24];

    snprintf(text, sizeof(text), "%lld", id);
    setenv(name, text, 1);
}

Test(dashboard, an_operator_finds_acts_on_and_watches_jobs_from_the_page, .init = start,
     .fini = stop, .timeout = 400)
{
    char tok[USHER_TOKEN_MAX], url[64], sql[256], shot[512], log[512];
    long long dead, sleeper;
    int64_t id;
    int status;

    cr_assert_eq(usher_token_create(st, USHER_ROLE_ADMIN, 0, 0, "browser", tok, &id), USHER_OK);
    dead = enqueue("email", "email.send", "{}");
    kill_job(dead, "smtp 554 rejected");
    /* Queue "work" is served: it runs once retried, for 4 s, long enough to be seen. */
    testdb_exec(st, "UPDATE usher_queues SET paused = true WHERE name = 'work'");
    sleeper = enqueue("work", "test.sleep", "{\"ms\": 4000}");
    kill_job(sleeper, "handler timed out");
    testdb_exec(st, "UPDATE usher_queues SET paused = false WHERE name = 'work'");
    for (int i = 0; i < BULK_MATCHING; i++)
        enqueue("idle", "test.noop", "{}");
    for (int i = 0; i < BULK_OTHERS; i++)
        enqueue("idle", "test.sleep", "{\"ms\": 1}");

    mkdir(ARTIFACT_DIR, 0755);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", server.port);
    snprintf(shot, sizeof(shot), "%s/dashboard.png", ARTIFACT_DIR);
    snprintf(log, sizeof(log), "%s/dashboard.log", ARTIFACT_DIR);
    unlink(log);
    setenv("USHER_URL", url, 1);
    setenv("USHER_TOKEN", tok, 1);
    set_env_id("USHER_DEAD_JOB", dead);
    setenv("USHER_QUEUE", "email", 1);
    set_env_id("USHER_SLEEP_JOB", sleeper);
    setenv("USHER_SLEEP_KIND", "test.sleep", 1);
    setenv("USHER_BULK_QUEUE", "idle", 1);
    setenv("USHER_BULK_KIND", "test.noop", 1);
    set_env_id("USHER_BULK_COUNT", BULK_MATCHING);
    setenv("USHER_SCREENSHOT", shot, 1);
    const char *argv[] = { "/usr/bin/node", BROWSER_DIR "/dashboard.mjs", NULL };
    pid_t pid = testproc_start(argv, log);

    cr_assert(testproc_wait(pid, 330000, &status), "the browser test hung; see %s", log);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the browser test failed; see %s",
              log);

    /* Retried from the overview: available again (its queue is not served). */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs WHERE id = %lld AND state = 'available'", dead);
    cr_assert_eq(testdb_scalar(st, sql), 1, "the retried job is not available again");
    /* Retried from its page: ran once and completed (deleted, counted). */
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM usher_jobs WHERE id = %lld", sleeper);
    cr_assert_eq(testdb_scalar(st, sql), 0, "the job retried from its page did not complete");
    cr_assert_eq(testdb_scalar(st, "SELECT coalesce(sum(completed), 0) FROM usher_queue_stats"
                                   " WHERE queue = 'work'"),
                 1);
    /* Cancelled in bulk: exactly the filtered set, and one audit record of it. */
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE queue = 'idle'"
                                   " AND kind = 'test.noop' AND state = 'cancelled'"),
                 BULK_MATCHING);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE queue = 'idle'"
                                   " AND kind = 'test.sleep' AND state = 'available'"),
                 BULK_OTHERS);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM audit_log WHERE action = 'jobs.cancel'"
                                   " AND (after->>'count')::int = 7"),
                 1);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM audit_log WHERE action LIKE 'jobs.%'"), 1);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_queues WHERE paused"), 0);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_admin_actions"), 0);
    struct stat sb;
    cr_assert(stat(shot, &sb) == 0 && sb.st_size > 1000, "no screenshot at %s", shot);
}
