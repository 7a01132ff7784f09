/*
 * The admins' dashboard API over real HTTP: queues with their counts and
 * series, jobs with a cursor, one job's payload and errors, retry /
 * discard / cancel, bulk dead-job actions with a dry run and their record,
 * pause and resume, and the pools' heartbeats. Only admins get in.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enqueue.h"
#include "testdb.h"
#include "testhttp.h"
#include "token.h"

TESTDB_SUITE(api_admin, "usher_test_api_admin");

static testapi server;
static char admin[USHER_TOKEN_MAX], organizer[USHER_TOKEN_MAX], scanner[USHER_TOKEN_MAX];

static void start(void)
{
    int64_t id;
    long long org = testdb_scalar(st, "INSERT INTO organizers (name) VALUES ('O') RETURNING id");

    cr_assert_eq(usher_token_create(st, USHER_ROLE_ADMIN, 0, 0, "ops", admin, &id), USHER_OK);
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, org, 0, "o", organizer, &id),
                 USHER_OK);
    cr_assert_eq(usher_token_create(st, USHER_ROLE_SCANNER, org, 0, "s", scanner, &id), USHER_OK);
    setenv("USHER_API_RATE_PER_MINUTE", "0", 1);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 2);
}

static void stop(void)
{
    testapi_stop(&server);
}

static long call(const char *method, const char *path, const char *tok, const char *body,
                 testhttp_resp *out)
{
    return testhttp(&server, &(testhttp_req){ method, path, tok, body, NULL, NULL }, out);
}

static long long enqueue(const char *queue, const char *kind)
{
    usher_enqueued out;

    cr_assert_eq(usher_enqueue(st,
                               &(usher_enqueue_opts){ .queue = queue,
                                                      .kind = kind,
                                                      .payload = "{\"to\":\"x@example.org\"}" },
                               &out),
                 USHER_OK, "%s", usher_store_errstr(st));
    return out.id;
}

static long long dead_job(const char *queue, const char *kind, const char *error)
{
    long long id = enqueue(queue, kind);
    char sql[512];

    snprintf(sql, sizeof(sql),
             "UPDATE usher_jobs SET state = 'dead', attempt = 3, finished_at = now(),"
             " errors = jsonb_build_array(jsonb_build_object('attempt', 3, 'error', '%s'))"
             " WHERE id = %lld",
             error, id);
    testdb_exec(st, sql);
    return id;
}

static json_t *queue_named(json_t *body, const char *name)
{
    json_t *q;
    size_t i;

    json_array_foreach(json_object_get(body, "queues"), i, q)
    {
        if (strcmp(json_string_value(json_object_get(q, "name")), name) == 0)
            return q;
    }
    return NULL;
}

Test(api_admin, only_admins_get_in, .init = start, .fini = stop)
{
    const char *routes[][2] = {
        { "GET", "/v1/admin/queues" },
        { "GET", "/v1/admin/jobs" },
        { "GET", "/v1/admin/jobs/1" },
        { "POST", "/v1/admin/jobs/1/retry" },
        { "POST", "/v1/admin/jobs/1/cancel" },
        { "POST", "/v1/admin/jobs/1/discard" },
        { "POST", "/v1/admin/queues/email/pause" },
        { "GET", "/v1/admin/pools" },
        { "GET", "/v1/admin/actions" },
        { "POST", "/v1/admin/dead/retry" },
        { "POST", "/v1/admin/dead/discard" },
        { "POST", "/v1/admin/queues/email/resume" },
        { "GET", "/v1/admin/webhooks/deliveries" },
        { "POST", "/v1/admin/webhooks/deliveries/1/replay" },
    };

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        testhttp_resp resp;
        const char *body = strcmp(routes[i][0], "POST") == 0 ? "{}" : NULL;

        cr_expect_eq(call(routes[i][0], routes[i][1], NULL, body, &resp), 401, "%s %s",
                     routes[i][0], routes[i][1]);
        testhttp_resp_free(&resp);
        cr_expect_eq(call(routes[i][0], routes[i][1], organizer, body, &resp), 403, "%s %s",
                     routes[i][0], routes[i][1]);
        testhttp_resp_free(&resp);
        cr_expect_eq(call(routes[i][0], routes[i][1], scanner, body, &resp), 403, "%s %s",
                     routes[i][0], routes[i][1]);
        testhttp_resp_free(&resp);
    }
}

Test(api_admin, queues_show_counts_series_and_pause_state, .init = start, .fini = stop)
{
    testhttp_resp resp;
    json_t *email;

    enqueue("email", "email.send");
    dead_job("email", "email.send", "smtp 554 rejected");
    testdb_exec(st, "INSERT INTO usher_queue_stats (queue, minute, shard, completed, failed)"
                    " VALUES ('email', date_trunc('minute', now()), 0, 30, 10)");
    cr_assert_eq(call("GET", "/v1/admin/queues", admin, NULL, &resp), 200, "%s", resp.body);
    email = queue_named(resp.json, "email");
    cr_assert_not_null(email, "%s", resp.body);
    cr_assert_eq(json_integer_value(json_object_get(email, "available")), 1);
    cr_assert_eq(json_integer_value(json_object_get(email, "dead")), 1);
    cr_assert_eq(json_array_size(json_object_get(email, "series")), 1, "%s", resp.body);
    cr_assert_float_eq(json_real_value(json_object_get(email, "error_rate")), 0.25, 1e-9);
    cr_assert_str_eq(json_string_value(json_object_get(email, "pool")), "standard");
    testhttp_resp_free(&resp);

    cr_assert_eq(call("POST", "/v1/admin/queues/email/pause", admin, NULL, &resp), 200, "%s",
                 resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_queues WHERE name = 'email'"
                                   " AND paused"),
                 1);
    cr_assert_eq(call("POST", "/v1/admin/queues/email/resume", admin, NULL, &resp), 200);
    testhttp_resp_free(&resp);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_queues WHERE name = 'email'"
                                   " AND paused"),
                 0);
    cr_assert_eq(call("POST", "/v1/admin/queues/nosuchqueue/pause", admin, NULL, &resp), 404, "%s",
                 resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("POST", "/v1/admin/queues/Bad%20Name/pause", admin, NULL, &resp), 404);
    testhttp_resp_free(&resp);
}

Test(api_admin, jobs_page_by_cursor_and_single_jobs_are_retried_discarded_or_cancelled,
     .init = start, .fini = stop)
{
    long long dead[3], live;
    char path[128];
    testhttp_resp resp;
    json_t *cursor;

    for (int i = 0; i < 3; i++)
        dead[i] = dead_job("email", "email.send", "smtp 421 try later");
    live = enqueue("pdf", "pdf.ticket");
    cr_assert_eq(call("GET", "/v1/admin/jobs?state=dead&limit=2", admin, NULL, &resp), 200, "%s",
                 resp.body);
    cr_assert_eq(json_array_size(json_object_get(resp.json, "jobs")), 2);
    cursor = json_object_get(resp.json, "next_cursor");
    cr_assert_eq(json_integer_value(cursor), dead[1], "%s", resp.body);
    snprintf(path, sizeof(path), "/v1/admin/jobs?state=dead&limit=2&cursor=%lld",
             (long long)json_integer_value(cursor));
    testhttp_resp_free(&resp);
    cr_assert_eq(call("GET", path, admin, NULL, &resp), 200);
    cr_assert_eq(json_array_size(json_object_get(resp.json, "jobs")), 1);
    cr_assert(json_is_null(json_object_get(resp.json, "next_cursor")));
    testhttp_resp_free(&resp);
    cr_assert_eq(call("GET", "/v1/admin/jobs?state=nonsense", admin, NULL, &resp), 422);
    testhttp_resp_free(&resp);

    snprintf(path, sizeof(path), "/v1/admin/jobs/%lld", dead[0]);
    cr_assert_eq(call("GET", path, admin, NULL, &resp), 200);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(resp.json, "errors"), 0), "error")),
                     "smtp 421 try later");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(resp.json, "payload"), "to")),
        "x@example.org");
    testhttp_resp_free(&resp);
    cr_assert_eq(call("GET", "/v1/admin/jobs/987654321", admin, NULL, &resp), 404);
    testhttp_resp_free(&resp);

    snprintf(path, sizeof(path), "/v1/admin/jobs/%lld/retry", dead[0]);
    cr_assert_eq(call("POST", path, admin, NULL, &resp), 200, "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("POST", path, admin, NULL, &resp), 409, "%s", resp.body);
    testhttp_resp_free(&resp);
    snprintf(path, sizeof(path), "/v1/admin/jobs/%lld/discard", dead[1]);
    cr_assert_eq(call("POST", path, admin, NULL, &resp), 200, "%s", resp.body);
    testhttp_resp_free(&resp);
    snprintf(path, sizeof(path), "/v1/admin/jobs/%lld/cancel", live);
    cr_assert_eq(call("POST", path, admin, NULL, &resp), 200, "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("POST", path, admin, NULL, &resp), 409, "%s", resp.body);
    testhttp_resp_free(&resp);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs WHERE (id = %lld AND state = 'available')"
             " OR (id = %lld AND state = 'cancelled') OR id = %lld",
             dead[0], live, dead[1]);
    cr_assert_eq(testdb_scalar(st, sql), 2);
}

Test(api_admin, bulk_dead_actions_have_a_dry_run_and_are_recorded, .init = start, .fini = stop)
{
    testhttp_resp resp;

    for (int i = 0; i < 4; i++)
        dead_job("email", "email.send", "smtp 554 rejected");
    dead_job("email", "email.send", "connection refused");
    dead_job("pdf", "pdf.ticket", "smtp 554 rejected");
    cr_assert_eq(call("POST", "/v1/admin/dead/retry", admin,
                      "{\"queue\":\"email\",\"error\":\"554\",\"dry_run\":true}", &resp),
                 200, "%s", resp.body);
    cr_assert_eq(json_integer_value(json_object_get(resp.json, "count")), 4, "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'dead'"), 6);
    cr_assert_eq(call("POST", "/v1/admin/dead/retry", admin,
                      "{\"queue\":\"email\",\"error\":\"554\"}", &resp),
                 200, "%s", resp.body);
    cr_assert_eq(json_integer_value(json_object_get(resp.json, "count")), 4);
    testhttp_resp_free(&resp);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'dead'"), 2);
    cr_assert_eq(call("POST", "/v1/admin/dead/discard", admin, "{\"kind\":\"pdf.ticket\"}", &resp),
                 200, "%s", resp.body);
    cr_assert_eq(json_integer_value(json_object_get(resp.json, "count")), 1);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("POST", "/v1/admin/dead/retry", admin, "{\"since\":\"yesterday\"}", &resp),
                 422);
    testhttp_resp_free(&resp);
    /* The epoch would read as "no bound" and widen the filter to every dead job. */
    cr_assert_eq(call("POST", "/v1/admin/dead/discard", admin,
                      "{\"until\":\"1970-01-01T00:00:00Z\"}", &resp),
                 422);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("GET", "/v1/admin/jobs?limit=5abc", admin, NULL, &resp), 422);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("POST", "/v1/admin/dead/retry", admin, "{\"dry_run\":\"yes\"}", &resp), 422);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("GET", "/v1/admin/actions", admin, NULL, &resp), 200);
    cr_assert_eq(json_array_size(json_object_get(resp.json, "actions")), 3, "%s", resp.body);
    json_t *first = json_array_get(json_object_get(resp.json, "actions"), 2);
    cr_assert(json_is_true(json_object_get(first, "dry_run")));
    cr_assert_eq(json_integer_value(json_object_get(first, "count")), 4);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(first, "filter"), "error")),
                     "554");
    cr_assert(strncmp(json_string_value(json_object_get(first, "actor")), "token:", 6) == 0);
    testhttp_resp_free(&resp);
}

Test(api_admin, pools_show_every_supervisor_and_which_are_stale, .init = start, .fini = stop)
{
    testhttp_resp resp;
    json_t *pools;

    testdb_exec(st, "DELETE FROM usher_pools");
    testdb_exec(st, "INSERT INTO usher_pools (worker_id, pool, host, pid, current_size,"
                    " desired_size, granted_size, min_size, max_size, busy, depth, leader,"
                    " heartbeat_at) VALUES"
                    " ('h1:10', 'standard', 'h1', 10, 4, 6, 6, 2, 10, 3, 700, true, now()),"
                    " ('h2:20', 'standard', 'h2', 20, 2, 2, 2, 2, 10, 0, 700, false,"
                    "  now() - interval '1 minute')");
    cr_assert_eq(call("GET", "/v1/admin/pools", admin, NULL, &resp), 200, "%s", resp.body);
    pools = json_object_get(resp.json, "pools");
    cr_assert_eq(json_array_size(pools), 2);
    cr_assert(json_is_false(json_object_get(json_array_get(pools, 0), "stale")));
    cr_assert(json_is_true(json_object_get(json_array_get(pools, 1), "stale")));
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(pools, 0), "desired")), 6);
    testhttp_resp_free(&resp);
}

Test(api_admin, webhook_deliveries_are_listed_and_replayed_as_new_jobs, .init = start, .fini = stop)
{
    char sql[512], path[128];
    long long org, endpoint, delivery, disabled_delivery;
    testhttp_resp resp;

    org = testdb_scalar(st, "INSERT INTO organizers (name) VALUES ('W') RETURNING id");
    snprintf(sql, sizeof(sql),
             "INSERT INTO webhook_endpoints (organizer_id, url, events, secret)"
             " VALUES (%lld, 'https://hooks.example.org/a', '{registration.created}', 's')"
             " RETURNING id",
             org);
    endpoint = testdb_scalar(st, sql);
    snprintf(sql, sizeof(sql),
             "INSERT INTO webhook_deliveries (endpoint_id, attempt, event, payload, status_code,"
             " latency_ms, error) VALUES (%lld, 1, 'registration.created',"
             " '{\"data\": {\"registration_id\": 7}}', 500, 12, 'HTTP 500')"
             " RETURNING id",
             endpoint);
    delivery = testdb_scalar(st, sql);
    snprintf(sql, sizeof(sql),
             "WITH e AS (INSERT INTO webhook_endpoints (organizer_id, url, events, secret, enabled,"
             " disabled_reason) VALUES (%lld, 'https://gone.example.org', '{}', 's', false,"
             " 'HTTP 410') RETURNING id)"
             " INSERT INTO webhook_deliveries (endpoint_id, attempt, event, payload)"
             " SELECT id, 1, 'registration.created', '{}' FROM e RETURNING id",
             org);
    disabled_delivery = testdb_scalar(st, sql);

    snprintf(path, sizeof(path), "/v1/admin/webhooks/deliveries?endpoint=%lld", endpoint);
    cr_assert_eq(call("GET", path, admin, NULL, &resp), 200, "%s", resp.body);
    cr_assert_eq(json_array_size(json_object_get(resp.json, "deliveries")), 1, "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("GET", path, organizer, NULL, &resp), 403);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("GET", "/v1/admin/webhooks/deliveries?limit=0", admin, NULL, &resp), 422);
    testhttp_resp_free(&resp);

    snprintf(path, sizeof(path), "/v1/admin/webhooks/deliveries/%lld/replay", delivery);
    cr_assert_eq(call("POST", path, admin, NULL, &resp), 200, "%s", resp.body);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs WHERE id = %lld AND kind = 'notify.webhook'"
             " AND (payload->>'endpoint_id')::bigint = %lld"
             " AND payload->'data'->>'registration_id' = '7'",
             (long long)json_integer_value(json_object_get(resp.json, "job_id")), endpoint);
    testhttp_resp_free(&resp);
    cr_assert_eq(testdb_scalar(st, sql), 1);
    snprintf(path, sizeof(path), "/v1/admin/webhooks/deliveries/%lld/replay", disabled_delivery);
    cr_assert_eq(call("POST", path, admin, NULL, &resp), 422, "%s", resp.body);
    cr_assert(strstr(resp.body, "disabled") != NULL, "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("POST", "/v1/admin/webhooks/deliveries/987654321/replay", admin, NULL, &resp),
                 404);
    testhttp_resp_free(&resp);
}

Test(api_admin, a_filter_time_without_an_offset_is_refused_naming_the_field, .init = start,
     .fini = stop)
{
    static const char *const cases[][2] = {
        { "{\"since\":\"2026-11-27\"}", "since" },
        { "{\"until\":\"2026-11-27T18:00:00\"}", "until" },
        { "{\"since\":\"2026-11-27T18:00:00.5\"}", "since" },
    };
    testhttp_resp resp;

    dead_job("email", "email.send", "550");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(call("POST", "/v1/admin/dead/retry", admin, cases[i][0], &resp), 422, "%s",
                     resp.body);
        cr_assert_str_eq(
            json_string_value(json_object_get(json_object_get(resp.json, "error"), "field")),
            cases[i][1], "%s", resp.body);
        testhttp_resp_free(&resp);
    }
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'dead'"), 1);
}
