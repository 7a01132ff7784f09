/*
 * API bearer tokens and the organizers they belong to. A token is 32
 * random bytes, shown once as "usher_" + base64url; only its BLAKE2b hash
 * is stored, so the table alone grants nothing. usherctl and admins
 * through usher-api (api/routes/admin_tokens.c) create them, usher-api
 * checks them (api/auth.c).
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
 * A new token: its text (shown once) into token, and its hash as a bytea
 * parameter into hash_param. USHER_ERR_SYSTEM if libsodium cannot start.
 */
USHER_MUSTCHECK usher_err usher_token_generate(char token[USHER_TOKEN_MAX],
                                               char hash_param[USHER_TOKEN_HASH_PARAM_MAX]);

/*
 * The statements that create and revoke tokens and create organizers,
 * shared by usherctl and usher-api (schemas/migrations/0018). Each takes
 * an actor for the audit log as its last parameter (jsonb; NULL records
 * nothing) and answers one row:
 *   create: $1 hash, $2 role, $3 organizer (NULL), $4 event (NULL), $5 name
 *           -> status (created, no_organizer, no_event), token JSON
 *   revoke: $1 id -> status (revoked, already_revoked, not_found), token JSON
 *   organizer: $1 name -> organizer JSON
 * Token JSON never holds the secret or its hash.
 */
extern const char usher_token_create_sql[];
extern const char usher_token_revoke_sql[];
extern const char usher_organizer_create_sql[];

/*
 * Lists tokens, newest first: $1 role (NULL: any), $2 organizer (NULL:
 * any), $3 revoked (boolean; NULL: both), $4 cursor (ids below it; NULL:
 * from the newest), $5 limit. One row: {"tokens": [...], "next_cursor"}.
 */
extern const char usher_token_list_sql[];
/* Lists organizers by id: $1 cursor (ids above it; NULL: from the first), $2 limit. */
extern const char usher_organizer_list_sql[];

/*
 * Creates a token of role; organizer_id is required (> 0) unless role is
 * admin, event_id (> 0) narrows a scanner to one event, 0 = none. Writes
 * its text (shown once) into token. Not audited (usherctl's and tests').
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
