/*
 * A loop's Redis connection. Each connection opens with a handshake sent
 * before anything else, [AUTH] [SELECT DB] PING, and counts as up only once
 * PING answers: until then, and whenever it is down, calls are refused at
 * once. A handshake Redis refuses (a wrong or missing password, a database
 * it does not have) is handled as Redis being unreachable: the connection
 * closes, usher-api answers from PostgreSQL without the cache and the rate
 * limits, and it tries again with backoff, saying why once at err level
 * (never with the password) and again only after a success.
 */
#include "redis.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "log.h"
#include "redis_url.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct api_redis {
    struct event_base *base;
    api_redis_url url;
    redisAsyncContext *ac; /* NULL while down */
    bool connected;        /* the handshake is through */
    bool refused;          /* this connection's handshake was refused: it is closing */
    bool refusal_said;     /* a refusal was logged since the last success */
    struct event *retry;
    int backoff_ms;
};

/* One call waiting for its reply; outlives its caller's interest on timeout. */
typedef struct call {
    api_redis_fn fn; /* NULL once answered (timeout) or for fire and forget */
    void *arg;
    struct event *timer;
} call;

/* The handshake's steps, as its replies' privdata (hiredis takes it non-const). */
static char step_auth[] = "AUTH", step_select[] = "SELECT", step_ping[] = "PING";

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
    }
    /* Connected: up once the handshake answers (handshake_reply). */
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    api_redis *rd = ac->data;

    (void)status;
    if (rd == NULL)
        return; /* freed on purpose */
    if (!rd->refused)
        usher_log(USHER_LOG_WARNING, "redis connection lost: %s",
                  ac->errstr[0] != '\0' ? ac->errstr : "closed");
    rd->ac = NULL;
    rd->connected = false;
    schedule_retry(rd);
}

/* Redis said no to a step of the handshake: close, and retry like a lost connection. */
static void refuse(api_redis *rd, redisAsyncContext *ac, const char *step, const char *said)
{
    rd->refused = true;
    usher_log(rd->refusal_said ? USHER_LOG_DEBUG : USHER_LOG_ERR,
              "redis refused %s: %s; usher-api goes on without the cache and the rate limits,"
              " and tries again (check the password and database of redis.url)",
              step, said);
    rd->refusal_said = true;
    redisAsyncDisconnect(ac); /* after the replies still due; on_disconnect retries */
}

/* The reply to one step of the handshake; privdata is the step's name. */
static void handshake_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    api_redis *rd = ac->data;
    const redisReply *r = reply;
    const char *step = privdata;

    if (rd == NULL || rd->ac != ac || r == NULL || rd->refused)
        return; /* freed, failed to connect, lost (on_disconnect), or refused already */
    if (r->type == REDIS_REPLY_ERROR) {
        refuse(rd, ac, step, r->str);
        return;
    }
    if (step != step_ping)
        return;
    rd->connected = true;
    rd->refusal_said = false;
    rd->backoff_ms = BACKOFF_MIN_MS;
    usher_log(USHER_LOG_INFO, "redis connected%s", rd->url.password[0] != '\0' ? " (AUTH)" : "");
}

/* Queues the handshake; hiredis sends it first, once connected. */
static bool send_handshake(api_redis *rd, redisAsyncContext *ac)
{
    char db[16];
    const char *auth_argv[] = { "AUTH", rd->url.user, rd->url.password };
    const char *select_argv[] = { "SELECT", db };
    const char *ping_argv[] = { "PING" };
    int auth_argc = 3;

    if (rd->url.user[0] == '\0') { /* AUTH PASSWORD: the default user */
        auth_argv[1] = rd->url.password;
        auth_argc = 2;
    }
    snprintf(db, sizeof(db), "%d", rd->url.db);
    if (rd->url.password[0] != '\0' &&
        redisAsyncCommandArgv(ac, handshake_reply, step_auth, auth_argc, auth_argv, NULL) !=
            REDIS_OK)
        return false;
    if (rd->url.db != 0 &&
        redisAsyncCommandArgv(ac, handshake_reply, step_select, 2, select_argv, NULL) != REDIS_OK)
        return false;
    return redisAsyncCommandArgv(ac, handshake_reply, step_ping, 1, ping_argv, NULL) == REDIS_OK;
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    connect_now(arg);
}

static void connect_now(api_redis *rd)
{
    redisAsyncContext *ac = redisAsyncConnect(rd->url.host, rd->url.port);

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
    rd->refused = false;
    if (!send_handshake(rd, ac)) {
        rd->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
        schedule_retry(rd);
    }
}

api_redis *api_redis_new(struct event_base *base, const char *url, char *why, size_t whylen)
{
    api_redis *rd = usher_calloc(1, sizeof(*rd));

    rd->base = base;
    rd->backoff_ms = BACKOFF_MIN_MS;
    if (api_redis_url_parse(url, &rd->url, why, whylen) != USHER_OK) {
        free(rd);
        return NULL;
    }
    rd->retry = usher_need(evtimer_new(base, retry_cb, rd));
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

        c->timer = usher_need(evtimer_new(rd->base, on_timeout, c));
        if (evtimer_add(c->timer, &tv) != 0) {
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
