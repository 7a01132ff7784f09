/*
 * The audit log (table audit_log, schemas/migrations/0014): every write an
 * organizer or admin makes through usher-api is recorded. A route whose
 * statement records it, in its transaction, with usher_audit(actor,
 * action, target, id, before, after) and the row before and after, sets
 * r->audited; for every other write (a non-GET route answered 2xx to an
 * organizer or admin) the request's end records the route, its ids and
 * the request body, after the commit (api_audit_request).
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

/*
 * At the end of a request answered status: records it (action "METHOD
 * pattern", target the pattern, target_id the first path id, after
 * {"status", "name", "request"}) when it is an organizer's or admin's
 * write that its route did not record itself. Fire and forget: a failure
 * is logged.
 */
void api_audit_request(const api_req *r, int status);

#endif
