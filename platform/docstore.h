/*
 * The document store: generated files (ticket PDFs, badge sheets, reports)
 * kept under a root directory by the SHA-256 of their content, so the same
 * bytes always land at the same path and a repeated write is a no-op.
 */
#ifndef USHER_DOCSTORE_H
#define USHER_DOCSTORE_H

#include <stddef.h>

#include "error.h"

#define USHER_SHA256_HEX_LEN 64
/* "ab/cd/" + 64 hex digits */
#define USHER_DOCSTORE_RELPATH_LEN (6 + USHER_SHA256_HEX_LEN)

typedef struct usher_docstore_ref {
    char sha256[USHER_SHA256_HEX_LEN + 1];        /* lowercase hex */
    size_t size;                                  /* bytes */
    char relpath[USHER_DOCSTORE_RELPATH_LEN + 1]; /* "ab/cd/<sha256>", relative to root */
} usher_docstore_ref;

/*
 * Stores len bytes of data under root/ab/cd/<sha256hex> (ab and cd are the
 * first two bytes of the hash) and describes them in *out. The write is
 * atomic and durable: a temporary file in the same directory is written,
 * fsynced and renamed, then the directory is fsynced. Missing directories
 * (root included) are created. A file already there with the right size is
 * kept. Files are mode 0644. On failure *out is untouched and errbuf says why
 * (USHER_ERR_IO, USHER_ERR_INVALID, USHER_ERR_SYSTEM: libsodium would not start).
 */
USHER_MUSTCHECK usher_err usher_docstore_put(const char *root, const void *data, size_t len,
                                             usher_docstore_ref *out, char *errbuf, size_t errlen);

/*
 * Writes "root/ab/cd/<sha_hex>" into buf. USHER_ERR_INVALID when sha_hex is
 * not 64 lowercase hex digits or the path does not fit in len bytes.
 */
USHER_MUSTCHECK usher_err usher_docstore_path(const char *root, const char *sha_hex, char *buf,
                                              size_t len);

#endif
