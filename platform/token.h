/*
 * API bearer tokens and the organizers they belong to. A token is 32
 * random bytes, shown once as "usher_" + base64url; only its BLAKE2b hash
 * is stored, so the table alone grants nothing. usherctl creates them,
 * usher-api checks them (api/auth.c).
 */
#ifndef USHER_TOKEN_H
#define USHER_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

#define USHER_TOKEN_HASH_BYTES 32
#define USHER_TOKEN_MAX        64 /* the text form, with the NUL */

typedef enum usher_role {
    USHER_ROLE_NONE = 0, /* no token: public routes only */
    USHER_ROLE_ADMIN = 1,
    USHER_ROLE_ORGANIZER = 2,
    USHER_ROLE_SCANNER = 4,
} usher_role;

/* The role named name ("admin", "organizer", "scanner"), or USHER_ROLE_NONE. */
usher_role usher_role_parse(const char *name);
const char *usher_role_name(usher_role role);

/* The stored hash of a token's text (any length; a wrong token hashes to no row). */
void usher_token_hash(const char *token, size_t len, unsigned char hash[USHER_TOKEN_HASH_BYTES]);

/* The hash as \x-prefixed hex, the text form of a bytea parameter. */
#define USHER_TOKEN_HASH_PARAM_MAX (2 + 2 * USHER_TOKEN_HASH_BYTES + 1)
void usher_token_hash_param(const unsigned char hash[USHER_TOKEN_HASH_BYTES],
                            char out[USHER_TOKEN_HASH_PARAM_MAX]);

/*
 * Creates a token of role; organizer_id is required (> 0) unless role is
 * admin, event_id (> 0) narrows a scanner to one event, 0 = none. Writes
 * its text (shown once) into token.
 */
USHER_MUSTCHECK usher_err usher_token_create(usher_store *st, usher_role role, int64_t organizer_id,
                                             int64_t event_id, const char *name,
                                             char token[USHER_TOKEN_MAX], int64_t *id);

/* The channel a revocation NOTIFYs at commit (usher-api empties its token caches). */
#define USHER_TOKENS_CHANNEL "usher_tokens"

/* Revokes token id; USHER_ERR_NOT_FOUND if there is no such live token. */
USHER_MUSTCHECK usher_err usher_token_revoke(usher_store *st, int64_t id);

/* Creates an organizer; name is 1..200 characters. */
USHER_MUSTCHECK usher_err usher_organizer_create(usher_store *st, const char *name, int64_t *id);

#endif
