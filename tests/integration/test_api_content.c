/*
 * Sessions and their content through a real usher-api, with a Redis of
 * the test's own (so no other run's cached answers leak in): sessions by
 * role, their index jobs, the session access check and its cache, and
 * uploaded materials: stored, downloaded byte for byte with ETag/304,
 * Range/206/416 and HEAD, the upload limits and types, and who may read.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "api_content_support.h"
#include "docstore.h"
#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"
#include "ticket.h"
#include "token.h"

TESTDB_SUITE(api_content, "usher_test_api_content");

static content_world w;

static void start(void)
{
    content_start(&w, st, &cfg, NULL, 1);
}

static void start_small_uploads(void)
{
    content_start(&w, st, &cfg, "4096", 1);
}

static void start_two_loops(void)
{
    content_start(&w, st, &cfg, NULL, 2);
}

static void stop(void)
{
    content_stop(&w);
}

static long long jobs_for_session(long long id)
{
    char sql[256];

    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs WHERE kind = 'index.document'"
             " AND payload->>'type' = 'session' AND (payload->>'id')::bigint = %lld",
             id);
    return testdb_scalar(st, sql);
}

static const char session_body[] =
    "{\"title\":\"Opening\",\"abstract\":\"Line one\\nline two\",\"speakers\":[\"Ada\",\"Grace\"],"
    "\"starts_at\":\"2026-12-01T09:00:00Z\",\"ends_at\":\"2026-12-01T10:00:00+00:00\","
    "\"capacity\":50}";

Test(api_content, sessions_are_created_read_and_changed_by_their_organizer, .init = start,
     .fini = stop)
{
    char path[96], other[96];
    testhttp_resp resp;
    long long id;

    snprintf(path, sizeof(path), "/v1/events/%lld/sessions", w.event_a);
    cr_assert_eq(content_call(&w, "POST", path, w.org_a, session_body, NULL, &resp), 201, "%s",
                 resp.body);
    id = json_integer_value(json_object_get(resp.json, "id"));
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "title")), "Opening");
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "abstract")),
                     "Line one\nline two");
    cr_assert_eq(json_array_size(json_object_get(resp.json, "speakers")), 2);
    cr_assert_eq(json_integer_value(json_object_get(resp.json, "capacity")), 50);
    cr_assert_eq(json_array_size(json_object_get(resp.json, "content")), 0);
    cr_assert_eq(jobs_for_session(id), 1, "the index job was not enqueued with the session");
    testhttp_resp_free(&resp);
    /* Roles: another organizer's event is absent; scanners and strangers may not. */
    cr_assert_eq(content_call(&w, "POST", path, w.org_b, session_body, NULL, NULL), 404);
    cr_assert_eq(content_call(&w, "POST", path, w.scanner, session_body, NULL, NULL), 403);
    cr_assert_eq(content_call(&w, "POST", path, NULL, session_body, NULL, NULL), 401);
    cr_assert_eq(content_call(&w, "POST", path, w.admin, session_body, NULL, NULL), 201);
    /* Bad sessions: 422 naming the field. */
    static const char *const bad[] = {
        "{\"title\":\"\",\"starts_at\":\"2026-12-01T09:00:00Z\",\"ends_at\":\"2026-12-01T10:00:00Z\"}",
        "{\"title\":\"T\",\"starts_at\":\"2026-12-01T09:00:00Z\",\"ends_at\":\"2026-12-01T08:00:00Z\"}",
        "{\"title\":\"T\",\"starts_at\":\"yesterday\",\"ends_at\":\"2026-12-01T08:00:00Z\"}",
        "{\"title\":\"T\",\"starts_at\":\"2026-12-01T09:00:00Z\",\"ends_at\":\"2026-12-01T10:00:00Z\","
        "\"capacity\":-1}",
        "{\"title\":\"T\",\"starts_at\":\"2026-12-01T09:00:00Z\",\"ends_at\":\"2026-12-01T10:00:00Z\","
        "\"speakers\":[\"\"]}",
        "{\"title\":\"T\",\"starts_at\":\"2026-12-01T09:00:00Z\",\"ends_at\":\"2026-12-01T10:00:00Z\","
        "\"abstract\":\"bell\\u0007\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(content_call(&w, "POST", path, w.org_a, bad[i], NULL, NULL), 422, "%s",
                     bad[i]);
    cr_assert_eq(content_call(&w, "POST", path, w.org_a, content_long_session(5001, 0), NULL, NULL),
                 422);
    cr_assert_eq(content_call(&w, "POST", path, w.org_a, content_long_session(5000, 0), NULL, NULL),
                 201);
    cr_assert_eq(content_call(&w, "POST", path, w.org_a, content_long_session(10, 21), NULL, NULL),
                 422);
    /* Public reads. */
    cr_assert_eq(content_call(&w, "GET", path, NULL, NULL, NULL, &resp), 200, "%s", resp.body);
    cr_assert_eq(json_array_size(json_object_get(resp.json, "sessions")), 3);
    testhttp_resp_free(&resp);
    snprintf(other, sizeof(other), "/v1/events/%lld/sessions", w.event_a + 1000);
    cr_assert_eq(content_call(&w, "GET", other, NULL, NULL, NULL, NULL), 404);
    snprintf(path, sizeof(path), "/v1/sessions/%lld", id);
    cr_assert_eq(content_call(&w, "GET", path, NULL, NULL, NULL, &resp), 200);
    cr_assert_eq(json_integer_value(json_object_get(resp.json, "event_id")), w.event_a);
    testhttp_resp_free(&resp);
    cr_assert_eq(content_call(&w, "GET", "/v1/sessions/999999", NULL, NULL, NULL, NULL), 404);
    /* Changes: the organizer's, re-indexed; another's is absent; the times stay in order. */
    cr_assert_eq(content_call(&w, "PATCH", path, w.org_a,
                              "{\"title\":\"Keynote\",\"speakers\":[\"Ada\"]}", NULL, &resp),
                 200, "%s", resp.body);
    cr_assert_str_eq(json_string_value(json_object_get(resp.json, "title")), "Keynote");
    cr_assert_eq(json_array_size(json_object_get(resp.json, "speakers")), 1);
    cr_assert_eq(json_integer_value(json_object_get(resp.json, "capacity")), 50);
    testhttp_resp_free(&resp);
    cr_assert_eq(jobs_for_session(id), 2);
    cr_assert_eq(content_call(&w, "PATCH", path, w.org_b, "{\"title\":\"Mine\"}", NULL, NULL), 404);
    cr_assert_eq(content_call(&w, "PATCH", path, w.scanner, "{\"title\":\"X\"}", NULL, NULL), 403);
    cr_assert_eq(content_call(&w, "PATCH", path, NULL, "{\"title\":\"X\"}", NULL, NULL), 401);
    cr_assert_eq(content_call(&w, "PATCH", path, w.org_a, "{\"ends_at\":\"2026-11-30T10:00:00Z\"}",
                              NULL, NULL),
                 422);
    cr_assert_eq(jobs_for_session(id), 2);
}

static const char *access_of(long long session, const char *code, long expect, testhttp_resp *resp)
{
    char path[256];

    snprintf(path, sizeof(path), "/v1/sessions/%lld/access?ticket_code=%s", session, code);
    cr_assert_eq(content_call(&w, "GET", path, NULL, NULL, NULL, resp), expect, "%s", resp->body);
    if (json_is_true(json_object_get(resp->json, "access")))
        return "yes";
    return json_string_value(json_object_get(resp->json, "reason"));
}

Test(api_content, the_access_check_answers_each_case_and_caches_the_answer, .init = start,
     .fini = stop)
{
    long long s_a = content_session(&w, st, w.event_a), s_b = content_session(&w, st, w.event_b);
    long long r_ok = content_registration(&w, st, w.event_a, "confirmed");
    long long r_gone = content_registration(&w, st, w.event_a, "cancelled");
    long long r_b = content_registration(&w, st, w.event_b, "confirmed");
    char code[USHER_TICKET_CODE_MAX], forged[USHER_TICKET_CODE_MAX], sql[128];
    testhttp_resp resp;

    content_code(&w, w.event_a, r_ok, code);
    cr_assert_str_eq(access_of(s_a, code, 200, &resp), "yes");
    testhttp_resp_free(&resp);
    content_code(&w, w.event_a, r_gone, forged);
    cr_assert_str_eq(access_of(s_a, forged, 200, &resp), "cancelled");
    testhttp_resp_free(&resp);
    content_code(&w, w.event_b, r_b, forged);
    cr_assert_str_eq(access_of(s_a, forged, 200, &resp), "wrong_event");
    testhttp_resp_free(&resp);
    cr_assert_str_eq(access_of(s_b, forged, 200, &resp), "yes");
    testhttp_resp_free(&resp);
    content_code(&w, w.event_a, 987654321, forged);
    cr_assert_str_eq(access_of(s_a, forged, 200, &resp), "unknown_ticket");
    testhttp_resp_free(&resp);
    content_forge(code, forged);
    cr_assert_str_eq(access_of(s_a, forged, 200, &resp), "invalid_code");
    testhttp_resp_free(&resp);
    access_of(999999, code, 404, &resp);
    cr_assert_str_eq(testhttp_error_code(&resp), "unknown_session");
    testhttp_resp_free(&resp);
    cr_assert_eq(content_call(&w, "GET", "/v1/sessions/1/access", NULL, NULL, NULL, NULL), 422);
    /* Cancelled behind the API's back: the cached "yes" stands until its TTL. */
    long long hits =
        content_metric(&w, "usher_cache_requests_total{cache=\"access\",result=\"hit\"} ");
    snprintf(sql, sizeof(sql), "UPDATE registrations SET status = 'cancelled' WHERE id = %lld",
             r_ok);
    testdb_exec(st, sql);
    cr_assert_str_eq(access_of(s_a, code, 200, &resp), "yes", "not served from the cache");
    testhttp_resp_free(&resp);
    cr_assert_eq(content_metric(&w, "usher_cache_requests_total{cache=\"access\",result=\"hit\"} "),
                 hits + 1);
    /* Forged codes never reach the cache (nor the database). */
    cr_assert_eq(
        content_metric(&w, "usher_cache_requests_total{cache=\"access\",result=\"miss\"} "), 6);
}

Test(api_content, an_upload_is_stored_and_served_byte_for_byte, .init = start, .fini = stop)
{
    long long session = content_session(&w, st, w.event_a), doc;
    unsigned char *data = content_bytes(102400);
    char path[256], hex[65], header[160], err[256];
    unsigned char sha[crypto_hash_sha256_BYTES], *stored;
    testhttp_resp resp;

    doc = content_upload(&w, w.event_a, session, "deck (final).pdf", "application/pdf", data,
                         102400, w.org_a, 201);
    crypto_hash_sha256(sha, data, 102400);
    sodium_bin2hex(hex, sizeof(hex), sha, sizeof(sha));
    stored = malloc(102400);
    cr_assert_not_null(stored);
    cr_assert_eq(usher_docstore_read(&cfg, st, hex, 0, 102400, stored, err, sizeof(err)), USHER_OK,
                 "not in the document store: %s", err);
    cr_assert(memcmp(stored, data, 102400) == 0, "the stored bytes differ from the upload");
    free(stored);
    snprintf(path, sizeof(path), "/v1/content/%lld", doc);
    cr_assert_eq(content_call(&w, "GET", path, w.org_a, NULL, NULL, &resp), 200);
    cr_assert_eq(resp.len, 102400);
    cr_assert(memcmp(resp.body, data, 102400) == 0, "the download differs from the upload");
    snprintf(header, sizeof(header), "\"%s\"", hex);
    cr_assert_str_eq(content_header(&resp, "ETag"), header);
    cr_assert_str_eq(content_header(&resp, "Cache-Control"), "private, max-age=3600");
    cr_assert_str_eq(content_header(&resp, "Content-Type"), "application/pdf");
    cr_assert_str_eq(content_header(&resp, "Accept-Ranges"), "bytes");
    cr_assert_str_eq(content_header(&resp, "Content-Disposition"),
                     "attachment; filename=\"deck (final).pdf\";"
                     " filename*=UTF-8''deck%20%28final%29.pdf");
    testhttp_resp_free(&resp);
    /* The client's copy is current: 304, no body. */
    snprintf(header, sizeof(header), "If-None-Match: \"%s\"", hex);
    cr_assert_eq(content_call(&w, "GET", path, w.org_a, NULL, header, &resp), 304);
    cr_assert_eq(resp.len, 0);
    testhttp_resp_free(&resp);
    /* Ranges. */
    cr_assert_eq(content_call(&w, "GET", path, w.org_a, NULL, "Range: bytes=100-199", &resp), 206);
    cr_assert_eq(resp.len, 100);
    cr_assert(memcmp(resp.body, data + 100, 100) == 0);
    cr_assert_str_eq(content_header(&resp, "Content-Range"), "bytes 100-199/102400");
    testhttp_resp_free(&resp);
    cr_assert_eq(content_call(&w, "GET", path, w.org_a, NULL, "Range: bytes=-10", &resp), 206);
    cr_assert(resp.len == 10 && memcmp(resp.body, data + 102390, 10) == 0);
    testhttp_resp_free(&resp);
    cr_assert_eq(content_call(&w, "GET", path, w.org_a, NULL, "Range: bytes=102000-", &resp), 206);
    cr_assert(resp.len == 400 && memcmp(resp.body, data + 102000, 400) == 0);
    testhttp_resp_free(&resp);
    cr_assert_eq(content_call(&w, "GET", path, w.org_a, NULL, "Range: bytes=999999999-", &resp),
                 416);
    cr_assert_str_eq(content_header(&resp, "Content-Range"), "bytes */102400");
    testhttp_resp_free(&resp);
    cr_assert_eq(content_call(&w, "GET", path, w.org_a, NULL, "Range: bytes=0-0", &resp), 206);
    cr_assert(resp.len == 1 && resp.body[0] == (char)data[0]);
    testhttp_resp_free(&resp);
    /* Several ranges, and malformed ones, get the whole file. */
    static const char *const whole[] = { "Range: bytes=0-1,5-6", "Range: bytes=200-100",
                                         "Range: bytes=-", "Range: lines=1-2" };
    for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++) {
        cr_assert_eq(content_call(&w, "GET", path, w.org_a, NULL, whole[i], &resp), 200, "%s",
                     whole[i]);
        cr_assert_eq(resp.len, 102400, "%s", whole[i]);
        testhttp_resp_free(&resp);
    }
    cr_assert_eq(content_call(&w, "HEAD", path, w.org_a, NULL, NULL, &resp), 200);
    cr_assert_str_eq(content_header(&resp, "Content-Length"), "102400");
    testhttp_resp_free(&resp);
    /* Listed for the organizer, and shown with the session. */
    snprintf(path, sizeof(path), "/v1/events/%lld/content", w.event_a);
    cr_assert_eq(content_call(&w, "GET", path, w.org_a, NULL, NULL, &resp), 200);
    cr_assert_eq(json_array_size(json_object_get(resp.json, "content")), 1);
    testhttp_resp_free(&resp);
    cr_assert_eq(content_call(&w, "GET", path, w.org_b, NULL, NULL, NULL), 404);
    snprintf(path, sizeof(path), "/v1/sessions/%lld", session);
    cr_assert_eq(content_call(&w, "GET", path, NULL, NULL, NULL, &resp), 200);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_array_get(json_object_get(resp.json, "content"), 0), "id")),
                 doc);
    testhttp_resp_free(&resp);
    free(data);
}

Test(api_content, uploads_are_refused_by_type_owner_and_name, .init = start, .fini = stop)
{
    long long s_a = content_session(&w, st, w.event_a), s_b = content_session(&w, st, w.event_b);
    unsigned char *data = content_bytes(2000);

    content_upload(&w, w.event_a, s_a, "x.exe", "application/x-msdownload", data, 2000, w.org_a,
                   415);
    content_upload(&w, w.event_a, s_a, "notes.txt", "text/plain; charset=utf-8", data, 2000,
                   w.org_a, 201);
    content_upload(&w, w.event_a, s_a, "a.png", "image/png", data, 2000, w.org_b, 404);
    content_upload(&w, w.event_a, s_a, "a.png", "image/png", data, 2000, w.scanner, 403);
    content_upload(&w, w.event_a, s_a, "a.png", "image/png", data, 2000, NULL, 401);
    content_upload(&w, w.event_a, s_b, "a.png", "image/png", data, 2000, w.org_a, 422);
    content_upload(&w, w.event_a, s_a, "../a.png", "image/png", data, 2000, w.org_a, 422);
    content_upload(&w, w.event_a, s_a, "a.png", "image/png", data, 0, w.org_a, 400);
    content_upload(&w, w.event_a, s_a, "slides.pptx",
                   "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                   data, 2000, w.admin, 201);
    /* Each stored upload, and only those, indexes its session again. */
    cr_assert_eq(jobs_for_session(s_a), 2);
    cr_assert_eq(jobs_for_session(s_b), 0);
    free(data);
}

Test(api_content, an_upload_over_the_limit_is_413, .init = start_small_uploads, .fini = stop)
{
    long long session = content_session(&w, st, w.event_a);
    unsigned char *data = content_bytes(5000);

    content_upload(&w, w.event_a, session, "big.pdf", "application/pdf", data, 4097, w.org_a, 413);
    content_upload(&w, w.event_a, session, "fits.pdf", "application/pdf", data, 4096, w.org_a, 201);
    free(data);
}

Test(api_content, downloads_are_given_only_to_who_may_read_them, .init = start, .fini = stop)
{
    long long session = content_session(&w, st, w.event_a);
    long long r_ok = content_registration(&w, st, w.event_a, "confirmed");
    long long r_other = content_registration(&w, st, w.event_a, "confirmed");
    long long r_gone = content_registration(&w, st, w.event_a, "cancelled");
    long long r_b = content_registration(&w, st, w.event_b, "confirmed");
    unsigned char *data = content_bytes(3000);
    long long doc = content_upload(&w, w.event_a, session, "m.pdf", "application/pdf", data, 3000,
                                   w.org_a, 201);
    long long ticket = content_document(&w, st, "ticket", w.event_a, r_ok, data, 1000);
    long long report = content_document(&w, st, "report", w.event_a, 0, data, 500);
    char code[USHER_TICKET_CODE_MAX], forged[USHER_TICKET_CODE_MAX];

    cr_assert_eq(content_get(&w, doc, NULL, NULL, NULL), 401);
    cr_assert_eq(content_get(&w, doc, w.org_b, NULL, NULL), 404);
    cr_assert_eq(content_get(&w, doc, w.scanner, NULL, NULL), 403);
    cr_assert_eq(content_get(&w, doc, w.admin, NULL, NULL), 200);
    cr_assert_eq(content_get(&w, doc, w.org_a, NULL, NULL), 200);
    cr_assert_eq(content_get(&w, 999999, w.admin, NULL, NULL), 404);
    content_code(&w, w.event_a, r_ok, code);
    cr_assert_eq(content_get(&w, doc, NULL, code, NULL), 200);
    cr_assert_eq(content_get(&w, doc, NULL, NULL, code), 200, "X-Ticket-Code");
    cr_assert_eq(content_get(&w, ticket, NULL, code, NULL), 200);
    cr_assert_eq(content_get(&w, report, NULL, code, NULL), 403);
    content_forge(code, forged);
    cr_assert_eq(content_get(&w, doc, NULL, forged, NULL), 403);
    content_code(&w, w.event_a, r_other, code);
    cr_assert_eq(content_get(&w, doc, NULL, code, NULL), 200);
    cr_assert_eq(content_get(&w, ticket, NULL, code, NULL), 403, "another attendee's ticket");
    content_code(&w, w.event_a, r_gone, code);
    cr_assert_eq(content_get(&w, doc, NULL, code, NULL), 403, "a cancelled registration");
    content_code(&w, w.event_b, r_b, code);
    cr_assert_eq(content_get(&w, doc, NULL, code, NULL), 403, "another event's ticket");
    cr_assert_eq(content_get(&w, report, w.org_a, NULL, NULL), 200);
    cr_assert_eq(content_get(&w, report, w.org_b, NULL, NULL), 404);
    free(data);
}

#define PARALLEL_UPLOADS 64

Test(api_content, concurrent_uploads_on_two_loops_all_land, .init = start_two_loops, .fini = stop)
{
    long long session = content_session(&w, st, w.event_a);
    testhttp_req reqs[PARALLEL_UPLOADS];
    testhttp_resp resps[PARALLEL_UPLOADS];
    char paths[PARALLEL_UPLOADS][128], bodies[PARALLEL_UPLOADS][64], sql[256];

    for (int i = 0; i < PARALLEL_UPLOADS; i++) {
        snprintf(paths[i], sizeof(paths[i]),
                 "/v1/events/%lld/content?session_id=%lld&filename=n%d.txt", w.event_a, session, i);
        /* Every other body repeats one: the same bytes land at the same path. */
        snprintf(bodies[i], sizeof(bodies[i]), "notes %d\n", i % 2 == 0 ? i : 1);
        reqs[i] = (testhttp_req){ "POST", paths[i], w.org_a, bodies[i], NULL, "text/plain" };
    }
    testhttp_many(&w.api, reqs, resps, PARALLEL_UPLOADS, 16);
    for (int i = 0; i < PARALLEL_UPLOADS; i++) {
        long long doc = json_integer_value(json_object_get(resps[i].json, "id"));
        testhttp_resp got;

        cr_assert_eq(resps[i].status, 201, "upload %d: %s", i, resps[i].body);
        snprintf(paths[i], sizeof(paths[i]), "/v1/content/%lld", doc);
        cr_assert_eq(content_call(&w, "GET", paths[i], w.org_a, NULL, NULL, &got), 200);
        cr_assert_str_eq(got.body, bodies[i]);
        testhttp_resp_free(&got);
        testhttp_resp_free(&resps[i]);
    }
    snprintf(sql, sizeof(sql),
             "SELECT count(DISTINCT sha256) FROM documents WHERE session_id = %lld", session);
    cr_assert_eq(testdb_scalar(st, sql), PARALLEL_UPLOADS / 2 + 1);
}

typedef struct upload_batch {
    testhttp_req reqs[PARALLEL_UPLOADS];
    testhttp_resp resps[PARALLEL_UPLOADS];
    char paths[PARALLEL_UPLOADS][128], bodies[PARALLEL_UPLOADS][64];
} upload_batch;

static void *send_batch(void *arg)
{
    upload_batch *b = arg;

    testhttp_many(&w.api, b->reqs, b->resps, PARALLEL_UPLOADS, 8);
    return NULL;
}

static bool some_uploads_recorded(void *arg)
{
    char sql[128];

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM documents WHERE session_id = %lld",
             *(long long *)arg);
    return testdb_scalar(st, sql) > 0;
}

Test(api_content, sigterm_during_uploads_loses_nothing_it_confirmed, .init = start_two_loops,
     .fini = stop)
{
    long long session = content_session(&w, st, w.event_a);
    upload_batch *b = calloc(1, sizeof(*b));
    pthread_t sender;
    int confirmed = 0;

    cr_assert_not_null(b);
    for (int i = 0; i < PARALLEL_UPLOADS; i++) {
        snprintf(b->paths[i], sizeof(b->paths[i]),
                 "/v1/events/%lld/content?session_id=%lld&filename=s%d.txt", w.event_a, session, i);
        snprintf(b->bodies[i], sizeof(b->bodies[i]), "stop %d", i);
        b->reqs[i] =
            (testhttp_req){ "POST", b->paths[i], w.org_a, b->bodies[i], NULL, "text/plain" };
    }
    cr_assert_eq(pthread_create(&sender, NULL, send_batch, b), 0);
    cr_assert(testproc_wait_for(some_uploads_recorded, &session, 60000));
    testapi_stop(&w.api); /* drains: exit status 0, nothing leaked (ASan) */
    pthread_join(sender, NULL);
    for (int i = 0; i < PARALLEL_UPLOADS; i++) {
        char sql[256];

        /* 201 (stored and recorded), 503 (refused while draining) or no answer. */
        cr_assert(b->resps[i].status == 201 || b->resps[i].status == 503 || b->resps[i].status == 0,
                  "upload %d: %ld %s", i, b->resps[i].status, b->resps[i].body);
        if (b->resps[i].status == 201) {
            snprintf(sql, sizeof(sql),
                     "SELECT count(*) FROM documents WHERE id = %lld AND filename = 's%d.txt'",
                     (long long)json_integer_value(json_object_get(b->resps[i].json, "id")), i);
            cr_assert_eq(testdb_scalar(st, sql), 1, "confirmed upload %d has no row", i);
            confirmed++;
        }
        testhttp_resp_free(&b->resps[i]);
    }
    cr_assert_gt(confirmed, 0);
    free(b);
}
