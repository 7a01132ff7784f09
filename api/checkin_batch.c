#include "checkin_batch.h"

#include <event2/event.h>
#include <stdlib.h>

#include "alloc.h"
#include "pgpool.h"
#include "reply.h"
#include "query.h"

#define BATCH_MAX 64

typedef struct sent {
    api_checkin_batch *b;
    size_t n;
    api_req *reqs[BATCH_MAX];
} sent;

struct api_checkin_batch {
    api_loop *loop;
    api_checkin_answer answer;
    struct event *timer; /* a zero timeout: runs after the turn that queued the scans */
    bool armed;
    size_t n;
    api_req *reqs[BATCH_MAX];
    json_t *items; /* a JSON array, reqs[i]'s scan at index i */
};

static void answered(PGresult *res, const char *errmsg, void *arg)
{
    sent *s = arg;
    bool done[BATCH_MAX] = { false };

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        /* The whole batch failed: each request hears why, as a single scan would. */
        for (size_t i = 0; i < s->n; i++) {
            if (api_result_ok(s->reqs[i], res, errmsg)) /* a good result without rows */
                api_reply_error(s->reqs[i], 500, "internal", "the check-in batch had no answer");
        }
        free(s);
        return;
    }
    for (int row = 0; row < PQntuples(res); row++) {
        long idx = strtol(PQgetvalue(res, row, 0), NULL, 10);

        if (idx < 0 || (size_t)idx >= s->n || done[idx])
            continue;
        done[idx] = true;
        s->b->answer(s->reqs[idx], PQgetvalue(res, row, 1),
                     PQgetisnull(res, row, 2) ? NULL : PQgetvalue(res, row, 2),
                     PQgetisnull(res, row, 3) ? NULL : PQgetvalue(res, row, 3));
    }
    for (size_t i = 0; i < s->n; i++) {
        if (!done[i])
            api_reply_error(s->reqs[i], 500, "internal", "the check-in got no answer");
    }
    free(s);
}

static void flush(api_checkin_batch *b)
{
    sent *s;
    char *text;

    if (b->armed) {
        evtimer_del(b->timer);
        b->armed = false;
    }
    if (b->n == 0)
        return;
    s = usher_malloc(sizeof(*s));
    text = usher_need(json_dumps(b->items, JSON_COMPACT));
    const char *params[] = { text, b->loop->srv->webhook_template };

    *s = (sent){ .b = b, .n = b->n };
    for (size_t i = 0; i < b->n; i++)
        s->reqs[i] = b->reqs[i];
    if (api_pgpool_query(b->loop->pg,
                         "SELECT idx, result, to_char(first_at AT TIME ZONE 'UTC',"
                         " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), first_gate"
                         " FROM usher_checkin_batch($1::jsonb, $2::jsonb)",
                         2, params, answered, s) != USHER_OK) {
        for (size_t i = 0; i < b->n; i++)
            api_reply_error(b->reqs[i], 503, "unavailable",
                            "the database is not reachable; try again shortly");
        free(s);
    }
    free(text);
    json_array_clear(b->items);
    b->n = 0;
}

static void due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ((api_checkin_batch *)arg)->armed = false;
    flush(arg);
}

api_checkin_batch *api_checkin_batch_new(api_loop *loop, api_checkin_answer answer)
{
    api_checkin_batch *b = usher_calloc(1, sizeof(*b));

    b->loop = loop;
    b->answer = answer;
    b->items = usher_need(json_array());
    b->timer = usher_need(evtimer_new(loop->base, due, b));
    return b;
}

void api_checkin_batch_free(api_checkin_batch *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++)
        api_reply_error(b->reqs[i], 503, "draining", "the server is shutting down; retry");
    if (b->timer != NULL)
        event_free(b->timer);
    json_decref(b->items);
    free(b);
}

void api_checkin_batch_add(api_loop *loop, api_req *r, json_t *item)
{
    api_checkin_batch *b = loop->checkins;

    if (json_array_append_new(b->items, item) != 0) {
        api_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    b->reqs[b->n++] = r;
    if (b->n == BATCH_MAX) {
        flush(b);
    } else if (!b->armed) {
        struct timeval now = { 0, 0 };

        b->armed = evtimer_add(b->timer, &now) == 0;
        if (!b->armed)
            flush(b);
    }
}
