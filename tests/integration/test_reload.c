/*
 * SIGHUP in the real programs, each started on a configuration file of the
 * test's own. The test rewrites the file with one reloadable key and one
 * that needs a restart changed, signals, waits for the log lines, and
 * checks that the first took effect and the second did not; then a file
 * that does not parse is refused and changes nothing.
 *
 *   usher-api:    [api] rate_read_per_minute (public reads get 429 past it)
 *                 and [api] body_max_bytes (a body over the new limit still passes)
 *   usher-worker: [log] level (the supervisor's info line for a failed job)
 *                 and [database] url (a dead address: jobs still run), and the
 *                 children renewed with the new configuration
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "enqueue.h"
#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"
#include "testredis.h"

TESTDB_SUITE(reload, "usher_test_reload");

#define DEADLINE_MS 60000
#define BURST       15

static char conf_path[64];
static char log_path[256];
static pid_t redis_pid;

static void write_conf(const char *text)
{
    FILE *f;

    if (conf_path[0] == '\0') {
        int fd;

        snprintf(conf_path, sizeof(conf_path), "/tmp/usher-test-reload-XXXXXX");
        fd = mkstemp(conf_path);
        cr_assert_geq(fd, 0);
        close(fd);
    }
    f = fopen(conf_path, "w");
    cr_assert_not_null(f);
    cr_assert_geq(fputs(text, f), 0);
    cr_assert_eq(fclose(f), 0);
}

static void cleanup(void)
{
    if (conf_path[0] != '\0')
        unlink(conf_path);
    if (redis_pid > 0)
        testproc_kill(redis_pid);
}

/* How many lines of the log contain what. */
static int log_count(const char *what)
{
    return testproc_log_lines(log_path, what);
}

typedef struct log_wait {
    const char *what;
    int count;
} log_wait;

static bool log_has(void *arg)
{
    const log_wait *w = arg;

    return log_count(w->what) >= w->count;
}

/* Waits until the log holds count lines with what; fails the test at the deadline. */
static void wait_log(const char *what, int count)
{
    log_wait w = { what, count };

    cr_assert(testproc_wait_for(log_has, &w, DEADLINE_MS), "no %d line(s) with \"%s\" in %s", count,
              what, log_path);
}

/* Sends SIGHUP to pid and waits for the count-th line that ends this reload. */
static void hup(pid_t pid, const char *ends_with, int count)
{
    cr_assert_eq(kill(pid, SIGHUP), 0);
    wait_log(ends_with, count);
}

static void assert_line(const char *what)
{
    cr_assert_eq(log_count(what), 1, "want one line with \"%s\" in %s", what, log_path);
}

/* ---- usher-api ---------------------------------------------------------- */

static const char api_conf[] = "[api]\n"
                               "rate_per_minute = 600\n"
                               "rate_read_per_minute = %d\n"
                               "body_max_bytes = %d\n";

static void write_api_conf(int reads, int body_max, const char *extra)
{
    char text[512];

    snprintf(text, sizeof(text), api_conf, reads, body_max);
    strncat(text, extra, sizeof(text) - strlen(text) - 1);
    write_conf(text);
}

/* Reads of event_id in a burst: how many were refused with 429 (every other answer is 200). */
static int limited_reads(const testapi *api, long long event_id)
{
    char path[64];
    int limited = 0;

    snprintf(path, sizeof(path), "/v1/events/%lld", event_id);
    for (int i = 0; i < BURST; i++) {
        testhttp_resp resp;
        long status = testhttp(api, &(testhttp_req){ "GET", path, NULL, NULL, NULL, NULL }, &resp);

        cr_assert(status == 200 || status == 429, "GET %s: %ld", path, status);
        limited += status == 429;
        testhttp_resp_free(&resp);
    }
    return limited;
}

/* POSTs a 4 KB body; returns the status (413 when it is over body_max_bytes). */
static long big_post(const testapi *api, long long event_id)
{
    char path[96], body[4200];
    testhttp_resp resp;
    long status;

    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", event_id);
    snprintf(body, sizeof(body), "{\"name\":\"%4000d\"}", 7);
    status = testhttp(api, &(testhttp_req){ "POST", path, NULL, body, NULL, NULL }, &resp);
    testhttp_resp_free(&resp);
    return status;
}

static testdb_event new_event(void)
{
    return testdb_event_new(st, testdb_organizer(st, "R"), "Reloaded", 1, 10);
}

/* Registers n to ev; returns the max_attempts of its pdf.ticket job. */
static long long ticket_job_attempts(const testapi *api, testdb_event ev, int n)
{
    char path[64], body[160], sql[256];
    long long id;
    testhttp_resp resp;
    long status;

    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", ev.id);
    snprintf(body, sizeof(body),
             "{\"ticket_type_id\":%lld,\"name\":\"R %d\",\"email\":\"r%d@example.org\"}",
             ev.ticket_type, n, n);
    status = testhttp(api, &(testhttp_req){ "POST", path, NULL, body, NULL, NULL }, &resp);
    cr_assert_eq(status, 201, "POST %s: %ld %s", path, status, resp.body);
    id = (long long)json_integer_value(json_object_get(resp.json, "registration_id"));
    /* Its own job, or its statement's (registration_ids, 0038). */
    snprintf(sql, sizeof(sql),
             "SELECT max_attempts FROM usher_jobs WHERE kind = 'pdf.ticket'"
             " AND (payload ->> 'registration_id' = '%lld'"
             " OR payload -> 'registration_ids' @> '%lld'::jsonb)",
             id, id);
    testhttp_resp_free(&resp);
    return testdb_scalar(st, sql);
}

Test(reload, usher_api_applies_reloadable_keys_and_keeps_the_rest, .fini = cleanup)
{
    testdb_event ev = new_event();
    long long event_id = ev.id;
    testapi api;
    long before;
    char line[256];

    unsetenv("USHER_API_RATE_PER_MINUTE");
    unsetenv("USHER_API_RATE_READ_PER_MINUTE");
    redis_pid = testredis_start();
    write_api_conf(100000, 65536, "");
    cr_assert_eq(setenv("USHER_CONFIG", conf_path, 1), 0);
    testapi_start(&api, USHER_API_PATH, cfg.database_url, 2);
    snprintf(log_path, sizeof(log_path), "%s", api.log);
    cr_assert_eq(limited_reads(&api, event_id), 0);
    before = big_post(&api, event_id);
    cr_assert_neq(before, 413);
    cr_assert_neq(ticket_job_attempts(&api, ev, 1), 7);

    /* 60 a minute is a bucket of 10; the body limit would refuse 4 KB; a
     * registration's ticket job takes its kind's new policy (the loops keep
     * its template as text, routes/registrations.c) */
    write_api_conf(60, 2048, "[kind.pdf.ticket]\nmax_attempts = 7\n");
    hup(api.pid, "reload done", 1);
    cr_assert_eq(ticket_job_attempts(&api, ev, 2), 7);
    assert_line("[api] rate_read_per_minute reloaded: 100000 -> 60");
    snprintf(line, sizeof(line), "[api] body_max_bytes changed in %s: needs a restart", conf_path);
    assert_line(line);
    cr_assert_geq(limited_reads(&api, event_id), 1, "the new read limit is not applied");
    cr_assert_eq(big_post(&api, event_id), before, "the body limit changed without a restart");

    /* A file that does not load changes nothing: reads stay limited */
    write_api_conf(100000, 65536, "this line is not ini\n");
    hup(api.pid, "reload refused, keeping the running configuration", 1);
    cr_assert_geq(limited_reads(&api, event_id), 1, "a refused file changed the read limit");
    cr_assert_eq(log_count("reload done"), 1);
    testapi_stop(&api);
}

/* ---- usher-worker ------------------------------------------------------- */

static const char worker_conf[] = "[database]\n"
                                  "url = %s\n"
                                  "[log]\n"
                                  "level = %s\n"
                                  "[worker]\n"
                                  "test_handlers = true\n"
                                  "[engine]\n"
                                  "poll_interval_ms = 200\n"
                                  "[defaults]\n"
                                  "max_attempts = 1\n"
                                  "[pool.reload]\n"
                                  "tier = high\n"
                                  "min = 2\n"
                                  "max = 2\n"
                                  "shutdown_grace_ms = 5000\n"
                                  "[queue.default]\n"
                                  "pool = reload\n"
                                  "%s";

static void write_worker_conf(const char *url, const char *level, const char *extra)
{
    char text[1024];

    snprintf(text, sizeof(text), worker_conf, url, level, extra);
    write_conf(text);
}

static long long failing_job(void)
{
    usher_enqueue_opts job = { .queue = "default",
                               .kind = "test.fail",
                               .payload = "{\"message\":\"on purpose\",\"permanent\":true}",
                               .max_attempts = 1 };
    usher_enqueued out;

    cr_assert_eq(usher_enqueue(st, &job, &out), USHER_OK, "%s", usher_store_errstr(st));
    return (long long)out.id;
}

static bool is_dead(void *arg)
{
    char sql[128];

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM usher_jobs WHERE id = %lld AND state = 'dead'",
             *(long long *)arg);
    return testdb_scalar(st, sql) == 1;
}

/* Runs a failing job through the pool; true when the supervisor logged it (level info). */
static bool failure_logged(void)
{
    long long id = failing_job();
    char what[64];

    cr_assert(testproc_wait_for(is_dead, &id, DEADLINE_MS), "job %lld never died", id);
    snprintf(what, sizeof(what), "job=%lld kind=test.fail", id);
    return log_count(what) == 1;
}

typedef struct pool_children {
    pid_t supervisor;
    pid_t pids[8];
    size_t n;
} pool_children;

/* True once the pool has 2 children, none of them one of old's. */
static bool renewed(void *arg)
{
    const pool_children *old = arg;
    pid_t now[8];
    size_t n = testproc_pool_children(old->supervisor, now, 8);

    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < old->n; j++) {
            if (now[i] == old->pids[j])
                return false;
        }
    }
    return n == 2;
}

Test(reload, usher_worker_applies_reloadable_keys_and_keeps_the_rest, .fini = cleanup)
{
    const char *argv[] = { USHER_WORKER_PATH, "--config", conf_path, "--pool", "reload", NULL };
    pool_children kids = { 0 };
    pid_t pid;
    char line[256];
    int status;

    write_worker_conf(cfg.database_url, "notice", "");
    unsetenv("USHER_DATABASE_URL"); /* the file's URL, so that a change of it shows */
    snprintf(log_path, sizeof(log_path), "/tmp/usher-test-reload-worker-%d.log", (int)getpid());
    unlink(log_path);
    pid = testproc_start(argv, log_path);
    cr_assert_gt(pid, 0);
    wait_log("pool=reload worker=", 1);
    cr_assert(!failure_logged(), "level notice logged an info line");
    kids.supervisor = pid;
    kids.n = testproc_pool_children(pid, kids.pids, 8);
    cr_assert_eq(kids.n, 2);

    write_worker_conf("postgresql://nobody@127.0.0.1:1/nowhere", "info", "");
    hup(pid, "reload done", 1);
    assert_line("[log] level reloaded: notice -> info");
    snprintf(line, sizeof(line), "[database] url changed in %s: needs a restart", conf_path);
    assert_line(line);
    cr_assert(testproc_wait_for(renewed, &kids, DEADLINE_MS), "the children were not renewed");
    cr_assert(failure_logged(), "the new level is not applied (or the old database was lost)");

    /* A file that does not load changes nothing: no renewal, level info */
    kids.n = testproc_pool_children(pid, kids.pids, 8);
    write_worker_conf(cfg.database_url, "notice", "this line is not ini\n");
    hup(pid, "reload refused, keeping the running configuration", 1);
    cr_assert(failure_logged(), "a refused file changed the level");
    cr_assert_eq(log_count("reload done"), 1);
    cr_assert(!renewed(&kids), "a refused file renewed the children");

    kill(pid, SIGTERM);
    cr_assert(testproc_wait(pid, DEADLINE_MS, &status), "usher-worker did not stop");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "usher-worker exit %d", status);
    cr_assert_eq(log_count("Sanitizer"), 0, "see %s", log_path);
    unlink(log_path);
}
