/*
 * The demo is one statement of chained CTEs, so it commits whole or not at
 * all. Attendee names mix scripts (Latin with diacritics, Greek, Cyrillic)
 * so that tickets and badges show real-world names from the start; e-mail
 * addresses use example.org, which no mail ever reaches.
 */
#include "seed.h"

#include <stdio.h>
#include <stdlib.h>

#include "inttext.h"

static const char seed_sql[] =
    "WITH org AS (INSERT INTO organizers (name) VALUES ('Demo Events') RETURNING id),"
    " ev AS (INSERT INTO events (organizer_id, name, venue, timezone, starts_at, ends_at, tier)"
    "  SELECT id, 'Usher Summit 2026', 'Messe Berlin, Hall 3', 'Europe/Berlin',"
    "   date_trunc('day', now()) + interval '30 days 8 hours',"
    "   date_trunc('day', now()) + interval '31 days 17 hours', 'large' FROM org RETURNING id),"
    " tt AS (INSERT INTO ticket_types (event_id, name, capacity)"
    "  SELECT ev.id, t.name, t.capacity"
    "  FROM ev, (VALUES ('General admission', greatest(1000, $1::int)), ('VIP', 100),"
    "   ('Student', 300)) AS t(name, capacity)"
    "  RETURNING id, name),"
    " ss AS (INSERT INTO sessions (event_id, title, abstract, speakers, starts_at, ends_at,"
    "   capacity)"
    "  SELECT ev.id, s.title, s.abstract, s.speakers,"
    "   date_trunc('day', now()) + interval '30 days' + s.at,"
    "   date_trunc('day', now()) + interval '30 days' + s.at + interval '45 minutes', s.cap"
    "  FROM ev, (VALUES"
    "   ('Opening keynote: running a conference for 20,000 people',"
    "    'What breaks first when registration opens, and how to keep the door fast.',"
    "    ARRAY['Ada Lovelace'], interval '9 hours', 2000),"
    "   ('Queues that never lose a job', 'Durable queues in PostgreSQL with SKIP LOCKED.',"
    "    ARRAY['Grace Hopper', 'Edsger Dijkstra'], interval '10 hours', 300),"
    "   ('Check-in at scale', 'Scanners, signed tickets and offline gates.',"
    "    ARRAY['Margaret Hamilton'], interval '11 hours', 300),"
    "   ('Badges, tickets and fonts', 'Rendering every name correctly, from Zoë to Σωκράτης.',"
    "    ARRAY['Łukasz Żółć'], interval '13 hours', 200),"
    "   ('Autoscaling worker pools', 'Scaling on queue depth without flapping.',"
    "    ARRAY['Barbara Liskov'], interval '14 hours', 200),"
    "   ('Closing panel', 'What we learned this year.',"
    "    ARRAY['Ada Lovelace', 'Пётр Капица'], interval '16 hours', 2000))"
    "   AS s(title, abstract, speakers, at, cap)"
    "  RETURNING id),"
    " regs AS (INSERT INTO registrations (event_id, ticket_type_id, name, email)"
    "  SELECT ev.id, (SELECT id FROM tt WHERE name = 'General admission'),"
    "   n.first || ' ' || n.last,"
    "   'attendee' || g || '@example.org'"
    "  FROM ev, generate_series(1, $1::int) AS g,"
    "   LATERAL (SELECT (ARRAY['Ada', 'Grace', 'Zoë', 'Łukasz', 'Σωκράτης', 'Пётр', 'Amélie',"
    "     'Jürgen', 'Siobhán', 'Nuño'])[1 + g % 10] AS first,"
    "    (ARRAY['Lovelace', 'Hopper', 'Ångström', 'Żółć', 'Παπαδόπουλος', 'Иванов', 'Lefèvre',"
    "     'Müller', 'Ó Súilleabháin', 'Peña'])[1 + (g / 10) % 10] AS last) AS n"
    "  RETURNING id)"
    " SELECT (SELECT id FROM org), (SELECT id FROM ev), (SELECT count(*) FROM regs),"
    "  (SELECT count(*) FROM ss)";

/*
 * The ticket type's seats are striped by a trigger that fires at the end of
 * the seed statement, so the seats the demo registrations took are marked
 * by a second statement in the same transaction.
 */
static const char sold_sql[] =
    "SELECT usher_ticket_stripes_set(t.id, t.capacity, $1::int) FROM ticket_types t"
    " WHERE t.event_id = $2 AND t.name = 'General admission'";

usher_err usher_seed_demo(usher_store *st, int registrations, usher_seed_result *out)
{
    char count[USHER_INT_TEXT_MAX], event[USHER_INT_TEXT_MAX];
    const char *params[] = { count };
    const char *sold_params[] = { count, event };
    PGresult *res;
    usher_err err;

    if (registrations < 1 || registrations > 100000)
        return usher_store_fail(st, USHER_ERR_INVALID, "registrations must be 1..100000");

    usher_int_text(registrations, count);
    err = usher_store_command(st, "BEGIN");
    if (err == USHER_OK)
        err = usher_store_exec(st, seed_sql, 1, params, &res);
    if (err != USHER_OK) {
        usher_store_rollback(st);
        return err;
    }
    out->organizer_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    out->event_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    out->registrations = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    out->sessions = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    PQclear(res);
    usher_int_text(out->event_id, event);
    err = usher_store_exec(st, sold_sql, 2, sold_params, &res);
    if (err == USHER_OK)
        PQclear(res);
    return usher_store_end(st, err);
}
