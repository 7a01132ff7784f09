/*
 * GET /dashboard and /dashboard/{file}: the admins' page, built into the
 * binary from api/dashboard/ (cmake/embed_files.cmake). The page holds no
 * data; it asks for an admin token and calls the /v1/admin routes. A strict
 * Content-Security-Policy allows only this origin's own files.
 */
#include <string.h>

#include "embedded.h"
#include "routes.h"
#include "reply.h"

extern const usher_embedded_file api_dashboard_files[];

static const char *type_of(const char *name)
{
    const char *dot = strrchr(name, '.');

    if (dot != NULL && strcmp(dot, ".html") == 0)
        return "text/html; charset=utf-8";
    if (dot != NULL && strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    if (dot != NULL && strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    return "application/octet-stream";
}

static void send_file(api_req *r, const char *name)
{
    const usher_embedded_file *f = usher_embedded_find(api_dashboard_files, name);

    if (f == NULL) {
        api_reply_error(r, 404, "not_found", "no such dashboard file");
        return;
    }
    api_add_header(r, "Content-Security-Policy",
                   "default-src 'self'; img-src 'self' data:; frame-ancestors 'none';"
                   " base-uri 'none'; form-action 'self'");
    api_add_header(r, "X-Content-Type-Options", "nosniff");
    api_add_header(r, "Referrer-Policy", "no-referrer");
    api_add_header(r, "Cache-Control", "no-cache");
    api_reply_raw(r, 200, type_of(name), (const char *)f->data, f->size);
}

void route_dashboard(api_req *r)
{
    send_file(r, "index.html");
}

void route_dashboard_file(api_req *r)
{
    send_file(r, r->name);
}
