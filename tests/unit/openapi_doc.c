/* The strict reader of openapi_doc.h: what each line of the paths: block may be. */
#include "openapi_doc.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "token.h"

/* Where a line deeper than an operation key belongs. */
typedef enum section { SEC_NONE, SEC_RESPONSES, SEC_SECURITY, SEC_BODY, SEC_BODY_CONTENT } section;

static int refuse(openapi_doc *d, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(openapi_doc *d, int line, const char *fmt, ...)
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
static int parse_roles(openapi_doc *d, int line, const char *list, unsigned *roles)
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

static int method_key(openapi_doc *d, int line, const char *path, const char *key)
{
    static const char *const methods[] = { "get", "post", "patch", "put", "delete" };
    openapi_op *op;

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(key, methods[i]) != 0)
            continue;
        for (size_t k = 0; k < d->nops; k++) {
            if (strcmp(d->ops[k].path, path) == 0 && strcasecmp(d->ops[k].method, key) == 0)
                return refuse(d, line, "%s %s is documented twice", key, path);
        }
        if (d->nops == OPENAPI_OPS_MAX)
            return refuse(d, line, "more than %d operations", OPENAPI_OPS_MAX);
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

/* A line of requestBody: its content's media types (indent 10) are what the checks need. */
static int body_line(openapi_doc *d, int line, openapi_op *op, section *sec, int indent,
                     const char *text)
{
    char key[96];
    const char *rest = split_key(text, key, sizeof(key));

    if (indent == 8) {
        if (rest == NULL || (strcmp(key, "required") != 0 && strcmp(key, "description") != 0 &&
                             strcmp(key, "content") != 0))
            return refuse(d, line, "requestBody holds only required, description and content");
        *sec = strcmp(key, "content") == 0 ? SEC_BODY_CONTENT : SEC_BODY;
        if (*sec == SEC_BODY_CONTENT && *rest != '\0')
            return refuse(d, line, "requestBody content must list its media types as keys");
        return 0;
    }
    if (indent != 10 || *sec != SEC_BODY_CONTENT)
        return 0;
    if (rest == NULL || strchr(key, '/') == NULL)
        return refuse(d, line, "expected a media type like application/json:");
    if (strcmp(key, "application/json") == 0)
        op->body_json = true;
    else
        op->body_other = true;
    return 0;
}

/* One line of an operation (indent 6 and deeper). */
static int op_line(openapi_doc *d, int line, openapi_op *op, section *sec, int indent,
                   const char *text)
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
            if (*rest != '\0')
                return refuse(d, line, "requestBody must be a block with its content");
            op->request_body = true;
            *sec = SEC_BODY;
        } else if (strcmp(key, "x-usher-roles") == 0) {
            op->roles_set = true;
            return parse_roles(d, line, rest, &op->roles);
        }
        return 0;
    }
    if (*sec == SEC_BODY || *sec == SEC_BODY_CONTENT)
        return body_line(d, line, op, sec, indent, text);
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

    if (status < 100 || status >= OPENAPI_STATUS_MAX)
        return refuse(d, line, "status %.3s is out of range", text + 1);
    op->status[status] = true;
    return 0;
}

int openapi_read(FILE *f, openapi_doc *d)
{
    char *buf = NULL, path[160] = "", key[160];
    size_t cap = 0;
    ssize_t len;
    int line = 0, rc = 0, seen_paths = 0;
    bool in_paths = false;
    openapi_op *op = NULL;
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
