/*
 * The database store: a document is a row of document_blobs and its bytes
 * rows of document_chunks, USHER_DOCSTORE_CHUNK_BYTES each (migration
 * 0013), so every host reads what any host wrote. Reached through
 * docstore.h; usher-api's reader (api/docsend.c) sends this file's
 * statements on its own non-blocking connections.
 */
#ifndef USHER_DOCSTORE_DB_H
#define USHER_DOCSTORE_DB_H

#include "docstore.h"

/* $1 = sha256: one row (size) when the document is stored whole. */
extern const char usher_docstore_db_size_sql[];

/* $1 = sha256, $2 = seq, $3 = first byte in the chunk (1-based), $4 = bytes: a bytea. */
extern const char usher_docstore_db_slice_sql[];

/* The part of one chunk that holds byte offset of a document, up to len bytes from there. */
typedef struct usher_docstore_slice {
    int seq;    /* the chunk */
    int from;   /* its first byte wanted, 1-based (SQL substring) */
    size_t len; /* bytes wanted from it */
} usher_docstore_slice;

usher_docstore_slice usher_docstore_db_slice(uint64_t offset, uint64_t len);

/*
 * Writes the document named ref (usher_docstore_name of the same parts)
 * through st: its blob row, then its chunks, in one transaction (st's own
 * when st is idle, the caller's when one is open). A blob already there,
 * or written meanwhile by another connection, is left as it is.
 */
USHER_MUSTCHECK usher_err usher_docstore_db_write(usher_store *st, const usher_docstore_ref *ref,
                                                  const struct iovec *parts, size_t nparts,
                                                  char *errbuf, size_t errlen);

/* Reads len bytes from offset of the document sha256 into buf, one chunk at a time. */
USHER_MUSTCHECK usher_err usher_docstore_db_read(usher_store *st, const char *sha256,
                                                 uint64_t offset, size_t len, void *buf,
                                                 char *errbuf, size_t errlen);

#endif
