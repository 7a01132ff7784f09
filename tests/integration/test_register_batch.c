/*
 * usher_register_batch() (0029, set-wise since 0030) against a real
 * PostgreSQL, one statement as usher-api sends it for a loop turn's
 * registrations: the items without an Idempotency-Key are sold a ticket
 * type at a time (seats to the first items in the batch's order, sold_out
 * only when no stripe has one), those with a key one by one (a repeated
 * key replays the first answer); every item answers with its own row; each
 * sale gets its registration, its ticket and search jobs (its organizer's
 * partition key) and its webhooks; and one analytics job counts the
 * batch's new sales. A cancelled event's items answer event_cancelled
 * and a ticket type whose stripes another transaction holds answers busy
 * (at once in a batch that holds a stripe, after a bounded wait in one that
 * holds none), and the rest of the batch commits (0031).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inttext.h"
#include "testdb.h"

TESTDB_SUITE(register_batch, "usher_test_register_batch");

#define JOBS                                                                                  \
    "[{\"kind\":\"pdf.ticket\",\"queue\":\"documents\",\"priority\":1,\"payload\":{},"        \
    "\"id_field\":\"registration_id\",\"max_attempts\":5,\"timeout_ms\":60000},"              \
    "{\"kind\":\"index.document\",\"queue\":\"search\",\"priority\":1,\"payload\":{\"type\":" \
    "\"attendee\"},\"id_field\":\"id\",\"max_attempts\":5,\"timeout_ms\":60000}]"
/* The same as usher-api writes them since 0038: the search entries gathered a statement. */
#define JOBS_GATHERED                                                                                                \
    "[{\"kind\":\"pdf.ticket\",\"queue\":\"documents\",\"priority\":1,\"payload\":{},"                               \
    "\"id_field\":\"registration_id\",\"gather\":\"registration_ids\",\"max_attempts\":5,"                           \
    "\"timeout_ms\":60000,\"request_id\":\"req\"},{\"kind\":\"index.document\",\"queue\":\"search\",\"priority\":1," \
    "\"payload\":{\"type\":\"attendee\"},\"id_field\":\"id\",\"gather\":\"ids\","                                    \
    "\"max_attempts\":5,\"timeout_ms\":60000,\"request_id\":\"req\"}]"
#define HOOK                                                                                 \
    "{\"kind\":\"notify.webhook\",\"queue\":\"webhooks\",\"priority\":1,\"max_attempts\":5," \
    "\"timeout_ms\":10000}"

typedef struct answer {
    char status[32];
    long long registration;
    bool replayed;
} answer;

/* False: items as a usher-api from before 0031 writes them, without "v": 2. */
static bool items_know_statuses = true;

/* True: the items' templates as usher-api writes them since 0038 (JOBS_GATHERED). */
static bool items_gather = false;

/* An item of the batch, as usher-api writes it (api/routes/registrations.c). */
static int item(char *out, size_t len, long long event, long long ticket_type, const char *email,
                const char *key)
{
    char key_json[64] = "null";

    if (key != NULL)
        snprintf(key_json, sizeof(key_json), "\"%s\"", key);
    return snprintf(
        out, len,
        "{%s\"event\":%lld,\"ticket_type\":%lld,\"name\":\"A\",\"email\":\"%s\","
        "\"jobs\":%s,\"counted\":[{\"kind\":\"analytics.rollup\",\"queue\":"
        "\"analytics\",\"priority\":1,\"payload\":{\"event_id\":%lld,\"metric\":"
        "\"registration\"},\"at_field\":\"at\",\"max_attempts\":5,\"timeout_ms\":"
        "60000}],\"scope\":\"public\",\"key\":%s,\"hash\":%s,\"hook\":" HOOK ",\"locale\":\"de\"}",
        items_know_statuses ? "\"v\":2," : "", event, ticket_type, email,
        items_gather ? JOBS_GATHERED : JOBS, event, key_json, key != NULL ? "\"h\"" : "null");
}

/* An item to put in a batch: key NULL for none. */
typedef struct spec {
    long long event, ticket_type;
    const char *email, *key;
} spec;

/* The batch of the n items of specs, a JSON array's text, into out. */
static void batch_of(char *out, size_t len, const spec *specs, int n)
{
    size_t w = 0;

    out[w++] = '[';
    for (int i = 0; i < n; i++) {
        if (i > 0)
            out[w++] = ',';
        w += (size_t)item(out + w, len - w, specs[i].event, specs[i].ticket_type, specs[i].email,
                          specs[i].key);
        cr_assert_lt(w, len - 2, "the batch fits");
    }
    snprintf(out + w, len - w, "]");
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
    char items[16384], sql[256];
    answer a[8] = { 0 };
    const int n = 8;

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
    const spec specs[] = {
        { e.id, e.ticket_type, "k1@example.org", "key-1" },        /* 0: keyed, sold */
        { e.id, e.ticket_type, "a@example.org", NULL },            /* 1: sold */
        { e.id, e.ticket_type, "b@example.org", NULL },            /* 2: no seat left */
        { e.id, closed, "c@example.org", NULL },                   /* 3: sales closed */
        { e.id, other.id + 1000, "d@example.org", NULL },          /* 4: no such ticket type */
        { other.id + 1000, e.ticket_type, "f@example.org", NULL }, /* 5: no such event */
        { e.id, e.ticket_type, "k1@example.org", "key-1" },        /* 6: replays 0 */
        { e.id, e.ticket_type, "k2@example.org", "key-2" },        /* 7: keyed, no seat */
    };

    batch_of(items, sizeof(items), specs, n);
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

/*
 * Two organizers' ticket types in one batch (0033 writes all of a
 * statement's jobs in one INSERT at its end): each sale's ticket and search
 * jobs carry its own registration and its organizer's partition key, the
 * webhooks go to the organizer with an endpoint only, with that
 * organizer's key, and each event's analytics job counts its own sales,
 * keyed ones included.
 */
Test(register_batch, each_sales_jobs_are_its_own_and_its_organizers_in_a_batch_of_two)
{
    long long org_a = testdb_organizer(st, "Org A"), org_b = testdb_organizer(st, "Org B");
    testdb_event a = testdb_event_new(st, org_a, "A", 1, 5),
                 b = testdb_event_new(st, org_b, "B", 1, 5);
    char items[16384], sql[256];
    answer got[5] = { 0 };
    const int n = 5;
    const spec specs[] = {
        { b.id, b.ticket_type, "b1@example.org", NULL },
        { a.id, a.ticket_type, "a1@example.org", NULL },
        { b.id, b.ticket_type, "bk@example.org", "k-b" },
        { a.id, a.ticket_type, "a2@example.org", NULL },
        { b.id, b.ticket_type, "b2@example.org", NULL },
    };

    snprintf(sql, sizeof(sql),
             "INSERT INTO webhook_endpoints (organizer_id, url, secret, events)"
             " VALUES (%lld, 'http://127.0.0.1:9/h', 's', '{registration.created}')",
             org_a);
    testdb_exec(st, sql);
    batch_of(items, sizeof(items), specs, n);
    run_batch(st, items, got, n);
    for (int i = 0; i < n; i++)
        cr_assert_str_eq(got[i].status, "confirmed", "item %d", i);

    /* A ticket and a search job per sale, its own, with its organizer's key. */
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM registrations g JOIN events e"
                                   " ON e.id = g.event_id JOIN usher_jobs j"
                                   " ON (j.kind = 'pdf.ticket'"
                                   " AND (j.payload->>'registration_id')::bigint = g.id)"
                                   " OR (j.kind = 'index.document'"
                                   " AND (j.payload->>'id')::bigint = g.id)"
                                   " WHERE j.partition_key = 'org:' || e.organizer_id"),
                 2 * n);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"
                                   " WHERE kind IN ('pdf.ticket', 'index.document')"),
                 2 * n);
    /* Webhooks: Org A's two sales only, with Org A's key and their own ids. */
    cr_assert_eq(testdb_scalarf(st,
                                "SELECT count(*) FROM usher_jobs j JOIN registrations g"
                                " ON g.id = (j.payload->'data'->>'registration_id')::bigint"
                                " WHERE j.kind = 'notify.webhook' AND g.event_id = %lld"
                                " AND (j.payload->'data'->>'event_id')::bigint = g.event_id"
                                " AND j.partition_key = 'org:%lld'",
                                a.id, org_a),
                 2);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'notify.webhook'"),
                 2);
    /* Each event's sales counted once, with its organizer's key. */
    cr_assert_eq(testdb_scalarf(st,
                                "SELECT count(*) FROM usher_jobs WHERE kind = 'analytics.rollup'"
                                " AND ((payload->>'event_id')::bigint = %lld"
                                " AND (payload->>'count')::int = 2 AND partition_key = 'org:%lld')"
                                " OR ((payload->>'event_id')::bigint = %lld"
                                " AND (payload->>'count')::int = 3 AND partition_key = 'org:%lld')",
                                a.id, org_a, b.id, org_b),
                 2);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 2 * n + 2 + 2);
}

/*
 * Templates with "gather" (0038), as usher-api sends the attendee's search
 * entry: the keyless sales of a ticket type share one index.document job,
 * their ids in its "ids" in the items' order, with their organizer's key,
 * and it keeps the request id only when it is one sale's (a shared job
 * lists its sales' in its payload's request_ids instead); a keyed sale
 * (usher_register) gets its own job with "id" as before. The same for the
 * ticket jobs ("registration_ids"). Run without the gathering (a database before 0038, where
 * "gather" is ignored) the count of index.document jobs is one a sale.
 */
Test(register_batch, a_ticket_types_sales_share_one_ticket_job_and_one_search_job)
{
    long long org_a = testdb_organizer(st, "Org A"), org_b = testdb_organizer(st, "Org B");
    testdb_event a = testdb_event_new(st, org_a, "A", 1, 5),
                 b = testdb_event_new(st, org_b, "B", 1, 5);
    char items[16384], sql[512];
    answer got[5] = { 0 };
    const int n = 5;
    const spec specs[] = {
        { a.id, a.ticket_type, "a1@example.org", NULL },  /* 0 */
        { b.id, b.ticket_type, "b1@example.org", NULL },  /* 1: b's only keyless sale */
        { a.id, a.ticket_type, "ak@example.org", "k-a" }, /* 2: keyed */
        { a.id, a.ticket_type, "a2@example.org", NULL },  /* 3 */
        { a.id, a.ticket_type, "a3@example.org", NULL },  /* 4 */
    };

    items_gather = true;
    batch_of(items, sizeof(items), specs, n);
    run_batch(st, items, got, n);
    for (int i = 0; i < n; i++)
        cr_assert_str_eq(got[i].status, "confirmed", "item %d", i);

    snprintf(
        sql, sizeof(sql),
        "SELECT count(*) FROM usher_jobs WHERE kind = 'index.document'"
        " AND payload = jsonb_build_object('type', 'attendee', 'ids',"
        " jsonb_build_array(%lld, %lld, %lld), 'request_ids', '[\"req\",\"req\",\"req\"]'::jsonb)"
        " AND partition_key = 'org:%lld' AND request_id IS NULL AND max_attempts = 5",
        got[0].registration, got[3].registration, got[4].registration, org_a);
    cr_assert_eq(testdb_scalar(st, sql), 1, "A's three keyless sales in one job, in order");
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs WHERE kind = 'index.document'"
             " AND payload = jsonb_build_object('type', 'attendee', 'ids', jsonb_build_array(%lld))"
             " AND partition_key = 'org:%lld' AND request_id = 'req'",
             got[1].registration, org_b);
    cr_assert_eq(testdb_scalar(st, sql), 1, "B's one sale: its own job, with its request id");
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs WHERE kind = 'index.document'"
             " AND payload = jsonb_build_object('type', 'attendee', 'id', %lld::bigint)",
             got[2].registration);
    cr_assert_eq(testdb_scalar(st, sql), 1, "the keyed sale's job is its own");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'index.document'"),
                 3);
    snprintf(
        sql, sizeof(sql),
        "SELECT count(*) FROM usher_jobs WHERE kind = 'pdf.ticket'"
        " AND payload = jsonb_build_object('registration_ids',"
        " jsonb_build_array(%lld, %lld, %lld), 'request_ids', '[\"req\",\"req\",\"req\"]'::jsonb)"
        " AND partition_key = 'org:%lld' AND request_id IS NULL",
        got[0].registration, got[3].registration, got[4].registration, org_a);
    cr_assert_eq(testdb_scalar(st, sql), 1, "A's three keyless sales share their ticket job");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'pdf.ticket'"), 3,
                 "A's shared one, B's, the keyed sale's");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE payload ? 'gather'"
                                   " OR payload ? 'id_field'"),
                 0, "no template member leaks into a payload");
    items_gather = false;
}

/*
 * A cancelled event's items, keyless and keyed, answer event_cancelled in
 * a batch whose other items are sold in the same statement: the batch does
 * not fail, and nothing is written for them (no seat, no registration, no
 * job, no idempotency key). A key first used before the cancellation still
 * replays its answer.
 */
Test(register_batch, a_cancelled_events_items_answer_on_their_own_and_the_batch_commits)
{
    long long org = testdb_organizer(st, "Org");
    testdb_event live = testdb_event_new(st, org, "Live", 1, 10);
    testdb_event off = testdb_event_new(st, org, "Called off", 1, 10);
    const spec before[] = { { off.id, off.ticket_type, "early@example.org", "key-early" } };
    const spec specs[] = {
        { off.id, off.ticket_type, "a@example.org", NULL },           /* 0 */
        { live.id, live.ticket_type, "b@example.org", NULL },         /* 1 */
        { off.id, off.ticket_type, "c@example.org", "key-c" },        /* 2: a new key */
        { live.id, live.ticket_type, "d@example.org", "key-d" },      /* 3 */
        { off.id, off.ticket_type, "early@example.org", "key-early" } /* 4: replays */
    };
    char items[16384], sql[128];
    answer first[1] = { 0 }, a[5] = { 0 };

    batch_of(items, sizeof(items), before, 1);
    run_batch(st, items, first, 1);
    cr_assert_str_eq(first[0].status, "confirmed");
    snprintf(sql, sizeof(sql), "UPDATE events SET cancelled_at = now() WHERE id = %lld", off.id);
    testdb_exec(st, sql);

    batch_of(items, sizeof(items), specs, 5);
    run_batch(st, items, a, 5);
    cr_assert_str_eq(a[0].status, "event_cancelled");
    cr_assert_str_eq(a[2].status, "event_cancelled");
    cr_assert_str_eq(a[1].status, "confirmed", "the live items are sold in the same statement");
    cr_assert_str_eq(a[3].status, "confirmed");
    cr_assert_str_eq(a[4].status, "confirmed");
    cr_assert(a[4].replayed && a[4].registration == first[0].registration);

    cr_assert_eq(
        testdb_scalarf(st, "SELECT count(*) FROM registrations WHERE event_id = %lld", live.id), 2);
    cr_assert_eq(
        testdb_scalarf(st, "SELECT count(*) FROM registrations WHERE event_id = %lld", off.id), 1,
        "only the one from before the cancellation");
    cr_assert_eq(testdb_scalarf(st,
                                "SELECT sum(sold) FROM ticket_stripes WHERE ticket_type_id = %lld",
                                off.ticket_type),
                 1);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM api_idempotency WHERE key = 'key-c'"), 0);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'pdf.ticket'"),
                 1 + 2, "the early sale's and the live ones'");
    cr_assert_eq(testdb_scalar(st, "SELECT sum((payload->>'count')::int) FROM usher_jobs"
                                   " WHERE kind = 'analytics.rollup'"),
                 1 + 2, "the batch counts the live sales only");
}

/*
 * Another transaction holds every stripe of a ticket type: in a batch that
 * already holds a stripe (an earlier ticket type's) its items answer busy
 * at once, instead of waiting, so two batches never wait for each other,
 * and the rest of the batch commits; in one that holds none they wait like
 * a lone registration, 2 s at most, then answer busy, and a second busy
 * ticket type in that batch does not wait again; once the stripes are free
 * the same batch sells.
 */
Test(register_batch, a_busy_ticket_types_items_answer_busy_and_the_rest_commits, .timeout = 60)
{
    long long org = testdb_organizer(st, "Org");
    testdb_event first = testdb_event_new(st, org, "Sold first", 1, 5); /* the lower ticket type */
    testdb_event busy = testdb_event_new(st, org, "Busy", 1, 5);
    testdb_event busy2 = testdb_event_new(st, org, "Busy too", 1, 5);
    const spec both[] = { { first.id, first.ticket_type, "x@example.org", NULL },
                          { busy.id, busy.ticket_type, "y@example.org", NULL },
                          { busy.id, busy.ticket_type, "w@example.org", NULL } };
    const spec alone[] = { { busy.id, busy.ticket_type, "z@example.org", NULL },
                           { busy2.id, busy2.ticket_type, "v@example.org", NULL } };
    usher_store *holder = testdb_store(&cfg);
    char items[16384];
    answer a[3] = { 0 }, b[1] = { 0 }, b2[2] = { 0 }, c[1] = { 0 };
    long long start, one_wait;

    testdb_exec(holder, "BEGIN");
    cr_assert_eq(testdb_scalarf(holder,
                                "SELECT count(*) FROM (SELECT 1 FROM ticket_stripes"
                                " WHERE ticket_type_id IN (%lld, %lld) FOR UPDATE) s",
                                busy.ticket_type, busy2.ticket_type),
                 5 + 5);
    batch_of(items, sizeof(items), both, 3);
    start = testdb_now_ms();
    run_batch(st, items, a, 3);
    cr_assert_lt(testdb_now_ms() - start, 1000, "a batch holding a stripe does not wait");
    cr_assert_str_eq(a[0].status, "confirmed");
    cr_assert_str_eq(a[1].status, "busy");
    cr_assert_str_eq(a[2].status, "busy");
    cr_assert_eq(
        testdb_scalarf(st, "SELECT count(*) FROM registrations WHERE event_id = %lld", first.id), 1,
        "the rest of the batch committed");

    batch_of(items, sizeof(items), alone, 1);
    start = testdb_now_ms();
    run_batch(st, items, b, 1);
    one_wait = testdb_now_ms() - start;
    cr_assert_geq(one_wait, 2000, "a batch holding no stripe waits 2 s");
    cr_assert_str_eq(b[0].status, "busy");
    batch_of(items, sizeof(items), alone, 2);
    start = testdb_now_ms();
    run_batch(st, items, b2, 2);
    /* Twice would be 4 s at least (the wait is by the clock). */
    cr_assert_lt(testdb_now_ms() - start, 3500, "the batch waits once, not twice");
    cr_assert_str_eq(b2[0].status, "busy");
    cr_assert_str_eq(b2[1].status, "busy");
    batch_of(items, sizeof(items), alone, 1);
    testdb_exec(holder, "COMMIT");
    usher_store_free(holder);
    run_batch(st, items, c, 1);
    cr_assert_str_eq(c[0].status, "confirmed");
    cr_assert_eq(
        testdb_scalarf(st, "SELECT count(*) FROM registrations WHERE event_id = %lld", busy.id), 1);
}

/*
 * usher_take_seats empties stripes in turn: only the last it took may
 * still hold seats, and that one is what the transaction's keyed items
 * prefer (usher.register_stripe). 32 seats are 16 stripes of 2; 31 of them
 * leave one seat on the last stripe taken.
 */
Test(register_batch, the_preferred_stripe_is_the_last_one_taken)
{
    long long org = testdb_organizer(st, "Org");
    testdb_event e = testdb_event_new(st, org, "Striped", 1, 32);

    testdb_exec(st, "BEGIN");
    cr_assert_eq(testdb_scalarf(st,
                                "SELECT got FROM usher_take_seats(%lld, 31, true) WHERE NOT busy",
                                e.ticket_type),
                 31);
    cr_assert_eq(testdb_scalarf(st,
                                "SELECT count(*) FROM ticket_stripes WHERE ticket_type_id = %lld"
                                " AND '%lld:' || stripe = current_setting('usher.register_stripe')"
                                " AND sold < capacity",
                                e.ticket_type, e.ticket_type),
                 1, "the preferred stripe has the seat left");
    testdb_exec(st, "ROLLBACK");
}

/* The batch's SQLSTATE (it must fail), and that it wrote no registration of event. */
static void batch_fails_with(const char *items, const char *sqlstate, long long event)
{
    const char *params[] = { items };
    PGresult *res = NULL;

    cr_assert_neq(
        usher_store_exec(st, "SELECT * FROM usher_register_batch($1::jsonb)", 1, params, &res),
        USHER_OK, "the batch of an old usher-api succeeded");
    cr_assert_str_eq(usher_store_sqlstate(st), sqlstate, "%s", usher_store_errstr(st));
    cr_assert_eq(
        testdb_scalarf(st, "SELECT count(*) FROM registrations WHERE event_id = %lld", event), 0,
        "the failed batch sold its live item");
}

/*
 * A usher-api from before 0031 (items without "v": 2) would take busy and
 * event_cancelled for a reused Idempotency-Key: against the migrated
 * database it gets 0030's answers, the whole batch failing with UE410 or
 * UE503, which it sends again one registration at a time.
 */
Test(register_batch, an_older_usher_api_gets_the_whole_batch_failed_as_before, .timeout = 60)
{
    long long org = testdb_organizer(st, "Org");
    testdb_event live = testdb_event_new(st, org, "Live", 1, 5);
    testdb_event off = testdb_event_new(st, org, "Called off", 1, 5);
    testdb_event busy = testdb_event_new(st, org, "Busy", 1, 5);
    const spec cancelled[] = { { live.id, live.ticket_type, "a@example.org", NULL },
                               { off.id, off.ticket_type, "b@example.org", NULL } };
    const spec held[] = { { live.id, live.ticket_type, "c@example.org", NULL },
                          { busy.id, busy.ticket_type, "d@example.org", NULL } };
    usher_store *holder = testdb_store(&cfg);
    char items[16384], sql[128];

    snprintf(sql, sizeof(sql), "UPDATE events SET cancelled_at = now() WHERE id = %lld", off.id);
    testdb_exec(st, sql);
    items_know_statuses = false;
    batch_of(items, sizeof(items), cancelled, 2);
    batch_fails_with(items, "UE410", live.id);

    testdb_exec(holder, "BEGIN");
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM (SELECT 1 FROM ticket_stripes"
             " WHERE ticket_type_id = %lld FOR UPDATE) s",
             busy.ticket_type);
    cr_assert_eq(testdb_scalar(holder, sql), 5);
    batch_of(items, sizeof(items), held, 2);
    batch_fails_with(items, "UE503", live.id);
    testdb_exec(holder, "ROLLBACK");
    usher_store_free(holder);
    items_know_statuses = true;
}

/*
 * The event-open check runs once per statement (0032): a multi-row insert
 * that names a cancelled event is refused whole (UE410), and one into an
 * open event holds that event's row against a cancellation, which takes
 * it FOR UPDATE, until the insert's transaction ends (0022's race).
 */
Test(register_batch, a_statements_events_are_checked_and_held_once_for_all_its_rows)
{
    long long org = testdb_organizer(st, "Org");
    testdb_event open = testdb_event_new(st, org, "Open", 1, 5);
    testdb_event off = testdb_event_new(st, org, "Off", 1, 5);
    usher_store *canceller = testdb_store(&cfg);
    char sql[512];
    PGresult *res = NULL;

    testdb_exec(st, "BEGIN");
    snprintf(sql, sizeof(sql),
             "INSERT INTO registrations (event_id, ticket_type_id, name, email)"
             " SELECT %lld, %lld, 'A', 'r' || g || '@example.org' FROM generate_series(1, 3) g",
             open.id, open.ticket_type);
    testdb_exec(st, sql);
    snprintf(sql, sizeof(sql), "SELECT 1 FROM events WHERE id = %lld FOR UPDATE NOWAIT", open.id);
    cr_assert_neq(usher_store_exec(canceller, sql, 0, NULL, &res), USHER_OK,
                  "a cancellation cannot lock the event while the insert's transaction lives");
    cr_assert_str_eq(usher_store_sqlstate(canceller), "55P03");
    testdb_exec(st, "COMMIT");
    cr_assert_eq(usher_store_exec(canceller, sql, 0, NULL, &res), USHER_OK, "%s",
                 usher_store_errstr(canceller));
    PQclear(res);
    usher_store_free(canceller);

    snprintf(sql, sizeof(sql), "UPDATE events SET cancelled_at = now() WHERE id = %lld", off.id);
    testdb_exec(st, sql);
    snprintf(sql, sizeof(sql),
             "INSERT INTO registrations (event_id, ticket_type_id, name, email)"
             " VALUES (%lld, %lld, 'A', 'x@example.org'), (%lld, %lld, 'B', 'y@example.org')",
             open.id, open.ticket_type, off.id, off.ticket_type);
    cr_assert_neq(usher_store_exec(st, sql, 0, NULL, &res), USHER_OK);
    cr_assert_str_eq(usher_store_sqlstate(st), "UE410");
    cr_assert_eq(testdb_scalarf(st,
                                "SELECT count(*) FROM registrations WHERE event_id IN"
                                " (%lld, %lld)",
                                open.id, off.id),
                 3, "the refused statement wrote none of its rows");
}

Test(register_batch, a_registrations_event_is_its_ticket_types_event)
{
    static const char insert[] = "INSERT INTO registrations (event_id, ticket_type_id, name, email)"
                                 " VALUES ($1, $2, 'A', 'a@example.org')";
    static const char delete[] = "DELETE FROM ticket_types WHERE id = $1";
    long long org = testdb_organizer(st, "Org");
    testdb_event mine = testdb_event_new(st, org, "Mine", 1, 5);
    testdb_event other = testdb_event_new(st, org, "Other", 1, 5);
    char mine_id[USHER_INT_TEXT_MAX], other_id[USHER_INT_TEXT_MAX], mine_tt[USHER_INT_TEXT_MAX],
        other_tt[USHER_INT_TEXT_MAX];
    const char *mismatched[] = { usher_int_text(other.id, other_id),
                                 usher_int_text(mine.ticket_type, mine_tt) },
               *matched[] = { usher_int_text(mine.id, mine_id), mine_tt }, *sold[] = { mine_tt },
               *unsold[] = { usher_int_text(other.ticket_type, other_tt) };
    PGresult *res = NULL;

    /* 0036: one key, (ticket_type_id, event_id), where two keys let this pair in. */
    cr_assert_neq(usher_store_exec(st, insert, 2, mismatched, &res), USHER_OK,
                  "a ticket type of another event is refused");
    cr_assert_str_eq(usher_store_sqlstate(st), "23503");
    cr_assert_eq(usher_store_exec(st, insert, 2, matched, &res), USHER_OK, "%s",
                 usher_store_errstr(st));
    PQclear(res);

    /* The key still keeps a sold ticket type, and so its event, from going. */
    cr_assert_neq(usher_store_exec(st, delete, 1, sold, &res), USHER_OK);
    cr_assert_str_eq(usher_store_sqlstate(st), "23503");
    cr_assert_eq(usher_store_exec(st, delete, 1, unsold, &res), USHER_OK, "%s",
                 usher_store_errstr(st));
    PQclear(res);
    cr_assert_eq(
        testdb_scalarf(st, "SELECT count(*) FROM registrations WHERE event_id = %lld", mine.id), 1);
}
