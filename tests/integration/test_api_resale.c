/*
 * Cancellations racing sales on a sold-out ticket type, through a real
 * usher-api: every seat a cancellation gives back is sold at most once, the
 * stripes' counts always equal the confirmed registrations, and nothing is
 * oversold however the requests interleave.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdb.h"
#include "testhttp.h"
#include "token.h"

TESTDB_SUITE(api_resale, "usher_test_api_resale");

enum { SEATS = 60, CANCELS = 30, BUYERS = 120 };

static testapi server;

/* Also after a failed assertion: no usher-api outlives its test. */
static void stop_server(void)
{
    testapi_stop(&server);
}

Test(api_resale, cancellations_racing_sales_never_oversell, .fini = stop_server, .timeout = 300)
{
    static char bodies[SEATS + BUYERS][200], paths[CANCELS][96];
    static testhttp_req reqs[CANCELS + BUYERS];
    static testhttp_resp resps[SEATS + CANCELS + BUYERS];
    static long long regs[SEATS];
    char organizer[USHER_TOKEN_MAX], path[96], sql[256];
    long long org, event, ticket_type;
    int cancelled = 0, sold = 0, sold_out = 0;
    int64_t token_id;

    org = testdb_organizer(st, "Resale");
    testdb_event e = testdb_event_new(st, org, "Resale", 1, SEATS);
    event = e.id;
    ticket_type = e.ticket_type;
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, org, 0, "o", organizer, &token_id),
                 USHER_OK);
    setenv("USHER_API_RATE_PER_MINUTE", "0", 1);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 2);

    /* Sold out first. */
    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", event);
    for (int i = 0; i < SEATS + BUYERS; i++)
        snprintf(bodies[i], sizeof(bodies[i]),
                 "{\"ticket_type_id\":%lld,\"name\":\"Buyer %d\",\"email\":\"b%d@example.org\"}",
                 ticket_type, i, i);
    for (int i = 0; i < SEATS; i++) {
        cr_assert_eq(testhttp(&server, &(testhttp_req){ "POST", path, NULL, bodies[i], NULL, NULL },
                              &resps[i]),
                     201, "%s", resps[i].body);
        regs[i] = json_integer_value(json_object_get(resps[i].json, "registration_id"));
        testhttp_resp_free(&resps[i]);
    }
    /* Then half the holders cancel while twice as many buyers try their luck, all at once. */
    for (int i = 0; i < CANCELS; i++) {
        snprintf(paths[i], sizeof(paths[i]), "/v1/registrations/%lld/cancel", regs[2 * i]);
        reqs[i] = (testhttp_req){ "POST", paths[i], organizer, NULL, NULL, NULL };
    }
    for (int i = 0; i < BUYERS; i++)
        reqs[CANCELS + i] = (testhttp_req){ "POST", path, NULL, bodies[SEATS + i], NULL, NULL };
    testhttp_many(&server, reqs, resps, CANCELS + BUYERS, 32);
    for (int i = 0; i < CANCELS + BUYERS; i++) {
        long status = resps[i].status;

        if (i < CANCELS) {
            cr_assert_eq(status, 200, "cancel %d: %ld %s", i, status, resps[i].body);
            cancelled++;
        } else if (status == 201) {
            sold++;
        } else {
            cr_assert_eq(status, 409, "buyer %d: %ld %s", i, status, resps[i].body);
            cr_assert_str_eq(testhttp_error_code(&resps[i]), "sold_out");
            sold_out++;
        }
        testhttp_resp_free(&resps[i]);
    }
    fprintf(stderr, "%d cancelled, %d resold, %d sold out\n", cancelled, sold, sold_out);
    /* A buyer may come before the seat is back: at most CANCELS resold, never more. */
    cr_assert_leq(sold, CANCELS);
    cr_assert_eq(sold + sold_out, BUYERS);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM registrations WHERE ticket_type_id = %lld"
             " AND status = 'confirmed'",
             ticket_type);
    cr_assert_eq(testdb_scalar(st, sql), SEATS - CANCELS + sold, "oversold or lost");
    snprintf(sql, sizeof(sql), "SELECT sum(sold) FROM ticket_stripes WHERE ticket_type_id = %lld",
             ticket_type);
    cr_assert_eq(testdb_scalar(st, sql), SEATS - CANCELS + sold,
                 "the stripes' count differs from the confirmed registrations");
    /* The seats no buyer took are still on sale: exactly that many more can be sold. */
    for (int i = 0; i < CANCELS - sold + 1; i++) {
        char body[200];
        testhttp_resp resp;
        long status;

        snprintf(body, sizeof(body),
                 "{\"ticket_type_id\":%lld,\"name\":\"Late %d\",\"email\":\"l%d@example.org\"}",
                 ticket_type, i, i);
        status = testhttp(&server, &(testhttp_req){ "POST", path, NULL, body, NULL, NULL }, &resp);
        cr_assert_eq(status, i < CANCELS - sold ? 201 : 409, "late buyer %d: %s", i, resp.body);
        testhttp_resp_free(&resp);
    }
    cr_assert_eq(testdb_scalar(st, sql), SEATS);
    testapi_stop(&server);
}
