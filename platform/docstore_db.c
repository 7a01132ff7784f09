/*
 * The database store, written and read through one blocking connection
 * (usher-worker's handlers, usher-api's offload threads, tests). Chunks go
 * up as binary parameters and come back as binary results, taken straight
 * from the caller's pieces when a chunk lies within one and otherwise
 * gathered into one chunk-sized buffer: a document is never copied whole.
 *
 * The blob row is inserted first with ON CONFLICT DO NOTHING: when it is
 * there already the put ends without sending a byte, and a concurrent put
 * of the same bytes waits on the row's key until the first commits (then
 * finds it) or rolls back (then writes it itself).
 */
#include "docstore_db.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "inttext.h"

const char usher_docstore_db_size_sql[] = "SELECT size FROM document_blobs WHERE sha256 = $1";

const char usher_docstore_db_slice_sql[] =
    "SELECT substring(data FROM $3::int FOR $4::int) FROM document_chunks"
    " WHERE sha256 = $1 AND seq = $2::int";

static const char blob_sql[] =
    "INSERT INTO document_blobs (sha256, size, chunk_size, chunks)"
    " VALUES ($1, $2::bigint, $3::int, $4::int) ON CONFLICT (sha256) DO NOTHING RETURNING 1";

static const char chunk_sql[] =
    "INSERT INTO document_chunks (sha256, seq, data) VALUES ($1, $2::int, $3::bytea)";

usher_docstore_slice usher_docstore_db_slice(uint64_t offset, uint64_t len)
{
    usher_docstore_slice s;
    uint64_t within = offset % USHER_DOCSTORE_CHUNK_BYTES;
    uint64_t room = USHER_DOCSTORE_CHUNK_BYTES - within;

    s.seq = (int)(offset / USHER_DOCSTORE_CHUNK_BYTES);
    s.from = (int)within + 1;
    s.len = (size_t)(len < room ? len : room);
    return s;
}

/* Runs sql; the result when it has the status wanted, else NULL with errbuf set. */
static PGresult *run(PGconn *conn, const char *sql, int nparams, const char *const *values,
                     const int *lengths, const int *formats, int result_format,
                     ExecStatusType wanted, char *errbuf, size_t errlen)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, values, lengths, formats, result_format);

    if (res != NULL && PQresultStatus(res) == wanted)
        return res;
    snprintf(errbuf, errlen, "document store: %s",
             res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    PQclear(res);
    return NULL;
}

static USHER_MUSTCHECK usher_err command(PGconn *conn, const char *sql, char *errbuf, size_t errlen)
{
    PGresult *res = run(conn, sql, 0, NULL, NULL, NULL, 0, PGRES_COMMAND_OK, errbuf, errlen);

    PQclear(res);
    return res != NULL ? USHER_OK : USHER_ERR_DB;
}

/* Where the next chunk's bytes come from: the parts, read front to back. */
typedef struct cursor {
    const struct iovec *parts;
    size_t nparts, part, at; /* the part being read and the offset in it */
    unsigned char *gather;   /* a chunk spread over parts is copied here (lazily) */
} cursor;

/* The next len bytes: a pointer into a part, or a copy in c->gather. */
static const unsigned char *next_bytes(cursor *c, size_t len)
{
    size_t got = 0;

    while (c->part < c->nparts && c->at == c->parts[c->part].iov_len) {
        c->part++;
        c->at = 0;
    }
    if (c->part < c->nparts && c->parts[c->part].iov_len - c->at >= len) {
        const unsigned char *p = (const unsigned char *)c->parts[c->part].iov_base + c->at;

        c->at += len;
        return p;
    }
    if (c->gather == NULL)
        c->gather = usher_malloc(USHER_DOCSTORE_CHUNK_BYTES);
    while (got < len && c->part < c->nparts) {
        size_t left = c->parts[c->part].iov_len - c->at, take = len - got < left ? len - got : left;

        memcpy(c->gather + got, (const unsigned char *)c->parts[c->part].iov_base + c->at, take);
        got += take;
        c->at += take;
        if (c->at == c->parts[c->part].iov_len) {
            c->part++;
            c->at = 0;
        }
    }
    return c->gather;
}

/* Inserts the chunks of ref from c. */
static USHER_MUSTCHECK usher_err write_chunks(PGconn *conn, const usher_docstore_ref *ref,
                                              cursor *c, char *errbuf, size_t errlen)
{
    size_t left = ref->size;
    char seq[USHER_INT_TEXT_MAX];

    for (int64_t i = 0; left > 0; i++) {
        size_t len = left < USHER_DOCSTORE_CHUNK_BYTES ? left : USHER_DOCSTORE_CHUNK_BYTES;
        const char *values[] = { ref->sha256, usher_int_text(i, seq),
                                 (const char *)next_bytes(c, len) };
        const int lengths[] = { 0, 0, (int)len }, formats[] = { 0, 0, 1 };
        PGresult *res =
            run(conn, chunk_sql, 3, values, lengths, formats, 0, PGRES_COMMAND_OK, errbuf, errlen);

        if (res == NULL)
            return USHER_ERR_DB;
        PQclear(res);
        left -= len;
    }
    return USHER_OK;
}

/* Inserts the blob row; *fresh says whether this call wrote it. */
static USHER_MUSTCHECK usher_err write_blob(PGconn *conn, const usher_docstore_ref *ref,
                                            bool *fresh, char *errbuf, size_t errlen)
{
    char size[USHER_INT_TEXT_MAX], chunk[USHER_INT_TEXT_MAX], chunks[USHER_INT_TEXT_MAX];
    int64_t n =
        (int64_t)((ref->size + USHER_DOCSTORE_CHUNK_BYTES - 1) / USHER_DOCSTORE_CHUNK_BYTES);
    const char *values[] = { ref->sha256, usher_int_text((int64_t)ref->size, size),
                             usher_int_text(USHER_DOCSTORE_CHUNK_BYTES, chunk),
                             usher_int_text(n, chunks) };
    PGresult *res = run(conn, blob_sql, 4, values, NULL, NULL, 0, PGRES_TUPLES_OK, errbuf, errlen);

    if (res == NULL)
        return USHER_ERR_DB;
    *fresh = PQntuples(res) == 1;
    PQclear(res);
    return USHER_OK;
}

usher_err usher_docstore_db_write(usher_store *st, const usher_docstore_ref *ref,
                                  const struct iovec *parts, size_t nparts, char *errbuf,
                                  size_t errlen)
{
    PGconn *conn = st != NULL ? usher_store_conn(st) : NULL;
    cursor c = { .parts = parts, .nparts = nparts };
    PGTransactionStatusType ts = conn != NULL ? PQtransactionStatus(conn) : PQTRANS_UNKNOWN;
    bool own = ts == PQTRANS_IDLE, fresh = false;
    usher_err err = USHER_OK;

    if (ts != PQTRANS_IDLE && ts != PQTRANS_INTRANS)
        return usher_errbuf(errbuf, errlen, USHER_ERR_DB,
                            "document store: no usable database connection");
    if (ref->size / USHER_DOCSTORE_CHUNK_BYTES >= INT32_MAX)
        return usher_errbuf(errbuf, errlen, USHER_ERR_TOO_LARGE, "document store: %zu bytes",
                            ref->size);
    if (own)
        err = command(conn, "BEGIN", errbuf, errlen);
    if (err == USHER_OK)
        err = write_blob(conn, ref, &fresh, errbuf, errlen);
    if (err == USHER_OK && fresh)
        err = write_chunks(conn, ref, &c, errbuf, errlen);
    free(c.gather);
    if (!own)
        return err;
    if (err == USHER_OK && fresh)
        return command(conn, "COMMIT", errbuf, errlen);
    usher_store_rollback(st); /* nothing written, or a failure: errbuf holds the first */
    return err;
}

/* Fails unless the document is stored with at least end bytes. */
static USHER_MUSTCHECK usher_err check_size(PGconn *conn, const char *sha256, uint64_t end,
                                            char *errbuf, size_t errlen)
{
    const char *values[] = { sha256 };
    PGresult *res = run(conn, usher_docstore_db_size_sql, 1, values, NULL, NULL, 0, PGRES_TUPLES_OK,
                        errbuf, errlen);
    uint64_t size;

    if (res == NULL)
        return USHER_ERR_DB;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return usher_errbuf(errbuf, errlen, USHER_ERR_NOT_FOUND, "no document %s", sha256);
    }
    size = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (size < end)
        return usher_errbuf(errbuf, errlen, USHER_ERR_NOT_FOUND,
                            "document %s has %" PRIu64 " bytes, not %" PRIu64, sha256, size, end);
    return USHER_OK;
}

/* Reads one slice into buf. */
static USHER_MUSTCHECK usher_err read_slice(PGconn *conn, const char *sha256,
                                            usher_docstore_slice s, unsigned char *buf,
                                            char *errbuf, size_t errlen)
{
    char seq[USHER_INT_TEXT_MAX], from[USHER_INT_TEXT_MAX], len[USHER_INT_TEXT_MAX];
    const char *values[] = { sha256, usher_int_text(s.seq, seq), usher_int_text(s.from, from),
                             usher_int_text((int64_t)s.len, len) };
    PGresult *res = run(conn, usher_docstore_db_slice_sql, 4, values, NULL, NULL, 1,
                        PGRES_TUPLES_OK, errbuf, errlen);

    if (res == NULL)
        return USHER_ERR_DB;
    if (PQntuples(res) != 1 || (size_t)PQgetlength(res, 0, 0) != s.len) {
        PQclear(res);
        return usher_errbuf(errbuf, errlen, USHER_ERR_NOT_FOUND,
                            "document %s: chunk %d is missing or short", sha256, s.seq);
    }
    memcpy(buf, PQgetvalue(res, 0, 0), s.len);
    PQclear(res);
    return USHER_OK;
}

usher_err usher_docstore_db_read(usher_store *st, const char *sha256, uint64_t offset, size_t len,
                                 void *buf, char *errbuf, size_t errlen)
{
    PGconn *conn = st != NULL ? usher_store_conn(st) : NULL;
    unsigned char *p = buf;
    usher_err err;

    if (conn == NULL)
        return usher_errbuf(errbuf, errlen, USHER_ERR_DB, "document store: no connection");
    err = check_size(conn, sha256, offset + len, errbuf, errlen);
    while (err == USHER_OK && len > 0) {
        usher_docstore_slice s = usher_docstore_db_slice(offset, len);

        err = read_slice(conn, sha256, s, p, errbuf, errlen);
        p += s.len;
        offset += s.len;
        len -= s.len;
    }
    return err;
}
