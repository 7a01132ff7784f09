/*
 * The rows behind the search index's documents: one table of statements,
 * shared by the index.document handler (one row by id) and the rebuild
 * (every row, a page at a time). An event is its name and venue; a session
 * its title, its abstract followed by the file names of its materials, and
 * its speakers; an attendee (a confirmed registration) its name and email.
 */
#include "index_sources.h"

#include <stdlib.h>
#include <string.h>

#define EVENT_ROWS "SELECT id, id, name, venue, '', '', '' FROM events WHERE "
#define SESSION_ROWS                                                                \
    "SELECT id, event_id, title,"                                                   \
    " concat_ws(' ', abstract, (SELECT string_agg(d.filename, ' ' ORDER BY d.id)"   \
    "  FROM documents d WHERE d.session_id = sessions.id AND d.kind = 'content'))," \
    " array_to_string(speakers, ', '), '', '' FROM sessions WHERE "
#define ATTENDEE_ROWS \
    "SELECT id, event_id, '', '', '', name, email FROM registrations WHERE status = 'confirmed' AND "
#define ONE  "id = $1"
#define PAGE "id > $1 ORDER BY id LIMIT $2"

const usher_index_source usher_index_sources[USHER_INDEX_NSOURCES] = {
    { "event", EVENT_ROWS ONE, EVENT_ROWS PAGE },
    { "session", SESSION_ROWS ONE, SESSION_ROWS PAGE },
    { "attendee", ATTENDEE_ROWS ONE, ATTENDEE_ROWS PAGE },
};

const usher_index_source *usher_index_source_find(const char *type)
{
    for (size_t i = 0; type != NULL && i < USHER_INDEX_NSOURCES; i++) {
        if (strcmp(usher_index_sources[i].type, type) == 0)
            return &usher_index_sources[i];
    }
    return NULL;
}

void usher_index_doc_from_row(const usher_index_source *src, const PGresult *res, int row,
                              usher_index_doc *doc)
{
    *doc = (usher_index_doc){
        .type = src->type,
        .id = strtoll(PQgetvalue(res, row, 0), NULL, 10),
        .event_id = strtoll(PQgetvalue(res, row, 1), NULL, 10),
        .title = PQgetvalue(res, row, 2),
        .body = PQgetvalue(res, row, 3),
        .speakers = PQgetvalue(res, row, 4),
        .name = PQgetvalue(res, row, 5),
        .email = PQgetvalue(res, row, 6),
    };
}
