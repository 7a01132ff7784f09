/*
 * The two readers behind api_doc_send. A directory store's file is opened
 * on the loop thread (the only disk call there) and handed to evhttp as a
 * file segment: the bytes move in the kernel as the socket drains.
 *
 * A database store's document is a stream (stream below): the statement
 * for the next slice of a chunk (platform/docstore_db.h) goes out on the
 * loop's connections while the previous slice is written, and a slice is
 * sent only after the one before has left for the socket, so a slow client
 * holds two chunks, not the document. The bytes arrive as bytea text and
 * are decoded once (PQunescapeBytea), handed to the output buffer by
 * reference. If the database fails after the headers have gone, the
 * connection is closed: the client sees a body shorter than its
 * Content-Length, never wrong bytes.
 */
#include "docsend.h"

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
#include "docstore_db.h"
#include "inttext.h"
#include "log.h"
#include "pgpool.h"
#include "query.h"
#include "reply.h"

struct api_doc {
    char sha256[USHER_SHA256_HEX_LEN + 1];
    uint64_t size;
    int fd; /* a directory store's open file; -1 for the database store */
    api_doc_opened opened;
    void *arg;
};

typedef struct stream {
    api_req *r;
    char sha256[USHER_SHA256_HEX_LEN + 1];
    uint64_t next, end;    /* the next byte to read, one past the last */
    struct evbuffer *held; /* a slice read, waiting for the one before to be written */
    bool reading;          /* a statement is out */
    bool writing;          /* a slice is being written; its callback is due */
    bool failed;           /* the database failed mid-stream */
    bool pumping, again;   /* pump is running; a callback asked it for another turn */
    int status;
} stream;

static api_doc *doc_new(const char *sha256, uint64_t size, int fd)
{
    api_doc *doc = usher_calloc(1, sizeof(*doc));

    snprintf(doc->sha256, sizeof(doc->sha256), "%s", sha256);
    doc->size = size;
    doc->fd = fd;
    return doc;
}

void api_doc_close(api_doc *doc)
{
    if (doc == NULL)
        return;
    if (doc->fd >= 0)
        close(doc->fd);
    free(doc);
}

/* The database store: is the document there whole, with the size recorded? */
static void sized(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    api_doc *doc = r->state;

    r->state = NULL;
    if (!api_result_ok(r, res, errmsg)) {
        free(doc);
        return;
    }
    if (PQntuples(res) != 1 || strtoull(PQgetvalue(res, 0, 0), NULL, 10) != doc->size) {
        usher_log(USHER_LOG_ERR, "content: document %s is not in the database with %llu bytes",
                  doc->sha256, (unsigned long long)doc->size);
        doc->opened(r, NULL, doc->arg);
        free(doc);
        return;
    }
    doc->opened(r, doc, doc->arg);
}

static void open_file(api_req *r, const char *sha256, uint64_t size, api_doc_opened opened,
                      void *arg)
{
    char path[PATH_MAX];
    struct stat st;
    int fd = -1;

    if (usher_docstore_path(r->loop->srv->cfg->document_dir, sha256, path, sizeof(path)) !=
            USHER_OK ||
        (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0 ||
        (uint64_t)st.st_size != size) {
        usher_log(USHER_LOG_ERR, "content: document file %s: %s", path,
                  fd < 0 ? strerror(errno) : "not the recorded size");
        if (fd >= 0)
            close(fd);
        opened(r, NULL, arg);
        return;
    }
    opened(r, doc_new(sha256, size, fd), arg);
}

bool api_doc_open(api_req *r, const char *sha256, uint64_t size, api_doc_opened opened, void *arg)
{
    const usher_config *cfg = r->loop->srv->cfg;
    api_doc *doc;

    if (!usher_docstore_in_database(cfg)) {
        open_file(r, sha256, size, opened, arg);
        return true;
    }
    doc = doc_new(sha256, size, -1);
    doc->opened = opened;
    doc->arg = arg;
    r->state = doc;
    const char *params[] = { doc->sha256 };

    if (!api_query(r, usher_docstore_db_size_sql, 1, params, sized)) {
        free(doc);
        return false;
    }
    return true;
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

static void pump(stream *s);
static void slice_read(PGresult *res, const char *errmsg, void *arg);

/* The client went: nothing more is written, and no written callback will come. */
static void client_gone(struct evhttp_connection *conn, void *arg)
{
    stream *s = arg;

    (void)conn;
    s->r->conn = NULL;
    /* A request the client left mid-answer stays, detached, for
     * api_reply_stream_end to free; one still on its connection (the
     * server closing) goes with it. */
    if (s->r->http != NULL && evhttp_request_get_connection(s->r->http) != NULL)
        s->r->http = NULL;
    s->writing = false;
    pump(s);
}

/* A piece has left (or, harmlessly, a later write of the answer completed). */
static void written(struct evhttp_connection *conn, void *arg)
{
    stream *s = arg;

    (void)conn;
    s->writing = false;
    pump(s);
}

static void free_bytes(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    PQfreemem((void *)data);
}

/* A slice's statement is done: hold its bytes for pump. */
static void slice_read(PGresult *res, const char *errmsg, void *arg)
{
    stream *s = arg;
    usher_docstore_slice want = usher_docstore_db_slice(s->next, s->end - s->next);
    unsigned char *bytes = NULL;
    size_t len = 0;

    s->reading = false;
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
        !PQgetisnull(res, 0, 0))
        bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 0), &len);
    if (bytes == NULL || len != want.len) {
        usher_log(USHER_LOG_ERR, "content: document %s, chunk %d: %s", s->sha256, want.seq,
                  bytes == NULL ? (errmsg != NULL ? errmsg : "missing") : "short");
        PQfreemem(bytes);
        s->failed = true;
    } else {
        s->held = evbuffer_new();
        if (s->held == NULL || evbuffer_add_reference(s->held, bytes, len, free_bytes, NULL) != 0)
            usher_oom(len); /* libevent's only failure here (alloc.h) */
        s->next += len;
    }
    pump(s);
}

/* Ends the stream once nothing is out; closes the connection if the database failed. */
static void finish(stream *s)
{
    api_req *r = s->r;

    if (s->failed && r->conn != NULL) {
        struct evhttp_connection *conn = r->conn;

        evhttp_connection_set_closecb(conn, NULL, NULL);
        r->conn = NULL;
        r->http = NULL;               /* freed with its connection */
        evhttp_connection_free(conn); /* the client sees a short body */
    }
    if (s->held != NULL)
        evbuffer_free(s->held);
    api_reply_stream_end(r, s->status);
    free(s);
}

/* Hands the held slice to the connection. */
static void send_held(stream *s)
{
    struct evbuffer *piece = s->held;
    int sent;

    s->held = NULL;
    s->writing = true;
    sent = api_reply_stream_send(s->r, piece, written, s);
    evbuffer_free(piece);
    if (sent < 0)
        s->failed = true;
    if (sent != 0) /* gone at once: no callback will say so */
        s->writing = false;
}

/* Sends the statement for the next slice. */
static void read_next(stream *s)
{
    usher_docstore_slice want = usher_docstore_db_slice(s->next, s->end - s->next);
    char seq[USHER_INT_TEXT_MAX], from[USHER_INT_TEXT_MAX], len[USHER_INT_TEXT_MAX];
    const char *params[] = { s->sha256, usher_int_text(want.seq, seq),
                             usher_int_text(want.from, from),
                             usher_int_text((int64_t)want.len, len) };

    s->reading = true;
    if (api_pgpool_query(s->r->loop->pg, usher_docstore_db_slice_sql, 4, params, slice_read, s) !=
        USHER_OK) {
        usher_log(USHER_LOG_ERR, "content: document %s: no database connection", s->sha256);
        s->reading = false;
        s->failed = true;
    }
}

/*
 * Moves the stream on: sends what is held once the last slice has gone,
 * reads the next slice, and ends the answer when all is sent, the client
 * has gone or the database failed. The callbacks it causes (a slice that
 * leaves at once calls written from inside send_held) only ask for another
 * turn of the loop that is running.
 */
static void pump(stream *s)
{
    api_req *r = s->r;

    if (s->pumping) {
        s->again = true;
        return;
    }
    s->pumping = true;
    do {
        bool stop = s->failed || r->conn == NULL;

        s->again = false;
        if (!s->reading && (stop || (s->held == NULL && s->next == s->end))) {
            finish(s);
            return;
        }
        if (stop)
            break; /* the statement out ends the stream when it returns */
        if (s->held != NULL && !s->writing) {
            send_held(s);
            s->again = true;
        } else if (s->held == NULL && !s->reading && s->next < s->end) {
            read_next(s);
            s->again = true;
        }
    } while (s->again);
    s->pumping = false;
}

static void stream_start(api_req *r, api_doc *doc, int status, const char *content_type,
                         uint64_t first, uint64_t len)
{
    stream *s = usher_calloc(1, sizeof(*s));

    *s = (stream){ .r = r, .next = first, .end = first + len, .status = status };
    memcpy(s->sha256, doc->sha256, sizeof(s->sha256));
    api_doc_close(doc);
    api_reply_stream_start(r, status, content_type);
    if (r->http == NULL) { /* the client has gone already */
        r->conn = NULL;
        api_reply_stream_end(r, status);
        free(s);
        return;
    }
    evhttp_connection_set_closecb(r->conn, client_gone, s);
    pump(s);
}

void api_doc_send(api_req *r, api_doc *doc, int status, const char *content_type, uint64_t first,
                  uint64_t len)
{
    char header[USHER_INT_TEXT_MAX];

    if (len == 0 || doc->fd < 0) {
        if (len > 0) {
            snprintf(header, sizeof(header), "%llu", (unsigned long long)len);
            api_add_header(r, "Content-Length", header);
            stream_start(r, doc, status, content_type, first, len);
            return;
        }
        api_doc_close(doc);
        api_reply_raw(r, status, content_type, "", 0);
        return;
    }
    int fd = doc->fd;

    doc->fd = -1;
    api_doc_close(doc);
    if (!add_file(r, fd, first, len)) {
        api_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    api_reply_raw(r, status, content_type, "", 0);
}
