#include "metrics.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "prom.h"
#include "request.h"
#include "route.h"

static const int statuses[] = { 200, 201, 202, 204, 206, 304, 400, 401, 403, 404, 405, 409,
                                410, 411, 413, 415, 416, 422, 429, 431, 500, 503, 0 };
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0])) /* the last one: any other */

static const char *const caches[] = { "event", "access", "analytics" };
#define NCACHE (sizeof(caches) / sizeof(caches[0]))
static const char *const results[] = { "miss", "hit" };            /* [hit] */
static const char *const loads[] = { "read", "shared", "waited" }; /* [how] */

typedef struct route_stats {
    atomic_uint_fast64_t by_status[NSTATUS];
    usher_prom_histogram latency;
} route_stats;

struct api_metrics {
    const api_route *table; /* the route table, for the labels */
    size_t nroutes;         /* plus one for unmatched requests */
    route_stats *routes;
    atomic_uint_fast64_t cache[NCACHE][2];                /* [cache][hit] */
    atomic_uint_fast64_t loads[NCACHE][API_CACHE_NLOADS]; /* [cache][how] */
    atomic_uint_fast64_t warmed[NCACHE];                  /* [cache]: entries the warm-up stored */
    atomic_uint_fast64_t warm_sessions[2]; /* [claimed elsewhere]: sessions looked at */
    usher_prom_histogram db_queued, db_ran;
};

api_metrics *api_metrics_new(const api_route *routes, size_t nroutes)
{
    api_metrics *m = usher_calloc(1, sizeof(*m));

    m->table = routes;
    m->nroutes = nroutes + 1;
    m->routes = usher_calloc(m->nroutes, sizeof(*m->routes));
    return m;
}

void api_metrics_free(api_metrics *m)
{
    if (m != NULL)
        free(m->routes);
    free(m);
}

/* The row of a route of the table; the last one counts unmatched requests. */
static size_t route_row(const api_metrics *m, const api_route *route)
{
    if (route == NULL || route < m->table || route >= m->table + (m->nroutes - 1))
        return m->nroutes - 1;
    return (size_t)(route - m->table);
}

static const char *route_label(const api_metrics *m, size_t row)
{
    return row < m->nroutes - 1 ? m->table[row].pattern : "unmatched";
}

static const char *route_method(const api_metrics *m, size_t row)
{
    return row < m->nroutes - 1 ? api_method_name(m->table[row].method) : "any";
}

void api_metrics_request(api_metrics *m, const api_route *route, int status, double seconds)
{
    route_stats *rs = &m->routes[route_row(m, route)];
    size_t s = 0;

    while (s < NSTATUS - 1 && statuses[s] != status)
        s++;
    atomic_fetch_add_explicit(&rs->by_status[s], 1, memory_order_relaxed);
    usher_prom_observe(&rs->latency, seconds);
}

void api_metrics_cache(api_metrics *m, const char *cache, int hit)
{
    for (size_t i = 0; i < NCACHE; i++) {
        if (strcmp(caches[i], cache) == 0)
            atomic_fetch_add_explicit(&m->cache[i][hit != 0], 1, memory_order_relaxed);
    }
}

void api_metrics_cache_load(api_metrics *m, const char *cache, int how)
{
    for (size_t i = 0; i < NCACHE && how >= 0 && how < API_CACHE_NLOADS; i++) {
        if (strcmp(caches[i], cache) == 0)
            atomic_fetch_add_explicit(&m->loads[i][how], 1, memory_order_relaxed);
    }
}

void api_metrics_cache_warmed(api_metrics *m, const char *cache, long long n)
{
    for (size_t i = 0; i < NCACHE && n > 0; i++) {
        if (strcmp(caches[i], cache) == 0)
            atomic_fetch_add_explicit(&m->warmed[i], (uint64_t)n, memory_order_relaxed);
    }
}

void api_metrics_warm_session(api_metrics *m, bool elsewhere)
{
    atomic_fetch_add_explicit(&m->warm_sessions[elsewhere], 1, memory_order_relaxed);
}

void api_metrics_statement(api_metrics *m, double queued_s, double ran_s)
{
    usher_prom_observe(&m->db_queued, queued_s);
    usher_prom_observe(&m->db_ran, ran_s);
}

static uint64_t load(atomic_uint_fast64_t *v)
{
    return (uint64_t)atomic_load_explicit(v, memory_order_relaxed);
}

/* NAME{cache="C",KEY="LABELS[i]"} COUNTERS[c * n + i] for every cache c and i < n. */
static int render_per_cache(struct evbuffer *out, const char *name, const char *key,
                            const char *const *labels, size_t n, atomic_uint_fast64_t *counters)
{
    int rc = 0;

    for (size_t c = 0; c < NCACHE && rc >= 0; c++) {
        for (size_t i = 0; i < n && rc >= 0; i++)
            rc = evbuffer_add_printf(out, "%s{cache=\"%s\",%s=\"%s\"} %llu\n", name, caches[c], key,
                                     labels[i], (unsigned long long)load(&counters[c * n + i]));
    }
    return rc;
}

static int render_requests(api_metrics *m, struct evbuffer *out)
{
    int rc = evbuffer_add_printf(out, "# HELP usher_http_requests_total HTTP requests answered,"
                                      " by route and status.\n"
                                      "# TYPE usher_http_requests_total counter\n");

    for (size_t r = 0; r < m->nroutes && rc >= 0; r++) {
        for (size_t s = 0; s < NSTATUS && rc >= 0; s++) {
            uint64_t n = load(&m->routes[r].by_status[s]);
            char code[8];

            if (n == 0)
                continue;
            if (statuses[s] == 0)
                memcpy(code, "other", 6);
            else
                snprintf(code, sizeof(code), "%d", statuses[s]);
            rc = evbuffer_add_printf(out,
                                     "usher_http_requests_total{route=\"%s\",method=\"%s\","
                                     "status=\"%s\"} %llu\n",
                                     route_label(m, r), route_method(m, r), code,
                                     (unsigned long long)n);
        }
    }
    return rc;
}

static int render_latency(api_metrics *m, struct evbuffer *out)
{
    int rc = evbuffer_add_printf(out, "# HELP usher_http_request_duration_seconds Time from a"
                                      " request's arrival to its answer, by route.\n"
                                      "# TYPE usher_http_request_duration_seconds histogram\n");

    for (size_t r = 0; r < m->nroutes && rc >= 0; r++) {
        char labels[160];

        if (load(&m->routes[r].latency.count) == 0)
            continue;
        snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\"", route_label(m, r),
                 route_method(m, r));
        rc = usher_prom_histogram_render(out, "usher_http_request_duration_seconds", labels,
                                         &m->routes[r].latency);
    }
    return rc;
}

int api_metrics_render(api_metrics *m, struct api_loop *const *loops, int nloops,
                       struct evbuffer *out)
{
    int up = 0, busy = 0, size = 0, inflight = 0, redis = 0;
    int rc = render_requests(m, out);

    if (rc >= 0)
        rc = render_latency(m, out);
    if (rc >= 0)
        rc = evbuffer_add_printf(out, "# HELP usher_cache_requests_total Cache lookups by cache"
                                      " and result.\n"
                                      "# TYPE usher_cache_requests_total counter\n");
    if (rc >= 0)
        rc = render_per_cache(out, "usher_cache_requests_total", "result", results, 2,
                              &m->cache[0][0]);
    if (rc >= 0)
        rc = evbuffer_add_printf(out, "# HELP usher_cache_loads_total Cache misses and refreshes"
                                      " by what answered them: a database read of their own (one"
                                      " per key at a time in a process), another request's read"
                                      " (shared), or a read of their own after waiting too long"
                                      " for another's (waited).\n"
                                      "# TYPE usher_cache_loads_total counter\n");
    if (rc >= 0)
        rc = render_per_cache(out, "usher_cache_loads_total", "by", loads, API_CACHE_NLOADS,
                              &m->loads[0][0]);
    if (rc >= 0)
        rc = evbuffer_add_printf(out, "# HELP usher_cache_warmed_total Entries the cache warm-up"
                                      " stored (access: door answers; event: details read).\n"
                                      "# TYPE usher_cache_warmed_total counter\n");
    for (size_t c = 0; c < NCACHE && rc >= 0; c++)
        rc = evbuffer_add_printf(out, "usher_cache_warmed_total{cache=\"%s\"} %llu\n", caches[c],
                                 (unsigned long long)load(&m->warmed[c]));
    if (rc >= 0)
        rc = evbuffer_add_printf(out,
                                 "# HELP usher_cache_warm_sessions_total Sessions in the warm-up's"
                                 " window, by what this process did: warmed their door answers,"
                                 " or left them to the process that had claimed them.\n"
                                 "# TYPE usher_cache_warm_sessions_total counter\n"
                                 "usher_cache_warm_sessions_total{result=\"warmed\"} %llu\n"
                                 "usher_cache_warm_sessions_total{result=\"claimed\"} %llu\n",
                                 (unsigned long long)load(&m->warm_sessions[0]),
                                 (unsigned long long)load(&m->warm_sessions[1]));
    if (rc >= 0)
        rc = evbuffer_add_printf(out, "# HELP usher_db_statement_duration_seconds A database"
                                      " statement of the API, from its send to its result.\n"
                                      "# TYPE usher_db_statement_duration_seconds histogram\n");
    if (rc >= 0)
        rc =
            usher_prom_histogram_render(out, "usher_db_statement_duration_seconds", "", &m->db_ran);
    if (rc >= 0)
        rc = evbuffer_add_printf(out, "# HELP usher_db_statement_queued_seconds How long a"
                                      " statement waited for its connection before it was sent.\n"
                                      "# TYPE usher_db_statement_queued_seconds histogram\n");
    if (rc >= 0)
        rc = usher_prom_histogram_render(out, "usher_db_statement_queued_seconds", "",
                                         &m->db_queued);
    for (int i = 0; i < nloops; i++) {
        up += atomic_load(&loops[i]->pg_up);
        busy += atomic_load(&loops[i]->pg_busy);
        inflight += atomic_load(&loops[i]->inflight);
        redis += atomic_load(&loops[i]->redis_up);
        size += loops[i]->srv->cfg->api_db_connections;
    }
    if (rc >= 0)
        rc = evbuffer_add_printf(
            out,
            "# HELP usher_db_connections PostgreSQL connections of the API, by state.\n"
            "# TYPE usher_db_connections gauge\n"
            "usher_db_connections{state=\"configured\"} %d\n"
            "usher_db_connections{state=\"up\"} %d\n"
            "usher_db_connections{state=\"in_use\"} %d\n"
            "# HELP usher_http_requests_in_flight Requests accepted and not yet answered.\n"
            "# TYPE usher_http_requests_in_flight gauge\n"
            "usher_http_requests_in_flight %d\n"
            "# HELP usher_redis_connections Redis connections of the API's loops, by state.\n"
            "# TYPE usher_redis_connections gauge\n"
            "usher_redis_connections{state=\"configured\"} %d\n"
            "usher_redis_connections{state=\"up\"} %d\n",
            size, up, busy, inflight, nloops, redis);
    return rc < 0 ? -1 : 0;
}
