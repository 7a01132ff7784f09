/*
 * The migration runner. It lists dir, keeps the files named NNNN_*.sql,
 * sorts them by number, and under pg_advisory_lock first checks every file
 * already applied against the SHA-256 recorded with it, then applies each
 * whose number is not in usher_migrations: BEGIN, the file's statements
 * (sent as one simple-protocol query, so a file may hold many), the
 * bookkeeping row with the file's SHA-256, COMMIT.
 *
 * A file that changed after it was applied stops the run before anything
 * is applied: what the database holds is no longer what the file says
 * (0007_api.sql was once edited after 0008 existed, so databases migrated
 * before and after the edit differed without anyone knowing). Rows written
 * before checksums were kept have none: the first run records the file as
 * it is then (trust on first use), so an edit made before that run goes
 * unnoticed, and every later one is refused.
 */
#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "install_paths.h"
#include "inttext.h"

#define MIGRATE_LOCK_KEY    1431521363
#define MIGRATIONS_MAX      1000
#define MIGRATION_MAX_BYTES (4 * 1024 * 1024)
#define MIGRATION_PATH_MAX  4096

#define CHECKSUM_HEX (crypto_hash_sha256_BYTES * 2 + 1)

typedef struct migration {
    int version;
    char name[256];
    bool applied; /* its number is in usher_migrations */
} migration;

/* checksum: the file's SHA-256 in hex; NULL on rows from before it was kept. */
static const char *const bookkeeping_sql[] = {
    "CREATE TABLE IF NOT EXISTS usher_migrations ("
    " version integer PRIMARY KEY, name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(), checksum text)",
    "ALTER TABLE usher_migrations ADD COLUMN IF NOT EXISTS checksum text",
};

const char *usher_migrate_default_dir(void)
{
    const char *dir = getenv("USHER_MIGRATIONS_DIR");

    return dir != NULL && dir[0] != '\0' ? dir : USHER_DATA_DIR "/migrations";
}

static int compare_migrations(const void *a, const void *b)
{
    return ((const migration *)a)->version - ((const migration *)b)->version;
}

/* Version from "NNNN_name.sql", or -1 if the name is not a migration. */
static int parse_version(const char *name)
{
    size_t len = strlen(name);
    char *end;
    long v;

    if (len < 9 || strcmp(name + len - 4, ".sql") != 0)
        return -1;
    v = strtol(name, &end, 10);
    if (end != name + 4 || *end != '_' || v < 0)
        return -1;
    return (int)v;
}

static USHER_MUSTCHECK usher_err list_migrations(usher_store *st, const char *dir, migration *out,
                                                 size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *ent;

    *n = 0;
    if (d == NULL)
        return usher_store_fail(st, USHER_ERR_IO, "%s: %s", dir, strerror(errno));
    while ((ent = readdir(d)) != NULL) {
        int version = parse_version(ent->d_name);

        if (version < 0)
            continue;
        if (*n == MIGRATIONS_MAX || strlen(ent->d_name) >= sizeof(out->name)) {
            closedir(d);
            return usher_store_fail(st, USHER_ERR_IO, "%s: too many or too long names", dir);
        }
        out[*n].version = version;
        snprintf(out[*n].name, sizeof(out->name), "%s", ent->d_name);
        (*n)++;
    }
    closedir(d);
    qsort(out, *n, sizeof(*out), compare_migrations);
    for (size_t i = 1; i < *n; i++) {
        if (out[i].version == out[i - 1].version)
            return usher_store_fail(st, USHER_ERR_IO, "%s and %s share a number", out[i - 1].name,
                                    out[i].name);
    }
    return USHER_OK;
}

static USHER_MUSTCHECK usher_err read_file(usher_store *st, const char *path, char **text)
{
    FILE *f = fopen(path, "rb");
    size_t len;

    *text = NULL;
    if (f == NULL)
        return usher_store_fail(st, USHER_ERR_IO, "%s: %s", path, strerror(errno));
    *text = usher_calloc(1, MIGRATION_MAX_BYTES + 1);
    len = fread(*text, 1, MIGRATION_MAX_BYTES + 1, f);
    fclose(f);
    if (len > MIGRATION_MAX_BYTES) {
        free(*text);
        *text = NULL;
        return usher_store_fail(st, USHER_ERR_IO, "%s: larger than 4 MiB", path);
    }
    return USHER_OK;
}

static void checksum_of(const char *text, char hex[CHECKSUM_HEX])
{
    unsigned char hash[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(hash, (const unsigned char *)text, strlen(text));
    sodium_bin2hex(hex, CHECKSUM_HEX, hash, sizeof(hash));
}

/*
 * Runs sql on m's row of usher_migrations with $1 = its version, $2 = hex
 * (a checksum, or NULL) and $3 = its name, of which sql uses the first
 * nparams. *res as usher_store_exec.
 */
static USHER_MUSTCHECK usher_err exec_on_row(usher_store *st, const migration *m, const char *hex,
                                             int nparams, const char *sql, PGresult **res)
{
    char v[USHER_INT_TEXT_MAX];
    const char *params[] = { v, hex, m->name };

    usher_int_text(m->version, v);
    return usher_store_exec(st, sql, nparams, params, res);
}

/* Reads m's file (path: where it is) into *sql, malloc'd, and its SHA-256 into hex. */
static USHER_MUSTCHECK usher_err load_file(usher_store *st, const char *dir, const migration *m,
                                           char path[MIGRATION_PATH_MAX], char **sql,
                                           char hex[CHECKSUM_HEX])
{
    usher_err err;

    snprintf(path, MIGRATION_PATH_MAX, "%s/%s", dir, m->name);
    err = read_file(st, path, sql);
    if (err == USHER_OK)
        checksum_of(*sql, hex);
    return err;
}

/*
 * Whether m is applied (m->applied) and, if so, the checksum recorded with
 * it in recorded ("" when the row predates checksums).
 */
static USHER_MUSTCHECK usher_err read_row(usher_store *st, migration *m,
                                          char recorded[CHECKSUM_HEX])
{
    PGresult *res;
    usher_err err = exec_on_row(st, m, NULL, 1,
                                "SELECT coalesce(checksum, '') FROM usher_migrations"
                                " WHERE version = $1",
                                &res);

    m->applied = err == USHER_OK && PQntuples(res) == 1;
    snprintf(recorded, CHECKSUM_HEX, "%s", m->applied ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return err;
}

/*
 * Checks an applied file against its row: refuses a file that changed, and
 * records the checksum of a row that has none (*trusted counts those).
 */
static USHER_MUSTCHECK usher_err check_applied(usher_store *st, const char *dir, migration *m,
                                               size_t *trusted)
{
    char path[MIGRATION_PATH_MAX], recorded[CHECKSUM_HEX], now[CHECKSUM_HEX];
    PGresult *res = NULL;
    char *sql;
    usher_err err = read_row(st, m, recorded);

    if (err != USHER_OK || !m->applied)
        return err;
    if ((err = load_file(st, dir, m, path, &sql, now)) != USHER_OK)
        return err;
    free(sql);
    if (recorded[0] != '\0' && strcmp(recorded, now) != 0)
        return usher_store_fail(st, USHER_ERR_CHANGED,
                                "%s was applied with SHA-256 %.12s... and is now %.12s...: an"
                                " applied migration is never edited (put the change in a new"
                                " file); nothing was applied",
                                path, recorded, now);
    if (recorded[0] != '\0')
        return USHER_OK;
    err = exec_on_row(st, m, now, 2,
                      "UPDATE usher_migrations SET checksum = $2"
                      " WHERE version = $1 AND checksum IS NULL",
                      &res);
    PQclear(res);
    if (err == USHER_OK)
        (*trusted)++;
    return err;
}

/* Runs a whole file; multiple statements need the simple query protocol. */
static USHER_MUSTCHECK usher_err run_script(usher_store *st, const char *name, const char *sql)
{
    PGresult *res = PQexec(usher_store_conn(st), sql);
    ExecStatusType status = PQresultStatus(res);
    usher_err err = USHER_OK;

    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        err = usher_store_fail(st, USHER_ERR_DB, "%s: %s", name,
                               PQerrorMessage(usher_store_conn(st)));
    PQclear(res);
    return err;
}

static USHER_MUSTCHECK usher_err apply_one(usher_store *st, const char *dir, const migration *m)
{
    char path[MIGRATION_PATH_MAX], checksum[CHECKSUM_HEX];
    char *sql;
    PGresult *res = NULL;
    usher_err err = load_file(st, dir, m, path, &sql, checksum);

    if (err != USHER_OK)
        return err;
    err = usher_store_command(st, "BEGIN");
    if (err == USHER_OK)
        err = run_script(st, m->name, sql);
    if (err == USHER_OK)
        err = exec_on_row(st, m, checksum, 3,
                          "INSERT INTO usher_migrations (version, checksum, name)"
                          " VALUES ($1, $2, $3)",
                          &res);
    PQclear(res);
    err = usher_store_end(st, err);
    free(sql);
    return err;
}

static USHER_MUSTCHECK usher_err prepare_bookkeeping(usher_store *st)
{
    usher_err err = USHER_OK;

    for (size_t i = 0; i < sizeof(bookkeeping_sql) / sizeof(bookkeeping_sql[0]); i++) {
        if (err == USHER_OK)
            err = usher_store_command(st, bookkeeping_sql[i]);
    }
    return err;
}

/* Checks every applied file first: a changed one stops the run before anything is applied. */
static USHER_MUSTCHECK usher_err apply_pending(usher_store *st, const char *dir,
                                               usher_migrate_counts *counts)
{
    migration *list = usher_calloc(MIGRATIONS_MAX, sizeof(*list));
    size_t n = 0;
    usher_err err = prepare_bookkeeping(st);

    if (err == USHER_OK)
        err = list_migrations(st, dir, list, &n);
    for (size_t i = 0; i < n && err == USHER_OK; i++)
        err = check_applied(st, dir, &list[i], &counts->trusted);
    for (size_t i = 0; i < n && err == USHER_OK; i++) {
        if (list[i].applied)
            continue;
        err = apply_one(st, dir, &list[i]);
        if (err == USHER_OK)
            counts->applied++;
    }
    free(list);
    return err;
}

usher_err usher_migrate(usher_store *st, const char *dir, usher_migrate_counts *counts)
{
    char lock_sql[64], unlock_sql[64];
    usher_migrate_counts ignored;
    usher_err err, unlock_err;

    if (counts == NULL)
        counts = &ignored;
    *counts = (usher_migrate_counts){ 0 };
    if (sodium_init() < 0)
        return usher_store_fail(st, USHER_ERR_SYSTEM, "libsodium failed to initialise");
    snprintf(lock_sql, sizeof(lock_sql), "SELECT pg_advisory_lock(%d)", MIGRATE_LOCK_KEY);
    snprintf(unlock_sql, sizeof(unlock_sql), "SELECT pg_advisory_unlock(%d)", MIGRATE_LOCK_KEY);
    err = usher_store_command(st, lock_sql);
    if (err != USHER_OK)
        return err;
    err = apply_pending(st, dir, counts);
    unlock_err = usher_store_command(st, unlock_sql);
    return err != USHER_OK ? err : unlock_err;
}
