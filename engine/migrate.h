/*
 * Schema migrations: numbered SQL files (NNNN_name.sql) in a directory,
 * applied in order, each in its own transaction, recorded in
 * usher_migrations with the file's SHA-256, and serialised across processes
 * by an advisory lock, so running migrate twice, or from two hosts at once,
 * is safe. A file edited after it was applied is refused.
 */
#ifndef USHER_MIGRATE_H
#define USHER_MIGRATE_H

#include <stddef.h>

#include "store.h"

/* The directory migrate reads when none is given: $USHER_MIGRATIONS_DIR or the installed one. */
const char *usher_migrate_default_dir(void);

typedef struct usher_migrate_counts {
    size_t applied; /* migrations applied by this run */
    size_t trusted; /* applied before checksums were kept: their files' checksums recorded now */
} usher_migrate_counts;

/*
 * Applies every migration of dir not applied yet, recording each file's
 * SHA-256. First, every file already applied is checked against the
 * checksum recorded with it: when one changed, nothing is applied and the
 * answer is USHER_ERR_CHANGED with the file named in the store's errstr.
 * A row applied before checksums were kept gets the file's checksum now
 * (trust on first use; counted in trusted). counts may be NULL. A failing
 * migration is rolled back, the ones before it stay, and the store's
 * errstr names the file.
 */
USHER_MUSTCHECK usher_err usher_migrate(usher_store *st, const char *dir,
                                        usher_migrate_counts *counts);

#endif
