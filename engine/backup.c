/*
 * The send barrier and the backup's snapshot (backup.h): three short
 * statements for a backup, two for a sender. The sender's record is its
 * own committed statement before the unlock, never in the same one: a
 * backup that got the lock between them would export a snapshot without
 * the row.
 */
#include "backup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stmt.h"

#define KEY_TEXT "33059464490926667" /* USHER_SEND_BARRIER_KEY in decimal */
_Static_assert(USHER_SEND_BARRIER_KEY == 33059464490926667LL, "KEY_TEXT is the key");

static USHER_MUSTCHECK usher_err run(usher_store *st, const char *sql)
{
    PGresult *res = NULL;
    usher_err err = usher_store_exec(st, sql, 0, NULL, &res);

    PQclear(res);
    return err;
}

usher_err usher_backup_snapshot_open(usher_store *st, char snapshot[USHER_SNAPSHOT_MAX])
{
    PGresult *res = NULL;
    usher_err err = run(st, "SELECT pg_advisory_lock(" KEY_TEXT ")");

    if (err == USHER_OK)
        err = run(st, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    if (err == USHER_OK)
        err = usher_store_exec(st, "SELECT pg_export_snapshot()", 0, NULL, &res);
    if (err == USHER_OK)
        snprintf(snapshot, USHER_SNAPSHOT_MAX, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return err;
}

usher_err usher_backup_barrier_release(usher_store *st)
{
    return run(st, "SELECT pg_advisory_unlock(" KEY_TEXT ")");
}

usher_err usher_backup_snapshot_close(usher_store *st)
{
    return run(st, "COMMIT");
}

/* ids as a bigint[] literal in b. */
static void id_array(usher_buf *b, const int64_t *ids, size_t n)
{
    usher_buf_array_open(b);
    for (size_t i = 0; i < n; i++)
        usher_buf_array_int(b, ids[i]);
    usher_buf_array_close(b);
}

usher_err usher_send_barrier_enter(usher_store *st, const int64_t *ids, size_t n, bool *sent)
{
    usher_buf b = { 0 };
    PGresult *res = NULL;
    usher_err err;

    id_array(&b, ids, n);
    const char *params[] = { b.data };
    err = usher_store_exec(st,
                           "SELECT j FROM pg_advisory_lock_shared(" KEY_TEXT "),"
                           " unnest($1::int8[]) j WHERE EXISTS (SELECT 1 FROM usher_effects"
                           " WHERE key = 'mail:' || j)",
                           1, params, &res);
    for (size_t i = 0; i < n; i++)
        sent[i] = false;
    for (int r = 0; err == USHER_OK && r < PQntuples(res); r++) {
        int64_t id = strtoll(PQgetvalue(res, r, 0), NULL, 10);

        for (size_t i = 0; i < n; i++)
            sent[i] = sent[i] || ids[i] == id;
    }
    PQclear(res);
    usher_buf_release(&b);
    return err;
}

usher_err usher_send_barrier_leave(usher_store *st, const int64_t *ids, size_t n)
{
    usher_buf b = { 0 };
    PGresult *res = NULL;
    usher_err err = USHER_OK;

    id_array(&b, ids, n);
    const char *params[] = { b.data };
    if (n > 0)
        err = usher_store_exec(st,
                               "INSERT INTO usher_effects (key, job_id)"
                               " SELECT 'mail:' || j, j FROM unnest($1::int8[]) j"
                               " ON CONFLICT (key) DO NOTHING",
                               1, params, &res);
    PQclear(res);
    usher_buf_release(&b);
    usher_err unlocked = run(st, "SELECT pg_advisory_unlock_shared(" KEY_TEXT ")");
    return err != USHER_OK ? err : unlocked;
}
