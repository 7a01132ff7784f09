/*
 * The document store: generated files (ticket PDFs, badge sheets, reports)
 * and uploads, named by the SHA-256 of their content, so the same bytes
 * always get the same name and a repeated write is a no-op. Every writer
 * and reader goes through here; which store holds the bytes is the
 * configuration's [documents] store:
 *   - database (the default): chunked rows in PostgreSQL (docstore_db.h),
 *     which every host reads, with no shared filesystem;
 *   - directory: files under [documents] dir (docstore_dir.h), for
 *     deployments that share a volume between hosts, as before.
 * Callers pass the configuration and a connection; the directory store
 * ignores the connection.
 */
#ifndef USHER_DOCSTORE_H
#define USHER_DOCSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "config.h"
#include "error.h"
#include "store.h"

#define USHER_SHA256_HEX_LEN 64
/* "ab/cd/" + 64 hex digits */
#define USHER_DOCSTORE_RELPATH_LEN (6 + USHER_SHA256_HEX_LEN)
/* The database store's chunk: a document of N bytes is ceil(N / this) rows. */
#define USHER_DOCSTORE_CHUNK_BYTES (256 * 1024)

typedef struct usher_docstore_ref {
    char sha256[USHER_SHA256_HEX_LEN + 1];        /* lowercase hex */
    size_t size;                                  /* bytes */
    char relpath[USHER_DOCSTORE_RELPATH_LEN + 1]; /* "ab/cd/<sha256>": its file's place in a
                                                     directory store */
} usher_docstore_ref;

/*
 * Stores the bytes of parts[0..nparts) (one document, in pieces: an
 * upload's buffer chain, or one rendered file) and describes them in *out.
 * Durable on return; a document already stored is left as it is. st is the
 * database store's connection: idle (the write is a transaction of its
 * own) or in the caller's transaction (the write joins it, and is durable
 * once the caller commits). On failure *out is untouched and errbuf says
 * why (USHER_ERR_IO, USHER_ERR_DB, USHER_ERR_INVALID, USHER_ERR_SYSTEM:
 * libsodium would not start).
 */
USHER_MUSTCHECK usher_err usher_docstore_put(const usher_config *cfg, usher_store *st,
                                             const struct iovec *parts, size_t nparts,
                                             usher_docstore_ref *out, char *errbuf, size_t errlen);

/* Names the bytes of parts[0..nparts): their SHA-256, size and relpath into *out. */
USHER_MUSTCHECK usher_err usher_docstore_name(const struct iovec *parts, size_t nparts,
                                              usher_docstore_ref *out, char *errbuf, size_t errlen);

/* usher_docstore_put of one piece. */
USHER_MUSTCHECK usher_err usher_docstore_put_bytes(const usher_config *cfg, usher_store *st,
                                                   const void *data, size_t len,
                                                   usher_docstore_ref *out, char *errbuf,
                                                   size_t errlen);

/*
 * Reads len bytes from offset of the document sha256 into buf, which the
 * caller sizes. USHER_ERR_NOT_FOUND when the store has no such document or
 * it is shorter than offset + len; USHER_ERR_IO, USHER_ERR_DB otherwise.
 */
USHER_MUSTCHECK usher_err usher_docstore_read(const usher_config *cfg, usher_store *st,
                                              const char *sha256, uint64_t offset, size_t len,
                                              void *buf, char *errbuf, size_t errlen);

/* True when cfg keeps documents in the database (so readers need its statements). */
bool usher_docstore_in_database(const usher_config *cfg);

/* True when s is 64 lowercase hex digits. */
bool usher_docstore_name_ok(const char *s);

/*
 * Writes "root/ab/cd/<sha_hex>" into buf: a document's file in a directory
 * store. USHER_ERR_INVALID when sha_hex is not 64 lowercase hex digits or
 * the path does not fit in len bytes.
 */
USHER_MUSTCHECK usher_err usher_docstore_path(const char *root, const char *sha_hex, char *buf,
                                              size_t len);

#endif
