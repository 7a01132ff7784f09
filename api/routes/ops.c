/*
 * /healthz (the process answers), /readyz (it can reach PostgreSQL; Redis
 * is optional: without it the API answers from the database) and /metrics.
 */
#include <event2/buffer.h>
#include <stdlib.h>

#include "../metrics.h"
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

void route_readyz(api_req *r)
{
    api_query(r, "SELECT 1", 0, NULL, ready_checked);
}

void route_metrics(api_req *r)
{
    struct evbuffer *out = evbuffer_new();
    int nloops = 0;
    api_loop *const *loops = api_threads_loops(NULL, &nloops);
    char *text;
    size_t len;

    if (out == NULL || api_metrics_render(r->loop->srv->metrics, loops, nloops, out) != 0) {
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
