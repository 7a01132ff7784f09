/*
 * What the search index holds, as PostgreSQL has it: for each document
 * type the statement that reads one row by id (index.document jobs) and
 * the one that reads every row in pages by id (usherctl search rebuild).
 * Both return the columns id, event_id, title, body, speakers, name, email,
 * which usher_index_doc_from_row turns into the document the index gets.
 */
#ifndef USHER_INDEX_SOURCES_H
#define USHER_INDEX_SOURCES_H

#include <libpq-fe.h>
#include <stddef.h>

#include "xapian_wrap.h"

#define USHER_INDEX_NSOURCES 3 /* event, session, attendee */

typedef struct usher_index_source {
    const char *type;     /* "event", "session" or "attendee" */
    const char *one_sql;  /* $1 = id: its row, or none when it is not indexed (gone) */
    const char *page_sql; /* $1 = the last id of the page before (0 first), $2 = rows, by id */
} usher_index_source;

extern const usher_index_source usher_index_sources[USHER_INDEX_NSOURCES];

/* The source of type, or NULL for an unknown (or NULL) type. */
const usher_index_source *usher_index_source_find(const char *type);

/* Row row of res (either statement of src) as *doc, whose strings are res's. */
void usher_index_doc_from_row(const usher_index_source *src, const PGresult *res, int row,
                              usher_index_doc *doc);

#endif
