/*
 * The directory store: each document one file, root/ab/cd/<sha256>, written
 * atomically and durably. For deployments whose hosts share a volume
 * ([documents] store = directory); reached through docstore.h.
 */
#ifndef USHER_DOCSTORE_DIR_H
#define USHER_DOCSTORE_DIR_H

#include "docstore.h"

/*
 * Writes the document named ref (usher_docstore_name of the same parts)
 * under root: a temporary file in the same directory is written, fsynced
 * and renamed, then the directory is fsynced. Missing directories (root
 * included) are created. A file already there with the right size is kept.
 * Files are mode 0644.
 */
USHER_MUSTCHECK usher_err usher_docstore_dir_write(const char *root, const usher_docstore_ref *ref,
                                                   const struct iovec *parts, size_t nparts,
                                                   char *errbuf, size_t errlen);

/* Names and writes len bytes of data under root (the directory store on its own). */
USHER_MUSTCHECK usher_err usher_docstore_dir_put(const char *root, const void *data, size_t len,
                                                 usher_docstore_ref *out, char *errbuf,
                                                 size_t errlen);

/* Reads len bytes from offset of root's file for sha256 into buf. */
USHER_MUSTCHECK usher_err usher_docstore_dir_read(const char *root, const char *sha256,
                                                  uint64_t offset, size_t len, void *buf,
                                                  char *errbuf, size_t errlen);

#endif
