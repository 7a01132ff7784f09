/*
 * GET /v1/admin/audit (admins only): the audit log, newest first, a page
 * at a time (cursor: the last id seen), filtered by the actor's organizer,
 * the action (e.g. ticket_type.update, or "POST /v1/reports/{id}" for a
 * write recorded by its route), the target and its id. Every organizer's
 * and admin's write through usher-api is there (api/audit.h).
 */
#include <string.h>

#include "../validate.h"
#include "inttext.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

#define AUDIT_PAGE_DEFAULT 100
#define AUDIT_PAGE_MAX     1000
#define AUDIT_WORD_MAX     160

/* A text query parameter of 1..AUDIT_WORD_MAX - 1 bytes into buf (absent: *out NULL). */
static bool text_param(api_req *r, const char *name, char buf[AUDIT_WORD_MAX], const char **out)
{
    int found = api_query_param(r, name, buf, AUDIT_WORD_MAX);

    *out = found == 1 && buf[0] != '\0' ? buf : NULL;
    if (found >= 0 && !(found == 1 && buf[0] == '\0'))
        return true;
    api_reply_invalid(r, name, "%s must be 1 to %d bytes", name, AUDIT_WORD_MAX - 1);
    return false;
}

static void listed(PGresult *res, const char *errmsg, void *arg)
{
    api_reply_row(arg, res, errmsg, 200, "audit log");
}

void route_admin_audit(api_req *r)
{
    int64_t cursor = 0, target_id = 0, organizer = 0, limit = AUDIT_PAGE_DEFAULT;
    char action_buf[AUDIT_WORD_MAX], target_buf[AUDIT_WORD_MAX], cur[USHER_INT_TEXT_MAX],
        tid[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], lim[USHER_INT_TEXT_MAX];
    const char *action = NULL, *target = NULL;

    if (!text_param(r, "action", action_buf, &action) ||
        !text_param(r, "target", target_buf, &target) ||
        !api_query_whole(r, "target_id", 1, INT64_MAX, &target_id) ||
        !api_query_whole(r, "organizer_id", 1, INT64_MAX, &organizer) ||
        !api_query_whole(r, "cursor", 1, INT64_MAX, &cursor) ||
        !api_query_whole(r, "limit", 1, AUDIT_PAGE_MAX, &limit))
        return;
    usher_int_text(limit, lim);
    const char *params[] = {
        api_id_text(cursor, cur),    action, target, api_id_text(target_id, tid),
        api_id_text(organizer, org), lim
    };

    api_query(r,
              "SELECT json_build_object('entries', coalesce(json_agg(json_build_object("
              "  'id', a.id, 'at', a.at, 'token_id', a.token_id, 'role', a.role,"
              "  'organizer_id', a.organizer_id, 'action', a.action, 'target', a.target,"
              "  'target_id', a.target_id, 'before', a.before, 'after', a.after)"
              "  ORDER BY a.id DESC), '[]'::json),"
              " 'next_cursor', CASE WHEN count(*) = $6::int THEN min(a.id) END)::text"
              " FROM (SELECT * FROM audit_log x WHERE ($1::bigint IS NULL OR x.id < $1)"
              "  AND ($2::text IS NULL OR x.action = $2) AND ($3::text IS NULL OR x.target = $3)"
              "  AND ($4::bigint IS NULL OR x.target_id = $4)"
              "  AND ($5::bigint IS NULL OR x.organizer_id = $5)"
              "  ORDER BY x.id DESC LIMIT $6::int) a",
              6, params, listed);
}
