/*
 * The actor of an audited write (audit.h): the bearer token's id, its role
 * and, for an organizer, its organizer, as the statement's jsonb parameter.
 */
#include "audit.h"

#include <stdio.h>

const char *api_audit_actor(const api_req *r, char out[API_AUDIT_ACTOR_MAX])
{
    if (r->auth.role == USHER_ROLE_ADMIN)
        snprintf(out, API_AUDIT_ACTOR_MAX, "{\"token_id\":%lld,\"role\":\"admin\"}",
                 (long long)r->auth.token_id);
    else if (r->auth.role == USHER_ROLE_ORGANIZER)
        snprintf(out, API_AUDIT_ACTOR_MAX,
                 "{\"token_id\":%lld,\"role\":\"organizer\",\"organizer_id\":%lld}",
                 (long long)r->auth.token_id, (long long)r->auth.organizer_id);
    else
        return NULL;
    return out;
}
