/*
 * The dashboard's webhook deliveries (admin only): the delivery log of one
 * endpoint or all, and the replay of one delivery as a new job (the same
 * engine calls as `usherctl webhook deliveries|replay`). An organizer's
 * replay of its own deliveries (webhook_endpoints.c) runs the same one.
 */
#include <event2/keyvalq_struct.h>
#include <stdlib.h>

#include "../blocking.h"
#include "../validate.h"
#include "alloc.h"
#include "routes.h"
#include "webhook_replay.h"
#include "webhooks.h"
#include "reply.h"

#define DELIVERIES_LIMIT 100

typedef struct list_args {
    int64_t endpoint;
    int limit;
} list_args;

static USHER_MUSTCHECK usher_err list(usher_store *st, void *arg, json_t **out)
{
    list_args *a = arg;
    json_t *rows = NULL;
    usher_err err = usher_webhook_deliveries(st, a->endpoint, a->limit, &rows);

    if (err != USHER_OK)
        return err;
    *out = json_pack("{s:o}", "deliveries", rows);
    return *out != NULL ? USHER_OK : USHER_ERR_NOMEM;
}

void route_admin_webhook_deliveries(api_req *r)
{
    struct evkeyvalq q;
    list_args *a = usher_calloc(1, sizeof(*a));
    const char *endpoint, *limit;

    if (api_query_params(r, &q) != 0) {
        free(a);
        api_reply_error(r, 400, "bad_request", "the query string is malformed");
        return;
    }
    endpoint = evhttp_find_header(&q, "endpoint");
    limit = evhttp_find_header(&q, "limit");
    int64_t n = DELIVERIES_LIMIT;
    bool bad_endpoint = endpoint != NULL && !api_parse_whole(endpoint, 1, INT64_MAX, &a->endpoint);
    bool bad_limit = limit != NULL && !api_parse_whole(limit, 1, 10000, &n);

    evhttp_clear_headers(&q);
    a->limit = (int)n;
    if (bad_endpoint || bad_limit) {
        free(a);
        api_reply_invalid(r, bad_endpoint ? "endpoint" : "limit",
                          "endpoint must be an endpoint id; limit 1 to 10000");
        return;
    }
    api_blocking(r, list, api_blocking_reply, a);
}

usher_err api_webhook_replay_job(usher_store *st, void *arg, json_t **out)
{
    int64_t *delivery = arg, job = 0;
    usher_err err = usher_webhook_replay(st, *delivery, &job);

    if (err == USHER_OK)
        *out =
            json_pack("{s:I,s:I}", "delivery_id", (json_int_t)*delivery, "job_id", (json_int_t)job);
    return err;
}

void route_admin_webhook_replay(api_req *r)
{
    int64_t *delivery = usher_malloc(sizeof(*delivery));

    *delivery = r->ids[0];
    api_blocking(r, api_webhook_replay_job, api_blocking_reply, delivery);
}
