/*
 * schemas/openapi.yaml against usher-api's route table (api/router.c): every
 * route documented, nothing documented that the table lacks, and each
 * operation consistent with its route (roles, security, request body, the
 * statuses the dispatcher itself answers). The document is hand-written;
 * this test is what keeps it from drifting when a route is added or changed.
 *
 * The document is read by openapi_doc.c, which refuses any layout it does
 * not understand.
 */
#include <criterion/criterion.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "openapi_doc.h"
#include "router.h"
#include "route.h"

#ifndef OPENAPI_PATH
#define OPENAPI_PATH USHER_SOURCE_DIR "/schemas/openapi.yaml"
#endif

/* Both big enough to keep off the stack; each test loads what it needs. */
static openapi_doc loaded, sample;

static void load_file(openapi_doc *d, const char *name)
{
    FILE *f = fopen(name, "r");

    cr_assert_not_null(f, "cannot open %s", name);
    int rc = openapi_read(f, d);

    fclose(f);
    cr_assert_eq(rc, 0, "%s:%s", name, d->error);
}

static int load_text(openapi_doc *d, const char *text)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    int rc;

    cr_assert_not_null(f);
    rc = openapi_read(f, d);
    fclose(f);
    return rc;
}

static const openapi_op *find_op(const openapi_doc *d, const char *path, const char *method)
{
    for (size_t i = 0; i < d->nops; i++) {
        if (strcmp(d->ops[i].path, path) == 0 && strcmp(d->ops[i].method, method) == 0)
            return &d->ops[i];
    }
    return NULL;
}

static void note(char *report, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void note(char *report, size_t cap, const char *fmt, ...)
{
    size_t used = strlen(report);
    va_list ap;

    if (used + 1 >= cap)
        return;
    va_start(ap, fmt);
    vsnprintf(report + used, cap - used, fmt, ap);
    va_end(ap);
}

/* Routes of the table the document lacks; their count, each named in report. */
static int missing_routes(const openapi_doc *d, char *report, size_t cap)
{
    int n = 0;

    for (size_t i = 0; i < api_nroutes; i++) {
        if (find_op(d, api_routes[i].pattern, api_route_method(i)) == NULL) {
            note(report, cap, "\n  %s %s is not documented", api_route_method(i),
                 api_routes[i].pattern);
            n++;
        }
    }
    return n;
}

static const api_route *route_of(const openapi_op *op)
{
    for (size_t i = 0; i < api_nroutes; i++) {
        if (strcmp(api_routes[i].pattern, op->path) == 0 &&
            strcmp(api_route_method(i), op->method) == 0)
            return &api_routes[i];
    }
    return NULL;
}

/* Operations the table lacks. */
static int extra_ops(const openapi_doc *d, char *report, size_t cap)
{
    int n = 0;

    for (size_t i = 0; i < d->nops; i++) {
        if (route_of(&d->ops[i]) == NULL) {
            note(report, cap, "\n  line %d: %s %s is not in api_routes[]", d->ops[i].line,
                 d->ops[i].method, d->ops[i].path);
            n++;
        }
    }
    return n;
}

static bool any_2xx(const openapi_op *op)
{
    for (int s = 200; s < 300; s++) {
        if (op->status[s])
            return true;
    }
    return false;
}

/* What the operation declares against what its route and the dispatcher do. */
static int op_problems(const openapi_op *op, const api_route *rt, char *report, size_t cap)
{
    int before = (int)strlen(report);
    bool needs_role = rt->roles != API_PUBLIC;

#define PROBLEM(cond, ...)                                                             \
    do {                                                                               \
        if (cond) {                                                                    \
            note(report, cap, "\n  line %d: %s %s: ", op->line, op->method, op->path); \
            note(report, cap, __VA_ARGS__);                                            \
        }                                                                              \
    } while (0)
    PROBLEM(!op->responses, "no responses block");
    PROBLEM(!any_2xx(op), "no 2xx response");
    PROBLEM(!op->roles_set, "no x-usher-roles");
    PROBLEM(op->roles_set && op->roles != rt->roles,
            "x-usher-roles (mask %u) is not the route's (%u)", op->roles, rt->roles);
    PROBLEM(needs_role && (!op->security_bearer || op->security_optional),
            "needs a role but its security is not bearer");
    PROBLEM(!needs_role && op->security_bearer && !op->security_optional,
            "is public but its security requires a token");
    PROBLEM(needs_role && (!op->status[401] || !op->status[403]), "no 401 and 403 responses");
    PROBLEM(rt->json_body != op->body_json, "application/json body %s, the route takes %s",
            op->body_json ? "given" : "missing", rt->json_body ? "a JSON body" : "no JSON body");
    PROBLEM(op->request_body && !op->body_json && !op->body_other,
            "requestBody lists no media type");
    /* A body the dispatcher does not parse is a raw upload the route reads itself. */
    PROBLEM(op->body_other && (rt->json_body || strcmp(op->method, "POST") != 0),
            "a raw body is for a POST route without a JSON body");
    PROBLEM(op->body_other && (!op->status[400] || !op->status[413] || !op->status[415]),
            "takes a raw body but lacks the 400, 413 and 415 answers");
    PROBLEM(rt->json_body && (!op->status[400] || !op->status[413] || !op->status[415]),
            "takes a body but lacks the 400, 413 and 415 answers");
    PROBLEM(rt->rate_limited != op->status[429], "429 %s, the route is %srate limited",
            op->status[429] ? "documented" : "missing", rt->rate_limited ? "" : "not ");
    PROBLEM(strstr(rt->pattern, "{id}") != NULL && !op->status[404], "has an {id} but no 404");
    PROBLEM(!op->status[503], "no 503 (unavailable, draining)");
#undef PROBLEM
    return strlen(report) > (size_t)before;
}

static int all_op_problems(const openapi_doc *d, char *report, size_t cap)
{
    int n = 0;

    for (size_t i = 0; i < d->nops; i++) {
        const api_route *rt = route_of(&d->ops[i]);

        if (rt != NULL)
            n += op_problems(&d->ops[i], rt, report, cap);
    }
    return n;
}

Test(openapi, every_route_of_the_table_is_documented)
{
    char report[4096] = "";

    load_file(&loaded, OPENAPI_PATH);
    cr_assert_geq(api_nroutes, 17, "the route table looks empty");
    cr_assert_eq(missing_routes(&loaded, report, sizeof(report)), 0, "%s:%s", OPENAPI_PATH, report);
}

Test(openapi, nothing_is_documented_that_the_table_lacks)
{
    char report[4096] = "";

    load_file(&loaded, OPENAPI_PATH);
    cr_assert_eq(extra_ops(&loaded, report, sizeof(report)), 0, "%s:%s", OPENAPI_PATH, report);
}

Test(openapi, each_operation_matches_its_route)
{
    char report[8192] = "";

    load_file(&loaded, OPENAPI_PATH);
    cr_assert_eq(all_op_problems(&loaded, report, sizeof(report)), 0, "%s:%s", OPENAPI_PATH,
                 report);
}

/* The checks above can fail: a stale document is caught, route by route. */
Test(openapi, a_stale_document_is_caught)
{
    char report[8192] = "";
    const char *text = "openapi: 3.1.0\n"
                       "paths:\n"
                       "  /healthz:\n"
                       "    get:\n"
                       "      x-usher-roles: [public]\n"
                       "      responses:\n"
                       "        '200': {description: ok}\n"
                       "        '503': {description: down}\n"
                       "  /v1/events:\n"
                       "    get:\n"
                       "      x-usher-roles: [admin]\n"
                       "      responses:\n"
                       "        '200':\n"
                       "          description: listed\n"
                       "    delete:\n"
                       "      x-usher-roles: [admin]\n"
                       "      security:\n"
                       "        - bearer: []\n"
                       "      responses:\n"
                       "        '204': {description: gone}\n"
                       "components: {}\n";

    cr_assert_eq(load_text(&sample, text), 0, "%s", sample.error);
    cr_assert_eq(sample.nops, 3);
    cr_assert_eq(missing_routes(&sample, report, sizeof(report)), (int)api_nroutes - 2);
    cr_assert(strstr(report, "POST /v1/checkins is not documented") != NULL, "%s", report);
    report[0] = '\0';
    cr_assert_eq(extra_ops(&sample, report, sizeof(report)), 1);
    cr_assert(strstr(report, "line 15: DELETE /v1/events") != NULL, "%s", report);
    report[0] = '\0';
    /* GET /v1/events: roles admin only, no security, no 401/403/503. */
    cr_assert_eq(all_op_problems(&sample, report, sizeof(report)), 1, "%s", report);
    cr_assert(strstr(report, "x-usher-roles (mask 1) is not the route's (3)") != NULL, "%s",
              report);
    cr_assert(strstr(report, "security is not bearer") != NULL, "%s", report);
    cr_assert(strstr(report, "no 401 and 403") != NULL, "%s", report);
}

/* A body is JSON exactly where the route parses one; a raw upload is a POST that says its limits.
 */
Test(openapi, request_bodies_match_their_routes)
{
    char report[8192] = "";
    const char *text = "paths:\n"
                       "  /v1/events:\n"
                       "    post:\n"
                       "      x-usher-roles: [admin, organizer]\n"
                       "      security:\n"
                       "        - bearer: []\n"
                       "      requestBody:\n"
                       "        required: true\n"
                       "        content:\n"
                       "          text/plain:\n"
                       "            schema: {type: string}\n"
                       "      responses:\n"
                       "        '201': {description: created}\n"
                       "        '400': {description: bad}\n"
                       "        '401': {description: no}\n"
                       "        '403': {description: no}\n"
                       "        '413': {description: big}\n"
                       "        '415': {description: type}\n"
                       "        '503': {description: down}\n"
                       "  /v1/webhooks:\n"
                       "    get:\n"
                       "      x-usher-roles: [admin, organizer]\n"
                       "      security:\n"
                       "        - bearer: []\n"
                       "      requestBody:\n"
                       "        content:\n"
                       "          application/octet-stream: {}\n"
                       "      responses:\n"
                       "        '200': {description: listed}\n"
                       "        '401': {description: no}\n"
                       "        '403': {description: no}\n"
                       "        '503': {description: down}\n";

    cr_assert_eq(load_text(&sample, text), 0, "%s", sample.error);
    cr_assert_eq(all_op_problems(&sample, report, sizeof(report)), 2, "%s", report);
    cr_assert(strstr(report, "POST /v1/events: application/json body missing") != NULL, "%s",
              report);
    cr_assert(strstr(report, "POST /v1/events: a raw body is for a POST route without") != NULL,
              "%s", report);
    cr_assert(strstr(report, "GET /v1/webhooks: a raw body is for a POST") != NULL, "%s", report);
    cr_assert(strstr(report, "GET /v1/webhooks: takes a raw body but lacks") != NULL, "%s", report);
}

/* A layout the reader does not understand is refused with its line, never guessed at. */
Test(openapi, the_reader_refuses_what_it_cannot_read)
{
    static const struct {
        const char *text, *error;
    } cases[] = {
        { "paths:\n  /a:\n     get:\n", "3: unexpected indent 5" },
        { "paths:\n  /a:\n    fetch:\n", "3: \"fetch\" is neither a method" },
        { "paths:\n  /a:\n    get:\n      responses:\n  /a:\n    get:\n",
          "6: get /a is documented twice" },
        { "paths:\n  /a:\n    get:\n      x-usher-roles: [root]\n", "4: unknown role \"root\"" },
        { "paths:\n  /a:\n    get:\n      x-usher-roles: [public, admin]\n",
          "4: x-usher-roles is either [public] or a list of roles" },
        { "paths:\n  /a:\n    get:\n      x-usher-roles: admin\n", "4: x-usher-roles must be" },
        { "paths:\n  /a:\n    get:\n      responses:\n        200: {}\n", "5: expected a quoted" },
        { "paths:\n  /a:\n    get:\n      security:\n        - basic: []\n",
          "5: security lists only" },
        { "paths:\n  /a:\n    post:\n      requestBody: {$ref: x}\n",
          "4: requestBody must be a block" },
        { "paths:\n  /a:\n    post:\n      requestBody:\n        schema: {}\n",
          "5: requestBody holds only" },
        { "paths:\n  /a:\n    post:\n      requestBody:\n        content:\n          json:\n",
          "6: expected a media type" },
        { "paths:\n  a:\n", "2: expected a path key" },
        { "paths:\n    get:\n", "2: a key before the first path" },
        { "paths:\n  /a:\n\tget:\n", "3: a tab" },
        { "openapi: 3.1.0\n", "1: expected exactly one top-level paths: block" },
        { "paths:\n  /a:\n    get:\npaths:\n", "4: expected exactly one top-level paths:" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_expect_eq(load_text(&sample, cases[i].text), -1, "case %zu was read", i);
        cr_expect(strncmp(sample.error, cases[i].error, strlen(cases[i].error)) == 0,
                  "case %zu: \"%s\", expected \"%s\"", i, sample.error, cases[i].error);
    }
}
