/*
 * The actor of an audited write (audit.h): the bearer token's id, its role
 * and, for an organizer, its organizer, as the statement's jsonb parameter;
 * and the record of a write whose route does not record it itself, made
 * when the request ends.
 */
#include "audit.h"

#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"
#include "log.h"
#include "pgpool.h"
#include "route.h"

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

static void recorded(PGresult *res, const char *errmsg, void *arg)
{
    (void)arg;
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
        usher_log(USHER_LOG_WARNING, "audit: a write was not recorded: %s",
                  errmsg != NULL ? errmsg : PQresultErrorMessage(res));
}

static bool is_write(const api_req *r, int status)
{
    return r->route != NULL && r->route->method != EVHTTP_REQ_GET && !r->audited && status >= 200 &&
           status < 300 &&
           (r->auth.role == USHER_ROLE_ADMIN || r->auth.role == USHER_ROLE_ORGANIZER);
}

void api_audit_request(const api_req *r, int status)
{
    char actor[API_AUDIT_ACTOR_MAX], action[160], id[USHER_INT_TEXT_MAX], *after;
    json_t *what;

    if (!is_write(r, status))
        return;
    snprintf(action, sizeof(action), "%s %s", api_method_name(r->route->method), r->route->pattern);
    what = json_pack("{s:i,s:s?,s:O?}", "status", status, "name",
                     r->name[0] != '\0' ? r->name : NULL, "request", r->body);
    after = what != NULL ? usher_need(json_dumps(what, JSON_COMPACT)) : NULL;
    json_decref(what);
    const char *params[] = { api_audit_actor(r, actor), action, r->route->pattern,
                             api_id_text(r->ids[0], id), after };

    if (after == NULL ||
        api_pgpool_query(r->loop->pg,
                         "SELECT usher_audit($1::jsonb, $2, $3, $4::bigint, NULL, $5::jsonb)", 5,
                         params, recorded, NULL) != USHER_OK)
        usher_log(USHER_LOG_WARNING, "audit: %s by token %lld was not recorded", action,
                  (long long)r->auth.token_id);
    free(after);
}
