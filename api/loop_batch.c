#include "loop_batch.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "pgpool.h"
#include "reply.h"
#include "query.h"

#define BATCH_MAX 64

typedef struct sent {
    const api_batch_kind *kind; /* not the batcher: at shutdown it goes before the answers */
    size_t n;
    api_req *reqs[BATCH_MAX];
    json_t *items; /* reqs[i]'s item at index i: a failed batch hands each its own */
} sent;

struct api_loop_batch {
    api_loop *loop;
    const api_batch_kind *kind;
    struct event *timer; /* a zero timeout: runs after the turn that queued the items */
    bool armed;
    size_t n;
    api_req *reqs[BATCH_MAX];
    json_t *items;  /* a JSON array, reqs[i]'s item at index i */
    usher_buf text; /* what is sent: "[", then each item's JSON, comma-separated; its
                       memory is kept from one statement to the next */
};

static void whole_batch_failed(sent *s, PGresult *res, const char *errmsg)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->kind->failed != NULL)
            s->kind->failed(s->reqs[i], json_array_get(s->items, i), res, errmsg);
        else if (api_result_ok(s->reqs[i], res, errmsg)) /* a good result without rows */
            api_reply_error(s->reqs[i], 500, "internal", "the batch had no answer");
    }
}

static void answered(PGresult *res, const char *errmsg, void *arg)
{
    sent *s = arg;
    bool done[BATCH_MAX] = { false };

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        whole_batch_failed(s, res, errmsg);
    } else {
        for (int row = 0; row < PQntuples(res); row++) {
            long idx = strtol(PQgetvalue(res, row, 0), NULL, 10);

            if (idx < 0 || (size_t)idx >= s->n || done[idx])
                continue;
            done[idx] = true;
            s->kind->row(s->reqs[idx], json_array_get(s->items, (size_t)idx), res, row);
        }
        for (size_t i = 0; i < s->n; i++) {
            if (!done[i])
                api_reply_error(s->reqs[i], 500, "internal", "the request got no answer");
        }
    }
    json_decref(s->items);
    free(s);
}

static void flush(api_loop_batch *b)
{
    sent *s;

    if (b->armed) {
        evtimer_del(b->timer);
        b->armed = false;
    }
    if (b->n == 0)
        return;
    s = usher_malloc(sizeof(*s));
    usher_buf_append(&b->text, "]", 1);
    const char *params[] = { usher_buf_str(&b->text),
                             b->kind->param2 != NULL ? b->kind->param2(b->loop) : NULL };

    *s = (sent){ .kind = b->kind, .n = b->n, .items = b->items };
    for (size_t i = 0; i < b->n; i++)
        s->reqs[i] = b->reqs[i];
    b->items = usher_need(json_array());
    b->n = 0;
    if (api_pgpool_query(b->loop->pg, b->kind->sql, b->kind->param2 != NULL ? 2 : 1, params,
                         answered, s) != USHER_OK) {
        for (size_t i = 0; i < s->n; i++)
            api_reply_error(s->reqs[i], 503, "unavailable",
                            "the database is not reachable; try again shortly");
        json_decref(s->items);
        free(s);
    }
    b->text.len = 0; /* the statement copied its parameters */
}

static void due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ((api_loop_batch *)arg)->armed = false;
    flush(arg);
}

api_loop_batch *api_loop_batch_new(api_loop *loop, const api_batch_kind *kind)
{
    api_loop_batch *b = usher_calloc(1, sizeof(*b));

    b->loop = loop;
    b->kind = kind;
    b->items = usher_need(json_array());
    b->timer = usher_need(evtimer_new(loop->base, due, b));
    return b;
}

void api_loop_batch_free(api_loop_batch *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++)
        api_reply_error(b->reqs[i], 503, "draining", "the server is shutting down; retry");
    if (b->timer != NULL)
        event_free(b->timer);
    json_decref(b->items);
    usher_buf_release(&b->text);
    free(b);
}

static int append_text(const char *text, size_t size, void *buf)
{
    usher_buf_append(buf, text, size);
    return 0;
}

void api_loop_batch_add_tail(api_loop_batch *b, api_req *r, json_t *item, const char *tail)
{
    size_t mark = b->text.len;
    bool dumped;

    usher_buf_append(&b->text, b->n == 0 ? "[" : ",", 1);
    dumped = json_object_size(item) > 0 &&
             json_dump_callback(item, append_text, &b->text, JSON_COMPACT) == 0 &&
             !usher_buf_failed(&b->text);
    if (!dumped)
        json_decref(item);
    if (!dumped || json_array_append_new(b->items, item) != 0) {
        b->text.len = mark;
        b->text.failed = false;
        api_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    if (tail != NULL) {
        b->text.len--; /* the item's closing brace: tail ends the object */
        usher_buf_append(&b->text, tail, strlen(tail));
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

void api_loop_batch_add(api_loop_batch *b, api_req *r, json_t *item)
{
    api_loop_batch_add_tail(b, r, item, NULL);
}
