/*
 * /healthz (the process answers), /readyz (it can reach PostgreSQL; Redis
 * is optional: without it the API answers from the database) and /metrics.
 */
#include <event2/buffer.h>
#include <stdlib.h>

#include "../metrics.h"
#include "../pgpool.h"
#include "prom.h"
#include "../server.h"
#include "routes.h"

void route_healthz(api_req *r)
{
    api_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void ready_checked(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;

    (void)errmsg;
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        api_reply_error(r, 503, "unavailable", "the database does not answer");
        return;
    }
    api_reply_json(r, 200, json_pack("{s:s,s:b}", "status", "ready", "database", 1));
}

/*
 * Ready means every loop can reach the database: a balancer sends requests
 * to any loop, so one loop still connecting makes the whole process not ready.
 */
void route_readyz(api_req *r)
{
    int nloops = 0, waiting = api_threads_without_db(NULL);

    (void)api_threads_loops(NULL, &nloops);
    if (waiting > 0) {
        api_reply_error(r, 503, "unavailable", "%d of %d loops have no database connection",
                        waiting, nloops);
        return;
    }
    api_query(r, "SELECT 1", 0, NULL, ready_checked);
}

/* Jobs by queue and state; "scheduled" = available but not runnable yet. */
static int render_depth(PGresult *res, struct evbuffer *out)
{
    int rc = evbuffer_add_printf(out, "# HELP usher_queue_jobs Jobs in each queue, by state.\n"
                                      "# TYPE usher_queue_jobs gauge\n");

    for (int i = 0; res != NULL && i < PQntuples(res) && rc >= 0; i++) {
        char queue[160];

        usher_prom_escape(PQgetvalue(res, i, 0), queue, sizeof(queue));
        rc = evbuffer_add_printf(out, "usher_queue_jobs{queue=\"%s\",state=\"%s\"} %s\n", queue,
                                 PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
    }
    if (rc >= 0)
        rc = evbuffer_add_printf(out,
                                 "# HELP usher_database_up 1 when the depth query answered.\n"
                                 "# TYPE usher_database_up gauge\nusher_database_up %d\n",
                                 res != NULL ? 1 : 0);
    return rc < 0 ? -1 : 0;
}

static void depth_read(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    struct evbuffer *out = evbuffer_new();
    int nloops = 0;
    api_loop *const *loops = api_threads_loops(NULL, &nloops);
    char *text;
    size_t len;

    (void)errmsg;
    if (res != NULL && PQresultStatus(res) != PGRES_TUPLES_OK)
        res = NULL; /* the metrics still answer, without the depths */
    if (out == NULL || api_metrics_render(r->loop->srv->metrics, loops, nloops, out) != 0 ||
        render_depth(res, out) != 0) {
        if (out != NULL)
            evbuffer_free(out);
        api_reply_error(r, 500, "internal", "could not render the metrics");
        return;
    }
    len = evbuffer_get_length(out);
    text = (char *)evbuffer_pullup(out, -1);
    api_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", text != NULL ? text : "",
                  text != NULL ? len : 0);
    evbuffer_free(out);
}

void route_metrics(api_req *r)
{
    /* The depth query rides the partial claim index for available jobs. */
    if (api_pgpool_query(r->loop->pg,
                         "SELECT queue, CASE WHEN state = 'available' AND run_at > now()"
                         " THEN 'scheduled' ELSE state::text END AS s, count(*)"
                         " FROM usher_jobs GROUP BY 1, 2 ORDER BY 1, 2",
                         0, NULL, depth_read, r) != USHER_OK)
        depth_read(NULL, "the database is not reachable", r);
}
