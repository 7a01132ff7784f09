/*
 * Bearer tokens: "Authorization: Bearer usher_..." is hashed, looked up in
 * a small per-thread cache, else in api_tokens (one statement), and the
 * stored hash compared in constant time. A verified token is cached for
 * api.token_cache_ms; a revocation (usherctl token revoke, or an admin's
 * POST /v1/admin/tokens/{id}/revoke) also NOTIFYs USHER_TOKENS_CHANNEL
 * (platform/token.h), on which every loop empties its cache, so it takes
 * effect at once (within token_cache_ms if the notification is missed, e.g.
 * while the loop's database connections are down). A lookup that finds the
 * token's last_used_at more than a minute old sets it, fire and forget.
 */
#ifndef USHER_API_AUTH_H
#define USHER_API_AUTH_H

#include <stddef.h>

#include "error.h"
#include "request.h"

USHER_MUSTCHECK api_token_cache *api_token_cache_new(void);
void api_token_cache_free(api_token_cache *cache);
/* Forgets every cached token (a token was revoked). */
void api_token_cache_clear(api_token_cache *cache);

/*
 * A token was revoked by this process: every loop's cache forgets what it
 * holds before its next lookup, so no loop accepts the token once the
 * revocation is answered (other processes hear the NOTIFY).
 */
void api_token_revoked(api_server *srv);

/*
 * Fills r->auth from the request's token, then calls next(r). No token:
 * r->auth.role stays NONE and next runs at once. A malformed, unknown or
 * revoked token is answered 401 here (next is not called), as is a
 * database that cannot be asked (503).
 */
void api_authenticate(api_req *r, void (*next)(api_req *r));

/*
 * The token of an Authorization header h ("Bearer TOKEN", the scheme in any
 * case, spaces around the token ignored): a pointer into h, its length in
 * *len. NULL when h is NULL (no token); a length of 0 for any other scheme
 * or an empty token (a 401).
 */
const char *api_bearer_token(const char *h, size_t *len);

#endif
