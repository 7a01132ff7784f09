/*
 * GET /v1/search?q=&type=&event_id=&offset=&limit=: the Xapian index
 * (search/xapian_wrap.h), or the replica of it that xapian-replicate keeps
 * on this host ([search] replica_dir), read on the offload pool because a
 * search reads the disk. Events and sessions are public; attendees are
 * personal data: only an organizer of the event (or an admin) may search
 * them, and only within one event. Hits are completed from PostgreSQL
 * (names, titles) in one statement, in the index's order, which a replica
 * may answer (the index itself lags more); the organizer's own event is
 * checked on the primary.
 */
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../offload.h"
#include "../validate.h"
#include "alloc.h"
#include "inttext.h"
#include "routes.h"
#include "xapian_wrap.h"
#include "reply.h"
#include "query.h"

#define DEFAULT_LIMIT 20

typedef struct search_job {
    api_req *r;
    /* inputs, copied: the worker must not touch the request */
    char dir[4096];
    char query[USHER_SEARCH_MAX_QUERY + 1];
    char types[64];
    int64_t event_id;
    size_t offset, limit;
    /* outputs */
    usher_err err;
    char errbuf[256];
    usher_search_hit hits[USHER_SEARCH_MAX_LIMIT];
    size_t nhits, total;
} search_job;

static void *open_reader(const void *dir, usher_err *err, char *why, size_t whylen)
{
    usher_search *s = NULL;

    *err = usher_search_open(dir, &s, why, whylen);
    return s;
}

static void close_reader(void *s)
{
    usher_search_close(s);
}

/* One reader per offload thread, reopened by the wrapper when the index changed. */
static const api_offload_slot readers = { open_reader, close_reader };

static void run_search(void *arg)
{
    search_job *j = arg;
    usher_search *s = api_offload_resource(&readers, j->dir, &j->err, j->errbuf, sizeof(j->errbuf));

    if (s == NULL)
        return;
    j->err = usher_search_query(s, j->query, j->types, j->event_id, j->offset, j->limit, j->hits,
                                &j->nhits, &j->total, j->errbuf, sizeof(j->errbuf));
}

static void enriched(PGresult *res, const char *errmsg, void *arg)
{
    api_reply_row(arg, res, errmsg, 200, "search result");
}

/* Back on the loop: say what went wrong, or complete the hits from the database. */
static void searched(void *arg)
{
    search_job *j = arg;
    api_req *r = j->r;
    json_t *hits = usher_need(json_array());
    char *hits_text = NULL, total[USHER_INT_TEXT_MAX], offset[USHER_INT_TEXT_MAX],
         limit[USHER_INT_TEXT_MAX];

    if (j->err != USHER_OK && j->err != USHER_ERR_NOT_FOUND) {
        if (j->err == USHER_ERR_INVALID || j->err == USHER_ERR_TOO_LARGE)
            api_reply_invalid(r, "q", "%s", j->errbuf);
        else
            api_reply_error(r, 503, "unavailable", "the search index cannot be read: %s",
                            j->errbuf);
        json_decref(hits);
        free(j);
        return;
    }
    /* No index yet (nothing indexed): no hits. */
    for (size_t i = 0; j->err == USHER_OK && i < j->nhits; i++)
        json_array_append_new(hits, json_pack("{s:I,s:s,s:I,s:I,s:f}", "ord", (json_int_t)i, "type",
                                              j->hits[i].type, "id", (json_int_t)j->hits[i].id,
                                              "event_id", (json_int_t)j->hits[i].event_id, "score",
                                              j->hits[i].score));
    hits_text = usher_need(json_dumps(hits, JSON_COMPACT));
    json_decref(hits);
    usher_int_text(j->err == USHER_OK ? j->total : 0, total);
    usher_int_text(j->offset, offset);
    usher_int_text(j->limit, limit);
    const char *params[] = { hits_text, j->query, total, offset, limit };

    api_query_read(r,
                   "SELECT json_build_object('query', $2::text, 'total', $3::bigint,"
                   " 'offset', $4::int, 'limit', $5::int,"
                   " 'hits', coalesce(json_agg(json_build_object('type', h.type, 'id', h.id,"
                   "  'event_id', h.event_id, 'score', h.score, 'doc', CASE h.type"
                   "  WHEN 'event' THEN (SELECT json_build_object('name', e.name, 'venue', e.venue,"
                   "   'starts_at', e.starts_at) FROM events e WHERE e.id = h.id)"
                   "  WHEN 'session' THEN (SELECT json_build_object('title', s.title,"
                   "   'speakers', s.speakers, 'starts_at', s.starts_at) FROM sessions s"
                   "   WHERE s.id = h.id)"
                   "  WHEN 'attendee' THEN (SELECT json_build_object('name', g.name,"
                   "   'email', g.email) FROM registrations g WHERE g.id = h.id) END)"
                   "  ORDER BY h.ord), '[]'::json))::text"
                   " FROM jsonb_to_recordset($1::jsonb)"
                   "  AS h(ord int, type text, id bigint, event_id bigint, score float8)",
                   5, params, enriched);
    free(hits_text);
    free(j); /* after the statement copied its parameters */
}

/* Reads and checks the query parameters into j; false once answered. */
static bool read_params(api_req *r, search_job *j, const char *query, const char *type,
                        const char *event, const char *offset, const char *limit, bool *attendees)
{
    int64_t v;
    size_t len = query != NULL ? strlen(query) : 0;

    if (query == NULL || len == 0 || len > USHER_SEARCH_MAX_QUERY ||
        api_text_chars(query, len) == (size_t)-1) {
        api_reply_invalid(r, "q", "q must be 1 to %d bytes of text", USHER_SEARCH_MAX_QUERY);
        return false;
    }
    memcpy(j->query, query, len + 1);
    if (type == NULL)
        type = "event,session";
    if (strcmp(type, "event") != 0 && strcmp(type, "session") != 0 &&
        strcmp(type, "attendee") != 0 && strcmp(type, "event,session") != 0) {
        api_reply_invalid(r, "type", "type must be event, session or attendee");
        return false;
    }
    snprintf(j->types, sizeof(j->types), "%s", type);
    if (event != NULL) {
        if (!api_parse_whole(event, 1, INT64_MAX, &v)) {
            api_reply_invalid(r, "event_id", "event_id must be a positive integer");
            return false;
        }
        j->event_id = v;
    }
    if (offset != NULL) {
        if (!api_parse_whole(offset, 0, USHER_SEARCH_MAX_OFFSET, &v)) {
            api_reply_invalid(r, "offset", "offset must be 0 to %d", USHER_SEARCH_MAX_OFFSET);
            return false;
        }
        j->offset = (size_t)v;
    }
    if (limit != NULL) {
        if (!api_parse_whole(limit, 1, USHER_SEARCH_MAX_LIMIT, &v)) {
            api_reply_invalid(r, "limit", "limit must be 1 to %d", USHER_SEARCH_MAX_LIMIT);
            return false;
        }
        j->limit = (size_t)v;
    }
    *attendees = strcmp(type, "attendee") == 0;
    if (!*attendees)
        return true;
    if (r->auth.role == USHER_ROLE_NONE) {
        api_reply_error(r, 401, "unauthorized", "searching attendees needs an organizer token");
        return false;
    }
    if (r->auth.role == USHER_ROLE_SCANNER) {
        api_reply_error(r, 403, "forbidden", "the scanner role may not search attendees");
        return false;
    }
    if (j->event_id == 0) {
        api_reply_invalid(r, "event_id", "searching attendees needs event_id");
        return false;
    }
    return true;
}

static void start_search(api_req *r)
{
    search_job *j = r->state;

    r->state = NULL;
    if (!api_offload(r->loop, run_search, searched, j)) {
        free(j);
        api_reply_error(r, 503, "unavailable", "the server is too busy to search; retry");
    }
}

static void owner_checked(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    search_job *j = r->state;

    if (!api_result_ok(r, res, errmsg)) {
        free(j);
        return;
    }
    if (PQntuples(res) != 1) {
        free(j);
        r->state = NULL;
        api_reply_error(r, 404, "not_found", "no such event");
        return;
    }
    start_search(r);
}

void route_search(api_req *r)
{
    struct evkeyvalq q;
    const char *query, *type, *event, *offset, *limit;
    const usher_config *cfg = r->loop->srv->cfg;
    search_job *j;
    bool attendees = false;

    if (api_query_params(r, &q) != 0) {
        api_reply_error(r, 400, "bad_request", "the query string is malformed");
        return;
    }
    query = evhttp_find_header(&q, "q");
    type = evhttp_find_header(&q, "type");
    event = evhttp_find_header(&q, "event_id");
    offset = evhttp_find_header(&q, "offset");
    limit = evhttp_find_header(&q, "limit");
    j = usher_calloc(1, sizeof(*j));
    j->r = r;
    j->limit = DEFAULT_LIMIT;
    /* An API host of several reads its replica; a single host, the index itself. */
    snprintf(j->dir, sizeof(j->dir), "%s",
             cfg->search_replica_dir != NULL ? cfg->search_replica_dir : cfg->search_index_dir);
    if (!read_params(r, j, query, type, event, offset, limit, &attendees)) {
        evhttp_clear_headers(&q);
        free(j);
        return;
    }
    evhttp_clear_headers(&q);
    if (!attendees || r->auth.role == USHER_ROLE_ADMIN) {
        r->state = j;
        start_search(r);
        return;
    }
    /* An organizer searches the attendees of its own event only. */
    char event_text[USHER_INT_TEXT_MAX], org_text[USHER_INT_TEXT_MAX];
    const char *params[] = { api_id_text(j->event_id, event_text),
                             api_id_text(r->auth.organizer_id, org_text) };

    r->state = j;
    if (!api_query(r, "SELECT 1 FROM events WHERE id = $1 AND organizer_id = $2", 2, params,
                   owner_checked))
        free(j);
}
