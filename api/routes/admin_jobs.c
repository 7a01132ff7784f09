/*
 * The dashboard's jobs (admin only): list with filters (state, queue,
 * kind, error text, organizer, time range) and a cursor, one job with its
 * payload, attempts, chain and the admins' actions on it, retry / discard
 * / cancel one, and retry, cancel or discard every job a filter matches,
 * with a dry run that counts. The dead-job bulk routes record in
 * usher_admin_actions; the filtered job actions in audit_log.
 */
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../audit.h"
#include "../blocking.h"
#include "../validate.h"
#include "admin.h"
#include "alloc.h"
#include "inttext.h"
#include "routes.h"
#include "reply.h"

#define LIST_LIMIT 100

typedef struct list_args {
    usher_job_filter f;
    char state[16], queue[USHER_NAME_MAX], kind[USHER_NAME_MAX], q[256], since[41], until[41];
} list_args;

static const char *const job_states[] = { "available", "running", "dead", "cancelled", NULL };

static USHER_MUSTCHECK usher_err list_jobs(usher_store *st, void *arg, json_t **out)
{
    list_args *a = arg;
    json_t *jobs = NULL, *last;
    usher_err err = usher_admin_list(st, &a->f, &jobs);

    if (err != USHER_OK)
        return err;
    last = json_array_get(jobs, json_array_size(jobs) - 1);
    /* Newest first: the next page is below the last id seen. */
    *out = json_pack("{s:o,s:o}", "jobs", jobs, "next_cursor",
                     json_array_size(jobs) == a->f.limit && last != NULL
                         ? json_incref(json_object_get(last, "id"))
                         : json_null());
    return *out != NULL ? USHER_OK : USHER_ERR_NOMEM;
}

/* Copies a query parameter of at most len - 1 bytes; false (answered) if longer. */
static bool param(api_req *r, struct evkeyvalq *q, const char *name, char *out, size_t len,
                  const char **field)
{
    const char *v = evhttp_find_header(q, name);

    if (v == NULL)
        return true;
    if (strlen(v) >= len) {
        api_reply_invalid(r, name, "%s is too long", name);
        return false;
    }
    memcpy(out, v, strlen(v) + 1);
    *field = out;
    return true;
}

/*
 * A filter's time: RFC 3339 with an offset or @UNIXSECONDS, after 1970. A
 * date alone or a time without an offset is refused: never read as UTC.
 */
static bool parse_filter_time(api_req *r, const char *field, const char *text, int64_t *us)
{
    int64_t secs = 0;
    bool ok;

    if (text[0] == '@') {
        ok = api_parse_whole(text + 1, 0, INT64_MAX / 1000000, &secs);
        *us = secs * 1000000;
    } else {
        ok = api_parse_time(text, false, us);
    }
    /* 0 means "no bound" to the engine: the epoch itself would widen the filter. */
    if (!ok || *us <= 0) {
        api_reply_invalid(r, field,
                          "%s must be a time after 1970 with an offset, like"
                          " 2026-11-27T18:00:00Z or 2026-11-27T19:00:00+01:00, or @UNIXSECONDS",
                          field);
        return false;
    }
    return true;
}

static bool known_state(const char *state)
{
    for (size_t i = 0; job_states[i] != NULL; i++) {
        if (strcmp(state, job_states[i]) == 0)
            return true;
    }
    return false;
}

/* The list's filter from the query string; false when answered (422 naming the field). */
static bool read_list_filter(api_req *r, struct evkeyvalq *q, list_args *a)
{
    const char *since = NULL, *until = NULL;

    if (!param(r, q, "state", a->state, sizeof(a->state), &a->f.state) ||
        !param(r, q, "queue", a->queue, sizeof(a->queue), &a->f.queue) ||
        !param(r, q, "kind", a->kind, sizeof(a->kind), &a->f.kind) ||
        !param(r, q, "q", a->q, sizeof(a->q), &a->f.error_text) ||
        !param(r, q, "since", a->since, sizeof(a->since), &since) ||
        !param(r, q, "until", a->until, sizeof(a->until), &until) ||
        !api_query_whole(r, "organizer_id", 1, INT64_MAX, &a->f.organizer_id))
        return false;
    if (a->f.state != NULL && !known_state(a->f.state)) {
        api_reply_invalid(r, "state", "state must be available, running, dead or cancelled");
        return false;
    }
    return (since == NULL || parse_filter_time(r, "since", since, &a->f.since_us)) &&
           (until == NULL || parse_filter_time(r, "until", until, &a->f.until_us));
}

void route_admin_jobs(api_req *r)
{
    struct evkeyvalq q;
    list_args *a = usher_calloc(1, sizeof(*a));
    const char *cursor, *limit;
    bool ok;

    if (api_query_params(r, &q) != 0) {
        free(a);
        api_reply_error(r, 400, "bad_request", "the query string is malformed");
        return;
    }
    a->f.limit = LIST_LIMIT;
    ok = read_list_filter(r, &q, a);
    cursor = ok ? evhttp_find_header(&q, "cursor") : NULL;
    limit = ok ? evhttp_find_header(&q, "limit") : NULL;
    if (ok && cursor != NULL) {
        if (!api_parse_whole(cursor, 1, INT64_MAX, &a->f.before_id)) {
            api_reply_invalid(r, "cursor", "cursor must be a job id from next_cursor");
            ok = false;
        }
    }
    if (ok && limit != NULL) {
        int64_t n = 0;

        if (!api_parse_whole(limit, 1, 1000, &n)) {
            api_reply_invalid(r, "limit", "limit must be 1 to 1000");
            ok = false;
        }
        a->f.limit = (size_t)n;
    }
    evhttp_clear_headers(&q);
    if (!ok) {
        free(a);
        return;
    }
    api_blocking(r, list_jobs, api_blocking_reply, a);
}

typedef struct one_args {
    int64_t id;
    usher_err (*act)(usher_store *st, int64_t id);
    const char *done;
} one_args;

/* The admins' actions on one job, oldest first, for its timeline (audit_log_target). */
static const char job_actions_sql[] =
    "SELECT coalesce(json_agg(json_build_object('at', at, 'action', action, 'token_id', token_id)"
    "  ORDER BY id), '[]') FROM audit_log"
    " WHERE target IN ('/v1/admin/jobs/{id}/retry', '/v1/admin/jobs/{id}/cancel',"
    "  '/v1/admin/jobs/{id}/discard') AND target_id = $1::bigint";

/*
 * usher_admin_show answers USHER_ERR_NOT_FOUND ("no job ID") for an
 * unknown id; the job gets "actions", the audited admin actions on it.
 */
static USHER_MUSTCHECK usher_err show_job(usher_store *st, void *arg, json_t **out)
{
    one_args *a = arg;
    char id[USHER_INT_TEXT_MAX];
    const char *params[] = { usher_int_text(a->id, id) };
    json_t *actions = NULL;
    usher_err err = usher_admin_show(st, a->id, out);

    if (err == USHER_OK)
        err = usher_store_query_json(st, job_actions_sql, 1, params, &actions);
    if (err == USHER_OK && json_object_set_new(*out, "actions", actions) != 0)
        err = USHER_ERR_NOMEM;
    if (err != USHER_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return err;
}

static USHER_MUSTCHECK usher_err act_on_job(usher_store *st, void *arg, json_t **out)
{
    one_args *a = arg;
    usher_err err = a->act(st, a->id);

    if (err == USHER_OK)
        *out = json_pack("{s:I,s:s}", "id", (json_int_t)a->id, "result", a->done);
    return err;
}

static void on_job(api_req *r, api_blocking_fn fn, usher_err (*act)(usher_store *, int64_t),
                   const char *done)
{
    one_args *a = usher_malloc(sizeof(*a));

    *a = (one_args){ r->ids[0], act, done };
    api_blocking(r, fn, api_blocking_reply, a);
}

void route_admin_job(api_req *r)
{
    on_job(r, show_job, NULL, NULL);
}

void route_admin_job_retry(api_req *r)
{
    on_job(r, act_on_job, usher_dead_retry_id, "retried");
}

void route_admin_job_discard(api_req *r)
{
    on_job(r, act_on_job, usher_dead_discard_id, "discarded");
}

void route_admin_job_cancel(api_req *r)
{
    on_job(r, act_on_job, usher_admin_cancel, "cancelled");
}

typedef struct bulk_args {
    usher_job_filter f;
    bool dry_run;
    const char *action; /* dead.retry or dead.discard */
    usher_err (*run)(usher_store *st, const usher_job_filter *f, size_t *count);
    char actor[32];
    char *filter_text; /* the filter as asked, for the record */
} bulk_args;

static USHER_MUSTCHECK usher_err bulk(usher_store *st, void *arg, json_t **out)
{
    bulk_args *a = arg;
    size_t count = 0;
    char count_text[USHER_INT_TEXT_MAX];
    usher_err err = a->dry_run ? usher_dead_count(st, &a->f, &count) : a->run(st, &a->f, &count);
    PGresult *res;

    if (err != USHER_OK)
        return err;
    usher_int_text(count, count_text);
    const char *params[] = { a->actor, a->action, a->filter_text, a->dry_run ? "t" : "f",
                             count_text };

    /* Recorded after the action: a crash between the two loses the record, not the jobs. */
    err = usher_store_exec(st,
                           "INSERT INTO usher_admin_actions (actor, action, filter, dry_run, count)"
                           " VALUES ($1, $2, $3::jsonb, $4::boolean, $5::bigint)",
                           5, params, &res);
    if (err != USHER_OK)
        return err;
    PQclear(res);
    *out = json_pack("{s:s,s:I,s:b}", "action", a->action, "count", (json_int_t)count, "dry_run",
                     a->dry_run);
    return *out != NULL ? USHER_OK : USHER_ERR_NOMEM;
}

static void bulk_done(api_req *r, usher_err err, const char *why, json_t *out, void *arg)
{
    bulk_args *a = arg;

    free(a->filter_text);
    api_blocking_reply(r, err, why, out, a);
}

/* A body field holding a filter's time (parse_filter_time). */
static bool read_time(api_req *r, const char *field, int64_t *us)
{
    const char *text = NULL;

    if (!api_get_string(r, field, false, 1, 40, &text))
        return false;
    return text == NULL || parse_filter_time(r, field, text, us);
}

static const char *const filter_fields[] = { "queue", "kind", "error", "since", "until", NULL };

/* A null filter field does not filter, like an absent one: it is dropped before the fields are
 * read. */
static void drop_nulls(api_req *r, const char *const *fields)
{
    for (size_t i = 0; fields[i] != NULL; i++) {
        if (json_is_null(json_object_get(r->body, fields[i])))
            json_object_del(r->body, fields[i]);
    }
}

/*
 * The record keeps the filter as applied: the fields given (not null) and
 * extra (NULL: none), nothing else the body held.
 */
static char *filter_as_applied(const api_req *r, const char *const *fields, const char *extra)
{
    json_t *applied = json_object(), *v;
    char *text;

    for (size_t i = 0; fields[i] != NULL; i++) {
        v = json_object_get(r->body, fields[i]);
        if (v != NULL && applied != NULL)
            json_object_set(applied, fields[i], v);
    }
    v = extra != NULL ? json_object_get(r->body, extra) : NULL;
    if (v != NULL && applied != NULL)
        json_object_set(applied, extra, v);
    text = applied != NULL ? usher_need(json_dumps(applied, JSON_COMPACT)) : NULL;
    json_decref(applied);
    return text;
}

/* The body's dry_run (absent: false) into *dry; false when answered (422). */
static bool read_dry_run(api_req *r, bool *dry)
{
    json_t *v = json_object_get(r->body, "dry_run");

    if (v != NULL && !json_is_boolean(v)) {
        api_reply_invalid(r, "dry_run", "dry_run must be true or false");
        return false;
    }
    *dry = json_is_true(v);
    return true;
}

static void dead_bulk(api_req *r, const char *action,
                      usher_err (*run)(usher_store *, const usher_job_filter *, size_t *))
{
    bulk_args *a = usher_calloc(1, sizeof(*a));

    drop_nulls(r, filter_fields);
    if (!api_get_string(r, "queue", false, 1, USHER_NAME_MAX - 1, &a->f.queue) ||
        !api_get_string(r, "kind", false, 1, USHER_NAME_MAX - 1, &a->f.kind) ||
        !api_get_string(r, "error", false, 1, 255, &a->f.error_text) ||
        !read_time(r, "since", &a->f.since_us) || !read_time(r, "until", &a->f.until_us) ||
        !read_dry_run(r, &a->dry_run)) {
        free(a);
        return;
    }
    a->action = action;
    a->run = run;
    snprintf(a->actor, sizeof(a->actor), "token:%lld", (long long)r->auth.token_id);
    a->filter_text = filter_as_applied(r, filter_fields, "dry_run");
    if (a->filter_text == NULL) {
        free(a);
        api_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    api_blocking(r, bulk, bulk_done, a);
}

void route_admin_dead_retry(api_req *r)
{
    dead_bulk(r, "dead.retry", usher_dead_retry);
}

void route_admin_dead_discard(api_req *r)
{
    dead_bulk(r, "dead.discard", usher_dead_discard);
}

/*
 * POST /v1/admin/jobs/{retry,cancel,discard}: one action on every job a
 * filter matches (the list's: state, queue, kind, q, organizer_id, since,
 * until), at most up to max_id, the highest id a dry run counted, so that
 * what the operator confirmed is what is acted on. The action and its
 * audit record (after: the filter, dry_run false, count, max_id) commit
 * together; a dry run changes nothing and records nothing.
 */
typedef struct job_bulk_args {
    usher_job_filter f;
    usher_bulk_action action;
    const char *name; /* retry, cancel, discard */
    bool dry_run;
    char actor[API_AUDIT_ACTOR_MAX];
    char *filter_text; /* the filter as applied, for the record */
} job_bulk_args;

static const char *const job_bulk_fields[] = { "state", "queue", "kind",   "q", "organizer_id",
                                               "since", "until", "max_id", NULL };

static USHER_MUSTCHECK usher_err record_bulk(usher_store *st, const job_bulk_args *a, size_t count,
                                             int64_t max_id)
{
    char action[32], count_text[USHER_INT_TEXT_MAX], max_text[USHER_INT_TEXT_MAX];
    const char *params[] = { a->actor, action, a->filter_text, usher_int_text(count, count_text),
                             usher_int_text(max_id, max_text) };
    PGresult *res;
    usher_err err;

    snprintf(action, sizeof(action), "jobs.%s", a->name);
    err = usher_store_exec(st,
                           "SELECT usher_audit($1::jsonb, $2, 'usher_jobs', NULL, NULL,"
                           " jsonb_build_object('filter', $3::jsonb, 'count', $4::bigint,"
                           "  'max_id', $5::bigint))",
                           5, params, &res);
    if (err == USHER_OK)
        PQclear(res);
    return err;
}

static USHER_MUSTCHECK usher_err job_bulk(usher_store *st, void *arg, json_t **out)
{
    job_bulk_args *a = arg;
    size_t count = 0;
    int64_t max_id = 0;
    usher_err err;

    if (a->dry_run) {
        err = usher_admin_bulk(st, a->action, &a->f, true, &count, &max_id);
    } else {
        err = usher_store_command(st, "BEGIN");
        if (err == USHER_OK)
            err = usher_admin_bulk(st, a->action, &a->f, false, &count, &max_id);
        if (err == USHER_OK)
            err = record_bulk(st, a, count, max_id);
        err = usher_store_end(st, err);
    }
    if (err != USHER_OK)
        return err;
    *out = json_pack("{s:s,s:I,s:I,s:b}", "action", a->name, "count", (json_int_t)count, "max_id",
                     (json_int_t)max_id, "dry_run", a->dry_run);
    return *out != NULL ? USHER_OK : USHER_ERR_NOMEM;
}

static void job_bulk_done(api_req *r, usher_err err, const char *why, json_t *out, void *arg)
{
    job_bulk_args *a = arg;

    free(a->filter_text);
    api_blocking_reply(r, err, why, out, a);
}

/* The body's filter into a->f (null fields dropped first); false when answered. */
static bool read_bulk_filter(api_req *r, job_bulk_args *a)
{
    int64_t max_id = 0;

    drop_nulls(r, job_bulk_fields);
    if (!api_get_enum(r, "state", false, job_states, &a->f.state) ||
        !api_get_string(r, "queue", false, 1, USHER_NAME_MAX - 1, &a->f.queue) ||
        !api_get_string(r, "kind", false, 1, USHER_NAME_MAX - 1, &a->f.kind) ||
        !api_get_string(r, "q", false, 1, 255, &a->f.error_text) ||
        !api_get_int(r, "organizer_id", false, 1, INT64_MAX, &a->f.organizer_id) ||
        !read_time(r, "since", &a->f.since_us) || !read_time(r, "until", &a->f.until_us) ||
        !api_get_int(r, "max_id", false, 1, INT64_MAX - 1, &max_id))
        return false;
    a->f.before_id = max_id != 0 ? max_id + 1 : 0;
    return true;
}

static void jobs_bulk(api_req *r, usher_bulk_action action, const char *name)
{
    job_bulk_args *a = usher_calloc(1, sizeof(*a));

    if (!read_bulk_filter(r, a) || !read_dry_run(r, &a->dry_run)) {
        free(a);
        return;
    }
    a->action = action;
    a->name = name;
    /* Recorded by job_bulk, in the action's transaction (api/audit.h). */
    r->audited = true;
    if (api_audit_actor(r, a->actor) == NULL ||
        (a->filter_text = filter_as_applied(r, job_bulk_fields, NULL)) == NULL) {
        free(a);
        api_reply_error(r, 500, "internal", "the action cannot be recorded");
        return;
    }
    api_blocking(r, job_bulk, job_bulk_done, a);
}

void route_admin_jobs_retry(api_req *r)
{
    jobs_bulk(r, USHER_BULK_RETRY, "retry");
}

void route_admin_jobs_cancel(api_req *r)
{
    jobs_bulk(r, USHER_BULK_CANCEL, "cancel");
}

void route_admin_jobs_discard(api_req *r)
{
    jobs_bulk(r, USHER_BULK_DISCARD, "discard");
}
