/*
 * usher-bench-api-codes: prints the signed ticket code of each registration
 * of an event (optionally of one ticket type), one a line, in id order.
 * wrk's Lua cannot compute HMAC-SHA256, so bench/api signs the codes of its
 * seeded registrations here and the check-in scripts walk the file.
 *
 *   usher-bench-api-codes --event ID [--ticket-type ID]
 *
 * The database is $USHER_DATABASE_URL, the key $USHER_TICKET_SECRET (64 hex
 * digits), the same key the API under test verifies codes with.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_common.h"
#include "ticket.h"

#define PROGRAM "usher-bench-api-codes"

const char bench_program[] = PROGRAM;

static const char usage[] = "usage: " PROGRAM " --event ID [--ticket-type ID]\n"
                            "  codes of the event's registrations, one a line, in id order;\n"
                            "  database $USHER_DATABASE_URL, key $USHER_TICKET_SECRET\n";

/* Signs and prints the code of every row's registration id (column 0). */
static int print_codes(const unsigned char key[USHER_TICKET_KEY_BYTES], long long event,
                       PGresult *res)
{
    char code[USHER_TICKET_CODE_MAX];

    for (int i = 0; i < PQntuples(res); i++) {
        long long id = strtoll(PQgetvalue(res, i, 0), NULL, 10);

        if (usher_ticket_sign(key, event, id, code, sizeof(code)) != USHER_OK) {
            fprintf(stderr, "%s: cannot sign the code of registration %lld\n", PROGRAM, id);
            return 1;
        }
        if (puts(code) == EOF) {
            perror(PROGRAM ": stdout");
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    long long event = 0, ticket_type = 0;
    const bench_int_option ints[] = {
        { "--event", &event, 1, INT64_MAX },
        { "--ticket-type", &ticket_type, 0, INT64_MAX },
    };
    const char *url = getenv("USHER_DATABASE_URL"), *secret = getenv("USHER_TICKET_SECRET");
    unsigned char key[USHER_TICKET_KEY_BYTES];
    char event_text[24], tt_text[24];
    PGconn *conn;
    PGresult *res;
    int rc = bench_parse_options(argc, argv, ints, 2, NULL, 0);

    if (rc != 0 || event == 0) {
        fputs(usage, stderr);
        return rc == 1 ? 1 : 2;
    }
    if (url == NULL || secret == NULL || usher_ticket_key_from_hex(secret, key) != USHER_OK) {
        fprintf(stderr, "%s: set USHER_DATABASE_URL and USHER_TICKET_SECRET (64 hex digits)\n",
                PROGRAM);
        return 1;
    }
    conn = PQconnectdb(url);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "%s: connect: %s", PROGRAM, PQerrorMessage(conn));
        PQfinish(conn);
        return 1;
    }
    snprintf(event_text, sizeof(event_text), "%lld", event);
    snprintf(tt_text, sizeof(tt_text), "%lld", ticket_type);
    const char *params[] = { event_text, ticket_type != 0 ? tt_text : NULL };
    res = PQexecParams(conn,
                       "SELECT id FROM registrations WHERE event_id = $1"
                       " AND ($2::bigint IS NULL OR ticket_type_id = $2) ORDER BY id",
                       2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "%s: query: %s", PROGRAM, PQerrorMessage(conn));
        rc = 1;
    } else {
        rc = print_codes(key, event, res);
    }
    PQclear(res);
    PQfinish(conn);
    if (rc == 0 && fflush(stdout) != 0) {
        perror(PROGRAM ": stdout");
        rc = 1;
    }
    return rc;
}
