/*
 * The connection budget against a real PostgreSQL: pg_stat_activity
 * counts what a running usher-api and usher-worker open at their most, and
 * it is exactly what the README's formulas (and their budget checks) say:
 * usher-api threads x db_connections + 2 offload threads, usher-worker 2
 * (supervisor) + 1 (maintenance) + its pool's max (children), and usher-api
 * with a read_url its replica pools too. Each
 * connection is made to show itself by blocking it on a lock the test
 * holds. A configuration at [database] max_connections_per_process starts;
 * one past it exits 1 saying why, and usher-worker refuses a reload that
 * would take its pool past it.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server.h"
#include "testdb.h"
#include "testhttp.h"
#include "testjob.h"
#include "testproc.h"
#include "token.h"

TESTDB_SUITE(conn_budget, "usher_test_conn_budget");

#define API_LOOPS       2
#define POOL_MAX        3 /* budget-test.conf's [pool.budget] min = max = initial */
#define WORKER_NEED     (2 + 1 + POOL_MAX)
#define BUDGET_VARIABLE "USHER_DATABASE_MAX_CONNECTIONS_PER_PROCESS"
#define OTHER_BACKENDS                                         \
    "FROM pg_stat_activity WHERE datname = current_database()" \
    " AND pid <> pg_backend_pid()"

static testapi server;
static pid_t worker;
static usher_store *lock_holder; /* holds the lock that makes the connections show */

static void stop(void)
{
    if (lock_holder != NULL)
        usher_store_free(lock_holder); /* ends its transaction: the lock goes */
    lock_holder = NULL;
    testapi_stop(&server);
    unsetenv("USHER_DATABASE_READ_URL");
    if (worker > 0)
        testproc_stop_cleanly(worker);
    worker = 0;
}

static int lock_pid; /* lock_holder's backend, or 0 */

/* The sessions on the test's database but the test's own: what usher-api or usher-worker opened. */
static long long sessions_where(const char *condition)
{
    char sql[256];

    snprintf(sql, sizeof(sql), "SELECT count(*) " OTHER_BACKENDS " AND pid <> %d%s", lock_pid,
             condition);
    return testdb_scalar(st, sql);
}

static long long sessions(void)
{
    return sessions_where("");
}

static long long sessions_waiting_for_a_lock(void)
{
    return sessions_where(" AND wait_event_type = 'Lock'");
}

typedef struct expected {
    long long sessions, waiting;
} expected;

static bool counted(void *arg)
{
    const expected *e = arg;

    return sessions() == e->sessions && sessions_waiting_for_a_lock() == e->waiting;
}

/* No session but the test's own: the processes of the test before have closed theirs. */
static bool no_sessions(void *arg)
{
    (void)arg;
    return sessions() == 0;
}

static void hold_lock(const char *sql)
{
    lock_holder = testdb_store(&cfg);
    lock_pid = PQbackendPID(usher_store_conn(lock_holder));
    testdb_exec(lock_holder, "BEGIN");
    testdb_exec(lock_holder, sql);
}

static bool backend_gone(void *arg)
{
    return testdb_scalarf(st, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d",
                          *(const int *)arg) == 0;
}

/*
 * Commits and closes lock_holder, and waits until its backend has left
 * pg_stat_activity: a closed connection's backend exits on its own time,
 * and would be counted as one of the process's sessions meanwhile.
 */
static void release_lock(void)
{
    int pid = lock_pid;

    testdb_exec(lock_holder, "COMMIT");
    usher_store_free(lock_holder);
    lock_holder = NULL;
    cr_assert(testproc_wait_for(backend_gone, &pid, 30000), "backend %d still there", pid);
    lock_pid = 0;
}

static int api_need(void)
{
    usher_conn_need need;

    api_conn_need(&cfg, API_LOOPS, &need);
    return usher_conn_need_total(&need);
}

typedef struct admin_calls {
    const char *token;
    testhttp_resp out[API_OFFLOAD_THREADS];
} admin_calls;

/* As many admin job lists at once as there are offload threads: each takes one. */
static void *list_jobs(void *arg)
{
    admin_calls *c = arg;
    testhttp_req reqs[API_OFFLOAD_THREADS];

    for (int i = 0; i < API_OFFLOAD_THREADS; i++)
        reqs[i] = (testhttp_req){ "GET", "/v1/admin/jobs", c->token, NULL, NULL, NULL };
    testhttp_many(&server, reqs, c->out, API_OFFLOAD_THREADS, API_OFFLOAD_THREADS);
    return NULL;
}

Test(conn_budget, usher_api_opens_threads_times_db_connections_plus_its_offload_threads,
     .fini = stop, .timeout = 300)
{
    char budget[16], token[USHER_TOKEN_MAX];
    expected pools = { (long long)API_LOOPS * cfg.api_db_connections, 0 };
    expected all = { api_need(), API_OFFLOAD_THREADS };
    admin_calls calls = { .token = token };
    pthread_t thread;
    int64_t id;

    cr_assert_eq(all.sessions, API_LOOPS * cfg.api_db_connections + 2);
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ADMIN, 0, 0, "budget", token, &id), USHER_OK);
    snprintf(budget, sizeof(budget), "%lld", all.sessions); /* exactly at the budget: starts */
    setenv(BUDGET_VARIABLE, budget, 1);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, API_LOOPS);
    cr_assert(testproc_wait_for(counted, &pools, 30000), "%lld sessions, not the pools' %lld",
              sessions(), pools.sessions);
    /* Both offload threads open their connection and wait on the lock. */
    hold_lock("LOCK TABLE usher_jobs IN ACCESS EXCLUSIVE MODE");
    cr_assert_eq(pthread_create(&thread, NULL, list_jobs, &calls), 0);
    cr_assert(testproc_wait_for(counted, &all, 30000), "%lld sessions (%lld waiting), not %lld",
              sessions(), sessions_waiting_for_a_lock(), all.sessions);
    release_lock();
    cr_assert_eq(pthread_join(thread, NULL), 0);
    for (int i = 0; i < API_OFFLOAD_THREADS; i++) {
        cr_assert_eq(calls.out[i].status, 200, "%s", calls.out[i].body);
        testhttp_resp_free(&calls.out[i]);
    }
    all.waiting = 0;
    cr_assert(counted(&all), "%lld sessions after the calls, not %lld", sessions(), all.sessions);
}

Test(conn_budget, usher_api_past_its_budget_does_not_start)
{
    char budget[16], said[2048], expect[128];

    snprintf(budget, sizeof(budget), "%d", api_need() - 1);
    setenv(BUDGET_VARIABLE, budget, 1);
    cr_assert_eq(testapi_refused(USHER_API_PATH, cfg.database_url, API_LOOPS, said, sizeof(said)),
                 1, "%s", said);
    snprintf(expect, sizeof(expect), "usher-api would open %d PostgreSQL connections (",
             api_need());
    cr_assert_not_null(strstr(said, expect), "%s", said);
    snprintf(expect, sizeof(expect), "max_connections_per_process = %s", budget);
    cr_assert_not_null(strstr(said, expect), "%s", said);
}

/*
 * [database] read_url adds each loop's replica pool: here the URL is the
 * test's database itself (a primary is current, so it serves as its own
 * replica), where pg_stat_activity counts them all. One under that budget,
 * usher-api does not start.
 */
Test(conn_budget, usher_api_with_a_read_url_opens_a_replica_pool_per_loop_too, .fini = stop,
     .timeout = 300)
{
    usher_config with = cfg; /* shallow: only read */
    usher_conn_need need;
    char budget[16], said[2048];
    expected pools = { 2LL * API_LOOPS * cfg.api_db_connections, 0 };

    with.database_read_url = cfg.database_url;
    api_conn_need(&with, API_LOOPS, &need);
    cr_assert_eq(usher_conn_need_total(&need),
                 2 * API_LOOPS * cfg.api_db_connections + 2 * API_OFFLOAD_THREADS);
    setenv("USHER_DATABASE_READ_URL", cfg.database_url, 1);
    snprintf(budget, sizeof(budget), "%d", usher_conn_need_total(&need) - 1);
    setenv(BUDGET_VARIABLE, budget, 1);
    cr_assert_eq(testapi_refused(USHER_API_PATH, cfg.database_url, API_LOOPS, said, sizeof(said)),
                 1, "%s", said);
    cr_assert_not_null(strstr(said, "replica connections ([database] read_url)"), "%s", said);
    snprintf(budget, sizeof(budget), "%d", usher_conn_need_total(&need));
    setenv(BUDGET_VARIABLE, budget, 1);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, API_LOOPS);
    cr_assert(testproc_wait_for(counted, &pools, 30000), "%lld sessions, not the pools' %lld",
              sessions(), pools.sessions);
}

/* POOL_MAX notify.inbox jobs for a real registration, so each child takes one. */
static void enqueue_inbox_jobs(void)
{
    long long org = testdb_organizer(st, "B");
    testdb_event e = testdb_event_new(st, org, "Budget", 1, 10);
    char sql[256];

    snprintf(sql, sizeof(sql),
             "INSERT INTO registrations (event_id, ticket_type_id, name, email)"
             " VALUES (%lld, %lld, 'B', 'b@example.org') RETURNING id",
             e.id, e.ticket_type);
    testjob_enqueue_inbox(st, testdb_scalar(st, sql), POOL_MAX);
}

static bool inbox_written(void *arg)
{
    (void)arg;
    return testdb_scalar(st, "SELECT count(*) FROM notifications") == POOL_MAX;
}

Test(conn_budget, usher_worker_opens_supervisor_maintenance_and_one_per_child, .fini = stop,
     .timeout = 300)
{
    char budget[16], workdir[64];
    expected idle = { 2 + 1, 0 }, busy = { WORKER_NEED, POOL_MAX };

    snprintf(budget, sizeof(budget), "%d", WORKER_NEED); /* exactly at the budget: starts */
    setenv(BUDGET_VARIABLE, budget, 1);
    worker = testproc_start_worker(USHER_WORKER_PATH, BUDGET_TEST_CONF, "budget", cfg.database_url,
                                   "budget", workdir);
    /* Children connect at their first job: before any, the supervisor and maintenance. */
    cr_assert(testproc_wait_for(counted, &idle, 30000), "%lld sessions, not %lld (see %s)",
              sessions(), idle.sessions, workdir);
    hold_lock("LOCK TABLE notifications IN EXCLUSIVE MODE");
    enqueue_inbox_jobs();
    cr_assert(testproc_wait_for(counted, &busy, 30000), "%lld sessions (%lld waiting), not %lld",
              sessions(), sessions_waiting_for_a_lock(), busy.sessions);
    release_lock();
    cr_assert(testproc_wait_for(inbox_written, NULL, 30000), "the inbox jobs did not finish");
    busy.waiting = 0;
    cr_assert(counted(&busy), "%lld sessions after the jobs, not %lld", sessions(), busy.sessions);
}

Test(conn_budget, usher_worker_past_its_budget_does_not_start)
{
    char budget[16], workdir[64], log[128], said[2048] = "", expect[256];
    int status = 0;
    pid_t pid;
    FILE *f;

    /* A stopped worker's backends end after it does: the count below must see only this one. */
    cr_assert(testproc_wait_for(no_sessions, NULL, 30000), "%lld sessions left from before",
              sessions());
    snprintf(budget, sizeof(budget), "%d", WORKER_NEED - 1);
    setenv(BUDGET_VARIABLE, budget, 1);
    pid = testproc_start_worker(USHER_WORKER_PATH, BUDGET_TEST_CONF, "budget", cfg.database_url,
                                "budget", workdir);
    if (!testproc_wait(pid, 30000, &status)) {
        testproc_kill(pid);
        cr_assert_fail("usher-worker started anyway; see %s", workdir);
    }
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d", status);
    snprintf(log, sizeof(log), "%s/worker.log", workdir);
    f = fopen(log, "r");
    cr_assert_not_null(f);
    cr_assert_gt(fread(said, 1, sizeof(said) - 1, f), 0);
    fclose(f);
    snprintf(expect, sizeof(expect),
             "usher-worker would open %d PostgreSQL connections (2: supervisor + 1: maintenance"
             " process + %d: children at [pool.budget] max), more than [database]"
             " max_connections_per_process = %d",
             WORKER_NEED, POOL_MAX, WORKER_NEED - 1);
    cr_assert_not_null(strstr(said, expect), "%s", said);
    cr_assert_eq(sessions(), 0, "it connected before refusing");
}

/* BUDGET_TEST_CONF with [pool.budget] max = max into path. */
static void write_conf(const char *path, int max)
{
    char text[4096], wanted[32];
    FILE *in = fopen(BUDGET_TEST_CONF, "r"), *out;
    size_t len;
    char *at;

    cr_assert_not_null(in);
    len = fread(text, 1, sizeof(text) - 1, in);
    fclose(in);
    text[len] = '\0';
    at = strstr(text, "\nmax = 3\n");
    cr_assert_not_null(at);
    out = fopen(path, "w");
    cr_assert_not_null(out);
    snprintf(wanted, sizeof(wanted), "\nmax = %d\n", max);
    cr_assert(fprintf(out, "%.*s%s%s", (int)(at - text), text, wanted, at + 9) > 0);
    cr_assert_eq(fclose(out), 0);
}

typedef struct worker_log {
    const char *path, *text;
} worker_log;

static bool worker_said(void *arg)
{
    const worker_log *w = arg;
    char line[1024];
    FILE *f = fopen(w->path, "r");
    bool found = false;

    while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, w->text) != NULL;
    if (f != NULL)
        fclose(f);
    return found;
}

Test(conn_budget, usher_worker_refuses_a_reload_that_raises_its_pool_past_the_budget, .fini = stop,
     .timeout = 300)
{
    char budget[16], workdir[64], conf[96], log[128];
    expected idle = { 2 + 1, 0 };
    worker_log refused = { log, "reload refused, keeping the running configuration: usher-worker"
                                " would open 7 PostgreSQL connections" };
    pid_t children[8];

    snprintf(conf, sizeof(conf), "/tmp/usher-budget-%d.conf", (int)getpid());
    write_conf(conf, POOL_MAX);
    snprintf(budget, sizeof(budget), "%d", WORKER_NEED);
    setenv(BUDGET_VARIABLE, budget, 1);
    worker = testproc_start_worker(USHER_WORKER_PATH, conf, "budget", cfg.database_url, "budget",
                                   workdir);
    snprintf(log, sizeof(log), "%s/worker.log", workdir);
    cr_assert(testproc_wait_for(counted, &idle, 30000), "%lld sessions, not %lld (see %s)",
              sessions(), idle.sessions, log);
    write_conf(conf, POOL_MAX + 1);
    cr_assert_eq(kill(worker, SIGHUP), 0);
    cr_assert(testproc_wait_for(worker_said, &refused, 30000), "no refusal in %s", log);
    cr_assert_eq(testproc_pool_children(worker, children, 8), POOL_MAX);
    unlink(conf);
}
