/*
 * The dashboard's jobs (admin only): list with filters and a cursor, one
 * job with its payload and every attempt's error, retry / discard /
 * cancel one, and retry or discard dead jobs in bulk by filter, with a dry
 * run that counts. Bulk actions are recorded in usher_admin_actions.
 */
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    char state[16], queue[USHER_NAME_MAX], kind[USHER_NAME_MAX], q[256];
} list_args;

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
    ok = param(r, &q, "state", a->state, sizeof(a->state), &a->f.state) &&
         param(r, &q, "queue", a->queue, sizeof(a->queue), &a->f.queue) &&
         param(r, &q, "kind", a->kind, sizeof(a->kind), &a->f.kind) &&
         param(r, &q, "q", a->q, sizeof(a->q), &a->f.error_text);
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

/* usher_admin_show answers USHER_ERR_NOT_FOUND ("no job ID") for an unknown id. */
static USHER_MUSTCHECK usher_err show_job(usher_store *st, void *arg, json_t **out)
{
    one_args *a = arg;

    return usher_admin_show(st, a->id, out);
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

/*
 * A filter's time: RFC 3339 with an offset or @UNIXSECONDS, after 1970. A
 * date alone or a time without an offset is refused: never read as UTC.
 */
static bool read_time(api_req *r, const char *field, int64_t *us)
{
    const char *text = NULL;
    int64_t secs = 0;
    bool ok;

    if (!api_get_string(r, field, false, 1, 40, &text))
        return false;
    if (text == NULL)
        return true;
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

static const char *const filter_fields[] = { "queue", "kind", "error", "since", "until", NULL };

/*
 * A null filter field does not filter, like an absent one: it is dropped
 * before the fields are read. The record keeps the filter as applied: the
 * fields given (not null) and dry_run, nothing else the body held.
 */
static char *filter_as_applied(api_req *r)
{
    json_t *applied = json_object(), *v;
    char *text;

    for (size_t i = 0; filter_fields[i] != NULL; i++) {
        v = json_object_get(r->body, filter_fields[i]);
        if (v != NULL && applied != NULL)
            json_object_set(applied, filter_fields[i], v);
    }
    v = json_object_get(r->body, "dry_run");
    if (v != NULL && applied != NULL)
        json_object_set(applied, "dry_run", v);
    text = applied != NULL ? usher_need(json_dumps(applied, JSON_COMPACT)) : NULL;
    json_decref(applied);
    return text;
}

static void dead_bulk(api_req *r, const char *action,
                      usher_err (*run)(usher_store *, const usher_job_filter *, size_t *))
{
    bulk_args *a = usher_calloc(1, sizeof(*a));
    json_t *dry = json_object_get(r->body, "dry_run");

    for (size_t i = 0; filter_fields[i] != NULL; i++) {
        if (json_is_null(json_object_get(r->body, filter_fields[i])))
            json_object_del(r->body, filter_fields[i]);
    }
    if (!api_get_string(r, "queue", false, 1, USHER_NAME_MAX - 1, &a->f.queue) ||
        !api_get_string(r, "kind", false, 1, USHER_NAME_MAX - 1, &a->f.kind) ||
        !api_get_string(r, "error", false, 1, 255, &a->f.error_text) ||
        !read_time(r, "since", &a->f.since_us) || !read_time(r, "until", &a->f.until_us)) {
        free(a);
        return;
    }
    if (dry != NULL && !json_is_boolean(dry)) {
        free(a);
        api_reply_invalid(r, "dry_run", "dry_run must be true or false");
        return;
    }
    a->dry_run = json_is_true(dry);
    a->action = action;
    a->run = run;
    snprintf(a->actor, sizeof(a->actor), "token:%lld", (long long)r->auth.token_id);
    a->filter_text = filter_as_applied(r);
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
