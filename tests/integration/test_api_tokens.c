/*
 * Tokens and organizers through the API (issue 15), over real HTTP against
 * the real usher-api, and usherctl's token list and organizer list: a token
 * made by an admin works at once and is shown once; the lists never hold a
 * secret or hash; a revocation is refused at once; every write is in
 * audit_log with before and after; everyone but an admin gets 403 (401
 * without a token); unknown ids 404; bad input 422 naming the field.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"
#include "token.h"

TESTDB_SUITE(api_tokens, "usher_test_api_tokens");

static testapi server;
static char admin[USHER_TOKEN_MAX], organizer[USHER_TOKEN_MAX], scanner[USHER_TOKEN_MAX];
static long long org, admin_id;

static void start(void)
{
    int64_t id;

    testdb_exec(st, "TRUNCATE organizers, api_tokens, audit_log RESTART IDENTITY CASCADE");
    org = testdb_scalar(st, "INSERT INTO organizers (name) VALUES ('Org A') RETURNING id");
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ADMIN, 0, 0, "ops", admin, &id), USHER_OK);
    admin_id = id;
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

static long call(testhttp_resp *out, const char *method, const char *tok, const char *body,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static long call(testhttp_resp *out, const char *method, const char *tok, const char *body,
                 const char *fmt, ...)
{
    char path[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    return testhttp(&server, &(testhttp_req){ method, path, tok, body, NULL, NULL }, out);
}

static long long scalar(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static long long scalar(const char *fmt, ...)
{
    char sql[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return testdb_scalar(st, sql);
}

/* Expects status (and with code, that error code); frees the answer. */
static void expect(testhttp_resp *resp, long status, const char *code)
{
    cr_assert_eq(resp->status, status, "%s", resp->body);
    if (code != NULL)
        cr_assert_str_eq(testhttp_error_code(resp), code, "%s", resp->body);
    testhttp_resp_free(resp);
}

/* Expects a 422 naming field; frees the answer. */
static void expect_invalid(testhttp_resp *resp, const char *field)
{
    json_t *error = json_object_get(resp->json, "error");

    cr_assert_eq(resp->status, 422, "%s", resp->body);
    cr_assert_str_eq(json_string_value(json_object_get(error, "field")), field, "%s", resp->body);
    testhttp_resp_free(resp);
}

/* POST /v1/admin/tokens with body; the token's text into text, its id returned. */
static long long make_token(const char *body, char text[USHER_TOKEN_MAX])
{
    testhttp_resp resp;
    long long id;

    cr_assert_eq(call(&resp, "POST", admin, body, "/v1/admin/tokens"), 201, "%s", resp.body);
    snprintf(text, USHER_TOKEN_MAX, "%s", json_string_value(json_object_get(resp.json, "token")));
    id = json_integer_value(json_object_get(resp.json, "id"));
    cr_assert_gt(id, 0);
    cr_assert(strstr(resp.headers, "no-store") != NULL, "%s", resp.headers);
    testhttp_resp_free(&resp);
    return id;
}

Test(api_tokens, only_admins_reach_the_token_and_organizer_routes, .init = start, .fini = stop)
{
    const char *routes[][3] = {
        { "POST", "/v1/admin/tokens", "{\"role\":\"admin\"}" },
        { "GET", "/v1/admin/tokens", NULL },
        { "GET", "/v1/admin/tokens/1", NULL },
        { "POST", "/v1/admin/tokens/1/revoke", NULL },
        { "POST", "/v1/admin/organizers", "{\"name\":\"X\"}" },
        { "GET", "/v1/admin/organizers", NULL },
        { "GET", "/v1/admin/organizers/1", NULL },
    };
    testhttp_resp resp;

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        cr_expect_eq(call(&resp, routes[i][0], NULL, routes[i][2], "%s", routes[i][1]), 401,
                     "%s %s", routes[i][0], routes[i][1]);
        testhttp_resp_free(&resp);
        cr_expect_eq(call(&resp, routes[i][0], organizer, routes[i][2], "%s", routes[i][1]), 403,
                     "%s %s", routes[i][0], routes[i][1]);
        testhttp_resp_free(&resp);
        cr_expect_eq(call(&resp, routes[i][0], scanner, routes[i][2], "%s", routes[i][1]), 403,
                     "%s %s", routes[i][0], routes[i][1]);
        testhttp_resp_free(&resp);
    }
    /* Nothing was made, revoked or recorded by the refused calls. */
    cr_assert_eq(scalar("SELECT count(*) FROM api_tokens"), 3);
    cr_assert_eq(scalar("SELECT count(*) FROM api_tokens WHERE revoked_at IS NOT NULL"), 0);
    cr_assert_eq(scalar("SELECT count(*) FROM organizers"), 1);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log"), 0);
}

static bool used(void *arg)
{
    return scalar("SELECT count(*) FROM api_tokens WHERE id = %lld AND last_used_at IS NOT NULL",
                  *(long long *)arg) == 1;
}

Test(api_tokens, a_token_made_by_an_admin_works_at_once_and_is_stored_only_hashed, .init = start,
     .fini = stop)
{
    char body[256], text[USHER_TOKEN_MAX];
    testhttp_resp resp;
    long long id, event;

    event = scalar("INSERT INTO events (organizer_id, name, starts_at, ends_at) VALUES"
                   " (%lld, 'E', now(), now() + interval '1 day') RETURNING id",
                   org);
    snprintf(body, sizeof(body),
             "{\"role\":\"organizer\",\"organizer_id\":%lld,\"name\":\"box office\"}", org);
    id = make_token(body, text);
    cr_assert_eq(strncmp(text, "usher_", 6), 0, "%s", text);
    cr_assert_eq(strlen(text), 6 + 43);
    /* The organizer token sees its organizer's events. */
    cr_assert_eq(call(&resp, "GET", text, NULL, "/v1/events"), 200, "%s", resp.body);
    cr_assert_eq(json_array_size(json_object_get(resp.json, "events")), 1);
    testhttp_resp_free(&resp);
    /* Stored as its BLAKE2b hash only: the text is nowhere in the row. */
    cr_assert_eq(scalar("SELECT count(*) FROM api_tokens WHERE id = %lld AND role = 'organizer'"
                        " AND organizer_id = %lld AND name = 'box office'"
                        " AND length(token_hash) = 32"
                        " AND position('%s' in row_to_json(api_tokens)::text) = 0",
                        id, org, text),
                 1);
    /* Read back without the secret or hash, with when it was last used (recorded behind). */
    cr_assert(testproc_wait_for(used, &id, 30000), "last_used_at was never set");
    cr_assert_eq(call(&resp, "GET", admin, NULL, "/v1/admin/tokens/%lld", id), 200);
    cr_assert_null(json_object_get(resp.json, "token"));
    cr_assert_null(json_object_get(resp.json, "token_hash"));
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "role")), "organizer");
    cr_assert_eq(json_integer_value(json_object_get(resp.json, "organizer_id")), org);
    cr_assert(json_is_string(json_object_get(resp.json, "last_used_at")), "%s", resp.body);
    cr_assert(json_is_false(json_object_get(resp.json, "revoked")));
    testhttp_resp_free(&resp);
    /* A scanner narrowed to the event, and an admin token: both work. */
    snprintf(body, sizeof(body), "{\"role\":\"scanner\",\"organizer_id\":%lld,\"event_id\":%lld}",
             org, event);
    id = make_token(body, text);
    cr_assert_eq(scalar("SELECT event_id FROM api_tokens WHERE id = %lld", id), event);
    make_token("{\"role\":\"admin\"}", text);
    cr_assert_eq(call(&resp, "GET", text, NULL, "/v1/admin/tokens"), 200);
    testhttp_resp_free(&resp);
    /* Each creation recorded once, after without any secret. */
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE action = 'token.create'"
                        " AND role = 'admin' AND token_id = %lld AND before IS NULL"
                        " AND after ? 'role' AND NOT after ? 'token' AND NOT after ? 'token_hash'",
                        admin_id),
                 3);
}

Test(api_tokens, the_list_never_shows_a_secret_and_filters_and_pages, .init = start, .fini = stop)
{
    char body[128], text[USHER_TOKEN_MAX];
    testhttp_resp resp;
    json_t *t;
    size_t i, seen = 0;
    long long cursor;

    snprintf(body, sizeof(body), "{\"role\":\"scanner\",\"organizer_id\":%lld}", org);
    for (int k = 0; k < 5; k++)
        make_token(body, text);
    /* 3 from the start, 5 scanners now. */
    cr_assert_eq(call(&resp, "GET", admin, NULL, "/v1/admin/tokens"), 200);
    cr_assert_eq(json_array_size(json_object_get(resp.json, "tokens")), 8);
    cr_assert(json_is_null(json_object_get(resp.json, "next_cursor")));
    cr_assert(strstr(resp.body, "usher_") == NULL, "a secret in the list: %s", resp.body);
    cr_assert(strstr(resp.body, "hash") == NULL, "a hash in the list: %s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(
        call(&resp, "GET", admin, NULL, "/v1/admin/tokens?role=scanner&organizer_id=%lld", org),
        200);
    cr_assert_eq(json_array_size(json_object_get(resp.json, "tokens")), 6);
    testhttp_resp_free(&resp);
    /* Pages of 3, newest first: 3 + 3 + 2, each token once. */
    cr_assert_eq(call(&resp, "GET", admin, NULL, "/v1/admin/tokens?limit=3"), 200);
    for (;;) {
        long long last = 1LL << 62;

        json_array_foreach(json_object_get(resp.json, "tokens"), i, t)
        {
            long long id = json_integer_value(json_object_get(t, "id"));

            cr_assert_lt(id, last, "not newest first");
            last = id;
            seen++;
        }
        if (json_is_null(json_object_get(resp.json, "next_cursor")))
            break;
        cursor = json_integer_value(json_object_get(resp.json, "next_cursor"));
        testhttp_resp_free(&resp);
        cr_assert_eq(
            call(&resp, "GET", admin, NULL, "/v1/admin/tokens?limit=3&cursor=%lld", cursor), 200);
    }
    testhttp_resp_free(&resp);
    cr_assert_eq(seen, 8);
    call(&resp, "GET", admin, NULL, "/v1/admin/tokens?role=root");
    expect_invalid(&resp, "role");
    call(&resp, "GET", admin, NULL, "/v1/admin/tokens?revoked=maybe");
    expect_invalid(&resp, "revoked");
    call(&resp, "GET", admin, NULL, "/v1/admin/tokens?limit=0");
    expect_invalid(&resp, "limit");
}

Test(api_tokens, a_revoked_token_is_refused_at_once_and_the_revocation_is_audited, .init = start,
     .fini = stop)
{
    char body[128], text[USHER_TOKEN_MAX];
    testhttp_resp resp;
    long long id;

    snprintf(body, sizeof(body), "{\"role\":\"organizer\",\"organizer_id\":%lld}", org);
    id = make_token(body, text);
    /* Cached by both loops. */
    for (int k = 0; k < 8; k++) {
        call(&resp, "GET", text, NULL, "/v1/events");
        expect(&resp, 200, NULL);
    }
    cr_assert_eq(call(&resp, "POST", admin, NULL, "/v1/admin/tokens/%lld/revoke", id), 200);
    cr_assert(json_is_true(json_object_get(resp.json, "revoked")));
    cr_assert(json_is_true(json_object_get(resp.json, "changed")));
    cr_assert(json_is_string(json_object_get(resp.json, "revoked_at")));
    testhttp_resp_free(&resp);
    for (int k = 0; k < 8; k++) {
        call(&resp, "GET", text, NULL, "/v1/events");
        expect(&resp, 401, "unauthorized");
    }
    /* Again: 200, changed false, nothing more recorded. */
    cr_assert_eq(call(&resp, "POST", admin, NULL, "/v1/admin/tokens/%lld/revoke", id), 200);
    cr_assert(json_is_false(json_object_get(resp.json, "changed")));
    testhttp_resp_free(&resp);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE action = 'token.revoke'"
                        " AND target = 'token' AND target_id = %lld"
                        " AND (before->>'revoked')::boolean = false"
                        " AND (after->>'revoked')::boolean = true AND token_id = %lld",
                        id, admin_id),
                 1);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE action = 'token.revoke'"), 1);
    cr_assert_eq(call(&resp, "GET", admin, NULL, "/v1/admin/tokens?revoked=true"), 200);
    cr_assert_eq(json_array_size(json_object_get(resp.json, "tokens")), 1);
    testhttp_resp_free(&resp);
    cr_assert_eq(call(&resp, "GET", admin, NULL, "/v1/admin/tokens?revoked=false"), 200);
    cr_assert_eq(json_array_size(json_object_get(resp.json, "tokens")), 3);
    testhttp_resp_free(&resp);
    /* Unknown ids. */
    call(&resp, "POST", admin, NULL, "/v1/admin/tokens/987654321/revoke");
    expect(&resp, 404, "not_found");
    call(&resp, "GET", admin, NULL, "/v1/admin/tokens/987654321");
    expect(&resp, 404, "not_found");
}

Test(api_tokens, bad_token_requests_are_422_naming_the_field_and_change_nothing, .init = start,
     .fini = stop)
{
    static const char *const cases[][2] = {
        { "{}", "role" },
        { "{\"role\":\"root\"}", "role" },
        { "{\"role\":\"organizer\"}", "organizer_id" },
        { "{\"role\":\"scanner\",\"organizer_id\":\"1\"}", "organizer_id" },
        { "{\"role\":\"admin\",\"organizer_id\":1}", "organizer_id" },
        { "{\"role\":\"organizer\",\"organizer_id\":987654321}", "organizer_id" },
        { "{\"role\":\"admin\",\"name\":\"a\\u0001b\"}", "name" },
    };
    char body[160];
    testhttp_resp resp;
    long long other, foreign_event;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        call(&resp, "POST", admin, cases[i][0], "/v1/admin/tokens");
        expect_invalid(&resp, cases[i][1]);
    }
    /* event_id: only a scanner's, and only one of its organizer's events. */
    other = scalar("INSERT INTO organizers (name) VALUES ('Org B') RETURNING id");
    foreign_event = scalar("INSERT INTO events (organizer_id, name, starts_at, ends_at) VALUES"
                           " (%lld, 'B', now(), now() + interval '1 day') RETURNING id",
                           other);
    snprintf(body, sizeof(body), "{\"role\":\"organizer\",\"organizer_id\":%lld,\"event_id\":%lld}",
             other, foreign_event);
    call(&resp, "POST", admin, body, "/v1/admin/tokens");
    expect_invalid(&resp, "event_id");
    snprintf(body, sizeof(body), "{\"role\":\"scanner\",\"organizer_id\":%lld,\"event_id\":%lld}",
             org, foreign_event);
    call(&resp, "POST", admin, body, "/v1/admin/tokens");
    expect_invalid(&resp, "event_id");
    call(&resp, "POST", admin, "{\"name\":\"\"}", "/v1/admin/organizers");
    expect_invalid(&resp, "name");
    cr_assert_eq(scalar("SELECT count(*) FROM api_tokens"), 3);
    cr_assert_eq(scalar("SELECT count(*) FROM organizers"), 2);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log"), 0);
}

Test(api_tokens, organizers_are_created_listed_and_read_with_their_counts, .init = start,
     .fini = stop)
{
    testhttp_resp resp;
    long long id;
    json_t *o;

    cr_assert_eq(
        call(&resp, "POST", admin, "{\"name\":\"Stadtfest GmbH\"}", "/v1/admin/organizers"), 201,
        "%s", resp.body);
    id = json_integer_value(json_object_get(resp.json, "id"));
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "name")), "Stadtfest GmbH");
    cr_assert_eq(json_integer_value(json_object_get(resp.json, "events")), 0);
    testhttp_resp_free(&resp);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE action = 'organizer.create'"
                        " AND target_id = %lld AND after->>'name' = 'Stadtfest GmbH'"
                        " AND before IS NULL AND token_id = %lld",
                        id, admin_id),
                 1);
    cr_assert_eq(call(&resp, "GET", admin, NULL, "/v1/admin/organizers"), 200);
    cr_assert_eq(json_array_size(json_object_get(resp.json, "organizers")), 2);
    o = json_array_get(json_object_get(resp.json, "organizers"), 0);
    cr_assert_eq(json_integer_value(json_object_get(o, "id")), org);
    cr_assert_eq(json_integer_value(json_object_get(o, "live_tokens")), 2);
    testhttp_resp_free(&resp);
    cr_assert_eq(call(&resp, "GET", admin, NULL, "/v1/admin/organizers?limit=1"), 200);
    cr_assert_eq(json_array_size(json_object_get(resp.json, "organizers")), 1);
    cr_assert_eq(json_integer_value(json_object_get(resp.json, "next_cursor")), org);
    testhttp_resp_free(&resp);
    cr_assert_eq(call(&resp, "GET", admin, NULL, "/v1/admin/organizers/%lld", id), 200);
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "name")), "Stadtfest GmbH");
    testhttp_resp_free(&resp);
    call(&resp, "GET", admin, NULL, "/v1/admin/organizers/987654321");
    expect(&resp, 404, "not_found");
}

/* Runs "usherctl ARGS" (stdout only) into out; returns its exit status. */
static int ctl(char *out, size_t len, const char *args)
{
    char cmd[1024];
    FILE *p;
    size_t got;
    int status;

    cr_assert_eq(setenv("USHER_DATABASE_URL", cfg.database_url, 1), 0);
    snprintf(cmd, sizeof(cmd), "%s %s 2>/dev/null", USHERCTL_PATH, args);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    got = fread(out, 1, len - 1, p);
    out[got] = '\0';
    status = pclose(p);
    cr_assert(WIFEXITED(status), "usherctl %s did not exit", args);
    return WEXITSTATUS(status);
}

Test(api_tokens, usherctl_lists_tokens_and_organizers_without_secrets, .init = start, .fini = stop)
{
    char out[16384], args[128], made[USHER_TOKEN_MAX];
    json_t *rows;
    size_t lines = 0;

    cr_assert_eq(ctl(out, sizeof(out), "token list --json"), 0, "%s", out);
    rows = json_loads(out, 0, NULL);
    cr_assert(json_is_array(rows), "%s", out);
    cr_assert_eq(json_array_size(rows), 3);
    json_decref(rows);
    cr_assert(strstr(out, admin) == NULL && strstr(out, "usher_") == NULL, "%s", out);
    snprintf(args, sizeof(args), "token list --role scanner --organizer %lld --json", org);
    cr_assert_eq(ctl(out, sizeof(out), args), 0, "%s", out);
    rows = json_loads(out, 0, NULL);
    cr_assert_eq(json_array_size(rows), 1, "%s", out);
    json_decref(rows);
    /* The table: a header and a line per token; --live and --revoked split them. */
    make_token("{\"role\":\"admin\",\"name\":\"night shift\"}", made);
    snprintf(args, sizeof(args), "token revoke %lld", admin_id);
    cr_assert_eq(ctl(out, sizeof(out), args), 0, "%s", out);
    cr_assert_eq(ctl(out, sizeof(out), "token list"), 0, "%s", out);
    for (const char *p = out; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    cr_assert_eq(lines, 1 + 4, "%s", out);
    cr_assert(strstr(out, "night shift") != NULL, "%s", out);
    cr_assert(strstr(out, made) == NULL, "%s", out);
    cr_assert_eq(ctl(out, sizeof(out), "token list --revoked --json"), 0, "%s", out);
    rows = json_loads(out, 0, NULL);
    cr_assert_eq(json_array_size(rows), 1, "%s", out);
    json_decref(rows);
    cr_assert_eq(ctl(out, sizeof(out), "token list --live --revoked"), 2);
    cr_assert_eq(ctl(out, sizeof(out), "organizer create 'Zweite'"), 0, "%s", out);
    cr_assert_eq(ctl(out, sizeof(out), "organizer list --json"), 0, "%s", out);
    rows = json_loads(out, 0, NULL);
    cr_assert_eq(json_array_size(rows), 2, "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(rows, 1), "name")), "Zweite");
    json_decref(rows);
    cr_assert_eq(ctl(out, sizeof(out), "organizer list"), 0, "%s", out);
    cr_assert(strstr(out, "Org A") != NULL && strstr(out, "Zweite") != NULL, "%s", out);
}
