/*
 * The rebuild: writer first, then a read-only snapshot of the database,
 * read a page of USHER_INDEX_REBUILD_PAGE rows at a time per source (keyset
 * pagination by id, so memory stays one page), each row put into the
 * index inside usher_index_replace_begin's transaction; the commit makes
 * the new index visible at once, and closing without it leaves the old.
 */
#include "index_rebuild.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "inttext.h"

/* Puts the page of src after *after; *after becomes its last id, *more whether it was full. */
static USHER_MUSTCHECK usher_err put_page(usher_store *st, usher_index *ix,
                                          const usher_index_source *src, int64_t *after,
                                          size_t *count, bool *more, char *errbuf, size_t errlen)
{
    char after_text[USHER_INT_TEXT_MAX], limit_text[USHER_INT_TEXT_MAX];
    const char *params[] = { usher_int_text(*after, after_text),
                             usher_int_text(USHER_INDEX_REBUILD_PAGE, limit_text) };
    PGresult *res = NULL;
    usher_err err = usher_store_exec(st, src->page_sql, 2, params, &res);
    int rows;

    if (err != USHER_OK)
        return usher_errbuf(errbuf, errlen, err, "reading %ss: %s", src->type,
                            usher_store_errstr(st));
    rows = PQntuples(res);
    for (int i = 0; i < rows && err == USHER_OK; i++) {
        usher_index_doc doc;

        usher_index_doc_from_row(src, res, i, &doc);
        err = usher_index_put(ix, &doc, errbuf, errlen);
        *after = doc.id;
    }
    *count += (size_t)rows;
    *more = rows == USHER_INDEX_REBUILD_PAGE;
    PQclear(res);
    return err;
}

static USHER_MUSTCHECK usher_err put_all(usher_store *st, usher_index *ix,
                                         size_t counts[USHER_INDEX_NSOURCES], char *errbuf,
                                         size_t errlen)
{
    usher_err err = USHER_OK;

    for (size_t i = 0; i < USHER_INDEX_NSOURCES && err == USHER_OK; i++) {
        int64_t after = 0;
        bool more = true;

        counts[i] = 0;
        while (more && err == USHER_OK)
            err = put_page(st, ix, &usher_index_sources[i], &after, &counts[i], &more, errbuf,
                           errlen);
    }
    return err;
}

usher_err usher_index_rebuild(usher_store *st, const usher_config *cfg, int lock_wait_ms,
                              size_t counts[USHER_INDEX_NSOURCES], char *errbuf, size_t errlen)
{
    usher_index *ix = NULL;
    usher_err err, closed;

    err = usher_index_open_waiting(cfg->search_index_dir, cfg->search_language, lock_wait_ms, &ix,
                                   errbuf, errlen);
    if (err != USHER_OK)
        return err;
    err = usher_index_replace_begin(ix, errbuf, errlen);
    if (err == USHER_OK) {
        err = usher_store_command(st, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        if (err != USHER_OK)
            err = usher_errbuf(errbuf, errlen, err, "%s", usher_store_errstr(st));
    }
    if (err == USHER_OK) {
        err = put_all(st, ix, counts, errbuf, errlen);
        /* Read-only: its end commits nothing; a failure to end it is the connection's. */
        usher_ignore(usher_store_end(st, err));
    }
    if (err == USHER_OK)
        err = usher_index_commit(ix, errbuf, errlen);
    /* Without the commit, closing abandons the replacement: the old index stays. */
    closed = usher_index_close(ix, err == USHER_OK ? errbuf : NULL, err == USHER_OK ? errlen : 0);
    return err != USHER_OK ? err : closed;
}
