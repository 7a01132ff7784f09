/*
 * Report tables with libharu, on the document helpers of pdf_doc.c. Pages
 * are A4 landscape with fixed row heights, so how many rows fit a page is
 * a constant: a row that does not fit starts a page, which first gets the
 * title and the header row. The page count is known only at the end, so
 * finish() goes back over the pages (libharu keeps each page's content
 * stream open until the document is saved) and writes "Page N of M".
 */
#include "pdf_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "pdf_doc.h"
#include "pdf_render.h"

#define PAGE_W_MM   297.0f
#define PAGE_H_MM   210.0f
#define MARGIN      (12 * PDF_MM)
#define TITLE_SIZE  12.0f
#define TITLE_H     24.0f /* title line and the gap under it */
#define HEADER_H    16.0f
#define ROW_H       12.0f
#define CELL_SIZE   8.0f
#define FOOTER_H    20.0f
#define CELL_PAD    3.0f
#define TABLE_TOP   (PAGE_H_MM * PDF_MM - MARGIN - TITLE_H)
#define ROWS_AREA_H (TABLE_TOP - HEADER_H - MARGIN - FOOTER_H)

struct usher_pdf_table {
    pdf_doc doc;
    char *title;
    char *headers[USHER_PDF_TABLE_MAX_COLUMNS];
    float x[USHER_PDF_TABLE_MAX_COLUMNS + 1]; /* left edge of each column, then the right edge */
    size_t ncols;
    HPDF_Page *pages;
    size_t npages, pages_cap;
    size_t rows, rows_on_page;
    usher_err failed; /* sticky: the first error */
};

size_t usher_pdf_table_rows_per_page(void)
{
    return (size_t)(ROWS_AREA_H / ROW_H);
}

static USHER_MUSTCHECK usher_err check_columns(const char *title, const usher_pdf_column *cols,
                                               size_t ncols, char *errbuf, size_t errlen)
{
    usher_err err = pdf_check_field("table title", title, 1, USHER_PDF_MAX_FIELD, errbuf, errlen);

    if (err == USHER_OK && (cols == NULL || ncols == 0 || ncols > USHER_PDF_TABLE_MAX_COLUMNS))
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "table: 1 to %d columns",
                            USHER_PDF_TABLE_MAX_COLUMNS);
    for (size_t i = 0; err == USHER_OK && i < ncols; i++) {
        err =
            pdf_check_field("column title", cols[i].title, 1, USHER_PDF_MAX_FIELD, errbuf, errlen);
        if (err == USHER_OK && !(cols[i].share > 0))
            return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID,
                                "table: column %zu needs a positive share", i);
    }
    return err;
}

/* Copies the titles and lays the columns out across the page width. */
static void set_columns(usher_pdf_table *t, const char *title, const usher_pdf_column *cols,
                        size_t ncols)
{
    float total = 0, width = PAGE_W_MM * PDF_MM - 2 * MARGIN;

    t->title = usher_strdup(title);
    for (size_t i = 0; i < ncols; i++) {
        t->headers[i] = usher_strdup(cols[i].title);
        total += cols[i].share;
    }
    t->ncols = ncols;
    t->x[0] = MARGIN;
    for (size_t i = 0; i < ncols; i++)
        t->x[i + 1] = t->x[i] + width * cols[i].share / total;
}

usher_err usher_pdf_table_open(const char *title, const usher_pdf_column *cols, size_t ncols,
                               usher_pdf_table **out, char *errbuf, size_t errlen)
{
    usher_pdf_table *t;
    usher_err err;

    *out = NULL;
    err = check_columns(title, cols, ncols, errbuf, errlen);
    if (err != USHER_OK)
        return err;
    t = usher_calloc(1, sizeof(*t));
    set_columns(t, title, cols, ncols);
    err = pdf_doc_open(&t->doc, errbuf, errlen);
    if (err != USHER_OK) {
        usher_pdf_table_free(t);
        return err;
    }
    *out = t;
    return USHER_OK;
}

/* A grey band behind the header row, then the column titles in bold. */
static USHER_MUSTCHECK usher_err draw_header(usher_pdf_table *t, HPDF_Page page)
{
    float y = TABLE_TOP - HEADER_H, width = t->x[t->ncols] - t->x[0];
    HPDF_STATUS st = HPDF_Page_SetGrayFill(page, 0.88f);

    if (st == HPDF_OK)
        st = HPDF_Page_Rectangle(page, t->x[0], y, width, HEADER_H);
    if (st == HPDF_OK)
        st = HPDF_Page_Fill(page);
    if (st == HPDF_OK)
        st = HPDF_Page_SetGrayFill(page, 0);
    if (st != HPDF_OK)
        return USHER_ERR_INVALID;
    for (size_t i = 0; i < t->ncols; i++) {
        if (pdf_draw_line(&t->doc, page, t->doc.bold, CELL_SIZE, t->x[i] + CELL_PAD, y + 5,
                          t->x[i + 1] - t->x[i] - 2 * CELL_PAD, PDF_LEFT,
                          t->headers[i]) != USHER_OK)
            return USHER_ERR_INVALID;
    }
    return USHER_OK;
}

/* Starts a page: the title and the header row. */
static USHER_MUSTCHECK usher_err new_page(usher_pdf_table *t, char *errbuf, size_t errlen)
{
    HPDF_Page page;

    if (t->npages == t->pages_cap) {
        size_t cap = t->pages_cap ? 2 * t->pages_cap : 64;
        HPDF_Page *grown = usher_realloc(t->pages, cap * sizeof(*grown));
        t->pages = grown;
        t->pages_cap = cap;
    }
    page = pdf_doc_add_page(&t->doc, PAGE_W_MM, PAGE_H_MM);
    if (page == NULL)
        return pdf_doc_fail(&t->doc, "adding a table page", errbuf, errlen);
    t->pages[t->npages++] = page;
    t->rows_on_page = 0;
    if (pdf_draw_line(&t->doc, page, t->doc.bold, TITLE_SIZE, MARGIN,
                      PAGE_H_MM * PDF_MM - MARGIN - TITLE_SIZE, t->x[t->ncols] - MARGIN, PDF_LEFT,
                      t->title) != USHER_OK ||
        draw_header(t, page) != USHER_OK)
        return pdf_doc_fail(&t->doc, "drawing the table header", errbuf, errlen);
    return USHER_OK;
}

/* A copy of cell with line breaks and tabs turned into spaces, or NULL. */
static char *flatten(const char *cell)
{
    char *copy = usher_strdup(cell);

    for (char *p = copy; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    }
    return copy;
}

static USHER_MUSTCHECK usher_err draw_cell(usher_pdf_table *t, size_t col, float y,
                                           const char *cell, char *errbuf, size_t errlen)
{
    HPDF_Page page = t->pages[t->npages - 1];
    char *text;
    usher_err err;

    if (cell == NULL || cell[0] == '\0')
        return USHER_OK;
    err = pdf_check_field(t->headers[col], cell, 0, USHER_PDF_MAX_FIELD, errbuf, errlen);
    if (err != USHER_OK)
        return err;
    text = flatten(cell);
    err = pdf_draw_line(&t->doc, page, t->doc.regular, CELL_SIZE, t->x[col] + CELL_PAD, y,
                        t->x[col + 1] - t->x[col] - 2 * CELL_PAD, PDF_LEFT, text);
    free(text);
    if (err != USHER_OK)
        return pdf_doc_fail(&t->doc, "drawing a table cell", errbuf, errlen);
    return USHER_OK;
}

usher_err usher_pdf_table_row(usher_pdf_table *t, const char *const *cells, char *errbuf,
                              size_t errlen)
{
    usher_err err = t->failed;
    float y;

    if (err != USHER_OK)
        return usher_errbuf(errbuf, errlen, err, "table: an earlier row failed");
    if (t->rows == USHER_PDF_TABLE_MAX_ROWS)
        err = usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "table: more than %d rows",
                           USHER_PDF_TABLE_MAX_ROWS);
    if (err == USHER_OK && (t->npages == 0 || t->rows_on_page == usher_pdf_table_rows_per_page()))
        err = new_page(t, errbuf, errlen);
    y = TABLE_TOP - HEADER_H - (float)(t->rows_on_page + 1) * ROW_H + 3;
    for (size_t i = 0; err == USHER_OK && i < t->ncols; i++)
        err = draw_cell(t, i, y, cells[i], errbuf, errlen);
    if (err == USHER_OK) {
        t->rows++;
        t->rows_on_page++;
    }
    t->failed = err;
    return err;
}

/* "Page N of M" at the bottom right of every page. */
static USHER_MUSTCHECK usher_err number_pages(usher_pdf_table *t, char *errbuf, size_t errlen)
{
    float width = 120;

    for (size_t i = 0; i < t->npages; i++) {
        char text[64];
        snprintf(text, sizeof(text), "Page %zu of %zu", i + 1, t->npages);
        if (pdf_draw_line(&t->doc, t->pages[i], t->doc.regular, CELL_SIZE, t->x[t->ncols] - width,
                          MARGIN, width, PDF_LEFT, text) != USHER_OK)
            return pdf_doc_fail(&t->doc, "numbering the pages", errbuf, errlen);
    }
    return USHER_OK;
}

usher_err usher_pdf_table_finish(usher_pdf_table *t, unsigned char **pdf, size_t *len, char *errbuf,
                                 size_t errlen)
{
    usher_err err = t->failed;

    if (err != USHER_OK)
        return usher_errbuf(errbuf, errlen, err, "table: an earlier row failed");
    if (t->npages == 0)
        err = new_page(t, errbuf, errlen);
    if (err == USHER_OK)
        err = number_pages(t, errbuf, errlen);
    if (err == USHER_OK)
        err = pdf_doc_save(&t->doc, pdf, len, errbuf, errlen);
    t->failed = err;
    return err;
}

void usher_pdf_table_free(usher_pdf_table *t)
{
    if (t == NULL)
        return;
    HPDF_Free(t->doc.pdf);
    free(t->pages);
    for (size_t i = 0; i < t->ncols; i++)
        free(t->headers[i]);
    free(t->title);
    free(t);
}
