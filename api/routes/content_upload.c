/*
 * POST /v1/events/{id}/content?session_id=N&filename=NAME: an organizer
 * (or admin) uploads a session's material as the raw body, typed by its
 * Content-Type (an allow-list; others 415) and at most api.upload_max_bytes
 * (413). It goes into the document store (platform/docstore.h: named by its
 * SHA-256, written durably, in the database or a directory as configured)
 * straight from the body's buffer chain, and is recorded in documents
 * (kind 'content'), and the session is indexed again (its materials' file
 * names are part of its search document). Storing blocks (chunk inserts or
 * fsyncs), so it runs on the offload pool with that thread's own
 * connection (api/blocking.h), not on the loop thread; the two statements
 * around it (may this caller upload to this session? record it) are queued
 * like any other.
 *
 * GET /v1/events/{id}/content lists an event's materials for its
 * organizer; the files themselves are served by GET /v1/content/{id}.
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../blocking.h"
#include "../jobs.h"
#include "../validate.h"
#include "../wake_after_commit.h"
#include "alloc.h"
#include "docstore.h"
#include "inttext.h"
#include "log.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

#define FILENAME_MAX_CHARS 255

static const char *const allowed_types[] = {
    "application/pdf",
    "image/png",
    "image/jpeg",
    "text/plain",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.ms-powerpoint",
    "application/vnd.oasis.opendocument.presentation",
    NULL,
};

typedef struct upload {
    api_req *r;
    struct evbuffer *data; /* the body, moved out of the request (whose client may go) */
    const usher_config *cfg;
    char session[USHER_INT_TEXT_MAX];
    char filename[4 * FILENAME_MAX_CHARS + 1];
    char type[96];
    usher_docstore_ref ref;
    usher_err err;
    char errbuf[256];
} upload;

static void upload_free(upload *up)
{
    if (up->data != NULL)
        evbuffer_free(up->data);
    free(up);
}

/* The media type of the Content-Type header, lower-cased and checked; NULL if refused. */
static const char *media_type(const api_req *r, char *out, size_t len)
{
    const char *h = api_header(r, "Content-Type");
    size_t n = 0;

    if (h == NULL)
        return NULL;
    while (h[n] != '\0' && h[n] != ';' && h[n] != ' ' && n + 1 < len) {
        out[n] = (char)(h[n] >= 'A' && h[n] <= 'Z' ? h[n] + 32 : h[n]);
        n++;
    }
    out[n] = '\0';
    for (size_t i = 0; allowed_types[i] != NULL; i++) {
        if (strcmp(out, allowed_types[i]) == 0)
            return allowed_types[i];
    }
    return NULL;
}

/* A file name to show and offer for download: no path, no controls. */
static bool filename_ok(const char *name)
{
    size_t chars = api_text_chars(name, strlen(name));

    return chars != (size_t)-1 && chars >= 1 && chars <= FILENAME_MAX_CHARS &&
           strpbrk(name, "/\\") == NULL && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static void recorded(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;

    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        api_wake_kind(r->loop, "index.document");
    api_reply_row(r, res, errmsg, 201, "event");
}

/* On a pool thread: hash and store the bytes, read in place from the buffer's chain. */
static usher_err write_document(usher_store *st, void *arg, json_t **out)
{
    upload *up = arg;
    int n = evbuffer_peek(up->data, -1, NULL, NULL, 0);
    struct evbuffer_iovec *chain = usher_calloc(n > 0 ? (size_t)n : 1, sizeof(*chain));
    struct iovec *parts = usher_calloc(n > 0 ? (size_t)n : 1, sizeof(*parts));

    (void)out;
    n = evbuffer_peek(up->data, -1, NULL, chain, n);
    for (int i = 0; i < n; i++)
        parts[i] = (struct iovec){ .iov_base = chain[i].iov_base, .iov_len = chain[i].iov_len };
    up->err = usher_docstore_put(up->cfg, st, parts, n > 0 ? (size_t)n : 0, &up->ref, up->errbuf,
                                 sizeof(up->errbuf));
    free(parts);
    free(chain);
    /* Why is in up->errbuf; USHER_ERR_DB also makes the thread connect afresh. */
    return up->err == USHER_ERR_DB ? USHER_ERR_DB : USHER_OK;
}

/* Back on the loop: record the stored file. */
static void written(api_req *r, usher_err err, const char *why, json_t *out, void *arg)
{
    upload *up = arg;
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], size[USHER_INT_TEXT_MAX];

    r->state = NULL;
    json_decref(out);
    if (err != USHER_OK && up->err == USHER_OK) { /* no thread or connection to store with */
        usher_log(USHER_LOG_ERR, "content upload: %s", why);
        upload_free(up);
        api_reply_error(r, 503, "unavailable", "the server is busy or stopping; try again");
        return;
    }
    if (up->err != USHER_OK) {
        bool database = up->err == USHER_ERR_DB;

        usher_log(USHER_LOG_ERR, "content upload: %s", up->errbuf);
        upload_free(up);
        if (database)
            api_reply_error(r, 503, "unavailable",
                            "the file could not be stored now; it has been logged, try again");
        else
            api_reply_error(r, 500, "internal", "the file could not be stored; it has been logged");
        return;
    }
    usher_int_text(up->ref.size, size);
    char *index = api_index_job(r, "session");
    const char *params[] = { api_id_text(r->ids[0], id),
                             api_scope_org(r, org),
                             up->session,
                             up->filename,
                             up->type,
                             up->ref.sha256,
                             size,
                             index };

    if (index == NULL) {
        upload_free(up);
        api_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    /* The session is indexed again: its materials' names join its document. */
    api_query(r,
              "WITH ins AS (INSERT INTO documents (kind, event_id, session_id, filename,"
              "  content_type, sha256, size)"
              " SELECT 'content', e.id, s.id, $4, $5, $6, $7::bigint FROM events e"
              " JOIN sessions s ON s.event_id = e.id AND s.id = $3"
              " WHERE e.id = $1 AND ($2::bigint IS NULL OR e.organizer_id = $2) RETURNING *),"
              " idx AS (SELECT usher_enqueue_templates($8::jsonb, ins.session_id) FROM ins)"
              " SELECT json_build_object('id', id, 'kind', kind, 'event_id', event_id,"
              "  'session_id', session_id, 'filename', filename, 'content_type', content_type,"
              "  'sha256', sha256, 'size', size, 'created_at', created_at,"
              "  'url', '/v1/content/' || id)::text FROM ins WHERE (SELECT count(*) FROM idx) >= 0",
              8, params, recorded); /* the parameters are copied */
    upload_free(up);
    free(index);
}

/* Rows of (event may be changed by the caller, session is the event's). */
static void checked(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    upload *up = r->state;

    if (!api_result_ok(r, res, errmsg)) {
        upload_free(up);
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        r->state = NULL;
        upload_free(up);
        api_reply_error(r, 404, "not_found", "no such event");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
        r->state = NULL;
        upload_free(up);
        api_reply_invalid(r, "session_id", "the event has no session %s", PQgetvalue(res, 0, 2));
        return;
    }
    api_blocking(r, write_document, written, up); /* written runs in every case */
}

/* Reads the query and headers into up; answers and returns false when they are refused. */
static bool read_request(api_req *r, upload *up)
{
    char session[USHER_INT_TEXT_MAX];
    size_t len = evbuffer_get_length(evhttp_request_get_input_buffer(r->http));
    int max = r->loop->srv->cfg->api_upload_max_bytes;
    int64_t id = 0;

    if (api_query_param(r, "session_id", session, sizeof(session)) != 1 ||
        (id = strtoll(session, NULL, 10)) <= 0 ||
        strspn(session, "0123456789") != strlen(session)) {
        api_reply_invalid(r, "session_id",
                          "session_id must be the id of one of the event's"
                          " sessions");
        return false;
    }
    usher_int_text(id, up->session);
    if (api_query_param(r, "filename", up->filename, sizeof(up->filename)) != 1 ||
        !filename_ok(up->filename)) {
        api_reply_invalid(r, "filename",
                          "filename must be 1 to %d characters, without a path"
                          " or control characters",
                          FILENAME_MAX_CHARS);
        return false;
    }
    if (media_type(r, up->type, sizeof(up->type)) == NULL) {
        api_reply_error(r, 415, "unsupported_media_type",
                        "send the file as application/pdf, image/png, image/jpeg, text/plain"
                        " or presentation slides (pptx, ppt, odp)");
        return false;
    }
    if (len > (size_t)max) {
        api_reply_error(r, 413, "too_large", "the file is larger than %d bytes", max);
        return false;
    }
    if (len == 0) {
        api_reply_error(r, 400, "empty_body", "the request body (the file) is empty");
        return false;
    }
    return true;
}

void route_content_upload(api_req *r)
{
    upload *up = usher_calloc(1, sizeof(*up));
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX];

    up->data = usher_need(evbuffer_new());
    if (r->http == NULL) { /* the client left while its token was looked up */
        upload_free(up);
        api_reply_error(r, 400, "bad_request", "the client has gone");
        return;
    }
    if (!read_request(r, up)) {
        upload_free(up); /* r is answered and gone */
        return;
    }
    /* Moves the chains (no copy); the worker reads them, not the request. */
    if (evbuffer_add_buffer(up->data, evhttp_request_get_input_buffer(r->http)) != 0) {
        upload_free(up);
        api_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    up->r = r;
    up->cfg = r->loop->srv->cfg;
    r->state = up;
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org), up->session };

    if (!api_query(r,
                   "SELECT EXISTS (SELECT 1 FROM events e WHERE e.id = $1"
                   "  AND ($2::bigint IS NULL OR e.organizer_id = $2)),"
                   " EXISTS (SELECT 1 FROM sessions s WHERE s.id = $3 AND s.event_id = $1), $3",
                   3, params, checked))
        upload_free(up);
}

static void listed(PGresult *res, const char *errmsg, void *arg)
{
    api_reply_row(arg, res, errmsg, 200, "event");
}

void route_content_list(api_req *r)
{
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX];
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org) };

    api_query(
        r,
        "SELECT json_build_object('content', coalesce((SELECT json_agg(json_build_object("
        "  'id', d.id, 'session_id', d.session_id, 'filename', d.filename,"
        "  'content_type', d.content_type, 'sha256', d.sha256, 'size', d.size,"
        "  'created_at', d.created_at, 'url', '/v1/content/' || d.id) ORDER BY d.id)"
        "  FROM documents d WHERE d.event_id = e.id AND d.kind = 'content'), '[]'::json))::text"
        " FROM events e WHERE e.id = $1 AND ($2::bigint IS NULL OR e.organizer_id = $2)",
        2, params, listed);
}
