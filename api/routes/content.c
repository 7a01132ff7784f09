/*
 * GET (and HEAD) /v1/content/{id}: a stored document's bytes, sent from
 * the file with sendfile (an evbuffer file segment), never read into
 * memory. Who may read it (content_access.c): an admin, the organizer of
 * its event, and for session materials the holder of a valid ticket code
 * of that event, for a ticket PDF the holder of that ticket's code.
 *
 * Documents are named by their SHA-256 and never change, so the ETag is
 * the hash (strong), If-None-Match answers 304, and clients may keep the
 * bytes an hour (private: they are access-controlled). A single Range
 * "bytes=A-B", "A-" or "-N" answers 206; an unsatisfiable one 416; several
 * ranges get the whole file (200). Opening the file is the only disk call
 * on the loop thread: the bytes move in the kernel as the socket drains.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "docstore.h"
#include "log.h"
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

/* Adds the file's bytes first..first+len-1 to the answer (sendfile); takes fd. */
static bool add_file(api_req *r, int fd, uint64_t first, uint64_t len)
{
    struct evbuffer_file_segment *seg =
        evbuffer_file_segment_new(fd, (ev_off_t)first, (ev_off_t)len, EVBUF_FS_CLOSE_ON_FREE);
    bool ok;

    if (seg == NULL) {
        close(fd);
        return false;
    }
    /* The request's own output buffer: api_reply_raw appends nothing to it. */
    ok = r->http == NULL || evbuffer_add_file_segment(evhttp_request_get_output_buffer(r->http),
                                                      seg, 0, (ev_off_t)len) == 0;
    evbuffer_file_segment_free(seg); /* the buffer holds its own reference */
    return ok;
}

void api_content_send(api_req *r, const char *sha256, const char *content_type,
                      const char *filename, uint64_t size)
{
    char path[PATH_MAX], etag[80], header[128], *cd;
    uint64_t first = 0, last = size > 0 ? size - 1 : 0;
    api_range range = API_RANGE_NONE;
    const char *if_range = api_header(r, "If-Range");
    bool head = r->http != NULL && evhttp_request_get_command(r->http) == EVHTTP_REQ_HEAD;
    struct stat st;
    int fd = -1;

    snprintf(etag, sizeof(etag), "\"%s\"", sha256);
    if (usher_docstore_path(r->loop->srv->cfg->document_dir, sha256, path, sizeof(path)) !=
            USHER_OK ||
        (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0 ||
        (uint64_t)st.st_size != size) {
        usher_log(USHER_LOG_ERR, "content: document file %s: %s", path,
                  fd < 0 ? strerror(errno) : "not the recorded size");
        if (fd >= 0)
            close(fd);
        api_reply_error(r, 500, "internal", "the document's file is missing; it has been logged");
        return;
    }
    api_add_header(r, "ETag", etag);
    api_add_header(r, "Cache-Control", "private, max-age=3600");
    api_add_header(r, "Accept-Ranges", "bytes");
    api_add_header(r, "X-Content-Type-Options", "nosniff");
    if (not_modified(r, etag)) {
        close(fd);
        api_reply_raw(r, 304, content_type, "", 0);
        return;
    }
    if (if_range == NULL || strcmp(if_range, etag) == 0)
        range = api_range_parse(api_header(r, "Range"), size, &first, &last);
    if (range == API_RANGE_UNSATISFIABLE) {
        close(fd);
        snprintf(header, sizeof(header), "bytes */%llu", (unsigned long long)size);
        api_add_header(r, "Content-Range", header);
        api_reply_error(r, 416, "range_not_satisfiable", "the file has %llu bytes",
                        (unsigned long long)size);
        return;
    }
    cd = disposition(filename);
    if (cd != NULL)
        api_add_header(r, "Content-Disposition", cd);
    free(cd);
    if (range == API_RANGE_ONE) {
        snprintf(header, sizeof(header), "bytes %llu-%llu/%llu", (unsigned long long)first,
                 (unsigned long long)last, (unsigned long long)size);
        api_add_header(r, "Content-Range", header);
    }
    uint64_t len = size == 0 ? 0 : last - first + 1;

    if (head || len == 0) {
        /* evhttp sends no body for HEAD and adds no length: say it here. */
        close(fd);
        if (head) {
            snprintf(header, sizeof(header), "%llu", (unsigned long long)len);
            api_add_header(r, "Content-Length", header);
        }
    } else if (!add_file(r, fd, first, len)) {
        api_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    api_reply_raw(r, range == API_RANGE_ONE ? 206 : 200, content_type, "", 0);
}
