/*
 * Tokens: generation, hashing and the rows of api_tokens. The hash is
 * unkeyed BLAKE2b-256: tokens carry 256 bits of randomness, so there is
 * nothing to brute-force and no salt or slow hash is needed.
 */
#include "token.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

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

usher_err usher_token_generate(char token[USHER_TOKEN_MAX],
                               char hash_param[USHER_TOKEN_HASH_PARAM_MAX])
{
    unsigned char random[TOKEN_RANDOM], hash[USHER_TOKEN_HASH_BYTES];

    if (sodium_init() < 0)
        return USHER_ERR_SYSTEM;
    randombytes_buf(random, sizeof(random));
    memcpy(token, TOKEN_PREFIX, strlen(TOKEN_PREFIX));
    sodium_bin2base64(token + strlen(TOKEN_PREFIX), USHER_TOKEN_MAX - strlen(TOKEN_PREFIX), random,
                      sizeof(random), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(random, sizeof(random));
    usher_token_hash(token, strlen(token), hash);
    usher_token_hash_param(hash, hash_param);
    return USHER_OK;
}

const char usher_token_create_sql[] =
    "SELECT status, token::text FROM usher_token_create($1::bytea, $2::usher_role, $3::bigint,"
    " $4::bigint, $5, $6::jsonb)";

const char usher_token_revoke_sql[] =
    "SELECT status, token::text FROM usher_token_revoke($1::bigint, $2::jsonb)";

const char usher_organizer_create_sql[] = "SELECT usher_organizer_create($1, $2::jsonb)::text";

const char usher_token_list_sql[] =
    "SELECT json_build_object('tokens', coalesce(json_agg(usher_token_json(k) ORDER BY k.id DESC),"
    "  '[]'::json),"
    " 'next_cursor', CASE WHEN count(*) = $5::int THEN min(k.id) END)::text"
    " FROM (SELECT * FROM api_tokens t WHERE ($1::usher_role IS NULL OR t.role = $1)"
    "  AND ($2::bigint IS NULL OR t.organizer_id = $2)"
    "  AND ($3::boolean IS NULL OR (t.revoked_at IS NOT NULL) = $3)"
    "  AND ($4::bigint IS NULL OR t.id < $4) ORDER BY t.id DESC LIMIT $5::int) k";

const char usher_organizer_list_sql[] =
    "SELECT json_build_object('organizers',"
    "  coalesce(json_agg(usher_organizer_json(o) ORDER BY o.id), '[]'::json),"
    " 'next_cursor', CASE WHEN count(*) = $2::int THEN max(o.id) END)::text"
    " FROM (SELECT * FROM organizers x WHERE ($1::bigint IS NULL OR x.id > $1)"
    "  ORDER BY x.id LIMIT $2::int) o";

/* The id of a token or organizer JSON text. */
static int64_t json_id(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    int64_t id = json_is_integer(json_object_get(v, "id"))
                     ? (int64_t)json_integer_value(json_object_get(v, "id"))
                     : 0;

    json_decref(v);
    return id;
}

usher_err usher_token_create(usher_store *st, usher_role role, int64_t organizer_id,
                             int64_t event_id, const char *name, char token[USHER_TOKEN_MAX],
                             int64_t *id)
{
    char hash[USHER_TOKEN_HASH_PARAM_MAX], org[USHER_INT_TEXT_MAX], event[USHER_INT_TEXT_MAX];
    const char *params[] = { hash,
                             usher_role_name(role),
                             organizer_id > 0 ? usher_int_text(organizer_id, org) : NULL,
                             event_id > 0 ? usher_int_text(event_id, event) : NULL,
                             name != NULL ? name : "",
                             NULL };
    PGresult *res;
    usher_err err;

    if (role == USHER_ROLE_NONE)
        return usher_store_fail(st, USHER_ERR_INVALID, "role must be admin, organizer or scanner");
    if (role != USHER_ROLE_ADMIN && organizer_id <= 0)
        return usher_store_fail(st, USHER_ERR_INVALID, "a %s token needs --organizer ID",
                                usher_role_name(role));
    if (usher_token_generate(token, hash) != USHER_OK)
        return usher_store_fail(st, USHER_ERR_SYSTEM, "libsodium failed to initialise");
    err = usher_store_exec(st, usher_token_create_sql, 6, params, &res);
    if (err == USHER_OK && strcmp(PQgetvalue(res, 0, 0), "created") != 0)
        err = usher_store_fail(st, USHER_ERR_INVALID, "%s",
                               strcmp(PQgetvalue(res, 0, 0), "no_organizer") == 0
                                   ? "no such organizer"
                                   : "the event is not one of the organizer's");
    if (err != USHER_OK) {
        PQclear(res);
        sodium_memzero(token, USHER_TOKEN_MAX);
        return err;
    }
    *id = json_id(PQgetvalue(res, 0, 1));
    PQclear(res);
    return USHER_OK;
}

usher_err usher_token_revoke(usher_store *st, int64_t id)
{
    char text[USHER_INT_TEXT_MAX];
    const char *params[] = { usher_int_text(id, text), NULL };
    PGresult *res;
    usher_err err = usher_store_exec(st, usher_token_revoke_sql, 2, params, &res);

    if (err == USHER_OK && strcmp(PQgetvalue(res, 0, 0), "revoked") != 0)
        err = usher_store_fail(st, USHER_ERR_NOT_FOUND, "no live token %lld", (long long)id);
    PQclear(res);
    return err;
}

usher_err usher_organizer_create(usher_store *st, const char *name, int64_t *id)
{
    const char *params[] = { name, NULL };
    PGresult *res;
    usher_err err;

    if (name == NULL || name[0] == '\0' || strlen(name) > 800)
        return usher_store_fail(st, USHER_ERR_INVALID, "an organizer needs a name");
    err = usher_store_exec(st, usher_organizer_create_sql, 2, params, &res);
    if (err != USHER_OK)
        return err;
    *id = json_id(PQgetvalue(res, 0, 0));
    PQclear(res);
    return USHER_OK;
}
