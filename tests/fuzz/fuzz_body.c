/*
 * Fuzz target: a JSON route's request body in usher-api. The input is the
 * body; api_body_parse (router.c) reads it as the dispatcher does, then
 * every field of the object goes through each getter of api/validate.c
 * (string, integer, enum, time, array of strings), the way routes read
 * their fields, on a request without a connection: a getter that refuses
 * a field answers 422 through the real reply path (reply.c, metrics).
 * Properties:
 *   - a parsed body is an object nesting at most API_JSON_DEPTH_MAX deep;
 *     a refused one comes with a reason;
 *   - a getter that refuses has answered the request (the loop's count of
 *     requests in flight drops back), one that accepts has not, and what
 *     it accepts is what it promises (a string of the allowed length
 *     without control characters, an integer in range, one of the words,
 *     a parseable RFC 3339 time, an array of short strings);
 *   - an optional field that is absent is accepted and leaves *out alone.
 */
#include <stdbool.h>

#include "cli.h"
#include "fuzz.h"
#include "metrics.h"
#include "router.h"
#include "validate.h"
#include "reply.h"

#define FIELDS_MAX 32 /* fields of one body put through the getters */

static api_server server;
static api_loop loop = { .srv = &server };

static api_req *request(json_t *body)
{
    api_req *r = calloc(1, sizeof(*r));

    FUZZ_CHECK(r != NULL, "out of memory");
    r->loop = &loop;
    r->body = json_incref(body);
    r->start_ns = api_now_ns();
    atomic_fetch_add(&loop.inflight, 1);
    return r;
}

/* After a getter: answered (and freed) exactly when it refused; else answer it here. */
static void settle(api_req *r, bool accepted, const char *getter, const char *field)
{
    int inflight = atomic_load(&loop.inflight);

    FUZZ_CHECK(inflight == (accepted ? 1 : 0), "%s(\"%s\") %s with %d requests in flight", getter,
               field, accepted ? "accepted" : "refused", inflight);
    if (accepted)
        api_reply_json(r, 200, json_object());
    FUZZ_CHECK(atomic_load(&loop.inflight) == 0, "a request was not answered");
}

static int depth(json_t *v)
{
    const char *key;
    json_t *child;
    size_t i;
    int deepest = 0;

    json_object_foreach(v, key, child)
    {
        int d = depth(child);
        deepest = d > deepest ? d : deepest;
    }
    json_array_foreach(v, i, child)
    {
        int d = depth(child);
        deepest = d > deepest ? d : deepest;
    }
    return json_is_object(v) || json_is_array(v) ? deepest + 1 : 0;
}

/* True when v is a string of min..max characters without NUL or control characters. */
static bool plain_text(json_t *v, size_t min, size_t max)
{
    const char *s = json_string_value(v);
    size_t chars;

    if (s == NULL || strlen(s) != json_string_length(v))
        return false;
    chars = api_text_chars(s, json_string_length(v));
    return chars != (size_t)-1 && chars >= min && chars <= max;
}

static void check_string(json_t *body, const char *field, json_t *v)
{
    api_req *r = request(body);
    const char *out = NULL;
    bool ok = api_get_string(r, field, true, 1, 40, &out);

    settle(r, ok, "api_get_string", field);
    FUZZ_CHECK(ok == plain_text(v, 1, 40), "api_get_string(\"%s\") wrongly %s", field,
               ok ? "accepted" : "refused");
    FUZZ_CHECK(!ok || out == json_string_value(v), "api_get_string: another string");
}

static void check_int(json_t *body, const char *field, json_t *v)
{
    api_req *r = request(body);
    int64_t out = -1;
    bool ok = api_get_int(r, field, true, 1, 1000000000000, &out);
    bool want =
        json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 1000000000000;

    settle(r, ok, "api_get_int", field);
    FUZZ_CHECK(ok == want && (!ok || out == json_integer_value(v)), "api_get_int(\"%s\")", field);
}

static void check_enum(json_t *body, const char *field, json_t *v)
{
    static const char *const words[] = { "csv", "pdf", "attendees", "checkins", NULL };
    api_req *r = request(body);
    const char *out = NULL;
    bool ok = api_get_enum(r, field, true, words, &out);

    settle(r, ok, "api_get_enum", field);
    FUZZ_CHECK(!ok || (out != NULL && json_is_string(v) && strcmp(out, json_string_value(v)) == 0),
               "api_get_enum(\"%s\")", field);
}

static void check_time(json_t *body, const char *field, json_t *v)
{
    api_req *r = request(body);
    const char *out = NULL;
    int64_t us;
    bool ok = api_get_time(r, field, true, &out);

    settle(r, ok, "api_get_time", field);
    FUZZ_CHECK(!ok || (plain_text(v, 1, 40) && strchr(out, 'T') != NULL &&
                       usher_cli_parse_time(out, &us) == 0),
               "api_get_time(\"%s\")", field);
    /* Some routes read times without the 'T' (admin filters): the parser alone. */
    if (json_is_string(v))
        (void)usher_cli_parse_time(json_string_value(v), &us);
}

static void check_strings(json_t *body, const char *field, json_t *v)
{
    api_req *r = request(body);
    json_t *out = NULL, *item;
    bool ok = api_get_strings(r, field, true, 8, 20, &out);
    bool want = json_is_array(v) && json_array_size(v) <= 8;
    size_t i;

    settle(r, ok, "api_get_strings", field);
    json_array_foreach(v, i, item)
    {
        want = want && plain_text(item, 1, 20);
    }
    FUZZ_CHECK(ok == want && (!ok || out == v), "api_get_strings(\"%s\") wrongly %s", field,
               ok ? "accepted" : "refused");
}

/* An optional field that is absent: accepted, nothing written, nothing answered. */
static void check_absent(json_t *body)
{
    const char *missing = "\x01 no such field";
    api_req *r = request(body);
    int64_t n = -7;
    bool ok = json_object_get(body, missing) != NULL || api_get_int(r, missing, false, 0, 1, &n);

    settle(r, ok, "api_get_int", missing);
    FUZZ_CHECK(ok && (n == -7 || json_object_get(body, missing) != NULL), "absent field");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256] = "";
    const char *field;
    json_t *body, *v;
    int fields = 0;

    if (server.metrics == NULL) {
        server.metrics = api_metrics_new(api_routes, api_nroutes);
        FUZZ_CHECK(server.metrics != NULL, "out of memory");
    }
    body = api_body_parse((const char *)data, size, why, sizeof(why));
    if (body == NULL) {
        FUZZ_CHECK(why[0] != '\0', "a body refused without a reason");
        return 0;
    }
    FUZZ_CHECK(json_is_object(body) && depth(body) <= API_JSON_DEPTH_MAX, "body of depth %d",
               depth(body));
    json_object_foreach(body, field, v)
    {
        if (fields++ == FIELDS_MAX)
            break;
        check_string(body, field, v);
        check_int(body, field, v);
        check_enum(body, field, v);
        check_time(body, field, v);
        check_strings(body, field, v);
    }
    check_absent(body);
    json_decref(body);
    return 0;
}
