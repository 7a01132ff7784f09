/*
 * Tokens and organizers for admins (issue 15), what usherctl does, through
 * the API: POST /v1/admin/tokens makes a token and answers its text once
 * (only its hash is stored, as usherctl stores it), GET lists them (never
 * the secret: id, role, scope, name, created, last used, revoked) or reads
 * one, POST /v1/admin/tokens/{id}/revoke revokes one (every loop of every
 * usher-api forgets it at once, by the NOTIFY the statement sends);
 * organizers are created, listed and read the same way. Every write is one
 * statement of platform/token.h that also records it in audit_log with the
 * row before and after. Admins only (the route table answers 403 to
 * anyone else).
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "../audit.h"
#include "../auth.h"
#include "../validate.h"
#include "alloc.h"
#include "inttext.h"
#include "routes.h"
#include "reply.h"
#include "query.h"
#include "token.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX     1000

static const char *const roles[] = { "admin", "organizer", "scanner", NULL };

/*
 * The scope a token of role takes: an organizer for organizer and scanner
 * tokens (required), an event for a scanner only (optional), nothing for an
 * admin. False when answered 422.
 */
static bool read_scope(api_req *r, const char *role, int64_t *organizer, int64_t *event)
{
    bool admin = strcmp(role, "admin") == 0, scanner = strcmp(role, "scanner") == 0;

    if (!api_get_int(r, "organizer_id", !admin, 1, INT64_MAX, organizer) ||
        !api_get_int(r, "event_id", false, 1, INT64_MAX, event))
        return false;
    if (admin && *organizer != 0) {
        api_reply_invalid(r, "organizer_id", "an admin token belongs to no organizer");
        return false;
    }
    if (!scanner && *event != 0) {
        api_reply_invalid(r, "event_id", "only a scanner token is narrowed to an event");
        return false;
    }
    return true;
}

typedef struct new_token {
    char text[USHER_TOKEN_MAX];
} new_token;

/* The secret leaves memory once answered. */
static void forget(new_token *t)
{
    sodium_memzero(t, sizeof(*t));
    free(t);
}

static void token_created(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    new_token *t = r->state;
    const char *status;
    json_t *body;

    r->state = NULL;
    if (api_result_ok(r, res, errmsg)) {
        status = PQgetvalue(res, 0, 0);
        if (strcmp(status, "no_organizer") == 0) {
            api_reply_invalid(r, "organizer_id", "no such organizer");
        } else if (strcmp(status, "no_event") == 0) {
            api_reply_invalid(r, "event_id", "no such event of the organizer");
        } else if ((body = json_loads(PQgetvalue(res, 0, 1), 0, NULL)) == NULL ||
                   json_object_set_new(body, "token", json_string(t->text)) != 0) {
            json_decref(body);
            api_reply_error(r, 500, "internal", "out of memory");
        } else {
            api_add_header(r, "Cache-Control", "no-store");
            api_reply_json(r, 201, body);
        }
    }
    forget(t);
}

void route_admin_token_create(api_req *r)
{
    const char *role = NULL, *name = "";
    int64_t organizer = 0, event = 0;
    char hash[USHER_TOKEN_HASH_PARAM_MAX], org[USHER_INT_TEXT_MAX], ev[USHER_INT_TEXT_MAX],
        actor[API_AUDIT_ACTOR_MAX];
    new_token *t;

    if (!api_get_enum(r, "role", true, roles, &role) || !read_scope(r, role, &organizer, &event) ||
        !api_get_string(r, "name", false, 0, 200, &name))
        return;
    t = usher_calloc(1, sizeof(*t));
    if (usher_token_generate(t->text, hash) != USHER_OK) {
        free(t);
        api_reply_error(r, 500, "internal", "libsodium failed to initialise");
        return;
    }
    r->audited = true;
    r->state = t;
    const char *params[] = { hash,
                             role,
                             api_id_text(organizer, org),
                             api_id_text(event, ev),
                             name,
                             api_audit_actor(r, actor) };

    if (!api_query(r, usher_token_create_sql, 6, params, token_created))
        forget(t);
}

static void token_revoked(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    const char *status;
    json_t *body;

    if (!api_result_ok(r, res, errmsg))
        return;
    status = PQgetvalue(res, 0, 0);
    if (strcmp(status, "not_found") == 0) {
        api_reply_error(r, 404, "not_found", "no such token");
        return;
    }
    /* Every loop here forgets it now; other processes when the NOTIFY reaches them. */
    api_token_revoked(r->loop->srv);
    body = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    if (body == NULL ||
        json_object_set_new(body, "changed", json_boolean(strcmp(status, "revoked") == 0)) != 0) {
        json_decref(body);
        api_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    api_reply_json(r, 200, body);
}

void route_admin_token_revoke(api_req *r)
{
    char id[USHER_INT_TEXT_MAX], actor[API_AUDIT_ACTOR_MAX];
    const char *params[] = { api_id_text(r->ids[0], id), api_audit_actor(r, actor) };

    r->audited = true;
    api_query(r, usher_token_revoke_sql, 2, params, token_revoked);
}

static void got_token(PGresult *res, const char *errmsg, void *arg)
{
    api_reply_row(arg, res, errmsg, 200, "token");
}

void route_admin_token_get(api_req *r)
{
    char id[USHER_INT_TEXT_MAX];
    const char *params[] = { api_id_text(r->ids[0], id) };

    api_query(r, "SELECT usher_token_json(t)::text FROM api_tokens t WHERE t.id = $1", 1, params,
              got_token);
}

static void listed(PGresult *res, const char *errmsg, void *arg)
{
    api_reply_row(arg, res, errmsg, 200, "list");
}

void route_admin_token_list(api_req *r)
{
    static const char *const booleans[] = { "true", "false", NULL };
    const char *role = NULL, *revoked = NULL;
    int64_t organizer = 0, cursor = 0, limit = PAGE_DEFAULT;
    char org[USHER_INT_TEXT_MAX], cur[USHER_INT_TEXT_MAX], lim[USHER_INT_TEXT_MAX];

    if (!api_query_word(r, "role", roles, &role) ||
        !api_query_word(r, "revoked", booleans, &revoked) ||
        !api_query_whole(r, "organizer_id", 1, INT64_MAX, &organizer) ||
        !api_query_whole(r, "cursor", 1, INT64_MAX, &cursor) ||
        !api_query_whole(r, "limit", 1, PAGE_MAX, &limit))
        return;
    const char *params[] = { role, api_id_text(organizer, org), revoked, api_id_text(cursor, cur),
                             usher_int_text(limit, lim) };

    api_query(r, usher_token_list_sql, 5, params, listed);
}

static void organizer_created(PGresult *res, const char *errmsg, void *arg)
{
    api_reply_row(arg, res, errmsg, 201, "organizer");
}

void route_admin_organizer_create(api_req *r)
{
    const char *name = NULL;
    char actor[API_AUDIT_ACTOR_MAX];

    if (!api_get_string(r, "name", true, 1, 200, &name))
        return;
    r->audited = true;
    const char *params[] = { name, api_audit_actor(r, actor) };

    api_query(r, usher_organizer_create_sql, 2, params, organizer_created);
}

void route_admin_organizer_list(api_req *r)
{
    int64_t cursor = 0, limit = PAGE_DEFAULT;
    char cur[USHER_INT_TEXT_MAX], lim[USHER_INT_TEXT_MAX];

    if (!api_query_whole(r, "cursor", 1, INT64_MAX, &cursor) ||
        !api_query_whole(r, "limit", 1, PAGE_MAX, &limit))
        return;
    const char *params[] = { api_id_text(cursor, cur), usher_int_text(limit, lim) };

    api_query(r, usher_organizer_list_sql, 2, params, listed);
}

static void got_organizer(PGresult *res, const char *errmsg, void *arg)
{
    api_reply_row(arg, res, errmsg, 200, "organizer");
}

void route_admin_organizer_get(api_req *r)
{
    char id[USHER_INT_TEXT_MAX];
    const char *params[] = { api_id_text(r->ids[0], id) };

    api_query(r, "SELECT usher_organizer_json(o)::text FROM organizers o WHERE o.id = $1", 1,
              params, got_organizer);
}
