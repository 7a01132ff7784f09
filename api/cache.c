#include "cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "alloc.h"
#include "inttext.h"
#include "metrics.h"
#include "redis.h"

typedef struct lookup {
    api_req *r;
    api_cache_fn done;
    char name[16];
    char key[128];
    char *value; /* a stale value kept while the lock is asked for */
    size_t len;
} lookup;

int api_cache_timeout_ms(const api_loop *loop)
{
    return loop->srv->cfg->api_redis_timeout_ms;
}

static long long wall_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void lock_answered(redisReply *reply, void *arg)
{
    lookup *l = arg;
    bool won = reply != NULL && reply->type == REDIS_REPLY_STATUS;

    l->done(l->r, API_CACHE_STALE, l->value, l->len, won);
    free(l->value);
    free(l);
}

static void got(redisReply *reply, void *arg)
{
    lookup *l = arg;
    api_metrics *m = l->r->loop->srv->metrics;
    const char *bar = NULL;
    char lock[160];

    if (reply != NULL && reply->type == REDIS_REPLY_STRING)
        bar = memchr(reply->str, '|', reply->len);
    if (bar == NULL) {
        api_metrics_cache(m, l->name, 0);
        l->done(l->r, API_CACHE_MISS, NULL, 0, false);
        free(l);
        return;
    }
    api_metrics_cache(m, l->name, 1);
    const char *value = bar + 1;
    size_t len = reply->len - (size_t)(value - reply->str);

    if (atoll(reply->str) > wall_ms()) {
        l->done(l->r, API_CACHE_FRESH, value, len, false);
        free(l);
        return;
    }
    /* Stale: serve it, and let one caller (per 5 s) refresh it. */
    const char *argv[] = { "SET", lock, "1", "NX", "PX", "5000" };

    l->value = usher_malloc(len + 1);
    snprintf(lock, sizeof(lock), "%s:lock", l->key);
    memcpy(l->value, value, len);
    l->value[len] = '\0';
    l->len = len;
    if (api_redis_call(l->r->loop->redis, api_cache_timeout_ms(l->r->loop), lock_answered, l, 6,
                       argv, NULL))
        return;
    l->done(l->r, API_CACHE_STALE, l->value, l->len, false);
    free(l->value);
    free(l);
}

void api_cache_get(api_req *r, const char *name, const char *key, api_cache_fn done)
{
    lookup *l = usher_calloc(1, sizeof(*l));
    const char *argv[] = { "GET", key };

    if (strlen(key) >= sizeof(l->key)) {
        free(l);
        done(r, API_CACHE_MISS, NULL, 0, false);
        return;
    }
    l->r = r;
    l->done = done;
    snprintf(l->name, sizeof(l->name), "%s", name);
    snprintf(l->key, sizeof(l->key), "%s", key);
    if (!api_redis_call(r->loop->redis, api_cache_timeout_ms(r->loop), got, l, 2, argv, NULL)) {
        api_metrics_cache(r->loop->srv->metrics, name, 0);
        free(l);
        done(r, API_CACHE_MISS, NULL, 0, false);
    }
}

/* A held key (api_cache_hold) refuses puts until its hold expires. */
static const char put_script[] = "if redis.call('GET', KEYS[1]) == '" API_CACHE_HELD "' then"
                                 " return 0 end"
                                 " redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1";

void api_cache_put(api_loop *loop, const char *key, const char *value, size_t len, int ttl_s,
                   int stale_s)
{
    char head[32], px[32], *entry;
    int head_len = snprintf(head, sizeof(head), "%lld|", wall_ms() + ttl_s * 1000LL);

    if (ttl_s <= 0)
        return;
    entry = usher_malloc((size_t)head_len + len);
    memcpy(entry, head, (size_t)head_len);
    memcpy(entry + head_len, value, len);
    usher_int_text((ttl_s + stale_s) * 1000LL, px);
    const char *argv[] = { "EVAL", put_script, "1", key, entry, px };
    size_t lens[] = {
        4, sizeof(put_script) - 1, 1, strlen(key), (size_t)head_len + len, strlen(px)
    };

    api_redis_call(loop->redis, 0, NULL, NULL, 6, argv, lens);
    free(entry);
}

typedef struct put_many {
    void (*done)(void *arg, long long stored);
    void *arg;
} put_many;

static void put_many_answered(redisReply *reply, void *arg)
{
    put_many *p = arg;

    p->done(p->arg, reply != NULL && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1);
    free(p);
}

/* KEYS: the keys; ARGV[1]: PX, ARGV[2]: "FRESH_UNTIL|", ARGV[2 + i]: value i. */
static const char put_many_script[] =
    "local n = 0"
    " for i, k in ipairs(KEYS) do"
    "  if redis.call('GET', k) ~= '" API_CACHE_HELD "' then"
    "   redis.call('SET', k, ARGV[2] .. ARGV[2 + i], 'PX', ARGV[1])"
    "   n = n + 1"
    "  end"
    " end return n";

void api_cache_put_many(api_loop *loop, const char *const *keys, const char *const *values,
                        size_t n, int ttl_s, int stale_s, int timeout_ms,
                        void (*done)(void *arg, long long stored), void *arg)
{
    const char **argv;
    char count[USHER_INT_TEXT_MAX], px[USHER_INT_TEXT_MAX], head[32];
    put_many *p;

    if (n == 0 || ttl_s <= 0) {
        done(arg, 0);
        return;
    }
    argv = usher_calloc(2 * n + 5, sizeof(*argv));
    p = usher_malloc(sizeof(*p));
    *p = (put_many){ done, arg };
    usher_int_text(n, count);
    usher_int_text((ttl_s + stale_s) * 1000LL, px);
    snprintf(head, sizeof(head), "%lld|", wall_ms() + ttl_s * 1000LL);
    argv[0] = "EVAL";
    argv[1] = put_many_script;
    argv[2] = count;
    memcpy(&argv[3], keys, n * sizeof(*argv));
    argv[3 + n] = px;
    argv[4 + n] = head;
    memcpy(&argv[5 + n], values, n * sizeof(*argv));
    if (!api_redis_call(loop->redis, timeout_ms, put_many_answered, p, (int)(2 * n + 5), argv,
                        NULL)) {
        free(p);
        done(arg, -1);
    }
    free(argv);
}

void api_cache_drop(api_loop *loop, const char *key)
{
    const char *argv[] = { "DEL", key };

    api_redis_call(loop->redis, 0, NULL, NULL, 2, argv, NULL);
}

typedef struct hold {
    void (*done)(void *arg, bool held);
    void *arg;
} hold;

static void held(redisReply *reply, void *arg)
{
    hold *h = arg;

    h->done(h->arg, reply != NULL && reply->type == REDIS_REPLY_INTEGER);
    free(h);
}

static const char hold_script[] = "for _, k in ipairs(KEYS) do"
                                  " redis.call('SET', k, '" API_CACHE_HELD "', 'PX', ARGV[1]) end"
                                  " return #KEYS";

void api_cache_hold(api_loop *loop, const char *const *keys, size_t n,
                    void (*done)(void *arg, bool held), void *arg)
{
    const char **argv = usher_calloc(n + 4, sizeof(*argv));
    hold *h = usher_malloc(sizeof(*h));
    char count[USHER_INT_TEXT_MAX], px[USHER_INT_TEXT_MAX];

    if (n == 0) {
        free(argv);
        free(h);
        done(arg, n == 0);
        return;
    }
    usher_int_text(n, count);
    usher_int_text(API_CACHE_HOLD_MS, px);
    argv[0] = "EVAL";
    argv[1] = hold_script;
    argv[2] = count;
    for (size_t i = 0; i < n; i++)
        argv[3 + i] = keys[i];
    argv[3 + n] = px;
    *h = (hold){ done, arg };
    if (!api_redis_call(loop->redis, api_cache_timeout_ms(loop), held, h, (int)(n + 4), argv,
                        NULL)) {
        free(h);
        done(arg, false);
    }
    free(argv);
}
