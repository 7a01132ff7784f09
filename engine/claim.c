/*
 * Claim, heartbeat, complete and fail. Each is one statement for the whole
 * batch: ids and per-job values travel as array parameters. A claim is one
 * call of usher_claim() (0020_fair_claim.sql): within a priority, jobs near
 * their deadline first, then the partitions (organizers) that have runnable
 * jobs share the batch in turn, so a pool serving several queues keeps
 * strict priority across them and no partition's backlog stands in front
 * of another's. Every update is guarded by "state = 'running' AND
 * locked_by = worker", so a worker whose lease was rescued cannot complete
 * or fail a job that is no longer its own.
 */
#include "claim.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "fate.h"
#include "stmt.h"

/*
 * The fair, deadline-aware claim is a PL/pgSQL function,
 * usher_claim() in schemas/migrations/0020_fair_claim.sql, which says how
 * it walks the partitions. It returns the claimed rows with their place in
 * the batch (ord), whether each was late and whether it was dropped.
 */
static const char claim_sql[] =
    "SELECT * FROM usher_claim($1::text[], $2::int4, $3, $4::int8, $5::int8, $6::text[])";

static const char heartbeat_sql[] =
    "WITH extended AS (UPDATE usher_jobs"
    "  SET locked_until = now() + $3::int8 * interval '1 millisecond'"
    "  WHERE id = ANY($1::int8[]) AND state = 'running' AND locked_by = $2 RETURNING 1)"
    " SELECT count(*) FROM extended";

static const char complete_sql[] =
    "WITH done AS ("
    "  DELETE FROM usher_jobs WHERE id = ANY($1::int8[]) AND state = 'running'"
    "  AND locked_by = $2 RETURNING queue),"
    " counted AS ("
    "  INSERT INTO usher_queue_stats AS s (queue, minute, shard, completed)"
    "  SELECT queue, date_trunc('minute', now()), pg_backend_pid() % 8, count(*)"
    "  FROM done GROUP BY queue"
    "  ON CONFLICT (queue, minute, shard) DO UPDATE SET completed = s.completed + EXCLUDED.completed)"
    " SELECT count(*) FROM done";

void usher_jobs_free(usher_job *jobs, size_t n)
{
    if (jobs == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(jobs[i].payload);
    free(jobs);
}

/* Jobs claimed after their deadline (run late) and dropped for it, by this process. */
static uint64_t deadline_missed, deadline_dropped;

void usher_claim_deadline_counts(uint64_t *missed, uint64_t *dropped)
{
    *missed = deadline_missed;
    *dropped = deadline_dropped;
}

/* A row of the claim's result and its place in the batch. */
typedef struct claimed_row {
    int row;
    int64_t ord;
} claimed_row;

static int compare_ord(const void *a, const void *b)
{
    const claimed_row *x = a, *y = b;

    return x->ord < y->ord ? -1 : x->ord > y->ord;
}

static bool column_true(const PGresult *res, int row, int col)
{
    return PQgetvalue(res, row, col)[0] == 't';
}

static void read_job(const PGresult *res, int row, usher_job *job)
{
    snprintf(job->queue, sizeof(job->queue), "%s", PQgetvalue(res, row, 1));
    snprintf(job->kind, sizeof(job->kind), "%s", PQgetvalue(res, row, 2));
    snprintf(job->partition_key, sizeof(job->partition_key), "%s", PQgetvalue(res, row, 13));
    job->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    job->priority = atoi(PQgetvalue(res, row, 3));
    job->attempt = atoi(PQgetvalue(res, row, 4));
    job->max_attempts = atoi(PQgetvalue(res, row, 5));
    job->timeout_ms = atoi(PQgetvalue(res, row, 6));
    job->run_at_us = strtoll(PQgetvalue(res, row, 8), NULL, 10);
    job->payload = usher_strdup(PQgetvalue(res, row, 7));
    snprintf(job->request_id, sizeof(job->request_id), "%s", PQgetvalue(res, row, 9));
}

usher_err usher_claim_stmt(usher_stmt *s, const usher_config *cfg, const char *const *queues,
                           size_t nqueues, const char *worker, size_t max)
{
    usher_buf *names = usher_stmt_array(s, 0), *drop;

    for (size_t i = 0; i < nqueues; i++)
        usher_buf_array_text(names, queues[i]);
    usher_stmt_int(s, 1, (int64_t)max);
    usher_stmt_text(s, 2, worker);
    usher_stmt_int(s, 3, cfg->lease_grace_ms);
    usher_stmt_int(s, 4, cfg->deadline_lead_ms);
    drop = usher_stmt_array(s, 5);
    for (size_t i = 0; i < cfg->nkinds; i++) {
        if (cfg->kinds[i].deadline_drop)
            usher_buf_array_text(drop, cfg->kinds[i].name);
    }
    s->sql = claim_sql;
    return usher_stmt_finish(s, 6);
}

usher_err usher_claim_read(const PGresult *res, usher_job **jobs, size_t *n)
{
    size_t rows = (size_t)PQntuples(res), kept = 0;
    claimed_row *order;

    *jobs = NULL;
    *n = 0;
    if (rows == 0)
        return USHER_OK;
    /* RETURNING has no order: put the batch back in claim order. */
    order = usher_calloc(rows, sizeof(*order));
    for (size_t i = 0; i < rows; i++)
        order[i] = (claimed_row){ (int)i, strtoll(PQgetvalue(res, (int)i, 10), NULL, 10) };
    qsort(order, rows, sizeof(*order), compare_ord);
    *jobs = usher_calloc(rows, sizeof(**jobs));
    for (size_t i = 0; i < rows; i++) {
        int row = order[i].row;

        deadline_missed += column_true(res, row, 11);
        if (column_true(res, row, 12)) {
            deadline_dropped++;
            continue;
        }
        read_job(res, row, &(*jobs)[kept++]);
    }
    free(order);
    *n = kept;
    if (kept == 0) {
        free(*jobs);
        *jobs = NULL;
    }
    return USHER_OK;
}

/* Runs a built statement on the store; *res is the caller's to clear. */
static USHER_MUSTCHECK usher_err run(usher_store *st, usher_stmt *s, usher_err built,
                                     PGresult **res)
{
    usher_err err = built;

    *res = NULL;
    if (err == USHER_OK)
        err = usher_store_exec_hot(st, s->sql, s->nparams, s->params, res);
    usher_stmt_release(s);
    return err;
}

usher_err usher_claim(usher_store *st, const char *const *queues, size_t nqueues,
                      const char *worker, size_t max, usher_job **jobs, size_t *n)
{
    usher_stmt s = { 0 };
    PGresult *res;
    usher_err err;

    *jobs = NULL;
    *n = 0;
    if (max == 0 || nqueues == 0)
        return USHER_OK;
    err = run(st, &s, usher_claim_stmt(&s, usher_store_config(st), queues, nqueues, worker, max),
              &res);
    if (err != USHER_OK)
        return err;
    err = usher_claim_read(res, jobs, n);
    PQclear(res);
    return err;
}

/* $1 = ids, $2 = worker, then the caller's parameters. */
static void ids_and_worker(usher_stmt *s, const int64_t *ids, size_t n, const char *worker)
{
    usher_buf *b = usher_stmt_array(s, 0);

    for (size_t i = 0; i < n; i++)
        usher_buf_array_int(b, ids[i]);
    usher_stmt_text(s, 1, worker);
}

usher_err usher_heartbeat_stmt(usher_stmt *s, const char *worker, const int64_t *ids, size_t n,
                               int lease_ms)
{
    ids_and_worker(s, ids, n, worker);
    usher_stmt_int(s, 2, lease_ms);
    s->sql = heartbeat_sql;
    return usher_stmt_finish(s, 3);
}

usher_err usher_complete_stmt(usher_stmt *s, const char *worker, const int64_t *ids, size_t n)
{
    ids_and_worker(s, ids, n, worker);
    s->sql = complete_sql;
    return usher_stmt_finish(s, 2);
}

/* Runs s and reads its count into *count (may be NULL). */
static USHER_MUSTCHECK usher_err run_count(usher_store *st, usher_stmt *s, usher_err built,
                                           size_t *count)
{
    PGresult *res;
    usher_err err = run(st, s, built, &res);

    if (err == USHER_OK && count != NULL)
        *count = usher_stmt_count(res);
    PQclear(res);
    return err;
}

/* Zeroes *count (may be NULL); true when there is nothing to run (n == 0). */
static bool nothing_to_run(size_t n, size_t *count)
{
    if (count != NULL)
        *count = 0;
    return n == 0;
}

usher_err usher_heartbeat(usher_store *st, const char *worker, const int64_t *ids, size_t n,
                          int lease_ms, size_t *extended)
{
    usher_stmt s = { 0 };

    if (nothing_to_run(n, extended))
        return USHER_OK;
    return run_count(st, &s, usher_heartbeat_stmt(&s, worker, ids, n, lease_ms), extended);
}

usher_err usher_complete(usher_store *st, const char *worker, const int64_t *ids, size_t n,
                         size_t *completed)
{
    usher_stmt s = { 0 };

    if (nothing_to_run(n, completed))
        return USHER_OK;
    return run_count(st, &s, usher_complete_stmt(&s, worker, ids, n), completed);
}

usher_err usher_fail(usher_store *st, const char *worker, const usher_job_result *results, size_t n,
                     size_t *updated)
{
    usher_stmt s = { 0 };

    if (nothing_to_run(n, updated))
        return USHER_OK;
    return run_count(st, &s, usher_fate_stmt(&s, usher_store_config(st), worker, results, n),
                     updated);
}
