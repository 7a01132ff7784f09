/*
 * PDF building blocks for the pdf.ticket and pdf.badge jobs: a ticket page
 * with a QR code of the ticket code, and sheets of name badges. Output is
 * deterministic: the same input gives byte-identical PDF bytes. Text is
 * UTF-8 and set in an embedded TrueType font (DejaVu Sans by default), so
 * Latin, Greek and Cyrillic names render; DejaVu has no CJK glyphs (a
 * ticket shows them as the font's missing-glyph box, and its text still
 * extracts as written). Tickets are drawn with cairo (pdf_ticket_page.c),
 * badges with libharu (pdf_render.c); the fonts set here and the text
 * fitting are pdf_text.c's, shared by both.
 */
#ifndef USHER_PDF_RENDER_H
#define USHER_PDF_RENDER_H

#include <stddef.h>

#include "error.h"

#define USHER_PDF_FONT_REGULAR "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
#define USHER_PDF_FONT_BOLD    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
#define USHER_PDF_MAX_FIELD    2048 /* bytes per text field */
#define USHER_PDF_MAX_CODE     512  /* bytes of a ticket code */
#define USHER_PDF_MAX_BADGES   100000

typedef enum usher_page_size {
    USHER_PAGE_A4 = 0,
    USHER_PAGE_A6,
} usher_page_size;

/*
 * All fields are borrowed UTF-8 strings; every one is required (non-NULL,
 * non-empty, valid UTF-8, at most USHER_PDF_MAX_FIELD bytes; ticket_code at
 * most USHER_PDF_MAX_CODE). starts_at is display text prepared by the caller,
 * e.g. "Sat 5 Dec 2026, 18:00 (Europe/Berlin)".
 */
typedef struct usher_ticket {
    const char *event_name;
    const char *venue;
    const char *starts_at;
    const char *attendee_name;
    const char *ticket_type;
    const char *ticket_code;
} usher_ticket;

/* name is required; organisation and role may be NULL or "" (left blank). */
typedef struct usher_badge {
    const char *name;
    const char *organisation;
    const char *role;
} usher_badge;

/*
 * Sets the TrueType fonts (regular, bold) used by later renders in this
 * process; NULL restores the DejaVu default for that face. The paths are
 * copied. USHER_ERR_INVALID when a path is longer than PATH_MAX. Not
 * thread-safe: call at start-up or on config reload, between renders.
 */
USHER_MUSTCHECK usher_err usher_pdf_set_fonts(const char *regular_ttf, const char *bold_ttf);

/*
 * Renders one ticket page (A4 or A6; the A4 layout is the A6 one scaled by
 * 2): event name, date, venue, attendee, ticket type and a QR code (error
 * correction level M, 4-module quiet zone) of exactly ticket_code, with the
 * code printed under it. Text too wide for the page is shrunk, down to a
 * minimum size, then cut with an ellipsis. On USHER_OK *pdf is a malloc'd
 * buffer of *len bytes which the caller frees with free(). Errors:
 * USHER_ERR_INVALID (bad field, detail in errbuf), USHER_ERR_IO (font file
 * unreadable), USHER_ERR_NOMEM, USHER_ERR_TOO_LARGE (code too long for a QR).
 */
USHER_MUSTCHECK usher_err usher_pdf_ticket(const usher_ticket *t, usher_page_size size,
                                           unsigned char **pdf, size_t *len, char *errbuf,
                                           size_t errlen);

/*
 * Renders n badges (1 <= n <= USHER_PDF_MAX_BADGES) on A4 sheets of 8:
 * two columns by four rows of 90 x 55 mm cards with grey cut lines, filled
 * left to right, top to bottom, over ceil(n / 8) pages. Each card shows the
 * name (bold, large), the organisation and the role. Ownership and errors
 * as for usher_pdf_ticket.
 */
USHER_MUSTCHECK usher_err usher_pdf_badges(const usher_badge *badges, size_t n, unsigned char **pdf,
                                           size_t *len, char *errbuf, size_t errlen);

#endif
