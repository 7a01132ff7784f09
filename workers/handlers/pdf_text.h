/*
 * What the PDF renderers share without libharu: field checks, fitting a
 * line of text into a width, and the configured font files. Implemented in
 * pdf_doc.c; used by it, by pdf_table.c (through pdf_doc.h) and by the
 * ticket page (pdf_ticket_page.c), which is written without libharu.
 */
#ifndef USHER_PDF_TEXT_H
#define USHER_PDF_TEXT_H

#include <stddef.h>

#include "error.h"

#define PDF_ELLIPSIS      "\xe2\x80\xa6"
#define PDF_MIN_FONT_SIZE 5.0f /* text shrinks down to this, then is cut */

/* Width in points of the first len bytes of UTF-8 text at size, in the font ctx stands for. */
typedef float (*pdf_width_fn)(const void *ctx, const char *text, size_t len, float size);

/*
 * Checks one text field: valid UTF-8 of at most max bytes; required
 * fields must also be non-empty. USHER_ERR_INVALID with errbuf naming what.
 */
usher_err pdf_check_field(const char *what, const char *s, int required, size_t max, char *errbuf,
                          size_t errlen);

/* Longest prefix of text (on a UTF-8 boundary) that, followed by an ellipsis, fits max_width. */
size_t pdf_fitting_prefix(pdf_width_fn width, const void *ctx, const char *text, float size,
                          float max_width);

/* The TrueType file set by usher_pdf_set_fonts for the regular (0) or bold (1) face. */
const char *pdf_font_path(int bold);

#endif
