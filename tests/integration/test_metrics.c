/*
 * Metrics over real HTTP, read with a strict Prometheus text parser
 * (tests/support/promtext.h): a worker pool's endpoint counts jobs by
 * queue, kind and outcome and exports its sizes, including the desired
 * size; usher-api's /metrics, on a listener of its own, moves with its
 * requests and shows the depths the pools' supervisors counted.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "enqueue.h"
#include "promtext.h"
#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"

__attribute__((constructor)) static void use_metrics_config(void)
{
    setenv("USHER_CONFIG", METRICS_TEST_CONF, 1);
}

TESTDB_SUITE(metrics, "usher_test_metrics");

#define WORKER_METRICS_PORT 58397
/* metrics-test.conf's [worker] metrics_address: another loopback address, so
 * that the test sees the pool listen where it is told, not on 127.0.0.1. */
#define WORKER_METRICS_HOST "127.0.0.2"

/* Where a port's /metrics is: the pool's on its address, usher-api's on 127.0.0.1. */
static testapi metrics_at(int port)
{
    return (testapi){ .port = port,
                      .host = port == WORKER_METRICS_PORT ? WORKER_METRICS_HOST : NULL };
}

static pid_t worker_pid;

/* A failed assertion must not leave the worker holding the port. */
static void kill_worker(void)
{
    if (worker_pid > 0)
        testproc_kill(worker_pid);
}

/* Scrapes port's /metrics and parses it strictly (fails the test otherwise). */
static promtext *scrape(int port, const char *path)
{
    testapi where = metrics_at(port);
    testhttp_resp resp;
    char why[512];
    promtext *p;

    cr_assert_eq(testhttp(&where, &(testhttp_req){ "GET", path, NULL, NULL, NULL, NULL }, &resp),
                 200, "GET %s on port %d: %ld", path, port, resp.status);
    cr_assert(strstr(resp.headers, "text/plain; version=0.0.4") != NULL, "%s", resp.headers);
    p = promtext_parse(resp.body, why, sizeof(why));
    cr_assert_not_null(p, "not valid Prometheus text: %s\n%s", why, resp.body);
    testhttp_resp_free(&resp);
    return p;
}

static void enqueue(const char *kind, const char *payload)
{
    usher_enqueued out;

    cr_assert_eq(
        usher_enqueue(
            st, &(usher_enqueue_opts){ .queue = "work", .kind = kind, .payload = payload }, &out),
        USHER_OK, "%s", usher_store_errstr(st));
}

typedef struct expect {
    double completed, dead, retried;
} expect;

/* One scrape of port's /metrics while waiting; NULL when it does not answer 200 or parse. */
static promtext *try_scrape(int port)
{
    testapi where = metrics_at(port);
    testhttp_resp resp;
    char why[256];
    promtext *p = NULL;

    if (testhttp(&where, &(testhttp_req){ "GET", "/metrics", NULL, NULL, NULL, NULL }, &resp) ==
        200)
        p = promtext_parse(resp.body, why, sizeof(why));
    testhttp_resp_free(&resp);
    return p;
}

static bool counters_reached(void *arg)
{
    expect *e = arg;
    promtext *p = try_scrape(WORKER_METRICS_PORT);
    /* The sizes are published at the first tick after start. */
    bool done =
        p != NULL &&
        promtext_value(p, "usher_pool_size", "pool=\"metered\",state=\"desired\"") >= 2 &&
        promtext_sum(p, "usher_jobs_completed_total", "kind=\"test.noop\"") == e->completed &&
        promtext_sum(p, "usher_jobs_dead_total", "") == e->dead &&
        promtext_sum(p, "usher_jobs_retried_total", "") == e->retried;

    promtext_free(p);
    return done;
}

Test(metrics, a_pool_counts_its_jobs_by_outcome_and_exports_its_sizes, .timeout = 300)
{
    char log[128];
    const char *argv[] = { USHER_WORKER_PATH, "--config", METRICS_TEST_CONF,
                           "--pool",          "metered",  NULL };
    promtext *p;
    pid_t pid;
    int status;

    snprintf(log, sizeof(log), "/tmp/usher-metrics-test-%d.log", (int)getpid());
    setenv("USHER_DATABASE_URL", cfg.database_url, 1);
    for (int i = 0; i < 10; i++)
        enqueue("test.noop", "{}");
    enqueue("test.fail", "{\"permanent\":true}");
    enqueue("test.fail", "{\"permanent\":true}");
    enqueue("test.fail", "{}"); /* two attempts: one retried, then dead */
    pid = testproc_start(argv, log);
    cr_assert_gt(pid, 0);
    worker_pid = pid;
    atexit(kill_worker);
    cr_assert(testproc_wait_for(counters_reached, &(expect){ 10, 3, 1 }, 120000),
              "the counters never reached 10 completed, 3 dead, 1 retried; see %s", log);
    p = scrape(WORKER_METRICS_PORT, "/metrics");
    {
        /* Served on metrics_address only: nothing listens on 127.0.0.1. */
        testapi loopback = { .port = WORKER_METRICS_PORT };
        testhttp_resp resp;

        cr_assert_eq(testhttp(&loopback,
                              &(testhttp_req){ "GET", "/metrics", NULL, NULL, NULL, NULL }, &resp),
                     0, "127.0.0.1:%d answered %ld", WORKER_METRICS_PORT, resp.status);
        testhttp_resp_free(&resp);
    }
    cr_assert_eq(promtext_sum(p, "usher_jobs_failed_total", ""), 4);
    cr_assert_eq(promtext_value(p, "usher_job_duration_seconds_count",
                                "pool=\"metered\",queue=\"work\",kind=\"test.noop\""),
                 10);
    cr_assert_geq(promtext_value(p, "usher_job_start_latency_seconds_count",
                                 "pool=\"metered\",queue=\"work\""),
                  13);
    cr_assert_geq(promtext_value(p, "usher_pool_size", "pool=\"metered\",state=\"desired\""), 2);
    cr_assert_geq(promtext_value(p, "usher_pool_size", "pool=\"metered\",state=\"current\""), 2);
    cr_assert_eq(promtext_value(p, "usher_database_up", "pool=\"metered\""), 1);
    promtext_free(p);
    kill(pid, SIGTERM);
    cr_assert(testproc_wait(pid, 60000, &status), "the worker did not stop");
    worker_pid = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker exit %d; see %s", status, log);
}

/* The API's /metrics is on its own listener: the public one answers 404 there. */
Test(metrics, the_apis_metrics_parse_and_move_with_requests_on_a_listener_of_their_own,
     .timeout = 300)
{
    testapi server, metrics_only;
    testhttp_resp resp;
    promtext *before, *after;
    const char *label = "route=\"/v1/events/{id}\",method=\"GET\",status=\"404\"";

    setenv("USHER_API_RATE_PER_MINUTE", "0", 1);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 1);
    metrics_only = (testapi){ .port = server.metrics_port };
    cr_assert_neq(server.metrics_port, server.port);
    cr_assert_eq(
        testhttp(&server, &(testhttp_req){ "GET", "/metrics", NULL, NULL, NULL, NULL }, &resp),
        404);
    testhttp_resp_free(&resp);
    cr_assert_eq(testhttp(&metrics_only,
                          &(testhttp_req){ "GET", "/v1/events/987654321", NULL, NULL, NULL, NULL },
                          &resp),
                 404, "the metrics listener serves only /metrics");
    testhttp_resp_free(&resp);
    testhttp(&server, &(testhttp_req){ "GET", "/v1/events/987654321", NULL, NULL, NULL, NULL },
             &resp);
    testhttp_resp_free(&resp);
    before = scrape(server.metrics_port, "/metrics");
    for (int i = 0; i < 3; i++) {
        testhttp(&server, &(testhttp_req){ "GET", "/v1/events/987654321", NULL, NULL, NULL, NULL },
                 &resp);
        testhttp_resp_free(&resp);
    }
    after = scrape(server.metrics_port, "/metrics");
    cr_assert_eq(promtext_value(after, "usher_http_requests_total", label) -
                     promtext_value(before, "usher_http_requests_total", label),
                 3);
    cr_assert_geq(promtext_samples(after), 10);
    /* Each lookup of the unknown event asked the database once at least. */
    cr_assert_geq(promtext_value(after, "usher_db_statement_duration_seconds_count", "") -
                      promtext_value(before, "usher_db_statement_duration_seconds_count", ""),
                  3);
    cr_assert_eq(promtext_value(after, "usher_db_statement_duration_seconds_bucket", "le=\"+Inf\""),
                 promtext_value(after, "usher_db_statement_duration_seconds_count", ""));
    cr_assert_eq(promtext_value(after, "usher_db_statement_queued_seconds_count", ""),
                 promtext_value(after, "usher_db_statement_duration_seconds_count", ""));
    cr_assert_geq(promtext_value(after, "usher_db_connections", "state=\"configured\""), 1);
    cr_assert_eq(promtext_value(after, "usher_redis_connections", "state=\"configured\""), 1);
    promtext_free(before);
    promtext_free(after);
    testapi_stop(&server);
}

typedef struct depth_seen {
    int port;
    double want;
} depth_seen;

static bool metered_depth_is(void *arg)
{
    depth_seen *d = arg;
    promtext *p = try_scrape(d->port);
    bool seen =
        p != NULL && promtext_value(p, "usher_pool_queue_depth", "pool=\"metered\"") == d->want;

    promtext_free(p);
    return seen;
}

/* What a supervisor's heartbeat writes: its pool's depth among the rest. */
static void heartbeat(const char *worker, const char *pool, long long depth)
{
    char sql[512];

    snprintf(sql, sizeof(sql),
             "SELECT usher_pool_heartbeat('%s', '%s', 'host', 1, 2, 2, 2, 4, 0, %lld, false, '',"
             " 0)",
             worker, pool, depth);
    testdb_exec(st, sql);
}

/*
 * A scrape never counts jobs: the depths are the supervisors' own counts
 * in usher_pools (the largest of a pool's live supervisors), read every few
 * seconds. With no job in usher_jobs at all, they can only come from there.
 */
Test(metrics, the_apis_queue_depths_are_the_pools_own_counts, .timeout = 300)
{
    testapi server;
    promtext *p;

    testdb_exec(st, "DELETE FROM usher_pools");
    heartbeat("host-a:1", "metered", 4242);
    heartbeat("host-b:1", "metered", 4240);
    heartbeat("host-a:2", "quiet", 0);
    heartbeat("host-a:3", "gone", 77);
    testdb_exec(st, "UPDATE usher_pools SET heartbeat_at = now() - interval '1 minute'"
                    " WHERE pool = 'gone'");
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 1);
    cr_assert(
        testproc_wait_for(metered_depth_is, &(depth_seen){ server.metrics_port, 4242 }, 30000),
        "usher_pool_queue_depth{pool=\"metered\"} never showed 4242");
    heartbeat("host-a:1", "metered", 17);
    heartbeat("host-b:1", "metered", 19);
    cr_assert(testproc_wait_for(metered_depth_is, &(depth_seen){ server.metrics_port, 19 }, 30000),
              "the next read never showed the new depth 19");
    p = scrape(server.metrics_port, "/metrics");
    cr_assert_eq(promtext_value(p, "usher_pool_queue_depth", "pool=\"quiet\""), 0);
    cr_assert_eq(promtext_value(p, "usher_pool_queue_depth", "pool=\"gone\""), -1,
                 "a pool whose supervisors are silent has no sample");
    cr_assert_eq(promtext_sum(p, "usher_queue_jobs", ""), 0, "the per-scrape job count is back");
    cr_assert_eq(promtext_value(p, "usher_database_up", ""), 1);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 0);
    promtext_free(p);
    testapi_stop(&server);
    testdb_exec(st, "DELETE FROM usher_pools");
}

static void start_worker(const char *log)
{
    const char *argv[] = { USHER_WORKER_PATH, "--config", METRICS_TEST_CONF,
                           "--pool",          "metered",  NULL };

    setenv("USHER_DATABASE_URL", cfg.database_url, 1);
    worker_pid = testproc_start(argv, log);
    cr_assert_gt(worker_pid, 0);
    atexit(kill_worker);
}

static void stop_worker(const char *log)
{
    int status;

    kill(worker_pid, SIGTERM);
    cr_assert(testproc_wait(worker_pid, 60000, &status), "the worker did not stop");
    worker_pid = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker exit %d; see %s", status, log);
}

typedef struct age_seen {
    double at_least, at_most; /* the oldest job's age in this range */
    double completed;         /* and this many test.noop completions */
} age_seen;

static bool work_age_is(void *arg)
{
    age_seen *a = arg;
    promtext *p = try_scrape(WORKER_METRICS_PORT);
    double age;
    bool seen;

    if (p == NULL)
        return false;
    age =
        promtext_value(p, "usher_queue_oldest_job_age_seconds", "pool=\"metered\",queue=\"work\"");
    seen = age >= a->at_least && age <= a->at_most &&
           promtext_sum(p, "usher_jobs_completed_total", "kind=\"test.noop\"") == a->completed;

    promtext_free(p);
    return seen;
}

/*
 * The oldest runnable job's age, for the "queue late" alert: a job due an
 * hour ago that no claim can take (the test holds its row lock, which the
 * claim's SKIP LOCKED passes over) shows as an hour old next to the queue's
 * budget (tier high: 30 s); once it runs, the age drops to 0.
 */
Test(metrics, a_pool_exports_its_queues_oldest_job_age_and_budget, .timeout = 300)
{
    char log[128];
    promtext *p;

    snprintf(log, sizeof(log), "/tmp/usher-metrics-age-%d.log", (int)getpid());
    enqueue("test.noop", "{}");
    testdb_exec(st, "UPDATE usher_jobs SET run_at = now() - interval '1 hour'");
    testdb_exec(st, "BEGIN");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM (SELECT id FROM usher_jobs FOR UPDATE) l"),
                 1);
    start_worker(log);
    cr_assert(testproc_wait_for(work_age_is, &(age_seen){ 3600, 3900, 0 }, 60000),
              "the held job never showed as an hour old; see %s", log);
    p = scrape(WORKER_METRICS_PORT, "/metrics");
    cr_assert_eq(
        promtext_value(p, "usher_queue_age_budget_seconds", "pool=\"metered\",queue=\"work\""), 30);
    cr_assert_eq(promtext_value(p, "usher_pool_size", "pool=\"metered\",state=\"max\""), 4);
    cr_assert_eq(promtext_value(p, "usher_pool_size", "pool=\"metered\",state=\"min\""), 2);
    cr_assert_eq(promtext_value(p, "usher_pool_scale_out_depth", "pool=\"metered\""), 100);
    /* The supervisor and two children: some megabytes resident, CPU use a fraction. */
    cr_assert_gt(promtext_value(p, "usher_pool_memory_bytes", "pool=\"metered\""), 3e6);
    cr_assert_geq(promtext_value(p, "usher_pool_cpu_ratio", "pool=\"metered\""), 0);
    cr_assert_leq(promtext_value(p, "usher_pool_cpu_ratio", "pool=\"metered\""), 1);
    promtext_free(p);
    testdb_exec(st, "COMMIT");
    cr_assert(testproc_wait_for(work_age_is, &(age_seen){ 0, 0, 1 }, 60000),
              "the job never ran, or its age never went back to 0; see %s", log);
    stop_worker(log);
}

/* The text of GET /metrics on port (fails the test unless 200). */
static char *scrape_text(int port)
{
    testapi where = metrics_at(port);
    testhttp_resp resp;
    char *text;

    cr_assert_eq(
        testhttp(&where, &(testhttp_req){ "GET", "/metrics", NULL, NULL, NULL, NULL }, &resp), 200);
    text = strdup(resp.body);
    cr_assert_not_null(text);
    testhttp_resp_free(&resp);
    return text;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *text;
    long n;

    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    cr_assert_gt(n, 0);
    rewind(f);
    text = malloc((size_t)n + 1);
    cr_assert_not_null(text);
    cr_assert_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    text[n] = '\0';
    fclose(f);
    return text;
}

/*
 * Every usher_* metric the alert rules and the Grafana dashboard name is one
 * a real usher-api or usher-worker exports (a histogram by its family
 * name): a renamed metric must not leave an alert that can never fire.
 */
static size_t check_names(const char *path, const char *api, const char *worker)
{
    static const char *const suffixes[] = { "_bucket", "_count", "_sum" };
    char *text = read_file(path);
    size_t checked = 0;

    for (const char *at = strstr(text, "usher_"); at != NULL; at = strstr(at, "usher_")) {
        char name[128], type[160];
        size_t n = strspn(at, "abcdefghijklmnopqrstuvwxyz_");

        if (at > text && (at[-1] == '_' || (at[-1] >= 'a' && at[-1] <= 'z'))) {
            at += n; /* inside another word */
            continue;
        }
        cr_assert_lt(n, sizeof(name));
        memcpy(name, at, n);
        name[n] = '\0';
        at += n;
        for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
            size_t len = strlen(name), sl = strlen(suffixes[i]);

            if (len > sl && strcmp(name + len - sl, suffixes[i]) == 0) {
                snprintf(type, sizeof(type), "# TYPE %.*s histogram\n", (int)(len - sl), name);
                if (strstr(api, type) != NULL || strstr(worker, type) != NULL)
                    name[len - sl] = '\0';
            }
        }
        snprintf(type, sizeof(type), "# TYPE %s ", name);
        cr_assert(strstr(api, type) != NULL || strstr(worker, type) != NULL,
                  "%s names %s, which neither usher-api nor usher-worker exports", path, name);
        checked++;
    }
    free(text);
    return checked;
}

Test(metrics, the_alerts_and_the_dashboard_name_only_exported_metrics, .timeout = 300)
{
    char log[128];
    testapi server;
    char *api, *worker;

    snprintf(log, sizeof(log), "/tmp/usher-metrics-names-%d.log", (int)getpid());
    start_worker(log);
    cr_assert(testproc_wait_for(work_age_is, &(age_seen){ 0, 0, 0 }, 60000),
              "the worker's first tick never came; see %s", log);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 1);
    api = scrape_text(server.metrics_port);
    worker = scrape_text(WORKER_METRICS_PORT);
    cr_assert_geq(check_names(USHER_SOURCE_DIR "/conf/prometheus/usher-alerts.yml", api, worker),
                  15);
    cr_assert_geq(check_names(USHER_SOURCE_DIR "/conf/grafana/usher.json", api, worker), 15);
    free(api);
    free(worker);
    testapi_stop(&server);
    stop_worker(log);
}

typedef struct fleet_seen {
    int port;
    double instances, launch, desired;
} fleet_seen;

static bool fleet_is(void *arg)
{
    fleet_seen *want = arg;
    promtext *p = try_scrape(want->port);
    bool seen = p != NULL &&
                promtext_value(p, "usher_api_fleet_instances", "") == want->instances &&
                promtext_value(p, "usher_api_launch_hold", "") == want->launch &&
                promtext_value(p, "usher_api_desired_instances", "") == want->desired;

    promtext_free(p);
    return seen;
}

/*
 * The API tier's scaling signals (api/fleet.c): each usher-api writes its
 * load to usher_api_hosts and reads the fleet's; alone it counts 1 instance
 * and asks for the minimum of 2; a second live row counts; an event whose
 * launch_at is near holds scale-in.
 */
Test(metrics, the_api_fleet_counts_its_instances_and_sees_a_launch, .timeout = 300)
{
    testapi server;
    promtext *p;
    double cpu, mem;

    testdb_exec(st, "DELETE FROM usher_api_hosts");
    testdb_exec(st, "UPDATE events SET launch_at = NULL");
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 1);
    cr_assert(testproc_wait_for(fleet_is, &(fleet_seen){ server.metrics_port, 1, 0, 2 }, 60000),
              "one instance alone never showed 1 instance, no launch, desired 2");
    testdb_exec(st, "INSERT INTO usher_api_hosts (id, cpu, mem, queue)"
                    " VALUES ('other-host:1', 0.5, 0.1, 3)");
    cr_assert(testproc_wait_for(fleet_is, &(fleet_seen){ server.metrics_port, 2, 0, 2 }, 60000),
              "the second instance's row never counted");
    testdb_exec(st, "INSERT INTO organizers (name) VALUES ('fleet test')");
    testdb_exec(st, "INSERT INTO events (organizer_id, name, starts_at, ends_at, launch_at)"
                    " SELECT max(id), 'launch', now() + interval '1 month',"
                    " now() + interval '1 month 1 day', now() + interval '10 minutes'"
                    " FROM organizers");
    cr_assert(testproc_wait_for(fleet_is, &(fleet_seen){ server.metrics_port, 2, 1, 2 }, 60000),
              "a launch 10 minutes away never held scale-in");
    p = scrape(server.metrics_port, "/metrics");
    cpu = promtext_value(p, "usher_api_cpu_ratio", "");
    mem = promtext_value(p, "usher_api_memory_ratio", "");
    cr_assert(cpu >= 0 && cpu <= 1, "cpu %f", cpu);
    cr_assert(mem > 0 && mem < 1, "memory %f", mem);
    cr_assert_geq(promtext_value(p, "usher_api_fleet_average", "signal=\"requests_waiting\""), 1.5,
                  "the other host's 3 waiting requests average in");
    promtext_free(p);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_api_hosts"), 2);
    testapi_stop(&server);
}

/* The parser itself must refuse what Prometheus would. */
Test(metrics, the_parser_refuses_malformed_text)
{
    const char *bad[] = {
        "no_type 1\n",
        "# TYPE a counter\na{x=\"1} 1\n",
        "# TYPE a counter\na 1\na 2\n",
        "# TYPE a counter\na{1x=\"y\"} 1\n",
        "# TYPE a gauge\na one\n",
        "# TYPE a counter\n# TYPE a counter\na 1\n",
        "# TYPE a counter\n# TYPE b counter\na 1\nb 1\na{x=\"2\"} 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
        "# TYPE a counter\na 1",
        "# TYPE a flavour\na 1\n",
    };
    char why[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        promtext *p = promtext_parse(bad[i], why, sizeof(why));

        cr_expect_null(p, "accepted malformed text #%zu:\n%s", i, bad[i]);
        promtext_free(p);
    }
    promtext *ok = promtext_parse("# HELP a A counter.\n# TYPE a counter\na{x=\"q\\\"\"} 1\n"
                                  "# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
                                  "h_bucket{le=\"+Inf\"} 2\nh_sum 3.5\nh_count 2\n",
                                  why, sizeof(why));
    cr_assert_not_null(ok, "%s", why);
    cr_assert_eq(promtext_value(ok, "h_count", ""), 2);
    promtext_free(ok);
}
