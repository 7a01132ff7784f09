/*
 * The libharu adapter shared by the libharu renderers (pdf_render.c:
 * badges; pdf_table.c: report tables). Only these files include hpdf.h;
 * tickets are drawn with cairo (pdf_ticket_page.c) and share only
 * pdf_text.h with them. A pdf_doc is one document being built with UTF-8
 * text in the embedded fonts set by usher_pdf_set_fonts; the first libharu
 * error is recorded in it and turned into a usher_err with a message by
 * pdf_doc_fail.
 */
#ifndef USHER_PDF_DOC_H
#define USHER_PDF_DOC_H

#include <hpdf.h>
#include <stddef.h>

#include "error.h"
#include "pdf_text.h" /* PDF_MM, pdf_check_field, pdf_fit_line: shared with the tickets */

typedef struct pdf_doc {
    HPDF_Doc pdf;
    HPDF_Font regular, bold;
    HPDF_STATUS error_no, detail_no; /* the first error libharu reported */
    int out_of_memory;               /* one of our own allocations failed */
} pdf_doc;

typedef enum pdf_align { PDF_LEFT, PDF_CENTER } pdf_align;

/*
 * Creates the document (deflated streams, UTF-8, both fonts loaded). The
 * caller calls HPDF_Free(d->pdf) on every path, failure included.
 */
USHER_MUSTCHECK usher_err pdf_doc_open(pdf_doc *d, char *errbuf, size_t errlen);

/* Turns the recorded libharu error (or, if none, the failing step) into a usher_err. */
USHER_MUSTCHECK usher_err pdf_doc_fail(const pdf_doc *d, const char *step, char *errbuf,
                                       size_t errlen);

/* Serialises the document into a malloc'd buffer of *len bytes, which the caller frees. */
USHER_MUSTCHECK usher_err pdf_doc_save(pdf_doc *d, unsigned char **pdf, size_t *len, char *errbuf,
                                       size_t errlen);

/* Adds a page of width x height mm; NULL on failure (then call pdf_doc_fail). */
HPDF_Page pdf_doc_add_page(pdf_doc *d, float width_mm, float height_mm);

/*
 * Draws one line of text at baseline y, starting at x (PDF_LEFT) or
 * centred on x + max_width / 2 (PDF_CENTER), fitted by pdf_fit_line: too
 * wide, the size shrinks to fit, down to a minimum; still too wide, the
 * text is cut and ends with an ellipsis.
 */
USHER_MUSTCHECK usher_err pdf_draw_line(pdf_doc *d, HPDF_Page page, HPDF_Font font, float size,
                                        float x, float y, float max_width, pdf_align how,
                                        const char *text);

#endif
