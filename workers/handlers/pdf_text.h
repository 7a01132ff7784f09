/*
 * What the PDF renderers share, written without any PDF library: the
 * configured font files, field checks, and fitting a line of text into a
 * width. pdf_text.c implements it; the ticket page (cairo,
 * pdf_ticket_page.c and pdf_ticket_fonts.c) and the libharu adapter
 * (pdf_doc.c, for badges and report tables) both use it, so neither
 * library's code is linked for the other's sake.
 */
#ifndef USHER_PDF_TEXT_H
#define USHER_PDF_TEXT_H

#include <stddef.h>

#include "error.h"

#define PDF_MM            2.834645669f /* points per millimetre */
#define PDF_MIN_FONT_SIZE 5.0f         /* text shrinks down to this, then is cut */

/* Width in points of the first len bytes of UTF-8 text at size, in the font ctx stands for. */
typedef float (*pdf_width_fn)(const void *ctx, const char *text, size_t len, float size);

/*
 * Checks one text field: valid UTF-8 of at most max bytes; required
 * fields must also be non-empty. USHER_ERR_INVALID with errbuf naming what.
 */
USHER_MUSTCHECK usher_err pdf_check_field(const char *what, const char *s, int required, size_t max,
                                          char *errbuf, size_t errlen);

/* One line of text as pdf_fit_line fitted it. */
typedef struct pdf_line {
    const char *text; /* what to draw: the text given, or cut */
    char *cut;        /* the cut copy ending in an ellipsis, or NULL; pdf_line_release frees it */
    float size;       /* the size to draw it at */
    float width;      /* its width at that size */
} pdf_line;

/*
 * Fits text (borrowed, and referenced by out->text until released) into
 * max_width at size: too wide, the size shrinks to fit, down to
 * PDF_MIN_FONT_SIZE; still too wide, the text is cut on a UTF-8 boundary
 * and ends with an ellipsis. Measures with width(ctx, ...). USHER_ERR_NOMEM
 * when the cut copy cannot be allocated (out then holds nothing to free).
 */
USHER_MUSTCHECK usher_err pdf_fit_line(pdf_width_fn width, const void *ctx, const char *text,
                                       float size, float max_width, pdf_line *out);

/* Frees what pdf_fit_line allocated into line. */
void pdf_line_release(pdf_line *line);

/* The TrueType file set by usher_pdf_set_fonts (pdf_render.h), regular (0) or bold (1). */
const char *pdf_font_path(int bold);

#endif
