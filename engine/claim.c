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

#include "buf.h"
#include "fate.h"

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
    "   u.payload::text, (extract(epoch FROM u.run_at) * 1000000)::int8";

static const char heartbeat_sql[] =
    "UPDATE usher_jobs SET locked_until = now() + $3::int8 * interval '1 millisecond'"
    " WHERE id = ANY($1::int8[]) AND state = 'running' AND locked_by = $2";

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

static usher_err read_job(usher_store *st, PGresult *res, int row, usher_job *job)
{
    snprintf(job->queue, sizeof(job->queue), "%s", PQgetvalue(res, row, 1));
    snprintf(job->kind, sizeof(job->kind), "%s", PQgetvalue(res, row, 2));
    job->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    job->priority = atoi(PQgetvalue(res, row, 3));
    job->attempt = atoi(PQgetvalue(res, row, 4));
    job->max_attempts = atoi(PQgetvalue(res, row, 5));
    job->timeout_ms = atoi(PQgetvalue(res, row, 6));
    job->run_at_us = strtoll(PQgetvalue(res, row, 8), NULL, 10);
    job->payload = strdup(PQgetvalue(res, row, 7));
    if (job->payload == NULL)
        return usher_store_fail(st, USHER_ERR_NOMEM, "out of memory reading a claimed job");
    return USHER_OK;
}

/* Array literal of names, for the $1 of claim_sql. */
static usher_err names_param(usher_store *st, const char *const *names, size_t n, usher_buf *b)
{
    usher_buf_array_open(b);
    for (size_t i = 0; i < n; i++)
        usher_buf_array_text(b, names[i]);
    usher_buf_array_close(b);
    if (usher_buf_failed(b))
        return usher_store_fail(st, USHER_ERR_NOMEM, "out of memory");
    return USHER_OK;
}

usher_err usher_claim(usher_store *st, const char *const *queues, size_t nqueues,
                      const char *worker, size_t max, usher_job **jobs, size_t *n)
{
    usher_buf names = { 0 };
    char limit[24], grace[24];
    const char *params[4] = { NULL, limit, worker, grace };
    PGresult *res = NULL;
    usher_err err;
    size_t rows;

    *jobs = NULL;
    *n = 0;
    if (max == 0 || nqueues == 0)
        return USHER_OK;
    snprintf(limit, sizeof(limit), "%zu", max);
    snprintf(grace, sizeof(grace), "%d", usher_store_config(st)->lease_grace_ms);
    err = names_param(st, queues, nqueues, &names);
    params[0] = usher_buf_str(&names);
    if (err == USHER_OK)
        err = usher_store_exec(st, claim_sql, 4, params, &res);
    usher_buf_release(&names);
    if (err != USHER_OK)
        return err;
    rows = (size_t)PQntuples(res);
    if (rows > 0 && (*jobs = calloc(rows, sizeof(**jobs))) == NULL)
        err = usher_store_fail(st, USHER_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < rows && err == USHER_OK; i++) {
        err = read_job(st, res, (int)i, &(*jobs)[i]);
        *n = i + 1;
    }
    PQclear(res);
    if (err != USHER_OK) {
        usher_jobs_free(*jobs, *n);
        *jobs = NULL;
        *n = 0;
        return err;
    }
    /* RETURNING has no order: put the batch back in claim order. */
    if (*n > 1)
        qsort(*jobs, *n, sizeof(**jobs), compare_claimed);
    return USHER_OK;
}

static usher_err ids_param(usher_store *st, const int64_t *ids, size_t n, usher_buf *b)
{
    usher_buf_array_open(b);
    for (size_t i = 0; i < n; i++)
        usher_buf_array_int(b, ids[i]);
    usher_buf_array_close(b);
    if (usher_buf_failed(b))
        return usher_store_fail(st, USHER_ERR_NOMEM, "out of memory");
    return USHER_OK;
}

/* Runs sql with $1 = ids, $2 = worker, $3 = extra; *count gets rows affected or the count. */
static usher_err run_on_ids(usher_store *st, const char *sql, const int64_t *ids, size_t n,
                            const char *worker, const char *extra, size_t *count)
{
    usher_buf b = { 0 };
    const char *params[3] = { NULL, worker, extra };
    PGresult *res = NULL;
    usher_err err = ids_param(st, ids, n, &b);

    params[0] = usher_buf_str(&b);
    if (err == USHER_OK)
        err = usher_store_exec(st, sql, extra != NULL ? 3 : 2, params, &res);
    usher_buf_release(&b);
    /* A SELECT count(*) reports its count as a value, an UPDATE as rows affected. */
    if (err == USHER_OK && count != NULL) {
        const char *value =
            PQntuples(res) == 1 && PQnfields(res) == 1 ? PQgetvalue(res, 0, 0) : PQcmdTuples(res);
        *count = (size_t)strtoull(value, NULL, 10);
    }
    PQclear(res);
    return err;
}

usher_err usher_heartbeat(usher_store *st, const char *worker, const int64_t *ids, size_t n,
                          int lease_ms, size_t *extended)
{
    char lease[24];

    if (extended != NULL)
        *extended = 0;
    if (n == 0)
        return USHER_OK;
    snprintf(lease, sizeof(lease), "%d", lease_ms);
    return run_on_ids(st, heartbeat_sql, ids, n, worker, lease, extended);
}

usher_err usher_complete(usher_store *st, const char *worker, const int64_t *ids, size_t n,
                         size_t *completed)
{
    if (completed != NULL)
        *completed = 0;
    if (n == 0)
        return USHER_OK;
    return run_on_ids(st, complete_sql, ids, n, worker, NULL, completed);
}

usher_err usher_fail(usher_store *st, const char *worker, const usher_job_result *results, size_t n,
                     size_t *updated)
{
    return usher_fate_apply(st, worker, results, n, updated);
}
