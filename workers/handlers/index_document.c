/*
 * index.document: brings one event, session or attendee into the search
 * index, or takes it out. The row is read fresh from the database, so an
 * update job always indexes the latest version, and a row that is gone is
 * deleted from the index. The writer is opened per batch (the jobs a child
 * holds) and closed, which commits once for all of them before any is
 * reported done. Xapian allows one writer per index: a child that finds the
 * lock taken waits a little (the holder's batch is short), then retries
 * the batch shortly rather than holding its jobs.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "inttext.h"
#include "job_handlers.h"
#include "xapian_wrap.h"

#define LOCK_WAIT_MAX_MS 5000

typedef struct source {
    const char *type;
    const char *sql; /* $1 = id -> id, event_id, title, body, speakers, name, email */
} source;

static const source sources[] = {
    { "event", "SELECT id, id, name, venue, '', '', '' FROM events WHERE id = $1" },
    /* A session's body: its abstract, then the file names of its materials. */
    { "session", "SELECT id, event_id, title,"
                 " concat_ws(' ', abstract, (SELECT string_agg(d.filename, ' ' ORDER BY d.id)"
                 "  FROM documents d WHERE d.session_id = sessions.id AND d.kind = 'content')),"
                 " array_to_string(speakers, ', '), '', '' FROM sessions WHERE id = $1" },
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

/* One job's change: its row (res, NULL until read) as a document, or a delete. */
typedef struct change {
    const source *src;
    int64_t id;
    bool remove;
    PGresult *res;
    usher_index_doc doc;
} change;

/* Checks the payload into *c; false (and r set to PERMANENT) if it is bad. */
static bool parse(json_t *payload, change *c, usher_handler_result *r)
{
    *c = (change){ .src = find_source(json_string_value(json_object_get(payload, "type"))) };
    if ((c->id = usher_payload_id(payload, "id", r)) == 0)
        return false;
    if (c->src == NULL) {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT,
                           "payload.type must be \"event\", \"session\" or \"attendee\"");
        return false;
    }
    c->remove = json_is_true(json_object_get(payload, "delete"));
    return true;
}

/* Reads c's row: a put when it is there (and not a delete), else a delete. */
static bool load(usher_store *st, change *c, usher_handler_result *r)
{
    char idtext[USHER_INT_TEXT_MAX];
    const char *params[] = { idtext };
    usher_err err;

    c->doc = (usher_index_doc){ .type = c->src->type, .id = c->id };
    if (c->remove)
        return true;
    usher_int_text(c->id, idtext);
    err = usher_store_exec(st, c->src->sql, 1, params, &c->res);
    if (err != USHER_OK) {
        usher_handler_store_failed(r, st, err, "index.document");
        return false;
    }
    if (PQntuples(c->res) != 1) {
        c->remove = true;
        return true;
    }
    c->doc.event_id = strtoll(PQgetvalue(c->res, 0, 1), NULL, 10);
    c->doc.title = PQgetvalue(c->res, 0, 2);
    c->doc.body = PQgetvalue(c->res, 0, 3);
    c->doc.speakers = PQgetvalue(c->res, 0, 4);
    c->doc.name = PQgetvalue(c->res, 0, 5);
    c->doc.email = PQgetvalue(c->res, 0, 6);
    return true;
}

/* Sets r to an index failure: a busy index retries soon, bad data is permanent. */
static void index_failed(usher_err err, const char *errbuf, usher_handler_result *r)
{
    if (err == USHER_ERR_CONFLICT) {
        usher_handler_fail(r, USHER_OUTCOME_RETRY, "index busy: %s", errbuf);
        r->delay_ms = 200;
    } else {
        usher_handler_fail(r,
                           err == USHER_ERR_INVALID || err == USHER_ERR_TOO_LARGE
                               ? USHER_OUTCOME_PERMANENT
                               : USHER_OUTCOME_RETRY,
                           "index: %s", errbuf);
    }
}

/*
 * Opens the writer, waiting up to budget_ms (backing off from 10 ms) while
 * another child holds it: its batch commits within milliseconds, and
 * waiting here is cheaper than failing a whole batch's attempts.
 */
static USHER_MUSTCHECK usher_err open_writer(const usher_config *cfg, int budget_ms,
                                             usher_index **ix, char *errbuf, size_t errlen)
{
    int waited = 0, pause_ms = 10;
    usher_err err;

    while ((err = usher_index_open_writer(cfg->search_index_dir, cfg->search_language, ix, errbuf,
                                          errlen)) == USHER_ERR_CONFLICT &&
           waited + pause_ms <= budget_ms) {
        struct timespec ts = { 0, (long)pause_ms * 1000000 };

        nanosleep(&ts, NULL);
        waited += pause_ms;
        pause_ms = pause_ms < 160 ? 2 * pause_ms : pause_ms;
    }
    return err;
}

/*
 * Applies the changes of the jobs whose results are still OK under the
 * index's one writer, and commits once. A change that fails fails its own
 * job; failing to open or to commit fails every job that had a change.
 */
static void apply(usher_handler_ctx *ctx, int budget_ms, change *changes, size_t n,
                  usher_handler_result *results)
{
    usher_index *ix = NULL;
    char errbuf[512];
    usher_err err = open_writer(usher_handler_config(ctx), budget_ms, &ix, errbuf, sizeof(errbuf));

    for (size_t i = 0; err == USHER_OK && i < n; i++) {
        change *c = &changes[i];
        usher_err one;

        if (results[i].outcome != USHER_OUTCOME_OK)
            continue;
        one = c->remove ? usher_index_delete(ix, c->doc.type, c->id, errbuf, sizeof(errbuf))
                        : usher_index_put(ix, &c->doc, errbuf, sizeof(errbuf));
        if (one != USHER_OK)
            index_failed(one, errbuf, &results[i]);
    }
    if (ix != NULL) {
        usher_err closed = usher_index_close(ix, errbuf, sizeof(errbuf));

        err = err != USHER_OK ? err : closed;
    }
    for (size_t i = 0; err != USHER_OK && i < n; i++) {
        if (results[i].outcome == USHER_OUTCOME_OK)
            index_failed(err, errbuf, &results[i]);
    }
}

/* How long a batch may wait for the index lock: a quarter of its timeout, at most 5 s. */
static int lock_budget_ms(const usher_job *first)
{
    return first->timeout_ms / 4 < LOCK_WAIT_MAX_MS ? first->timeout_ms / 4 : LOCK_WAIT_MAX_MS;
}

void usher_batch_index_document(usher_handler_ctx *ctx, const usher_job *jobs,
                                json_t *const *payloads, size_t n, usher_handler_result *results)
{
    change *changes = usher_calloc(n, sizeof(*changes));
    usher_handler_result unreachable = { .outcome = USHER_OUTCOME_OK, .delay_ms = -1 };
    usher_store *st = NULL;
    bool any = false;

    for (size_t i = 0; changes != NULL && i < n; i++)
        any |= parse(payloads[i], &changes[i], &results[i]);
    if (changes == NULL || (any && (st = usher_handler_store(ctx, &unreachable)) == NULL)) {
        for (size_t i = 0; i < n; i++) {
            if (results[i].outcome != USHER_OUTCOME_OK)
                continue;
            if (changes == NULL)
                usher_handler_fail(&results[i], USHER_OUTCOME_RETRY, "index.document: no memory");
            else
                results[i] = unreachable;
        }
        free(changes);
        return;
    }
    any = false;
    for (size_t i = 0; i < n; i++) {
        if (results[i].outcome == USHER_OUTCOME_OK)
            any |= load(st, &changes[i], &results[i]);
    }
    if (any)
        apply(ctx, lock_budget_ms(&jobs[0]), changes, n, results);
    for (size_t i = 0; i < n; i++)
        PQclear(changes[i].res);
    free(changes);
}

void usher_run_index_document(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                              usher_handler_result *r)
{
    usher_batch_index_document(ctx, job, &payload, 1, r);
}
