/*
 * POST /v1/events/{id}/registrations: usher_register()
 * (schemas/migrations/0007_api.sql, 0014, 0021) takes a seat, writes the
 * registration and enqueues its ticket PDF (which then emails it) and its
 * search-index entry in one transaction. A loop gathers the registrations
 * of one turn into one statement and one commit, usher_register_batch()
 * (0029_register_batch.sql), which also writes one analytics job per event
 * counting the batch's sales; each request still gets its own answer, and an
 * Idempotency-Key its replay; a cancelled event's registrations answer 410
 * and those of a ticket type whose stripes others hold (busy, 0031) are
 * sent again alone, without failing the rest. A batch that fails as a whole
 * (an event cancelled while it ran, a deadlock victim) is rolled back and
 * sent again one statement per request, so one request's error stays its
 * own. The ticket code is not stored: it is signed here from the ids the
 * statement returns.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../jobs.h"
#include "../loop_batch.h"
#include "../validate.h"
#include "../wake_after_commit.h"
#include "alloc.h"
#include "buf.h"
#include "inttext.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

#define IDEMPOTENCY_KEY_MAX 200
#define REQUEST_HASH_BYTES  16
#define REQUEST_HASH_HEX    (2 * REQUEST_HASH_BYTES + 1)

static bool plausible_email(const char *s)
{
    const char *at = strchr(s, '@');

    return at != NULL && at != s && strchr(at + 1, '@') == NULL && strchr(at + 1, '.') != NULL &&
           at[1] != '.' && s[strlen(s) - 1] != '.' && strpbrk(s, " \t\"<>(),;:\\[]") == NULL;
}

/* The header's key, or NULL (none); false when it is malformed (answered). */
static bool idempotency_key(api_req *r, const char **key)
{
    const char *k = api_header(r, "Idempotency-Key");
    size_t len = k != NULL ? strlen(k) : 0;

    *key = NULL;
    if (k == NULL)
        return true;
    for (size_t i = 0; i < len; i++) {
        if (k[i] <= 0x20 || k[i] >= 0x7f)
            len = 0;
    }
    if (len == 0 || len > IDEMPOTENCY_KEY_MAX) {
        api_reply_invalid(r, "Idempotency-Key",
                          "the Idempotency-Key header must be 1 to %d visible ASCII characters",
                          IDEMPOTENCY_KEY_MAX);
        return false;
    }
    *key = k;
    return true;
}

/* What the request asks for, hashed: a reused key must come with the same request. */
static void request_hash(int64_t event, int64_t ticket_type, const char *name, const char *email,
                         char hex[REQUEST_HASH_HEX])
{
    crypto_generichash_state st;
    unsigned char h[REQUEST_HASH_BYTES];
    char ids[2 * USHER_INT_TEXT_MAX + 2];

    snprintf(ids, sizeof(ids), "%lld/%lld/", (long long)event, (long long)ticket_type);
    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    crypto_generichash_update(&st, (const unsigned char *)ids, strlen(ids));
    crypto_generichash_update(&st, (const unsigned char *)name, strlen(name) + 1);
    crypto_generichash_update(&st, (const unsigned char *)email, strlen(email));
    crypto_generichash_final(&st, h, sizeof(h));
    sodium_bin2hex(hex, REQUEST_HASH_HEX, h, sizeof(h));
}

/* The jobs of one registration: its ticket (then its email) and its search entry. */
static json_t *ticket_job(const usher_config *cfg, const char *request_id)
{
    return api_job_template(cfg, "pdf.ticket", json_pack("{s:b}", "then_email", 1),
                            "registration_id", request_id);
}

static json_t *attendee_index_job(const usher_config *cfg, const char *request_id)
{
    return api_job_template(cfg, "index.document", json_pack("{s:s}", "type", "attendee"), "id",
                            request_id);
}

/*
 * job (taken) as a batch sends it: the statement's sales of a ticket type
 * share one job, their ids in its field (schemas/migrations/0038); a sale
 * that goes through usher_register (a key, or alone) still gets its own.
 * NULL out of memory.
 */
static json_t *gathered(json_t *job, const char *field)
{
    if (job != NULL && json_object_set_new(job, "gather", json_string(field)) != 0) {
        json_decref(job);
        return NULL;
    }
    return job;
}

/* The analytics job that counts the sales of event. */
static json_t *counted_job(api_req *r, int64_t event)
{
    return api_counted_job(
        r, json_pack("{s:I,s:s}", "event_id", (json_int_t)event, "metric", "registration"));
}

/*
 * The item's jobs (its ticket, its search entry, then the counted one) and
 * webhook template, as usher_register() takes them; false out of memory.
 */
static bool registration_jobs(api_req *r, int64_t event, json_t **jobs, json_t **hook)
{
    const usher_config *cfg = r->loop->srv->cfg;
    json_t *counted = counted_job(r, event);

    *jobs = usher_need(json_array());
    *hook = api_request_webhook(r);
    if (json_array_append_new(*jobs, ticket_job(cfg, r->request_id)) != 0 ||
        json_array_append_new(*jobs, attendee_index_job(cfg, r->request_id)) != 0 ||
        counted == NULL || *hook == NULL || json_array_extend(*jobs, counted) != 0) {
        json_decref(*jobs);
        json_decref(*hook);
        json_decref(counted);
        return false;
    }
    json_decref(counted);
    return true;
}

/*
 * The same for a batch, as JSON text a loop keeps: every registration's
 * templates are the same but for its request id, and building and freeing
 * them as JSON for each request cost more of usher-api's CPU than anything
 * else it does for a sale (bench/README.md, session 18). The texts are
 * remade when a reload publishes a new configuration (snapshots are never
 * freed, api/reload.c, so a pointer names one) and the counted job when
 * the event changes.
 */
struct api_register_texts {
    const usher_config *cfg;
    char *ticket, *index, *hook; /* without a request id, nor their closing brace */
    int64_t counted_event;
    char *counted; /* counted_event's counted job list */
    usher_buf tail;
};

void route_register_texts_free(api_register_texts *t)
{
    if (t == NULL)
        return;
    free(t->ticket);
    free(t->index);
    free(t->hook);
    free(t->counted);
    usher_buf_release(&t->tail);
    free(t);
}

/* An object's JSON text (taken) without its closing brace; NULL out of memory. */
static char *unclosed(char *text)
{
    size_t n = text != NULL ? strlen(text) : 0;

    if (n < 2 || text[n - 1] != '}') {
        free(text);
        return NULL;
    }
    text[n - 1] = '\0';
    return text;
}

/* The same of t (taken). */
static char *open_object(json_t *t)
{
    char *text = t != NULL ? json_dumps(t, JSON_COMPACT) : NULL;

    json_decref(t);
    return unclosed(text);
}

/* This loop's texts for r's registration for event; NULL out of memory. */
static api_register_texts *loop_texts(api_req *r, int64_t event)
{
    api_register_texts **slot = &r->loop->register_texts, *t = *slot;
    const usher_config *cfg = r->loop->srv->cfg;

    if (t != NULL && t->cfg != cfg) {
        route_register_texts_free(t);
        t = *slot = NULL;
    }
    if (t == NULL) {
        t = usher_calloc(1, sizeof(*t));
        t->cfg = cfg;
        t->ticket = open_object(gathered(ticket_job(cfg, NULL), "registration_ids"));
        t->index = open_object(gathered(attendee_index_job(cfg, NULL), "ids"));
        t->hook = unclosed(api_webhook_template(cfg));
        if (t->ticket == NULL || t->index == NULL || t->hook == NULL) {
            route_register_texts_free(t);
            return NULL;
        }
        *slot = t;
    }
    if (t->counted == NULL || t->counted_event != event) {
        json_t *counted = counted_job(r, event);

        free(t->counted);
        t->counted = counted != NULL ? json_dumps(counted, JSON_COMPACT) : NULL;
        t->counted_event = event;
        json_decref(counted);
        if (t->counted == NULL)
            return NULL;
    }
    return t;
}

static void append(usher_buf *b, const char *s)
{
    usher_buf_append(b, s, strlen(s));
}

/* A template's text closed with the request id rid ("" for none). */
static void append_closed(usher_buf *b, const char *open, const char *rid)
{
    append(b, open);
    if (rid[0] != '\0') {
        append(b, ",\"request_id\":\"");
        append(b, rid);
        append(b, "\"");
    }
    append(b, "}");
}

/*
 * What follows the item's own members in the batch: its jobs and webhook
 * template, with r's request id (which api_request_id() keeps to
 * characters JSON needs no escape for), as registration_jobs() makes them
 * but for the ticket and the search entry, which the statement's sales of
 * a ticket type share.
 * Appended piece by piece: formatting its ~700 bytes with printf (twice:
 * to measure, then to write) took 3.5% of usher-api's samples. The text is
 * t's, until the next call. NULL out of memory.
 */
static const char *batch_tail(api_req *r, int64_t event)
{
    api_register_texts *t = loop_texts(r, event);

    if (t == NULL)
        return NULL;
    t->tail.len = 0;
    append(&t->tail, ",\"jobs\":[");
    append_closed(&t->tail, t->ticket, r->request_id);
    append(&t->tail, ",");
    append_closed(&t->tail, t->index, r->request_id);
    append(&t->tail, "],\"counted\":");
    append(&t->tail, t->counted);
    append(&t->tail, ",\"hook\":");
    append_closed(&t->tail, t->hook, r->request_id);
    append(&t->tail, "}");
    return usher_buf_failed(&t->tail) ? NULL : usher_buf_str(&t->tail);
}

/* res failed with the SQLSTATE state. */
static bool failed_with(PGresult *res, const char *state)
{
    const char *got = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    return got != NULL && strcmp(got, state) == 0;
}

/* The answer to a registration for a cancelled event: 0017's trigger (UE410) or the batch's
 * event_cancelled status. */
static void reply_cancelled(api_req *r)
{
    api_reply_error(r, 410, "event_cancelled", "the event is cancelled");
}

/* The registration's answer from its row of usher_register or usher_register_batch: status,
 * registration_id, replayed from column first. */
static void registered_row(api_req *r, json_t *item, PGresult *res, int row, int first)
{
    int64_t event = (int64_t)json_integer_value(json_object_get(item, "event"));
    int64_t ticket_type = (int64_t)json_integer_value(json_object_get(item, "ticket_type"));
    const char *status = PQgetvalue(res, row, first);
    char code[USHER_TICKET_CODE_MAX];
    int64_t id;

    if (strcmp(status, "sold_out") == 0) {
        /* Availability reached zero: show it now, not after the TTL (once, not per refusal). */
        api_event_cache_sold_out(r->loop, event, ticket_type);
        api_reply_error(r, 409, "sold_out", "no seats are left for this ticket type");
        return;
    }
    if (strcmp(status, "sales_closed") == 0) {
        api_reply_error(r, 409, "sales_closed", "sales of this ticket type are closed");
        return;
    }
    if (strcmp(status, "event_cancelled") == 0) {
        reply_cancelled(r);
        return;
    }
    if (strcmp(status, "unknown_event") == 0) {
        api_reply_error(r, 404, "not_found", "no such event");
        return;
    }
    if (strcmp(status, "unknown_ticket_type") == 0) {
        api_reply_invalid(r, "ticket_type_id", "the event has no such ticket type");
        return;
    }
    if (strcmp(status, "idempotency_key_reused") == 0) {
        api_reply_error(r, 422, "idempotency_key_reused",
                        "this Idempotency-Key was used for a different request");
        return;
    }
    if (strcmp(status, "confirmed") != 0) {
        /* A status this binary does not know: the database is newer than it. */
        api_reply_error(r, 500, "internal", "unknown registration status %s", status);
        return;
    }
    id = strtoll(PQgetvalue(res, row, first + 1), NULL, 10);
    if (usher_ticket_sign(r->loop->srv->ticket_key, event, id, code, sizeof(code)) != USHER_OK) {
        api_reply_error(r, 500, "internal", "could not sign the ticket code");
        return;
    }
    if (strcmp(PQgetvalue(res, row, first + 2), "t") == 0) {
        api_add_header(r, "Idempotent-Replayed", "true");
    } else {
        api_wake_kind(r->loop, "pdf.ticket");
        api_wake_kind(r->loop, "analytics.rollup");
        api_wake_kind(r->loop, "index.document");
        api_wake_kind(r->loop, "notify.webhook");
    }
    api_add_header(r, "Cache-Control", "no-store");
    api_reply_json(r, 201,
                   json_pack("{s:I,s:I,s:I,s:s,s:s}", "registration_id", (json_int_t)id, "event_id",
                             (json_int_t)event, "ticket_type_id", (json_int_t)ticket_type,
                             "ticket_code", code, "status", "confirmed"));
}

/* The answer to one request sent on its own; r->state holds its item. */
static void registered_alone(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    json_t *item = r->state;

    r->state = NULL;
    if (failed_with(res, "UE410")) /* 0017_messages.sql's trigger */
        reply_cancelled(r);
    else if (failed_with(res, "UE503")) /* 0029: every stripe with seats taken for 2 s */
        api_reply_error(r, 503, "unavailable", "this ticket type is busy; try again");
    else if (api_result_ok(r, res, errmsg))
        registered_row(r, item, res, 0, 0);
    json_decref(item);
}

/* A field of item as a statement's text parameter: NULL for JSON null or a missing one. */
static const char *text_of(json_t *item, const char *field)
{
    return json_string_value(json_object_get(item, field));
}

/*
 * Sends item's registration on its own, as usher_register() with its
 * counted jobs among the others: the batch it was in failed as a whole, or
 * found its ticket type's stripes taken (busy).
 */
static void register_alone(api_req *r, json_t *item)
{
    int64_t event_id = (int64_t)json_integer_value(json_object_get(item, "event"));
    json_t *jobs, *hook;
    char event[USHER_INT_TEXT_MAX], tt[USHER_INT_TEXT_MAX], *jobs_text = NULL, *hook_text = NULL;

    if (registration_jobs(r, event_id, &jobs, &hook)) {
        jobs_text = json_dumps(jobs, JSON_COMPACT);
        hook_text = json_dumps(hook, JSON_COMPACT);
        json_decref(jobs);
        json_decref(hook);
    }
    if (jobs_text == NULL || hook_text == NULL) {
        api_reply_error(r, 500, "internal", "out of memory");
        free(jobs_text);
        free(hook_text);
        return;
    }
    const char *params[] = {
        usher_int_text(event_id, event),
        usher_int_text(json_integer_value(json_object_get(item, "ticket_type")), tt),
        text_of(item, "name"),
        text_of(item, "email"),
        jobs_text,
        text_of(item, "scope"),
        text_of(item, "key"),
        text_of(item, "hash"),
        hook_text,
        text_of(item, "locale"),
    };

    r->state = json_incref(item);
    if (!api_query(r,
                   "SELECT status, registration_id, replayed"
                   " FROM usher_register($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9::jsonb, $10)",
                   10, params, registered_alone))
        json_decref(item); /* r was answered (503) and is gone */
    free(jobs_text);
    free(hook_text);
}

/*
 * A row of usher_register_batch. A busy item (0031: its ticket type's
 * stripes were all held by others) goes alone, where it waits for a stripe
 * as a lone registration does (2 s at most, then 503).
 */
static void batch_row(api_req *r, json_t *item, PGresult *res, int row)
{
    if (strcmp(PQgetvalue(res, row, 1), "busy") == 0)
        register_alone(r, item);
    else
        registered_row(r, item, res, row, 1);
}

/*
 * Errors that one item may have caused, and that roll the batch back: a
 * cancelled event (UE410), a ticket type whose stripes are all taken
 * (UE503), data the schema refuses (classes 22, 23), a deadlock or
 * serialization victim (40P01, 40001).
 */
static bool one_items_error(PGresult *res)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    return state != NULL && (strcmp(state, "UE410") == 0 || strcmp(state, "UE503") == 0 ||
                             strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0 ||
                             strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0);
}

/*
 * The batch failed as a whole, so nothing of it was written. When one item
 * may be the cause, each request is sent again on its own, so that error
 * stays its own. Anything else (a lost connection, whose commit is unknown;
 * a database out of memory or shutting down, which 64 single statements
 * would only load more) is answered as a single statement's would be:
 * 503, and the client retries (with its Idempotency-Key, safely).
 */
static void batch_failed(api_req *r, json_t *item, PGresult *res, const char *errmsg)
{
    if (one_items_error(res))
        register_alone(r, item);
    else if (api_result_ok(r, res, errmsg)) /* not an error, yet not the batch's rows */
        api_reply_error(r, 503, "unavailable", "the registration was not taken; try again");
}

const api_batch_kind route_register_batch = {
    .sql = "SELECT idx, status, registration_id, replayed FROM usher_register_batch($1::jsonb)",
    .row = batch_row,
    .failed = batch_failed,
};

void route_register(api_req *r)
{
    static const char *const locales[] = { "en", "de", "fr", NULL };
    const char *name = NULL, *email = NULL, *key = NULL, *locale = NULL;
    int64_t ticket_type = 0;
    const char *tail;
    json_t *item = NULL;
    char hash[REQUEST_HASH_HEX], scope[sizeof("token:") + USHER_INT_TEXT_MAX];

    if (!api_get_int(r, "ticket_type_id", true, 1, INT64_MAX, &ticket_type) ||
        !api_get_string(r, "name", true, 1, 200, &name) ||
        !api_get_string(r, "email", true, 3, 320, &email) ||
        !api_get_enum(r, "locale", false, locales, &locale) || !idempotency_key(r, &key))
        return;
    if (!plausible_email(email)) {
        api_reply_invalid(r, "email", "email must be an address like name@example.org");
        return;
    }
    request_hash(r->ids[0], ticket_type, name, email, hash);
    snprintf(scope, sizeof(scope), "token:%lld", (long long)r->auth.token_id);
    tail = batch_tail(r, r->ids[0]);
    if (tail != NULL)
        /* v 2: this usher-api knows the statuses busy and event_cancelled (0031). */
        item = json_pack("{s:i,s:I,s:I,s:s,s:s,s:s,s:o,s:o,s:o}", "v", 2, "event",
                         (json_int_t)r->ids[0], "ticket_type", (json_int_t)ticket_type, "name",
                         name, "email", email, "scope", r->auth.token_id != 0 ? scope : "public",
                         "key", key != NULL ? json_string(key) : json_null(), "hash",
                         key != NULL ? json_string(hash) : json_null(), "locale",
                         locale != NULL ? json_string(locale) : json_null());
    if (item == NULL) {
        api_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    api_loop_batch_add_tail(r->loop->registrations, r, item, tail);
}
