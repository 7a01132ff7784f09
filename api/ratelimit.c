#include "ratelimit.h"

#include <stdio.h>
#include <stdlib.h>

#include "cache.h"
#include "redis.h"

/*
 * KEYS: the buckets. ARGV: refill per ms, capacity. Takes one token from
 * every bucket only if each has one; returns {1, 0} or {0, ms to wait}.
 */
static const char script[] =
    "local rate, cap = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
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
    "  if wait == 0 then v = v - 1 end\n"
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
        char seconds[24];

        snprintf(seconds, sizeof(seconds), "%lld", (reply->element[1]->integer + 999) / 1000);
        api_add_header(r, "Retry-After", seconds);
        api_reply_error(r, 429, "rate_limited", "too many requests; retry after %s s", seconds);
        return;
    }
    next(r);
}

void api_rate_limit(api_req *r, void (*next)(api_req *r))
{
    int per_minute = r->loop->srv->cfg->api_rate_per_minute;
    double rate = per_minute / 60000.0;
    double capacity = per_minute / 6 > 10 ? per_minute / 6 : 10;
    char ip_key[128], token_key[64], rate_text[32], cap_text[32];
    const char *argv[] = { "EVAL", script, "2", ip_key, token_key, rate_text, cap_text };
    check *c;

    if (per_minute == 0) {
        next(r);
        return;
    }
    snprintf(ip_key, sizeof(ip_key), "usher:v1:rate:ip:%s", r->client);
    snprintf(token_key, sizeof(token_key), "usher:v1:rate:token:%lld", (long long)r->auth.token_id);
    snprintf(rate_text, sizeof(rate_text), "%.9f", rate);
    snprintf(cap_text, sizeof(cap_text), "%.0f", capacity);
    c = malloc(sizeof(*c));
    if (c == NULL) {
        next(r);
        return;
    }
    *c = (check){ r, next };
    /* Anonymous callers share no token bucket: only their address counts. */
    argv[2] = r->auth.token_id != 0 ? "2" : "1";
    if (r->auth.token_id == 0) {
        argv[4] = rate_text;
        argv[5] = cap_text;
    }
    if (!api_redis_call(r->loop->redis, API_CACHE_TIMEOUT_MS, answered, c,
                        r->auth.token_id != 0 ? 7 : 6, argv, NULL)) {
        free(c);
        next(r);
    }
}
