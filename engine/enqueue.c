/*
 * Enqueue, the owner of every job insert (enqueue.h says who else may
 * write jobs: nobody). Every job of a batch is validated first (names,
 * payload, limits, declared queue), then all are written by one statement
 * over arrays, so a batch of a thousand costs one round trip. Unique keys
 * use ON CONFLICT DO NOTHING against the partial unique index of live jobs;
 * the rows it skipped are looked up afterwards to return the live job. The
 * same statement NOTIFYs the queues whose debounce window is open
 * (usher_wake_channel).
 */
#include "enqueue.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"
#include "queues.h"
#include "stmt.h"
#include "wake.h"

#define UNIQUE_KEY_MAX 255
#define PARTITION_MAX  63 /* usher_job's partition_key holds it */
#define LOOKUP_TRIES   3

/*
 * The NOTIFYs due, as usher_wake() sends them, written out so that the
 * planner inlines usher_wake_channel() into the prepared statement.
 */
#define WAKE_CTE                                                        \
    " wake AS (SELECT count(pg_notify(usher_wake_channel(q), '')) AS n" \
    "   FROM unnest($12::text[]) q)"

/*
 * What the three INSERTs below share, written once: run_at from run_at_us,
 * else now + delay_ms; the deadline; one live job per (queue, unique key),
 * usher_enqueue_rows' rules (0032_register_rows.sql).
 */
#define RUN_AT(us, ms)                                             \
    "CASE WHEN " us " IS NOT NULL THEN 'epoch'::timestamptz + " us \
    " * interval '1 microsecond' ELSE now() + " ms " * interval '1 millisecond' END"
#define DEADLINE(ms) "now() + " ms " * interval '1 millisecond'"
#define LIVE_KEY_CONFLICT              \
    " ON CONFLICT (queue, unique_key)" \
    "   WHERE unique_key IS NOT NULL AND state IN ('available', 'running') DO NOTHING"
#define ALL_COLUMNS                                                                 \
    "usher_jobs (queue, kind, priority, payload, max_attempts, timeout_ms, run_at," \
    " partition_key, deadline, unique_key, request_id, parent_id)"

/*
 * A batch: one INSERT over its column arrays, in input order, and the
 * NOTIFYs due in the same statement. Straight from the arrays: going
 * through usher_enqueue_templates (jsonb built and taken apart again, a
 * PL/pgSQL call) cost a third more per batch of 8 (bench/README.md,
 * shared commits).
 */
static const char insert_sql[] =
    "WITH ins AS ("
    "  INSERT INTO " ALL_COLUMNS
    "  SELECT queue, kind, priority, payload::jsonb, max_attempts, timeout_ms,"
    "    " RUN_AT(
        "run_at_us",
        "coalesce(delay_ms, 0)") ","
                                 "    coalesce(partition_key, ''), " DEADLINE(
                                     "deadline_ms") ","
                                                    "    unique_key, request_id, parent_id"
                                                    "  FROM unnest($1::text[], $2::text[], $3::int2[], $4::text[], $5::int4[], $6::int4[],"
                                                    "              $7::int8[], $8::int8[], $9::text[], $10::int8[], $11::text[], $13::text[],"
                                                    "              $14::int8[])"
                                                    "  WITH ORDINALITY AS t(queue, kind, priority, payload, max_attempts, timeout_ms,"
                                                    "                       run_at_us, delay_ms, partition_key, deadline_ms, unique_key,"
                                                    "                       request_id, parent_id, ord)"
                                                    "  ORDER BY ord" LIVE_KEY_CONFLICT
                                                    "  RETURNING id, queue, unique_key)," WAKE_CTE
                                                    " SELECT id, queue, unique_key FROM ins, wake";

/*
 * One job with a unique key, a request id, a parent or a NOTIFY due. It and
 * insert_plain_sql take plain values instead of arrays: the single enqueue is
 * the hot path (a chained email, a periodic job; bench/queue's enqueue phase).
 */
static const char insert_one_sql[] =
    "WITH ins AS ("
    "  INSERT INTO " ALL_COLUMNS "  VALUES ($1, $2, $3, $4::jsonb, $5, $6, " RUN_AT(
        "$7::int8", "$8::int8") ","
                                "    coalesce($9, ''), " DEADLINE(
                                    "$10::int8") ", $11, $13, $14::int8)" LIVE_KEY_CONFLICT
                                                 "  RETURNING id, queue, unique_key)," WAKE_CTE
                                                 " SELECT id, queue, unique_key FROM ins, wake";

/*
 * The common case under load: one job, no unique key, no NOTIFY due (the
 * debounce window is closed). A bare INSERT is what pgbench's floor runs.
 */
static const char insert_plain_sql[] =
    "INSERT INTO usher_jobs (queue, kind, priority, payload, max_attempts, timeout_ms, run_at,"
    "                        partition_key, deadline)"
    " VALUES ($1, $2, $3, $4::jsonb, $5, $6, " RUN_AT(
        "$7::int8",
        "$8::int8") ","
                    "  coalesce($9, ''), " DEADLINE("$10::int8") ")"
                                                                 " RETURNING id, queue, unique_key";

static const char lookup_sql[] = "SELECT id FROM usher_jobs WHERE queue = $1 AND unique_key = $2"
                                 " AND state IN ('available', 'running')";

/* The parameters of insert_sql, in order. */
enum column {
    QUEUE,
    KIND,
    PRIORITY,
    PAYLOAD,
    MAX_ATTEMPTS,
    TIMEOUT_MS,
    RUN_AT_US,
    DELAY_MS,
    PARTITION_KEY,
    DEADLINE_MS,
    UNIQUE_KEY,
    WAKE,
    REQUEST_ID,
    PARENT_ID,
    NCOLUMNS
};

static USHER_MUSTCHECK usher_err check_job(usher_store *st, const usher_enqueue_opts *job, size_t i)
{
    const usher_config *cfg = usher_store_config(st);
    char why[256];
    usher_err err;

    if (job->queue == NULL || job->kind == NULL)
        return usher_store_fail(st, USHER_ERR_INVALID, "job %zu: queue and kind are required", i);
    if (!usher_config_valid_name(job->kind))
        return usher_store_fail(st, USHER_ERR_INVALID, "job %zu: invalid kind '%s'", i, job->kind);
    if (job->priority_set && (job->priority < 0 || job->priority > 2))
        return usher_store_fail(st, USHER_ERR_INVALID, "job %zu: priority must be 0, 1 or 2", i);
    if (job->max_attempts < 0 || job->max_attempts > 1000 || job->timeout_ms < 0 ||
        job->delay_ms < 0 || job->run_at_us < 0 || job->parent_id < 0)
        return usher_store_fail(st, USHER_ERR_INVALID,
                                "job %zu: max_attempts, timeout and delay must be positive", i);
    if (job->unique_key != NULL &&
        (job->unique_key[0] == '\0' || strlen(job->unique_key) > UNIQUE_KEY_MAX))
        return usher_store_fail(st, USHER_ERR_INVALID, "job %zu: unique key must be 1..%d bytes", i,
                                UNIQUE_KEY_MAX);
    if (job->request_id != NULL &&
        (job->request_id[0] == '\0' || strlen(job->request_id) > USHER_REQUEST_ID_MAX))
        return usher_store_fail(st, USHER_ERR_INVALID, "job %zu: request id must be 1..%d bytes", i,
                                USHER_REQUEST_ID_MAX);
    if (job->partition_key != NULL && strlen(job->partition_key) > PARTITION_MAX)
        return usher_store_fail(st, USHER_ERR_INVALID, "job %zu: partition key over %d bytes", i,
                                PARTITION_MAX);
    if (job->deadline_ms < -1)
        return usher_store_fail(st, USHER_ERR_INVALID, "job %zu: deadline_ms must be -1 or more",
                                i);
    err = usher_payload_check(job->payload != NULL ? job->payload : "{}",
                              (size_t)cfg->payload_max_bytes, why, sizeof(why));
    if (err != USHER_OK)
        return usher_store_fail(st, err, "job %zu: %s", i, why);
    err = usher_queues_check(st, job->queue);
    if (err != USHER_OK)
        return usher_store_fail(st, err, "job %zu: unknown queue '%s'", i, job->queue);
    return USHER_OK;
}

/* Appends the job's value of each column: to arrays (a batch) or as plain values (one job). */
static void add_row(usher_stmt *s, bool single, const usher_config *cfg,
                    const usher_enqueue_opts *job)
{
    const usher_kind_conf *kind = usher_config_kind(cfg, job->kind);
    const char *text[NCOLUMNS] = { 0 };
    int64_t ints[NCOLUMNS] = { 0 };

    text[QUEUE] = job->queue;
    text[KIND] = job->kind;
    ints[PRIORITY] = job->priority_set ? job->priority : kind->priority;
    text[PAYLOAD] = job->payload != NULL ? job->payload : "{}";
    ints[MAX_ATTEMPTS] = job->max_attempts ? job->max_attempts : kind->max_attempts;
    ints[TIMEOUT_MS] = job->timeout_ms ? job->timeout_ms : kind->timeout_ms;
    ints[RUN_AT_US] = job->run_at_us;
    ints[DELAY_MS] = job->delay_ms;
    text[PARTITION_KEY] = job->partition_key;
    ints[DEADLINE_MS] = job->deadline_ms ? job->deadline_ms : kind->deadline_ms;
    text[UNIQUE_KEY] = job->unique_key;
    text[REQUEST_ID] = job->request_id;
    ints[PARENT_ID] = job->parent_id;
    for (int c = 0; c < NCOLUMNS; c++) {
        bool is_text = c == QUEUE || c == KIND || c == PAYLOAD || c == PARTITION_KEY ||
                       c == UNIQUE_KEY || c == REQUEST_ID;
        bool is_null = (is_text && text[c] == NULL) ||
                       ((c == RUN_AT_US || c == DEADLINE_MS || c == PARENT_ID) && ints[c] <= 0);

        if (c == WAKE)
            continue; /* the batch's, not a row's (add_wakes) */
        if (single && is_null)
            continue; /* a parameter never written is SQL NULL */
        if (single && is_text)
            usher_stmt_text(s, c, text[c]);
        else if (single)
            usher_stmt_int(s, c, ints[c]);
        else if (is_null)
            usher_buf_array_text(&s->text[c], NULL);
        else if (is_text)
            usher_buf_array_text(&s->text[c], text[c]);
        else
            usher_buf_array_int(&s->text[c], ints[c]);
    }
}

/* Queues of the batch that get a NOTIFY: runnable now, debounce window open. */
static void add_wakes(usher_buf *wake, const usher_config *cfg, const usher_enqueue_opts *jobs,
                      size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool seen = false;

        if (jobs[i].delay_ms > 0 || jobs[i].run_at_us > 0)
            continue;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(jobs[j].queue, jobs[i].queue) == 0;
        if (!seen && usher_wake_due(jobs[i].queue, cfg->notify_debounce_ms))
            usher_buf_array_text(wake, jobs[i].queue);
    }
}

static bool same_key(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/*
 * The rows come back in insertion order, which is input order minus the
 * rows skipped for a live unique key; match them up, leaving id 0 where a
 * row was skipped.
 */
static USHER_MUSTCHECK usher_err match_rows(usher_store *st, PGresult *res,
                                            const usher_enqueue_opts *jobs, size_t n,
                                            usher_enqueued *out)
{
    int row = 0, rows = PQntuples(res);

    for (size_t i = 0; i < n; i++) {
        const char *key = NULL;

        out[i] = (usher_enqueued){ 0 };
        if (row < rows && !PQgetisnull(res, row, 2))
            key = PQgetvalue(res, row, 2);
        if (row < rows && strcmp(PQgetvalue(res, row, 1), jobs[i].queue) == 0 &&
            same_key(key, jobs[i].unique_key)) {
            out[i].id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
            row++;
        } else if (jobs[i].unique_key == NULL) {
            return usher_store_fail(st, USHER_ERR_DB, "job %zu was not inserted", i);
        }
    }
    return USHER_OK;
}

/* The live job that holds job's unique key, or 0 if none does any more. */
static USHER_MUSTCHECK usher_err lookup_live(usher_store *st, const usher_enqueue_opts *job,
                                             int64_t *id)
{
    const char *params[] = { job->queue, job->unique_key };
    PGresult *res;
    usher_err err = usher_store_exec(st, lookup_sql, 2, params, &res);

    *id = 0;
    if (err != USHER_OK)
        return err;
    if (PQntuples(res) == 1)
        *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return USHER_OK;
}

/* The cheapest statement that does the job; trims s's parameters to match. */
static const char *pick_sql(usher_stmt *s, const usher_enqueue_opts *jobs, size_t n)
{
    if (n > 1)
        return insert_sql;
    if (jobs[0].unique_key != NULL || jobs[0].request_id != NULL || jobs[0].parent_id > 0 ||
        strcmp(usher_buf_str(&s->text[WAKE]), "{}") != 0)
        return insert_one_sql;
    s->nparams = UNIQUE_KEY; /* queue .. deadline_ms */
    return insert_plain_sql;
}

static USHER_MUSTCHECK usher_err insert_rows(usher_store *st, const usher_enqueue_opts *jobs,
                                             size_t n, usher_enqueued *out)
{
    const usher_config *cfg = usher_store_config(st);
    bool single = n == 1;
    usher_stmt s = { 0 };
    PGresult *res = NULL;
    usher_err err;

    for (int c = 0; c < NCOLUMNS; c++) {
        if (!single || c == WAKE)
            usher_stmt_array(&s, c);
    }
    for (size_t i = 0; i < n; i++)
        add_row(&s, single, cfg, &jobs[i]);
    add_wakes(&s.text[WAKE], cfg, jobs, n);
    err = usher_stmt_finish(&s, NCOLUMNS);
    if (err != USHER_OK)
        err = usher_store_fail(st, err, "out of memory building the batch");
    if (err == USHER_OK) {
        const char *sql = pick_sql(&s, jobs, n);

        err = usher_store_exec_hot(st, sql, s.nparams, s.params, &res);
    }
    if (err == USHER_OK)
        err = match_rows(st, res, jobs, n, out);
    PQclear(res);
    usher_stmt_release(&s);
    return err;
}

/*
 * A row skipped for its unique key gets the live job's id. If that job
 * finished between the INSERT and the lookup, the key is free: insert again.
 */
static USHER_MUSTCHECK usher_err resolve_skipped(usher_store *st, const usher_enqueue_opts *job,
                                                 usher_enqueued *out)
{
    for (int tries = 0; tries < LOOKUP_TRIES; tries++) {
        usher_err err = lookup_live(st, job, &out->id);

        if (err != USHER_OK || out->id != 0) {
            out->existed = out->id != 0;
            return err;
        }
        err = insert_rows(st, job, 1, out);
        if (err != USHER_OK || out->id != 0)
            return err;
    }
    return usher_store_fail(st, USHER_ERR_CONFLICT, "unique key '%s' kept changing hands",
                            job->unique_key);
}

usher_err usher_enqueue_batch(usher_store *st, const usher_enqueue_opts *jobs, size_t n,
                              usher_enqueued *out)
{
    usher_err err;

    if (n == 0)
        return USHER_OK;
    for (size_t i = 0; i < n; i++) {
        err = check_job(st, &jobs[i], i);
        if (err != USHER_OK)
            return err;
    }
    err = insert_rows(st, jobs, n, out);
    for (size_t i = 0; i < n && err == USHER_OK; i++) {
        if (out[i].id == 0)
            err = resolve_skipped(st, &jobs[i], &out[i]);
    }
    return err;
}

usher_err usher_enqueue(usher_store *st, const usher_enqueue_opts *job, usher_enqueued *out)
{
    return usher_enqueue_batch(st, job, 1, out);
}

json_t *usher_enqueue_template(const usher_config *cfg, const char *kind, const char *default_queue,
                               json_t *payload)
{
    const usher_kind_conf *k = usher_config_kind(cfg, kind);
    const char *queue = usher_config_kind_queue(cfg, kind, default_queue);
    json_t *t =
        json_pack("{s:s,s:s,s:i,s:i,s:i}", "queue", queue, "kind", kind, "priority", k->priority,
                  "max_attempts", k->max_attempts, "timeout_ms", k->timeout_ms);

    if (t != NULL && k->deadline_ms > 0 &&
        json_object_set_new(t, "deadline_ms", json_integer(k->deadline_ms)) != 0) {
        json_decref(t);
        t = NULL;
    }
    if (t != NULL && payload != NULL && json_object_set(t, "payload", payload) != 0) {
        json_decref(t);
        t = NULL;
    }
    json_decref(payload);
    return t;
}
