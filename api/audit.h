/*
 * The audit log (table audit_log, schemas/migrations/0014): every write an
 * organizer or admin makes through usher-api is recorded by the statement
 * that makes it, in its transaction, with usher_audit(actor, action,
 * target, id, before, after). This gives a statement its actor parameter.
 */
#ifndef USHER_API_AUDIT_H
#define USHER_API_AUDIT_H

#include "request.h"

/* Room for the actor JSON: three fields, two of them 64-bit ids. */
#define API_AUDIT_ACTOR_MAX 128

/*
 * The request's actor as JSON text {"token_id", "role", "organizer_id"}
 * for a jsonb parameter, in out; NULL (nothing is recorded) when the
 * caller is neither an organizer nor an admin.
 */
const char *api_audit_actor(const api_req *r, char out[API_AUDIT_ACTOR_MAX]);

#endif
