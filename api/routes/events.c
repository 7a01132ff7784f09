/*
 * Events and their ticket types: public details with live availability,
 * and the organizer's create, update and list. An organizer sees and
 * changes only its own events (another's answers 404, as if absent);
 * admins act on every organizer's. Every change enqueues a search-index
 * update in the same statement.
 *
 * Public details are cached in Redis (api/cache.h, fresh for
 * api.cache_event_ttl_s, then served stale while one request reloads them);
 * concurrent misses of one event share one read (api/flight.h). A change
 * through the API drops the entry. A sale does not: availability may lag
 * sales by the TTL, except that a refused sale (sold out) drops an entry
 * that still shows seats for its ticket type, once per sell-out.
 *
 * The public reads (cache fills and refreshes) may go to a replica
 * (api/replica.h): a change drops the entry again once the replicas have
 * replayed it, so a fill from a replica still behind does not outlive it.
 * The organizer's list reads the primary: it lists what it just made.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../audit.h"
#include "../cache.h"
#include "../flight.h"
#include "../metrics.h"
#include "../jobs.h"
#include "../redis.h"
#include "../replica.h"
#include "../validate.h"
#include "../wake_after_commit.h"
#include "alloc.h"
#include "inttext.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

/* The event as JSON, with availability summed over each ticket type's stripes. */
#define EVENT_JSON                                                                             \
    "json_build_object('id', e.id, 'organizer_id', e.organizer_id, 'name', e.name,"            \
    " 'venue', e.venue, 'timezone', e.timezone, 'starts_at', e.starts_at,"                     \
    " 'ends_at', e.ends_at, 'tier', e.tier, 'launch_at', e.launch_at,"                         \
    " 'locale', e.locale, 'cancelled_at', e.cancelled_at, 'updated_at', e.updated_at,"         \
    " 'ticket_types', coalesce((SELECT json_agg(json_build_object('id', t.id, 'name', t.name," \
    "   'capacity', s.capacity, 'available', s.capacity - s.sold, 'sales_open', t.sales_open)" \
    "   ORDER BY t.id)"                                                                        \
    "  FROM ticket_types t, LATERAL (SELECT sum(capacity)::int AS capacity,"                   \
    "   sum(sold)::int AS sold FROM ticket_stripes WHERE ticket_type_id = t.id) s"             \
    "  WHERE t.event_id = e.id), '[]'::json))::text"

static const char *const tiers[] = { "small", "medium", "large", "mega", NULL };
/* The languages of the mail templates (conf/templates/<locale>/, English at the top). */
static const char *const locales[] = { "en", "de", "fr", NULL };

/* Rows of (event JSON or NULL, time zone known): a change that was made or refused. */
static void changed_event(PGresult *res, const char *errmsg, api_req *r, int status)
{
    if (!api_result_ok(r, res, errmsg))
        return;
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        api_wake_kind(r->loop, "index.document");
    if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
        api_reply_invalid(r, "timezone", "timezone must be an IANA time zone, e.g. Europe/Berlin");
        return;
    }
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        api_reply_error(r, 404, "not_found", "no such event");
        return;
    }
    api_reply_raw(r, status, "application/json", PQgetvalue(res, 0, 0),
                  (size_t)PQgetlength(res, 0, 0));
}

static void created_event(PGresult *res, const char *errmsg, void *arg)
{
    changed_event(res, errmsg, arg, 201);
}

static void updated_event(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;

    api_event_cache_changed(r->loop, r->ids[0]);
    changed_event(res, errmsg, arg, 200);
}

#define TZ_KNOWN "($4::text IS NULL OR EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $4))"

#define EVENT_SQL "SELECT " EVENT_JSON " FROM events e WHERE e.id = $1"

void api_event_cache_key(int64_t id, char key[API_CACHE_KEY_MAX])
{
    snprintf(key, API_CACHE_KEY_MAX, "usher:v1:event:%lld", (long long)id);
}

static void drop_entry(api_loop *loop, const char *key)
{
    api_flight_forget(key);
    api_cache_drop(loop, key);
}

/* Dropped now, and again once no replica read can return what was there before. */
void api_event_cache_changed(api_loop *loop, int64_t id)
{
    char key[API_CACHE_KEY_MAX];

    api_event_cache_key(id, key);
    drop_entry(loop, key);
    api_replica_after_lag(loop, drop_entry, key);
}

/* Sends event JSON with a validator, or 304 when the client has this version. */
static void send_event(api_req *r, const char *json, size_t len)
{
    unsigned char h[16];
    char hex[2 * sizeof(h) + 1], etag[sizeof(hex) + 2], cache_control[48];
    const char *match = api_header(r, "If-None-Match");

    crypto_generichash(h, sizeof(h), (const unsigned char *)json, len, NULL, 0);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    snprintf(etag, sizeof(etag), "\"%s\"", hex);
    api_add_header(r, "ETag", etag);
    /* Browsers and CDNs keep it as long as the shared cache keeps it fresh. */
    snprintf(cache_control, sizeof(cache_control), "public, max-age=%d",
             r->loop->srv->cfg->api_cache_event_ttl_s);
    api_add_header(r, "Cache-Control", cache_control);
    if (match != NULL && strstr(match, etag) != NULL) {
        api_reply_raw(r, 304, "application/json", "", 0);
        return;
    }
    api_reply_raw(r, 200, "application/json", json, len);
}

static void got_event(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    const usher_config *cfg = r->loop->srv->cfg;
    char key[API_CACHE_KEY_MAX];

    if (!api_result_ok(r, res, errmsg))
        return;
    if (PQntuples(res) != 1) {
        api_reply_error(r, 404, "not_found", "no such event");
        return;
    }
    api_event_cache_key(r->ids[0], key);
    api_cache_put(r->loop, key, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0),
                  cfg->api_cache_event_ttl_s, cfg->api_cache_stale_s);
    send_event(r, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

typedef struct refresh {
    api_loop *loop;
    int64_t id;
} refresh;

static void refreshed(PGresult *res, const char *errmsg, void *arg)
{
    refresh *rf = arg;
    const usher_config *cfg = rf->loop->srv->cfg;
    char key[API_CACHE_KEY_MAX];

    (void)errmsg;
    api_event_cache_key(rf->id, key);
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        api_cache_put(rf->loop, key, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0),
                      cfg->api_cache_event_ttl_s, cfg->api_cache_stale_s);
    else if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK)
        api_cache_drop(rf->loop, key); /* the event is gone */
    free(rf);
}

/* Reloads a stale entry behind the request that served it (and fills a warm-up's). */
void api_event_cache_fill(api_loop *loop, int64_t id)
{
    refresh *rf = usher_malloc(sizeof(*rf));
    char text[USHER_INT_TEXT_MAX];
    const char *params[] = { api_id_text(id, text) };

    *rf = (refresh){ loop, id };
    if (api_read(loop, EVENT_SQL, 1, params, refreshed, rf) != USHER_OK)
        free(rf);
    else
        api_metrics_cache_load(loop->srv->metrics, "event", API_CACHE_READ);
}

/* A miss's answer: the read this request shared (or led), or a read of its own. */
static void event_loaded(api_req *r, api_flight_answer answer, const char *value, size_t len)
{
    char id[USHER_INT_TEXT_MAX];
    const char *params[] = { api_id_text(r->ids[0], id) };

    if (answer == API_FLIGHT_ROW)
        send_event(r, value, len);
    else if (answer == API_FLIGHT_NO_ROW)
        api_reply_error(r, 404, "not_found", "no such event");
    else
        api_query_read(r, EVENT_SQL, 1, params, got_event);
}

static void event_cached(api_req *r, api_cache_state state, const char *value, size_t len,
                         bool reload)
{
    const usher_config *cfg = r->loop->srv->cfg;
    char id[USHER_INT_TEXT_MAX], key[API_CACHE_KEY_MAX];
    const char *params[] = { api_id_text(r->ids[0], id) };

    if (state == API_CACHE_MISS) {
        api_event_cache_key(r->ids[0], key);
        api_flight_join(r,
                        &(api_flight_read){ "event", key, EVENT_SQL, 1, params,
                                            cfg->api_cache_event_ttl_s, cfg->api_cache_stale_s },
                        event_loaded);
        return;
    }
    if (reload)
        api_event_cache_fill(r->loop, r->ids[0]);
    send_event(r, value, len);
}

/*
 * Drops the entry only while it still shows seats for the ticket type (or
 * does not list it, or cannot be read): the first refusal after a sell-out
 * drops it, and the reload then shows 0, so the refusals after it leave it
 * alone. An entry stored by a read that raced the last sale is dropped by
 * the next refusal. Redis decodes the JSON with its built-in cjson.
 */
static const char sold_out_script[] =
    "local v = redis.call('GET', KEYS[1])"
    " if not v then return 0 end"
    " local bar = string.find(v, '|', 1, true)"
    " if not bar then return 0 end"
    " local ok, e = pcall(cjson.decode, string.sub(v, bar + 1))"
    " if ok and type(e) == 'table' and type(e.ticket_types) == 'table' then"
    "  for _, t in ipairs(e.ticket_types) do"
    "   if type(t) == 'table' and t.id == tonumber(ARGV[1]) then"
    "    if (tonumber(t.available) or 0) <= 0 then return 0 end"
    "    break"
    "   end"
    "  end"
    " end"
    " redis.call('DEL', KEYS[1]) return 1";

void api_event_cache_sold_out(api_loop *loop, int64_t event, int64_t ticket_type)
{
    char key[API_CACHE_KEY_MAX], tt[USHER_INT_TEXT_MAX];
    const char *argv[] = { "EVAL", sold_out_script, "1", key, tt };

    api_event_cache_key(event, key);
    usher_int_text(ticket_type, tt);
    api_redis_call(loop->redis, 0, NULL, NULL, 5, argv, NULL);
}

void route_event_get(api_req *r)
{
    char key[API_CACHE_KEY_MAX];

    api_event_cache_key(r->ids[0], key);
    api_cache_get(r, "event", key, event_cached);
}

static void listed(PGresult *res, const char *errmsg, void *arg)
{
    api_reply_row(arg, res, errmsg, 200, "event");
}

void route_event_list(api_req *r)
{
    char org[USHER_INT_TEXT_MAX];
    const char *params[] = { api_scope_org(r, org) };

    api_query(r,
              "SELECT json_build_object('events', coalesce(json_agg(x.j ORDER BY x.id DESC),"
              " '[]'::json))::text FROM (SELECT e.id, " EVENT_JSON "::json AS j FROM events e"
              " WHERE $1::bigint IS NULL OR e.organizer_id = $1 ORDER BY e.id DESC LIMIT 500) x",
              1, params, listed);
}

/* The event's search index job (api_index_job), or NULL after answering 500. */
static char *index_job(api_req *r)
{
    char *jobs = api_index_job(r, "event");

    if (jobs == NULL)
        api_reply_error(r, 500, "internal", "out of memory");
    return jobs;
}

void route_event_create(api_req *r)
{
    const char *name = NULL, *venue = "", *tz = "UTC", *starts = NULL, *ends = NULL,
               *tier = "small", *launch = NULL, *locale = "en";
    int64_t organizer = r->auth.organizer_id;
    char org[USHER_INT_TEXT_MAX], *jobs;

    if (!api_get_string(r, "name", true, 1, 300, &name) ||
        !api_get_string(r, "venue", false, 0, 300, &venue) ||
        !api_get_string(r, "timezone", false, 1, 64, &tz) ||
        !api_get_time(r, "starts_at", true, &starts) || !api_get_time(r, "ends_at", true, &ends) ||
        !api_get_enum(r, "tier", false, tiers, &tier) ||
        !api_get_time(r, "launch_at", false, &launch) ||
        !api_get_enum(r, "locale", false, locales, &locale))
        return;
    if (api_ends_before_start(starts, ends)) {
        api_reply_invalid(r, "ends_at", "ends_at must not be before starts_at");
        return;
    }
    if (!api_get_owner(r, &organizer))
        return;
    if ((jobs = index_job(r)) == NULL)
        return;
    const char *params[] = {
        api_id_text(organizer, org), name, venue, tz, starts, ends, tier, jobs, launch, locale
    };

    api_query(r,
              "WITH ins AS (INSERT INTO events (organizer_id, name, venue, timezone, starts_at,"
              "  ends_at, tier, launch_at, locale)"
              "  SELECT $1, $2, $3, $4, $5, $6, $7::usher_event_tier, $9::timestamptz, $10"
              "  WHERE " TZ_KNOWN "  RETURNING *),"
              " idx AS (SELECT usher_enqueue_templates($8::jsonb, ins.id) FROM ins)"
              " SELECT (SELECT " EVENT_JSON " FROM ins e WHERE (SELECT count(*) FROM idx) >= 0),"
              "  " TZ_KNOWN,
              10, params, created_event);
    free(jobs);
}

void route_event_update(api_req *r)
{
    const char *name = NULL, *venue = NULL, *tz = NULL, *starts = NULL, *ends = NULL, *tier = NULL,
               *launch = NULL, *locale = NULL;
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], actor[API_AUDIT_ACTOR_MAX], *jobs;

    r->audited = true;
    if (!api_get_string(r, "name", false, 1, 300, &name) ||
        !api_get_string(r, "venue", false, 0, 300, &venue) ||
        !api_get_string(r, "timezone", false, 1, 64, &tz) ||
        !api_get_time(r, "starts_at", false, &starts) ||
        !api_get_time(r, "ends_at", false, &ends) ||
        !api_get_enum(r, "tier", false, tiers, &tier) ||
        !api_get_time(r, "launch_at", false, &launch) ||
        !api_get_enum(r, "locale", false, locales, &locale))
        return;
    if (starts != NULL && ends != NULL && api_ends_before_start(starts, ends)) {
        api_reply_invalid(r, "ends_at", "ends_at must not be before starts_at");
        return;
    }
    if ((jobs = index_job(r)) == NULL)
        return;
    const char *params[] = { api_id_text(r->ids[0], id),
                             api_scope_org(r, org),
                             name,
                             tz,
                             venue,
                             starts,
                             ends,
                             tier,
                             jobs,
                             launch,
                             api_audit_actor(r, actor),
                             locale };

    /* The update joins old, which locks the row first: "before" is what it replaced. */
    api_query(r,
              "WITH old AS (SELECT o.id, to_jsonb(o) AS before FROM events o WHERE o.id = $1"
              "  AND ($2::bigint IS NULL OR o.organizer_id = $2) FOR UPDATE),"
              " upd AS (UPDATE events SET name = coalesce($3, name),"
              "  timezone = coalesce($4, timezone), venue = coalesce($5, venue),"
              "  starts_at = coalesce($6::timestamptz, starts_at),"
              "  ends_at = coalesce($7::timestamptz, ends_at),"
              "  tier = coalesce($8::usher_event_tier, tier),"
              "  launch_at = coalesce($10::timestamptz, launch_at),"
              "  locale = coalesce($12, locale), updated_at = now()"
              "  FROM old WHERE events.id = old.id AND " TZ_KNOWN " RETURNING events.*),"
              " idx AS (SELECT usher_enqueue_templates($9::jsonb, upd.id) FROM upd),"
              " aud AS (SELECT usher_audit($11::jsonb, 'event.update', 'event', upd.id,"
              "  (SELECT before FROM old), to_jsonb(upd)) FROM upd)"
              " SELECT (SELECT " EVENT_JSON " FROM upd e"
              "  WHERE (SELECT count(*) FROM idx) + (SELECT count(*) FROM aud) >= 0),"
              "  " TZ_KNOWN,
              12, params, updated_event);
    free(jobs);
}

static void created_ticket_type(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;

    api_event_cache_changed(r->loop, r->ids[0]);
    api_reply_row(r, res, errmsg, 201, "event");
}

void route_ticket_type_create(api_req *r)
{
    const char *name = NULL;
    int64_t capacity = 0;
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], cap[USHER_INT_TEXT_MAX];

    if (!api_get_string(r, "name", true, 1, 200, &name) ||
        !api_get_int(r, "capacity", true, 0, 10000000, &capacity))
        return;
    usher_int_text(capacity, cap);
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org), name, cap };

    api_query(r,
              "INSERT INTO ticket_types (event_id, name, capacity)"
              " SELECT e.id, $3, $4::int FROM events e"
              " WHERE e.id = $1 AND ($2::bigint IS NULL OR e.organizer_id = $2)"
              " RETURNING json_build_object('id', id, 'event_id', event_id, 'name', name,"
              "  'capacity', capacity, 'available', capacity)::text",
              4, params, created_ticket_type);
}
