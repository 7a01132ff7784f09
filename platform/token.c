/*
 * Tokens: generation, hashing and the rows of api_tokens. The hash is
 * unkeyed BLAKE2b-256: tokens carry 256 bits of randomness, so there is
 * nothing to brute-force and no salt or slow hash is needed.
 */
#include "token.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "inttext.h"

#define TOKEN_PREFIX "usher_"
#define TOKEN_RANDOM 32

static const char *const role_names[] = { "admin", "organizer", "scanner" };
static const usher_role roles[] = { USHER_ROLE_ADMIN, USHER_ROLE_ORGANIZER, USHER_ROLE_SCANNER };

usher_role usher_role_parse(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (strcmp(name, role_names[i]) == 0)
            return roles[i];
    }
    return USHER_ROLE_NONE;
}

const char *usher_role_name(usher_role role)
{
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (roles[i] == role)
            return role_names[i];
    }
    return "none";
}

void usher_token_hash(const char *token, size_t len, unsigned char hash[USHER_TOKEN_HASH_BYTES])
{
    crypto_generichash(hash, USHER_TOKEN_HASH_BYTES, (const unsigned char *)token, len, NULL, 0);
}

void usher_token_hash_param(const unsigned char hash[USHER_TOKEN_HASH_BYTES],
                            char out[USHER_TOKEN_HASH_PARAM_MAX])
{
    out[0] = '\\';
    out[1] = 'x';
    sodium_bin2hex(out + 2, USHER_TOKEN_HASH_PARAM_MAX - 2, hash, USHER_TOKEN_HASH_BYTES);
}

usher_err usher_token_create(usher_store *st, usher_role role, int64_t organizer_id,
                             int64_t event_id, const char *name, char token[USHER_TOKEN_MAX],
                             int64_t *id)
{
    unsigned char random[TOKEN_RANDOM], hash[USHER_TOKEN_HASH_BYTES];
    char hash_hex[USHER_TOKEN_HASH_PARAM_MAX], org[USHER_INT_TEXT_MAX], event[USHER_INT_TEXT_MAX];
    const char *params[] = { hash_hex, usher_role_name(role), organizer_id > 0 ? org : NULL,
                             event_id > 0 ? event : NULL, name != NULL ? name : "" };
    PGresult *res;
    usher_err err;

    if (role == USHER_ROLE_NONE)
        return usher_store_fail(st, USHER_ERR_INVALID, "role must be admin, organizer or scanner");
    if (role != USHER_ROLE_ADMIN && organizer_id <= 0)
        return usher_store_fail(st, USHER_ERR_INVALID, "a %s token needs --organizer ID",
                                usher_role_name(role));
    if (sodium_init() < 0)
        return usher_store_fail(st, USHER_ERR_SYSTEM, "libsodium failed to initialise");
    randombytes_buf(random, sizeof(random));
    memcpy(token, TOKEN_PREFIX, strlen(TOKEN_PREFIX));
    sodium_bin2base64(token + strlen(TOKEN_PREFIX), USHER_TOKEN_MAX - strlen(TOKEN_PREFIX), random,
                      sizeof(random), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    usher_token_hash(token, strlen(token), hash);
    usher_token_hash_param(hash, hash_hex);
    usher_int_text(organizer_id, org);
    usher_int_text(event_id, event);
    err = usher_store_exec(st,
                           "INSERT INTO api_tokens (token_hash, role, organizer_id, event_id, name)"
                           " VALUES ($1::bytea, $2::usher_role, $3, $4, $5) RETURNING id",
                           5, params, &res);
    sodium_memzero(random, sizeof(random));
    if (err != USHER_OK) {
        sodium_memzero(token, USHER_TOKEN_MAX);
        return err;
    }
    *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return USHER_OK;
}

/* The NOTIFY (at commit) empties usher-api's token caches at once (api/auth.h). */
static const char revoke_sql[] =
    "WITH r AS (UPDATE api_tokens SET revoked_at = now()"
    "  WHERE id = $1 AND revoked_at IS NULL RETURNING id),"
    " n AS (SELECT pg_notify('" USHER_TOKENS_CHANNEL "', r.id::text) FROM r)"
    " SELECT id FROM r WHERE (SELECT count(*) FROM n) >= 0";

usher_err usher_token_revoke(usher_store *st, int64_t id)
{
    PGresult *res;
    usher_err err = usher_store_exec_one(st, revoke_sql, id, "live token", &res);

    PQclear(res);
    return err;
}

usher_err usher_organizer_create(usher_store *st, const char *name, int64_t *id)
{
    const char *params[] = { name };
    PGresult *res;
    usher_err err;

    if (name == NULL || name[0] == '\0' || strlen(name) > 800)
        return usher_store_fail(st, USHER_ERR_INVALID, "an organizer needs a name");
    err = usher_store_exec(st, "INSERT INTO organizers (name) VALUES ($1) RETURNING id", 1, params,
                           &res);
    if (err != USHER_OK)
        return err;
    *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return USHER_OK;
}
