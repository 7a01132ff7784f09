/*
 * Tables across PDF pages, for reports: A4 landscape pages, each with the
 * report's title, the header row and a "Page N of M" footer, filled one
 * row at a time so the caller can stream rows from the database. Text is
 * UTF-8 in the embedded DejaVu font (see pdf_render.h); a cell too wide
 * for its column is shrunk, then cut with an ellipsis. The same rows give
 * byte-identical output.
 */
#ifndef USHER_PDF_TABLE_H
#define USHER_PDF_TABLE_H

#include <stddef.h>

#include "error.h"

#define USHER_PDF_TABLE_MAX_COLUMNS 16
#define USHER_PDF_TABLE_MAX_ROWS    100000 /* the whole document is built in memory */

typedef struct usher_pdf_column {
    const char *title; /* required, borrowed for the call */
    float share;       /* relative width: columns get share / sum of shares of the width */
} usher_pdf_column;

typedef struct usher_pdf_table usher_pdf_table;

/*
 * Starts a table of ncols columns (1..USHER_PDF_TABLE_MAX_COLUMNS) under
 * title (printed on every page). title and the column titles are copied.
 * Errors: USHER_ERR_INVALID (bad argument, detail in errbuf), USHER_ERR_IO
 * (font file unreadable), USHER_ERR_NOMEM (libharu ran out).
 */
USHER_MUSTCHECK usher_err usher_pdf_table_open(const char *title, const usher_pdf_column *cols,
                                               size_t ncols, usher_pdf_table **out, char *errbuf,
                                               size_t errlen);

/*
 * Adds one row of ncols cells (borrowed; NULL or "" leaves a cell blank),
 * starting a new page with the header row when the page is full. Line
 * breaks and tabs in a cell are shown as spaces. USHER_ERR_INVALID for a
 * cell that is not UTF-8 or longer than USHER_PDF_MAX_FIELD bytes, or past
 * USHER_PDF_TABLE_MAX_ROWS rows; after any error the table only accepts
 * usher_pdf_table_free.
 */
USHER_MUSTCHECK usher_err usher_pdf_table_row(usher_pdf_table *t, const char *const *cells,
                                              char *errbuf, size_t errlen);

/*
 * Numbers the pages and writes the document into a malloc'd buffer of
 * *len bytes, which the caller frees. A table without rows still has one
 * page with its header. The table must still be freed.
 */
USHER_MUSTCHECK usher_err usher_pdf_table_finish(usher_pdf_table *t, unsigned char **pdf,
                                                 size_t *len, char *errbuf, size_t errlen);

/* Frees t; NULL is accepted. */
void usher_pdf_table_free(usher_pdf_table *t);

/* Rows that fit on one page, for callers that report progress by page. */
size_t usher_pdf_table_rows_per_page(void);

#endif
