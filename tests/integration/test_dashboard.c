/*
 * The dashboard page in headless Chromium (tests/browser/dashboard.mjs,
 * Playwright): it loads, lists the seeded queues, retries a dead job with
 * a click and pauses and resumes a queue; this side checks the database
 * afterwards. The screenshot is kept in build/tests/artifacts/.
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

TESTDB_SUITE(dashboard, "usher_test_dashboard");

static testapi server;

static void start(void)
{
    setenv("USHER_API_RATE_PER_MINUTE", "0", 1);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 1);
}

static void stop(void)
{
    testapi_stop(&server);
}

Test(dashboard, a_click_retries_a_dead_job_and_pauses_a_queue, .init = start, .fini = stop,
     .timeout = 300)
{
    char tok[USHER_TOKEN_MAX], url[64], job[24], sql[256], shot[512], log[512];
    usher_enqueued out;
    int64_t id;
    int status;

    cr_assert_eq(usher_token_create(st, USHER_ROLE_ADMIN, 0, 0, "browser", tok, &id), USHER_OK);
    cr_assert_eq(
        usher_enqueue(
            st, &(usher_enqueue_opts){ .queue = "email", .kind = "email.send", .payload = "{}" },
            &out),
        USHER_OK);
    snprintf(sql, sizeof(sql),
             "UPDATE usher_jobs SET state = 'dead', finished_at = now(), errors ="
             " '[{\"attempt\": 1, \"error\": \"smtp 554 rejected\"}]' WHERE id = %lld",
             (long long)out.id);
    testdb_exec(st, sql);
    mkdir(ARTIFACT_DIR, 0755);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", server.port);
    snprintf(job, sizeof(job), "%lld", (long long)out.id);
    snprintf(shot, sizeof(shot), "%s/dashboard.png", ARTIFACT_DIR);
    snprintf(log, sizeof(log), "%s/dashboard.log", ARTIFACT_DIR);
    unlink(log);
    setenv("USHER_URL", url, 1);
    setenv("USHER_TOKEN", tok, 1);
    setenv("USHER_DEAD_JOB", job, 1);
    setenv("USHER_QUEUE", "email", 1);
    setenv("USHER_SCREENSHOT", shot, 1);
    const char *argv[] = { "/usr/bin/node", BROWSER_DIR "/dashboard.mjs", NULL };
    pid_t pid = testproc_start(argv, log);

    cr_assert(testproc_wait(pid, 240000, &status), "the browser test hung; see %s", log);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the browser test failed; see %s",
              log);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs WHERE id = %lld AND state ="
             " 'available'",
             (long long)out.id);
    cr_assert_eq(testdb_scalar(st, sql), 1, "the retried job is not available again");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_queues WHERE paused"), 0);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_admin_actions"), 0);
    struct stat sb;
    cr_assert(stat(shot, &sb) == 0 && sb.st_size > 1000, "no screenshot at %s", shot);
}
