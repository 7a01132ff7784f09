/*
 * A retention pass (retention.h): the partition steps call the SQL
 * functions of migration 0025, which create and drop whole partitions; the
 * others delete in batches of a bounded size, each batch a statement of its
 * own (so no pass holds locks on many rows or grows one huge transaction),
 * until a batch comes back short. A document's bytes go when no document
 * names them any more: in the database store the blob row (its chunks
 * cascade) in the same transaction as the rows; in the directory store the
 * file, after that transaction committed (a crash in between leaves a file
 * no row names, never a row without its file).
 */
#include "retention.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "docstore.h"
#include "inttext.h"
#include "log.h"
#include "stmt.h"

#define BATCH     "5000"
#define DOC_BATCH "500"

/*
 * How long a step waits for a table lock someone else holds (a LOCK TABLE,
 * a migration) before the pass gives up until its next try: the pass runs
 * on the maintenance leader's connection, whose lease rescue must not stall
 * behind a housekeeping delete.
 */
#define LOCK_WAIT "2s"

/* $1: now (Unix seconds), $2: days; the cutoff is $1 - $2 days. */
#define CUTOFF "to_timestamp($1::float8) - $2::int * interval '1 day'"

/*
 * The ranges around now, and those of rows stranded in a DEFAULT partition
 * (the leader was away longer than partitions_ahead_days): creating their
 * partition moves them there, where an expired range is dropped next.
 */
static const char create_sql[] =
    "SELECT (SELECT count(*) FILTER (WHERE usher_partition_create('webhook_deliveries',"
    "  'created_at', 'week', t)) FROM ("
    "  SELECT to_timestamp($1::float8) + n * interval '1 day' FROM unnest(ARRAY[0, $2::int]) n"
    "  UNION SELECT DISTINCT date_trunc('week', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    "  FROM webhook_deliveries_default) x(t))"
    " + (SELECT count(*) FILTER (WHERE usher_partition_create('analytics_minute', 'minute',"
    "  'month', t)) FROM ("
    "  SELECT to_timestamp($1::float8) + n * interval '1 day' FROM unnest(ARRAY[0, $2::int]) n"
    "  UNION SELECT DISTINCT date_trunc('month', minute AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    "  FROM analytics_minute_default) x(t))";

static const char drop_deliveries_sql[] =
    "SELECT usher_partition_drop('webhook_deliveries', " CUTOFF ")";

static const char drop_rollups_sql[] =
    "SELECT usher_partition_drop('analytics_minute', " CUTOFF ", " CUTOFF ")";

static const char scans_sql[] =
    "WITH gone AS (DELETE FROM scans WHERE id IN ("
    "  SELECT s.id FROM events e JOIN scans s ON s.event_id = e.id WHERE e.ends_at < " CUTOFF
    "  LIMIT " BATCH ") RETURNING 1) SELECT count(*) FROM gone";

/* Scans of no event (a code that named none) go by their own age. */
static const char stray_scans_sql[] =
    "WITH gone AS (DELETE FROM scans WHERE id IN ("
    "  SELECT id FROM scans WHERE event_id IS NULL AND scanned_at < " CUTOFF " LIMIT " BATCH ")"
    "  RETURNING 1) SELECT count(*) FROM gone";

static const char notifications_sql[] =
    "WITH gone AS (DELETE FROM notifications WHERE id IN ("
    "  SELECT n.id FROM events e JOIN registrations r ON r.event_id = e.id"
    "  JOIN notifications n ON n.registration_id = r.id WHERE e.ends_at < " CUTOFF "  LIMIT " BATCH
    ") RETURNING 1) SELECT count(*) FROM gone";

static const char effects_sql[] =
    "WITH gone AS (DELETE FROM usher_effects WHERE key IN ("
    "  SELECT key FROM usher_effects WHERE created_at < " CUTOFF " LIMIT " BATCH ")"
    "  RETURNING 1) SELECT count(*) FROM gone";

/*
 * A batch of documents of expired events and the reports that name them
 * (a report is its file); returns each removed content's name once.
 */
static const char documents_sql[] =
    "WITH pick AS (SELECT d.id FROM events e JOIN documents d ON d.event_id = e.id"
    "  WHERE e.ends_at < " CUTOFF " LIMIT " DOC_BATCH " FOR UPDATE OF d),"
    " rep AS (DELETE FROM reports WHERE document_id IN (SELECT id FROM pick)),"
    " gone AS (DELETE FROM documents WHERE id IN (SELECT id FROM pick) RETURNING sha256)"
    " SELECT (SELECT count(*) FROM gone),"
    "  (SELECT coalesce(array_agg(DISTINCT sha256), '{}') FROM gone)";

/* Of the names in $1, those no document names now; in the database store, removed. */
static const char orphans_db_sql[] =
    "DELETE FROM document_blobs b WHERE b.sha256 = ANY($1::text[])"
    " AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.sha256 = b.sha256) RETURNING b.sha256";

static const char orphans_dir_sql[] =
    "SELECT s FROM unnest($1::text[]) s"
    " WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.sha256 = s)";

/* Runs sql ($1 now, $2 days) and adds its single count to *total. */
static USHER_MUSTCHECK usher_err count_once(usher_store *st, const char *sql, const char *now,
                                            int days, size_t *total, size_t *got)
{
    char d[USHER_INT_TEXT_MAX];
    const char *params[] = { now, usher_int_text(days, d) };
    PGresult *res = NULL;
    usher_err err = usher_store_exec(st, sql, 2, params, &res);

    *got = 0;
    if (err == USHER_OK) {
        *got = (size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        *total += *got;
    }
    PQclear(res);
    return err;
}

/* Runs a batched delete until a batch comes back short. days 0: keeps everything. */
static USHER_MUSTCHECK usher_err batches(usher_store *st, const char *sql, const char *now,
                                         int days, size_t *total)
{
    size_t got = (size_t)atoi(BATCH);
    usher_err err = USHER_OK;

    while (days > 0 && err == USHER_OK && got == (size_t)atoi(BATCH))
        err = count_once(st, sql, now, days, total, &got);
    return err;
}

/* Removes the directory store's files of the names res lists; missing ones count as gone. */
static void unlink_files(const usher_config *cfg, PGresult *res, size_t *blobs)
{
    for (int i = 0; i < PQntuples(res); i++) {
        char path[4096];

        if (usher_docstore_path(cfg->document_dir, PQgetvalue(res, i, 0), path, sizeof(path)) !=
            USHER_OK)
            continue;
        if (unlink(path) == 0 || errno == ENOENT)
            (*blobs)++;
        else
            usher_log(USHER_LOG_WARNING, "retention: cannot remove %s: %s", path, strerror(errno));
    }
}

/* One batch of documents; *got says how many rows went. */
static USHER_MUSTCHECK usher_err documents_batch(const usher_config *cfg, usher_store *st,
                                                 const char *now, usher_retention_report *out,
                                                 size_t *got)
{
    char d[USHER_INT_TEXT_MAX];
    const char *params[] = { now, usher_int_text(cfg->retention_document_days, d) };
    bool in_db = usher_docstore_in_database(cfg);
    PGresult *res = NULL, *orphans = NULL;
    usher_err err = usher_store_command(st, "BEGIN");

    *got = 0;
    if (err == USHER_OK)
        err = usher_store_exec(st, documents_sql, 2, params, &res);
    if (err == USHER_OK) {
        const char *names[] = { PQgetvalue(res, 0, 1) };

        *got = (size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        err = usher_store_exec(st, in_db ? orphans_db_sql : orphans_dir_sql, 1, names, &orphans);
    }
    err = usher_store_end(st, err);
    if (err == USHER_OK) {
        out->documents += *got;
        if (in_db)
            out->blobs += (size_t)PQntuples(orphans);
        else
            unlink_files(cfg, orphans, &out->blobs);
    }
    PQclear(res);
    PQclear(orphans);
    return err;
}

static USHER_MUSTCHECK usher_err documents(const usher_config *cfg, usher_store *st,
                                           const char *now, usher_retention_report *out)
{
    size_t got = (size_t)atoi(DOC_BATCH);
    usher_err err = USHER_OK;

    while (cfg->retention_document_days > 0 && err == USHER_OK && got == (size_t)atoi(DOC_BATCH))
        err = documents_batch(cfg, st, now, out, &got);
    return err;
}

/* usher_effects: kept effects_days, and never less than a dead job is kept. */
static int effects_days(const usher_config *cfg)
{
    int dead_days = (cfg->dead_retention_hours + 23) / 24 + 1;

    if (cfg->retention_effects_days == 0)
        return 0;
    return cfg->retention_effects_days > dead_days ? cfg->retention_effects_days : dead_days;
}

static USHER_MUSTCHECK usher_err partitions(const usher_config *cfg, usher_store *st,
                                            const char *now, usher_retention_report *out)
{
    size_t got;
    usher_err err = count_once(st, create_sql, now, cfg->retention_partitions_ahead,
                               &out->partitions_created, &got);

    if (err == USHER_OK && cfg->retention_webhook_days > 0)
        err = count_once(st, drop_deliveries_sql, now, cfg->retention_webhook_days,
                         &out->partitions_dropped, &got);
    if (err == USHER_OK && cfg->retention_reporting_days > 0)
        err = count_once(st, drop_rollups_sql, now, cfg->retention_reporting_days,
                         &out->partitions_dropped, &got);
    return err;
}

static usher_err first_failure(usher_err so_far, usher_err step)
{
    return so_far != USHER_OK ? so_far : step;
}

/*
 * Gives st back with the server's lock_timeout; err stays the pass's
 * outcome (a successful command leaves the store's message as it was).
 */
static usher_err reset_lock_wait(usher_store *st, usher_err err)
{
    usher_err reset = usher_store_command(st, "RESET lock_timeout");

    return err != USHER_OK ? err : reset;
}

usher_err usher_retention_run(const usher_config *cfg, usher_store *st, int64_t now,
                              usher_retention_report *out)
{
    char when[USHER_INT_TEXT_MAX];
    usher_err err;

    *out = (usher_retention_report){ 0 };
    usher_int_text(now, when);
    err = usher_store_command(st, "SET lock_timeout = '" LOCK_WAIT "'");
    if (err != USHER_OK)
        return err;
    /*
     * Each step runs even when one before it failed (a lock held long on
     * one table must not keep the others' deletes from running); the pass
     * returns the first failure.
     */
    err = first_failure(err, partitions(cfg, st, when, out));
    err = first_failure(err,
                        batches(st, scans_sql, when, cfg->retention_reporting_days, &out->scans));
    err = first_failure(
        err, batches(st, stray_scans_sql, when, cfg->retention_reporting_days, &out->scans));
    err = first_failure(err, batches(st, notifications_sql, when, cfg->retention_reporting_days,
                                     &out->notifications));
    err = first_failure(err, documents(cfg, st, when, out));
    err = first_failure(err, batches(st, effects_sql, when, effects_days(cfg), &out->effects));
    return reset_lock_wait(st, err);
}

size_t usher_retention_total(const usher_retention_report *out)
{
    return out->partitions_created + out->partitions_dropped + out->scans + out->notifications +
           out->documents + out->blobs + out->effects;
}
