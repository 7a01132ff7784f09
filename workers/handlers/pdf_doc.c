/*
 * The libharu adapter of the PDF renderers (badges and report tables):
 * document set-up, fonts, drawing a line of text and error translation.
 * The fitting of text and the checks of fields are pdf_text.c's, shared
 * with the cairo tickets; this file only measures and draws with libharu.
 *
 * libharu reports errors through the handler given to HPDF_New. The handler
 * below only records the first error and returns; libharu then returns the
 * error status from the failing call and refuses further work on the
 * document, so every call is checked, a render stops at the first failure
 * and the document is freed with HPDF_Free on every path. No setjmp/longjmp.
 *
 * Text is UTF-8 through HPDF_UseUTFEncodings and an embedded TrueType font
 * (libharu writes only the glyphs used). Streams are deflated. libharu writes
 * no /ID and no dates unless asked, so the same input yields the same bytes.
 */
#include "pdf_doc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

static void HPDF_STDCALL on_error(HPDF_STATUS error_no, HPDF_STATUS detail_no, void *user_data)
{
    pdf_doc *d = user_data;

    if (d->error_no == HPDF_OK) {
        d->error_no = error_no;
        d->detail_no = detail_no;
    }
}

static const char *hpdf_message(HPDF_STATUS error_no)
{
    switch (error_no) {
    case HPDF_FAILD_TO_ALLOC_MEM:
        return "out of memory";
    case HPDF_FILE_IO_ERROR:
        return "file read error";
    case HPDF_FILE_OPEN_ERROR:
        return "cannot open the font file";
    case HPDF_INVALID_FONTDEF_DATA:
    case HPDF_TTF_INVALID_FOMAT:
    case HPDF_TTF_INVALID_CMAP:
    case HPDF_TTF_MISSING_TABLE:
        return "the font file is not a usable TrueType font";
    case HPDF_TTF_CANNOT_EMBEDDING_FONT:
        return "the font's licence forbids embedding";
    case HPDF_INVALID_ENCODER:
        return "the UTF-8 encoder is not available";
    case HPDF_STRING_OUT_OF_RANGE:
        return "a text is too long for a PDF string";
    default:
        return "libharu failed";
    }
}

/* Turns the recorded libharu error (or, if none, the failing step) into a usher_err. */
usher_err pdf_doc_fail(const pdf_doc *d, const char *step, char *errbuf, size_t errlen)
{
    HPDF_STATUS e = d->error_no;

    if (d->out_of_memory) {
        snprintf(errbuf, errlen, "PDF: %s: out of memory", step);
        return USHER_ERR_NOMEM;
    }
    if (e == HPDF_OK) {
        snprintf(errbuf, errlen, "PDF: %s failed", step);
        return USHER_ERR_INVALID;
    }
    snprintf(errbuf, errlen, "PDF: %s: %s (libharu error 0x%04X, detail %u)", step, hpdf_message(e),
             (unsigned)e, (unsigned)d->detail_no);
    if (e == HPDF_FAILD_TO_ALLOC_MEM)
        return USHER_ERR_NOMEM;
    if (e == HPDF_FILE_IO_ERROR || e == HPDF_FILE_OPEN_ERROR)
        return USHER_ERR_IO;
    return USHER_ERR_INVALID;
}

static HPDF_Font load_font(pdf_doc *d, const char *path)
{
    const char *name = HPDF_LoadTTFontFromFile(d->pdf, path, HPDF_TRUE);

    if (name == NULL)
        return NULL;
    return HPDF_GetFont(d->pdf, name, "UTF-8");
}

/* Creates the document with UTF-8 text and both fonts loaded. */
usher_err pdf_doc_open(pdf_doc *d, char *errbuf, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    d->pdf = HPDF_New(on_error, d);
    if (d->pdf == NULL) {
        snprintf(errbuf, errlen, "PDF: cannot create a document: out of memory");
        return USHER_ERR_NOMEM;
    }
    if (HPDF_SetCompressionMode(d->pdf, HPDF_COMP_ALL) != HPDF_OK ||
        HPDF_UseUTFEncodings(d->pdf) != HPDF_OK ||
        HPDF_SetCurrentEncoder(d->pdf, "UTF-8") != HPDF_OK ||
        HPDF_SetInfoAttr(d->pdf, HPDF_INFO_CREATOR, "Usher") != HPDF_OK)
        return pdf_doc_fail(d, "setting up the document", errbuf, errlen);
    d->regular = load_font(d, pdf_font_path(0));
    if (d->regular == NULL)
        return pdf_doc_fail(d, pdf_font_path(0), errbuf, errlen);
    d->bold = load_font(d, pdf_font_path(1));
    if (d->bold == NULL)
        return pdf_doc_fail(d, pdf_font_path(1), errbuf, errlen);
    return USHER_OK;
}

/* Serialises the document into a malloc'd buffer. */
usher_err pdf_doc_save(pdf_doc *d, unsigned char **pdf, size_t *len, char *errbuf, size_t errlen)
{
    HPDF_UINT32 size, got;
    unsigned char *buf;

    if (HPDF_SaveToStream(d->pdf) != HPDF_OK)
        return pdf_doc_fail(d, "writing the document", errbuf, errlen);
    size = HPDF_GetStreamSize(d->pdf);
    if (size == 0)
        return pdf_doc_fail(d, "writing the document", errbuf, errlen);
    buf = usher_malloc(size);
    got = size;
    if (HPDF_ReadFromStream(d->pdf, buf, &got) != HPDF_OK && got != size) {
        free(buf);
        return pdf_doc_fail(d, "reading the document back", errbuf, errlen);
    }
    if (got != size) {
        free(buf);
        snprintf(errbuf, errlen, "PDF: read %u of %u bytes back", (unsigned)got, (unsigned)size);
        return USHER_ERR_IO;
    }
    *pdf = buf;
    *len = size;
    return USHER_OK;
}

/* pdf_width_fn for a libharu font: the width in points of the first len bytes of text at size. */
static float font_width(const void *font, const char *text, size_t len, float size)
{
    HPDF_TextWidth tw =
        HPDF_Font_TextWidth((HPDF_Font)font, (const HPDF_BYTE *)text, (HPDF_UINT)len);

    return (float)tw.width * size / 1000.0f;
}

static HPDF_STATUS show(HPDF_Page page, HPDF_Font font, float size, float x, float y,
                        const char *text)
{
    HPDF_STATUS st = HPDF_Page_BeginText(page);

    if (st == HPDF_OK)
        st = HPDF_Page_SetFontAndSize(page, font, size);
    if (st == HPDF_OK)
        st = HPDF_Page_TextOut(page, x, y, text);
    if (st == HPDF_OK)
        st = HPDF_Page_EndText(page);
    return st;
}

/*
 * Draws one line of text at baseline y, starting at x (PDF_LEFT) or centred on
 * x + max_width / 2 (PDF_CENTER), shrunk or cut to fit by pdf_fit_line.
 */
usher_err pdf_draw_line(pdf_doc *d, HPDF_Page page, HPDF_Font font, float size, float x, float y,
                        float max_width, pdf_align how, const char *text)
{
    pdf_line line;
    HPDF_STATUS st;

    if (pdf_fit_line(font_width, font, text, size, max_width, &line) != USHER_OK) {
        d->out_of_memory = 1;
        return USHER_ERR_NOMEM;
    }
    if (how == PDF_CENTER)
        x += (max_width - line.width) / 2;
    st = d->error_no == HPDF_OK ? show(page, font, line.size, x, y, line.text) : d->error_no;
    pdf_line_release(&line);
    return st == HPDF_OK ? USHER_OK : USHER_ERR_INVALID;
}

/* Adds a portrait page of width x height mm (libharu 2.3 has no A6 preset). */
HPDF_Page pdf_doc_add_page(pdf_doc *d, float width_mm, float height_mm)
{
    HPDF_Page page = HPDF_AddPage(d->pdf);

    if (page == NULL || HPDF_Page_SetWidth(page, width_mm * PDF_MM) != HPDF_OK ||
        HPDF_Page_SetHeight(page, height_mm * PDF_MM) != HPDF_OK)
        return NULL;
    return page;
}
