/*
 * POST /v1/events/{id}/registrations: one statement, usher_register()
 * (schemas/migrations/0007_api.sql), takes a seat, writes the registration
 * and enqueues its ticket PDF (which then emails it), its analytics event
 * and its search-index entry in one transaction. The ticket code is not
 * stored: it is signed here from the ids the statement returns.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../jobs.h"
#include "../validate.h"
#include "../wake_after_commit.h"
#include "alloc.h"
#include "inttext.h"
#include "routes.h"
#include "reply.h"
#include "query.h"

#define IDEMPOTENCY_KEY_MAX 200
#define REQUEST_HASH_BYTES  16
#define REQUEST_HASH_HEX    (2 * REQUEST_HASH_BYTES + 1)

typedef struct registration {
    int64_t event_id, ticket_type_id;
} registration;

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

static char *registration_jobs(api_req *r, int64_t event)
{
    json_t *jobs = usher_need(json_array());
    char *text = NULL;

    if (api_job_add(jobs, r, "pdf.ticket", json_pack("{s:b}", "then_email", 1),
                    "registration_id") == 0 &&
        api_job_add(jobs, r, "analytics.rollup",
                    json_pack("{s:I,s:s}", "event_id", (json_int_t)event, "metric", "registration"),
                    NULL) == 0 &&
        api_job_stamp(jobs, "at") == 0 &&
        api_job_add(jobs, r, "index.document", json_pack("{s:s}", "type", "attendee"), "id") == 0)
        text = usher_need(json_dumps(jobs, JSON_COMPACT));
    json_decref(jobs);
    return text;
}

/* The registration was refused because the event is cancelled (0017_messages.sql's trigger). */
static bool event_cancelled(PGresult *res)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    return state != NULL && strcmp(state, "UE410") == 0;
}

static void registered(PGresult *res, const char *errmsg, void *arg)
{
    api_req *r = arg;
    registration *reg = r->state;
    registration ids = *reg;
    const char *status;
    char code[USHER_TICKET_CODE_MAX];
    int64_t id;

    free(reg);
    r->state = NULL;
    if (event_cancelled(res)) {
        api_reply_error(r, 410, "event_cancelled", "the event is cancelled");
        return;
    }
    if (!api_result_ok(r, res, errmsg))
        return;
    status = PQgetvalue(res, 0, 0);
    if (strcmp(status, "sold_out") == 0) {
        /* Availability reached zero: show it now, not after the TTL (once, not per refusal). */
        api_event_cache_sold_out(r->loop, ids.event_id, ids.ticket_type_id);
        api_reply_error(r, 409, "sold_out", "no seats are left for this ticket type");
        return;
    }
    if (strcmp(status, "sales_closed") == 0) {
        api_reply_error(r, 409, "sales_closed", "sales of this ticket type are closed");
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
    if (strcmp(status, "confirmed") != 0) {
        api_reply_error(r, 422, "idempotency_key_reused",
                        "this Idempotency-Key was used for a different request");
        return;
    }
    id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    if (usher_ticket_sign(r->loop->srv->ticket_key, ids.event_id, id, code, sizeof(code)) !=
        USHER_OK) {
        api_reply_error(r, 500, "internal", "could not sign the ticket code");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 2), "t") == 0) {
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
                             (json_int_t)ids.event_id, "ticket_type_id",
                             (json_int_t)ids.ticket_type_id, "ticket_code", code, "status",
                             "confirmed"));
}

void route_register(api_req *r)
{
    static const char *const locales[] = { "en", "de", "fr", NULL };
    const char *name = NULL, *email = NULL, *key = NULL, *locale = NULL;
    int64_t ticket_type = 0;
    registration *reg;
    char event_text[USHER_INT_TEXT_MAX], tt_text[USHER_INT_TEXT_MAX], hash[REQUEST_HASH_HEX],
        scope[sizeof("token:") + USHER_INT_TEXT_MAX], *jobs, *hook;

    if (!api_get_int(r, "ticket_type_id", true, 1, INT64_MAX, &ticket_type) ||
        !api_get_string(r, "name", true, 1, 200, &name) ||
        !api_get_string(r, "email", true, 3, 320, &email) ||
        !api_get_enum(r, "locale", false, locales, &locale) || !idempotency_key(r, &key))
        return;
    if (!plausible_email(email)) {
        api_reply_invalid(r, "email", "email must be an address like name@example.org");
        return;
    }
    jobs = registration_jobs(r, r->ids[0]);
    hook = api_request_webhook_template(r);
    if (jobs == NULL || hook == NULL) {
        api_reply_error(r, 500, "internal", "out of memory");
        free(jobs);
        free(hook);
        return;
    }
    reg = usher_malloc(sizeof(*reg));
    *reg = (registration){ r->ids[0], ticket_type };
    request_hash(r->ids[0], ticket_type, name, email, hash);
    snprintf(scope, sizeof(scope), "token:%lld", (long long)r->auth.token_id);
    const char *params[] = { api_id_text(r->ids[0], event_text),
                             api_id_text(ticket_type, tt_text),
                             name,
                             email,
                             jobs,
                             r->auth.token_id != 0 ? scope : "public",
                             key,
                             key != NULL ? hash : NULL,
                             hook,
                             locale };

    r->state = reg;
    if (!api_query(r,
                   "SELECT status, registration_id, replayed"
                   " FROM usher_register($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9::jsonb, $10)",
                   10, params, registered))
        free(reg);
    free(jobs);
    free(hook);
}
