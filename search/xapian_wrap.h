/*
 * The search index: Xapian behind a C API. Xapian's exceptions never cross
 * this line; every call returns a usher_err and writes the detail into
 * errbuf (which may be NULL when errlen is 0).
 *
 * One writer per index directory: Xapian holds a lock, and a second
 * usher_index_open_writer on the same directory fails at once with
 * USHER_ERR_CONFLICT. Searchers are read-only, any number of them, and see
 * the writer's commits on their next query. Handles are not thread-safe:
 * one handle per thread.
 *
 * Several hosts: the writer keeps changesets (usher_index_keep_changesets)
 * that xapian-replicate-server sends to the xapian-replicate of each API
 * host; a searcher opened on such a replica follows it, full copies
 * included (see usher_search_open).
 */
#ifndef USHER_XAPIAN_WRAP_H
#define USHER_XAPIAN_WRAP_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define USHER_SEARCH_MAX_LIMIT  100       /* hits per query */
#define USHER_SEARCH_MAX_OFFSET 10000     /* deeper pages are refused */
#define USHER_SEARCH_MAX_QUERY  1024      /* bytes of query text */
#define USHER_INDEX_MAX_FIELD   (1 << 20) /* bytes of one text field */
#define USHER_INDEX_TYPE_MAX    16        /* type name incl. the NUL */

typedef struct usher_index usher_index;
typedef struct usher_search usher_search;

/*
 * One document. type is "event", "session" or "attendee"; (type, id) is
 * its identity, id > 0. event_id is the event it belongs to (for an event,
 * its own id; 0 = none). Text fields may be NULL.
 */
typedef struct usher_index_doc {
    const char *type;
    int64_t id;
    int64_t event_id;
    const char *title;    /* events, sessions */
    const char *body;     /* description or abstract */
    const char *speakers; /* sessions */
    const char *name;     /* attendees */
    const char *email;    /* attendees */
} usher_index_doc;

typedef struct usher_search_hit {
    char type[USHER_INDEX_TYPE_MAX];
    int64_t id;
    int64_t event_id;
    double score;
    int percent;
} usher_search_hit;

/*
 * Opens the index in dir for writing, creating it if missing. language is a
 * Xapian stemmer name ("english", "german", ..., "none"); an unknown one is
 * USHER_ERR_INVALID. The language is recorded in the index, and reopening an
 * index with a different language is USHER_ERR_CONFIG (its terms would no
 * longer match). Another writer holding the index: USHER_ERR_CONFLICT.
 * Free *out with usher_index_close.
 */
USHER_MUSTCHECK usher_err usher_index_open_writer(const char *dir, const char *language,
                                                  usher_index **out, char *errbuf, size_t errlen);

/*
 * usher_index_open_writer, waiting up to budget_ms (backing off from 10 ms
 * to 160 ms) while another writer holds the index: a writer's batch
 * commits within milliseconds. Still held after that: USHER_ERR_CONFLICT.
 */
USHER_MUSTCHECK usher_err usher_index_open_waiting(const char *dir, const char *language,
                                                   int budget_ms, usher_index **out, char *errbuf,
                                                   size_t errlen);

/*
 * Makes the writers this process opens from now on keep their last n
 * changesets beside the index (Xapian's XAPIAN_MAX_CHANGESETS), so that
 * xapian-replicate-server can send each replica the commits it lacks
 * rather than a full copy; n = 0 leaves the environment as it is (no
 * changesets unless it says otherwise). Sets the process's environment:
 * call it before any thread starts. n < 0 is USHER_ERR_INVALID.
 */
USHER_MUSTCHECK usher_err usher_index_keep_changesets(int n, char *errbuf, size_t errlen);

/*
 * Starts replacing the whole index: every document is deleted inside a
 * transaction, which the puts that follow fill again and which
 * usher_index_commit makes visible as one revision, so searchers and
 * replicas see the old index or the new one, never a mix.
 * usher_index_close before that commit abandons the replacement. A
 * replacement already begun is USHER_ERR_STATE.
 */
USHER_MUSTCHECK usher_err usher_index_replace_begin(usher_index *ix, char *errbuf, size_t errlen);

/* Adds doc, or replaces the document with the same type and id. */
USHER_MUSTCHECK usher_err usher_index_put(usher_index *ix, const usher_index_doc *doc, char *errbuf,
                                          size_t errlen);

/* Deletes the document (type, id); deleting a missing one is not an error. */
USHER_MUSTCHECK usher_err usher_index_delete(usher_index *ix, const char *type, int64_t id,
                                             char *errbuf, size_t errlen);

/* Makes the changes since the last commit durable and visible to searchers. */
USHER_MUSTCHECK usher_err usher_index_commit(usher_index *ix, char *errbuf, size_t errlen);

/*
 * Commits what is pending (but abandons a replacement not yet committed),
 * releases the lock and frees ix (always, even when the commit fails).
 * Accepts NULL.
 */
USHER_MUSTCHECK usher_err usher_index_close(usher_index *ix, char *errbuf, size_t errlen);

/*
 * Opens the index in dir read-only. A missing index is USHER_ERR_NOT_FOUND.
 * The stemmer is the language the writer recorded. dir may be the index
 * itself or a replica that xapian-replicate keeps: a directory whose stub
 * file XAPIANDB names the live copy inside it (replica_0 or replica_1),
 * which the replicator switches after a full copy. Free with
 * usher_search_close.
 */
USHER_MUSTCHECK usher_err usher_search_open(const char *dir, usher_search **out, char *errbuf,
                                            size_t errlen);

/*
 * Runs query (Xapian query syntax: words, "phrases", AND/OR/NOT, prefixes
 * title: speaker: name: email:, the last word matched as a prefix) and writes
 * up to limit hits, best first, from offset on into hits[0..*nhits).
 * type_filter (NULL = all types, else one type or a comma-separated list
 * such as "event,session") and event_filter (0 = all events) restrict the
 * results; attendees are personal data, so public searches must name the
 * types they may see. An empty query matches every document that passes the
 * filters. *total_estimate is Xapian's estimate of all matches, exact for
 * result sets of up to 1,000. limit <= USHER_SEARCH_MAX_LIMIT, offset <=
 * USHER_SEARCH_MAX_OFFSET, else USHER_ERR_INVALID; a longer query than
 * USHER_SEARCH_MAX_QUERY is USHER_ERR_TOO_LARGE; a malformed one
 * USHER_ERR_INVALID. Sees every commit made before the call (on a replica:
 * every revision the replicator applied): it stats the replica's stub
 * file, opens the database afresh when the stub changed (a full copy) and
 * reopens it otherwise; a revision overwritten under a running query
 * (DatabaseModifiedError) or a copy removed under it opens afresh and runs
 * the query once more.
 */
USHER_MUSTCHECK usher_err usher_search_query(usher_search *s, const char *query,
                                             const char *type_filter, int64_t event_filter,
                                             size_t offset, size_t limit, usher_search_hit *hits,
                                             size_t *nhits, size_t *total_estimate, char *errbuf,
                                             size_t errlen);

/* Frees s. Accepts NULL. */
void usher_search_close(usher_search *s);

#ifdef __cplusplus
}
#endif

#endif
