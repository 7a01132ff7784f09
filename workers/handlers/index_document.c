/*
 * index.document: brings one event, session or attendee into the search
 * index, or takes it out, or several of one type ("ids": a registration
 * batch's sales share one job, schemas/migrations/0038). The row is read
 * fresh from the database, so an
 * update job always indexes the latest version (with the statements of
 * search/index_sources.c, which the rebuild shares), and a row that is gone
 * is deleted from the index. The writer is opened per batch (the jobs a child
 * holds) and closed, which commits once for all of them before any is
 * reported done. Xapian allows one writer per index: a child that finds the
 * lock taken waits a little (the holder's batch is short), then retries
 * the batch shortly rather than holding its jobs.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "index_sources.h"
#include "inttext.h"
#include "job_handlers.h"
#include "xapian_wrap.h"

#define LOCK_WAIT_MAX_MS     5000
#define INDEX_BUSY_SNOOZE_MS 1000 /* a busy index: when the job comes back */
#define IDS_MAX              1000 /* as the payload's schema allows */

/* One row's change, of the job at place job of the batch: its row (res, NULL until read) as a
 * document, or a delete. */
typedef struct change {
    size_t job;
    const usher_index_source *src;
    int64_t id;
    bool remove;
    PGresult *res;
    usher_index_doc doc;
} change;

/* The number of changes payload asks for: its ids, or one (a bad payload's too). */
static size_t payload_rows(json_t *payload)
{
    size_t n = json_array_size(json_object_get(payload, "ids"));

    return n > 0 && n <= IDS_MAX ? n : 1;
}

/*
 * Checks the payload of the batch's job at place job and appends its
 * changes to changes[*n] (payload_rows() of them); false (and r set to
 * PERMANENT, nothing appended) if it is bad.
 */
static bool parse(json_t *payload, size_t job, change *changes, size_t *n, usher_handler_result *r)
{
    const usher_index_source *src =
        usher_index_source_find(json_string_value(json_object_get(payload, "type")));
    json_t *ids;
    size_t count;

    if (!usher_payload_id_list(payload, "id", "ids", IDS_MAX, &ids, r))
        return false;
    count = ids != NULL ? json_array_size(ids) : 1;
    for (size_t i = 0; i < count; i++) {
        change *c = &changes[*n + i];

        *c = (change){ .job = job,
                       .src = src,
                       .id = (int64_t)json_integer_value(json_array_get(ids, i)),
                       .remove = json_is_true(json_object_get(payload, "delete")) };
        if (ids == NULL && (c->id = usher_payload_id(payload, "id", r)) == 0)
            return false;
    }
    if (src == NULL) {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT,
                           "payload.type must be \"event\", \"session\" or \"attendee\"");
        return false;
    }
    *n += count;
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
    err = usher_store_exec(st, c->src->one_sql, 1, params, &c->res);
    if (err != USHER_OK) {
        usher_handler_store_failed(r, st, err, "index.document");
        return false;
    }
    if (PQntuples(c->res) != 1) {
        c->remove = true;
        return true;
    }
    usher_index_doc_from_row(c->src, c->res, 0, &c->doc);
    return true;
}

/*
 * Sets r to an index failure: bad data is permanent, anything else a retry.
 * A busy index (another writer, such as `usherctl search rebuild`, which
 * may hold it for minutes) is a snooze: the job comes back in
 * INDEX_BUSY_SNOOZE_MS without spending an attempt, so a long rebuild
 * does not send the changes made meanwhile to the dead letters.
 */
static void index_failed(usher_err err, const char *errbuf, usher_handler_result *r)
{
    if (err == USHER_ERR_CONFLICT) {
        usher_handler_fail(r, USHER_OUTCOME_SNOOZE, "index busy: %s", errbuf);
        r->delay_ms = INDEX_BUSY_SNOOZE_MS;
    } else {
        usher_handler_fail(r,
                           err == USHER_ERR_INVALID || err == USHER_ERR_TOO_LARGE
                               ? USHER_OUTCOME_PERMANENT
                               : USHER_OUTCOME_RETRY,
                           "index: %s", errbuf);
    }
}

/*
 * Applies the changes of the jobs whose results are still OK under the
 * index's one writer, and commits once. A change that fails fails its own
 * job; failing to open or to commit fails every one of the njobs jobs that
 * had a change.
 */
static void apply(usher_handler_ctx *ctx, int budget_ms, change *changes, size_t n, size_t njobs,
                  usher_handler_result *results)
{
    usher_index *ix = NULL;
    char errbuf[512];
    const usher_config *cfg = usher_handler_config(ctx);
    usher_err err = usher_index_open_waiting(cfg->search_index_dir, cfg->search_language, budget_ms,
                                             &ix, errbuf, sizeof(errbuf));

    for (size_t i = 0; err == USHER_OK && i < n; i++) {
        change *c = &changes[i];
        usher_err one;

        if (results[c->job].outcome != USHER_OUTCOME_OK)
            continue;
        one = c->remove ? usher_index_delete(ix, c->doc.type, c->id, errbuf, sizeof(errbuf))
                        : usher_index_put(ix, &c->doc, errbuf, sizeof(errbuf));
        if (one != USHER_OK)
            index_failed(one, errbuf, &results[c->job]);
    }
    if (ix != NULL) {
        usher_err closed = usher_index_close(ix, errbuf, sizeof(errbuf));

        err = err != USHER_OK ? err : closed;
    }
    for (size_t i = 0; err != USHER_OK && i < njobs; i++) {
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
    usher_handler_result unreachable = { .outcome = USHER_OUTCOME_OK, .delay_ms = -1 };
    usher_store *st = NULL;
    size_t rows = 0, nchanges = 0;
    change *changes;
    bool any = false;

    for (size_t i = 0; i < n; i++)
        rows += payload_rows(payloads[i]);
    changes = usher_calloc(rows, sizeof(*changes)); /* never NULL: alloc.h */
    for (size_t i = 0; i < n; i++)
        any |= parse(payloads[i], i, changes, &nchanges, &results[i]);
    if (any && (st = usher_handler_store(ctx, &unreachable)) == NULL) {
        for (size_t i = 0; i < n; i++) {
            if (results[i].outcome == USHER_OUTCOME_OK)
                results[i] = unreachable;
        }
        free(changes);
        return;
    }
    any = false;
    for (size_t i = 0; i < nchanges; i++) {
        if (results[changes[i].job].outcome == USHER_OUTCOME_OK)
            any |= load(st, &changes[i], &results[changes[i].job]);
    }
    if (any)
        apply(ctx, lock_budget_ms(&jobs[0]), changes, nchanges, n, results);
    for (size_t i = 0; i < nchanges; i++)
        PQclear(changes[i].res);
    free(changes);
}

void usher_run_index_document(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                              usher_handler_result *r)
{
    usher_batch_index_document(ctx, job, &payload, 1, r);
}
