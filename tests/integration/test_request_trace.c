/*
 * One grep follows a registration (issue 16): the X-Request-Id of the
 * HTTP request is in usher-api's access line, goes with the jobs the
 * registration enqueued (usher_jobs.request_id, not the payload) and with
 * the email its ticket job chained, and usher-worker's line of each job
 * names it. Ticket codes and tokens never reach a log, and the
 * session-access route takes the code in X-Ticket-Code as well as in the
 * query string. The email also names its ticket job as its parent
 * (usher_jobs.parent_id), which the admins' job page shows. A real
 * usher-api and usher-worker on the chain configuration, with [api]
 * access_log and [worker] job_log on.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "enqueue.h"
#include "queues.h"
#include "testdb.h"
#include "testhttp.h"
#include "testmail.h"
#include "testproc.h"
#include "token.h"

TESTDB_SUITE(request_trace, "usher_test_request_trace");

#define DEADLINE_MS 60000
#define TRACE_ID    "lb-trace.2026:0001"

static testapi server;
static pid_t worker;
static char workdir[64], worker_log[128], prefix[64];
static long long event, ticket_type, session;
static char organizer[USHER_TOKEN_MAX];

static void start(void)
{
    long long org = testdb_organizer(st, "Tracer");
    testdb_event e = testdb_event_new(st, org, "Traced", 1, 100);
    char sql[256];
    int64_t id;

    event = e.id;
    ticket_type = e.ticket_type;
    snprintf(sql, sizeof(sql),
             "INSERT INTO sessions (event_id, title, starts_at, ends_at)"
             " SELECT id, 'Keynote', starts_at, ends_at FROM events WHERE id = %lld RETURNING id",
             event);
    session = testdb_scalar(st, sql);
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, org, 0, "t", organizer, &id),
                 USHER_OK);
    snprintf(prefix, sizeof(prefix), "trace%d-", (int)getpid());
    setenv("USHER_API_RATE_PER_MINUTE", "0", 1);
    setenv("USHER_API_ACCESS_LOG", "true", 1);
    setenv("USHER_API_TRUSTED_PROXIES", "127.0.0.1", 1); /* the test plays the proxy */
    setenv("USHER_WORKER_JOB_LOG", "true", 1);
    worker = testproc_start_worker(USHER_WORKER_PATH, CHAIN_TEST_CONF, "tests", cfg.database_url,
                                   "trace", workdir);
    snprintf(worker_log, sizeof(worker_log), "%s/worker.log", workdir);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 1);
}

static void stop(void)
{
    /* A test that paused a queue and failed midway leaves none paused behind. */
    cr_assert_eq(usher_queues_resume(st, "pdf"), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_eq(usher_queues_resume(st, "email"), USHER_OK, "%s", usher_store_errstr(st));
    testapi_stop(&server);
    if (worker > 0)
        testproc_stop_cleanly(worker);
}

/* Registers attendee i with the header (or none); the answer's ticket code into code. */
static void register_one(int i, const char *header, char code[128])
{
    char body[256], path[64];
    testhttp_resp resp;

    snprintf(body, sizeof(body),
             "{\"ticket_type_id\":%lld,\"name\":\"Attendee %d\",\"email\":\"%s%d@example.org\"}",
             ticket_type, i, prefix, i);
    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", event);
    cr_assert_eq(
        testhttp(&server, &(testhttp_req){ "POST", path, NULL, body, header, NULL }, &resp), 201,
        "%s", resp.body);
    snprintf(code, 128, "%s", json_string_value(json_object_get(resp.json, "ticket_code")));
    cr_assert(code[0] != '\0', "%s", resp.body);
    testhttp_resp_free(&resp);
}

typedef struct log_wait {
    const char *path, *text;
    int want;
} log_wait;

static bool lines_reached(void *arg)
{
    const log_wait *w = arg;

    return testproc_log_lines(w->path, w->text) >= w->want;
}

static void wait_lines(const char *path, const char *text, int want)
{
    log_wait w = { path, text, want };

    cr_assert(testproc_wait_for(lines_reached, &w, DEADLINE_MS), "%d lines \"%s\" in %s: %d", want,
              text, path, testproc_log_lines(path, text));
}

static bool mailed(void *arg)
{
    int counts[2];

    (void)arg;
    return testmail_count(prefix, counts, 2) == 2;
}

Test(request_trace, one_grep_follows_a_registration_from_the_request_to_its_email, .init = start,
     .fini = stop)
{
    char code[128], other[128];
    int counts[2];

    register_one(0, "X-Request-Id: " TRACE_ID, code);
    register_one(1, NULL, other);
    cr_assert(testproc_wait_for(mailed, NULL, DEADLINE_MS), "the confirmations never arrived");
    cr_assert_eq(testmail_count(prefix, counts, 2), 2);
    cr_assert_eq(counts[0], 1);
    cr_assert_eq(counts[1], 1);

    /* The request's line, then each job it caused, and the email its ticket chained. */
    wait_lines(server.log,
               "access request_id=" TRACE_ID " client=127.0.0.1 method=POST"
               " route=/v1/events/{id}/registrations status=201",
               1);
    wait_lines(worker_log, "kind=pdf.ticket queue=pdf attempt=1 outcome=ok", 2);
    wait_lines(worker_log, "kind=email.send queue=email attempt=1 outcome=ok", 2);
    cr_assert_eq(testproc_log_lines(worker_log, "request_id=" TRACE_ID), 3, /* + index.document */
                 "%s", worker_log);
    cr_assert_eq(testproc_log_lines(worker_log, "kind=pdf.ticket queue=pdf attempt=1 outcome=ok"),
                 2);
    cr_assert_eq(testproc_log_lines(worker_log, "kind=email.send queue=email attempt=1 outcome=ok"),
                 2);
    wait_lines(worker_log, "kind=index.document", 2);
    /* Exactly one line of each kind names the id: the other attendee's jobs have their own. */
    {
        static const char *const kinds[] = { "pdf.ticket", "email.send", "index.document" };

        for (size_t k = 0; k < 3; k++) {
            char line[256];
            FILE *f = fopen(worker_log, "r");
            int n = 0;

            cr_assert_not_null(f);
            while (fgets(line, sizeof(line), f) != NULL) {
                char want[64];

                snprintf(want, sizeof(want), "kind=%s ", kinds[k]);
                n += strstr(line, want) != NULL && strstr(line, "request_id=" TRACE_ID) != NULL;
            }
            fclose(f);
            cr_assert_eq(n, 1, "%s: %d lines with " TRACE_ID, kinds[k], n);
        }
    }
    cr_assert_eq(testproc_log_lines(server.log, TRACE_ID), 1, "%s", server.log);

    /* No ticket code and no token in either log. */
    cr_assert_eq(testproc_log_lines(server.log, code), 0);
    cr_assert_eq(testproc_log_lines(worker_log, code), 0);
    cr_assert_eq(testproc_log_lines(server.log, other), 0);
    cr_assert_eq(testproc_log_lines(worker_log, other), 0);
}

/*
 * A job several requests share (a registration batch's ticket job,
 * registration_ids with request_ids, 0038) has one line for each of them,
 * with its own id, so the grep for either request finds it.
 */
Test(request_trace, a_job_several_requests_share_has_a_line_naming_each, .init = start,
     .fini = stop)
{
    char code[128], payload[160], line_a[96], line_b[96];
    long long regs[2];
    usher_enqueued out;

    register_one(0, NULL, code);
    register_one(1, NULL, code);
    for (int i = 0; i < 2; i++)
        regs[i] = testdb_scalarf(
            st, "SELECT id FROM registrations WHERE email = '%s%d@example.org'", prefix, i);
    snprintf(payload, sizeof(payload),
             "{\"registration_ids\":[%lld,%lld],\"request_ids\":[\"t-share-a\",\"t-share-b\"]}",
             regs[0], regs[1]);
    cr_assert_eq(
        usher_enqueue(
            st, &(usher_enqueue_opts){ .queue = "pdf", .kind = "pdf.ticket", .payload = payload },
            &out),
        USHER_OK, "%s", usher_store_errstr(st));
    snprintf(line_a, sizeof(line_a), "job=%lld kind=pdf.ticket ", (long long)out.id);
    wait_lines(worker_log, line_a, 2);
    cr_assert_eq(testproc_log_lines(worker_log, line_a), 2, "one line a request");
    snprintf(line_a, sizeof(line_a), "job=%lld kind=pdf.ticket queue=pdf attempt=1 outcome=ok",
             (long long)out.id);
    cr_assert_eq(testproc_log_lines(worker_log, line_a), 2);
    cr_assert_eq(testproc_log_lines(worker_log, "request_id=t-share-a"), 1, "%s", worker_log);
    cr_assert_eq(testproc_log_lines(worker_log, "request_id=t-share-b"), 1, "%s", worker_log);
    snprintf(line_b, sizeof(line_b), "job=%lld ", (long long)out.id);
    cr_assert_eq(testproc_log_lines(worker_log, line_b), 2);
}

/* GET the session's access with path (query string or none) and header; the answer's reason. */
static long access_check(const char *path, const char *header, char reason[64])
{
    testhttp_resp resp;
    long status =
        testhttp(&server, &(testhttp_req){ "GET", path, NULL, NULL, header, NULL }, &resp);
    json_t *access = resp.json != NULL ? json_object_get(resp.json, "access") : NULL;

    snprintf(reason, 64, "%s",
             json_is_true(access) ? "yes"
             : resp.json != NULL && json_object_get(resp.json, "reason") != NULL
                 ? json_string_value(json_object_get(resp.json, "reason"))
                 : "");
    testhttp_resp_free(&resp);
    return status;
}

Test(request_trace, session_access_takes_the_ticket_code_in_a_header_and_logs_neither,
     .init = start, .fini = stop)
{
    char code[128], header[256], path[512], reason[64];
    testhttp_resp resp;

    register_one(0, NULL, code);
    snprintf(path, sizeof(path), "/v1/sessions/%lld/access", session);
    snprintf(header, sizeof(header), "X-Ticket-Code: %s", code);
    cr_assert_eq(access_check(path, header, reason), 200);
    cr_assert_str_eq(reason, "yes");
    cr_assert_eq(access_check(path, "X-Ticket-Code: forged", reason), 200);
    cr_assert_str_eq(reason, "invalid_code");
    cr_assert_eq(access_check(path, NULL, reason), 422);
    /* The query string wins when both are sent. */
    snprintf(path, sizeof(path), "/v1/sessions/%lld/access?ticket_code=forged", session);
    cr_assert_eq(access_check(path, header, reason), 200);
    cr_assert_str_eq(reason, "invalid_code");
    snprintf(path, sizeof(path), "/v1/sessions/%lld/access?ticket_code=%s", session, code);
    cr_assert_eq(access_check(path, NULL, reason), 200);
    cr_assert_str_eq(reason, "yes");

    /* An organizer's call with its token: the token is not logged either. */
    snprintf(path, sizeof(path), "/v1/events/%lld", event);
    cr_assert_eq(
        testhttp(&server, &(testhttp_req){ "GET", path, organizer, NULL, NULL, NULL }, &resp), 200,
        "%s", resp.body);
    testhttp_resp_free(&resp);
    wait_lines(server.log, "route=/v1/sessions/{id}/access status=200", 4);
    wait_lines(server.log, "route=/v1/events/{id} status=200", 1);
    cr_assert_eq(testproc_log_lines(server.log, code), 0);
    cr_assert_eq(testproc_log_lines(server.log, "forged"), 0);
    cr_assert_eq(testproc_log_lines(server.log, organizer), 0);
    cr_assert_eq(testproc_log_lines(worker_log, code), 0);
}

static bool ticket_done(void *arg)
{
    (void)arg;
    return testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'pdf.ticket'") == 0 &&
           testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"
                             " AND state = 'available'") == 1;
}

static bool one_mail(void *arg)
{
    int counts[1];

    (void)arg;
    return testmail_count(prefix, counts, 1) == 1 && counts[0] == 1;
}

/*
 * pdf.ticket's handler links the email it chains to itself: with the email
 * queue paused, the email waits with parent_id = the ticket job's id (and
 * the request's id), and GET /v1/admin/jobs/{id} answers that parent_id
 * with parent null, since the ticket job completed, and was deleted, in the
 * transaction that enqueued the email. Resumed, the email is sent once.
 */
Test(request_trace, a_ticket_jobs_email_names_it_as_its_parent, .init = start, .fini = stop)
{
    char code[128], admin[USHER_TOKEN_MAX], path[64], sql[256];
    long long ticket, email;
    testhttp_resp resp;
    int64_t token_id;
    int counts[1];

    cr_assert_eq(usher_token_create(st, USHER_ROLE_ADMIN, 0, 0, "a", admin, &token_id), USHER_OK,
                 "%s", usher_store_errstr(st));
    cr_assert_eq(usher_queues_pause(st, "pdf"), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_eq(usher_queues_pause(st, "email"), USHER_OK, "%s", usher_store_errstr(st));
    register_one(0, "X-Request-Id: " TRACE_ID, code);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'pdf.ticket'"), 1);
    ticket = testdb_scalar(st, "SELECT id FROM usher_jobs WHERE kind = 'pdf.ticket'"
                               " AND request_id = '" TRACE_ID "' AND parent_id IS NULL");
    cr_assert_gt(ticket, 0);
    cr_assert_eq(usher_queues_resume(st, "pdf"), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert(testproc_wait_for(ticket_done, NULL, DEADLINE_MS), "the ticket job never chained");

    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs WHERE parent_id = %lld AND kind = 'email.send'"
             " AND request_id = '" TRACE_ID "'",
             ticket);
    cr_assert_eq(testdb_scalar(st, sql), 1);
    email = testdb_scalar(st, "SELECT id FROM usher_jobs WHERE kind = 'email.send'");
    snprintf(path, sizeof(path), "/v1/admin/jobs/%lld", email);
    cr_assert_eq(testhttp(&server, &(testhttp_req){ "GET", path, admin, NULL, NULL, NULL }, &resp),
                 200, "%s", resp.body);
    cr_assert_eq(json_integer_value(json_object_get(resp.json, "parent_id")), ticket, "%s",
                 resp.body);
    cr_assert(json_is_null(json_object_get(resp.json, "parent")), "%s", resp.body);
    cr_assert_eq(json_array_size(json_object_get(resp.json, "children")), 0, "%s", resp.body);
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "state")), "available");
    testhttp_resp_free(&resp);
    snprintf(path, sizeof(path), "/v1/admin/jobs/%lld", ticket);
    cr_assert_eq(testhttp(&server, &(testhttp_req){ "GET", path, admin, NULL, NULL, NULL }, &resp),
                 404, "%s", resp.body);
    testhttp_resp_free(&resp);

    cr_assert_eq(usher_queues_resume(st, "email"), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert(testproc_wait_for(one_mail, NULL, DEADLINE_MS), "the confirmation never arrived");
    wait_lines(worker_log, "kind=email.send queue=email attempt=1 outcome=ok", 1);
    cr_assert_eq(testmail_count(prefix, counts, 1), 1);
    cr_assert_eq(counts[0], 1);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"), 0);
}
