#include "wake_after_commit.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "config.h"
#include "pgpool.h"
#include "wake.h"

#define MARKED_MAX 16 /* distinct queues per window; more are rare and wait one window */

struct api_wake {
    api_loop *loop;
    struct event *timer;
    bool armed;
    size_t n;
    char queues[MARKED_MAX][USHER_NAME_MAX];
};

static void sent(PGresult *res, const char *errmsg, void *arg)
{
    (void)res;
    (void)errmsg;
    (void)arg; /* a lost wake-up costs one poll interval, nothing more */
}

static void flush(evutil_socket_t fd, short what, void *arg)
{
    api_wake *w = arg;
    json_t *names = json_array();
    char *text = NULL;
    const char *params[1];

    (void)fd;
    (void)what;
    w->armed = false;
    for (size_t i = 0; names != NULL && i < w->n; i++)
        json_array_append_new(names, json_string(w->queues[i]));
    w->n = 0;
    if (names != NULL)
        text = json_dumps(names, JSON_COMPACT);
    json_decref(names);
    if (text == NULL)
        return;
    params[0] = text;
    /* Unsent (no connection): a lost wake-up costs one poll interval, as in sent(). */
    usher_ignore(api_pgpool_query(
        w->loop->pg, "SELECT usher_wake(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))", 1,
        params, sent, NULL));
    free(text);
}

api_wake *api_wake_new(api_loop *loop)
{
    api_wake *w = usher_calloc(1, sizeof(*w));

    w->loop = loop;
    w->timer = usher_need(evtimer_new(loop->base, flush, w));
    return w;
}

void api_wake_free(api_wake *w)
{
    if (w == NULL)
        return;
    event_free(w->timer);
    free(w);
}

void api_wake_kind(api_loop *loop, const char *kind)
{
    api_wake *w = loop->wake;
    const char *queue = usher_config_kind_queue(loop->srv->cfg, kind, USHER_DEFAULT_QUEUE);
    int ms = loop->srv->cfg->notify_debounce_ms;

    for (size_t i = 0; i < w->n; i++) {
        if (strcmp(w->queues[i], queue) == 0)
            goto arm;
    }
    if (w->n < MARKED_MAX)
        memcpy(w->queues[w->n++], queue, strlen(queue) + 1);
arm:
    if (!w->armed) {
        struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

        w->armed = evtimer_add(w->timer, &tv) == 0;
    }
}
