/*
 * Job administration. Every filtered statement shares one WHERE clause
 * whose parameters are NULL when a field does not filter, so each
 * statement stays a fixed, parameterised string: the list, the count of a
 * dry run, and the bulk actions (retry and discard of dead jobs, cancel of
 * available ones), each of which answers how many jobs it touched and the
 * highest of their ids. Dead-job retries wake the queues they touched.
 */
#include "admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inttext.h"

#define LIST_DEFAULT 100
#define LIST_MAX     1000

/*
 * $1 state, $2 queue, $3 kind, $4 error text, $5 since, $6 until,
 * $7 before id, $8 limit, $9 exactly this id, $10 organizer (the job's
 * partition key 'org:N', which 0024's trigger sets from the ids its payload
 * names)
 */
#define FILTER_WHERE                                                                   \
    " ($1::usher_job_state IS NULL OR state = $1::usher_job_state)"                    \
    " AND ($2::text IS NULL OR queue = $2) AND ($3::text IS NULL OR kind = $3)"        \
    " AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM jsonb_array_elements(errors) e"   \
    "      WHERE strpos(lower(e->>'error'), lower($4)) > 0))"                          \
    " AND ($5::int8 IS NULL OR coalesce(finished_at, created_at)"                      \
    "      >= 'epoch'::timestamptz + $5::int8 * interval '1 microsecond')"             \
    " AND ($6::int8 IS NULL OR coalesce(finished_at, created_at)"                      \
    "      < 'epoch'::timestamptz + $6::int8 * interval '1 microsecond')"              \
    " AND ($7::int8 IS NULL OR id < $7::int8) AND ($9::int8 IS NULL OR id = $9::int8)" \
    " AND ($10::int8 IS NULL OR partition_key = 'org:' || $10::int8)"

#define NFILTER 10

#define JOB_FIELDS                                                                     \
    "'id', id, 'queue', queue, 'kind', kind, 'priority', priority, 'state', state,"    \
    " 'attempt', attempt, 'max_attempts', max_attempts, 'timeout_ms', timeout_ms,"     \
    " 'run_at', run_at, 'created_at', created_at, 'finished_at', finished_at,"         \
    " 'locked_by', locked_by, 'locked_until', locked_until, 'unique_key', unique_key," \
    " 'progress', progress, 'parent_id', parent_id, 'attempted_at', attempted_at"

static const char list_sql[] =
    "SELECT coalesce(json_agg(json_build_object(" JOB_FIELDS ","
    " 'last_error', errors->-1->>'error') ORDER BY id DESC), '[]')"
    " FROM (SELECT * FROM usher_jobs WHERE" FILTER_WHERE " ORDER BY id DESC LIMIT $8) j";

/*
 * One job: its fields, payload and raw error history; its attempts with
 * their durations (an entry written before started_at was kept has none);
 * the job that chained it (null when there is none or it is gone) and the
 * first 100 jobs it chained.
 */
static const char show_sql[] =
    "SELECT coalesce((SELECT json_build_object(" JOB_FIELDS ","
    " 'payload', payload, 'errors', errors,"
    " 'attempts', (SELECT coalesce(json_agg(json_build_object('attempt', e->'attempt',"
    "   'started_at', e->'started_at', 'finished_at', e->'at',"
    "   'duration_ms', round(extract(epoch FROM (e->>'at')::timestamptz"
    "     - (e->>'started_at')::timestamptz) * 1000)::int8,"
    "   'error', e->'error', 'worker', e->'worker') ORDER BY o), '[]')"
    "   FROM jsonb_array_elements(j.errors) WITH ORDINALITY AS x(e, o)),"
    " 'parent', (SELECT json_build_object('id', p.id, 'queue', p.queue, 'kind', p.kind,"
    "   'state', p.state) FROM usher_jobs p WHERE p.id = j.parent_id),"
    " 'children', (SELECT coalesce(json_agg(json_build_object('id', c.id, 'queue', c.queue,"
    "   'kind', c.kind, 'state', c.state) ORDER BY c.id), '[]')"
    "   FROM (SELECT * FROM usher_jobs c WHERE c.parent_id = j.id ORDER BY c.id LIMIT 100) c))"
    " FROM usher_jobs j WHERE id = $1), 'null')";

static const char dead_retry_sql[] =
    "WITH revived AS ("
    "  UPDATE usher_jobs d SET state = 'available', attempt = 0, run_at = now(),"
    "    finished_at = NULL"
    "  WHERE d.id IN (SELECT id FROM usher_jobs WHERE" FILTER_WHERE " LIMIT $8)"
    "    AND d.state = 'dead'"
    "    AND (d.unique_key IS NULL OR NOT EXISTS (SELECT 1 FROM usher_jobs l"
    "      WHERE l.queue = d.queue AND l.unique_key = d.unique_key"
    "      AND l.state IN ('available', 'running')))"
    "  RETURNING d.id, d.queue),"
    " wake AS (SELECT usher_wake(array_agg(DISTINCT queue)) AS n FROM revived)"
    " SELECT (SELECT count(*) FROM revived), (SELECT coalesce(max(id), 0) FROM revived),"
    "  (SELECT n FROM wake)";

static const char dead_discard_sql[] =
    "WITH gone AS (DELETE FROM usher_jobs WHERE id IN ("
    "  SELECT id FROM usher_jobs WHERE" FILTER_WHERE " LIMIT $8) AND state = 'dead'"
    "  RETURNING id)"
    " SELECT count(*), coalesce(max(id), 0) FROM gone";

/* Available jobs (runnable or scheduled) by filter; a job claimed meanwhile is left alone. */
static const char cancel_bulk_sql[] =
    "WITH c AS (UPDATE usher_jobs SET state = 'cancelled', finished_at = now() WHERE id IN ("
    "  SELECT id FROM usher_jobs WHERE" FILTER_WHERE " LIMIT $8) AND state = 'available'"
    "  RETURNING id)"
    " SELECT count(*), coalesce(max(id), 0) FROM c";

static const char count_sql[] =
    "SELECT count(*), coalesce(max(id), 0)"
    " FROM (SELECT id FROM usher_jobs WHERE" FILTER_WHERE " LIMIT $8) d";

static const char cancel_sql[] =
    "WITH c AS (UPDATE usher_jobs SET state = 'cancelled', finished_at = now()"
    "  WHERE id = $1 AND state = 'available' RETURNING id)"
    " SELECT (SELECT count(*) FROM c), (SELECT state FROM usher_jobs WHERE id = $1)";

typedef struct filter_params {
    char since[USHER_INT_TEXT_MAX], until[USHER_INT_TEXT_MAX], before[USHER_INT_TEXT_MAX],
        limit[USHER_INT_TEXT_MAX], id[USHER_INT_TEXT_MAX], organizer[USHER_INT_TEXT_MAX];
    const char *values[NFILTER];
} filter_params;

static const char *const states[] = { "available", "running", "dead", "cancelled" };

static bool valid_state(const char *state)
{
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        if (strcmp(state, states[i]) == 0)
            return true;
    }
    return false;
}

static const char *int_or_null(char buf[USHER_INT_TEXT_MAX], int64_t v)
{
    return v == 0 ? NULL : usher_int_text(v, buf);
}

static USHER_MUSTCHECK usher_err bind_filter(usher_store *st, const usher_job_filter *f,
                                             const char *state, size_t max_limit, filter_params *p)
{
    size_t limit = f->limit == 0 ? LIST_DEFAULT : f->limit;

    if (state != NULL && !valid_state(state))
        return usher_store_fail(st, USHER_ERR_INVALID,
                                "unknown state '%s' (available, running, dead, cancelled)", state);
    if (limit > max_limit)
        limit = max_limit;
    usher_int_text(limit, p->limit);
    p->values[0] = state;
    p->values[1] = f->queue;
    p->values[2] = f->kind;
    p->values[3] = f->error_text;
    p->values[4] = int_or_null(p->since, f->since_us);
    p->values[5] = int_or_null(p->until, f->until_us);
    p->values[6] = int_or_null(p->before, f->before_id);
    p->values[7] = p->limit;
    p->values[8] = int_or_null(p->id, f->id);
    p->values[9] = int_or_null(p->organizer, f->organizer_id);
    return USHER_OK;
}

usher_err usher_admin_list(usher_store *st, const usher_job_filter *f, json_t **out)
{
    filter_params p;
    usher_err err = bind_filter(st, f, f->state, LIST_MAX, &p);

    *out = NULL;
    if (err != USHER_OK)
        return err;
    return usher_store_query_json(st, list_sql, NFILTER, p.values, out);
}

usher_err usher_admin_show(usher_store *st, int64_t id, json_t **out)
{
    return usher_store_json_one(st, show_sql, id, "job", out);
}

usher_err usher_admin_cancel(usher_store *st, int64_t id)
{
    char idtext[USHER_INT_TEXT_MAX];
    const char *params[] = { idtext };
    PGresult *res;
    usher_err err;

    usher_int_text(id, idtext);
    err = usher_store_exec(st, cancel_sql, 1, params, &res);
    if (err != USHER_OK)
        return err;
    if (strcmp(PQgetvalue(res, 0, 0), "1") == 0)
        err = USHER_OK;
    else if (PQgetisnull(res, 0, 1))
        err = usher_store_fail(st, USHER_ERR_NOT_FOUND, "no job %" PRId64, id);
    else
        err = usher_store_fail(st, USHER_ERR_STATE, "job %" PRId64 " is %s, not available", id,
                               PQgetvalue(res, 0, 1));
    PQclear(res);
    return err;
}

/*
 * Runs a bulk statement over the filter, restricted to jobs in state;
 * *count gets its first column, *max_id its second (0: none).
 */
static USHER_MUSTCHECK usher_err run_bulk(usher_store *st, const char *sql,
                                          const usher_job_filter *f, const char *state,
                                          size_t *count, int64_t *max_id)
{
    filter_params p;
    PGresult *res;
    usher_err err = bind_filter(st, f, state, SIZE_MAX, &p);

    *count = 0;
    *max_id = 0;
    if (err != USHER_OK)
        return err;
    /* Bulk actions are not paginated: every matching job. */
    p.values[7] = f->limit != 0 ? p.limit : NULL;
    err = usher_store_exec(st, sql, NFILTER, p.values, &res);
    if (err != USHER_OK)
        return err;
    *count = (size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    *max_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    return USHER_OK;
}

static USHER_MUSTCHECK usher_err dead_bulk(usher_store *st, const char *sql,
                                           const usher_job_filter *f, size_t *count)
{
    int64_t max_id;

    return run_bulk(st, sql, f, "dead", count, &max_id);
}

usher_err usher_dead_retry(usher_store *st, const usher_job_filter *f, size_t *count)
{
    return dead_bulk(st, dead_retry_sql, f, count);
}

usher_err usher_dead_discard(usher_store *st, const usher_job_filter *f, size_t *count)
{
    return dead_bulk(st, dead_discard_sql, f, count);
}

usher_err usher_dead_count(usher_store *st, const usher_job_filter *f, size_t *count)
{
    return dead_bulk(st, count_sql, f, count);
}

/* The state each bulk action applies to, and its statement. */
static const struct {
    const char *state, *sql;
} bulk_actions[] = {
    [USHER_BULK_RETRY] = { "dead", dead_retry_sql },
    [USHER_BULK_CANCEL] = { "available", cancel_bulk_sql },
    [USHER_BULK_DISCARD] = { "dead", dead_discard_sql },
};

usher_err usher_admin_bulk(usher_store *st, usher_bulk_action action, const usher_job_filter *f,
                           bool dry_run, size_t *count, int64_t *max_id)
{
    const char *state = bulk_actions[action].state;

    *count = 0;
    *max_id = 0;
    if (f->state != NULL && !valid_state(f->state))
        return usher_store_fail(st, USHER_ERR_INVALID,
                                "unknown state '%s' (available, running, dead, cancelled)",
                                f->state);
    /* A state the action does not apply to matches nothing it could act on. */
    if (f->state != NULL && strcmp(f->state, state) != 0)
        return USHER_OK;
    return run_bulk(st, dry_run ? count_sql : bulk_actions[action].sql, f, state, count, max_id);
}

/* A by-id dead action: explains a miss as not found, not dead, or key taken. */
static USHER_MUSTCHECK usher_err dead_one(usher_store *st, const char *sql, int64_t id)
{
    usher_job_filter f = { .id = id };
    json_t *job = NULL;
    size_t count;
    usher_err err;

    err = dead_bulk(st, sql, &f, &count);
    if (err != USHER_OK || count == 1)
        return err;
    err = usher_admin_show(st, id, &job);
    if (err != USHER_OK)
        return err;
    if (strcmp(json_string_value(json_object_get(job, "state")), "dead") != 0)
        err = usher_store_fail(st, USHER_ERR_STATE, "job %" PRId64 " is %s, not dead", id,
                               json_string_value(json_object_get(job, "state")));
    else
        err = usher_store_fail(st, USHER_ERR_CONFLICT,
                               "job %" PRId64 ": a live job holds its unique key", id);
    json_decref(job);
    return err;
}

usher_err usher_dead_retry_id(usher_store *st, int64_t id)
{
    return dead_one(st, dead_retry_sql, id);
}

usher_err usher_dead_discard_id(usher_store *st, int64_t id)
{
    return dead_one(st, dead_discard_sql, id);
}
