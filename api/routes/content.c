/*
 * GET (and HEAD) /v1/content/{id}: a stored document's bytes, sent by
 * api/docsend.c from whichever store holds them (a file with sendfile, or
 * the database's chunks streamed), never read into memory whole. Who may
 * read it (content_access.c): an admin, the organizer of its event, and
 * for session materials the holder of a valid ticket code of that event,
 * for a ticket PDF the holder of that ticket's code.
 *
 * Documents are named by their SHA-256 and never change, so the ETag is
 * the hash (strong), If-None-Match answers 304, and clients may keep the
 * bytes an hour (private: they are access-controlled). A single Range
 * "bytes=A-B", "A-" or "-N" answers 206; an unsatisfiable one 416; several
 * ranges get the whole file (200). A document the store lacks (or holds
 * with another size) answers 500, logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../docsend.h"
#include "alloc.h"
#include "range.h"
#include "routes.h"
#include "reply.h"

/*
 * Content-Disposition with the name both as a quoted ASCII fallback and as
 * RFC 8187 UTF-8 (RFC 6266 section 4.3): attachment; filename="..."; filename*=UTF-8''...
 */
static char *disposition(const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(name);
    char *out = usher_malloc(64 + 5 * len), *p = out;

    p += sprintf(p, "attachment; filename=\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];

        if (c == '"' || c == '\\')
            *p++ = '\\';
        *p++ = c >= 0x20 && c < 0x7f ? (char)c : '_';
    }
    p += sprintf(p, "\"; filename*=UTF-8''");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("!#$&+-.^_`|~", c) != NULL) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = '\0';
    return out;
}

/* Does If-None-Match name this ETag (or "*")? Weak comparison, as RFC 9110 asks. */
static bool not_modified(const api_req *r, const char *etag)
{
    const char *h = api_header(r, "If-None-Match");

    return h != NULL && (strcmp(h, "*") == 0 || strstr(h, etag) != NULL);
}

/* What the answer needs once the document is open (the lookup's values are copied). */
typedef struct sending {
    char etag[80];
    char *content_type;
    char *filename;
    uint64_t size;
} sending;

static void sending_free(sending *s)
{
    free(s->content_type);
    free(s->filename);
    free(s);
}

static void opened(api_req *r, api_doc *doc, void *arg)
{
    sending *s = arg;
    char header[128], *cd;
    uint64_t first = 0, last = s->size > 0 ? s->size - 1 : 0;
    api_range range = API_RANGE_NONE;
    const char *if_range = api_header(r, "If-Range");
    bool head = r->http != NULL && evhttp_request_get_command(r->http) == EVHTTP_REQ_HEAD;

    if (doc == NULL) {
        sending_free(s);
        api_reply_error(r, 500, "internal", "the document's file is missing; it has been logged");
        return;
    }
    api_add_header(r, "ETag", s->etag);
    api_add_header(r, "Cache-Control", "private, max-age=3600");
    api_add_header(r, "Accept-Ranges", "bytes");
    api_add_header(r, "X-Content-Type-Options", "nosniff");
    if (not_modified(r, s->etag)) {
        api_doc_close(doc);
        api_reply_raw(r, 304, s->content_type, "", 0);
        sending_free(s);
        return;
    }
    if (if_range == NULL || strcmp(if_range, s->etag) == 0)
        range = api_range_parse(api_header(r, "Range"), s->size, &first, &last);
    if (range == API_RANGE_UNSATISFIABLE) {
        api_doc_close(doc);
        snprintf(header, sizeof(header), "bytes */%llu", (unsigned long long)s->size);
        api_add_header(r, "Content-Range", header);
        api_reply_error(r, 416, "range_not_satisfiable", "the file has %llu bytes",
                        (unsigned long long)s->size);
        sending_free(s);
        return;
    }
    cd = disposition(s->filename);
    api_add_header(r, "Content-Disposition", cd);
    free(cd);
    if (range == API_RANGE_ONE) {
        snprintf(header, sizeof(header), "bytes %llu-%llu/%llu", (unsigned long long)first,
                 (unsigned long long)last, (unsigned long long)s->size);
        api_add_header(r, "Content-Range", header);
    }
    uint64_t len = s->size == 0 ? 0 : last - first + 1;
    int status = range == API_RANGE_ONE ? 206 : 200;

    if (head) {
        /* evhttp sends no body for HEAD and adds no length: say it here. */
        api_doc_close(doc);
        snprintf(header, sizeof(header), "%llu", (unsigned long long)len);
        api_add_header(r, "Content-Length", header);
        api_reply_raw(r, status, s->content_type, "", 0);
    } else {
        api_doc_send(r, doc, status, s->content_type, first, len);
    }
    sending_free(s);
}

void api_content_send(api_req *r, const char *sha256, const char *content_type,
                      const char *filename, uint64_t size)
{
    sending *s = usher_calloc(1, sizeof(*s));

    snprintf(s->etag, sizeof(s->etag), "\"%s\"", sha256);
    s->content_type = usher_strdup(content_type);
    s->filename = usher_strdup(filename);
    s->size = size;
    if (!api_doc_open(r, sha256, size, opened, s))
        sending_free(s);
}
