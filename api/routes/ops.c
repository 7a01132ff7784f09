/*
 * /healthz (the process answers) and /readyz (it can reach PostgreSQL;
 * Redis is optional: without it the API answers from the database).
 * /metrics has a listener of its own (api/metrics_http.h).
 */
#include "request.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

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
    int nloops = 0, waiting = api_server_loops_without_db(r->loop->srv);

    (void)api_server_loops(r->loop->srv, &nloops);
    if (waiting > 0) {
        api_reply_error(r, 503, "unavailable", "%d of %d loops have no database connection",
                        waiting, nloops);
        return;
    }
    api_query(r, "SELECT 1", 0, NULL, ready_checked);
}
