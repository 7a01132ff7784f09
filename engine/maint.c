/*
 * Lease rescue takes the expired jobs with FOR UPDATE SKIP LOCKED inside a
 * transaction, decides each one's fate with the retry policy, and writes
 * the decisions with the same statement a claimer uses to fail jobs, in
 * batches so a mass expiry (a host lost with 10,000 leases) does not
 * become one huge transaction.
 */
#include "maint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "claim.h"
#include "inttext.h"
#include "job.h"

#define RESCUE_BATCH 500
#define PRUNE_BATCH  5000
#define STR2(x)      #x
#define STR(x)       STR2(x)

static const char expired_sql[] =
    "SELECT id, queue, kind, attempt, max_attempts, coalesce(locked_by, '?')"
    " FROM usher_jobs WHERE state = 'running' AND locked_until < now()"
    " ORDER BY locked_until LIMIT " STR(RESCUE_BATCH) " FOR UPDATE SKIP LOCKED";

/*
 * A worker reconnects within about this long once the database is back
 * (engine/pgloop.c: a backoff of at most 1 s, a 2 s connect deadline).
 */
#define RECONNECT_MS 3000

static const char settled_sql[] =
    "SELECT now() - backend_start >= $1::int8 * interval '1 millisecond'"
    " FROM pg_stat_activity WHERE pid = pg_backend_pid()";

static const char is_leader_sql[] =
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
    " AND pid = pg_backend_pid() AND granted AND classid = 0"
    " AND objid = " STR(USHER_MAINT_LOCK_KEY) " AND objsubid = 1)";

static const char prune_jobs_sql[] =
    "WITH gone AS (DELETE FROM usher_jobs WHERE id IN ("
    "  SELECT id FROM usher_jobs WHERE state IN ('dead', 'cancelled')"
    "  AND finished_at < now() - $1::int * interval '1 hour' LIMIT " STR(
        PRUNE_BATCH) ")"
                     "  RETURNING 1) SELECT count(*) FROM gone";

static const char prune_stats_sql[] =
    "DELETE FROM usher_queue_stats WHERE minute < now() - $1::int * interval '1 hour'";

static USHER_MUSTCHECK usher_err query_bool(usher_store *st, const char *sql, bool *value)
{
    PGresult *res;
    usher_err err = usher_store_exec(st, sql, 0, NULL, &res);

    *value = false;
    if (err != USHER_OK)
        return err;
    *value = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return USHER_OK;
}

usher_err usher_maint_lead(usher_store *st, bool *leader)
{
    usher_err err = query_bool(st, is_leader_sql, leader);

    if (err != USHER_OK || *leader)
        return err;
    return query_bool(st, "SELECT pg_try_advisory_lock(" STR(USHER_MAINT_LOCK_KEY) ")", leader);
}

usher_err usher_maint_resign(usher_store *st)
{
    bool released;

    return query_bool(st, "SELECT pg_advisory_unlock(" STR(USHER_MAINT_LOCK_KEY) ")", &released);
}

static USHER_MUSTCHECK usher_err require_leader(usher_store *st)
{
    bool leader;
    usher_err err = query_bool(st, is_leader_sql, &leader);

    if (err == USHER_OK && !leader)
        return usher_store_fail(st, USHER_ERR_NOT_LEADER,
                                "this process does not hold the maintenance lock");
    return err;
}

/* Reads the expired jobs of res into jobs/results (error texts into errors). */
static void read_expired(PGresult *res, usher_job *jobs, usher_job_result *results,
                         char (*errors)[128])
{
    for (int i = 0; i < PQntuples(res); i++) {
        usher_job *job = &jobs[i];

        *job = (usher_job){ .id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
                            .attempt = atoi(PQgetvalue(res, i, 3)),
                            .max_attempts = atoi(PQgetvalue(res, i, 4)) };
        snprintf(job->queue, sizeof(job->queue), "%s", PQgetvalue(res, i, 1));
        snprintf(job->kind, sizeof(job->kind), "%s", PQgetvalue(res, i, 2));
        snprintf(errors[i], sizeof(errors[i]), "lease expired (worker %s)", PQgetvalue(res, i, 5));
        results[i] = (usher_job_result){
            .job = job, .outcome = USHER_OUTCOME_RETRY, .delay_ms = -1, .error = errors[i]
        };
    }
}

/* One batch in one transaction; *n gets how many were rescued. */
static USHER_MUSTCHECK usher_err rescue_batch(usher_store *st, size_t *n)
{
    usher_job *jobs = usher_calloc(RESCUE_BATCH, sizeof(*jobs));
    usher_job_result *results = usher_calloc(RESCUE_BATCH, sizeof(*results));
    char(*errors)[128] = usher_calloc(RESCUE_BATCH, sizeof(*errors));
    PGresult *res = NULL;
    usher_err err = USHER_OK;

    *n = 0;
    if (err == USHER_OK)
        err = usher_store_command(st, "BEGIN");
    if (err == USHER_OK)
        err = usher_store_exec(st, expired_sql, 0, NULL, &res);
    if (err == USHER_OK) {
        read_expired(res, jobs, results, errors);
        err = usher_fail(st, NULL, results, (size_t)PQntuples(res), n);
    }
    PQclear(res);
    err = usher_store_end(st, err);
    free(jobs);
    free(results);
    free(errors);
    return err;
}

/* Whether this session's server process has lived settle_ms (pg_stat_activity.backend_start). */
static USHER_MUSTCHECK usher_err settled(usher_store *st, int64_t settle_ms, bool *yes)
{
    char ms[USHER_INT_TEXT_MAX];
    const char *params[] = { ms };
    PGresult *res;
    usher_err err;

    *yes = true;
    if (settle_ms <= 0)
        return USHER_OK;
    usher_int_text(settle_ms, ms);
    err = usher_store_exec(st, settled_sql, 1, params, &res);
    if (err != USHER_OK)
        return err;
    /* Only a definite "not yet" holds the rescue back: never one that cannot say. */
    *yes = PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "f") != 0;
    PQclear(res);
    return USHER_OK;
}

int64_t usher_maint_settle_ms(const usher_config *cfg)
{
    int64_t heartbeat = 0;

    for (size_t i = 0; i < cfg->npools; i++) {
        if (cfg->pools[i].heartbeat_ms > heartbeat)
            heartbeat = cfg->pools[i].heartbeat_ms;
    }
    return cfg->lease_grace_ms + 2 * heartbeat + RECONNECT_MS;
}

usher_err usher_maint_rescue(usher_store *st, int64_t settle_ms, size_t *rescued)
{
    usher_err err = require_leader(st);
    size_t n = RESCUE_BATCH;
    bool ready = false;

    *rescued = 0;
    if (err == USHER_OK)
        err = settled(st, settle_ms, &ready);
    if (err == USHER_OK && !ready)
        return USHER_OK;
    while (err == USHER_OK && n == RESCUE_BATCH) {
        err = rescue_batch(st, &n);
        *rescued += n;
    }
    return err;
}

usher_err usher_maint_prune(usher_store *st, size_t *jobs_pruned)
{
    const usher_config *cfg = usher_store_config(st);
    char hours[USHER_INT_TEXT_MAX];
    const char *params[] = { hours };
    PGresult *res;
    usher_err err = require_leader(st);
    size_t n = PRUNE_BATCH;

    *jobs_pruned = 0;
    usher_int_text(cfg->dead_retention_hours, hours);
    while (err == USHER_OK && n == PRUNE_BATCH) {
        err = usher_store_exec(st, prune_jobs_sql, 1, params, &res);
        if (err == USHER_OK) {
            n = (size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10);
            *jobs_pruned += n;
            PQclear(res);
        }
    }
    if (err != USHER_OK)
        return err;
    usher_int_text(cfg->stats_retention_hours, hours);
    err = usher_store_exec(st, prune_stats_sql, 1, params, &res);
    PQclear(res);
    return err;
}
