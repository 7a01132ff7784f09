/*
 * A one-page PDF written directly: text in up to two embedded TrueType
 * fonts (subset to the glyphs the page uses, Identity-H encoding, with a
 * ToUnicode map so the text can be extracted and searched) and vector
 * paths. The content, the fonts and the ToUnicode maps are deflated. No
 * dates and no /ID are written: the same calls give the same bytes.
 *
 * Used for ticket pages, where libharu spent milliseconds per document
 * parsing the font file and mapping all 65,536 BMP code points for each
 * font (pdf_render.c keeps libharu for badge sheets).
 */
#ifndef USHER_PDF_PAGE_H
#define USHER_PDF_PAGE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"
#include "pdf_ttf.h"

#define USHER_PDF_PAGE_FONTS 2

typedef struct usher_pdf_font_use {
    const usher_ttf *ttf;
    uint16_t *subset_of; /* per font glyph: its number in the subset, 0 = not used yet */
    uint16_t *glyphs;    /* per subset number: the font glyph; [0] = .notdef */
    uint32_t *unicode;   /* per subset number: the code point it shows (0 = none) */
    size_t n, cap;
} usher_pdf_font_use;

typedef struct usher_pdf_page {
    float width, height; /* points */
    usher_buf content;   /* the page's content stream, uncompressed */
    usher_pdf_font_use fonts[USHER_PDF_PAGE_FONTS];
    int failed; /* an allocation failed */
} usher_pdf_page;

/* Starts a page of width x height points whose fonts 0 and 1 are the given ones. */
usher_err usher_pdf_page_init(usher_pdf_page *p, float width, float height, const usher_ttf *font0,
                              const usher_ttf *font1);
void usher_pdf_page_free(usher_pdf_page *p);

/* Width in points of the first len bytes of valid UTF-8 text in font at size. */
float usher_pdf_page_text_width(const usher_pdf_page *p, int font, const char *text, size_t len,
                                float size);
/* Shows valid UTF-8 text with its baseline starting at (x, y). */
void usher_pdf_page_text(usher_pdf_page *p, int font, float size, float x, float y,
                         const char *text);
/* Appends a number to the content stream, as PDF writes it (at most 3 decimals). */
void usher_pdf_page_num(usher_pdf_page *p, float v);
/* Appends raw operators to the content stream. */
void usher_pdf_page_ops(usher_pdf_page *p, const char *ops);

/*
 * Serialises the page into a malloc'd buffer (*pdf, *len) that the caller
 * frees. USHER_ERR_NOMEM, or USHER_ERR_INVALID (errbuf says why) when a
 * font cannot be subset.
 */
usher_err usher_pdf_page_finish(usher_pdf_page *p, unsigned char **pdf, size_t *len, char *errbuf,
                                size_t errlen);

#endif
