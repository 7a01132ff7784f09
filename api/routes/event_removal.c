/*
 * Taking back what an organizer made (issue 15): DELETE /v1/events/{id}
 * for an event that never sold a ticket (409 event_has_sales otherwise:
 * cancel it instead), DELETE /v1/sessions/{id} while its event has no
 * registrations (409 session_in_use otherwise), and POST
 * /v1/sessions/{id}/cancel, after which the session's door refuses every
 * ticket (reason session_cancelled). One statement each
 * (schemas/migrations/0015), which also takes the rows out of the search
 * index and audits the change. An organizer reaches only its own events'
 * (another's answers 404); admins every one.
 *
 * A cancelled session's cached door answers are deleted from Redis before
 * the caller hears 200, so no cached "yes" outlives the answer. A door
 * read that was already in flight at the commit may still store its "yes"
 * after that; it lasts up to api.cache_access_ttl_s. The cancellation also
 * records a session_cancelled message (schemas/migrations/0022), whose
 * message.fanout jobs tell each confirmed attendee once, by email and inbox.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../audit.h"
#include "../jobs.h"
#include "../redis.h"
#include "../wake_after_commit.h"
#include "inttext.h"
#include "log.h"
#include "messages.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

/* Deletes every key matching ARGV[1]; returns how many. */
static const char drop_matching_script[] =
    "local cursor = '0' local n = 0"
    " repeat"
    "  local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)"
    "  cursor = r[1]"
    "  for _, k in ipairs(r[2]) do redis.call('DEL', k) n = n + 1 end"
    " until cursor == '0'"
    " return n";

#define DROP_TIMEOUT_MS 5000

static void event_deleted(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    const char *status;

    if (!api_result_ok(r, res, errmsg))
        return;
    status = PQgetvalue(res, 0, 0);
    if (strcmp(status, "not_found") == 0) {
        api_reply_error(r, 404, "not_found", "no such event");
        return;
    }
    if (strcmp(status, "has_sales") == 0) {
        api_reply_error(r, 409, "event_has_sales",
                        "this event has sold tickets and cannot be deleted: cancel it instead"
                        " (POST /v1/events/%lld/cancel)",
                        (long long)r->ids[0]);
        return;
    }
    api_event_cache_changed(r->loop, r->ids[0]);
    api_wake_kind(r->loop, "index.document");
    api_reply_json(r, 200, json_pack("{s:I,s:b}", "event_id", (json_int_t)r->ids[0], "deleted", 1));
}

void route_event_delete(api_req *r)
{
    r->audited = true;
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], actor[API_AUDIT_ACTOR_MAX];
    char *event_jobs = api_index_job(r, "event"), *session_jobs = api_index_job(r, "session");

    if (event_jobs == NULL || session_jobs == NULL) {
        free(event_jobs);
        free(session_jobs);
        api_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org),
                             api_audit_actor(r, actor), event_jobs, session_jobs };

    api_query(r, "SELECT status FROM usher_event_delete($1, $2, $3::jsonb, $4::jsonb, $5::jsonb)",
              5, params, event_deleted);
    free(event_jobs);
    free(session_jobs);
}

static void session_deleted(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    const char *status;

    if (!api_result_ok(r, res, errmsg))
        return;
    status = PQgetvalue(res, 0, 0);
    if (strcmp(status, "not_found") == 0) {
        api_reply_error(r, 404, "not_found", "no such session");
        return;
    }
    if (strcmp(status, "in_use") == 0) {
        api_reply_error(r, 409, "session_in_use",
                        "the session's event has registrations, whose holders may have been let"
                        " in: cancel the session instead (POST /v1/sessions/%lld/cancel)",
                        (long long)r->ids[0]);
        return;
    }
    api_wake_kind(r->loop, "index.document");
    api_reply_json(r, 200,
                   json_pack("{s:I,s:b}", "session_id", (json_int_t)r->ids[0], "deleted", 1));
}

/* Runs fn's statement on the session with the session index job as $4. */
/* sql's parameters: the session, scope, actor, index job, and with fanout the message.fanout
 * template. */
static void session_statement(api_req *r, const char *sql, bool fanout, usher_pg_result_fn done)
{
    r->audited = true;
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], actor[API_AUDIT_ACTOR_MAX];
    char *jobs = api_index_job(r, "session");
    char *fanout_job = fanout ? api_fanout_template(r) : NULL;

    if (jobs == NULL || (fanout && fanout_job == NULL)) {
        api_reply_error(r, 500, "internal", "out of memory");
        goto out;
    }
    const char *params[] = { api_id_text(r->ids[0], id), api_scope_org(r, org),
                             api_audit_actor(r, actor), jobs, fanout_job };

    api_query(r, sql, fanout ? 5 : 4, params, done);
out:
    free(jobs);
    free(fanout_job);
}

void route_session_delete(api_req *r)
{
    session_statement(r, "SELECT status FROM usher_session_delete($1, $2, $3::jsonb, $4::jsonb)",
                      false, session_deleted);
}

static void reply_cancelled(api_req *r, bool changed)
{
    api_reply_json(r, 200,
                   json_pack("{s:I,s:s,s:b}", "session_id", (json_int_t)r->ids[0], "status",
                             "cancelled", "changed", changed));
}

static void doors_dropped(redisReply *reply, void *arg)
{
    api_req *r = arg;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
        usher_log(USHER_LOG_WARNING,
                  "session %lld cancelled, but its cached door answers could not be dropped"
                  " (Redis down or slow): they expire by their TTL",
                  (long long)r->ids[0]);
    reply_cancelled(r, true);
}

static void session_cancelled(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    char pattern[API_CACHE_KEY_MAX + 2];
    const char *status;

    if (!api_result_ok(r, res, errmsg))
        return;
    status = PQgetvalue(res, 0, 0);
    if (strcmp(status, "not_found") == 0) {
        api_reply_error(r, 404, "not_found", "no such session");
        return;
    }
    if (strcmp(status, "already_cancelled") == 0) {
        reply_cancelled(r, false);
        return;
    }
    api_wake_kind(r->loop, "index.document");
    api_wake_kind(r->loop, "message.fanout");
    api_access_cache_key(r->ids[0], 0, pattern);
    pattern[strlen(pattern) - 1] = '*'; /* "usher:v1:access:S:0" -> "...:S:*" */
    const char *argv[] = { "EVAL", drop_matching_script, "0", pattern };

    if (!api_redis_call(r->loop->redis, DROP_TIMEOUT_MS, doors_dropped, r, 4, argv, NULL))
        doors_dropped(NULL, r);
}

void route_session_cancel(api_req *r)
{
    session_statement(r,
                      "SELECT status, event_id"
                      " FROM usher_session_cancel($1, $2, $3::jsonb, $4::jsonb, $5::jsonb)",
                      true, session_cancelled);
}
