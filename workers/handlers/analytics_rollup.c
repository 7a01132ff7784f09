/*
 * analytics.rollup: folds counted events (a registration, a cancellation,
 * a check-in at a gate, a session opened) into the per-minute counters of
 * analytics_minute, read by GET /v1/events/{id}/analytics. A
 * producer enqueues one small job per event; the worker folds the jobs a
 * child holds in one statement, so a burst of check-ins costs one upsert
 * per (event, minute, metric) instead of one per scan.
 *
 * Exactly once: a child can die after the statement committed but before
 * the supervisor heard of it, and then the jobs run again. So the same
 * statement records each folded job's id in analytics_folded and folds
 * only the ids it could insert there; a job seen again adds nothing.
 *
 * A bad payload fails alone, before any SQL. An unknown event surfaces as
 * a foreign key violation of the whole statement: then the batch is folded
 * again job by job, so only that job fails.
 *
 * analytics_folded keeps ids for 7 days, far longer than any lease (a
 * rescue happens within minutes). Each statement also deletes up to 256
 * expired ids, skipping rows another child is deleting, so the table
 * prunes itself at the rate it grows and no maintenance job is needed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "buf.h"
#include "job_handlers.h"

#define COUNT_MAX 1000000000 /* per job: a batch's sum stays far below int8's range */

/* $1 job ids, $2 event ids, $3 metrics, $4 minutes (epoch s), $5 counts, $6 gates; all arrays. */
static const char fold_sql[] =
    "WITH input AS ("
    "  SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::int8[], $5::int8[],"
    "    $6::text[]) AS t(job_id, event_id, metric, minute_s, n, gate)),"
    " expired AS ("
    "  DELETE FROM analytics_folded WHERE job_id IN ("
    "    SELECT job_id FROM analytics_folded WHERE folded_at < now() - interval '7 days'"
    "    LIMIT 256 FOR UPDATE SKIP LOCKED)),"
    " fresh AS ("
    "  INSERT INTO analytics_folded (job_id) SELECT job_id FROM input"
    "  ON CONFLICT DO NOTHING RETURNING job_id)"
    " INSERT INTO analytics_minute AS a (event_id, minute, metric, gate, count)"
    " SELECT i.event_id, to_timestamp(i.minute_s), i.metric, i.gate, sum(i.n)"
    " FROM input i JOIN fresh USING (job_id)"
    " GROUP BY i.event_id, i.minute_s, i.metric, i.gate"
    /* One order for every child, so two batches never lock rows in opposite orders. */
    " ORDER BY i.event_id, i.minute_s, i.metric, i.gate"
    " ON CONFLICT (event_id, minute, metric, gate) DO UPDATE SET count = a.count + excluded.count";

static const char *const metrics[] = { "registration", "cancellation", "checkin",
                                       "session_access" };

#define GATE_MAX 64 /* characters, as POST /v1/checkins takes them */

/* One valid job's contribution. */
typedef struct fold {
    int64_t job_id, event_id, minute_s, count;
    const char *metric;
    const char *gate; /* borrowed from the payload; "" for none */
} fold;

/* Reads n digits at *p into *out and advances *p; false if they are not all digits. */
static bool digits(const char **p, int n, int *out)
{
    *out = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return false;
        *out = *out * 10 + (**p - '0');
    }
    return true;
}

static bool expect(const char **p, const char *one_of)
{
    if (**p == '\0' || strchr(one_of, **p) == NULL)
        return false;
    (*p)++;
    return true;
}

static int days_in_month(int year, int month)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return month == 2 && leap ? 29 : days[month - 1];
}

/*
 * An RFC 3339 date-time ("2026-05-04T09:30:00Z", "...00.250+02:00") as
 * seconds since the epoch (the fraction dropped: minutes are what count).
 */
static bool parse_rfc3339(const char *s, int64_t *out)
{
    struct tm tm = { 0 };
    int year, month, day, hour, min, sec, oh = 0, om = 0, sign = 0;
    const char *p = s;

    if (!digits(&p, 4, &year) || !expect(&p, "-") || !digits(&p, 2, &month) || !expect(&p, "-") ||
        !digits(&p, 2, &day) || !expect(&p, "Tt ") || !digits(&p, 2, &hour) || !expect(&p, ":") ||
        !digits(&p, 2, &min) || !expect(&p, ":") || !digits(&p, 2, &sec))
        return false;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
        if (p[-1] == '.')
            return false;
    }
    if (*p == '+' || *p == '-') {
        sign = *p++ == '+' ? 1 : -1;
        if (!digits(&p, 2, &oh) || !expect(&p, ":") || !digits(&p, 2, &om) || oh > 23 || om > 59)
            return false;
    } else if (!expect(&p, "Zz")) {
        return false;
    }
    if (*p != '\0' || year < 1970 || month < 1 || month > 12 || day < 1 ||
        day > days_in_month(year, month) || hour > 23 || min > 59 || sec > 60)
        return false;
    tm = (struct tm){ .tm_year = year - 1900,
                      .tm_mon = month - 1,
                      .tm_mday = day,
                      .tm_hour = hour,
                      .tm_min = min,
                      .tm_sec = sec };
    *out = (int64_t)timegm(&tm) - sign * (oh * 3600 + om * 60);
    return true;
}

/* The event's instant: payload.at, else when the job became runnable, else now. */
static bool event_time(const usher_job *job, json_t *payload, usher_handler_result *r, int64_t *at)
{
    json_t *value = json_object_get(payload, "at");

    if (value == NULL) {
        *at = job->run_at_us > 0 ? job->run_at_us / 1000000 : (int64_t)time(NULL);
        return true;
    }
    if (!json_is_string(value) || !parse_rfc3339(json_string_value(value), at) || *at < 0) {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT,
                           "payload.at must be an RFC 3339 timestamp from 1970 on,"
                           " e.g. \"2026-05-04T09:30:00Z\"");
        return false;
    }
    return true;
}

/* Checks one job's payload into *f; false (and r set to PERMANENT) if it is bad. */
static bool validate(const usher_job *job, json_t *payload, usher_handler_result *r, fold *f)
{
    const char *metric = json_string_value(json_object_get(payload, "metric"));
    json_t *count = json_object_get(payload, "count"), *gate = json_object_get(payload, "gate");
    int64_t at;

    *f = (fold){ .job_id = job->id, .count = 1, .gate = "" };
    if ((f->event_id = usher_payload_id(payload, "event_id", r)) == 0)
        return false;
    for (size_t i = 0; metric != NULL && i < sizeof(metrics) / sizeof(metrics[0]); i++) {
        if (strcmp(metric, metrics[i]) == 0)
            f->metric = metrics[i];
    }
    if (f->metric == NULL) {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT,
                           "payload.metric must be \"registration\", \"cancellation\","
                           " \"checkin\" or \"session_access\"");
        return false;
    }
    if (gate != NULL && (!json_is_string(gate) || json_string_length(gate) > 4 * GATE_MAX ||
                         strlen(json_string_value(gate)) != json_string_length(gate))) {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT,
                           "payload.gate must be a string of at most %d characters", GATE_MAX);
        return false;
    }
    if (gate != NULL)
        f->gate = json_string_value(gate);
    if (count != NULL && (!json_is_integer(count) || json_integer_value(count) < 1 ||
                          json_integer_value(count) > COUNT_MAX)) {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT,
                           "payload.count must be an integer from 1 to %d", COUNT_MAX);
        return false;
    }
    if (count != NULL)
        f->count = (int64_t)json_integer_value(count);
    if (!event_time(job, payload, r, &at))
        return false;
    f->minute_s = at - at % 60;
    return true;
}

/* Runs fold_sql over folds[0..n); the store's errstr and sqlstate say why it failed. */
static USHER_MUSTCHECK usher_err fold_all(usher_store *st, const fold *folds, size_t n)
{
    usher_buf arrays[6] = { { 0 } };
    const char *params[6];
    PGresult *res = NULL;
    usher_err err = USHER_OK;

    for (size_t a = 0; a < 6; a++)
        usher_buf_array_open(&arrays[a]);
    for (size_t i = 0; i < n; i++) {
        usher_buf_array_int(&arrays[0], folds[i].job_id);
        usher_buf_array_int(&arrays[1], folds[i].event_id);
        usher_buf_array_text(&arrays[2], folds[i].metric);
        usher_buf_array_int(&arrays[3], folds[i].minute_s);
        usher_buf_array_int(&arrays[4], folds[i].count);
        usher_buf_array_text(&arrays[5], folds[i].gate);
    }
    for (size_t a = 0; a < 6; a++) {
        usher_buf_array_close(&arrays[a]);
        if (usher_buf_failed(&arrays[a]))
            err = usher_store_fail(st, USHER_ERR_NOMEM, "out of memory");
        params[a] = usher_buf_str(&arrays[a]);
    }
    if (err == USHER_OK)
        err = usher_store_exec_hot(st, fold_sql, 6, params, &res);
    PQclear(res);
    for (size_t a = 0; a < 6; a++)
        usher_buf_release(&arrays[a]);
    return err;
}

/* A constraint violation (SQLSTATE class 23): bad data, not a passing failure. */
static bool bad_data(usher_store *st, usher_err err)
{
    return err == USHER_ERR_DB && strncmp(usher_store_sqlstate(st), "23", 2) == 0;
}

/* Sets r to why folding f failed with err. */
static void fold_failed(usher_store *st, usher_err err, const fold *f, usher_handler_result *r)
{
    if (err == USHER_ERR_DB && strcmp(usher_store_sqlstate(st), "23503") == 0)
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT,
                           "analytics.rollup: event %lld does not exist", (long long)f->event_id);
    else
        usher_handler_store_failed(r, st, err, "analytics.rollup");
}

/* Folds each job alone, after its batch hit bad data: only the culprits fail. */
static void fold_one_by_one(usher_store *st, const fold *folds, size_t n,
                            usher_handler_result *const *results)
{
    for (size_t i = 0; i < n; i++) {
        usher_err err = fold_all(st, &folds[i], 1);

        if (err != USHER_OK)
            fold_failed(st, err, &folds[i], results[i]);
    }
}

void usher_batch_analytics_rollup(usher_handler_ctx *ctx, const usher_job *jobs,
                                  json_t *const *payloads, size_t n, usher_handler_result *results)
{
    fold *folds = usher_malloc(n * sizeof(*folds));
    usher_handler_result **valid = usher_malloc(n * sizeof(*valid)); /* the results of folds[] */
    usher_store *st = NULL;
    usher_err err;
    size_t k = 0;

    if (folds == NULL || valid == NULL) {
        for (size_t i = 0; i < n; i++)
            usher_handler_fail(&results[i], USHER_OUTCOME_RETRY, "analytics.rollup: no memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (validate(&jobs[i], payloads[i], &results[i], &folds[k]))
            valid[k++] = &results[i];
    }
    if (k == 0 || (st = usher_handler_store(ctx, valid[0])) == NULL) {
        for (size_t i = 1; i < k; i++)
            *valid[i] = *valid[0]; /* the database is out of reach: all retry */
        goto out;
    }
    err = fold_all(st, folds, k);
    if (err != USHER_OK && bad_data(st, err) && k > 1) {
        fold_one_by_one(st, folds, k, valid);
    } else if (err != USHER_OK) {
        /* Nothing was folded: the database failed, and the whole batch retries. */
        for (size_t i = 0; i < k; i++)
            fold_failed(st, err, &folds[i], valid[i]);
    }
out:
    free(folds);
    free(valid);
}
