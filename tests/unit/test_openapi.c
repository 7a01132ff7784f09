/*
 * schemas/openapi.yaml against usher-api's route table (api/router.c): every
 * route documented, nothing documented that the table lacks, and each
 * operation consistent with its route (roles, security, request body, the
 * statuses the dispatcher itself answers). The document is hand-written;
 * this test is what keeps it from drifting when a route is added or changed.
 *
 * The reader is deliberately small and strict: it reads only the `paths:`
 * block, line by line, with path keys at indent 2, methods at indent 4 and
 * operation keys at indent 6, and refuses a layout it does not understand
 * rather than guess (a YAML library would hide an indentation slip that
 * moves an operation out of its path).
 */
#include <criterion/criterion.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router.h"

#ifndef OPENAPI_PATH
#define OPENAPI_PATH USHER_SOURCE_DIR "/schemas/openapi.yaml"
#endif

#define OPS_MAX    128
#define STATUS_MAX 600

typedef enum section { SEC_NONE, SEC_RESPONSES, SEC_SECURITY } section;

typedef struct doc_op {
    char path[160];
    char method[8]; /* upper case, as api_route_method() spells it */
    int line;
    bool roles_set; /* x-usher-roles was given */
    unsigned roles; /* API_PUBLIC for [public] */
    bool request_body;
    bool responses;
    bool security_bearer;   /* security lists "- bearer: []" */
    bool security_optional; /* security lists "- {}": a token may be left out */
    bool status[STATUS_MAX];
} doc_op;

typedef struct doc {
    doc_op ops[OPS_MAX];
    size_t nops;
    char error[256]; /* "LINE: reason" of the first line refused, or "" */
} doc;

/* Both big enough to keep off the stack; each test loads what it needs. */
static doc loaded, sample;

static int refuse(doc *d, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int refuse(doc *d, int line, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(d->error, sizeof(d->error), "%d: ", line);

    va_start(ap, fmt);
    vsnprintf(d->error + n, sizeof(d->error) - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* The key of "key: rest" (without the colon) into key; rest or NULL when the line is no key. */
static const char *split_key(const char *text, char *key, size_t cap)
{
    const char *colon = strchr(text, ':');
    size_t len = colon != NULL ? (size_t)(colon - text) : 0;

    if (colon == NULL || len == 0 || len >= cap || (colon[1] != '\0' && colon[1] != ' '))
        return NULL;
    memcpy(key, text, len);
    key[len] = '\0';
    return colon[1] == ' ' ? colon + 2 : colon + 1;
}

/* x-usher-roles: "[admin, organizer]" or "[public]" into a roles mask. */
static int parse_roles(doc *d, int line, const char *list, unsigned *roles)
{
    char buf[128], *save = NULL;
    size_t len = strlen(list);
    bool public = false;

    if (len < 2 || len >= sizeof(buf) || list[0] != '[' || list[len - 1] != ']')
        return refuse(d, line, "x-usher-roles must be a flow list like [admin, organizer]");
    memcpy(buf, list + 1, len - 2);
    buf[len - 2] = '\0';
    *roles = 0;
    for (char *w = strtok_r(buf, ", ", &save); w != NULL; w = strtok_r(NULL, ", ", &save)) {
        usher_role role = usher_role_parse(w);

        if (strcmp(w, "public") == 0)
        public = true;
        else if (role == USHER_ROLE_NONE) return refuse(d, line, "unknown role \"%s\"", w);
        else *roles |= (unsigned)role;
    }
    if (public == (*roles != 0))
        return refuse(d, line, "x-usher-roles is either [public] or a list of roles");
    return 0;
}

static int method_key(doc *d, int line, const char *path, const char *key)
{
    static const char *const methods[] = { "get", "post", "patch", "put", "delete" };
    doc_op *op;

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(key, methods[i]) != 0)
            continue;
        for (size_t k = 0; k < d->nops; k++) {
            if (strcmp(d->ops[k].path, path) == 0 && strcasecmp(d->ops[k].method, key) == 0)
                return refuse(d, line, "%s %s is documented twice", key, path);
        }
        if (d->nops == OPS_MAX)
            return refuse(d, line, "more than %d operations", OPS_MAX);
        op = &d->ops[d->nops++];
        memset(op, 0, sizeof(*op));
        snprintf(op->path, sizeof(op->path), "%s", path);
        for (size_t c = 0; key[c] != '\0'; c++)
            op->method[c] = (char)(key[c] - 'a' + 'A');
        op->line = line;
        return 0;
    }
    if (strcmp(key, "parameters") == 0 || strcmp(key, "summary") == 0 ||
        strcmp(key, "description") == 0)
        return 1; /* a key of the path item, not an operation */
    return refuse(d, line, "\"%s\" is neither a method nor a path-item key", key);
}

/* One line of an operation (indent 6 and deeper). */
static int op_line(doc *d, int line, doc_op *op, section *sec, int indent, const char *text)
{
    char key[64];
    const char *rest = split_key(text, key, sizeof(key));

    if (indent == 6) {
        *sec = SEC_NONE;
        if (rest == NULL)
            return refuse(d, line, "expected an operation key");
        if (strcmp(key, "responses") == 0) {
            op->responses = true;
            *sec = SEC_RESPONSES;
        } else if (strcmp(key, "security") == 0) {
            *sec = SEC_SECURITY;
        } else if (strcmp(key, "requestBody") == 0) {
            op->request_body = true;
        } else if (strcmp(key, "x-usher-roles") == 0) {
            op->roles_set = true;
            return parse_roles(d, line, rest, &op->roles);
        }
        return 0;
    }
    if (indent != 8 || *sec == SEC_NONE)
        return 0;
    if (*sec == SEC_SECURITY) {
        if (strcmp(text, "- bearer: []") == 0)
            op->security_bearer = true;
        else if (strcmp(text, "- {}") == 0)
            op->security_optional = true;
        else
            return refuse(d, line, "security lists only \"- bearer: []\" and \"- {}\"");
        return 0;
    }
    /* A response: '200': ... */
    if (strlen(text) < 6 || text[0] != '\'' || text[4] != '\'' || text[5] != ':')
        return refuse(d, line, "expected a quoted status like '200':");
    int status = atoi(text + 1);

    if (status < 100 || status >= STATUS_MAX)
        return refuse(d, line, "status %.3s is out of range", text + 1);
    op->status[status] = true;
    return 0;
}

/* Reads the paths: block of f into d; -1 with d->error on a line it refuses. */
static int read_doc(FILE *f, doc *d)
{
    char *buf = NULL, path[160] = "", key[160];
    size_t cap = 0;
    ssize_t len;
    int line = 0, rc = 0, seen_paths = 0;
    bool in_paths = false;
    doc_op *op = NULL;
    section sec = SEC_NONE;

    d->nops = 0;
    d->error[0] = '\0';
    while (rc == 0 && (len = getline(&buf, &cap, f)) >= 0) {
        int indent = 0;
        const char *text;

        line++;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            buf[--len] = '\0';
        while (buf[indent] == ' ')
            indent++;
        text = buf + indent;
        if (strchr(buf, '\t') != NULL && in_paths) {
            rc = refuse(d, line, "a tab in the paths block");
            break;
        }
        if (*text == '\0' || *text == '#')
            continue;
        if (indent == 0) {
            in_paths = strcmp(text, "paths:") == 0;
            seen_paths += in_paths;
            op = NULL;
            continue;
        }
        if (!in_paths)
            continue;
        if (indent == 2) {
            op = NULL;
            if (text[0] != '/' || split_key(text, path, sizeof(path)) == NULL ||
                text[strlen(text) - 1] != ':')
                rc = refuse(d, line, "expected a path key like /v1/x:");
        } else if (indent == 4) {
            const char *rest = split_key(text, key, sizeof(key));
            int m = rest == NULL      ? refuse(d, line, "expected a key")
                    : path[0] == '\0' ? refuse(d, line, "a key before the first path")
                                      : method_key(d, line, path, key);

            op = m == 0 ? &d->ops[d->nops - 1] : NULL;
            sec = SEC_NONE;
            rc = m < 0 ? -1 : 0;
        } else if (indent < 6 || (indent % 2) != 0) {
            /* An odd indent would put a key between the levels this reader tells apart. */
            rc = refuse(d, line, "unexpected indent %d", indent);
        } else if (op != NULL) {
            rc = op_line(d, line, op, &sec, indent, text);
        }
    }
    free(buf);
    if (rc == 0 && seen_paths != 1)
        rc = refuse(d, line, "expected exactly one top-level paths: block");
    return rc;
}

static void load_file(doc *d, const char *name)
{
    FILE *f = fopen(name, "r");

    cr_assert_not_null(f, "cannot open %s", name);
    int rc = read_doc(f, d);

    fclose(f);
    cr_assert_eq(rc, 0, "%s:%s", name, d->error);
}

static int load_text(doc *d, const char *text)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    int rc;

    cr_assert_not_null(f);
    rc = read_doc(f, d);
    fclose(f);
    return rc;
}

static const doc_op *find_op(const doc *d, const char *path, const char *method)
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
static int missing_routes(const doc *d, char *report, size_t cap)
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

static const api_route *route_of(const doc_op *op)
{
    for (size_t i = 0; i < api_nroutes; i++) {
        if (strcmp(api_routes[i].pattern, op->path) == 0 &&
            strcmp(api_route_method(i), op->method) == 0)
            return &api_routes[i];
    }
    return NULL;
}

/* Operations the table lacks. */
static int extra_ops(const doc *d, char *report, size_t cap)
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

static bool any_2xx(const doc_op *op)
{
    for (int s = 200; s < 300; s++) {
        if (op->status[s])
            return true;
    }
    return false;
}

/* What the operation declares against what its route and the dispatcher do. */
static int op_problems(const doc_op *op, const api_route *rt, char *report, size_t cap)
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
    PROBLEM(rt->json_body != op->request_body, "requestBody %s, the route %s a JSON body",
            op->request_body ? "given" : "missing", rt->json_body ? "takes" : "takes no");
    PROBLEM(rt->json_body && (!op->status[400] || !op->status[413] || !op->status[415]),
            "takes a body but lacks the 400, 413 and 415 answers");
    PROBLEM(rt->rate_limited != op->status[429], "429 %s, the route is %srate limited",
            op->status[429] ? "documented" : "missing", rt->rate_limited ? "" : "not ");
    PROBLEM(strstr(rt->pattern, "{id}") != NULL && !op->status[404], "has an {id} but no 404");
    PROBLEM(!op->status[503], "no 503 (unavailable, draining)");
#undef PROBLEM
    return strlen(report) > (size_t)before;
}

static int all_op_problems(const doc *d, char *report, size_t cap)
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
