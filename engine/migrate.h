/*
 * Schema migrations: numbered SQL files (NNNN_name.sql) in a directory,
 * applied in order, each in its own transaction, recorded in
 * usher_migrations, and serialised across processes by an advisory lock,
 * so running migrate twice, or from two hosts at once, is safe.
 */
#ifndef USHER_MIGRATE_H
#define USHER_MIGRATE_H

#include <stddef.h>

#include "store.h"

/* The directory migrate reads when none is given: $USHER_MIGRATIONS_DIR or the source tree's. */
const char *usher_migrate_default_dir(void);

/*
 * Applies every migration of dir not applied yet. *applied (may be NULL)
 * receives how many were applied now. A failing migration is rolled back,
 * the ones before it stay, and the store's errstr names the file.
 */
usher_err usher_migrate(usher_store *st, const char *dir, size_t *applied);

#endif
