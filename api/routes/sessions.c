/*
 * Sessions of an event: the organizer's create and update, the public list
 * and details (with the session's uploaded materials, whose download is
 * access-controlled by GET /v1/content/{id}). An organizer touching
 * another organizer's event gets 404, as if it were absent. Every change
 * enqueues a search-index update (index.document, type "session") in the
 * same statement, and wakes the index queue once it committed. The public
 * list and details may be read from a replica (api/replica.h). The access
 * check of a ticket holder lives in session_access.c.
 */
#include <stdlib.h>
#include <string.h>

#include "../audit.h"
#include "../jobs.h"
#include "../validate.h"
#include "../wake_after_commit.h"
#include "alloc.h"
#include "inttext.h"
#include "messages.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

#define ABSTRACT_MAX 5000

/* The session as JSON with its materials (documents of kind 'content'). */
#define SESSION_JSON                                                                              \
    "json_build_object('id', s.id, 'event_id', s.event_id, 'title', s.title,"                     \
    " 'abstract', s.abstract, 'speakers', to_json(s.speakers), 'starts_at', s.starts_at,"         \
    " 'ends_at', s.ends_at, 'capacity', s.capacity, 'created_at', s.created_at,"                  \
    " 'cancelled_at', s.cancelled_at,"                                                            \
    " 'content', coalesce((SELECT json_agg(json_build_object('id', d.id, 'filename', d.filename," \
    "   'content_type', d.content_type, 'size', d.size, 'sha256', d.sha256) ORDER BY d.id)"       \
    "  FROM documents d WHERE d.session_id = s.id AND d.kind = 'content'), '[]'::json))"

/* The speakers array (already checked) as a text[] literal's JSON source. */
#define SPEAKERS_SQL(n) "ARRAY(SELECT jsonb_array_elements_text(" n "::jsonb))"

/* A session written (one row) enqueued its index job silently: wake the index queue. */
static void wake_indexer(api_req *r, const PGresult *res)
{
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        api_wake_kind(r->loop, "index.document");
}

static void created(PGresult *res, const char *errmsg, void *arg)
{
    wake_indexer(arg, res);
    api_reply_row(arg, res, errmsg, 201, "event");
}

static void updated(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;

    wake_indexer(arg, res);
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        api_wake_kind(r->loop, "message.fanout");
    api_reply_row(arg, res, errmsg, 200, "session");
}

static void got_session(PGresult *res, const char *errmsg, void *arg)
{
    api_reply_row(arg, res, errmsg, 200, "session");
}

static void listed(PGresult *res, const char *errmsg, void *arg)
{
    api_reply_row(arg, res, errmsg, 200, "event");
}

/* The abstract: free text where line breaks and tabs are welcome. */
static bool get_abstract(api_req *r, const char **out)
{
    return api_get_text(r, "abstract", false, ABSTRACT_MAX, out);
}

typedef struct fields {
    const char *title, *abstract, *starts, *ends;
    char *speakers; /* JSON array text, or NULL */
    char capacity[USHER_INT_TEXT_MAX];
    bool has_capacity;
    char *jobs;   /* the index.document template */
    char *fanout; /* the message.fanout template (update only) */
} fields;

static void fields_free(fields *f)
{
    free(f->speakers);
    free(f->jobs);
    free(f->fanout);
}

/* Reads and checks the body; create needs title and times. Answers on failure. */
static bool read_fields(api_req *r, bool create, fields *f)
{
    json_t *speakers = NULL;
    int64_t capacity = -1;

    memset(f, 0, sizeof(*f));
    if (!api_get_string(r, "title", create, 1, 300, &f->title) || !get_abstract(r, &f->abstract) ||
        !api_get_strings(r, "speakers", false, 20, 200, &speakers) ||
        !api_get_time(r, "starts_at", create, &f->starts) ||
        !api_get_time(r, "ends_at", create, &f->ends) ||
        !api_get_int(r, "capacity", false, 0, 2147483647, &capacity))
        return false;
    if (f->starts != NULL && f->ends != NULL && api_ends_before_start(f->starts, f->ends)) {
        api_reply_invalid(r, "ends_at", "ends_at must not be before starts_at");
        return false;
    }
    f->has_capacity = capacity >= 0;
    usher_int_text(capacity, f->capacity);
    f->jobs = api_index_job(r, "session");
    if (!create)
        f->fanout = api_fanout_template(r);
    if (speakers != NULL)
        f->speakers = usher_need(json_dumps(speakers, JSON_COMPACT));
    if (f->jobs == NULL || (!create && f->fanout == NULL)) {
        fields_free(f);
        api_reply_error(r, 500, "internal", "out of memory");
        return false;
    }
    return true;
}

void route_session_create(api_req *r)
{
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX];
    fields f;

    if (!read_fields(r, true, &f))
        return;
    const char *params[] = { api_id_text(r->ids[0], id),
                             api_scope_org(r, org),
                             f.title,
                             f.abstract != NULL ? f.abstract : "",
                             f.speakers != NULL ? f.speakers : "[]",
                             f.starts,
                             f.ends,
                             f.has_capacity ? f.capacity : NULL,
                             f.jobs };

    api_query(
        r,
        "WITH ins AS (INSERT INTO sessions (event_id, title, abstract, speakers, starts_at,"
        "  ends_at, capacity)"
        "  SELECT e.id, $3, $4, " SPEAKERS_SQL(
            "$5") ", $6, $7, $8::int FROM events e"
                  "  WHERE e.id = $1 AND ($2::bigint IS NULL OR e.organizer_id = $2) RETURNING *),"
                  " idx AS (SELECT usher_enqueue_templates($9::jsonb, ins.id) FROM ins)"
                  " SELECT " SESSION_JSON "::text FROM ins s WHERE (SELECT count(*) FROM idx) >= 0",
        9, params, created);
    fields_free(&f);
}

void route_session_update(api_req *r)
{
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], actor[API_AUDIT_ACTOR_MAX];
    fields f;

    r->audited = true;
    if (!read_fields(r, false, &f))
        return;
    const char *params[] = { api_id_text(r->ids[0], id),
                             api_scope_org(r, org),
                             f.title,
                             f.abstract,
                             f.speakers,
                             f.starts,
                             f.ends,
                             f.has_capacity ? f.capacity : NULL,
                             f.jobs,
                             api_audit_actor(r, actor),
                             f.fanout };

    /* The event of a session never changes, so cached access answers
     * (keyed by session and registration) stay right: nothing to drop.
     * The update joins old, which locks the row first: "before" is what it replaced. */
    api_query(r,
              "WITH old AS (SELECT o.id, to_jsonb(o) AS before FROM sessions o JOIN events e"
              "  ON e.id = o.event_id WHERE o.id = $1"
              "  AND ($2::bigint IS NULL OR e.organizer_id = $2) FOR UPDATE OF o),"
              " upd AS (UPDATE sessions s SET title = coalesce($3, s.title),"
              "  abstract = coalesce($4, s.abstract),"
              "  speakers = CASE WHEN $5::text IS NULL THEN s.speakers"
              "   ELSE " SPEAKERS_SQL(
                  "$5") " END,"
                        "  starts_at = coalesce($6::timestamptz, s.starts_at),"
                        "  ends_at = coalesce($7::timestamptz, s.ends_at),"
                        "  capacity = coalesce($8::int, s.capacity)"
                        "  FROM old WHERE s.id = old.id RETURNING s.*),"
                        " idx AS (SELECT usher_enqueue_templates($9::jsonb, upd.id) FROM upd),"
                        " aud AS (SELECT usher_audit($10::jsonb, 'session.update', 'session',"
                        "  upd.id, (SELECT before FROM old), to_jsonb(upd)) FROM upd),"
                        /* A change of times tells the attendees (0022_session_messages.sql). */
                        " msg AS (SELECT usher_session_message(upd.id, 'session_changed',"
                        "  $11::jsonb) FROM upd, old WHERE upd.cancelled_at IS NULL"
                        "  AND (upd.starts_at, upd.ends_at) IS DISTINCT FROM"
                        "  ((old.before->>'starts_at')::timestamptz,"
                        "   (old.before->>'ends_at')::timestamptz))"
                        " SELECT " SESSION_JSON "::text FROM upd s"
                        " WHERE (SELECT count(*) FROM idx) + (SELECT count(*) FROM aud)"
                        "  + (SELECT count(*) FROM msg) >= 0",
              11, params, updated);
    fields_free(&f);
}

void route_session_get(api_req *r)
{
    char id[USHER_INT_TEXT_MAX];
    const char *params[] = { api_id_text(r->ids[0], id) };

    api_query_read(r, "SELECT " SESSION_JSON "::text FROM sessions s WHERE s.id = $1", 1, params,
                   got_session);
}

void route_session_list(api_req *r)
{
    char id[USHER_INT_TEXT_MAX];
    const char *params[] = { api_id_text(r->ids[0], id) };

    api_query_read(r,
                   "SELECT json_build_object('sessions', coalesce((SELECT json_agg(" SESSION_JSON
                   " ORDER BY s.starts_at, s.id) FROM sessions s WHERE s.event_id = e.id),"
                   " '[]'::json))::text FROM events e WHERE e.id = $1",
                   1, params, listed);
}
