#include "redis.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct api_redis {
    struct event_base *base;
    char host[256];
    int port, db;
    redisAsyncContext *ac; /* NULL while down */
    bool connected;
    struct event *retry;
    int backoff_ms;
};

/* One call waiting for its reply; outlives its caller's interest on timeout. */
typedef struct call {
    api_redis_fn fn; /* NULL once answered (timeout) or for fire and forget */
    void *arg;
    struct event *timer;
} call;

static void connect_now(api_redis *rd);

static void schedule_retry(api_redis *rd)
{
    struct timeval tv = { rd->backoff_ms / 1000, (rd->backoff_ms % 1000) * 1000 };

    evtimer_add(rd->retry, &tv);
    rd->backoff_ms = rd->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rd->backoff_ms * 2;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    api_redis *rd = ac->data;

    if (rd == NULL)
        return;
    if (status != REDIS_OK) {
        usher_log(USHER_LOG_WARNING, "redis connect failed: %s", ac->errstr);
        rd->ac = NULL; /* hiredis frees it */
        schedule_retry(rd);
        return;
    }
    rd->connected = true;
    rd->backoff_ms = BACKOFF_MIN_MS;
    usher_log(USHER_LOG_INFO, "redis connected");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    api_redis *rd = ac->data;

    (void)status;
    if (rd == NULL)
        return; /* freed on purpose */
    usher_log(USHER_LOG_WARNING, "redis connection lost: %s",
              ac->errstr[0] != '\0' ? ac->errstr : "closed");
    rd->ac = NULL;
    rd->connected = false;
    schedule_retry(rd);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    connect_now(arg);
}

static void connect_now(api_redis *rd)
{
    redisAsyncContext *ac = redisAsyncConnect(rd->host, rd->port);

    if (ac == NULL || ac->err != 0) {
        if (ac != NULL)
            redisAsyncFree(ac);
        schedule_retry(rd);
        return;
    }
    ac->data = rd;
    if (redisLibeventAttach(ac, rd->base) != REDIS_OK) {
        redisAsyncFree(ac);
        schedule_retry(rd);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    rd->ac = ac;
    if (rd->db != 0) {
        char db[16];
        const char *argv[] = { "SELECT", db };

        snprintf(db, sizeof(db), "%d", rd->db);
        redisAsyncCommandArgv(ac, NULL, NULL, 2, argv, NULL); /* queued before any other */
    }
}

/* redis://HOST:PORT[/DB] */
static bool parse_url(api_redis *rd, const char *url)
{
    const char *p = strncmp(url, "redis://", 8) == 0 ? url + 8 : NULL;
    const char *colon = p != NULL ? strchr(p, ':') : NULL;

    if (colon == NULL || (size_t)(colon - p) >= sizeof(rd->host))
        return false;
    memcpy(rd->host, p, (size_t)(colon - p));
    rd->host[colon - p] = '\0';
    rd->port = atoi(colon + 1);
    rd->db = strchr(colon, '/') != NULL ? atoi(strchr(colon, '/') + 1) : 0;
    return rd->port > 0 && rd->port < 65536;
}

api_redis *api_redis_new(struct event_base *base, const char *url)
{
    api_redis *rd = usher_calloc(1, sizeof(*rd));

    rd->base = base;
    rd->backoff_ms = BACKOFF_MIN_MS;
    rd->retry = evtimer_new(base, retry_cb, rd);
    if (rd->retry == NULL || !parse_url(rd, url)) {
        if (rd->retry == NULL)
            usher_log(USHER_LOG_ERR, "out of memory");
        else
            usher_log(USHER_LOG_ERR, "redis.url '%s' is not redis://HOST:PORT[/DB]", url);
        api_redis_free(rd);
        return NULL;
    }
    connect_now(rd);
    return rd;
}

void api_redis_free(api_redis *rd)
{
    if (rd == NULL)
        return;
    if (rd->ac != NULL) {
        rd->ac->data = NULL;
        redisAsyncFree(rd->ac); /* pending calls get NULL replies */
    }
    if (rd->retry != NULL)
        event_free(rd->retry);
    free(rd);
}

bool api_redis_up(const api_redis *rd)
{
    return rd != NULL && rd->connected;
}

static void finish(call *c, redisReply *reply)
{
    api_redis_fn fn = c->fn;

    c->fn = NULL;
    if (fn != NULL)
        fn(reply, c->arg);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    call *c = privdata;

    (void)ac;
    finish(c, reply);
    if (c->timer != NULL)
        event_free(c->timer);
    free(c);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    finish(arg, NULL); /* the reply, if it ever comes, frees the call */
}

bool api_redis_call(api_redis *rd, int timeout_ms, api_redis_fn fn, void *arg, int argc,
                    const char **argv, const size_t *lens)
{
    call *c;

    if (!api_redis_up(rd))
        return false;
    c = usher_calloc(1, sizeof(*c));
    c->fn = fn;
    c->arg = arg;
    if (fn != NULL) {
        struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

        c->timer = evtimer_new(rd->base, on_timeout, c);
        if (c->timer == NULL || evtimer_add(c->timer, &tv) != 0) {
            if (c->timer != NULL)
                event_free(c->timer);
            free(c);
            return false;
        }
    }
    if (redisAsyncCommandArgv(rd->ac, on_reply, c, argc, argv, lens) != REDIS_OK) {
        if (c->timer != NULL)
            event_free(c->timer);
        free(c);
        return false;
    }
    return true;
}
