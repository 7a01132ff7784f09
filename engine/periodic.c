/*
 * Firing periodic jobs. For each [periodic.NAME]: read the recorded slot,
 * ask engine/cron.c for the latest slot after it up to now, and if there
 * is one, in one transaction: UPDATE the record to that slot WHERE it is
 * still older, and only if a row came back, enqueue the job and note its
 * id. The UPDATE's row lock serialises two processes on the same slot:
 * the second waits for the first to commit, re-reads the row, finds
 * last_slot no longer older and updates nothing, so it enqueues nothing.
 * A rolled-back transaction leaves both the record and the job unwritten,
 * so a slot is never recorded without its job, nor enqueued twice.
 */
#include "periodic.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "cron.h"
#include "enqueue.h"
#include "inttext.h"
#include "log.h"

static const char last_slot_sql[] =
    "SELECT extract(epoch FROM last_slot)::int8 FROM usher_periodic WHERE name = $1";

/* First sight: two processes may both try; one row wins, neither fires. */
static const char record_sql[] =
    "INSERT INTO usher_periodic (name, last_slot)"
    " VALUES ($1, to_timestamp($2::int8)) ON CONFLICT (name) DO NOTHING RETURNING name";

static const char claim_sql[] =
    "UPDATE usher_periodic SET last_slot = to_timestamp($2::int8), fired_job = NULL,"
    " updated_at = now() WHERE name = $1 AND last_slot < to_timestamp($2::int8) RETURNING name";

static const char fired_sql[] = "UPDATE usher_periodic SET fired_job = $2::int8 WHERE name = $1";

/* "2026-03-02T03:00:00Z", for the log. */
static void format_utc(int64_t epoch_s, char *buf, size_t len)
{
    time_t t = (time_t)epoch_s;
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "%" PRId64, epoch_s);
}

/* The recorded slot of name into *last; *found is false when there is no row yet. */
static USHER_MUSTCHECK usher_err read_last_slot(usher_store *st, const char *name, bool *found,
                                                int64_t *last)
{
    const char *params[] = { name };
    PGresult *res;
    usher_err err = usher_store_exec(st, last_slot_sql, 1, params, &res);

    *found = false;
    if (err != USHER_OK)
        return err;
    if (PQntuples(res) == 1) {
        *found = true;
        *last = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    }
    PQclear(res);
    return USHER_OK;
}

/* First sight: records the latest slot at or before now, or now's minute, without firing. */
static USHER_MUSTCHECK usher_err record_first(usher_store *st, const usher_periodic_conf *per,
                                              int64_t now_s)
{
    int64_t slot = usher_cron_latest(&per->cron, now_s, INT64_MIN);
    char slot_text[USHER_INT_TEXT_MAX], when[32];
    const char *params[] = { per->name, slot_text };
    PGresult *res;
    usher_err err;

    if (slot < 0)
        slot = now_s - ((now_s % 60) + 60) % 60;
    usher_int_text(slot, slot_text);
    err = usher_store_exec(st, record_sql, 2, params, &res);
    if (err == USHER_OK && PQntuples(res) == 1 && usher_log_get_level() >= USHER_LOG_INFO) {
        format_utc(slot, when, sizeof(when));
        usher_log(USHER_LOG_INFO,
                  "periodic=%s cron=\"%s\" recorded=%s first seen: no backfill, fires from the "
                  "next slot",
                  per->name, per->cron.text, when);
    }
    PQclear(res);
    return err;
}

/* In the open transaction: enqueues per's job of slot and notes its id on the record. */
static USHER_MUSTCHECK usher_err enqueue_slot(usher_store *st, const usher_periodic_conf *per,
                                              int64_t slot, usher_enqueued *out)
{
    char key[USHER_NAME_MAX + 48], id_text[USHER_INT_TEXT_MAX];
    const char *params[] = { per->name, id_text };
    usher_enqueue_opts job = { .queue = per->queue,
                               .kind = per->kind,
                               .payload = per->payload,
                               .priority_set = per->priority >= 0,
                               .priority = per->priority,
                               .unique_key = key };
    PGresult *res;
    usher_err err;

    snprintf(key, sizeof(key), "periodic:%s:%" PRId64, per->name, slot);
    err = usher_enqueue(st, &job, out);
    if (err != USHER_OK)
        return err;
    usher_int_text(out->id, id_text);
    err = usher_store_exec(st, fired_sql, 2, params, &res);
    PQclear(res);
    return err;
}

static void log_fired(const usher_periodic_conf *per, int64_t slot, int64_t now_s,
                      const usher_enqueued *out)
{
    char when[32];

    if (usher_log_get_level() < USHER_LOG_INFO)
        return;
    format_utc(slot, when, sizeof(when));
    usher_log(USHER_LOG_INFO,
              "periodic=%s slot=%s late_s=%" PRId64 " job=%" PRId64 " queue=%s kind=%s%s fired",
              per->name, when, now_s - slot, out->id, per->queue, per->kind,
              out->existed ? " existed=1" : "");
}

/* One slot, in one transaction; *fired says whether this call enqueued its job. */
static USHER_MUSTCHECK usher_err fire_slot(usher_store *st, const usher_periodic_conf *per,
                                           int64_t slot, int64_t now_s, bool *fired)
{
    char slot_text[USHER_INT_TEXT_MAX];
    const char *params[] = { per->name, slot_text };
    PGresult *res = NULL;
    usher_enqueued out = { 0 };
    bool claimed = false;
    usher_err err = usher_store_command(st, "BEGIN");

    usher_int_text(slot, slot_text);
    if (err == USHER_OK)
        err = usher_store_exec(st, claim_sql, 2, params, &res);
    if (err == USHER_OK)
        claimed = PQntuples(res) == 1; /* 0: another process has this slot */
    PQclear(res);
    if (err == USHER_OK && claimed)
        err = enqueue_slot(st, per, slot, &out);
    if (err == USHER_OK)
        err = usher_store_command(st, "COMMIT");
    if (err != USHER_OK)
        return err;
    *fired = claimed && !out.existed;
    if (claimed)
        log_fired(per, slot, now_s, &out);
    return USHER_OK;
}

/* Rolls back what is open and names the periodic in the store's errstr. */
static USHER_MUSTCHECK usher_err failed(usher_store *st, const usher_periodic_conf *per,
                                        usher_err err)
{
    char detail[512];

    snprintf(detail, sizeof(detail), "%s", usher_store_errstr(st));
    usher_store_rollback(st);
    return usher_store_fail(st, err, "periodic %s: %s", per->name, detail);
}

static USHER_MUSTCHECK usher_err fire_one(usher_store *st, const usher_periodic_conf *per,
                                          int64_t now_s, bool *fired)
{
    bool found;
    int64_t last = 0, slot;
    usher_err err = read_last_slot(st, per->name, &found, &last);

    *fired = false;
    if (err == USHER_OK && !found)
        err = record_first(st, per, now_s);
    else if (err == USHER_OK && (slot = usher_cron_latest(&per->cron, now_s, last)) >= 0)
        err = fire_slot(st, per, slot, now_s, fired);
    return err == USHER_OK ? USHER_OK : failed(st, per, err);
}

usher_err usher_periodic_fire(usher_store *st, int64_t now_s, size_t *fired)
{
    const usher_config *cfg = usher_store_config(st);
    PGconn *conn = usher_store_conn(st);
    usher_err first = USHER_OK;
    char first_detail[512] = "";

    *fired = 0;
    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        return usher_store_fail(st, USHER_ERR_STATE,
                                "periodic: a transaction is open on the store");
    for (size_t i = 0; i < cfg->nperiodics; i++) {
        bool one;
        usher_err err = fire_one(st, &cfg->periodics[i], now_s, &one);

        *fired += one ? 1 : 0;
        if (err != USHER_OK && first == USHER_OK) {
            first = err;
            snprintf(first_detail, sizeof(first_detail), "%s", usher_store_errstr(st));
        }
        if (err != USHER_OK && !usher_store_usable(st))
            break; /* the others would fail the same way */
    }
    if (first != USHER_OK)
        return usher_store_fail(st, first, "%s", first_detail);
    return USHER_OK;
}
