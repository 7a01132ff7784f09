/*
 * Claim, heartbeat, complete and fail. Each is one statement for the whole
 * batch: ids and per-job values travel as array parameters. Claims walk the
 * partial claim index once per served queue (LATERAL, each with its own
 * LIMIT and SKIP LOCKED) and merge in (priority, run_at, id) order, so a
 * pool serving several queues keeps strict priority across them. Every
 * update is guarded by "state = 'running' AND locked_by = worker", so a
 * worker whose lease was rescued cannot complete or fail a job that is no
 * longer its own.
 */
#include "claim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "fate.h"
#include "stmt.h"

static const char claim_sql[] =
    "WITH picked AS ("
    "  SELECT j.id FROM unnest($1::text[]) AS q(name)"
    "  CROSS JOIN LATERAL ("
    "    SELECT id, priority, run_at FROM usher_jobs"
    "    WHERE queue = q.name AND state = 'available' AND run_at <= now()"
    "    ORDER BY priority, run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) j"
    "  WHERE NOT EXISTS (SELECT 1 FROM usher_queues p WHERE p.name = q.name AND p.paused)"
    "  ORDER BY j.priority, j.run_at, j.id LIMIT $2)"
    " UPDATE usher_jobs u SET state = 'running', attempt = u.attempt + 1, locked_by = $3,"
    "   attempted_at = now(),"
    "   locked_until = now() + (u.timeout_ms + $4::int8) * interval '1 millisecond'"
    " FROM picked WHERE u.id = picked.id"
    " RETURNING u.id, u.queue, u.kind, u.priority, u.attempt, u.max_attempts, u.timeout_ms,"
    "   u.payload::text, (extract(epoch FROM u.run_at) * 1000000)::int8, u.request_id";

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

static int compare_claimed(const void *a, const void *b)
{
    const usher_job *x = a, *y = b;

    if (x->priority != y->priority)
        return x->priority - y->priority;
    if (x->run_at_us != y->run_at_us)
        return x->run_at_us < y->run_at_us ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void read_job(const PGresult *res, int row, usher_job *job)
{
    snprintf(job->queue, sizeof(job->queue), "%s", PQgetvalue(res, row, 1));
    snprintf(job->kind, sizeof(job->kind), "%s", PQgetvalue(res, row, 2));
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
    usher_buf *names = usher_stmt_array(s, 0);

    for (size_t i = 0; i < nqueues; i++)
        usher_buf_array_text(names, queues[i]);
    usher_stmt_int(s, 1, (int64_t)max);
    usher_stmt_text(s, 2, worker);
    usher_stmt_int(s, 3, cfg->lease_grace_ms);
    s->sql = claim_sql;
    return usher_stmt_finish(s, 4);
}

usher_err usher_claim_read(const PGresult *res, usher_job **jobs, size_t *n)
{
    size_t rows = (size_t)PQntuples(res);

    *jobs = NULL;
    *n = 0;
    if (rows == 0)
        return USHER_OK;
    *jobs = usher_calloc(rows, sizeof(**jobs));
    for (size_t i = 0; i < rows; i++)
        read_job(res, (int)i, &(*jobs)[i]);
    *n = rows;
    /* RETURNING has no order: put the batch back in claim order. */
    qsort(*jobs, *n, sizeof(**jobs), compare_claimed);
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
