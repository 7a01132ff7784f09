/*
 * /healthz (the process answers) and /readyz (it can reach PostgreSQL;
 * Redis is optional: without it the API answers from the database).
 * /metrics has a listener of its own (api/metrics_http.h).
 *
 * /readyz's SELECT 1 has a deadline of its own: a connection that hangs
 * (its server stopped, its link cut with nothing yet noticed) says "not
 * ready" within READY_PROBE_MS rather than when TCP gives up. The probe
 * outlives an answer given at the deadline until its statement comes back
 * (pgloop always calls back, at the latest when the connection closes).
 */
#include <event2/event.h>
#include <stdlib.h>

#include "../pgpool.h"
#include "alloc.h"
#include "request.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

#define READY_PROBE_MS 2000

typedef struct ready_probe {
    api_req *r;             /* NULL once the deadline answered */
    struct event *deadline; /* NULL once fired */
} ready_probe;

void route_healthz(api_req *r)
{
    api_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void probe_free(ready_probe *p)
{
    if (p->deadline != NULL)
        event_free(p->deadline);
    free(p);
}

static void ready_checked(PGresult *res, const char *errmsg, void *arg)
{
    ready_probe *p = arg;
    api_req *r = p->r;

    (void)errmsg;
    probe_free(p);
    if (r == NULL)
        return; /* answered at the deadline */
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        api_reply_error(r, 503, "unavailable", "the database does not answer");
        return;
    }
    api_reply_json(r, 200, json_pack("{s:s,s:b}", "status", "ready", "database", 1));
}

static void probe_due(evutil_socket_t fd, short what, void *arg)
{
    ready_probe *p = arg;
    api_req *r = p->r;

    (void)fd;
    (void)what;
    event_free(p->deadline);
    p->deadline = NULL;
    p->r = NULL;
    api_reply_error(r, 503, "unavailable", "the database did not answer within %d ms",
                    READY_PROBE_MS);
}

/*
 * Ready means every loop can reach the database: a balancer sends requests
 * to any loop, so one loop still connecting makes the whole process not ready.
 */
void route_readyz(api_req *r)
{
    int nloops = 0, waiting = api_server_loops_without_db(r->loop->srv);
    struct timeval within = { .tv_sec = READY_PROBE_MS / 1000,
                              .tv_usec = READY_PROBE_MS % 1000 * 1000 };
    ready_probe *p;

    (void)api_server_loops(r->loop->srv, &nloops);
    if (waiting > 0) {
        api_reply_error(r, 503, "unavailable", "%d of %d loops have no database connection",
                        waiting, nloops);
        return;
    }
    p = usher_calloc(1, sizeof(*p));
    p->r = r;
    p->deadline = usher_need(evtimer_new(r->loop->base, probe_due, p));
    if (evtimer_add(p->deadline, &within) != 0 ||
        api_pgpool_query(r->loop->pg, "SELECT 1", 0, NULL, ready_checked, p) != USHER_OK) {
        probe_free(p);
        api_reply_error(r, 503, "unavailable", "the database is not reachable; try again shortly");
    }
}
