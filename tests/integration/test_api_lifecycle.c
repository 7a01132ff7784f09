/*
 * The organizer's lifecycle routes (issue 15) over real HTTP against a
 * real usher-api: ticket types changed, closed and reopened; events and
 * sessions deleted, sessions changed and cancelled; webhook endpoints
 * listed, changed, re-enabled, rotated, deleted, with their delivery log
 * and replays; registrations listed and filtered; and the audit log of
 * every organizer's and admin's write. Each route also meets bad input:
 * unknown ids, another organizer's data, wrong types and conflicts, with
 * the exact status and error code.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"
#include "testredis.h"
#include "token.h"

TESTDB_SUITE(lifecycle, "usher_test_api_lifecycle");

static testapi server;
static pid_t redis_pid;

/* Two organizers, an event of the first with one ticket type, and tokens of every role. */
typedef struct world {
    long long org, other_org, event, other_event, ticket_type;
    char admin[USHER_TOKEN_MAX], organizer[USHER_TOKEN_MAX], other[USHER_TOKEN_MAX],
        scanner[USHER_TOKEN_MAX];
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

static void make_world(world *w, int capacity)
{
    w->org = testdb_organizer(st, "Org A");
    w->other_org = testdb_organizer(st, "Org B");
    w->event = scalar("INSERT INTO events (organizer_id, name, starts_at, ends_at)"
                      " VALUES (%lld, 'Launch', now() + interval '1 day',"
                      " now() + interval '2 days') RETURNING id",
                      w->org);
    w->other_event = scalar("INSERT INTO events (organizer_id, name, starts_at, ends_at)"
                            " VALUES (%lld, 'Other', now(), now()) RETURNING id",
                            w->other_org);
    w->ticket_type = scalar("INSERT INTO ticket_types (event_id, name, capacity)"
                            " VALUES (%lld, 'GA', %d) RETURNING id",
                            w->event, capacity);
    token(USHER_ROLE_ADMIN, 0, w->admin);
    token(USHER_ROLE_ORGANIZER, w->org, w->organizer);
    token(USHER_ROLE_ORGANIZER, w->other_org, w->other);
    token(USHER_ROLE_SCANNER, w->org, w->scanner);
}

/* A Redis of the test's own: cached answers of an earlier run (same ids) are not seen. */
static void start(void)
{
    redis_pid = testredis_start();
    setenv("USHER_API_RATE_PER_MINUTE", "0", 1); /* one client address sends everything */
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 2);
}

static void stop(void)
{
    testapi_stop(&server);
    testproc_kill(redis_pid);
}

/* Sends method path (printf-formatted) with tok and body; the answer goes in out. */
static long callf(testhttp_resp *out, const char *method, const char *tok, const char *body,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static long callf(testhttp_resp *out, const char *method, const char *tok, const char *body,
                  const char *fmt, ...)
{
    char path[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    return testhttp(&server, &(testhttp_req){ method, path, tok, body, NULL, NULL }, out);
}

/* Expects status and, for an error, its code (NULL: any); frees the answer. */
static void expect(testhttp_resp *resp, long status, const char *code)
{
    cr_assert_eq(resp->status, status, "want %ld, got %ld: %s", status, resp->status, resp->body);
    if (code != NULL)
        cr_assert_str_eq(testhttp_error_code(resp), code, "%s", resp->body);
    testhttp_resp_free(resp);
}

/* A 422 naming field. */
static void expect_invalid(testhttp_resp *resp, const char *field)
{
    json_t *err = json_object_get(resp->json, "error");

    cr_assert_eq(resp->status, 422, "%s", resp->body);
    cr_assert_str_eq(json_string_value(json_object_get(err, "code")), "invalid", "%s", resp->body);
    cr_assert_str_eq(json_string_value(json_object_get(err, "field")), field, "%s", resp->body);
    testhttp_resp_free(resp);
}

static long long int_field(const testhttp_resp *resp, const char *name)
{
    json_t *v = json_object_get(resp->json, name);

    cr_assert(json_is_integer(v), "no integer %s in %s", name, resp->body);
    return json_integer_value(v);
}

/* Registers one attendee of ticket_type; returns the status (201: *reg is its id). */
static long register_one(long long event, long long ticket_type, int i, long long *reg)
{
    char body[256];
    testhttp_resp resp;
    long status;

    snprintf(body, sizeof(body),
             "{\"ticket_type_id\":%lld,\"name\":\"Attendee %d\",\"email\":\"a%d@example.org\"}",
             ticket_type, i, i);
    status = callf(&resp, "POST", NULL, body, "/v1/events/%lld/registrations", event);
    if (status == 201 && reg != NULL)
        *reg = int_field(&resp, "registration_id");
    else if (status != 201)
        cr_assert(status == 409, "%ld %s", status, resp.body);
    testhttp_resp_free(&resp);
    return status;
}

/* ---------------------------------------------------------------- ticket types */

Test(lifecycle, raising_a_capacity_restripes_and_sells_exactly_the_new_seats, .init = start,
     .fini = stop)
{
    enum { N = 60, NEW_CAPACITY = 40 };
    static testhttp_req reqs[N];
    static testhttp_resp resps[N];
    static char bodies[N][160];
    char path[96], body[64];
    testhttp_resp resp;
    int created = 0, sold_out = 0;
    world w;

    make_world(&w, 2);
    cr_assert_eq(register_one(w.event, w.ticket_type, 1, NULL), 201);
    cr_assert_eq(register_one(w.event, w.ticket_type, 2, NULL), 201);
    cr_assert_eq(register_one(w.event, w.ticket_type, 3, NULL), 409);
    cr_assert_eq(
        scalar("SELECT count(*) FROM ticket_stripes WHERE ticket_type_id = %lld", w.ticket_type),
        2);
    snprintf(body, sizeof(body), "{\"capacity\":%d}", NEW_CAPACITY);
    cr_assert_eq(callf(&resp, "PATCH", w.organizer, body, "/v1/ticket-types/%lld", w.ticket_type),
                 200, "%s", resp.body);
    cr_assert_eq(int_field(&resp, "capacity"), NEW_CAPACITY);
    cr_assert_eq(int_field(&resp, "sold"), 2);
    cr_assert_eq(int_field(&resp, "available"), NEW_CAPACITY - 2);
    cr_assert(json_is_true(json_object_get(resp.json, "sales_open")));
    testhttp_resp_free(&resp);
    /* Sixteen stripes again, holding the new capacity and the two sold seats. */
    cr_assert_eq(
        scalar("SELECT count(*) FROM ticket_stripes WHERE ticket_type_id = %lld", w.ticket_type),
        16);
    cr_assert_eq(scalar("SELECT sum(capacity) FROM ticket_stripes WHERE ticket_type_id = %lld",
                        w.ticket_type),
                 NEW_CAPACITY);
    cr_assert_eq(
        scalar("SELECT sum(sold) FROM ticket_stripes WHERE ticket_type_id = %lld", w.ticket_type),
        2);
    /* The public details show it at once (the cached entry was dropped). */
    cr_assert_eq(callf(&resp, "GET", NULL, NULL, "/v1/events/%lld", w.event), 200);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_array_get(json_object_get(resp.json, "ticket_types"), 0), "available")),
                 NEW_CAPACITY - 2, "%s", resp.body);
    testhttp_resp_free(&resp);
    /* 60 buyers at once for 38 seats: exactly 38 sold. */
    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", w.event);
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], sizeof(bodies[i]),
                 "{\"ticket_type_id\":%lld,\"name\":\"Buyer %d\",\"email\":\"b%d@example.org\"}",
                 w.ticket_type, i, i);
        reqs[i] = (testhttp_req){ "POST", path, NULL, bodies[i], NULL, NULL };
    }
    testhttp_many(&server, reqs, resps, N, 20);
    for (int i = 0; i < N; i++) {
        if (resps[i].status == 201)
            created++;
        else if (resps[i].status == 409 && strcmp(testhttp_error_code(&resps[i]), "sold_out") == 0)
            sold_out++;
        else
            cr_assert_fail("request %d: %ld %s", i, resps[i].status, resps[i].body);
        testhttp_resp_free(&resps[i]);
    }
    cr_assert_eq(created, NEW_CAPACITY - 2);
    cr_assert_eq(sold_out, N - (NEW_CAPACITY - 2));
    cr_assert_eq(
        scalar("SELECT count(*) FROM registrations WHERE ticket_type_id = %lld", w.ticket_type),
        NEW_CAPACITY);
}

Test(lifecycle, a_capacity_below_what_is_sold_is_refused_with_the_sold_count, .init = start,
     .fini = stop)
{
    testhttp_resp resp;
    world w;

    make_world(&w, 10);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(register_one(w.event, w.ticket_type, i, NULL), 201);
    callf(&resp, "PATCH", w.organizer, "{\"capacity\":2}", "/v1/ticket-types/%lld", w.ticket_type);
    cr_assert_eq(resp.status, 409, "%s", resp.body);
    cr_assert_str_eq(testhttp_error_code(&resp), "capacity_below_sold");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(resp.json, "error"), "sold")),
                 3, "%s", resp.body);
    testhttp_resp_free(&resp);
    /* Nothing changed. */
    cr_assert_eq(scalar("SELECT sum(capacity) FROM ticket_stripes WHERE ticket_type_id = %lld",
                        w.ticket_type),
                 10);
    cr_assert_eq(scalar("SELECT capacity FROM ticket_types WHERE id = %lld", w.ticket_type), 10);
    /* Down to exactly what is sold: allowed, and then it is sold out. */
    cr_assert_eq(callf(&resp, "PATCH", w.organizer, "{\"capacity\":3,\"name\":\"Early bird\"}",
                       "/v1/ticket-types/%lld", w.ticket_type),
                 200, "%s", resp.body);
    cr_assert_eq(int_field(&resp, "available"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "name")), "Early bird");
    testhttp_resp_free(&resp);
    cr_assert_eq(register_one(w.event, w.ticket_type, 9, NULL), 409);
    cr_assert_eq(
        scalar("SELECT sum(sold) FROM ticket_stripes WHERE ticket_type_id = %lld", w.ticket_type),
        3);
}

Test(lifecycle, closed_sales_refuse_registrations_until_reopened, .init = start, .fini = stop)
{
    char body[160];
    testhttp_resp resp;
    world w;

    make_world(&w, 10);
    cr_assert_eq(
        callf(&resp, "POST", w.organizer, NULL, "/v1/ticket-types/%lld/close", w.ticket_type), 200,
        "%s", resp.body);
    cr_assert(json_is_false(json_object_get(resp.json, "sales_open")), "%s", resp.body);
    testhttp_resp_free(&resp);
    snprintf(body, sizeof(body),
             "{\"ticket_type_id\":%lld,\"name\":\"Late\",\"email\":\"late@example.org\"}",
             w.ticket_type);
    callf(&resp, "POST", NULL, body, "/v1/events/%lld/registrations", w.event);
    expect(&resp, 409, "sales_closed");
    cr_assert_eq(
        scalar("SELECT count(*) FROM registrations WHERE ticket_type_id = %lld", w.ticket_type), 0);
    cr_assert_eq(
        scalar("SELECT sum(sold) FROM ticket_stripes WHERE ticket_type_id = %lld", w.ticket_type),
        0);
    /* The public details say so. */
    callf(&resp, "GET", NULL, NULL, "/v1/events/%lld", w.event);
    cr_assert(json_is_false(json_object_get(
                  json_array_get(json_object_get(resp.json, "ticket_types"), 0), "sales_open")),
              "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(callf(&resp, "POST", w.admin, NULL, "/v1/ticket-types/%lld/reopen", w.ticket_type),
                 200, "%s", resp.body);
    cr_assert(json_is_true(json_object_get(resp.json, "sales_open")));
    testhttp_resp_free(&resp);
    callf(&resp, "POST", NULL, body, "/v1/events/%lld/registrations", w.event);
    expect(&resp, 201, NULL);
    cr_assert_eq(
        scalar("SELECT count(*) FROM registrations WHERE ticket_type_id = %lld", w.ticket_type), 1);
}

Test(lifecycle, ticket_type_routes_refuse_bad_input_and_strangers, .init = start, .fini = stop)
{
    testhttp_resp resp;
    world w;

    make_world(&w, 10);
    callf(&resp, "PATCH", w.organizer, "{\"capacity\":5}", "/v1/ticket-types/987654321");
    expect(&resp, 404, "not_found");
    callf(&resp, "PATCH", w.other, "{\"capacity\":5}", "/v1/ticket-types/%lld", w.ticket_type);
    expect(&resp, 404, "not_found");
    callf(&resp, "POST", w.other, NULL, "/v1/ticket-types/%lld/close", w.ticket_type);
    expect(&resp, 404, "not_found");
    callf(&resp, "GET", w.other, NULL, "/v1/ticket-types/%lld", w.ticket_type);
    expect(&resp, 404, "not_found");
    callf(&resp, "PATCH", w.scanner, "{\"capacity\":5}", "/v1/ticket-types/%lld", w.ticket_type);
    expect(&resp, 403, "forbidden");
    callf(&resp, "PATCH", NULL, "{\"capacity\":5}", "/v1/ticket-types/%lld", w.ticket_type);
    expect(&resp, 401, "unauthorized");
    callf(&resp, "PATCH", w.organizer, "{\"capacity\":\"5\"}", "/v1/ticket-types/%lld",
          w.ticket_type);
    expect_invalid(&resp, "capacity");
    callf(&resp, "PATCH", w.organizer, "{\"capacity\":-1}", "/v1/ticket-types/%lld", w.ticket_type);
    expect_invalid(&resp, "capacity");
    callf(&resp, "PATCH", w.organizer, "{\"capacity\":10000001}", "/v1/ticket-types/%lld",
          w.ticket_type);
    expect_invalid(&resp, "capacity");
    callf(&resp, "PATCH", w.organizer, "{\"name\":\"\"}", "/v1/ticket-types/%lld", w.ticket_type);
    expect_invalid(&resp, "name");
    callf(&resp, "PATCH", w.organizer, "{\"name\":7}", "/v1/ticket-types/%lld", w.ticket_type);
    expect_invalid(&resp, "name");
    callf(&resp, "PATCH", w.organizer, "[1]", "/v1/ticket-types/%lld", w.ticket_type);
    expect(&resp, 400, "malformed_json");
    /* Nothing of that changed it; the other organizer's admin-side view agrees. */
    cr_assert_eq(callf(&resp, "GET", w.admin, NULL, "/v1/ticket-types/%lld", w.ticket_type), 200);
    cr_assert_eq(int_field(&resp, "capacity"), 10);
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "name")), "GA");
    testhttp_resp_free(&resp);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE target = 'ticket_type'"
                        " AND target_id = %lld",
                        w.ticket_type),
                 0);
}

Test(lifecycle, ticket_type_changes_are_audited_with_before_and_after, .init = start, .fini = stop)
{
    testhttp_resp resp;
    world w;

    make_world(&w, 10);
    callf(&resp, "PATCH", w.organizer, "{\"capacity\":25}", "/v1/ticket-types/%lld", w.ticket_type);
    expect(&resp, 200, NULL);
    callf(&resp, "POST", w.admin, NULL, "/v1/ticket-types/%lld/close", w.ticket_type);
    expect(&resp, 200, NULL);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE target = 'ticket_type'"
                        " AND target_id = %lld",
                        w.ticket_type),
                 2);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE action = 'ticket_type.update'"
                        " AND target_id = %lld AND role = 'organizer' AND organizer_id = %lld"
                        " AND token_id IS NOT NULL"
                        " AND (before->>'capacity')::int = 10 AND (after->>'capacity')::int = 25",
                        w.ticket_type, w.org),
                 1);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE action = 'ticket_type.close'"
                        " AND target_id = %lld AND role = 'admin' AND organizer_id IS NULL"
                        " AND (before->>'sales_open')::boolean"
                        " AND NOT (after->>'sales_open')::boolean",
                        w.ticket_type),
                 1);
}

/* ---------------------------------------------------------------- events and sessions */

/* A session of event through the API; its id. */
static long long new_session(const world *w, long long event)
{
    testhttp_resp resp;
    long long id;

    cr_assert_eq(callf(&resp, "POST", w->organizer,
                       "{\"title\":\"Keynote\",\"starts_at\":\"2030-06-01T09:00:00Z\","
                       "\"ends_at\":\"2030-06-01T10:00:00Z\"}",
                       "/v1/events/%lld/sessions", event),
                 201, "%s", resp.body);
    id = int_field(&resp, "id");
    testhttp_resp_free(&resp);
    return id;
}

/* An event of the world's organizer through the API, with a ticket type; its id. */
static long long new_event(const world *w, long long *ticket_type)
{
    testhttp_resp resp;
    long long id;

    cr_assert_eq(callf(&resp, "POST", w->organizer,
                       "{\"name\":\"Pop-up\",\"starts_at\":\"2030-06-01T09:00:00Z\","
                       "\"ends_at\":\"2030-06-02T18:00:00Z\"}",
                       "/v1/events"),
                 201, "%s", resp.body);
    id = int_field(&resp, "id");
    testhttp_resp_free(&resp);
    cr_assert_eq(callf(&resp, "POST", w->organizer, "{\"name\":\"GA\",\"capacity\":5}",
                       "/v1/events/%lld/ticket-types", id),
                 201, "%s", resp.body);
    *ticket_type = int_field(&resp, "id");
    testhttp_resp_free(&resp);
    return id;
}

Test(lifecycle, an_event_without_sales_is_deleted_with_what_it_holds, .init = start, .fini = stop)
{
    testhttp_resp resp;
    long long event, tt, session;
    world w;

    make_world(&w, 10);
    event = new_event(&w, &tt);
    session = new_session(&w, event);
    testdb_exec(st, "DELETE FROM usher_jobs");
    callf(&resp, "DELETE", w.other, NULL, "/v1/events/%lld", event);
    expect(&resp, 404, "not_found");
    callf(&resp, "DELETE", w.scanner, NULL, "/v1/events/%lld", event);
    expect(&resp, 403, "forbidden");
    callf(&resp, "DELETE", NULL, NULL, "/v1/events/%lld", event);
    expect(&resp, 401, "unauthorized");
    callf(&resp, "DELETE", w.organizer, NULL, "/v1/events/987654321");
    expect(&resp, 404, "not_found");
    callf(&resp, "DELETE", w.organizer, NULL, "/v1/events/abc");
    expect(&resp, 404, "not_found");
    cr_assert_eq(callf(&resp, "DELETE", w.organizer, NULL, "/v1/events/%lld", event), 200, "%s",
                 resp.body);
    cr_assert(json_is_true(json_object_get(resp.json, "deleted")));
    testhttp_resp_free(&resp);
    callf(&resp, "GET", NULL, NULL, "/v1/events/%lld", event);
    expect(&resp, 404, "not_found");
    callf(&resp, "GET", NULL, NULL, "/v1/sessions/%lld", session);
    expect(&resp, 404, "not_found");
    callf(&resp, "DELETE", w.organizer, NULL, "/v1/events/%lld", event);
    expect(&resp, 404, "not_found");
    cr_assert_eq(scalar("SELECT count(*) FROM ticket_stripes WHERE ticket_type_id = %lld", tt), 0);
    cr_assert_eq(scalar("SELECT count(*) FROM ticket_types WHERE event_id = %lld", event), 0);
    cr_assert_eq(scalar("SELECT count(*) FROM sessions WHERE event_id = %lld", event), 0);
    /* Out of the search index: one job for the event, one for its session. */
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE kind = 'index.document'"
                        " AND payload->>'type' = 'event' AND (payload->>'id')::bigint = %lld",
                        event),
                 1);
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE kind = 'index.document'"
                        " AND payload->>'type' = 'session' AND (payload->>'id')::bigint = %lld",
                        session),
                 1);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE action = 'event.delete'"
                        " AND target_id = %lld AND before->>'name' = 'Pop-up' AND after IS NULL",
                        event),
                 1);
}

Test(lifecycle, an_event_that_sold_a_ticket_is_not_deleted, .init = start, .fini = stop)
{
    testhttp_resp resp;
    long long reg;
    world w;

    make_world(&w, 10);
    cr_assert_eq(register_one(w.event, w.ticket_type, 1, &reg), 201);
    callf(&resp, "DELETE", w.organizer, NULL, "/v1/events/%lld", w.event);
    cr_assert(strstr(resp.body, "cancel it instead") != NULL, "%s", resp.body);
    expect(&resp, 409, "event_has_sales");
    /* Even once the only registration is cancelled: it was sold. */
    callf(&resp, "POST", w.organizer, NULL, "/v1/registrations/%lld/cancel", reg);
    expect(&resp, 200, NULL);
    callf(&resp, "DELETE", w.admin, NULL, "/v1/events/%lld", w.event);
    expect(&resp, 409, "event_has_sales");
    cr_assert_eq(scalar("SELECT count(*) FROM events WHERE id = %lld", w.event), 1);
    cr_assert_eq(scalar("SELECT count(*) FROM ticket_types WHERE event_id = %lld", w.event), 1);
}

Test(lifecycle, a_session_update_takes_times_with_an_offset_only, .init = start, .fini = stop)
{
    testhttp_resp resp;
    long long session;
    world w;

    make_world(&w, 10);
    session = new_session(&w, w.event);
    callf(&resp, "PATCH", w.organizer, "{\"starts_at\":\"2030-06-01T09:30:00\"}",
          "/v1/sessions/%lld", session);
    expect_invalid(&resp, "starts_at");
    callf(&resp, "PATCH", w.organizer, "{\"ends_at\":\"2030-06-01\"}", "/v1/sessions/%lld",
          session);
    expect_invalid(&resp, "ends_at");
    callf(&resp, "PATCH", w.organizer, "{\"capacity\":\"40\"}", "/v1/sessions/%lld", session);
    expect_invalid(&resp, "capacity");
    callf(&resp, "PATCH", w.organizer,
          "{\"starts_at\":\"2030-06-01T12:00:00Z\",\"ends_at\":\"2030-06-01T11:00:00Z\"}",
          "/v1/sessions/%lld", session);
    expect_invalid(&resp, "ends_at");
    callf(&resp, "PATCH", w.other, "{\"title\":\"Mine now\"}", "/v1/sessions/%lld", session);
    expect(&resp, 404, "not_found");
    callf(&resp, "PATCH", w.organizer, "{\"title\":\"Mine\"}", "/v1/sessions/987654321");
    expect(&resp, 404, "not_found");
    cr_assert_eq(callf(&resp, "PATCH", w.organizer,
                       "{\"title\":\"Closing keynote\",\"starts_at\":\"2030-06-01T11:00:00+02:00\","
                       "\"ends_at\":\"2030-06-01T12:00:00+02:00\",\"capacity\":40}",
                       "/v1/sessions/%lld", session),
                 200, "%s", resp.body);
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "title")), "Closing keynote");
    cr_assert_eq(int_field(&resp, "capacity"), 40);
    testhttp_resp_free(&resp);
    cr_assert_eq(scalar("SELECT count(*) FROM sessions WHERE id = %lld"
                        " AND starts_at = '2030-06-01T09:00:00Z' AND title = 'Closing keynote'",
                        session),
                 1);
}

Test(lifecycle, a_session_is_deleted_only_while_its_event_has_no_registrations, .init = start,
     .fini = stop)
{
    testhttp_resp resp;
    long long event, tt, quiet, busy;
    world w;

    make_world(&w, 10);
    event = new_event(&w, &tt);
    quiet = new_session(&w, event);
    busy = new_session(&w, w.event);
    cr_assert_eq(register_one(w.event, w.ticket_type, 1, NULL), 201);
    callf(&resp, "DELETE", w.other, NULL, "/v1/sessions/%lld", quiet);
    expect(&resp, 404, "not_found");
    callf(&resp, "DELETE", w.organizer, NULL, "/v1/sessions/987654321");
    expect(&resp, 404, "not_found");
    callf(&resp, "DELETE", w.organizer, NULL, "/v1/sessions/%lld", busy);
    expect(&resp, 409, "session_in_use");
    cr_assert_eq(scalar("SELECT count(*) FROM sessions WHERE id = %lld", busy), 1);
    callf(&resp, "DELETE", w.organizer, NULL, "/v1/sessions/%lld", quiet);
    expect(&resp, 200, NULL);
    callf(&resp, "GET", NULL, NULL, "/v1/sessions/%lld", quiet);
    expect(&resp, 404, "not_found");
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE action = 'session.delete'"
                        " AND target_id = %lld",
                        quiet),
                 1);
}

/* The session door's answer for code: access, and reason when refused. */
static void door(long long session, const char *code, bool access, const char *reason)
{
    testhttp_resp resp;

    cr_assert_eq(
        callf(&resp, "GET", NULL, NULL, "/v1/sessions/%lld/access?ticket_code=%s", session, code),
        200, "%s", resp.body);
    cr_assert_eq(json_is_true(json_object_get(resp.json, "access")), access, "%s", resp.body);
    if (reason != NULL)
        cr_assert_str_eq(json_string_value(json_object_get(resp.json, "reason")), reason, "%s",
                         resp.body);
    testhttp_resp_free(&resp);
}

Test(lifecycle, a_cancelled_session_refuses_every_ticket_at_once, .init = start, .fini = stop)
{
    char body[160], code[128];
    testhttp_resp resp;
    long long session, other_session;
    world w;

    make_world(&w, 10);
    session = new_session(&w, w.event);
    other_session = new_session(&w, w.event);
    snprintf(body, sizeof(body),
             "{\"ticket_type_id\":%lld,\"name\":\"Door\",\"email\":\"door@example.org\"}",
             w.ticket_type);
    cr_assert_eq(callf(&resp, "POST", NULL, body, "/v1/events/%lld/registrations", w.event), 201);
    snprintf(code, sizeof(code), "%s",
             json_string_value(json_object_get(resp.json, "ticket_code")));
    testhttp_resp_free(&resp);
    door(session, code, true, NULL); /* now cached */
    door(session, code, true, NULL);
    door(other_session, code, true, NULL);
    callf(&resp, "POST", w.other, NULL, "/v1/sessions/%lld/cancel", session);
    expect(&resp, 404, "not_found");
    callf(&resp, "POST", w.scanner, NULL, "/v1/sessions/%lld/cancel", session);
    expect(&resp, 403, "forbidden");
    callf(&resp, "POST", w.organizer, NULL, "/v1/sessions/987654321/cancel");
    expect(&resp, 404, "not_found");
    cr_assert_eq(callf(&resp, "POST", w.organizer, NULL, "/v1/sessions/%lld/cancel", session), 200,
                 "%s", resp.body);
    cr_assert(json_is_true(json_object_get(resp.json, "changed")));
    testhttp_resp_free(&resp);
    door(session, code, false, "session_cancelled");
    door(other_session, code, true, NULL);
    cr_assert_eq(callf(&resp, "POST", w.admin, NULL, "/v1/sessions/%lld/cancel", session), 200);
    cr_assert(json_is_false(json_object_get(resp.json, "changed")));
    testhttp_resp_free(&resp);
    callf(&resp, "GET", NULL, NULL, "/v1/sessions/%lld", session);
    cr_assert(json_is_string(json_object_get(resp.json, "cancelled_at")), "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE action = 'session.cancel'"
                        " AND target_id = %lld AND before->>'cancelled_at' IS NULL"
                        " AND after->>'cancelled_at' IS NOT NULL",
                        session),
                 1);
}

/* ---------------------------------------------------------------- webhook endpoints */

/* An endpoint of tok's organizer; its id, and its secret in secret. */
static long long new_webhook(const char *tok, char secret[80])
{
    testhttp_resp resp;
    long long id;

    cr_assert_eq(callf(&resp, "POST", tok,
                       "{\"url\":\"https://hooks.example.org/in\","
                       "\"events\":[\"registration.created\"]}",
                       "/v1/webhooks"),
                 201, "%s", resp.body);
    id = int_field(&resp, "id");
    snprintf(secret, 80, "%s", json_string_value(json_object_get(resp.json, "secret")));
    testhttp_resp_free(&resp);
    return id;
}

/* n logged attempts of endpoint, as the webhook handler writes them; the last one's id. */
static long long log_deliveries(long long endpoint, int n)
{
    return scalar(
        "WITH ins AS (INSERT INTO webhook_deliveries (endpoint_id, job_id, attempt, event, payload,"
        " status_code, latency_ms, error)"
        " SELECT %lld, 1000 + g / 3, 1 + g %% 3, 'registration.created',"
        " jsonb_build_object('id', g, 'event', 'registration.created',"
        "  'data', jsonb_build_object('registration_id', g)),"
        " CASE WHEN g %% 3 = 2 THEN 200 ELSE 503 END, 10 + g,"
        " CASE WHEN g %% 3 = 2 THEN NULL ELSE 'HTTP 503' END"
        " FROM generate_series(1, %d) g RETURNING id) SELECT max(id) FROM ins",
        endpoint, n);
}

Test(lifecycle, webhook_endpoints_are_changed_rotated_and_deleted_by_their_owner, .init = start,
     .fini = stop)
{
    char secret[80];
    testhttp_resp resp;
    long long hook, foreign;
    world w;

    make_world(&w, 10);
    hook = new_webhook(w.organizer, secret);
    foreign = new_webhook(w.other, secret);
    (void)new_webhook(w.organizer, secret);
    cr_assert_eq(callf(&resp, "GET", w.organizer, NULL, "/v1/webhooks"), 200);
    cr_assert_eq(json_array_size(json_object_get(resp.json, "webhooks")), 2, "%s", resp.body);
    cr_assert(strstr(resp.body, "secret") == NULL, "%s", resp.body);
    testhttp_resp_free(&resp);
    /* URL and events. */
    cr_assert_eq(callf(&resp, "PATCH", w.organizer,
                       "{\"url\":\"https://hooks.example.org/v2\","
                       "\"events\":[\"registration.cancelled\",\"checkin.created\"]}",
                       "/v1/webhooks/%lld", hook),
                 200, "%s", resp.body);
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "url")),
                     "https://hooks.example.org/v2");
    cr_assert_eq(json_array_size(json_object_get(resp.json, "events")), 2);
    cr_assert_null(json_object_get(resp.json, "secret"));
    testhttp_resp_free(&resp);
    callf(&resp, "PATCH", w.organizer, "{\"url\":\"ftp://hooks.example.org/\"}",
          "/v1/webhooks/%lld", hook);
    expect_invalid(&resp, "url");
    callf(&resp, "PATCH", w.organizer, "{\"url\":\"http://127.0.0.1:8080/\"}", "/v1/webhooks/%lld",
          hook);
    expect_invalid(&resp, "url");
    callf(&resp, "PATCH", w.organizer, "{\"events\":[\"party.started\"]}", "/v1/webhooks/%lld",
          hook);
    expect_invalid(&resp, "events");
    callf(&resp, "PATCH", w.organizer, "{\"events\":\"checkin.created\"}", "/v1/webhooks/%lld",
          hook);
    expect_invalid(&resp, "events");
    callf(&resp, "PATCH", w.organizer, "{\"url\":\"https://mine.example.org/\"}",
          "/v1/webhooks/%lld", foreign);
    expect(&resp, 404, "not_found");
    callf(&resp, "PATCH", w.organizer, "{\"url\":\"https://mine.example.org/\"}",
          "/v1/webhooks/987654321");
    expect(&resp, 404, "not_found");
    /* A new secret, shown once and different; reads never show it. */
    cr_assert_eq(callf(&resp, "POST", w.organizer, NULL, "/v1/webhooks/%lld/rotate-secret", hook),
                 200, "%s", resp.body);
    cr_assert(strstr(resp.headers, "Cache-Control: no-store") != NULL);
    cr_assert_eq(strlen(json_string_value(json_object_get(resp.json, "secret"))), 64);
    cr_assert_eq(scalar("SELECT count(*) FROM webhook_endpoints WHERE id = %lld AND secret = '%s'",
                        hook, json_string_value(json_object_get(resp.json, "secret"))),
                 1);
    testhttp_resp_free(&resp);
    callf(&resp, "GET", w.organizer, NULL, "/v1/webhooks/%lld", hook);
    cr_assert(strstr(resp.body, "secret") == NULL, "%s", resp.body);
    expect(&resp, 200, NULL);
    callf(&resp, "POST", w.other, NULL, "/v1/webhooks/%lld/rotate-secret", hook);
    expect(&resp, 404, "not_found");
    callf(&resp, "POST", w.scanner, NULL, "/v1/webhooks/%lld/rotate-secret", hook);
    expect(&resp, 403, "forbidden");
    /* Deleted with its log. */
    log_deliveries(hook, 3);
    callf(&resp, "DELETE", w.other, NULL, "/v1/webhooks/%lld", hook);
    expect(&resp, 404, "not_found");
    callf(&resp, "DELETE", w.organizer, NULL, "/v1/webhooks/%lld", hook);
    expect(&resp, 200, NULL);
    callf(&resp, "GET", w.organizer, NULL, "/v1/webhooks/%lld", hook);
    expect(&resp, 404, "not_found");
    callf(&resp, "DELETE", w.organizer, NULL, "/v1/webhooks/%lld", hook);
    expect(&resp, 404, "not_found");
    cr_assert_eq(scalar("SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = %lld", hook),
                 0);
    /* Audited: update, rotation, deletion; the secret never. */
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE target = 'webhook'"
                        " AND target_id = %lld",
                        hook),
                 3);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE target = 'webhook'"
                        " AND (before ? 'secret' OR after ? 'secret')"),
                 0);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE action = 'webhook.update'"
                        " AND target_id = %lld AND before->>'url' = 'https://hooks.example.org/in'"
                        " AND after->>'url' = 'https://hooks.example.org/v2'",
                        hook),
                 1);
}

Test(lifecycle, a_webhook_disabled_by_a_410_is_enabled_again, .init = start, .fini = stop)
{
    char secret[80];
    testhttp_resp resp;
    long long hook;
    world w;

    make_world(&w, 10);
    hook = new_webhook(w.organizer, secret);
    /* What the webhook handler does on a 410 Gone (workers/handlers/webhook.c). */
    scalar("UPDATE webhook_endpoints SET enabled = false,"
           " disabled_reason = '410 Gone from the endpoint' WHERE id = %lld RETURNING id",
           hook);
    callf(&resp, "POST", w.other, NULL, "/v1/webhooks/%lld/enable", hook);
    expect(&resp, 404, "not_found");
    cr_assert_eq(callf(&resp, "POST", w.organizer, NULL, "/v1/webhooks/%lld/enable", hook), 200,
                 "%s", resp.body);
    cr_assert(json_is_true(json_object_get(resp.json, "enabled")));
    cr_assert(json_is_null(json_object_get(resp.json, "disabled_reason")));
    testhttp_resp_free(&resp);
    /* Enabled again: the next registration enqueues its delivery. */
    testdb_exec(st, "DELETE FROM usher_jobs");
    cr_assert_eq(register_one(w.event, w.ticket_type, 1, NULL), 201);
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE kind = 'notify.webhook'"
                        " AND (payload->>'endpoint_id')::bigint = %lld",
                        hook),
                 1);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE action = 'webhook.enable'"
                        " AND target_id = %lld AND before->>'enabled' = 'false'"
                        " AND after->>'enabled' = 'true'",
                        hook),
                 1);
}

Test(lifecycle, the_delivery_log_pages_every_attempt_and_replays_one, .init = start, .fini = stop)
{
    char secret[80];
    testhttp_resp resp;
    long long hook, foreign, last, foreign_delivery, cursor = 0, seen = 0, prev = 0;
    world w;

    make_world(&w, 10);
    hook = new_webhook(w.organizer, secret);
    foreign = new_webhook(w.other, secret);
    last = log_deliveries(hook, 7);
    foreign_delivery = log_deliveries(foreign, 1);
    /* 7 attempts in pages of 3: 3, 3, 1, newest first, each once. */
    for (int page = 0; page < 3; page++) {
        json_t *rows, *row;
        size_t i;

        if (cursor == 0)
            callf(&resp, "GET", w.organizer, NULL, "/v1/webhooks/%lld/deliveries?limit=3", hook);
        else
            callf(&resp, "GET", w.organizer, NULL,
                  "/v1/webhooks/%lld/deliveries?limit=3&cursor=%lld", hook, cursor);
        cr_assert_eq(resp.status, 200, "%s", resp.body);
        rows = json_object_get(resp.json, "deliveries");
        cr_assert_eq(json_array_size(rows), page < 2 ? 3 : 1, "%s", resp.body);
        json_array_foreach(rows, i, row)
        {
            long long id = json_integer_value(json_object_get(row, "id"));

            cr_assert(prev == 0 || id < prev, "not newest first: %s", resp.body);
            if (page == 0 && i == 0)
                cr_assert_eq(id, last);
            cr_assert(json_is_integer(json_object_get(row, "attempt")));
            cr_assert(json_is_object(json_object_get(row, "payload")));
            prev = id;
            seen++;
        }
        if (page < 2)
            cursor = int_field(&resp, "next_cursor");
        else
            cr_assert(json_is_null(json_object_get(resp.json, "next_cursor")), "%s", resp.body);
        testhttp_resp_free(&resp);
    }
    cr_assert_eq(seen, 7);
    callf(&resp, "GET", w.organizer, NULL, "/v1/webhooks/%lld/deliveries", foreign);
    expect(&resp, 404, "not_found");
    callf(&resp, "GET", w.organizer, NULL, "/v1/webhooks/%lld/deliveries?limit=0", hook);
    expect_invalid(&resp, "limit");
    callf(&resp, "GET", w.organizer, NULL, "/v1/webhooks/%lld/deliveries?cursor=abc", hook);
    expect_invalid(&resp, "cursor");
    callf(&resp, "GET", w.organizer, NULL, "/v1/webhooks/%lld/deliveries?limit=501", hook);
    expect_invalid(&resp, "limit");
    /* Replay: a new notify.webhook job with the same event and data. */
    testdb_exec(st, "DELETE FROM usher_jobs");
    callf(&resp, "POST", w.organizer, NULL, "/v1/webhooks/deliveries/%lld/replay",
          foreign_delivery);
    expect(&resp, 404, "not_found");
    callf(&resp, "POST", w.other, NULL, "/v1/webhooks/deliveries/%lld/replay", last);
    expect(&resp, 404, "not_found");
    callf(&resp, "POST", w.organizer, NULL, "/v1/webhooks/deliveries/987654321/replay");
    expect(&resp, 404, "not_found");
    callf(&resp, "POST", w.scanner, NULL, "/v1/webhooks/deliveries/%lld/replay", last);
    expect(&resp, 403, "forbidden");
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs"), 0);
    cr_assert_eq(
        callf(&resp, "POST", w.organizer, NULL, "/v1/webhooks/deliveries/%lld/replay", last), 200,
        "%s", resp.body);
    cr_assert_eq(int_field(&resp, "delivery_id"), last);
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE kind = 'notify.webhook'"
                        " AND id = %lld AND (payload->>'endpoint_id')::bigint = %lld"
                        " AND payload->>'event' = 'registration.created'"
                        " AND payload->'data' = (SELECT payload->'data' FROM webhook_deliveries"
                        "  WHERE id = %lld)",
                        int_field(&resp, "job_id"), hook, last),
                 1);
    testhttp_resp_free(&resp);
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs"), 1);
    /* A disabled endpoint is not posted to: enable it first. */
    scalar("UPDATE webhook_endpoints SET enabled = false, disabled_reason = '410 Gone'"
           " WHERE id = %lld RETURNING id",
           hook);
    callf(&resp, "POST", w.organizer, NULL, "/v1/webhooks/deliveries/%lld/replay", last);
    cr_assert(strstr(resp.body, "disabled") != NULL, "%s", resp.body);
    expect(&resp, 422, "invalid");
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs"), 1);
}

/* ---------------------------------------------------------------- registrations */

/* Registers and answers its ticket code in code (and id in *reg). */
static void register_code(long long event, long long ticket_type, int i, char code[128],
                          long long *reg)
{
    char body[256];
    testhttp_resp resp;

    snprintf(body, sizeof(body),
             "{\"ticket_type_id\":%lld,\"name\":\"Guest %d\",\"email\":\"g%d@example.org\"}",
             ticket_type, i, i);
    cr_assert_eq(callf(&resp, "POST", NULL, body, "/v1/events/%lld/registrations", event), 201,
                 "%s", resp.body);
    snprintf(code, 128, "%s", json_string_value(json_object_get(resp.json, "ticket_code")));
    *reg = int_field(&resp, "registration_id");
    testhttp_resp_free(&resp);
}

/* The ids a listing answers, in order, into ids (at most max); how many. */
static size_t listed_ids(const world *w, const char *query, long long *ids, size_t max,
                         long long *next)
{
    testhttp_resp resp;
    json_t *row;
    size_t i, n = 0;

    cr_assert_eq(
        callf(&resp, "GET", w->organizer, NULL, "/v1/events/%lld/registrations%s", w->event, query),
        200, "%s: %s", query, resp.body);
    json_array_foreach(json_object_get(resp.json, "registrations"), i, row)
    {
        cr_assert_lt(n, max);
        ids[n++] = json_integer_value(json_object_get(row, "id"));
    }
    *next = json_is_integer(json_object_get(resp.json, "next_cursor"))
                ? json_integer_value(json_object_get(resp.json, "next_cursor"))
                : 0;
    testhttp_resp_free(&resp);
    return n;
}

Test(lifecycle, registrations_are_listed_filtered_and_paged, .init = start, .fini = stop)
{
    char code[128], body[256], query[128];
    long long regs[8], ids[16], next, tt_b, seen = 0, cursor = 0, prev = 0;
    testhttp_resp resp;
    world w;

    make_world(&w, 100);
    tt_b = scalar("INSERT INTO ticket_types (event_id, name, capacity) VALUES (%lld, 'VIP', 10)"
                  " RETURNING id",
                  w.event);
    for (int i = 0; i < 8; i++) {
        register_code(w.event, i < 5 ? w.ticket_type : tt_b, i, code, &regs[i]);
        if (i == 1 || i == 6) { /* two admitted at the door */
            snprintf(body, sizeof(body), "{\"ticket_code\":\"%s\",\"gate\":\"north\"}", code);
            callf(&resp, "POST", w.scanner, body, "/v1/checkins");
            expect(&resp, 200, NULL);
        }
    }
    for (int i = 3; i <= 4; i++) { /* two cancelled, both of GA */
        callf(&resp, "POST", w.organizer, NULL, "/v1/registrations/%lld/cancel", regs[i]);
        expect(&resp, 200, NULL);
    }
    cr_assert_eq(listed_ids(&w, "", ids, 16, &next), 8);
    cr_assert_eq(next, 0);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(ids[i], regs[i]);
    cr_assert_eq(listed_ids(&w, "?status=cancelled", ids, 16, &next), 2);
    cr_assert(ids[0] == regs[3] && ids[1] == regs[4]);
    snprintf(query, sizeof(query), "?ticket_type_id=%lld", tt_b);
    cr_assert_eq(listed_ids(&w, query, ids, 16, &next), 3);
    cr_assert_eq(ids[0], regs[5]);
    cr_assert_eq(listed_ids(&w, "?checked_in=true", ids, 16, &next), 2);
    cr_assert(ids[0] == regs[1] && ids[1] == regs[6]);
    cr_assert_eq(listed_ids(&w, "?checked_in=false&status=confirmed", ids, 16, &next), 4);
    snprintf(query, sizeof(query), "?checked_in=true&ticket_type_id=%lld", w.ticket_type);
    cr_assert_eq(listed_ids(&w, query, ids, 16, &next), 1);
    cr_assert_eq(ids[0], regs[1]);
    /* The gate and time of the admission. */
    callf(&resp, "GET", w.admin, NULL, "/v1/events/%lld/registrations?checked_in=true&limit=1",
          w.event);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(resp.json, "registrations"), 0), "gate")),
                     "north", "%s", resp.body);
    cr_assert(json_is_integer(json_object_get(resp.json, "next_cursor")), "%s", resp.body);
    testhttp_resp_free(&resp);
    /* Pages of 3: 3, 3, 2, each once, in order. */
    for (int page = 0; page < 3; page++) {
        size_t n;

        if (cursor == 0)
            snprintf(query, sizeof(query), "?limit=3");
        else
            snprintf(query, sizeof(query), "?limit=3&cursor=%lld", cursor);
        n = listed_ids(&w, query, ids, 16, &next);
        cr_assert_eq(n, page < 2 ? 3u : 2u);
        for (size_t i = 0; i < n; i++) {
            cr_assert_gt(ids[i], prev);
            prev = ids[i];
            seen++;
        }
        cr_assert_eq(next != 0, page < 2);
        cursor = next;
    }
    cr_assert_eq(seen, 8);
    /* Bad input and strangers. */
    callf(&resp, "GET", w.other, NULL, "/v1/events/%lld/registrations", w.event);
    expect(&resp, 404, "not_found");
    callf(&resp, "GET", w.organizer, NULL, "/v1/events/987654321/registrations");
    expect(&resp, 404, "not_found");
    callf(&resp, "GET", w.scanner, NULL, "/v1/events/%lld/registrations", w.event);
    expect(&resp, 403, "forbidden");
    callf(&resp, "GET", NULL, NULL, "/v1/events/%lld/registrations", w.event);
    expect(&resp, 401, "unauthorized");
    callf(&resp, "GET", w.organizer, NULL, "/v1/events/%lld/registrations?status=maybe", w.event);
    expect_invalid(&resp, "status");
    callf(&resp, "GET", w.organizer, NULL, "/v1/events/%lld/registrations?checked_in=yes", w.event);
    expect_invalid(&resp, "checked_in");
    callf(&resp, "GET", w.organizer, NULL, "/v1/events/%lld/registrations?ticket_type_id=abc",
          w.event);
    expect_invalid(&resp, "ticket_type_id");
    callf(&resp, "GET", w.organizer, NULL, "/v1/events/%lld/registrations?limit=1001", w.event);
    expect_invalid(&resp, "limit");
    callf(&resp, "GET", w.organizer, NULL, "/v1/events/%lld/registrations?cursor=0", w.event);
    expect_invalid(&resp, "cursor");
}

Test(lifecycle, a_confirmation_is_resent_with_the_same_ticket_as_a_new_job, .init = start,
     .fini = stop)
{
    char code[128];
    long long reg, cancelled, doc, job;
    testhttp_resp resp;
    world w;

    make_world(&w, 10);
    register_code(w.event, w.ticket_type, 1, code, &reg);
    register_code(w.event, w.ticket_type, 2, code, &cancelled);
    /* No ticket rendered yet (no worker runs here): its mail is still to come. */
    callf(&resp, "POST", w.organizer, NULL, "/v1/registrations/%lld/resend-confirmation", reg);
    expect(&resp, 409, "ticket_not_ready");
    doc = scalar("INSERT INTO documents (kind, event_id, registration_id, filename, content_type,"
                 " sha256, size) VALUES ('ticket', %lld, %lld, 'ticket-%lld.pdf',"
                 " 'application/pdf', repeat('ab', 32), 10) RETURNING id",
                 w.event, reg, reg);
    testdb_exec(st, "DELETE FROM usher_jobs");
    callf(&resp, "POST", w.other, NULL, "/v1/registrations/%lld/resend-confirmation", reg);
    expect(&resp, 404, "not_found");
    callf(&resp, "POST", w.scanner, NULL, "/v1/registrations/%lld/resend-confirmation", reg);
    expect(&resp, 403, "forbidden");
    callf(&resp, "POST", w.organizer, NULL, "/v1/registrations/987654321/resend-confirmation");
    expect(&resp, 404, "not_found");
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs"), 0);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(callf(&resp, "POST", w.organizer, NULL,
                           "/v1/registrations/%lld/resend-confirmation", reg),
                     202, "%s", resp.body);
        cr_assert_eq(int_field(&resp, "document_id"), doc);
        job = int_field(&resp, "job_id");
        testhttp_resp_free(&resp);
        cr_assert_eq(
            scalar("SELECT count(*) FROM usher_jobs WHERE id = %lld AND kind = 'email.send'"
                   " AND payload = jsonb_build_object('registration_id', %lld::bigint,"
                   " 'template', 'registration_confirmation', 'document_id', %lld::bigint)",
                   job, reg, doc),
            1);
    }
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"), 2);
    callf(&resp, "POST", w.organizer, NULL, "/v1/registrations/%lld/cancel", cancelled);
    expect(&resp, 200, NULL);
    callf(&resp, "POST", w.organizer, NULL, "/v1/registrations/%lld/resend-confirmation",
          cancelled);
    expect(&resp, 409, "registration_cancelled");
    /* The cancellation mails the attendee (registration_cancelled); no confirmation. */
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"
                        " AND payload->>'template' = 'registration_confirmation'"),
                 2);
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"
                        " AND payload->>'template' = 'registration_cancelled'"
                        " AND (payload->>'registration_id')::bigint = %lld",
                        cancelled),
                 1);
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"), 3);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log"
                        " WHERE action = 'registration.resend_confirmation' AND target_id = %lld",
                        reg),
                 2);
}

/* ---------------------------------------------------------------- the audit log */

typedef struct audit_count {
    long long organizer, want;
} audit_count;

static bool audited(void *arg)
{
    audit_count *a = arg;

    return scalar("SELECT count(*) FROM audit_log WHERE organizer_id = %lld", a->organizer) >=
           a->want;
}

/* The actions of a page of GET /v1/admin/audit?query, newest first, into out. */
static size_t audit_page(const world *w, const char *query, char out[][96], size_t max,
                         long long *next)
{
    testhttp_resp resp;
    json_t *entry;
    size_t i, n = 0;

    cr_assert_eq(callf(&resp, "GET", w->admin, NULL, "/v1/admin/audit%s", query), 200, "%s",
                 resp.body);
    json_array_foreach(json_object_get(resp.json, "entries"), i, entry)
    {
        cr_assert_lt(n, max);
        snprintf(out[n++], 96, "%s", json_string_value(json_object_get(entry, "action")));
    }
    *next = json_is_integer(json_object_get(resp.json, "next_cursor"))
                ? json_integer_value(json_object_get(resp.json, "next_cursor"))
                : 0;
    testhttp_resp_free(&resp);
    return n;
}

Test(lifecycle, every_organizer_and_admin_write_is_audited_and_readable_by_admins, .init = start,
     .fini = stop)
{
    char code[128], body[160], query[160], actions[8][96];
    long long reg, next, session;
    testhttp_resp resp;
    world w;

    make_world(&w, 10);
    session = new_session(&w, w.event); /* 1: POST /v1/events/{id}/sessions */
    callf(&resp, "PATCH", w.organizer, "{\"name\":\"Renamed\"}", "/v1/events/%lld", w.event);
    expect(&resp, 200, NULL); /* 2: event.update */
    callf(&resp, "PATCH", w.organizer, "{\"title\":\"Later\"}", "/v1/sessions/%lld", session);
    expect(&resp, 200, NULL); /* 3: session.update */
    callf(&resp, "POST", w.organizer,
          "{\"url\":\"https://hooks.example.org/a\",\"events\":[\"checkin.created\"]}",
          "/v1/webhooks");
    expect(&resp, 201, NULL);                             /* 4: POST /v1/webhooks */
    register_code(w.event, w.ticket_type, 1, code, &reg); /* public: not audited */
    snprintf(body, sizeof(body), "{\"ticket_code\":\"%s\"}", code);
    callf(&resp, "POST", w.scanner, body, "/v1/checkins"); /* scanner: not audited */
    expect(&resp, 200, NULL);
    callf(&resp, "POST", w.organizer, NULL, "/v1/registrations/%lld/cancel", reg);
    expect(&resp, 200, NULL); /* 5: POST /v1/registrations/{id}/cancel */
    /* Refused and read-only requests are not writes. */
    callf(&resp, "PATCH", w.organizer, "{\"name\":\"Mine\"}", "/v1/events/%lld", w.other_event);
    expect(&resp, 404, "not_found");
    callf(&resp, "GET", w.organizer, NULL, "/v1/events/%lld/registrations", w.event);
    expect(&resp, 200, NULL);
    callf(&resp, "POST", w.admin, NULL, "/v1/ticket-types/%lld/close", w.ticket_type);
    expect(&resp, 200, NULL); /* an admin's: organizer_id null */
    cr_assert(testproc_wait_for(audited, &(audit_count){ w.org, 5 }, 30000),
              "the organizer's writes were not all recorded");
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE organizer_id = %lld", w.org), 5);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE organizer_id = %lld", w.other_org),
                 0);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE role = 'admin'"
                        " AND action = 'ticket_type.close' AND target_id = %lld",
                        w.ticket_type),
                 1);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE role NOT IN ('admin', 'organizer')"),
                 0);
    /* Before and after of the updates; the route's ids and body for the others. */
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE action = 'event.update'"
                        " AND target_id = %lld AND before->>'name' = 'Launch'"
                        " AND after->>'name' = 'Renamed'",
                        w.event),
                 1);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE action = 'session.update'"
                        " AND target_id = %lld AND before->>'title' = 'Keynote'"
                        " AND after->>'title' = 'Later'",
                        session),
                 1);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log"
                        " WHERE action = 'POST /v1/registrations/{id}/cancel' AND target_id = %lld"
                        " AND (after->>'status')::int = 200",
                        reg),
                 1);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE action = 'POST /v1/webhooks'"
                        " AND organizer_id = %lld"
                        " AND after->'request'->>'url' = 'https://hooks.example.org/a'",
                        w.org),
                 1);
    /* Read back by an admin, newest first, in pages. */
    snprintf(query, sizeof(query), "?organizer_id=%lld", w.org);
    cr_assert_eq(audit_page(&w, query, actions, 8, &next), 5);
    /* Each once (the ones recorded after their commit may land in another order). */
    for (size_t k = 0; k < 5; k++) {
        static const char *const want[] = { "POST /v1/registrations/{id}/cancel",
                                            "POST /v1/webhooks", "session.update", "event.update",
                                            "POST /v1/events/{id}/sessions" };
        int found = 0;

        for (size_t i = 0; i < 5; i++)
            found += strcmp(actions[i], want[k]) == 0;
        cr_assert_eq(found, 1, "%s", want[k]);
    }
    cr_assert_eq(next, 0);
    snprintf(query, sizeof(query), "?organizer_id=%lld&limit=3", w.org);
    cr_assert_eq(audit_page(&w, query, actions, 8, &next), 3);
    cr_assert_neq(next, 0);
    snprintf(query, sizeof(query), "?organizer_id=%lld&limit=3&cursor=%lld", w.org, next);
    cr_assert_eq(audit_page(&w, query, actions, 8, &next), 2);
    cr_assert_eq(next, 0);
    cr_assert_eq(scalar("SELECT count(*) FROM (SELECT id FROM audit_log WHERE organizer_id = %lld"
                        " ORDER BY id DESC OFFSET 3) x",
                        w.org),
                 2);
    snprintf(query, sizeof(query), "?action=event.update&target=event&target_id=%lld", w.event);
    cr_assert_eq(audit_page(&w, query, actions, 8, &next), 1);
    callf(&resp, "GET", w.organizer, NULL, "/v1/admin/audit");
    expect(&resp, 403, "forbidden");
    callf(&resp, "GET", NULL, NULL, "/v1/admin/audit");
    expect(&resp, 401, "unauthorized");
    callf(&resp, "GET", w.admin, NULL, "/v1/admin/audit?limit=0");
    expect_invalid(&resp, "limit");
    callf(&resp, "GET", w.admin, NULL, "/v1/admin/audit?target_id=x");
    expect_invalid(&resp, "target_id");
    callf(&resp, "GET", w.admin, NULL, "/v1/admin/audit?action=");
    expect_invalid(&resp, "action");
}
