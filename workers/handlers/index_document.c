/*
 * index.document: brings one event, session or attendee into the search
 * index, or takes it out. The row is read fresh from the database, so an
 * update job always indexes the latest version, and a row that is gone is
 * deleted from the index. The writer is opened per job and closed (which
 * commits): Xapian allows one writer per index, so a child that finds the
 * lock taken retries shortly instead of waiting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job_handlers.h"
#include "xapian_wrap.h"

typedef struct source {
    const char *type;
    const char *sql; /* $1 = id -> id, event_id, title, body, speakers, name, email */
} source;

static const source sources[] = {
    { "event", "SELECT id, id, name, venue, '', '', '' FROM events WHERE id = $1" },
    { "session", "SELECT id, event_id, title, abstract, array_to_string(speakers, ', '), '', ''"
                 " FROM sessions WHERE id = $1" },
    { "attendee", "SELECT id, event_id, '', '', '', name, email FROM registrations"
                  " WHERE id = $1 AND status = 'confirmed'" },
};

static const source *find_source(const char *type)
{
    for (size_t i = 0; type != NULL && i < sizeof(sources) / sizeof(sources[0]); i++) {
        if (strcmp(sources[i].type, type) == 0)
            return &sources[i];
    }
    return NULL;
}

/* Applies a put (row found) or a delete (row gone) under the index's one writer. */
static void apply(usher_handler_ctx *ctx, const usher_index_doc *doc, bool remove,
                  usher_handler_result *r)
{
    const usher_config *cfg = usher_handler_config(ctx);
    usher_index *ix = NULL;
    char errbuf[512];
    usher_err err = usher_index_open_writer(cfg->search_index_dir, cfg->search_language, &ix,
                                            errbuf, sizeof(errbuf));

    if (err == USHER_OK)
        err = remove ? usher_index_delete(ix, doc->type, doc->id, errbuf, sizeof(errbuf))
                     : usher_index_put(ix, doc, errbuf, sizeof(errbuf));
    if (ix != NULL) {
        usher_err closed = usher_index_close(ix, errbuf, sizeof(errbuf));

        err = err != USHER_OK ? err : closed;
    }
    if (err == USHER_ERR_CONFLICT) {
        usher_handler_fail(r, USHER_OUTCOME_RETRY, "index busy: %s", errbuf);
        r->delay_ms = 200;
    } else if (err != USHER_OK) {
        usher_handler_fail(r,
                           err == USHER_ERR_INVALID || err == USHER_ERR_TOO_LARGE
                               ? USHER_OUTCOME_PERMANENT
                               : USHER_OUTCOME_RETRY,
                           "index: %s", errbuf);
    }
}

void usher_run_index_document(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                              usher_handler_result *r)
{
    const source *src = find_source(json_string_value(json_object_get(payload, "type")));
    int64_t id = usher_payload_id(payload, "id", r);
    char idtext[24];
    const char *params[] = { idtext };
    usher_index_doc doc = { 0 };
    usher_store *st;
    PGresult *res;
    usher_err err;

    (void)job;
    if (id == 0)
        return;
    if (src == NULL) {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT,
                           "payload.type must be \"event\", \"session\" or \"attendee\"");
        return;
    }
    if ((st = usher_handler_store(ctx, r)) == NULL)
        return;
    snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
    err = usher_store_exec(st, src->sql, 1, params, &res);
    if (err != USHER_OK) {
        usher_handler_store_failed(r, st, err, "index.document");
        return;
    }
    doc = (usher_index_doc){ .type = src->type, .id = id };
    if (PQntuples(res) == 1) {
        doc.event_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        doc.title = PQgetvalue(res, 0, 2);
        doc.body = PQgetvalue(res, 0, 3);
        doc.speakers = PQgetvalue(res, 0, 4);
        doc.name = PQgetvalue(res, 0, 5);
        doc.email = PQgetvalue(res, 0, 6);
    }
    apply(ctx, &doc, PQntuples(res) != 1 || json_is_true(json_object_get(payload, "delete")), r);
    PQclear(res);
}
