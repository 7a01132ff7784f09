/*
 * GET /v1/events/{id}/analytics?from&to&step=minute|hour|day (issue 15):
 * an event's sales, cancellations, check-ins per gate and session accesses
 * from the per-minute rollups the analytics.rollup workers fold
 * (analytics_minute), in buckets of the event's local time: a day is the
 * event's local day, an hour a local full hour (usher_event_analytics(),
 * schemas/migrations/0023). from and to are RFC 3339 with an offset (one
 * without is a 422 naming the field: never read as UTC), from before to,
 * and at most ANALYTICS_BUCKETS_MAX steps apart.
 *
 * Cached like event details (api/cache.h): fresh for api.cache_event_ttl_s,
 * then served stale while one request reloads it, concurrent misses of one
 * key sharing one read (api/flight.h), which may go to a replica. The
 * rollups change without the API hearing of it, so an answer may lag the
 * workers by the TTL. The cached value starts with the event's organizer:
 * an organizer is answered only its own events' (another's is a 404, as if
 * absent), from the cache too; admins every event's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cache.h"
#include "../flight.h"
#include "../metrics.h"
#include "../replica.h"
#include "../validate.h"
#include "alloc.h"
#include "inttext.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

#define ANALYTICS_BUCKETS_MAX 1000
#define ANALYTICS_KEY_MAX     112 /* "usher:v1:analytics:" + id, step and two times */
#define TIME_TEXT_MAX         48

static const char *const steps[] = { "minute", "hour", "day", NULL };

#define ANALYTICS_SQL                                                         \
    "SELECT x FROM usher_event_analytics($1, to_timestamp($2::float8 / 1e6)," \
    " to_timestamp($3::float8 / 1e6), $4) x WHERE x IS NOT NULL"

typedef struct analytics_query {
    int64_t from_us, to_us;
    const char *step;
    char key[ANALYTICS_KEY_MAX];
} analytics_query;

static int64_t step_us(const char *step)
{
    return strcmp(step, "minute") == 0 ? 60000000LL
           : strcmp(step, "hour") == 0 ? 3600000000LL
                                       : 86400000000LL;
}

/*
 * A time query parameter into *us: RFC 3339 with an offset. A "+" sent
 * unencoded reads as a space; it is taken back. False when answered 422.
 */
static bool time_param(api_req *r, const char *name, int64_t *us)
{
    char text[TIME_TEXT_MAX];
    int found = api_query_param(r, name, text, sizeof(text));
    size_t len = found == 1 ? strlen(text) : 0;

    if (found == 0) {
        api_reply_invalid(r, name, "%s is required", name);
        return false;
    }
    if (len > 6 && text[len - 6] == ' ')
        text[len - 6] = '+';
    if (found < 0 || !api_parse_time(text, false, us)) {
        api_reply_invalid(r, name,
                          "%s must be an RFC 3339 time with an offset (Z or +HH:MM), e.g."
                          " 2026-03-29T00:00:00+01:00; a time without one is not read as UTC",
                          name);
        return false;
    }
    return true;
}

/* Reads and checks the parameters into q; false when answered. */
static bool read_query(api_req *r, analytics_query *q)
{
    if (!time_param(r, "from", &q->from_us) || !time_param(r, "to", &q->to_us) ||
        !api_query_word(r, "step", steps, &q->step))
        return false;
    if (q->step == NULL)
        q->step = "hour";
    if (q->to_us <= q->from_us) {
        api_reply_invalid(r, "to", "to must be after from");
        return false;
    }
    if ((q->to_us - q->from_us) / step_us(q->step) >= ANALYTICS_BUCKETS_MAX) {
        api_reply_invalid(r, "step",
                          "from to to spans more than %d steps of a %s: take a larger"
                          " step or a shorter range",
                          ANALYTICS_BUCKETS_MAX, q->step);
        return false;
    }
    snprintf(q->key, sizeof(q->key), "usher:v1:analytics:%lld:%s:%lld:%lld", (long long)r->ids[0],
             q->step, (long long)q->from_us, (long long)q->to_us);
    return true;
}

/* Answers a value "ORGANIZER JSON": the JSON, unless the caller may not see the event. */
static void send_value(api_req *r, const char *value, size_t len)
{
    char *json = memchr(value, ' ', len), cache_control[48];
    int64_t organizer = strtoll(value, NULL, 10);

    if (json == NULL || !api_may_manage(r, organizer)) {
        api_reply_error(r, 404, "not_found", "no such event");
        return;
    }
    json++;
    snprintf(cache_control, sizeof(cache_control), "private, max-age=%d",
             r->loop->srv->cfg->api_cache_event_ttl_s);
    api_add_header(r, "Cache-Control", cache_control);
    api_reply_raw(r, 200, "application/json", json, len - (size_t)(json - value));
}

static void got(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    const usher_config *cfg = r->loop->srv->cfg;
    analytics_query q;

    if (!api_result_ok(r, res, errmsg))
        return;
    if (PQntuples(res) != 1) {
        api_reply_error(r, 404, "not_found", "no such event");
        return;
    }
    if (!read_query(r, &q))
        return;
    api_cache_put(r->loop, q.key, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0),
                  cfg->api_cache_event_ttl_s, cfg->api_cache_stale_s);
    send_value(r, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

/* The statement's parameters, in texts (each USHER_INT_TEXT_MAX). */
static void params_of(const api_req *r, const analytics_query *q, char texts[3][USHER_INT_TEXT_MAX],
                      const char *params[4])
{
    params[0] = api_id_text(r->ids[0], texts[0]);
    params[1] = usher_int_text(q->from_us, texts[1]);
    params[2] = usher_int_text(q->to_us, texts[2]);
    params[3] = q->step;
}

/*
 * A miss's answer: the read this request shared (or led), or a read of its
 * own. No state is kept while it waits: the query is read again (it was
 * checked already, so this never answers).
 */
static void loaded(api_req *r, api_flight_answer answer, const char *value, size_t len)
{
    analytics_query q;
    char texts[3][USHER_INT_TEXT_MAX];
    const char *params[4];

    if (answer == API_FLIGHT_ROW) {
        send_value(r, value, len);
    } else if (answer == API_FLIGHT_NO_ROW) {
        api_reply_error(r, 404, "not_found", "no such event");
    } else if (read_query(r, &q)) {
        params_of(r, &q, texts, params);
        api_query_read(r, ANALYTICS_SQL, 4, params, got);
    }
}

typedef struct refresh {
    api_loop *loop;
    char key[ANALYTICS_KEY_MAX];
} refresh;

static void refreshed(PGresult *res, const char *errmsg, void *arg)
{
    refresh *rf = arg;
    const usher_config *cfg = rf->loop->srv->cfg;

    (void)errmsg;
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        api_cache_put(rf->loop, rf->key, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0),
                      cfg->api_cache_event_ttl_s, cfg->api_cache_stale_s);
    else if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK)
        api_cache_drop(rf->loop, rf->key); /* the event is gone */
    free(rf);
}

/* Reloads a stale entry behind the request that served it. */
static void refresh_entry(api_req *r, const analytics_query *q)
{
    refresh *rf = usher_calloc(1, sizeof(*rf));
    char texts[3][USHER_INT_TEXT_MAX];
    const char *params[4];

    rf->loop = r->loop;
    memcpy(rf->key, q->key, sizeof(rf->key));
    params_of(r, q, texts, params);
    if (api_read(r->loop, ANALYTICS_SQL, 4, params, refreshed, rf) != USHER_OK)
        free(rf);
    else
        api_metrics_cache_load(r->loop->srv->metrics, "analytics", API_CACHE_READ);
}

static void cached(api_req *r, api_cache_state state, const char *value, size_t len, bool reload)
{
    const usher_config *cfg = r->loop->srv->cfg;
    char texts[3][USHER_INT_TEXT_MAX];
    const char *params[4];
    analytics_query q;

    if (!read_query(r, &q))
        return;
    if (state == API_CACHE_MISS) {
        params_of(r, &q, texts, params);
        api_flight_join(r,
                        &(api_flight_read){ "analytics", q.key, ANALYTICS_SQL, 4, params,
                                            cfg->api_cache_event_ttl_s, cfg->api_cache_stale_s },
                        loaded);
        return;
    }
    if (reload)
        refresh_entry(r, &q);
    send_value(r, value, len);
}

void route_event_analytics(api_req *r)
{
    analytics_query q;

    if (read_query(r, &q))
        api_cache_get(r, "analytics", q.key, cached);
}
