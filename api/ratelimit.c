#include "ratelimit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"
#include "cache.h"
#include "inttext.h"
#include "log.h"
#include "redis.h"
#include "reply.h"
#include "route.h"

/*
 * KEYS: the buckets. ARGV: refill per ms, capacity, cost. Takes cost tokens
 * (1, or 0 to only look) from every bucket only if each has one; returns
 * {1, 0} or {0, ms to wait}.
 */
static const char script[] =
    "local rate, cap, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "local level, wait = {}, 0\n"
    "for i, key in ipairs(KEYS) do\n"
    "  local b = redis.call('HMGET', key, 't', 'v')\n"
    "  local v = tonumber(b[2]) or cap\n"
    "  local last = tonumber(b[1]) or now\n"
    "  v = math.min(cap, v + (now - last) * rate)\n"
    "  level[i] = v\n"
    "  if v < 1 then wait = math.max(wait, math.ceil((1 - v) / rate)) end\n"
    "end\n"
    "local ttl = math.ceil(cap / rate) + 1000\n"
    "for i, key in ipairs(KEYS) do\n"
    "  local v = level[i]\n"
    "  if wait == 0 then v = v - cost end\n"
    "  redis.call('HSET', key, 't', now, 'v', tostring(v))\n"
    "  redis.call('PEXPIRE', key, ttl)\n"
    "end\n"
    "if wait == 0 then return {1, 0} end\n"
    "return {0, wait}\n";

typedef struct check {
    api_req *r;
    void (*next)(api_req *r);
} check;

static void answered(redisReply *reply, void *arg)
{
    check *c = arg;
    api_req *r = c->r;
    void (*next)(api_req * r) = c->next;

    free(c);
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[0]->integer == 0) {
        char seconds[USHER_INT_TEXT_MAX];

        usher_int_text((reply->element[1]->integer + 999) / 1000, seconds);
        usher_log(USHER_LOG_DEBUG, "rate limited: route=%s client=%s retry_after=%s",
                  r->route != NULL ? r->route->pattern : "?", r->client, seconds);
        free(r->state); /* a plain step its caller parked there (api_rate_limit) */
        r->state = NULL;
        api_add_header(r, "Retry-After", seconds);
        api_reply_error(r, 429, "rate_limited", "too many requests; retry after %s s", seconds);
        return;
    }
    next(r);
}

/* The class's allowance per minute (0: unlimited). */
static int allowance(const usher_config *cfg, api_rate_class cls)
{
    if (cfg->api_rate_per_minute == 0)
        return 0;
    switch (cls) {
    case API_RATE_WRITE:
        return cfg->api_rate_per_minute;
    case API_RATE_READ:
        return cfg->api_rate_read_per_minute;
    case API_RATE_MANAGE:
        return cfg->api_rate_manage_per_minute;
    case API_RATE_AUTH:
        return cfg->api_auth_failures_per_minute;
    default:
        return 0;
    }
}

static const char *const class_names[] = {
    [API_RATE_WRITE] = "write",
    [API_RATE_READ] = "read",
    [API_RATE_MANAGE] = "manage",
    [API_RATE_AUTH] = "auth",
};

/* The EVAL of one check or charge: up to two keys, then rate, capacity and cost. */
typedef struct rate_call {
    char ip_key[128], token_key[64], rate[32], cap[USHER_INT_TEXT_MAX];
    const char *argv[8];
    int argc;
} rate_call;

/* Builds the call for r in cls; false when the class is unlimited. */
static bool build(rate_call *c, api_req *r, api_rate_class cls, const char *cost)
{
    int per_minute = allowance(r->loop->srv->cfg, cls);
    bool by_ip = cls != API_RATE_MANAGE || r->auth.token_id == 0;
    bool by_token = (cls == API_RATE_WRITE || cls == API_RATE_MANAGE) && r->auth.token_id != 0;
    int n = 0;

    if (per_minute == 0)
        return false;
    snprintf(c->ip_key, sizeof(c->ip_key), "usher:v1:rate:%s:ip:%s", class_names[cls], r->client);
    snprintf(c->token_key, sizeof(c->token_key), "usher:v1:rate:%s:token:%lld", class_names[cls],
             (long long)r->auth.token_id);
    snprintf(c->rate, sizeof(c->rate), "%.9f", per_minute / 60000.0);
    usher_int_text(per_minute / 6 > 10 ? per_minute / 6 : 10, c->cap);
    c->argv[n++] = "EVAL";
    c->argv[n++] = script;
    c->argv[n++] = by_ip && by_token ? "2" : "1";
    if (by_ip)
        c->argv[n++] = c->ip_key;
    if (by_token)
        c->argv[n++] = c->token_key;
    c->argv[n++] = c->rate;
    c->argv[n++] = c->cap;
    c->argv[n++] = cost;
    c->argc = n;
    return true;
}

void api_rate_limit(api_req *r, api_rate_class cls, void (*next)(api_req *r))
{
    /* Token lookups only look here: a failed lookup is charged afterwards. */
    const char *cost = cls == API_RATE_AUTH ? "0" : "1";
    rate_call call;
    check *c;

    if (!build(&call, r, cls, cost)) {
        next(r);
        return;
    }
    c = usher_malloc(sizeof(*c));
    *c = (check){ r, next };
    if (!api_redis_call(r->loop->redis, api_cache_timeout_ms(r->loop), answered, c, call.argc,
                        call.argv, NULL)) {
        free(c);
        next(r);
    }
}

void api_rate_charge(api_req *r, api_rate_class cls)
{
    rate_call call;

    if (build(&call, r, cls, "1"))
        (void)api_redis_call(r->loop->redis, api_cache_timeout_ms(r->loop), NULL, NULL, call.argc,
                             call.argv, NULL);
}
