/*
 * usher_register_batch() (0029, set-wise since 0030) against a real
 * PostgreSQL, one statement as usher-api sends it for a loop turn's
 * registrations: the items without an Idempotency-Key are sold a ticket
 * type at a time (seats to the first items in the batch's order, sold_out
 * only when no stripe has one), those with a key one by one (a repeated
 * key replays the first answer); every item answers with its own row; each
 * sale gets its registration, its ticket and search jobs (its organizer's
 * partition key) and its webhooks; and one analytics job counts the
 * batch's new sales. A ticket type whose stripes another transaction
 * holds fails a batch that holds a stripe at once (UE503), and one that
 * holds none after a bounded wait.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdb.h"

TESTDB_SUITE(register_batch, "usher_test_register_batch");

#define JOBS                                                                                  \
    "[{\"kind\":\"pdf.ticket\",\"queue\":\"documents\",\"priority\":1,\"payload\":{},"        \
    "\"id_field\":\"registration_id\",\"max_attempts\":5,\"timeout_ms\":60000},"              \
    "{\"kind\":\"index.document\",\"queue\":\"search\",\"priority\":1,\"payload\":{\"type\":" \
    "\"attendee\"},\"id_field\":\"id\",\"max_attempts\":5,\"timeout_ms\":60000}]"
#define HOOK                                                                                 \
    "{\"kind\":\"notify.webhook\",\"queue\":\"webhooks\",\"priority\":1,\"max_attempts\":5," \
    "\"timeout_ms\":10000}"

typedef struct answer {
    char status[32];
    long long registration;
    bool replayed;
} answer;

/* An item of the batch, as usher-api writes it (api/routes/registrations.c). */
static int item(char *out, size_t len, long long event, long long ticket_type, const char *email,
                const char *key)
{
    char key_json[64] = "null";

    if (key != NULL)
        snprintf(key_json, sizeof(key_json), "\"%s\"", key);
    return snprintf(out, len,
                    "{\"event\":%lld,\"ticket_type\":%lld,\"name\":\"A\",\"email\":\"%s\","
                    "\"jobs\":" JOBS ",\"counted\":[{\"kind\":\"analytics.rollup\",\"queue\":"
                    "\"analytics\",\"priority\":1,\"payload\":{\"event_id\":%lld,\"metric\":"
                    "\"registration\"},\"at_field\":\"at\",\"max_attempts\":5,\"timeout_ms\":"
                    "60000}],\"scope\":\"public\",\"key\":%s,\"hash\":%s,\"hook\":" HOOK
                    ",\"locale\":\"de\"}",
                    event, ticket_type, email, event, key_json, key != NULL ? "\"h\"" : "null");
}

/* Runs the batch of items (a JSON array's text) on s; answers by idx into out. */
static void run_batch(usher_store *s, const char *items, answer *out, int n)
{
    const char *params[] = { items };
    PGresult *res = NULL;

    cr_assert_eq(usher_store_exec(s,
                                  "SELECT idx, status, registration_id, replayed"
                                  " FROM usher_register_batch($1::jsonb)",
                                  1, params, &res),
                 USHER_OK, "%s", usher_store_errstr(s));
    cr_assert_eq(PQntuples(res), n, "a row per item");
    for (int row = 0; row < n; row++) {
        int idx = atoi(PQgetvalue(res, row, 0));

        cr_assert(idx >= 0 && idx < n && out[idx].status[0] == '\0', "idx %d", idx);
        snprintf(out[idx].status, sizeof(out[idx].status), "%s", PQgetvalue(res, row, 1));
        out[idx].registration = atoll(PQgetvalue(res, row, 2));
        out[idx].replayed = strcmp(PQgetvalue(res, row, 3), "t") == 0;
    }
    PQclear(res);
}

Test(register_batch, every_item_answers_on_its_own_and_the_seats_go_in_order)
{
    long long org = testdb_organizer(st, "Org");
    testdb_event e = testdb_event_new(st, org, "Batch", 1, 2), other;
    long long closed;
    char items[16384], *p = items, sql[256];
    answer a[8] = { 0 };
    size_t left = sizeof(items);
    int n = 0;

    other = testdb_event_new(st, org, "Other", 1, 0);
    snprintf(sql, sizeof(sql),
             "INSERT INTO ticket_types (event_id, name, capacity, sales_open)"
             " VALUES (%lld, 'Closed', 10, false) RETURNING id",
             e.id);
    closed = testdb_scalar(st, sql);
    snprintf(sql, sizeof(sql),
             "INSERT INTO webhook_endpoints (organizer_id, url, secret, events)"
             " VALUES (%lld, 'http://127.0.0.1:9/h', 's', '{registration.created}')",
             org);
    testdb_exec(st, sql);
#define ADD(ev, tt, email, key)                    \
    do {                                           \
        int w = item(p, left, ev, tt, email, key); \
        p += w, left -= (size_t)w;                 \
        if (++n < 8)                               \
            *p++ = ',', left--;                    \
    } while (0)
    *p++ = '[', left--;
    ADD(e.id, e.ticket_type, "k1@example.org", "key-1");        /* 0: keyed, sold */
    ADD(e.id, e.ticket_type, "a@example.org", NULL);            /* 1: sold */
    ADD(e.id, e.ticket_type, "b@example.org", NULL);            /* 2: no seat left */
    ADD(e.id, closed, "c@example.org", NULL);                   /* 3: sales closed */
    ADD(e.id, other.id + 1000, "d@example.org", NULL);          /* 4: no such ticket type */
    ADD(other.id + 1000, e.ticket_type, "f@example.org", NULL); /* 5: no such event */
    ADD(e.id, e.ticket_type, "k1@example.org", "key-1");        /* 6: replays 0 */
    ADD(e.id, e.ticket_type, "k2@example.org", "key-2");        /* 7: keyed, no seat */
    *p++ = ']', *p = '\0';
#undef ADD
    run_batch(st, items, a, n);

    /* The keyless items go first, a ticket type at a time, and take the two seats. */
    cr_assert_str_eq(a[1].status, "confirmed");
    cr_assert_str_eq(a[2].status, "confirmed");
    cr_assert_str_eq(a[0].status, "sold_out", "the keyed items come after the keyless ones");
    cr_assert_str_eq(a[3].status, "sales_closed");
    cr_assert_str_eq(a[4].status, "unknown_ticket_type");
    cr_assert_str_eq(a[5].status, "unknown_event");
    cr_assert_str_eq(a[6].status, "sold_out");
    cr_assert(a[6].replayed, "a repeated key replays the first answer");
    cr_assert(!a[0].replayed);
    cr_assert_str_eq(a[7].status, "sold_out");
    cr_assert_neq(a[1].registration, a[2].registration);

    cr_assert_eq(
        testdb_scalarf(st, "SELECT count(*) FROM registrations WHERE event_id = %lld", e.id), 2);
    cr_assert_eq(testdb_scalarf(st,
                                "SELECT sum(sold) FROM ticket_stripes WHERE ticket_type_id = %lld",
                                e.ticket_type),
                 2, "never more sold than the capacity");
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM registrations WHERE id IN (%lld, %lld)"
             " AND email IN ('a@example.org', 'b@example.org') AND locale = 'de'",
             a[1].registration, a[2].registration);
    cr_assert_eq(testdb_scalar(st, sql), 2, "each row is its own item's");
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs WHERE kind = 'pdf.ticket'"
             " AND (payload->>'registration_id')::bigint IN (%lld, %lld)"
             " AND partition_key = 'org:%lld'",
             a[1].registration, a[2].registration, org);
    cr_assert_eq(testdb_scalar(st, sql), 2);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs WHERE kind = 'index.document'"
             " AND (payload->>'id')::bigint IN (%lld, %lld)",
             a[1].registration, a[2].registration);
    cr_assert_eq(testdb_scalar(st, sql), 2);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'notify.webhook'"
                                   " AND payload->>'event' = 'registration.created'"),
                 2);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'analytics.rollup'"
                                   " AND (payload->>'count')::int = 2 AND payload ? 'at'"),
                 1, "one job counts the batch's two sales");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 2 + 2 + 2 + 1);
}

/* Runs items expecting the batch to fail with UE503; nothing of it stays. */
static void refused_busy(const char *items)
{
    const char *params[] = { items };
    PGresult *res = NULL;

    cr_assert_eq(
        usher_store_exec(st, "SELECT idx FROM usher_register_batch($1::jsonb)", 1, params, &res),
        USHER_ERR_DB);
    cr_assert_str_eq(usher_store_sqlstate(st), "UE503", "%s", usher_store_errstr(st));
    PQclear(res);
}

/*
 * Another transaction holds every stripe of a ticket type: a batch that
 * already holds a stripe (an earlier ticket type's) fails at once with
 * UE503 instead of waiting, so two batches never wait for each other; one
 * that holds none waits like a lone registration, 2 s at most, then fails
 * the same way; once the stripes are free the same batch sells.
 */
Test(register_batch, a_batch_holding_a_stripe_does_not_wait_for_another, .timeout = 60)
{
    long long org = testdb_organizer(st, "Org");
    testdb_event first = testdb_event_new(st, org, "Sold first", 1, 5); /* the lower ticket type */
    testdb_event busy = testdb_event_new(st, org, "Busy", 1, 5);
    usher_store *holder = testdb_store(&cfg);
    char both[8192], alone[4096];
    answer a[1] = { 0 };
    int w;

    testdb_exec(holder, "BEGIN");
    cr_assert_eq(testdb_scalarf(holder,
                                "SELECT count(*) FROM (SELECT 1 FROM ticket_stripes"
                                " WHERE ticket_type_id = %lld FOR UPDATE) s",
                                busy.ticket_type),
                 5);
    both[0] = '[';
    w = 1 + item(both + 1, sizeof(both) - 1, first.id, first.ticket_type, "x@example.org", NULL);
    both[w++] = ',';
    w += item(both + w, sizeof(both) - (size_t)w, busy.id, busy.ticket_type, "y@example.org", NULL);
    snprintf(both + w, sizeof(both) - (size_t)w, "]");
    alone[0] = '[';
    w = 1 + item(alone + 1, sizeof(alone) - 1, busy.id, busy.ticket_type, "z@example.org", NULL);
    snprintf(alone + w, sizeof(alone) - (size_t)w, "]");

    refused_busy(both);
    cr_assert_eq(
        testdb_scalarf(st, "SELECT count(*) FROM registrations WHERE event_id = %lld", first.id), 0,
        "the failed batch rolled back whole");
    cr_assert_eq(testdb_scalarf(st,
                                "SELECT sum(sold) FROM ticket_stripes WHERE ticket_type_id = %lld",
                                first.ticket_type),
                 0);
    refused_busy(alone);
    testdb_exec(holder, "COMMIT");
    usher_store_free(holder);
    run_batch(st, alone, a, 1);
    cr_assert_str_eq(a[0].status, "confirmed");
}
