/*
 * Messages to attendees and event cancellation, end to end: a real
 * usher-api takes the requests, a real usher-worker fans them out (pool
 * fanout) and another mails them through the stack's SMTP sink (pool
 * mail). The test counts, per attendee, the mails in the Maildir that carry
 * the message's subject, the inbox rows and the ledger, and kills the
 * fan-out worker with SIGKILL halfway through 2,000 attendees to see that
 * its successor mails nobody twice.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testdb.h"
#include "testhttp.h"
#include "testmail.h"
#include "testproc.h"
#include "ticket.h"
#include "token.h"

__attribute__((constructor)) static void use_test_config(void)
{
    setenv("USHER_CONFIG", MESSAGES_TEST_CONF, 1);
}

TESTDB_SUITE(messages, "usher_test_messages");

#define DEADLINE_MS 240000
#define BIG         2000

static testapi server;
static pid_t fanout_worker, mail_worker;
static char fanout_dir[64], mail_dir[64];
static char run_id[32];

typedef struct world {
    long long org, other_org, event, ga, vip;
    char admin[USHER_TOKEN_MAX], organizer[USHER_TOKEN_MAX], other[USHER_TOKEN_MAX];
} world;

static long long scalar(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long scalar(const char *fmt, ...)
{
    char sql[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return testdb_scalar(st, sql);
}

static void token(usher_role role, long long org, char out[USHER_TOKEN_MAX])
{
    int64_t id;

    cr_assert_eq(usher_token_create(st, role, org, 0, "test", out, &id), USHER_OK, "%s",
                 usher_store_errstr(st));
}

/* An organizer's event with ticket types GA and VIP, and a second organizer. */
static void make_world(world *w, const char *name)
{
    w->org = scalar("INSERT INTO organizers (name) VALUES ('Org A') RETURNING id");
    w->other_org = scalar("INSERT INTO organizers (name) VALUES ('Org B') RETURNING id");
    w->event = scalar("INSERT INTO events (organizer_id, name, venue, starts_at, ends_at)"
                      " VALUES (%lld, '%s', 'Hall 1', now() + interval '1 day',"
                      " now() + interval '2 days') RETURNING id",
                      w->org, name);
    w->ga = scalar("INSERT INTO ticket_types (event_id, name, capacity) VALUES (%lld, 'GA', 10000)"
                   " RETURNING id",
                   w->event);
    w->vip = scalar("INSERT INTO ticket_types (event_id, name, capacity) VALUES (%lld, 'VIP', 1000)"
                    " RETURNING id",
                    w->event);
    token(USHER_ROLE_ADMIN, 0, w->admin);
    token(USHER_ROLE_ORGANIZER, w->org, w->organizer);
    token(USHER_ROLE_ORGANIZER, w->other_org, w->other);
}

/*
 * n attendees of w's event, in registration id order: attendee i has the
 * address PREFIXi@example.org, ticket type VIP when vip_from <= i, GA
 * before; every third (i % 3 == 0) is checked in.
 */
static void add_attendees(const world *w, const char *prefix, int n, int vip_from)
{
    char sql[1024];

    snprintf(sql, sizeof(sql),
             "INSERT INTO registrations (event_id, ticket_type_id, name, email)"
             " SELECT %lld, CASE WHEN g >= %d THEN %lld ELSE %lld END, 'Guest ' || g,"
             " '%s' || g || '@example.org' FROM generate_series(0, %d) g ORDER BY g",
             w->event, vip_from, w->vip, w->ga, prefix, n - 1);
    testdb_exec(st, sql);
    snprintf(sql, sizeof(sql),
             "INSERT INTO scans (event_id, registration_id, result)"
             " SELECT r.event_id, r.id, 'ok' FROM registrations r"
             " WHERE r.event_id = %lld AND r.email LIKE '%s%%'"
             " AND split_part(substr(r.email, %zu), '@', 1)::int %% 3 = 0",
             w->event, prefix, strlen(prefix) + 1);
    testdb_exec(st, sql);
}

static void start_workers(void)
{
    fanout_worker = testproc_start_worker(USHER_WORKER_PATH, MESSAGES_TEST_CONF, "fanout",
                                          cfg.database_url, "msg-fanout", fanout_dir);
    mail_worker = testproc_start_worker(USHER_WORKER_PATH, MESSAGES_TEST_CONF, "mail",
                                        cfg.database_url, "msg-mail", mail_dir);
}

static void start(void)
{
    snprintf(run_id, sizeof(run_id), "%lx%x", (unsigned long)time(NULL), (unsigned)getpid());
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 2);
}

static void stop_all(void)
{
    testapi_stop(&server);
    if (fanout_worker > 0)
        testproc_stop_cleanly(fanout_worker);
    if (mail_worker > 0)
        testproc_stop_cleanly(mail_worker);
    fanout_worker = mail_worker = 0;
}

static long call(const char *method, const char *path, const char *tok, const char *body,
                 testhttp_resp *out)
{
    return testhttp(&server, &(testhttp_req){ method, path, tok, body, NULL, NULL }, out);
}

/* Posts a message to w's event; its id (the answer must be 202). */
static long long post_message(const world *w, const char *subject, const char *audience)
{
    char path[96], body[512];
    testhttp_resp resp;
    long long id;

    snprintf(path, sizeof(path), "/v1/events/%lld/messages", w->event);
    snprintf(body, sizeof(body),
             "{\"subject\":\"%s\",\"body\":\"Hello,\\n\\n**Doors** open at 8.\\n- coffee\","
             "\"audience\":%s}",
             subject, audience);
    call("POST", path, w->organizer, body, &resp);
    cr_assert_eq(resp.status, 202, "%s: %ld %s", subject, resp.status, resp.body);
    id = json_integer_value(json_object_get(resp.json, "message_id"));
    cr_assert_gt(id, 0);
    testhttp_resp_free(&resp);
    return id;
}

/* The message's progress record: field of GET /v1/messages/{id}. */
static long long progress(const world *w, long long message, const char *field)
{
    char path[128];
    testhttp_resp resp;
    long long v;

    snprintf(path, sizeof(path), "/v1/messages/%lld", message);
    call("GET", path, w->organizer, NULL, &resp);
    cr_assert_eq(resp.status, 200, "%s", resp.body);
    v = json_integer_value(json_object_get(resp.json, field));
    testhttp_resp_free(&resp);
    return v;
}

typedef struct expecting {
    const world *w;
    long long message;
    int want;
} expecting;

/* The message's fan-out is done and every email it enqueued was sent or died. */
static bool settled(void *arg)
{
    const expecting *x = arg;

    return scalar("SELECT count(*) FROM event_messages WHERE id = %lld AND state = 'done'",
                  x->message) == 1 &&
           progress(x->w, x->message, "sent") + progress(x->w, x->message, "failed") >= x->want &&
           scalar("SELECT count(*) FROM usher_jobs WHERE kind IN ('email.send', 'message.fanout')"
                  " AND state IN ('available', 'running')") == 0;
}

static void wait_settled(const world *w, long long message, int want)
{
    expecting x = { w, message, want };

    cr_assert(testproc_wait_for(settled, &x, DEADLINE_MS),
              "message %lld: %lld of %d sent, state %lld", message, progress(w, message, "sent"),
              want, scalar("SELECT batches FROM event_messages WHERE id = %lld", message));
}

/* Each attendee i < n got exactly (selected(i) ? 1 : 0) mails with the subject. */
static void assert_mailed(const char *prefix, const char *subject, int n, bool (*selected)(int i),
                          int want)
{
    int *counts = calloc((size_t)n, sizeof(int)),
        total = testmail_count_subject(prefix, subject, counts, n);

    cr_assert_not_null(counts);
    for (int i = 0; i < n; i++)
        cr_assert_eq(counts[i], selected(i) ? 1 : 0, "%s: attendee %d got %d mails", subject, i,
                     counts[i]);
    cr_assert_eq(total, want, "%s: %d mails", subject, total);
    free(counts);
}

static bool everyone(int i)
{
    (void)i;
    return true;
}

static bool vip(int i)
{
    return i >= 200;
}

static bool checked_in(int i)
{
    return i % 3 == 0;
}

static bool ga_not_checked_in(int i)
{
    return i < 200 && i % 3 != 0;
}

Test(messages, a_message_reaches_its_audience_once_by_mail_and_inbox, .init = start,
     .fini = stop_all, .timeout = 600)
{
    static const struct {
        const char *name;
        bool (*selected)(int i);
        int want;
    } cases[] = {
        { "All", everyone, 300 },
        { "VIP", vip, 100 },
        { "In", checked_in, 100 },
        { "Rest", ga_not_checked_in, 133 },
    };
    char audiences[4][128];
    world w;
    char prefix[64], subject[64], path[128];
    long long stopped, ids[4];

    make_world(&w, "Launch");
    snprintf(prefix, sizeof(prefix), "msg-%s-", run_id);
    add_attendees(&w, prefix, 300, 200);

    /* Stopped before any worker runs: it never mails anyone. */
    snprintf(subject, sizeof(subject), "Stopped %s", run_id);
    stopped = post_message(&w, subject, "\"all\"");
    snprintf(path, sizeof(path), "/v1/messages/%lld/cancel", stopped);
    for (int k = 0; k < 2; k++) {
        testhttp_resp resp;

        call("POST", path, w.organizer, NULL, &resp);
        cr_assert_eq(resp.status, 200, "%s", resp.body);
        cr_assert_eq(json_is_true(json_object_get(resp.json, "changed")), k == 0, "%s", resp.body);
        testhttp_resp_free(&resp);
    }

    snprintf(audiences[0], sizeof(audiences[0]), "\"all\"");
    snprintf(audiences[1], sizeof(audiences[1]), "{\"ticket_type_ids\":[%lld]}", w.vip);
    snprintf(audiences[2], sizeof(audiences[2]), "{\"checked_in\":true}");
    snprintf(audiences[3], sizeof(audiences[3]),
             "{\"checked_in\":false,\"ticket_type_ids\":[%lld]}", w.ga);
    for (size_t c = 0; c < 4; c++) {
        snprintf(subject, sizeof(subject), "%s %s", cases[c].name, run_id);
        ids[c] = post_message(&w, subject, audiences[c]);
    }
    start_workers();
    for (size_t c = 0; c < 4; c++) {
        wait_settled(&w, ids[c], cases[c].want);
        snprintf(subject, sizeof(subject), "%s %s", cases[c].name, run_id);
        assert_mailed(prefix, subject, 300, cases[c].selected, cases[c].want);
        cr_assert_eq(progress(&w, ids[c], "queued"), cases[c].want);
        cr_assert_eq(progress(&w, ids[c], "sent"), cases[c].want);
        cr_assert_eq(progress(&w, ids[c], "failed"), 0);
        cr_assert_eq(progress(&w, ids[c], "pending"), 0);
        cr_assert_eq(scalar("SELECT count(*) FROM notifications WHERE title = '%s'", subject),
                     cases[c].want, "%s: inbox entries", subject);
        cr_assert_eq(scalar("SELECT count(DISTINCT registration_id) FROM notifications"
                            " WHERE title = '%s'",
                            subject),
                     cases[c].want);
    }
    cr_assert_eq(scalar("SELECT count(*) FROM message_deliveries WHERE message_id = %lld", stopped),
                 0);
    cr_assert_eq(scalar("SELECT count(*) FROM event_messages WHERE id = %lld AND state ="
                        " 'cancelled'",
                        stopped),
                 1);

    /* The attendee reads the message in the inbox with the ticket code. */
    {
        unsigned char key[USHER_TICKET_KEY_BYTES];
        char code[USHER_TICKET_CODE_MAX], inbox[256];
        long long reg =
            scalar("SELECT id FROM registrations WHERE email = '%s0@example.org'", prefix);
        testhttp_resp resp;
        json_t *list;

        cr_assert_eq(usher_ticket_key_from_hex(cfg.ticket_secret, key), USHER_OK);
        cr_assert_eq(usher_ticket_sign(key, w.event, reg, code, sizeof(code)), USHER_OK);
        snprintf(inbox, sizeof(inbox), "/v1/me/notifications?ticket_code=%s", code);
        call("GET", inbox, NULL, NULL, &resp);
        cr_assert_eq(resp.status, 200, "%s", resp.body);
        list = json_object_get(resp.json, "notifications");
        cr_assert_eq(json_array_size(list), 2, "%s", resp.body); /* GA, checked in: All, In */
        testhttp_resp_free(&resp);
    }
}

Test(messages, bad_requests_are_refused_and_scoped_to_the_organizer, .init = start,
     .fini = stop_all)
{
    static const struct {
        const char *body;
        long status;
    } bodies[] = {
        { "{\"subject\":\"x\",\"body\":\"y\",\"audience\":\"some\"}", 422 },
        { "{\"subject\":\"x\",\"body\":\"y\",\"audience\":{\"vip\":true}}", 422 },
        { "{\"subject\":\"x\",\"body\":\"y\",\"audience\":{\"ticket_type_ids\":[]}}", 422 },
        { "{\"subject\":\"x\",\"body\":\"y\",\"audience\":{\"ticket_type_ids\":[\"1\"]}}", 422 },
        { "{\"subject\":\"x\",\"body\":\"y\",\"audience\":{\"checked_in\":1}}", 422 },
        { "{\"subject\":\"x\",\"body\":\"y\",\"audience\":{\"ticket_type_ids\":[987654321]}}",
          422 },
        { "{\"subject\":\"x\",\"body\":\"y\",\"audience\":{\"session_ids\":[987654321]}}", 422 },
        { "{\"body\":\"y\"}", 422 },
        { "{\"subject\":\"x\"}", 422 },
        { "{\"subject\":\"a\\nb\",\"body\":\"y\"}", 422 },
        { "{\"subject\":\"x\",\"body\":\"bell \\u0007\"}", 422 },
        { "{\"subject\":\"x\",\"body\":7}", 422 },
        { "{\"subject\":\"x\",\"body\":\"y\"", 400 },
        { "[]", 400 },
    };
    world w;
    char path[128], other_path[128], unknown[128];
    testhttp_resp resp;
    long long other_event;

    make_world(&w, "Scoped");
    other_event = scalar("INSERT INTO events (organizer_id, name, starts_at, ends_at)"
                         " VALUES (%lld, 'Other', now(), now()) RETURNING id",
                         w.other_org);
    snprintf(path, sizeof(path), "/v1/events/%lld/messages", w.event);
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        call("POST", path, w.organizer, bodies[i].body, &resp);
        cr_expect_eq(resp.status, bodies[i].status, "%s: %ld %s", bodies[i].body, resp.status,
                     resp.body);
        testhttp_resp_free(&resp);
    }
    call("POST", "/v1/events/987654321/messages", w.organizer, "{\"subject\":\"x\",\"body\":\"y\"}",
         &resp);
    cr_expect_eq(resp.status, 404, "%s", resp.body);
    testhttp_resp_free(&resp);
    snprintf(other_path, sizeof(other_path), "/v1/events/%lld/messages", other_event);
    call("POST", other_path, w.organizer, "{\"subject\":\"x\",\"body\":\"y\"}", &resp);
    cr_expect_eq(resp.status, 404, "another organizer's event: %s", resp.body);
    testhttp_resp_free(&resp);
    call("POST", other_path, NULL, "{\"subject\":\"x\",\"body\":\"y\"}", &resp);
    cr_expect_eq(resp.status, 401, "%s", resp.body);
    testhttp_resp_free(&resp);
    /* The admin may message any event; the other organizer sees none of it. */
    call("POST", path, w.admin, "{\"subject\":\"x\",\"body\":\"y\"}", &resp);
    cr_assert_eq(resp.status, 202, "%s", resp.body);
    snprintf(unknown, sizeof(unknown), "/v1/messages/%lld",
             (long long)json_integer_value(json_object_get(resp.json, "message_id")));
    testhttp_resp_free(&resp);
    call("GET", unknown, w.other, NULL, &resp);
    cr_expect_eq(resp.status, 404, "%s", resp.body);
    testhttp_resp_free(&resp);
    call("GET", unknown, w.organizer, NULL, &resp);
    cr_expect_eq(resp.status, 200, "%s", resp.body);
    cr_expect_str_eq(json_string_value(json_object_get(resp.json, "state")), "queued");
    testhttp_resp_free(&resp);
    snprintf(unknown, sizeof(unknown), "/v1/messages/987654321");
    call("GET", unknown, w.organizer, NULL, &resp);
    cr_expect_eq(resp.status, 404, "%s", resp.body);
    testhttp_resp_free(&resp);
    snprintf(unknown, sizeof(unknown), "/v1/messages/987654321/cancel");
    call("POST", unknown, w.organizer, NULL, &resp);
    cr_expect_eq(resp.status, 404, "%s", resp.body);
    testhttp_resp_free(&resp);
    snprintf(unknown, sizeof(unknown), "/v1/events/%lld/cancel", other_event);
    call("POST", unknown, w.organizer, "{}", &resp);
    cr_expect_eq(resp.status, 404, "another organizer's event: %s", resp.body);
    testhttp_resp_free(&resp);
    call("POST", "/v1/events/987654321/cancel", w.admin, "{}", &resp);
    cr_expect_eq(resp.status, 404, "%s", resp.body);
    testhttp_resp_free(&resp);
    snprintf(unknown, sizeof(unknown), "/v1/events/%lld/cancel", w.event);
    call("POST", unknown, w.organizer, "{\"message\":", &resp);
    cr_expect_eq(resp.status, 400, "%s", resp.body);
    testhttp_resp_free(&resp);
    call("POST", unknown, w.organizer, "{\"message\":5}", &resp);
    cr_expect_eq(resp.status, 422, "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_expect_eq(
        scalar("SELECT count(*) FROM events WHERE id = %lld AND cancelled_at IS NOT NULL", w.event),
        0);
}

typedef struct halfway {
    long long message;
    int at;
} halfway;

static bool ledger_reached(void *arg)
{
    const halfway *h = arg;

    return scalar("SELECT count(*) FROM message_deliveries WHERE message_id = %lld", h->message) >=
           h->at;
}

/* Waits for a quarter of the ledger, then SIGKILLs the fan-out worker and starts another. */
static void kill_fanout_halfway(long long message)
{
    halfway h = { message, BIG / 4 };
    long long before;

    cr_assert(testproc_wait_for(ledger_reached, &h, DEADLINE_MS), "the fan-out never started");
    testproc_kill(fanout_worker);
    before = scalar("SELECT count(*) FROM message_deliveries WHERE message_id = %lld", message);
    fprintf(stderr, "message %lld: fan-out worker killed with %lld of %d in the ledger\n", message,
            before, BIG);
    cr_expect_lt(before, BIG, "the fan-out finished before the kill: no crash tested");
    fanout_worker = testproc_start_worker(USHER_WORKER_PATH, MESSAGES_TEST_CONF, "fanout",
                                          cfg.database_url, "msg-fanout", fanout_dir);
}

Test(messages, a_fanout_killed_halfway_mails_everyone_exactly_once, .init = start, .fini = stop_all,
     .timeout = 900)
{
    world w;
    char prefix[64], subject[64];
    long long id;

    make_world(&w, "Big");
    snprintf(prefix, sizeof(prefix), "big-%s-", run_id);
    add_attendees(&w, prefix, BIG, BIG);
    snprintf(subject, sizeof(subject), "Big %s", run_id);
    id = post_message(&w, subject, "\"all\"");
    start_workers();
    kill_fanout_halfway(id);
    wait_settled(&w, id, BIG);
    assert_mailed(prefix, subject, BIG, everyone, BIG);
    cr_assert_eq(progress(&w, id, "sent"), BIG);
    cr_assert_eq(scalar("SELECT count(*) FROM notifications WHERE title = '%s'", subject), BIG);
    cr_assert_eq(scalar("SELECT count(*) FROM event_messages WHERE id = %lld AND batches = %d", id,
                        BIG / 100 + 1),
                 1, "one batch of 100 each, and the last that found none");
}

Test(messages, an_event_cancelled_with_its_worker_killed_tells_everyone_once, .init = start,
     .fini = stop_all, .timeout = 900)
{
    world w;
    char prefix[64], subject[96], path[96], body[256];
    testhttp_resp resp;
    long long id;

    make_world(&w, "Doomed");
    cr_assert_gt(scalar("INSERT INTO webhook_endpoints (organizer_id, url, events, secret)"
                        " VALUES (%lld, 'https://hooks.example.org/x',"
                        " '{registration.cancelled,event.cancelled}', 'secret') RETURNING id",
                        w.org),
                 0);
    snprintf(prefix, sizeof(prefix), "cx-%s-", run_id);
    add_attendees(&w, prefix, BIG, BIG);
    start_workers();
    snprintf(path, sizeof(path), "/v1/events/%lld/cancel", w.event);
    call("POST", path, w.organizer, "{\"message\":\"We are **very** sorry.\"}", &resp);
    cr_assert_eq(resp.status, 202, "%s", resp.body);
    id = json_integer_value(json_object_get(resp.json, "message_id"));
    testhttp_resp_free(&resp);
    kill_fanout_halfway(id);

    /* Cancelling again changes nothing and names the same message. */
    call("POST", path, w.admin, "{}", &resp);
    cr_assert_eq(resp.status, 200, "%s", resp.body);
    cr_assert_eq(json_integer_value(json_object_get(resp.json, "message_id")), id);
    cr_assert(json_is_false(json_object_get(resp.json, "changed")));
    testhttp_resp_free(&resp);
    /* No new registration, and no message to a cancelled event. */
    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", w.event);
    snprintf(body, sizeof(body),
             "{\"ticket_type_id\":%lld,\"name\":\"Late\",\"email\":\"late@example.org\"}", w.ga);
    call("POST", path, NULL, body, &resp);
    cr_assert_eq(resp.status, 410, "%s", resp.body);
    testhttp_resp_free(&resp);
    snprintf(path, sizeof(path), "/v1/events/%lld/messages", w.event);
    call("POST", path, w.organizer, "{\"subject\":\"x\",\"body\":\"y\"}", &resp);
    cr_assert_eq(resp.status, 409, "%s", resp.body);
    testhttp_resp_free(&resp);
    snprintf(path, sizeof(path), "/v1/messages/%lld/cancel", id);
    call("POST", path, w.organizer, NULL, &resp);
    cr_assert_eq(resp.status, 409, "%s", resp.body);
    testhttp_resp_free(&resp);

    wait_settled(&w, id, BIG);
    snprintf(subject, sizeof(subject), "Cancelled: Doomed");
    assert_mailed(prefix, subject, BIG, everyone, BIG);
    cr_assert_eq(scalar("SELECT count(*) FROM registrations WHERE event_id = %lld"
                        " AND status = 'cancelled'",
                        w.event),
                 BIG);
    cr_assert_eq(scalar("SELECT count(*) FROM registrations WHERE event_id = %lld", w.event), BIG);
    cr_assert_eq(scalar("SELECT count(*) FROM notifications n JOIN registrations r"
                        " ON r.id = n.registration_id WHERE r.event_id = %lld",
                        w.event),
                 BIG);
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE kind = 'notify.webhook'"
                        " AND payload->>'event' = 'registration.cancelled'"),
                 BIG);
    cr_assert_eq(scalar("SELECT count(DISTINCT payload->'data'->>'registration_id') FROM usher_jobs"
                        " WHERE kind = 'notify.webhook'"
                        " AND payload->>'event' = 'registration.cancelled'"),
                 BIG);
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE kind = 'notify.webhook'"
                        " AND payload->>'event' = 'event.cancelled'"),
                 1);
}

static const char *own_prefix;

static bool own_mail_came(void *arg)
{
    return testmail_count_subject(own_prefix, "is cancelled", arg, 2) >= 1;
}

static bool no_email_left(void *arg)
{
    (void)arg;
    return scalar("SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'") == 0;
}

Test(messages, an_attendee_who_cancels_gets_a_cancellation_email, .init = start, .fini = stop_all,
     .timeout = 300)
{
    world w;
    char prefix[64], path[96];
    testhttp_resp resp;
    long long reg;
    int counts[2];

    make_world(&w, "Changed Minds");
    snprintf(prefix, sizeof(prefix), "own-%s-", run_id);
    add_attendees(&w, prefix, 2, 2);
    reg = scalar("SELECT id FROM registrations WHERE email = '%s1@example.org'", prefix);
    start_workers();
    snprintf(path, sizeof(path), "/v1/registrations/%lld/cancel", reg);
    call("POST", path, w.organizer, NULL, &resp);
    cr_assert_eq(resp.status, 200, "%s", resp.body);
    testhttp_resp_free(&resp);
    own_prefix = prefix;
    cr_assert(testproc_wait_for(own_mail_came, counts, DEADLINE_MS), "no cancellation email");
    cr_assert(testproc_wait_for(no_email_left, NULL, DEADLINE_MS), "email jobs still waiting");
    testmail_count_subject(prefix, "is cancelled", counts,
                           2); /* after the last job: a duplicate shows */
    cr_assert_eq(counts[1], 1, "the attendee who cancelled got %d mails", counts[1]);
    cr_assert_eq(counts[0], 0);
}

/* ------------------------------------------------ sessions: cancelled and moved */

/* The message of kind about session, once there is one; its id. */
static long long session_message(long long session, const char *kind)
{
    return scalar("SELECT coalesce(max(id), 0) FROM event_messages WHERE session_id = %lld"
                  " AND kind = '%s'",
                  session, kind);
}

static bool confirmed(int i)
{
    return i % 5 != 4; /* attendees 4, 9, 14, ... cancelled before */
}

Test(messages, a_session_cancelled_or_moved_tells_each_attendee_once, .init = start,
     .fini = stop_all, .timeout = 600)
{
    enum { N = 40, TOLD = N - N / 5 };
    world w;
    char prefix[64], path[96], text[4096];
    testhttp_resp resp;
    long long keynote, talk, id;

    make_world(&w, "Sessions");
    snprintf(prefix, sizeof(prefix), "ses-%s-", run_id);
    add_attendees(&w, prefix, N, N / 2);
    testdb_exec(st, "UPDATE events SET timezone = 'Europe/Berlin'");
    cr_assert_eq(scalar("WITH c AS (UPDATE registrations SET status = 'cancelled'"
                        " WHERE split_part(substr(email, %zu), '@', 1)::int %% 5 = 4"
                        " AND email LIKE '%s%%' RETURNING 1) SELECT count(*) FROM c",
                        strlen(prefix) + 1, prefix),
                 N / 5);
    keynote = scalar("INSERT INTO sessions (event_id, title, starts_at, ends_at) VALUES (%lld,"
                     " 'Keynote', '2030-05-04 09:00Z', '2030-05-04 10:00Z') RETURNING id",
                     w.event);
    talk = scalar("INSERT INTO sessions (event_id, title, starts_at, ends_at) VALUES (%lld,"
                  " 'Talk', '2030-05-04 11:00Z', '2030-05-04 12:00Z') RETURNING id",
                  w.event);
    start_workers();

    /* Cancelled twice: one message; another organizer's session is a 404. */
    snprintf(path, sizeof(path), "/v1/sessions/%lld/cancel", keynote);
    call("POST", path, w.other, NULL, &resp);
    cr_assert_eq(resp.status, 404, "%s", resp.body);
    testhttp_resp_free(&resp);
    for (int i = 0; i < 2; i++) {
        call("POST", path, w.organizer, NULL, &resp);
        cr_assert_eq(resp.status, 200, "%s", resp.body);
        cr_assert_eq(json_is_true(json_object_get(resp.json, "changed")), i == 0);
        testhttp_resp_free(&resp);
    }
    id = session_message(keynote, "session_cancelled");
    cr_assert_gt(id, 0);
    wait_settled(&w, id, TOLD);
    assert_mailed(prefix, "Session cancelled: Keynote", N, confirmed, TOLD);
    cr_assert_eq(progress(&w, id, "sent"), TOLD);
    cr_assert_eq(scalar("SELECT count(*) FROM event_messages WHERE session_id = %lld", keynote), 1);

    /* Moved by two hours: told once, with the new time in Berlin; the same
     * times again, or only a new title, tell nobody. */
    snprintf(path, sizeof(path), "/v1/sessions/%lld", talk);
    for (int i = 0; i < 2; i++) {
        call("PATCH", path, w.organizer,
             "{\"starts_at\":\"2030-05-04T13:00:00Z\",\"ends_at\":\"2030-05-04T14:00:00Z\"}",
             &resp);
        cr_assert_eq(resp.status, 200, "%s", resp.body);
        testhttp_resp_free(&resp);
    }
    call("PATCH", path, w.organizer, "{\"title\":\"Talk\"}", &resp);
    cr_assert_eq(resp.status, 200, "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(scalar("SELECT count(*) FROM event_messages WHERE session_id = %lld", talk), 1);
    id = session_message(talk, "session_changed");
    wait_settled(&w, id, TOLD);
    assert_mailed(prefix, "New time: Talk", N, confirmed, TOLD);
    cr_assert(testmail_text(prefix, 0, "New time: Talk", text, sizeof(text)));
    cr_assert(strstr(text, "Sat 04 May 2030, 15:00 (Europe/Berlin) to Sat 04 May 2030, 16:00") !=
                  NULL,
              "%s", text);
    cr_assert_eq(scalar("SELECT count(*) FROM notifications WHERE title = 'New time: Talk'"
                        " AND body LIKE '%%Sat 04 May 2030, 15:00 (Europe/Berlin) to"
                        " Sat 04 May 2030, 16:00 (Europe/Berlin)%%'"),
                 TOLD);
    snprintf(path, sizeof(path), "/v1/messages/%lld", id);
    call("GET", path, w.organizer, NULL, &resp);
    cr_assert_eq(resp.status, 200, "%s", resp.body);
    cr_assert_eq(json_integer_value(json_object_get(resp.json, "session_id")), talk);
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "kind")), "session_changed");
    testhttp_resp_free(&resp);
}

/* ------------------------------------------ a registration racing the cancel */

static PGconn *raw_connect(void)
{
    PGconn *c = PQconnectdb(cfg.database_url);

    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    return c;
}

static void raw_ok(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);

    cr_assert(PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK,
              "%s: %s", sql, PQerrorMessage(c));
    PQclear(res);
}

/* The backend pid waits for a lock. */
static bool waits_for_lock(void *arg)
{
    return scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = %d"
                  " AND wait_event_type = 'Lock'",
                  *(int *)arg) == 1;
}

static void send_waiting(PGconn *c, const char *sql)
{
    int pid = PQbackendPID(c);

    cr_assert_eq(PQsendQuery(c, sql), 1, "%s", PQerrorMessage(c));
    cr_assert(testproc_wait_for(waits_for_lock, &pid, DEADLINE_MS), "not blocked: %s", sql);
}

#define RACE_CANCEL_SQL                                                                        \
    "SELECT status FROM usher_message_create(%lld, NULL, 'event_cancelled', NULL, NULL, '{}'," \
    " 'test', '{\"queue\": \"fanout\", \"kind\": \"message.fanout\", \"priority\": 1,"         \
    " \"max_attempts\": 5, \"timeout_ms\": 60000, \"payload\": {},"                            \
    " \"id_field\": \"message_id\"}', NULL)"
#define RACE_REGISTER_SQL                                                                        \
    "INSERT INTO registrations (event_id, ticket_type_id, name, email) VALUES (%lld, %lld, 'R'," \
    " '%s0@example.org')"

Test(messages, a_registration_racing_the_cancel_is_refused_or_cancelled_and_told, .init = start,
     .fini = stop_all, .timeout = 600)
{
    world first, late;
    char prefix[64], sql[1024];
    PGconn *reg = raw_connect(), *cancel = raw_connect();
    PGresult *res;
    int counts[1];
    long long id;

    /* The registration holds the event row first: the cancel waits for its
     * commit, and the fan-out then cancels it and tells the attendee. */
    make_world(&first, "Race One");
    snprintf(prefix, sizeof(prefix), "race-%s-", run_id);
    raw_ok(reg, "BEGIN");
    snprintf(sql, sizeof(sql), RACE_REGISTER_SQL, first.event, first.ga, prefix);
    raw_ok(reg, sql);
    snprintf(sql, sizeof(sql), RACE_CANCEL_SQL, first.event);
    send_waiting(cancel, sql);
    raw_ok(reg, "COMMIT");
    res = PQgetResult(cancel);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(cancel));
    cr_assert_str_eq(PQgetvalue(res, 0, 0), "created");
    PQclear(res);
    cr_assert_null(PQgetResult(cancel));
    start_workers();
    id = scalar("SELECT id FROM event_messages WHERE event_id = %lld", first.event);
    wait_settled(&first, id, 1);
    cr_assert_eq(testmail_count_subject(prefix, "Cancelled: Race One", counts, 1), 1);
    cr_assert_eq(scalar("SELECT count(*) FROM registrations WHERE event_id = %lld"
                        " AND status = 'cancelled'",
                        first.event),
                 1);

    /* The cancel holds it first: the registration waits, then is refused. */
    make_world(&late, "Race Two");
    raw_ok(cancel, "BEGIN");
    snprintf(sql, sizeof(sql), RACE_CANCEL_SQL, late.event);
    raw_ok(cancel, sql);
    snprintf(sql, sizeof(sql), RACE_REGISTER_SQL, late.event, late.ga, prefix);
    send_waiting(reg, sql);
    raw_ok(cancel, "COMMIT");
    res = PQgetResult(reg);
    cr_assert_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
    cr_assert_str_eq(PQresultErrorField(res, PG_DIAG_SQLSTATE), "UE410");
    PQclear(res);
    cr_assert_null(PQgetResult(reg));
    cr_assert_eq(scalar("SELECT count(*) FROM registrations WHERE event_id = %lld", late.event), 0);
    PQfinish(reg);
    PQfinish(cancel);
}

/* ------------------------------------------------ mail in the event's language */

static const char *mail_prefix;

static bool mails_came(void *arg)
{
    int counts[2];

    return testmail_count(mail_prefix, counts, 2) >= *(int *)arg &&
           scalar("SELECT count(*) FROM usher_jobs WHERE kind IN ('email.send', 'message.fanout')"
                  " AND state IN ('available', 'running')") == 0;
}

/* Registers PREFIXi over HTTP (locale NULL: none given); the registration's id. */
static long long register_attendee(const world *w, const char *prefix, int i, const char *locale)
{
    char path[96], body[512];
    testhttp_resp resp;
    long long id;

    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", w->event);
    snprintf(body, sizeof(body),
             "{\"ticket_type_id\":%lld,\"name\":\"Guest %d\",\"email\":\"%s%d@example.org\"%s%s%s}",
             w->ga, i, prefix, i, locale != NULL ? ",\"locale\":\"" : "",
             locale != NULL ? locale : "", locale != NULL ? "\"" : "");
    call("POST", path, NULL, body, &resp);
    cr_assert_eq(resp.status, 201, "%s", resp.body);
    id = json_integer_value(json_object_get(resp.json, "registration_id"));
    testhttp_resp_free(&resp);
    cr_assert_gt(id, 0);
    return id;
}

static void expect_text(const char *prefix, int i, const char *subject, const char *want)
{
    char text[8192];

    cr_assert(testmail_text(prefix, i, subject, text, sizeof(text)), "no mail to %s%d", prefix, i);
    cr_assert(strstr(text, want) != NULL, "%s%d: no \"%s\" in:\n%s", prefix, i, want, text);
}

Test(messages, a_german_event_mails_in_german_and_a_french_attendee_in_french, .init = start,
     .fini = stop_all, .timeout = 300)
{
    world w;
    char prefix[64], path[96];
    testhttp_resp resp;
    long long de, fr, talk;
    int want = 2;

    make_world(&w, "Sommerfest");
    snprintf(prefix, sizeof(prefix), "loc-%s-", run_id);
    snprintf(path, sizeof(path), "/v1/events/%lld", w.event);
    call("PATCH", path, w.organizer, "{\"locale\":\"it\"}", &resp);
    cr_assert_eq(resp.status, 422, "%s", resp.body);
    testhttp_resp_free(&resp);
    call("PATCH", path, w.organizer,
         "{\"locale\":\"de\",\"timezone\":\"Europe/Berlin\","
         "\"starts_at\":\"2030-07-06T16:00:00Z\",\"ends_at\":\"2030-07-07T16:00:00Z\"}",
         &resp);
    cr_assert_eq(resp.status, 200, "%s", resp.body);
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "locale")), "de");
    cr_assert(json_is_null(json_object_get(resp.json, "cancelled_at")));
    testhttp_resp_free(&resp);
    de = register_attendee(&w, prefix, 0, NULL);
    fr = register_attendee(&w, prefix, 1, "fr");
    cr_assert_eq(
        scalar("SELECT count(*) FROM registrations WHERE id = %lld AND locale IS NULL", de), 1);
    cr_assert_eq(scalar("SELECT count(*) FROM registrations WHERE id = %lld AND locale = 'fr'", fr),
                 1);

    /* Their confirmations, as the ticket pipeline sends them (without the PDF here). */
    testdb_exec(st, "DELETE FROM usher_jobs");
    cr_assert_eq(scalar("WITH j AS (INSERT INTO usher_jobs (queue, kind, priority, payload,"
                        " max_attempts, timeout_ms) SELECT 'email', 'email.send', 1,"
                        " jsonb_build_object('registration_id', r.id, 'template',"
                        " 'registration_confirmation'), 5, 60000 FROM registrations r"
                        " WHERE r.event_id = %lld RETURNING 1) SELECT count(*) FROM j",
                        w.event),
                 2);
    start_workers();
    mail_prefix = prefix;
    cr_assert(testproc_wait_for(mails_came, &want, DEADLINE_MS), "no confirmations");
    expect_text(prefix, 0, NULL, "Hallo Guest 0,");
    expect_text(prefix, 0, NULL, "Sie sind für Sommerfest angemeldet.");
    expect_text(prefix, 0, NULL, "Beginn:        Sa., 6. Juli 2030, 18:00 Uhr (Europe/Berlin)");
    expect_text(prefix, 1, NULL, "Bonjour Guest 1,");
    expect_text(prefix, 1, NULL, "Début :     sam. 6 juillet 2030 à 18:00 (Europe/Berlin)");

    /* A session moved: each told once, in their language, in Berlin time. */
    talk = scalar("INSERT INTO sessions (event_id, title, starts_at, ends_at) VALUES (%lld,"
                  " 'Talk', '2030-07-06 17:00Z', '2030-07-06 18:00Z') RETURNING id",
                  w.event);
    snprintf(path, sizeof(path), "/v1/sessions/%lld", talk);
    call("PATCH", path, w.organizer,
         "{\"starts_at\":\"2030-07-06T18:30:00Z\",\"ends_at\":\"2030-07-06T19:30:00Z\"}", &resp);
    cr_assert_eq(resp.status, 200, "%s", resp.body);
    testhttp_resp_free(&resp);
    want = 4;
    cr_assert(testproc_wait_for(mails_came, &want, DEADLINE_MS), "no session mails");
    expect_text(prefix, 0, "Neue Zeit: Talk",
                "Zeit: Sa., 6. Juli 2030, 20:30 Uhr (Europe/Berlin) bis Sa., 6. Juli 2030, 21:30");
    expect_text(prefix, 1, "Nouvel horaire : Talk",
                "sam. 6 juillet 2030 à 20:30 (Europe/Berlin) – sam. 6 juillet 2030 à 21:30");
    cr_assert_eq(testmail_count_subject(prefix, "Neue Zeit: Talk", (int[2]){ 0 }, 2), 1);
    cr_assert_eq(testmail_count_subject(prefix, "Nouvel horaire : Talk", (int[2]){ 0 }, 2), 1);
}
