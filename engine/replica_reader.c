#include "replica_reader.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "log.h"

/* The first wait between two looks at the replica; it doubles up to the last. */
#define POLL_FIRST_MS 1
#define POLL_MAX_MS   20

struct usher_replica_reader {
    const usher_config *cfg;
    usher_store *replica;  /* NULL until opened, and after a failure */
    int64_t skip_until_ms; /* the replica is not tried before this */
    int skip_ms;           /* the next skip's length: doubles while the failures go on */
};

/* Where the replica is against the primary's LSN $1. */
static const char replica_sql[] = "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 'current'"
                                  " WHEN pg_is_wal_replay_paused() THEN 'paused'"
                                  " WHEN pg_last_wal_replay_lsn() >= $1::pg_lsn THEN 'current'"
                                  " ELSE 'behind' END";

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

usher_replica_reader *usher_replica_reader_new(const usher_config *cfg)
{
    usher_replica_reader *rd = usher_calloc(1, sizeof(*rd));

    rd->cfg = cfg;
    return rd;
}

void usher_replica_reader_free(usher_replica_reader *rd)
{
    if (rd == NULL)
        return;
    usher_store_free(rd->replica);
    free(rd);
}

/*
 * Leaves the replica alone for a while: closed when it failed, kept when
 * only behind. The while doubles, up to USHER_REPLICA_RETRY_MAX_MS, as long
 * as every try fails, so that a host that is gone costs a reader one connect
 * timeout a minute, not one every few seconds; a read it serves resets it.
 */
static void skip(usher_replica_reader *rd, bool close, const char *why)
{
    int ms = rd->skip_ms > 0 ? rd->skip_ms : USHER_REPLICA_RETRY_MS;

    usher_log(USHER_LOG_WARNING, "replica reads go to the primary for %d ms: %s", ms, why);
    if (close) {
        usher_store_free(rd->replica);
        rd->replica = NULL;
    }
    rd->skip_until_ms = now_ms() + ms;
    rd->skip_ms = ms * 2 < USHER_REPLICA_RETRY_MAX_MS ? ms * 2 : USHER_REPLICA_RETRY_MAX_MS;
}

/* The replica's connection, opened when needed; NULL (and skipped) when it cannot be. */
static usher_store *replica(usher_replica_reader *rd)
{
    char errbuf[512];

    if (rd->replica != NULL && !usher_store_usable(rd->replica)) {
        usher_store_free(rd->replica);
        rd->replica = NULL;
    }
    if (rd->replica == NULL &&
        usher_store_open_url(rd->cfg, rd->cfg->database_read_url, &rd->replica, errbuf,
                             sizeof(errbuf)) != USHER_OK)
        skip(rd, true, errbuf);
    return rd->replica;
}

/* Waits until the replica has replayed lsn: true, or false (and skipped) when it cannot be read. */
static bool caught_up(usher_replica_reader *rd, usher_store *rep, const char *lsn)
{
    const char *params[] = { lsn };
    int64_t deadline = now_ms() + rd->cfg->database_max_replica_lag_ms;
    int wait = POLL_FIRST_MS;

    for (;;) {
        PGresult *res;
        char state[16];

        if (usher_store_exec(rep, replica_sql, 1, params, &res) != USHER_OK) {
            skip(rd, true, usher_store_errstr(rep));
            return false;
        }
        snprintf(state, sizeof(state), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        if (strcmp(state, "current") == 0)
            return true;
        if (strcmp(state, "paused") == 0) {
            skip(rd, false, "its replay is paused");
            return false;
        }
        if (now_ms() >= deadline) {
            char why[96];

            snprintf(why, sizeof(why), "it has not replayed %s within max_replica_lag_ms (%d)", lsn,
                     rd->cfg->database_max_replica_lag_ms);
            skip(rd, false, why);
            return false;
        }
        sleep_ms(wait);
        wait = wait * 2 < POLL_MAX_MS ? wait * 2 : POLL_MAX_MS;
    }
}

usher_err usher_replica_reader_pick(usher_replica_reader *rd, usher_store *primary,
                                    usher_store **reader)
{
    PGresult *res;
    char lsn[32];
    usher_store *rep;
    usher_err err;

    *reader = primary;
    if (!usher_config_has_read_url(rd->cfg) || now_ms() < rd->skip_until_ms)
        return USHER_OK;
    err = usher_store_exec(primary, "SELECT pg_current_wal_lsn()", 0, NULL, &res);
    if (err != USHER_OK)
        return err;
    snprintf(lsn, sizeof(lsn), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    rep = replica(rd);
    if (rep != NULL && caught_up(rd, rep, lsn)) {
        *reader = rep;
        rd->skip_ms = 0;
    }
    return USHER_OK;
}

bool usher_replica_reader_failed(usher_replica_reader *rd, const usher_store *reader)
{
    if (reader == NULL || reader != rd->replica)
        return false;
    skip(rd, true, usher_store_errstr(rd->replica));
    return true;
}
