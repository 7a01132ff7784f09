/*
 * usher-api over real HTTP: a real server process on the test database,
 * talked to with libcurl. Sales never oversell under 2,000 concurrent
 * registrations, idempotency keys replay, the door admits a ticket once,
 * roles are enforced on every route, and bad requests get clear 4xx JSON
 * errors while the server stays healthy.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdb.h"
#include "testhttp.h"
#include "ticket.h"
#include "token.h"
#include "xapian_wrap.h"

TESTDB_SUITE(api, "usher_test_api");

static testapi server;

/* One organizer with an event, a second organizer, and a token of every role. */
typedef struct world {
    long long org, other_org, event, other_event, ticket_type;
    char admin[USHER_TOKEN_MAX], organizer[USHER_TOKEN_MAX], other[USHER_TOKEN_MAX],
        scanner[USHER_TOKEN_MAX], scanner_other[USHER_TOKEN_MAX];
} world;

static long long insert_id(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long insert_id(const char *fmt, ...)
{
    char sql[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return testdb_scalar(st, sql);
}

static void token(usher_role role, long long org, long long event, char out[USHER_TOKEN_MAX])
{
    int64_t id;

    cr_assert_eq(usher_token_create(st, role, org, event, "test", out, &id), USHER_OK, "%s",
                 usher_store_errstr(st));
}

static void make_world(world *w, int capacity)
{
    w->org = insert_id("INSERT INTO organizers (name) VALUES ('Org A') RETURNING id");
    w->other_org = insert_id("INSERT INTO organizers (name) VALUES ('Org B') RETURNING id");
    w->event = insert_id("INSERT INTO events (organizer_id, name, starts_at, ends_at)"
                         " VALUES (%lld, 'Launch', now() + interval '1 day',"
                         " now() + interval '2 days') RETURNING id",
                         w->org);
    w->other_event = insert_id("INSERT INTO events (organizer_id, name, starts_at, ends_at)"
                               " VALUES (%lld, 'Other', now(), now()) RETURNING id",
                               w->other_org);
    w->ticket_type = insert_id("INSERT INTO ticket_types (event_id, name, capacity)"
                               " VALUES (%lld, 'GA', %d) RETURNING id",
                               w->event, capacity);
    token(USHER_ROLE_ADMIN, 0, 0, w->admin);
    token(USHER_ROLE_ORGANIZER, w->org, 0, w->organizer);
    token(USHER_ROLE_ORGANIZER, w->other_org, 0, w->other);
    token(USHER_ROLE_SCANNER, w->org, 0, w->scanner);
    token(USHER_ROLE_SCANNER, w->other_org, 0, w->scanner_other);
}

static void start(void)
{
    setenv("USHER_API_RATE_PER_MINUTE", "0", 1); /* one client address sends everything */
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

static void registration_body(char *out, size_t len, long long ticket_type, int i)
{
    snprintf(out, len,
             "{\"ticket_type_id\":%lld,\"name\":\"Attendee %d Zoë\","
             "\"email\":\"a%d@example.org\"}",
             ticket_type, i, i);
}

static void registered_code(world *w, char code[USHER_TICKET_CODE_MAX], long long *reg)
{
    char path[128], body[256];
    testhttp_resp resp;

    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", w->event);
    registration_body(body, sizeof(body), w->ticket_type, rand());
    cr_assert_eq(call("POST", path, NULL, body, &resp), 201, "%s", resp.body);
    snprintf(code, USHER_TICKET_CODE_MAX, "%s",
             json_string_value(json_object_get(resp.json, "ticket_code")));
    *reg = json_integer_value(json_object_get(resp.json, "registration_id"));
    testhttp_resp_free(&resp);
}

/*
 * How many registrations the kind's jobs name in field, or in its list
 * (field + "s", a statement's shared job since 0038): each once (distinct)
 * or as often as named; only those of ticket_type unless it is 0 (an
 * index.document job's of type attendee only).
 */
static long long named_by_jobs(const char *kind, const char *field, long long ticket_type,
                               bool distinct)
{
    char sql[768], among[128] = "";

    if (ticket_type != 0)
        snprintf(among, sizeof(among),
                 " AND x.id IN (SELECT id FROM registrations WHERE ticket_type_id = %lld)",
                 ticket_type);
    snprintf(sql, sizeof(sql),
             "SELECT count(%s x.id) FROM usher_jobs j,"
             " LATERAL (SELECT jsonb_array_elements_text(j.payload->'%ss')::bigint AS id"
             " UNION ALL SELECT (j.payload->>'%s')::bigint) x"
             " WHERE j.kind = '%s' AND x.id IS NOT NULL"
             " AND coalesce(j.payload->>'type', 'attendee') = 'attendee'%s",
             distinct ? "DISTINCT" : "", field, field, kind, among);
    return testdb_scalar(st, sql);
}
Test(api, two_thousand_concurrent_registrations_sell_exactly_the_capacity, .init = start,
     .fini = stop, .timeout = 600)
{
    enum { N = 2000, SEATS = 500 };
    static testhttp_req reqs[N];
    static testhttp_resp resps[N];
    static char bodies[N][160];
    char path[128], sql[512];
    world w;
    int created = 0, sold_out = 0;

    make_world(&w, SEATS);
    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", w.event);
    for (int i = 0; i < N; i++) {
        registration_body(bodies[i], sizeof(bodies[i]), w.ticket_type, i);
        reqs[i] = (testhttp_req){ "POST", path, NULL, bodies[i], NULL, NULL };
    }
    testhttp_many(&server, reqs, resps, N, 200);
    for (int i = 0; i < N; i++) {
        if (resps[i].status == 201)
            created++;
        else if (resps[i].status == 409 && strcmp(testhttp_error_code(&resps[i]), "sold_out") == 0)
            sold_out++;
        else
            cr_assert_fail("request %d: %ld %s", i, resps[i].status, resps[i].body);
        testhttp_resp_free(&resps[i]);
    }
    cr_assert_eq(created, SEATS);
    cr_assert_eq(sold_out, N - SEATS);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM registrations WHERE ticket_type_id = %lld",
             w.ticket_type);
    cr_assert_eq(testdb_scalar(st, sql), SEATS);
    snprintf(sql, sizeof(sql), "SELECT sum(sold) FROM ticket_stripes WHERE ticket_type_id = %lld",
             w.ticket_type);
    cr_assert_eq(testdb_scalar(st, sql), SEATS);
    /*
     * Every confirmed registration named by one ticket job (which then
     * emails) and nothing more: a statement's sales share one ("ids", 0038).
     */
    cr_assert_eq(named_by_jobs("pdf.ticket", "registration_id", w.ticket_type, true), SEATS);
    cr_assert_eq(named_by_jobs("pdf.ticket", "registration_id", w.ticket_type, false), SEATS);
    cr_assert_eq(named_by_jobs("pdf.ticket", "registration_id", 0, false), SEATS);
    cr_assert_lt(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'pdf.ticket'"),
                 SEATS, "a statement's sales share their ticket job");
    /* Each job of a sale is its organizer's (fair claiming, the admins' filter). */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs WHERE kind IN ('pdf.ticket', 'index.document',"
             " 'analytics.rollup') AND partition_key IS DISTINCT FROM 'org:%lld'",
             w.org);
    cr_assert_eq(testdb_scalar(st, sql), 0);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"), 0);
    /*
     * The sales are counted by analytics jobs that each fold one batch's
     * (a loop turn's registrations, one statement and one commit): fewer
     * jobs than sales, counts that add up to the sales, each dated when its
     * batch sold (not when a worker gets to it).
     */
    cr_assert_eq(testdb_scalar(st, "SELECT sum(coalesce((payload->>'count')::int, 1))"
                                   " FROM usher_jobs WHERE kind = 'analytics.rollup'"
                                   " AND payload->>'metric' = 'registration'"
                                   " AND (payload->>'at')::timestamptz"
                                   " BETWEEN now() - interval '10 minutes' AND now()"),
                 SEATS);
    cr_assert_lt(
        testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'analytics.rollup'"), SEATS,
        "200 clients at once, and every registration in a statement of its own");
    /*
     * Each sale in the search index once: a statement's sales share one
     * index.document job ("ids", 0038), so fewer jobs than sales, naming
     * every sold registration exactly once between them.
     */
    cr_assert_eq(named_by_jobs("index.document", "id", w.ticket_type, true), SEATS);
    cr_assert_eq(named_by_jobs("index.document", "id", w.ticket_type, false), SEATS);
    cr_assert_lt(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'index.document'"
                                   " AND payload->>'type' = 'attendee'"),
                 SEATS, "a statement's sales share their search job");
}

/*
 * Registrations for a cancelled event arrive mixed with those for a live
 * one, so the loops' batches (one statement for a turn's registrations)
 * hold both: the cancelled event's answer 410 from their batch's rows
 * (0031) and the live ones are sold in the same statements, not sent again
 * alone (fewer analytics jobs than sales: a lone registration writes its
 * own). Each request hears its own answer, and nothing is written for the
 * cancelled event.
 */
Test(api, a_cancelled_events_registrations_answer_410_in_a_batch_of_live_ones, .init = start,
     .fini = stop, .timeout = 300)
{
    enum { N = 200 };
    static testhttp_req reqs[N];
    static testhttp_resp resps[N];
    static char bodies[N][160], paths[2][128];
    char sql[256];
    world w;
    long long cancelled, cancelled_type;

    make_world(&w, N);
    cancelled =
        insert_id("INSERT INTO events (organizer_id, name, starts_at, ends_at, cancelled_at)"
                  " VALUES (%lld, 'Called off', now(), now(), now()) RETURNING id",
                  w.org);
    cancelled_type = insert_id("INSERT INTO ticket_types (event_id, name, capacity)"
                               " VALUES (%lld, 'GA', %d) RETURNING id",
                               cancelled, N);
    snprintf(paths[0], sizeof(paths[0]), "/v1/events/%lld/registrations", w.event);
    snprintf(paths[1], sizeof(paths[1]), "/v1/events/%lld/registrations", cancelled);
    for (int i = 0; i < N; i++) {
        registration_body(bodies[i], sizeof(bodies[i]), i % 2 ? cancelled_type : w.ticket_type, i);
        reqs[i] = (testhttp_req){ "POST", paths[i % 2], NULL, bodies[i], NULL, NULL };
    }
    testhttp_many(&server, reqs, resps, N, N);
    for (int i = 0; i < N; i++) {
        if (i % 2 == 0)
            cr_assert_eq(resps[i].status, 201, "request %d: %ld %s", i, resps[i].status,
                         resps[i].body);
        else
            cr_assert(resps[i].status == 410 &&
                          strcmp(testhttp_error_code(&resps[i]), "event_cancelled") == 0,
                      "request %d: %ld %s", i, resps[i].status, resps[i].body);
        testhttp_resp_free(&resps[i]);
    }
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM registrations WHERE ticket_type_id = %lld",
             w.ticket_type);
    cr_assert_eq(testdb_scalar(st, sql), N / 2);
    snprintf(sql, sizeof(sql), "SELECT sum(sold) FROM ticket_stripes WHERE ticket_type_id = %lld",
             w.ticket_type);
    cr_assert_eq(testdb_scalar(st, sql), N / 2);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM registrations WHERE event_id = %lld",
             cancelled);
    cr_assert_eq(testdb_scalar(st, sql), 0);
    snprintf(sql, sizeof(sql), "SELECT sum(sold) FROM ticket_stripes WHERE ticket_type_id = %lld",
             cancelled_type);
    cr_assert_eq(testdb_scalar(st, sql), 0, "no seat of a rolled-back batch stays taken");
    cr_assert_eq(named_by_jobs("pdf.ticket", "registration_id", 0, false), N / 2);
    cr_assert_eq(testdb_scalar(st, "SELECT sum(coalesce((payload->>'count')::int, 1))"
                                   " FROM usher_jobs WHERE kind = 'analytics.rollup'"),
                 N / 2);
    /* A registration sent alone (usher_register) writes its analytics job without a count. */
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'analytics.rollup'"
                                   " AND NOT payload ? 'count'"),
                 0, "live registrations were sent again alone: their batches failed");
}

Test(api, an_idempotency_key_replays_the_first_answer_and_creates_nothing, .init = start,
     .fini = stop)
{
    char path[128], body[256], other[256], sql[256];
    testhttp_resp first, again, changed;
    world w;

    make_world(&w, 10);
    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", w.event);
    registration_body(body, sizeof(body), w.ticket_type, 1);
    registration_body(other, sizeof(other), w.ticket_type, 2);
    testhttp(&server, &(testhttp_req){ "POST", path, NULL, body, "Idempotency-Key: k-123", NULL },
             &first);
    testhttp(&server, &(testhttp_req){ "POST", path, NULL, body, "Idempotency-Key: k-123", NULL },
             &again);
    testhttp(&server, &(testhttp_req){ "POST", path, NULL, other, "Idempotency-Key: k-123", NULL },
             &changed);
    cr_assert_eq(first.status, 201, "%s", first.body);
    cr_assert_eq(again.status, 201, "%s", again.body);
    cr_assert_str_eq(again.body, first.body);
    cr_assert(strstr(again.headers, "Idempotent-Replayed: true") != NULL, "%s", again.headers);
    cr_assert(strstr(first.headers, "Idempotent-Replayed") == NULL);
    cr_assert_eq(changed.status, 422, "%s", changed.body);
    cr_assert_str_eq(testhttp_error_code(&changed), "idempotency_key_reused");
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM registrations WHERE ticket_type_id = %lld",
             w.ticket_type);
    cr_assert_eq(testdb_scalar(st, sql), 1);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'pdf.ticket'"), 1);
    testhttp_resp_free(&first);
    testhttp_resp_free(&again);
    testhttp_resp_free(&changed);
}

Test(api, two_scanners_at_once_admit_a_ticket_once, .init = start, .fini = stop)
{
    char code[USHER_TICKET_CODE_MAX], bodies[2][256], sql[256];
    testhttp_req reqs[2];
    testhttp_resp resps[2];
    long long reg;
    world w;

    make_world(&w, 10);
    registered_code(&w, code, &reg);
    for (int i = 0; i < 2; i++) {
        snprintf(bodies[i], sizeof(bodies[i]),
                 "{\"ticket_code\":\"%s\",\"gate\":\"gate-%d\",\"nonce\":\"race-%lld-%d\"}", code,
                 i, reg, i);
        reqs[i] = (testhttp_req){ "POST", "/v1/checkins", w.scanner, bodies[i], NULL, NULL };
    }
    testhttp_many(&server, reqs, resps, 2, 2);
    cr_assert_eq(resps[0].status + resps[1].status, 200 + 409, "%ld %ld", resps[0].status,
                 resps[1].status);
    for (int i = 0; i < 2; i++) {
        if (resps[i].status == 409)
            cr_assert_str_eq(testhttp_error_code(&resps[i]), "already_checked_in");
        testhttp_resp_free(&resps[i]);
    }
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM scans WHERE registration_id = %lld AND result = 'ok'", reg);
    cr_assert_eq(testdb_scalar(st, sql), 1);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM scans WHERE registration_id = %lld", reg);
    cr_assert_eq(testdb_scalar(st, sql), 2);
}

static void checkin(const char *tok, const char *body, long status, const char *result)
{
    testhttp_resp resp;

    call("POST", "/v1/checkins", tok, body, &resp);
    cr_assert_eq(resp.status, status, "%s -> %s", body, resp.body);
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "result")), result, "%s",
                     resp.body);
    if (status != 200)
        cr_assert_str_eq(testhttp_error_code(&resp), result);
    testhttp_resp_free(&resp);
}

Test(api, check_in_answers_every_status_and_logs_every_scan, .init = start, .fini = stop)
{
    char code[USHER_TICKET_CODE_MAX], cancelled[USHER_TICKET_CODE_MAX],
        ghost[USHER_TICKET_CODE_MAX];
    char forged[USHER_TICKET_CODE_MAX], body[512], sql[256];
    unsigned char key[USHER_TICKET_KEY_BYTES];
    long long reg, reg2, scans_before;
    testhttp_resp resp;
    world w;

    make_world(&w, 10);
    scans_before = testdb_scalar(st, "SELECT count(*) FROM scans");
    registered_code(&w, code, &reg);
    registered_code(&w, cancelled, &reg2);
    snprintf(sql, sizeof(sql), "UPDATE registrations SET status = 'cancelled' WHERE id = %lld",
             reg2);
    testdb_exec(st, sql);
    cr_assert_eq(usher_ticket_key_from_hex(cfg.ticket_secret, key), USHER_OK);
    /* Correctly signed, but no such registration. */
    cr_assert_eq(usher_ticket_sign(key, w.event, 999999999, ghost, sizeof(ghost)), USHER_OK);
    /* One character changed: the signature no longer matches. */
    snprintf(forged, sizeof(forged), "%s", code);
    forged[strlen(forged) - 2] = forged[strlen(forged) - 2] == 'A' ? 'B' : 'A';

    snprintf(body, sizeof(body),
             "{\"ticket_code\":\"%s\",\"gate\":\"north\",\"nonce\":\"n1-%lld\"}", code, reg);
    checkin(w.scanner, body, 200, "ok");
    /* The same nonce again (a scanner retrying): the first answer. */
    checkin(w.scanner, body, 200, "ok");
    snprintf(body, sizeof(body), "{\"ticket_code\":\"%s\",\"gate\":\"south\"}", code);
    call("POST", "/v1/checkins", w.scanner, body, &resp);
    cr_assert_eq(resp.status, 409, "%s", resp.body);
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "gate")), "north");
    cr_assert_not_null(json_object_get(resp.json, "checked_in_at"));
    testhttp_resp_free(&resp);
    snprintf(body, sizeof(body), "{\"ticket_code\":\"%s\"}", cancelled);
    checkin(w.scanner, body, 410, "cancelled");
    snprintf(body, sizeof(body), "{\"ticket_code\":\"%s\"}", ghost);
    checkin(w.scanner, body, 404, "unknown_ticket");
    snprintf(body, sizeof(body), "{\"ticket_code\":\"%s\"}", forged);
    checkin(w.scanner, body, 422, "invalid_code");
    checkin(w.scanner, "{\"ticket_code\":\"not a code at all\"}", 422, "invalid_code");
    /* A nonce is only ever the same scan of the same ticket: reused for the
     * cancelled ticket, it does not borrow the first ticket's "ok". */
    snprintf(body, sizeof(body), "{\"ticket_code\":\"%s\",\"nonce\":\"n1-%lld\"}", cancelled, reg);
    checkin(w.scanner, body, 410, "cancelled");
    /* Another organizer's scanner is at another event's door. */
    snprintf(body, sizeof(body), "{\"ticket_code\":\"%s\"}", code);
    checkin(w.scanner_other, body, 403, "wrong_event");
    /* ...and replaying the first scan's nonce does not let it in either. */
    snprintf(body, sizeof(body), "{\"ticket_code\":\"%s\",\"nonce\":\"n1-%lld\"}", code, reg);
    checkin(w.scanner_other, body, 403, "wrong_event");
    /* Every scan is logged except the repeated nonce, which returned the first answer. */
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM scans") - scans_before, 9);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM scans WHERE result = 'invalid_code'"
                                   " AND registration_id IS NULL") >= 2,
                 1);
}

/* Each route x each role -> the expected status. */
Test(api, every_route_enforces_its_roles, .init = start, .fini = stop)
{
    world w;

    make_world(&w, 100);
    char ev[64], ev_other[64], reg_path[96], tt_path[96], tt_other[96], rep_path[96];
    char reg_body[256], ev_body[] = "{\"name\":\"E\",\"starts_at\":\"2026-12-01T10:00:00Z\","
                                    "\"ends_at\":\"2026-12-01T12:00:00Z\",\"organizer_id\":1}";
    char code[USHER_TICKET_CODE_MAX], checkin_body[256];
    long long reg;

    snprintf(ev, sizeof(ev), "/v1/events/%lld", w.event);
    snprintf(ev_other, sizeof(ev_other), "/v1/events/%lld", w.other_event);
    snprintf(reg_path, sizeof(reg_path), "/v1/events/%lld/registrations", w.event);
    snprintf(tt_path, sizeof(tt_path), "/v1/events/%lld/ticket-types", w.event);
    snprintf(tt_other, sizeof(tt_other), "/v1/events/%lld/ticket-types", w.other_event);
    snprintf(rep_path, sizeof(rep_path), "/v1/events/%lld/reports", w.event);
    registration_body(reg_body, sizeof(reg_body), w.ticket_type, 77);
    registered_code(&w, code, &reg);
    snprintf(checkin_body, sizeof(checkin_body), "{\"ticket_code\":\"%s\"}", code);

    struct {
        const char *method, *path, *body;
        long none, admin, organizer, other, scanner;
    } matrix[] = {
        { "GET", "/healthz", NULL, 200, 200, 200, 200, 200 },
        /* Only on api.metrics_listen, for every role. */
        { "GET", "/metrics", NULL, 404, 404, 404, 404, 404 },
        { "GET", ev, NULL, 200, 200, 200, 200, 200 },
        { "GET", "/v1/events", NULL, 401, 200, 200, 200, 403 },
        { "POST", "/v1/events", ev_body, 401, 201, 201, 201, 403 },
        { "PATCH", ev, "{\"venue\":\"Hall 9\"}", 401, 200, 200, 404, 403 },
        { "PATCH", ev_other, "{\"venue\":\"Hall 9\"}", 401, 200, 404, 200, 403 },
        { "POST", tt_path, "{\"name\":\"VIP\",\"capacity\":5}", 401, 201, 201, 404, 403 },
        { "POST", tt_other, "{\"name\":\"VIP\",\"capacity\":5}", 401, 201, 404, 201, 403 },
        { "POST", reg_path, reg_body, 201, 201, 201, 201, 201 },
        { "POST", "/v1/checkins", "{\"ticket_code\":\"U1AAAA\"}", 401, 422, 403, 403, 422 },
        { "POST", rep_path, "{\"kind\":\"attendees\"}", 401, 202, 202, 404, 403 },
        { "GET", "/v1/reports/987654321", NULL, 401, 404, 404, 404, 403 },
        { "GET", "/v1/jobs/987654321", NULL, 401, 404, 404, 404, 403 },
        { "GET", "/v1/webhooks", NULL, 401, 200, 200, 200, 403 },
        { "GET", "/v1/webhooks/987654321", NULL, 401, 404, 404, 404, 403 },
        { "POST", "/v1/webhooks", "{\"url\":\"https://h.example.org\",\"events\":[]}", 401, 422,
          201, 201, 403 },
        { "GET", "/v1/me/notifications", NULL, 401, 401, 401, 401, 401 },
        { "POST", "/v1/registrations/987654321/cancel", NULL, 401, 404, 404, 404, 403 },
    };
    const char *tokens[] = { NULL, w.admin, w.organizer, w.other, w.scanner };

    for (size_t i = 0; i < sizeof(matrix) / sizeof(matrix[0]); i++) {
        long expected[] = { matrix[i].none, matrix[i].admin, matrix[i].organizer, matrix[i].other,
                            matrix[i].scanner };

        for (size_t t = 0; t < 5; t++) {
            testhttp_resp resp;

            call(matrix[i].method, matrix[i].path, tokens[t], matrix[i].body, &resp);
            cr_expect_eq(resp.status, expected[t], "%s %s as role #%zu: %ld %s", matrix[i].method,
                         matrix[i].path, t, resp.status, resp.body);
            if (resp.status >= 400)
                cr_expect(testhttp_error_code(&resp)[0] != '\0', "%s %s: no JSON error: %s",
                          matrix[i].method, matrix[i].path, resp.body);
            testhttp_resp_free(&resp);
        }
    }
}

Test(api, bad_requests_get_clear_errors_and_the_server_stays_healthy, .init = start, .fini = stop)
{
    world w;
    char reg[96], ev[64], big[80000], deep[400], long_name[1200];
    testhttp_resp resp;

    make_world(&w, 100);
    snprintf(reg, sizeof(reg), "/v1/events/%lld/registrations", w.event);
    snprintf(ev, sizeof(ev), "/v1/events/%lld", w.event);
    memset(big, 0, sizeof(big));
    snprintf(big, sizeof(big), "{\"ticket_type_id\":%lld,\"name\":\"", w.ticket_type);
    memset(big + strlen(big), 'x', 70000);
    strcat(big, "\",\"email\":\"a@example.org\"}");
    /* {"a": 100 nested arrays }: past the 32 levels the API accepts. */
    snprintf(deep, sizeof(deep), "{\"a\":");
    memset(deep + 5, '[', 100);
    memset(deep + 105, ']', 100);
    strcpy(deep + 205, "}");
    memset(long_name, 'n', 1100);
    long_name[1100] = '\0';
    char long_body[1400];
    snprintf(long_body, sizeof(long_body),
             "{\"ticket_type_id\":%lld,\"name\":\"%s\",\"email\":\"a@example.org\"}", w.ticket_type,
             long_name);
    char tt[64], sqlish[256], ctrl[256], nul[256], wrongtype[256], unknown_tt[256], noemail[256];
    snprintf(tt, sizeof(tt), "%lld", w.ticket_type);
    snprintf(sqlish, sizeof(sqlish),
             "{\"ticket_type_id\":%s,\"name\":\"x'); DROP TABLE registrations;--\","
             "\"email\":\"a@example.org\"}",
             tt);
    snprintf(ctrl, sizeof(ctrl),
             "{\"ticket_type_id\":%s,\"name\":\"bell\\u0007\",\"email\":\"a@example.org\"}", tt);
    snprintf(nul, sizeof(nul),
             "{\"ticket_type_id\":%s,\"name\":\"nul\\u0000x\",\"email\":\"a@example.org\"}", tt);
    snprintf(wrongtype, sizeof(wrongtype),
             "{\"ticket_type_id\":%s,\"name\":42,\"email\":\"a@example.org\"}", tt);
    snprintf(unknown_tt, sizeof(unknown_tt),
             "{\"ticket_type_id\":987654321,\"name\":\"N\",\"email\":\"a@example.org\"}");
    snprintf(noemail, sizeof(noemail),
             "{\"ticket_type_id\":%s,\"name\":\"N\",\"email\":\"not-an-email\"}", tt);

    struct {
        const char *method, *path, *token, *body, *header, *type;
        long status;
        const char *code;
    } cases[] = {
        { "POST", reg, NULL, "{bad json", NULL, NULL, 400, "malformed_json" },
        { "POST", reg, NULL, "", NULL, NULL, 400, "malformed_json" },
        { "POST", reg, NULL, "[1,2,3]", NULL, NULL, 400, "malformed_json" },
        { "POST", reg, NULL, "\"a string\"", NULL, NULL, 400, "malformed_json" },
        { "POST", reg, NULL, "{\"a\":1,\"a\":2}", NULL, NULL, 400, "malformed_json" },
        { "POST", reg, NULL, "{\"name\":\"\xff\xfe\"}", NULL, NULL, 400, "malformed_json" },
        { "POST", reg, NULL, "{\"name\":\"\xc3\"}", NULL, NULL, 400, "malformed_json" },
        { "POST", reg, NULL, deep, NULL, NULL, 400, "malformed_json" },
        { "POST", reg, NULL, big, NULL, NULL, 413, "too_large" },
        { "POST", reg, NULL, "{}", NULL, "text/plain", 415, "unsupported_media_type" },
        { "POST", reg, NULL, "{}", NULL, NULL, 422, "invalid" },
        { "POST", reg, NULL, "{\"ticket_type_id\":\"1\",\"name\":\"N\",\"email\":\"a@b.org\"}",
          NULL, NULL, 422, "invalid" },
        { "POST", reg, NULL, "{\"ticket_type_id\":1.5,\"name\":\"N\",\"email\":\"a@b.org\"}", NULL,
          NULL, 422, "invalid" },
        { "POST", reg, NULL, "{\"ticket_type_id\":-3,\"name\":\"N\",\"email\":\"a@b.org\"}", NULL,
          NULL, 422, "invalid" },
        { "POST", reg, NULL,
          "{\"ticket_type_id\":99999999999999999999999,\"name\":\"N\",\"email\":\"a@b.org\"}", NULL,
          NULL, 400, "malformed_json" },
        { "POST", reg, NULL, wrongtype, NULL, NULL, 422, "invalid" },
        { "POST", reg, NULL, long_body, NULL, NULL, 422, "invalid" },
        { "POST", reg, NULL, ctrl, NULL, NULL, 422, "invalid" },
        { "POST", reg, NULL, nul, NULL, NULL, 400, "malformed_json" },
        { "POST", reg, NULL, noemail, NULL, NULL, 422, "invalid" },
        { "POST", reg, NULL, unknown_tt, NULL, NULL, 422, "invalid" },
        { "POST", reg, NULL, sqlish, "Idempotency-Key: has space", NULL, 422, "invalid" },
        { "POST", "/v1/events/987654321/registrations", NULL, unknown_tt, NULL, NULL, 404,
          "not_found" },
        { "POST", "/v1/events/abc/registrations", NULL, unknown_tt, NULL, NULL, 404, "not_found" },
        { "POST", "/v1/events/0/registrations", NULL, unknown_tt, NULL, NULL, 404, "not_found" },
        { "GET", "/v1/events/987654321", NULL, NULL, NULL, NULL, 404, "not_found" },
        { "GET", "/v1/events/1%27%20OR%201=1", NULL, NULL, NULL, NULL, 404, "not_found" },
        { "GET", "/v1/nothing-here", NULL, NULL, NULL, NULL, 404, "not_found" },
        { "PUT", ev, NULL, NULL, NULL, NULL, 405, "method_not_allowed" },
        { "GET", "/v1/search?q=%zz%", NULL, NULL, NULL, NULL, 400, "bad_request" },
        { "GET", "/v1/search?q=ab%2", NULL, NULL, NULL, NULL, 400, "bad_request" },
        { "GET", "/v1/events", "usher_forged-token", NULL, NULL, NULL, 401, "unauthorized" },
        { "GET", "/v1/events", NULL, NULL, "Authorization: Basic dXNlcjpwYXNz", NULL, 401,
          "unauthorized" },
        { "POST", "/v1/events", w.organizer,
          "{\"name\":\"E\",\"starts_at\":\"tomorrow\",\"ends_at\":\"2026-12-01T12:00:00Z\"}", NULL,
          NULL, 422, "invalid" },
        { "POST", "/v1/events", w.organizer,
          "{\"name\":\"E\",\"starts_at\":\"2026-12-02T10:00:00Z\","
          "\"ends_at\":\"2026-12-01T12:00:00Z\"}",
          NULL, NULL, 422, "invalid" },
        { "POST", "/v1/events", w.organizer,
          "{\"name\":\"E\",\"starts_at\":\"2026-12-01T10:00:00Z\","
          "\"ends_at\":\"2026-12-01T12:00:00Z\",\"tier\":\"gigantic\"}",
          NULL, NULL, 422, "invalid" },
        { "POST", "/v1/events", w.organizer,
          "{\"name\":\"E\",\"starts_at\":\"2026-12-01T10:00:00Z\","
          "\"ends_at\":\"2026-12-01T12:00:00Z\",\"timezone\":\"Mars/Olympus\"}",
          NULL, NULL, 422, "invalid" },
        { "POST", "/v1/checkins", w.scanner, "{\"ticket_code\":12345}", NULL, NULL, 422,
          "invalid" },
        { "POST", "/v1/checkins", w.scanner, "{\"ticket_code\":\"U1' OR '1'='1\"}", NULL, NULL, 422,
          "invalid_code" },
    };
    size_t n = sizeof(cases) / sizeof(cases[0]);

    cr_assert_geq(n, 30);
    for (size_t i = 0; i < n; i++) {
        testhttp(&server,
                 &(testhttp_req){ cases[i].method, cases[i].path, cases[i].token, cases[i].body,
                                  cases[i].header, cases[i].type },
                 &resp);
        cr_expect_eq(resp.status, cases[i].status, "case %zu (%s %s): %ld %s", i, cases[i].method,
                     cases[i].path, resp.status, resp.body);
        cr_expect_str_eq(testhttp_error_code(&resp), cases[i].code, "case %zu: %s", i, resp.body);
        testhttp_resp_free(&resp);
    }
    cr_assert_eq(
        testdb_scalar(st, "SELECT count(*) FROM pg_tables WHERE tablename = 'registrations'"), 1);
    /* A 405 says which methods the path takes (RFC 9110). */
    cr_assert_eq(call("PUT", ev, NULL, NULL, &resp), 405);
    cr_assert_not_null(strstr(resp.headers, "Allow: GET, HEAD, PATCH, DELETE\r\n"), "%s",
                       resp.headers);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("GET", "/healthz", NULL, NULL, &resp), 200);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("GET", ev, NULL, NULL, &resp), 200);
    testhttp_resp_free(&resp);
}

Test(api, organizers_manage_their_events_and_changes_enqueue_index_updates, .init = start,
     .fini = stop)
{
    testhttp_resp resp;
    char path[128];
    long long id;
    world w;

    make_world(&w, 10);
    cr_assert_eq(
        call("POST", "/v1/events", w.organizer,
             "{\"name\":\"Fête de la Musique\",\"venue\":\"Parc\","
             "\"timezone\":\"Europe/Paris\",\"tier\":\"mega\","
             "\"starts_at\":\"2027-06-21T10:00:00Z\",\"ends_at\":\"2027-06-21T23:00:00Z\"}",
             &resp),
        201, "%s", resp.body);
    id = json_integer_value(json_object_get(resp.json, "id"));
    cr_assert_eq(json_integer_value(json_object_get(resp.json, "organizer_id")), w.org);
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "tier")), "mega");
    testhttp_resp_free(&resp);
    snprintf(path, sizeof(path), "/v1/events/%lld/ticket-types", id);
    cr_assert_eq(call("POST", path, w.organizer, "{\"name\":\"Pass\",\"capacity\":3}", &resp), 201,
                 "%s", resp.body);
    testhttp_resp_free(&resp);
    snprintf(path, sizeof(path), "/v1/events/%lld", id);
    cr_assert_eq(call("GET", path, NULL, NULL, &resp), 200);
    cr_assert(json_is_null(json_object_get(resp.json, "launch_at")), "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("PATCH", path, w.organizer,
                      "{\"name\":\"Fête 2027\",\"launch_at\":\"2027-03-01T09:00:00+01:00\"}",
                      &resp),
                 200, "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("PATCH", path, w.organizer, "{\"launch_at\":\"2027-03-01 09:00\"}", &resp),
                 422, "a time without an offset: %s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("GET", path, NULL, NULL, &resp), 200);
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "name")), "Fête 2027");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM events WHERE launch_at ="
                                   " '2027-03-01T08:00:00Z'"),
                 1, "the launch time as given, in UTC");
    cr_assert_eq(json_integer_value(json_object_get(
                     json_array_get(json_object_get(resp.json, "ticket_types"), 0), "available")),
                 3);
    testhttp_resp_free(&resp);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'index.document'"
                                   " AND payload->>'type' = 'event'"),
                 2);
    cr_assert_eq(call("GET", "/v1/events", w.other, NULL, &resp), 200);
    cr_assert(strstr(resp.body, "Fête") == NULL, "another organizer sees it: %s", resp.body);
    testhttp_resp_free(&resp);
}

Test(api, metrics_count_requests_by_route_and_status, .init = start, .fini = stop)
{
    testhttp_resp resp;

    for (int i = 0; i < 3; i++) {
        call("GET", "/v1/events/987654321", NULL, NULL, &resp);
        testhttp_resp_free(&resp);
    }
    cr_assert_eq(testapi_scrape(&server, &resp), 200);
    cr_assert(strstr(resp.body, "usher_http_requests_total{route=\"/v1/events/{id}\","
                                "method=\"GET\",status=\"404\"} 3\n") != NULL,
              "%s", resp.body);
    cr_assert(strstr(resp.body, "# TYPE usher_http_request_duration_seconds histogram") != NULL);
    cr_assert(strstr(resp.body, "usher_db_connections{state=\"configured\"} 8\n") != NULL, "%s",
              resp.body);
    testhttp_resp_free(&resp);
}

Test(api, a_report_request_queues_its_job_and_its_status_follows_to_the_download, .init = start,
     .fini = stop)
{
    char path[128], sql[512];
    testhttp_resp resp;
    long long report, job;
    world w;

    make_world(&w, 10);
    snprintf(path, sizeof(path), "/v1/events/%lld/reports", w.event);
    cr_assert_eq(call("POST", path, w.other, "{\"kind\":\"attendees\"}", &resp), 404);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("POST", path, w.scanner, "{\"kind\":\"attendees\"}", &resp), 403);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("POST", path, w.organizer, "{\"kind\":\"everything\"}", &resp), 422);
    testhttp_resp_free(&resp);
    cr_assert_eq(
        call("POST", path, w.organizer, "{\"kind\":\"checkins\",\"format\":\"pdf\"}", &resp), 202,
        "%s", resp.body);
    report = json_integer_value(json_object_get(resp.json, "report_id"));
    job = json_integer_value(json_object_get(resp.json, "job_id"));
    testhttp_resp_free(&resp);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs j JOIN reports r ON r.job_id = j.id"
             " WHERE j.id = %lld AND r.id = %lld AND j.kind = 'report.checkins'"
             " AND (j.payload->>'report_id')::bigint = r.id AND r.format = 'pdf'",
             job, report);
    cr_assert_eq(testdb_scalar(st, sql), 1);
    snprintf(path, sizeof(path), "/v1/jobs/%lld", job);
    cr_assert_eq(call("GET", path, w.organizer, NULL, &resp), 200, "%s", resp.body);
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "state")), "available");
    testhttp_resp_free(&resp);
    cr_assert_eq(call("GET", path, w.other, NULL, &resp), 404);
    testhttp_resp_free(&resp);
    /* The worker's part, done by hand: a document, the report done, the job completed. */
    snprintf(sql, sizeof(sql),
             "WITH d AS (INSERT INTO documents (kind, event_id, filename, content_type, sha256,"
             " size) VALUES ('report', %lld, 'r.pdf', 'application/pdf', repeat('a', 64), 1)"
             " RETURNING id)"
             " UPDATE reports SET state = 'done', progress = 100, rows = 0,"
             " document_id = (SELECT id FROM d), finished_at = now() WHERE id = %lld",
             w.event, report);
    testdb_exec(st, sql);
    snprintf(sql, sizeof(sql), "DELETE FROM usher_jobs WHERE id = %lld", job);
    testdb_exec(st, sql);
    cr_assert_eq(call("GET", path, w.organizer, NULL, &resp), 200, "%s", resp.body);
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "state")), "completed");
    cr_assert_eq(json_integer_value(json_object_get(resp.json, "progress")), 100);
    cr_assert(strstr(resp.body, "\"download\" : \"/v1/content/") != NULL, "%s", resp.body);
    testhttp_resp_free(&resp);
    snprintf(path, sizeof(path), "/v1/reports/%lld", report);
    cr_assert_eq(call("GET", path, w.admin, NULL, &resp), 200, "%s", resp.body);
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "state")), "done");
    testhttp_resp_free(&resp);
}

Test(api, webhook_secrets_are_shown_once_and_inboxes_open_with_the_ticket_code, .init = start,
     .fini = stop)
{
    char code[USHER_TICKET_CODE_MAX], path[256], sql[256];
    testhttp_resp resp;
    long long reg;
    world w;

    make_world(&w, 10);
    cr_assert_eq(call("POST", "/v1/webhooks", w.organizer,
                      "{\"url\":\"https://hooks.example.org/usher\","
                      "\"events\":[\"registration.created\"]}",
                      &resp),
                 201, "%s", resp.body);
    cr_assert_eq(strlen(json_string_value(json_object_get(resp.json, "secret"))), 64);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("GET", "/v1/webhooks", w.organizer, NULL, &resp), 200);
    cr_assert(strstr(resp.body, "hooks.example.org") != NULL && strstr(resp.body, "secret") == NULL,
              "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("GET", "/v1/webhooks", w.other, NULL, &resp), 200);
    cr_assert(strstr(resp.body, "hooks.example.org") == NULL, "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(call("POST", "/v1/webhooks", w.organizer,
                      "{\"url\":\"ftp://x.example.org\",\"events\":[\"registration.created\"]}",
                      &resp),
                 422);
    testhttp_resp_free(&resp);

    registered_code(&w, code, &reg);
    /* The endpoint subscribed to registrations: one delivery job for this one. */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs WHERE kind = 'notify.webhook'"
             " AND payload->>'event' = 'registration.created'"
             " AND (payload->'data'->>'registration_id')::bigint = %lld",
             reg);
    cr_assert_eq(testdb_scalar(st, sql), 1);
    snprintf(sql, sizeof(sql),
             "INSERT INTO notifications (registration_id, title, body)"
             " VALUES (%lld, 'Doors open at 9', 'Bring your ticket.')",
             reg);
    testdb_exec(st, sql);
    snprintf(path, sizeof(path), "/v1/me/notifications?ticket_code=%s", code);
    cr_assert_eq(call("GET", path, NULL, NULL, &resp), 200, "%s", resp.body);
    cr_assert_eq(json_array_size(json_object_get(resp.json, "notifications")), 1, "%s", resp.body);
    cr_assert(strstr(resp.body, "Doors open at 9") != NULL);
    testhttp_resp_free(&resp);
    code[strlen(code) - 1] = code[strlen(code) - 1] == 'A' ? 'B' : 'A';
    snprintf(path, sizeof(path), "/v1/me/notifications?ticket_code=%s", code);
    cr_assert_eq(call("GET", path, NULL, NULL, &resp), 401, "%s", resp.body);
    testhttp_resp_free(&resp);
}

static char search_dir[64];

static void start_with_index(void)
{
    snprintf(search_dir, sizeof(search_dir), "/tmp/usher-api-search-XXXXXX");
    cr_assert_not_null(mkdtemp(search_dir));
    setenv("USHER_SEARCH_DIR", search_dir, 1);
    start();
}

static void stop_with_index(void)
{
    char cmd[128];

    stop();
    snprintf(cmd, sizeof(cmd), "rm -rf %s", search_dir);
    cr_assert_eq(system(cmd), 0);
}

static long search(const char *query, const char *tok, testhttp_resp *resp)
{
    char path[512];

    snprintf(path, sizeof(path), "/v1/search?%s", query);
    return call("GET", path, tok, NULL, resp);
}

Test(api, search_finds_sessions_by_a_stemmed_word_and_attendees_only_for_their_organizer,
     .init = start_with_index, .fini = stop_with_index)
{
    char sql[512], errbuf[256], q[128];
    usher_index *ix = NULL;
    testhttp_resp resp;
    long long session, reg;
    world w;

    make_world(&w, 10);
    /* Nothing indexed yet: no hits, not an error. */
    cr_assert_eq(search("q=queue", NULL, &resp), 200, "%s", resp.body);
    cr_assert_eq(json_integer_value(json_object_get(resp.json, "total")), 0);
    testhttp_resp_free(&resp);
    snprintf(sql, sizeof(sql),
             "INSERT INTO sessions (event_id, title, abstract, speakers, starts_at, ends_at)"
             " VALUES (%lld, 'Durable queues', 'Running workers that never lose a job.',"
             " ARRAY['Grace Hopper'], now(), now()) RETURNING id",
             w.event);
    session = testdb_scalar(st, sql);
    snprintf(sql, sizeof(sql),
             "INSERT INTO registrations (event_id, ticket_type_id, name, email)"
             " VALUES (%lld, %lld, 'Zoë Ångström', 'zoe@example.org') RETURNING id",
             w.event, w.ticket_type);
    reg = testdb_scalar(st, sql);
    cr_assert_eq(usher_index_open_writer(search_dir, "english", &ix, errbuf, sizeof(errbuf)),
                 USHER_OK, "%s", errbuf);
    cr_assert_eq(usher_index_put(ix,
                                 &(usher_index_doc){ "session", session, w.event, "Durable queues",
                                                     "Running workers that never lose a job.",
                                                     "Grace Hopper", NULL, NULL },
                                 errbuf, sizeof(errbuf)),
                 USHER_OK, "%s", errbuf);
    cr_assert_eq(usher_index_put(ix,
                                 &(usher_index_doc){ "attendee", reg, w.event, NULL, NULL, NULL,
                                                     "Zoë Ångström", "zoe@example.org" },
                                 errbuf, sizeof(errbuf)),
                 USHER_OK, "%s", errbuf);
    cr_assert_eq(usher_index_close(ix, errbuf, sizeof(errbuf)), USHER_OK, "%s", errbuf);

    /* "run" finds "Running" through the stemmer; the hit comes back with its title. */
    cr_assert_eq(search("q=run&type=session", NULL, &resp), 200, "%s", resp.body);
    cr_assert_eq(json_integer_value(json_object_get(resp.json, "total")), 1, "%s", resp.body);
    cr_assert(strstr(resp.body, "Durable queues") != NULL, "%s", resp.body);
    testhttp_resp_free(&resp);
    /* Public searches never see attendees. */
    cr_assert_eq(search("q=zoe", NULL, &resp), 200);
    cr_assert_eq(json_integer_value(json_object_get(resp.json, "total")), 0, "%s", resp.body);
    testhttp_resp_free(&resp);
    snprintf(q, sizeof(q), "q=zoe&type=attendee&event_id=%lld", w.event);
    cr_assert_eq(search(q, NULL, &resp), 401);
    testhttp_resp_free(&resp);
    cr_assert_eq(search(q, w.scanner, &resp), 403);
    testhttp_resp_free(&resp);
    cr_assert_eq(search(q, w.other, &resp), 404);
    testhttp_resp_free(&resp);
    cr_assert_eq(search(q, w.organizer, &resp), 200, "%s", resp.body);
    cr_assert(strstr(resp.body, "zoe@example.org") != NULL, "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(search("q=zoe&type=attendee", w.organizer, &resp), 422);
    testhttp_resp_free(&resp);
    cr_assert_eq(search("q=x&limit=1000", NULL, &resp), 422);
    testhttp_resp_free(&resp);
    cr_assert_eq(search("q=x&type=everything", NULL, &resp), 422);
    testhttp_resp_free(&resp);
    cr_assert_eq(search("type=session", NULL, &resp), 422);
    testhttp_resp_free(&resp);
}

/* Check-ins are gathered into batches: many at once, each ticket twice, still admit each once. */
Test(api, a_crowd_at_the_door_admits_every_ticket_exactly_once, .init = start, .fini = stop,
     .timeout = 300)
{
    enum { TICKETS = 100 };
    static char codes[TICKETS][USHER_TICKET_CODE_MAX], bodies[2 * TICKETS][160];
    static testhttp_req reqs[2 * TICKETS];
    static testhttp_resp resps[2 * TICKETS];
    testhttp_resp hook;
    long long regs[TICKETS];
    int ok = 0, again = 0;
    char sql[256];
    world w;

    make_world(&w, TICKETS);
    cr_assert_eq(call("POST", "/v1/webhooks", w.organizer,
                      "{\"url\":\"https://hooks.example.org/door\","
                      "\"events\":[\"checkin.created\"]}",
                      &hook),
                 201, "%s", hook.body);
    testhttp_resp_free(&hook);
    for (int i = 0; i < TICKETS; i++)
        registered_code(&w, codes[i], &regs[i]);
    for (int i = 0; i < 2 * TICKETS; i++) {
        snprintf(bodies[i], sizeof(bodies[i]), "{\"ticket_code\":\"%s\",\"gate\":\"g%d\"}",
                 codes[i % TICKETS], i);
        reqs[i] = (testhttp_req){ "POST", "/v1/checkins", w.scanner, bodies[i], NULL, NULL };
    }
    testhttp_many(&server, reqs, resps, 2 * TICKETS, 64);
    for (int i = 0; i < 2 * TICKETS; i++) {
        const char *result = json_string_value(json_object_get(resps[i].json, "result"));

        cr_assert_not_null(result, "%ld %s", resps[i].status, resps[i].body);
        ok += strcmp(result, "ok") == 0 && resps[i].status == 200;
        again += strcmp(result, "already_checked_in") == 0 && resps[i].status == 409;
        testhttp_resp_free(&resps[i]);
    }
    cr_assert_eq(ok, TICKETS);
    cr_assert_eq(again, TICKETS);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM scans WHERE result = 'ok' AND registration_id BETWEEN %lld"
             " AND %lld",
             regs[0], regs[TICKETS - 1]);
    cr_assert_eq(testdb_scalar(st, sql), TICKETS);
    /* What the admissions set off, written per batch: the analytics jobs'
     * counts add up to the admissions, and each admission has one webhook. */
    cr_assert_eq(testdb_scalar(st, "SELECT coalesce(sum((payload->>'count')::bigint), -1)"
                                   " FROM usher_jobs WHERE kind = 'analytics.rollup'"
                                   " AND payload->>'metric' = 'checkin'"),
                 TICKETS);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'analytics.rollup'"
                                   " AND payload->>'metric' = 'checkin'"
                                   " AND (NOT payload ? 'count' OR NOT payload ? 'at'"
                                   " OR (payload->>'at')::timestamptz"
                                   " NOT BETWEEN now() - interval '10 minutes' AND now())"),
                 0);
    snprintf(sql, sizeof(sql),
             "SELECT count(DISTINCT payload->'data'->>'registration_id') FROM usher_jobs"
             " WHERE kind = 'notify.webhook' AND payload->>'event' = 'checkin.created'"
             " AND (payload->'data'->>'registration_id')::bigint BETWEEN %lld AND %lld",
             regs[0], regs[TICKETS - 1]);
    cr_assert_eq(testdb_scalar(st, sql), TICKETS);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'notify.webhook'"
                                   " AND payload->>'event' = 'checkin.created'"),
                 TICKETS);
}
