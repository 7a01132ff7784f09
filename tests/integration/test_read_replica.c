/*
 * Read replicas, end to end: a private primary with a streaming standby
 * (tests/support/testpg.h) and the real usher-api on the primary with
 * [database] read_url on the standby (a multi-host URL that prefers it).
 * The event cache is off (read-replica-test.conf), so every public GET of
 * an event is one read, counted by /metrics as served by the replica or
 * the primary:
 * - with the standby current, every such read is served by it, and a
 *   registration (primary) works;
 * - the standby stopped: every GET still answers 200 (reads in flight are
 *   sent again to the primary, later ones go there at once), and once it
 *   is back reads return to it;
 * - replay paused on the standby, then a change on the primary: the
 *   replica is skipped within a bound, the organizer's own list shows the
 *   change at once and the public details within the bound; resumed, the
 *   replica serves again;
 * - replay delayed (recovery_min_apply_delay, not paused): the LSN
 *   measure sees the lag pass max_replica_lag_ms after a write and skips
 *   the replica until it catches up;
 * - a replica that fails reads but answers its checks: every read is sent
 *   again to the primary, and no client sees the error;
 * - off the loops (engine/replica_reader.h), the dashboard's statistics
 *   and a report job's rows read a replica once it has everything the
 *   primary has, and the primary while its replay is paused.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promtext.h"
#include "report.h"
#include "store.h"
#include "testdb.h"
#include "testhttp.h"
#include "testpg.h"
#include "testproc.h"
#include "token.h"

__attribute__((constructor)) static void use_test_config(void)
{
    setenv("USHER_CONFIG", READ_REPLICA_TEST_CONF, 1);
    /* Ports the kernel finds free: the test's many client connections leave
     * TIME_WAIT sockets on ephemeral ports, which a fixed port may be. */
    unsetenv("USHER_TEST_PG_PORT_BASE");
}

#define GETS        40
#define DEADLINE_MS 30000

static char root[96];
static testpg primary, standby;
static usher_config cfg;
static testapi server;
static long long event_id, ticket_type_id;
static char organizer[USHER_TOKEN_MAX];

static pid_t worker; /* the report test's usher-worker, 0 when none runs */

static void stop_all(void)
{
    testpg *servers[] = { &primary, &standby };

    if (worker > 0)
        testproc_kill(worker); /* a failed test left it running */
    worker = 0;
    testapi_stop(&server);
    testpg_cleanup(root, servers, 2);
    usher_config_free(&cfg);
    unsetenv("USHER_DATABASE_READ_URL");
}

/* The standby has replayed everything the primary wrote so far. */
static bool standby_caught_up(void *arg)
{
    char sql[160];
    long long lsn_text_ok;

    (void)arg;
    snprintf(sql, sizeof(sql), "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn");
    lsn_text_ok = testpg_scalar(&primary, sql);
    snprintf(sql, sizeof(sql), "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn >= %lld)::int",
             lsn_text_ok);
    return testpg_scalar(&standby, sql) == 1;
}

/* A primary with an event and an organizer token, a standby of it, usher-api on both. */
static void make_cluster(void)
{
    usher_store *st;
    long long org;
    int64_t token_id;
    char url[300], read_url[300];

    testpg_root(root, "replica");
    testpg_primary(&primary, root, "primary", testpg_port(0));
    testpg_migrate(&primary, &cfg);
    st = testdb_store(&cfg);
    org = testdb_organizer(st, "RR");
    testdb_event e = testdb_event_new(st, org, "Replicated", 1, 1000);
    event_id = e.id;
    ticket_type_id = e.ticket_type;
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, org, 0, "test", organizer, &token_id),
                 USHER_OK);
    usher_store_free(st);
    testpg_standby(&standby, &primary, root, "standby1", testpg_port(1));
    cr_assert(testproc_wait_for(standby_caught_up, NULL, DEADLINE_MS),
              "the standby never caught up");

    snprintf(url, sizeof(url), "postgresql://postgres@127.0.0.1:%d/usher?connect_timeout=2",
             primary.port);
    /* The standby, else the primary: libpq's own choice, as a deployment writes it. */
    snprintf(read_url, sizeof(read_url),
             "postgresql://postgres@127.0.0.1:%d,127.0.0.1:%d/usher"
             "?target_session_attrs=prefer-standby&connect_timeout=2",
             standby.port, primary.port);
    setenv("USHER_DATABASE_READ_URL", read_url, 1);
    testapi_start(&server, USHER_API_PATH, url, 2);
}

/* A sample of usher-api's /metrics (0 when absent). */
static double metric(const char *name, const char *labels)
{
    testhttp_resp resp;
    char why[256];
    promtext *p;
    double v;

    cr_assert_eq(testapi_scrape(&server, &resp), 200);
    p = promtext_parse(resp.body, why, sizeof(why));
    cr_assert_not_null(p, "%s", why);
    v = promtext_value(p, name, labels);
    promtext_free(p);
    testhttp_resp_free(&resp);
    return v < 0 && strcmp(name, "usher_db_replica_lag_ms") != 0 ? 0 : v;
}

static double served(const char *server_name)
{
    char labels[64];

    snprintf(labels, sizeof(labels), "server=\"%s\"", server_name);
    return metric("usher_db_reads_total", labels);
}

/* Every loop's replica connections are fresh (2 loops x 2 connections). */
static bool replica_fresh(void *arg)
{
    (void)arg;
    return metric("usher_db_replica_connections", "state=\"fresh\"") == 4;
}

static bool replica_skipped(void *arg)
{
    (void)arg;
    return metric("usher_db_replica_in_use", "") == 0;
}

/* GET /v1/events/{id} n times, each a 200 whose name is want (NULL: any); the count of 200s. */
static int get_event(int n, const char *want)
{
    char path[64], needle[128];
    int ok = 0;

    snprintf(path, sizeof(path), "/v1/events/%lld", event_id);
    snprintf(needle, sizeof(needle), "\"name\" : \"%s\"", want != NULL ? want : "");
    for (int i = 0; i < n; i++) {
        testhttp_resp resp;
        long status =
            testhttp(&server, &(testhttp_req){ "GET", path, NULL, NULL, NULL, NULL }, &resp);

        cr_expect_eq(status, 200, "GET %s answered %ld: %s", path, status, resp.body);
        if (status == 200 && (want == NULL || strstr(resp.body, needle) != NULL))
            ok++;
        testhttp_resp_free(&resp);
    }
    return ok;
}

/* The public details show the name want. */
static bool public_shows(void *arg)
{
    return get_event(1, arg) == 1;
}

static void register_one(const char *email)
{
    char path[96], body[256];
    testhttp_resp resp;
    long status;

    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", event_id);
    snprintf(body, sizeof(body), "{\"ticket_type_id\":%lld,\"name\":\"R\",\"email\":\"%s\"}",
             ticket_type_id, email);
    status = testhttp(&server, &(testhttp_req){ "POST", path, NULL, body, NULL, NULL }, &resp);
    cr_assert_eq(status, 201, "registration answered %ld: %s", status, resp.body);
    testhttp_resp_free(&resp);
}

static void rename_event(const char *name)
{
    char path[64], body[128];
    testhttp_resp resp;
    long status;

    snprintf(path, sizeof(path), "/v1/events/%lld", event_id);
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
    status =
        testhttp(&server, &(testhttp_req){ "PATCH", path, organizer, body, NULL, NULL }, &resp);
    cr_assert_eq(status, 200, "PATCH answered %ld: %s", status, resp.body);
    testhttp_resp_free(&resp);
}

/* The organizer's list (a primary route) shows name. */
static bool organizer_list_shows(const char *name)
{
    char needle[128];
    testhttp_resp resp;
    long status;
    bool found;

    snprintf(needle, sizeof(needle), "\"name\" : \"%s\"", name);
    status = testhttp(&server, &(testhttp_req){ "GET", "/v1/events", organizer, NULL, NULL, NULL },
                      &resp);
    cr_assert_eq(status, 200, "%s", resp.body);
    found = strstr(resp.body, needle) != NULL;
    testhttp_resp_free(&resp);
    return found;
}

/* n GETs; asserts how many the replica and the primary served. */
static void expect_served(int n, int by_replica, int by_primary)
{
    double replica0 = served("replica"), primary0 = served("primary");

    cr_assert_eq(get_event(n, NULL), n);
    cr_assert_eq(served("replica") - replica0, by_replica, "replica served %.0f of %d",
                 served("replica") - replica0, n);
    cr_assert_eq(served("primary") - primary0, by_primary, "primary served %.0f of %d",
                 served("primary") - primary0, n);
}

Test(read_replica, reads_go_to_a_fresh_replica_and_fall_back_to_the_primary_when_it_stops,
     .fini = stop_all, .timeout = 600)
{
    double replica0, primary0, fallbacks0;
    int ok;

    make_cluster();
    cr_assert(testproc_wait_for(replica_fresh, NULL, DEADLINE_MS),
              "the replica connections never became fresh; see %s", server.log);
    cr_assert_eq(metric("usher_db_replica_in_use", ""), 1);
    cr_assert_geq(metric("usher_db_replica_lag_ms", ""), 0, "lag %f",
                  metric("usher_db_replica_lag_ms", ""));
    expect_served(GETS, GETS, 0);
    cr_assert_geq(testpg_scalar(&standby,
                                "SELECT count(*) FROM pg_stat_activity"
                                " WHERE datname = 'usher' AND backend_type = 'client backend'"
                                " AND pid <> pg_backend_pid()"),
                  4, "usher-api's replica connections are not on the standby");
    register_one("rr-1@example.org");
    cr_assert_eq(testpg_scalar(&primary, "SELECT count(*) FROM registrations"), 1);

    /* Stopped: nothing fails, each GET is served exactly once by one or the other. */
    replica0 = served("replica");
    primary0 = served("primary");
    fallbacks0 = metric("usher_db_replica_fallbacks_total", "");
    testpg_stop(&standby);
    ok = get_event(GETS, "Replicated");
    cr_assert_eq(ok, GETS, "%d of %d GETs answered right with the replica stopped", ok, GETS);
    cr_assert_eq(served("replica") - replica0 + served("primary") - primary0, GETS);
    /* prefer-standby: with the standby gone libpq connects to the primary, which is current. */
    fprintf(stderr,
            "read_replica: standby stopped: %d GETs, %.0f by the replica pool, %.0f by the primary"
            " pool, %.0f sent again to the primary\n",
            GETS, served("replica") - replica0, served("primary") - primary0,
            metric("usher_db_replica_fallbacks_total", "") - fallbacks0);
    register_one("rr-2@example.org");

    testpg_start(&standby);
    cr_assert(testproc_wait_for(standby_caught_up, NULL, DEADLINE_MS));
    cr_assert(testproc_wait_for(replica_fresh, NULL, DEADLINE_MS), "the replica did not return");
    cr_assert_eq(get_event(GETS, "Replicated"), GETS);
    cr_assert_eq(testpg_scalar(&primary, "SELECT count(*) FROM registrations"), 2);
}

Test(read_replica, a_stopped_standby_only_replica_sends_every_read_to_the_primary, .fini = stop_all,
     .timeout = 600)
{
    char read_url[300];
    double fallbacks0;

    make_cluster();
    testapi_stop(&server);
    /* Only the standby: when it is gone there is no replica at all. */
    snprintf(read_url, sizeof(read_url),
             "postgresql://postgres@127.0.0.1:%d/usher?target_session_attrs=standby"
             "&connect_timeout=2",
             standby.port);
    setenv("USHER_DATABASE_READ_URL", read_url, 1);
    {
        char url[200];

        snprintf(url, sizeof(url), "postgresql://postgres@127.0.0.1:%d/usher", primary.port);
        testapi_start(&server, USHER_API_PATH, url, 2);
    }
    cr_assert(testproc_wait_for(replica_fresh, NULL, DEADLINE_MS), "see %s", server.log);
    expect_served(GETS, GETS, 0);

    fallbacks0 = metric("usher_db_replica_fallbacks_total", "");
    testpg_stop(&standby);
    cr_assert_eq(get_event(GETS, "Replicated"), GETS, "a GET failed with the replica stopped");
    cr_assert(testproc_wait_for(replica_skipped, NULL, DEADLINE_MS));
    expect_served(GETS, 0, GETS);
    cr_assert_eq(metric("usher_db_replica_connections", "state=\"up\""), 0);
    fprintf(stderr, "read_replica: standby-only URL: %.0f reads sent again to the primary\n",
            metric("usher_db_replica_fallbacks_total", "") - fallbacks0);

    testpg_start(&standby);
    cr_assert(testproc_wait_for(replica_fresh, NULL, DEADLINE_MS), "the replica did not return");
    expect_served(GETS, GETS, 0);
}

Test(read_replica, a_paused_replica_is_skipped_and_the_change_is_read_from_the_primary,
     .fini = stop_all, .timeout = 600)
{
    long long paused_at, skipped_at, shown_at;

    make_cluster();
    cr_assert(testproc_wait_for(replica_fresh, NULL, DEADLINE_MS), "see %s", server.log);
    expect_served(GETS, GETS, 0);

    testpg_exec(&standby, "SELECT pg_wal_replay_pause()");
    paused_at = testdb_now_ms();
    rename_event("Renamed while paused");
    /* Read-your-writes: the organizer's own list reads the primary. */
    cr_assert(organizer_list_shows("Renamed while paused"));
    cr_assert(testproc_wait_for(replica_skipped, NULL, DEADLINE_MS), "the paused replica is used");
    skipped_at = testdb_now_ms();
    cr_assert(testproc_wait_for(public_shows, (char[]){ "Renamed while paused" }, DEADLINE_MS));
    shown_at = testdb_now_ms();
    cr_assert_eq(testpg_scalar(&standby, "SELECT count(*) FROM events WHERE name = "
                                         "'Renamed while paused'"),
                 0, "the standby replayed while paused");
    expect_served(GETS, 0, GETS);
    cr_assert_eq(get_event(GETS, "Renamed while paused"), GETS);
    fprintf(stderr,
            "read_replica: paused: skipped after %lld ms, the change public after %lld ms\n",
            skipped_at - paused_at, shown_at - paused_at);
    cr_assert_lt(skipped_at - paused_at, 5000, "skipping the paused replica took too long");

    testpg_exec(&standby, "SELECT pg_wal_replay_resume()");
    cr_assert(testproc_wait_for(replica_fresh, NULL, DEADLINE_MS), "the replica did not return");
    expect_served(GETS, GETS, 0);
    cr_assert_eq(get_event(GETS, "Renamed while paused"), GETS);
}

/* The replica's lag as /metrics shows it passed max_replica_lag_ms (1000). */
static bool lag_seen(void *arg)
{
    (void)arg;
    return metric("usher_db_replica_lag_ms", "") > 1000;
}

Test(read_replica, a_replica_delayed_past_the_bound_is_skipped_until_it_catches_up,
     .fini = stop_all, .timeout = 600)
{
    long long wrote_at, skipped_at, back_at;

    make_cluster();
    testpg_exec(&standby, "ALTER SYSTEM SET recovery_min_apply_delay = '4s'");
    testpg_exec(&standby, "SELECT pg_reload_conf()");
    cr_assert(testproc_wait_for(replica_fresh, NULL, DEADLINE_MS), "see %s", server.log);
    /* Idle primary: a delayed replica that has everything is still fresh. */
    expect_served(GETS, GETS, 0);

    wrote_at = testdb_now_ms();
    rename_event("Renamed while delayed");
    cr_assert(testproc_wait_for(replica_skipped, NULL, DEADLINE_MS), "the delayed replica is used");
    skipped_at = testdb_now_ms();
    cr_assert(testproc_wait_for(lag_seen, NULL, DEADLINE_MS), "lag %f",
              metric("usher_db_replica_lag_ms", ""));
    cr_assert_eq(get_event(1, "Renamed while delayed"), 1, "a stale read after the skip");
    cr_assert(testproc_wait_for(replica_fresh, NULL, DEADLINE_MS), "the replica did not return");
    back_at = testdb_now_ms();
    cr_assert_eq(get_event(GETS, "Renamed while delayed"), GETS);
    fprintf(stderr, "read_replica: delayed 4 s: skipped after %lld ms, back after %lld ms\n",
            skipped_at - wrote_at, back_at - wrote_at);
    cr_assert_lt(skipped_at - wrote_at, 3000, "the lag was not seen in time");
}

static bool a_read_fell_back(void *arg)
{
    double before = *(double *)arg;

    cr_assert_eq(get_event(1, "Replicated"), 1);
    return metric("usher_db_replica_fallbacks_total", "") > before;
}

/*
 * A replica that fails reads while it answers its checks (its search_path
 * lost, so the tables are not found there): each read is sent again to the
 * primary and the client gets the primary's answer, never the error.
 */
Test(read_replica, a_read_the_replica_fails_is_answered_by_the_primary, .fini = stop_all,
     .timeout = 600)
{
    double replica0, primary0, fallbacks0;

    make_cluster();
    cr_assert(testproc_wait_for(replica_fresh, NULL, DEADLINE_MS), "see %s", server.log);
    expect_served(GETS, GETS, 0);
    fallbacks0 = metric("usher_db_replica_fallbacks_total", "");
    cr_assert_eq(fallbacks0, 0);
    testpg_exec(&standby, "ALTER SYSTEM SET search_path = 'nowhere'");
    testpg_exec(&standby, "SELECT pg_reload_conf()");
    /* Each backend applies the reload at its next statement: the checks (every
     * 100 ms on every connection) bring them all to it. */
    cr_assert(testproc_wait_for(a_read_fell_back, &fallbacks0, DEADLINE_MS), "see %s", server.log);
    cr_assert(testproc_wait_for(replica_fresh, NULL, DEADLINE_MS));

    replica0 = served("replica");
    primary0 = served("primary");
    fallbacks0 = metric("usher_db_replica_fallbacks_total", "");
    cr_assert_eq(get_event(GETS, "Replicated"), GETS, "a GET failed with the replica failing");
    cr_assert_eq(metric("usher_db_replica_fallbacks_total", "") - fallbacks0, GETS);
    cr_assert_eq(served("primary") - primary0, GETS);
    cr_assert_eq(served("replica") - replica0, 0);
    cr_assert_eq(metric("usher_db_replica_in_use", ""), 1, "the checks failed too");
}

/* ---- reads off the loops: the dashboard's statistics, report jobs -------- */

/*
 * The standby applies each commit 300 ms after it was made: a read that did
 * not wait for the primary's LSN would see the state before the caller's
 * own last change (well within max_replica_lag_ms, so the wait is taken).
 */
static void replay_delayed(void)
{
    testpg_exec(&standby, "ALTER SYSTEM SET recovery_min_apply_delay = '300ms'");
    testpg_exec(&standby, "SELECT pg_reload_conf()");
}

/* GET /v1/admin/queues as an admin; whether the reports queue shows paused. */
static bool dashboard_shows_paused(const char *admin)
{
    testhttp_resp resp;
    json_t *body, *q;
    size_t i;
    bool paused = false;
    long status = testhttp(
        &server, &(testhttp_req){ "GET", "/v1/admin/queues", admin, NULL, NULL, NULL }, &resp);

    cr_assert_eq(status, 200, "GET /v1/admin/queues answered %ld: %s", status, resp.body);
    body = json_loads(resp.body, 0, NULL);
    cr_assert_not_null(body, "%s", resp.body);
    json_array_foreach(json_object_get(body, "queues"), i, q)
    {
        if (strcmp(json_string_value(json_object_get(q, "name")), "reports") == 0)
            paused = json_is_true(json_object_get(q, "paused"));
    }
    json_decref(body);
    testhttp_resp_free(&resp);
    return paused;
}

static void post_admin(const char *admin, const char *path)
{
    testhttp_resp resp;
    long status =
        testhttp(&server, &(testhttp_req){ "POST", path, admin, NULL, NULL, NULL }, &resp);

    cr_assert_eq(status, 200, "POST %s answered %ld: %s", path, status, resp.body);
    testhttp_resp_free(&resp);
}

typedef struct dashboard_read {
    const char *admin;
    bool paused; /* what the read must show */
} dashboard_read;

/* One dashboard read, served by the replica, shows what it must. */
static bool dashboard_read_by_replica(void *arg)
{
    const dashboard_read *d = arg;
    double replica0 = served("replica");
    bool paused = dashboard_shows_paused(d->admin);

    cr_assert_eq(paused, d->paused, "the dashboard shows the reports queue paused=%d", paused);
    return served("replica") - replica0 == 1;
}

/*
 * The dashboard's statistics run on usher-api's offload threads, whose
 * replica reader waits until the replica has everything the primary has
 * (engine/replica_reader.h): a read there shows the admin's own pause at
 * once, from the replica while it replays (300 ms behind), from the
 * primary while its replay is paused.
 */
Test(read_replica, the_dashboard_reads_a_caught_up_replica_and_sees_its_own_pause, .fini = stop_all,
     .timeout = 600)
{
    char admin[USHER_TOKEN_MAX];
    int64_t token_id;
    usher_store *st;
    double replica0, primary0;
    long long t0;

    make_cluster();
    replay_delayed();
    st = testdb_store(&cfg);
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ADMIN, 0, 0, "admin", admin, &token_id),
                 USHER_OK);
    usher_store_free(st);
    cr_assert(testproc_wait_for(dashboard_read_by_replica,
                                &(dashboard_read){ .admin = admin, .paused = false }, DEADLINE_MS),
              "no dashboard read was served by the replica; see %s", server.log);

    /* Paused on the primary, read back at once: the replica waited for it. */
    post_admin(admin, "/v1/admin/queues/reports/pause");
    replica0 = served("replica");
    primary0 = served("primary");
    cr_assert(dashboard_shows_paused(admin), "the dashboard does not show its own pause");
    cr_assert_eq(served("replica") - replica0, 1, "the read after the pause was not the replica's");
    cr_assert_eq(served("primary") - primary0, 0);

    /* Replay paused: the change is read from the primary, and promptly. */
    testpg_exec(&standby, "SELECT pg_wal_replay_pause()");
    post_admin(admin, "/v1/admin/queues/reports/resume");
    primary0 = served("primary");
    t0 = testdb_now_ms();
    cr_assert_not(dashboard_shows_paused(admin), "a stale read: the resume is not shown");
    cr_assert_eq(served("primary") - primary0, 1, "the paused replica served the read");
    cr_assert_lt(testdb_now_ms() - t0, 5000, "the read waited for a paused replica");

    testpg_exec(&standby, "SELECT pg_wal_replay_resume()");
    cr_assert(testproc_wait_for(dashboard_read_by_replica,
                                &(dashboard_read){ .admin = admin, .paused = false }, DEADLINE_MS),
              "the replica never served the dashboard again; see %s", server.log);
}

static long long report_id;

static bool report_done(void *arg)
{
    char sql[128];

    (void)arg;
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM reports WHERE id = %lld AND state = 'done'",
             report_id);
    return testpg_scalar(&primary, sql) == 1;
}

/* Requests an attendee report of the event; its rows once done (fails the test otherwise). */
static long long run_report(const char *worker_log)
{
    usher_report_request req = { .event_id = event_id, .kind = "attendees", .format = "csv" };
    usher_store *st = testdb_store(&cfg);
    int64_t id, job;
    char sql[128];

    cr_assert_eq(usher_report_create(st, &req, &id, &job), USHER_OK, "%s", usher_store_errstr(st));
    usher_store_free(st);
    report_id = id;
    cr_assert(testproc_wait_for(report_done, NULL, DEADLINE_MS), "report %lld not done; see %s",
              report_id, worker_log);
    snprintf(sql, sizeof(sql), "SELECT rows FROM reports WHERE id = %lld", report_id);
    return testpg_scalar(&primary, sql);
}

/* Lines of the worker's log that say where report report_id read its rows. */
static int report_read_from(const char *worker_log, const char *server_name)
{
    char needle[96];

    snprintf(needle, sizeof(needle), "report=%lld rows_from=%s", report_id, server_name);
    return testproc_log_lines(worker_log, needle);
}

/*
 * A report job's rows come from the replica once it has everything the
 * primary had when the job started (the standby's own statement log shows
 * the report's reads there), and every registration is in the report even
 * when they were written just before; with the replica's replay paused
 * they come from the primary, complete.
 */
Test(read_replica, a_report_reads_its_rows_from_a_caught_up_replica, .fini = stop_all,
     .timeout = 600)
{
    char url[200], workdir[64], worker_log[96];
    usher_store *st;
    const char *count_sql = "SELECT count(*), coalesce(max(id), 0) FROM registrations";

    make_cluster();
    replay_delayed();
    testpg_exec(&standby, "ALTER SYSTEM SET log_statement = 'all'");
    testpg_exec(&standby, "SELECT pg_reload_conf()");
    snprintf(url, sizeof(url), "postgresql://postgres@127.0.0.1:%d/usher", primary.port);
    worker = testproc_start_worker(USHER_WORKER_PATH, READ_REPLICA_TEST_CONF, "tests", url,
                                   "replica-reports", workdir);
    snprintf(worker_log, sizeof(worker_log), "%s/worker.log", workdir);

    /* Written just before the request: the replica must have them. */
    st = testdb_store(&cfg);
    testdb_exec(st, "INSERT INTO registrations (event_id, ticket_type_id, name, email)"
                    " SELECT e.id, t.id, 'R' || i, 'r' || i || '@example.org'"
                    " FROM events e JOIN ticket_types t ON t.event_id = e.id,"
                    " generate_series(1, 2500) i");
    usher_store_free(st);
    cr_assert_eq(run_report(worker_log), 2500);
    cr_assert_eq(report_read_from(worker_log, "replica"), 1, "see %s", worker_log);
    cr_assert_geq(testproc_log_lines(standby.log, count_sql), 1,
                  "the report's count is not in the standby's log %s", standby.log);

    testpg_exec(&standby, "SELECT pg_wal_replay_pause()");
    st = testdb_store(&cfg);
    testdb_exec(st, "INSERT INTO registrations (event_id, ticket_type_id, name, email)"
                    " SELECT e.id, t.id, 'P' || i, 'p' || i || '@example.org'"
                    " FROM events e JOIN ticket_types t ON t.event_id = e.id,"
                    " generate_series(1, 500) i");
    usher_store_free(st);
    cr_assert_eq(run_report(worker_log), 3000, "the paused replica's rows were reported");
    cr_assert_eq(report_read_from(worker_log, "primary"), 1, "see %s", worker_log);
    testpg_exec(&standby, "SELECT pg_wal_replay_resume()");
    testproc_stop_cleanly(worker);
    worker = 0;
}
