/*
 * The dashboard's job pages over real HTTP (issue 16): the job list's
 * filters (organizer, time range, kind and state) and keyset pages, a
 * job's attempts with their durations, its chain and the admins' actions
 * on it, and retry / cancel / discard of every job a filter matches, with
 * a dry run whose count and highest id bound the action, audited in the
 * action's transaction. Bad filters are 422 naming the field; only admins
 * get in.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "claim.h"
#include "enqueue.h"
#include "testdb.h"
#include "testhttp.h"
#include "token.h"

TESTDB_SUITE(api_admin_jobs, "usher_test_api_admin_jobs");

static testapi server;
static char admin[USHER_TOKEN_MAX], organizer[USHER_TOKEN_MAX], scanner[USHER_TOKEN_MAX];

static void start(void)
{
    int64_t id;
    long long org = testdb_organizer(st, "Tokens Ltd");

    cr_assert_eq(usher_token_create(st, USHER_ROLE_ADMIN, 0, 0, "ops", admin, &id), USHER_OK);
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, org, 0, "o", organizer, &id),
                 USHER_OK);
    cr_assert_eq(usher_token_create(st, USHER_ROLE_SCANNER, org, 0, "s", scanner, &id), USHER_OK);
    testdb_exec(st, "DELETE FROM audit_log");
    setenv("USHER_API_RATE_PER_MINUTE", "0", 1);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 2);
}

static void stop(void)
{
    testapi_stop(&server);
}

static long call(const char *method, const char *path, const char *body, testhttp_resp *out)
{
    return testhttp(&server, &(testhttp_req){ method, path, admin, body, NULL, NULL }, out);
}

static long long enqueue_full(const char *kind, const char *payload, long long parent)
{
    usher_enqueued out;

    cr_assert_eq(
        usher_enqueue(st,
                      &(usher_enqueue_opts){
                          .queue = "email", .kind = kind, .payload = payload, .parent_id = parent },
                      &out),
        USHER_OK, "%s", usher_store_errstr(st));
    return out.id;
}

static long long enqueue(const char *kind)
{
    return enqueue_full(kind, "{}", 0);
}

static long long dead_job(const char *kind, const char *error)
{
    long long id = enqueue(kind);
    char sql[512];

    snprintf(sql, sizeof(sql),
             "UPDATE usher_jobs SET state = 'dead', attempt = 3, finished_at = now(),"
             " errors = jsonb_build_array(jsonb_build_object('attempt', 3, 'error', '%s'))"
             " WHERE id = %lld",
             error, id);
    testdb_exec(st, sql);
    return id;
}

/* GET path: 200 and the number of jobs on the page. */
static size_t listed(const char *path)
{
    testhttp_resp resp;
    size_t n;

    cr_assert_eq(call("GET", path, NULL, &resp), 200, "%s: %s", path, resp.body);
    n = json_array_size(json_object_get(resp.json, "jobs"));
    testhttp_resp_free(&resp);
    return n;
}

/* method path body answers 422 invalid naming field. */
static void refused(const char *method, const char *path, const char *body, const char *field)
{
    testhttp_resp resp;
    json_t *error;

    cr_assert_eq(call(method, path, body, &resp), 422, "%s %s %s: %s", method, path,
                 body ? body : "", resp.body);
    error = json_object_get(resp.json, "error");
    cr_assert_str_eq(json_string_value(json_object_get(error, "code")), "invalid");
    cr_assert_str_eq(json_string_value(json_object_get(error, "field")), field, "%s %s: %s", method,
                     path, resp.body);
    testhttp_resp_free(&resp);
}

/* POST /v1/admin/jobs/ACTION body: 200, its count, and its max_id into *max_id. */
static long long bulk(const char *action, const char *body, long long *max_id)
{
    char path[64];
    testhttp_resp resp;
    long long count;

    snprintf(path, sizeof(path), "/v1/admin/jobs/%s", action);
    cr_assert_eq(call("POST", path, body, &resp), 200, "%s %s: %s", path, body, resp.body);
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "action")), action);
    count = json_integer_value(json_object_get(resp.json, "count"));
    if (max_id != NULL)
        *max_id = json_integer_value(json_object_get(resp.json, "max_id"));
    testhttp_resp_free(&resp);
    return count;
}

Test(api_admin_jobs, only_admins_act_on_filtered_sets, .init = start, .fini = stop)
{
    const char *paths[] = { "/v1/admin/jobs/retry", "/v1/admin/jobs/cancel",
                            "/v1/admin/jobs/discard" };

    enqueue("test.noop");
    for (size_t i = 0; i < 3; i++) {
        testhttp_resp resp;
        const char *toks[] = { NULL, organizer, scanner };
        long want[] = { 401, 403, 403 };

        for (size_t t = 0; t < 3; t++) {
            cr_expect_eq(testhttp(&server,
                                  &(testhttp_req){ "POST", paths[i], toks[t], "{}", NULL, NULL },
                                  &resp),
                         want[t], "%s as caller %zu", paths[i], t);
            testhttp_resp_free(&resp);
        }
    }
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'available'"), 1);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM audit_log"), 0);
}

Test(api_admin_jobs, the_list_filters_by_organizer_time_kind_and_state_a_page_at_a_time,
     .init = start, .fini = stop)
{
    long long a = testdb_organizer(st, "A"), b = testdb_organizer(st, "B");
    testdb_event ea = testdb_event_new(st, a, "A's", 2, 10),
                 eb = testdb_event_new(st, b, "B's", 2, 10);
    char payload[64], path[256];
    long long old;

    snprintf(payload, sizeof(payload), "{\"event_id\":%lld}", ea.id);
    for (int i = 0; i < 3; i++)
        enqueue_full("analytics.rollup", payload, 0);
    snprintf(payload, sizeof(payload), "{\"event_id\":%lld}", eb.id);
    for (int i = 0; i < 2; i++)
        enqueue_full("pdf.badge", payload, 0);
    enqueue_full("email.send", "{\"to\":\"x@example.org\",\"template\":\"t\",\"vars\":{}}", 0);
    old = dead_job("email.send", "smtp 554");
    testdb_exec(st, "UPDATE usher_jobs SET created_at = '2020-01-01T00:00:00Z',"
                    " finished_at = '2020-01-02T00:00:00Z' WHERE state = 'dead'");

    snprintf(path, sizeof(path), "/v1/admin/jobs?organizer_id=%lld", a);
    cr_assert_eq(listed(path), 3);
    snprintf(path, sizeof(path), "/v1/admin/jobs?organizer_id=%lld&kind=pdf.badge", b);
    cr_assert_eq(listed(path), 2);
    snprintf(path, sizeof(path), "/v1/admin/jobs?organizer_id=%lld&kind=pdf.badge", a);
    cr_assert_eq(listed(path), 0);
    cr_assert_eq(listed("/v1/admin/jobs"), 7);
    cr_assert_eq(listed("/v1/admin/jobs?state=available"), 6);
    cr_assert_eq(listed("/v1/admin/jobs?state=dead&kind=email.send"), 1);
    cr_assert_eq(listed("/v1/admin/jobs?until=2021-01-01T00:00:00Z"), 1);
    cr_assert_eq(listed("/v1/admin/jobs?since=2020-01-02T00:00:00Z&until=2020-01-02T00:00:01Z"), 1);
    cr_assert_eq(listed("/v1/admin/jobs?since=2021-01-01T01:00:00%2B01:00"), 6);
    cr_assert_eq(listed("/v1/admin/jobs?since=@1577923201"), 6); /* 2020-01-02T00:00:01Z */

    /* Keyset pages of 3 over the 7 jobs: 3, 3, 1, each id once, newest first. */
    long long seen = 0, last = 0;
    size_t pages = 0;
    json_t *cursor = NULL;

    snprintf(path, sizeof(path), "/v1/admin/jobs?limit=3");
    for (;;) {
        testhttp_resp resp;
        json_t *job;
        size_t i;

        cr_assert_eq(call("GET", path, NULL, &resp), 200, "%s", resp.body);
        json_array_foreach(json_object_get(resp.json, "jobs"), i, job)
        {
            long long id = json_integer_value(json_object_get(job, "id"));

            cr_assert(last == 0 || id < last, "%lld after %lld", id, last);
            last = id;
            seen++;
        }
        pages++;
        cursor = json_object_get(resp.json, "next_cursor");
        if (json_is_null(cursor)) {
            testhttp_resp_free(&resp);
            break;
        }
        snprintf(path, sizeof(path), "/v1/admin/jobs?limit=3&cursor=%lld",
                 (long long)json_integer_value(cursor));
        testhttp_resp_free(&resp);
    }
    cr_assert_eq(seen, 7);
    cr_assert_eq(pages, 3);
    cr_assert_eq(last, testdb_scalar(st, "SELECT min(id) FROM usher_jobs"));
    cr_assert_gt(old, 0);

    refused("GET", "/v1/admin/jobs?state=finished", NULL, "state");
    refused("GET", "/v1/admin/jobs?organizer_id=abc", NULL, "organizer_id");
    refused("GET", "/v1/admin/jobs?organizer_id=0", NULL, "organizer_id");
    refused("GET", "/v1/admin/jobs?since=yesterday", NULL, "since");
    refused("GET", "/v1/admin/jobs?since=2021-01-01", NULL, "since"); /* no offset */
    refused("GET", "/v1/admin/jobs?until=2021-01-01T00:00:00", NULL, "until");
    refused("GET", "/v1/admin/jobs?until=@x", NULL, "until");
    refused("GET", "/v1/admin/jobs?limit=0", NULL, "limit");
    refused("GET", "/v1/admin/jobs?cursor=-1", NULL, "cursor");
}

/* Claims the job of queue email as worker w and fails it with error (outcome o). */
static void claim_and_fail(const char *error, usher_outcome o)
{
    const char *queues[] = { "email" };
    usher_job *jobs = NULL;
    size_t n = 0, updated = 0;

    cr_assert_eq(usher_claim(st, queues, 1, "w1", 1, &jobs, &n), USHER_OK, "%s",
                 usher_store_errstr(st));
    cr_assert_eq(n, 1);
    usher_job_result r = { .job = &jobs[0], .outcome = o, .delay_ms = 0, .error = error };
    cr_assert_eq(usher_fail(st, "w1", &r, 1, &updated), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_eq(updated, 1);
    usher_jobs_free(jobs, n);
}

Test(api_admin_jobs, a_job_shows_its_attempts_chain_and_actions, .init = start, .fini = stop)
{
    long long parent = enqueue("test.fail"), child[2];
    char path[128];
    testhttp_resp resp;
    json_t *attempts, *a;

    testdb_exec(st, "UPDATE usher_jobs SET max_attempts = 2");
    claim_and_fail("first try: timeout", USHER_OUTCOME_RETRY);
    testdb_exec(st, "UPDATE usher_jobs SET run_at = now()");
    claim_and_fail("second try: refused", USHER_OUTCOME_RETRY);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'dead'"), 1);
    child[0] = enqueue_full("email.send", "{}", parent);
    child[1] = enqueue_full("email.send", "{}", parent);
    enqueue("email.send");

    snprintf(path, sizeof(path), "/v1/admin/jobs/%lld", parent);
    cr_assert_eq(call("GET", path, NULL, &resp), 200, "%s", resp.body);
    attempts = json_object_get(resp.json, "attempts");
    cr_assert_eq(json_array_size(attempts), 2, "%s", resp.body);
    a = json_array_get(attempts, 0);
    cr_assert_eq(json_integer_value(json_object_get(a, "attempt")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(a, "error")), "first try: timeout");
    cr_assert_str_eq(json_string_value(json_object_get(a, "worker")), "w1");
    cr_assert(json_is_string(json_object_get(a, "started_at")), "%s", resp.body);
    cr_assert(json_is_integer(json_object_get(a, "duration_ms")), "%s", resp.body);
    cr_assert_geq(json_integer_value(json_object_get(a, "duration_ms")), 0);
    a = json_array_get(attempts, 1);
    cr_assert_eq(json_integer_value(json_object_get(a, "attempt")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(a, "error")), "second try: refused");
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "state")), "dead");
    cr_assert(json_is_null(json_object_get(resp.json, "parent")));
    cr_assert_eq(json_array_size(json_object_get(resp.json, "children")), 2, "%s", resp.body);
    for (size_t i = 0; i < 2; i++)
        cr_assert_eq(json_integer_value(json_object_get(
                         json_array_get(json_object_get(resp.json, "children"), i), "id")),
                     child[i]);
    cr_assert_eq(json_array_size(json_object_get(resp.json, "actions")), 0);
    testhttp_resp_free(&resp);

    snprintf(path, sizeof(path), "/v1/admin/jobs/%lld", child[1]);
    cr_assert_eq(call("GET", path, NULL, &resp), 200, "%s", resp.body);
    cr_assert_eq(json_integer_value(json_object_get(resp.json, "parent_id")), parent);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(resp.json, "parent"), "id")),
                 parent);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(resp.json, "parent"), "state")), "dead");
    cr_assert_eq(json_array_size(json_object_get(resp.json, "attempts")), 0);
    testhttp_resp_free(&resp);

    /* The retry is audited and shows on the job's timeline; the history stays. */
    snprintf(path, sizeof(path), "/v1/admin/jobs/%lld/retry", parent);
    cr_assert_eq(call("POST", path, NULL, &resp), 200, "%s", resp.body);
    testhttp_resp_free(&resp);
    snprintf(path, sizeof(path), "/v1/admin/jobs/%lld", parent);
    for (long long deadline = testdb_now_ms() + 10000;;) {
        cr_assert_eq(call("GET", path, NULL, &resp), 200, "%s", resp.body);
        if (json_array_size(json_object_get(resp.json, "actions")) == 1 ||
            testdb_now_ms() > deadline)
            break;
        testhttp_resp_free(&resp);
    }
    cr_assert_eq(json_array_size(json_object_get(resp.json, "actions")), 1, "%s", resp.body);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(resp.json, "actions"), 0), "action")),
                     "POST /v1/admin/jobs/{id}/retry");
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "state")), "available");
    cr_assert_eq(json_array_size(json_object_get(resp.json, "attempts")), 2);
    testhttp_resp_free(&resp);

    cr_assert_eq(call("GET", "/v1/admin/jobs/987654321", NULL, &resp), 404);
    testhttp_resp_free(&resp);
}

Test(api_admin_jobs, a_filtered_cancel_acts_on_what_its_dry_run_counted, .init = start,
     .fini = stop)
{
    long long max_id = 0, last = 0, count;
    const char *queues[] = { "email" };
    usher_job *running = NULL;
    size_t n = 0;

    /* One running job of the kind (claimed first, so it is the oldest). */
    enqueue("test.noop");
    cr_assert_eq(usher_claim(st, queues, 1, "w1", 1, &running, &n), USHER_OK);
    cr_assert_eq(n, 1);
    usher_jobs_free(running, n);
    for (int i = 0; i < 7; i++)
        last = enqueue("test.noop");
    for (int i = 0; i < 3; i++)
        enqueue("test.sleep");

    count = bulk("cancel", "{\"kind\":\"test.noop\",\"dry_run\":true}", &max_id);
    cr_assert_eq(count, 7);
    cr_assert_eq(max_id, last);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'cancelled'"), 0);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM audit_log"), 0, "a dry run is recorded");

    /* Two more arrive after the count: the confirmed action leaves them alone. */
    enqueue("test.noop");
    enqueue("test.noop");
    char body[128];

    snprintf(body, sizeof(body), "{\"kind\":\"test.noop\",\"queue\":\"email\",\"max_id\":%lld}",
             max_id);
    cr_assert_eq(bulk("cancel", body, NULL), 7);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'cancelled'"), 7);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'available'"
                                   " AND kind = 'test.noop'"),
                 2);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'available'"
                                   " AND kind = 'test.sleep'"),
                 3);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'running'"), 1);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM audit_log WHERE action = 'jobs.cancel'"
                                   " AND target = 'usher_jobs' AND role = 'admin'"
                                   " AND (after->>'count')::int = 7"
                                   " AND after->'filter'->>'kind' = 'test.noop'"),
                 1);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM audit_log"), 1);

    /* A state the action does not apply to matches nothing; the rest are cancelled. */
    cr_assert_eq(bulk("cancel", "{\"state\":\"dead\"}", NULL), 0);
    cr_assert_eq(bulk("cancel", "{\"kind\":\"test.noop\",\"state\":\"available\"}", NULL), 2);
    cr_assert_eq(bulk("cancel", "{\"kind\":null}", NULL), 3);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'cancelled'"),
                 12);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM audit_log"), 4);
}

Test(api_admin_jobs, filtered_retries_and_discards_touch_dead_jobs_only, .init = start,
     .fini = stop)
{
    long long a = testdb_organizer(st, "A");
    testdb_event ea = testdb_event_new(st, a, "A's", 2, 10);
    char payload[64], body[128];

    for (int i = 0; i < 4; i++)
        dead_job("test.fail", "boom");
    dead_job("email.send", "smtp 550 no such user");
    dead_job("email.send", "SMTP 550 mailbox full");
    dead_job("email.send", "tls handshake");
    enqueue("test.fail");
    snprintf(payload, sizeof(payload), "{\"event_id\":%lld}", ea.id);
    enqueue_full("analytics.rollup", payload, 0);
    testdb_exec(st, "UPDATE usher_jobs SET state = 'dead', finished_at = now()"
                    " WHERE kind = 'analytics.rollup'");

    cr_assert_eq(bulk("retry", "{\"kind\":\"test.fail\",\"dry_run\":true}", NULL), 4);
    cr_assert_eq(bulk("retry", "{\"kind\":\"test.fail\"}", NULL), 4);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'test.fail'"
                                   " AND state = 'available' AND attempt = 0"),
                 5);
    cr_assert_eq(bulk("discard", "{\"q\":\"smtp 550\"}", NULL), 2);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"), 1);
    snprintf(body, sizeof(body), "{\"organizer_id\":%lld}", a);
    cr_assert_eq(bulk("retry", body, NULL), 1);
    cr_assert_eq(bulk("discard", "{\"state\":\"available\"}", NULL), 0);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'dead'"), 1);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM audit_log WHERE action = 'jobs.retry'"),
                 2);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM audit_log WHERE action = 'jobs.discard'"),
                 2);

    refused("POST", "/v1/admin/jobs/retry", "{\"state\":\"gone\"}", "state");
    refused("POST", "/v1/admin/jobs/cancel", "{\"organizer_id\":\"x\"}", "organizer_id");
    refused("POST", "/v1/admin/jobs/cancel", "{\"max_id\":0}", "max_id");
    refused("POST", "/v1/admin/jobs/discard", "{\"since\":\"soon\"}", "since");
    refused("POST", "/v1/admin/jobs/discard", "{\"kind\":\"\"}", "kind");
    refused("POST", "/v1/admin/jobs/retry", "{\"dry_run\":\"yes\"}", "dry_run");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM audit_log"), 4);
}
