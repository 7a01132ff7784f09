/*
 * One join over registration, event and ticket type. The event's start is
 * formatted in the event's own time zone by PostgreSQL, which knows the
 * zone rules; texts are copied with truncation guards sized past the
 * columns' CHECK limits.
 */
#include "registration_facts.h"

#include <stdio.h>
#include <stdlib.h>

static const char facts_sql[] =
    "SELECT r.id, r.event_id, floor(extract(epoch FROM r.created_at))::int8, r.status, r.name,"
    " r.email,"
    " e.name, e.venue,"
    " to_char(e.starts_at AT TIME ZONE e.timezone, 'Dy DD Mon YYYY, HH24:MI')"
    "   || ' (' || e.timezone || ')',"
    " t.name, coalesce(r.locale, e.locale),"
    " usher_format_time(e.starts_at, e.timezone, coalesce(r.locale, e.locale))"
    " FROM registrations r JOIN events e ON e.id = r.event_id"
    " JOIN ticket_types t ON t.id = r.ticket_type_id WHERE r.id = $1";

static void copy(char *dst, size_t len, const PGresult *res, int col)
{
    snprintf(dst, len, "%s", PQgetvalue(res, 0, col));
}

usher_err usher_registration_facts_load(usher_store *st, const usher_config *cfg, int64_t id,
                                        usher_registration_facts *out)
{
    unsigned char key[USHER_TICKET_KEY_BYTES];
    PGresult *res;
    usher_err err = usher_store_exec_one(st, facts_sql, id, "registration", &res);

    if (err != USHER_OK)
        return err;
    *out = (usher_registration_facts){ .registration_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10),
                                       .event_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10),
                                       .created_at_s = strtoll(PQgetvalue(res, 0, 2), NULL, 10) };
    copy(out->status, sizeof(out->status), res, 3);
    copy(out->attendee_name, sizeof(out->attendee_name), res, 4);
    copy(out->email, sizeof(out->email), res, 5);
    copy(out->event_name, sizeof(out->event_name), res, 6);
    copy(out->venue, sizeof(out->venue), res, 7);
    copy(out->starts_at, sizeof(out->starts_at), res, 8);
    copy(out->ticket_type, sizeof(out->ticket_type), res, 9);
    copy(out->locale, sizeof(out->locale), res, 10);
    copy(out->starts_at_local, sizeof(out->starts_at_local), res, 11);
    PQclear(res);
    if (usher_ticket_key_from_hex(cfg->ticket_secret, key) != USHER_OK)
        return usher_store_fail(st, USHER_ERR_CONFIG,
                                "[tickets] secret (USHER_TICKET_SECRET) is not 64 hex digits");
    err = usher_ticket_sign(key, out->event_id, out->registration_id, out->ticket_code,
                            sizeof(out->ticket_code));
    if (err != USHER_OK)
        return usher_store_fail(st, err, "cannot sign the ticket code");
    return USHER_OK;
}
