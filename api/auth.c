#include "auth.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "log.h"
#include "pgpool.h"
#include "ratelimit.h"
#include "route.h"
#include "reply.h"
#include "query.h"

#define CACHE_SLOTS 1024 /* direct-mapped by hash: a collision just costs a lookup */

typedef struct cached_token {
    unsigned char hash[USHER_TOKEN_HASH_BYTES];
    api_auth auth;
    uint64_t expires_ns; /* 0 = empty slot */
} cached_token;

struct api_token_cache {
    cached_token slots[CACHE_SLOTS];
    uint64_t generation; /* bumped by every clear */
    unsigned epoch;      /* the server's token_epoch when this cache was last cleared for it */
};

typedef struct auth_step {
    void (*next)(api_req *r);
    unsigned char hash[USHER_TOKEN_HASH_BYTES];
    uint64_t generation; /* of the cache when the lookup was sent */
} auth_step;

api_token_cache *api_token_cache_new(void)
{
    return usher_calloc(1, sizeof(api_token_cache));
}

void api_token_cache_free(api_token_cache *cache)
{
    free(cache);
}

void api_token_cache_clear(api_token_cache *cache)
{
    memset(cache->slots, 0, sizeof(cache->slots));
    cache->generation++;
}

void api_token_revoked(api_server *srv)
{
    atomic_fetch_add(&srv->token_epoch, 1);
}

static cached_token *slot_of(api_token_cache *cache, const unsigned char *hash)
{
    uint32_t i;

    memcpy(&i, hash, sizeof(i));
    return &cache->slots[i % CACHE_SLOTS];
}

const char *api_bearer_token(const char *h, size_t *len)
{
    if (h == NULL)
        return NULL;
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        *len = 0;
        return h;
    }
    h += 7;
    while (*h == ' ')
        h++;
    *len = strlen(h);
    while (*len > 0 && h[*len - 1] == ' ')
        (*len)--;
    return h;
}

static void touched(PGresult *res, const char *errmsg, void *arg)
{
    (void)arg;
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
        usher_log(USHER_LOG_DEBUG, "auth: last_used_at not recorded: %s",
                  errmsg != NULL ? errmsg : PQresultErrorMessage(res));
}

/*
 * Records that token id (decimal text) was used: fire and forget, at most
 * about once a minute per token (the lookup says when), so a read never
 * waits for it and a read-only database only loses the record.
 */
static void touch(api_loop *loop, const char *id)
{
    const char *params[] = { id };

    if (api_pgpool_query(loop->pg, "UPDATE api_tokens SET last_used_at = now() WHERE id = $1", 1,
                         params, touched, NULL) != USHER_OK)
        usher_log(USHER_LOG_DEBUG, "auth: last_used_at of token %s not recorded", id);
}

static void looked_up(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    auth_step *step = r->state;
    void (*next)(api_req * r) = step->next;
    const api_server *srv = r->loop->srv;
    unsigned char stored[USHER_TOKEN_HASH_BYTES];
    size_t stored_len = 0;
    cached_token *slot;

    if (!api_result_ok(r, res, errmsg)) {
        free(step);
        return;
    }
    r->state = NULL;
    if (PQntuples(res) != 1 ||
        sodium_hex2bin(stored, sizeof(stored), PQgetvalue(res, 0, 1) + 2,
                       strlen(PQgetvalue(res, 0, 1) + 2), NULL, &stored_len, NULL) != 0 ||
        stored_len != sizeof(stored) || sodium_memcmp(stored, step->hash, sizeof(stored)) != 0) {
        free(step);
        api_rate_charge(r, API_RATE_AUTH);
        api_reply_error(r, 401, "unauthorized", "the token is unknown or revoked");
        return;
    }
    r->auth.token_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    r->auth.role = usher_role_parse(PQgetvalue(res, 0, 2));
    r->auth.organizer_id = PQgetisnull(res, 0, 3) ? 0 : strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    r->auth.event_id = PQgetisnull(res, 0, 4) ? 0 : strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    if (strcmp(PQgetvalue(res, 0, 5), "t") == 0)
        touch(r->loop, PQgetvalue(res, 0, 0));
    /* A revocation cleared the cache while this lookup was out: its answer
     * may predate the revocation, so it serves this request only. */
    if (step->generation == r->loop->tokens->generation) {
        slot = slot_of(r->loop->tokens, step->hash);
        memcpy(slot->hash, step->hash, sizeof(slot->hash));
        slot->auth = r->auth;
        slot->expires_ns = api_now_ns() + (uint64_t)srv->cfg->api_token_cache_ms * 1000000u;
    }
    free(step);
    next(r);
}

/* A token the loop has not cached: one query, once the auth rate limit allows it. */
static void look_up(api_req *r)
{
    static const char sql[] =
        "SELECT id, token_hash, role, organizer_id, event_id,"
        " coalesce(last_used_at < now() - interval '1 minute', true)"
        " FROM api_tokens WHERE token_hash = $1::bytea AND revoked_at IS NULL";
    auth_step *step = r->state;
    char param[USHER_TOKEN_HASH_PARAM_MAX];
    const char *params[] = { param };

    usher_token_hash_param(step->hash, param);
    if (!api_query(r, sql, 1, params, looked_up))
        free(step); /* r is answered and gone */
}

void api_authenticate(api_req *r, void (*next)(api_req *r))
{
    size_t len = 0;
    const char *token = api_bearer_token(api_header(r, "Authorization"), &len);
    auth_step *step;
    cached_token *slot;
    unsigned epoch;

    if (token == NULL) {
        next(r);
        return;
    }
    if (len == 0 || len >= USHER_TOKEN_MAX) {
        api_reply_error(r, 401, "unauthorized", "expected \"Authorization: Bearer TOKEN\"");
        return;
    }
    /* A revocation answered on any loop of this process holds here from now on. */
    epoch = atomic_load(&r->loop->srv->token_epoch);
    if (epoch != r->loop->tokens->epoch) {
        api_token_cache_clear(r->loop->tokens);
        r->loop->tokens->epoch = epoch;
    }
    step = usher_calloc(1, sizeof(*step));
    usher_token_hash(token, len, step->hash);
    slot = slot_of(r->loop->tokens, step->hash);
    if (slot->expires_ns > api_now_ns() &&
        sodium_memcmp(slot->hash, step->hash, sizeof(step->hash)) == 0) {
        r->auth = slot->auth;
        free(step);
        next(r);
        return;
    }
    step->next = next;
    step->generation = r->loop->tokens->generation;
    r->state = step;
    api_rate_limit(r, API_RATE_AUTH, look_up);
}
