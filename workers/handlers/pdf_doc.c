/*
 * The libharu adapter of the PDF renderers: document set-up, fonts, text
 * fitting and error translation.
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

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdf_render.h"

#define MIN_FONT_SIZE PDF_MIN_FONT_SIZE
#define ELLIPSIS      PDF_ELLIPSIS

static char font_regular[PATH_MAX] = USHER_PDF_FONT_REGULAR;
static char font_bold[PATH_MAX] = USHER_PDF_FONT_BOLD;

usher_err usher_pdf_set_fonts(const char *regular_ttf, const char *bold_ttf)
{
    const char *r = regular_ttf ? regular_ttf : USHER_PDF_FONT_REGULAR;
    const char *b = bold_ttf ? bold_ttf : USHER_PDF_FONT_BOLD;

    if (strlen(r) >= sizeof(font_regular) || strlen(b) >= sizeof(font_bold))
        return USHER_ERR_INVALID;
    memcpy(font_regular, r, strlen(r) + 1);
    memcpy(font_bold, b, strlen(b) + 1);
    return USHER_OK;
}

const char *pdf_font_path(int bold)
{
    return bold ? font_bold : font_regular;
}

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
    d->regular = load_font(d, font_regular);
    if (d->regular == NULL)
        return pdf_doc_fail(d, font_regular, errbuf, errlen);
    d->bold = load_font(d, font_bold);
    if (d->bold == NULL)
        return pdf_doc_fail(d, font_bold, errbuf, errlen);
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
    buf = malloc(size);
    if (buf == NULL) {
        snprintf(errbuf, errlen, "PDF: out of memory for %u bytes", (unsigned)size);
        return USHER_ERR_NOMEM;
    }
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

/* Checks that s is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
static int valid_utf8(const unsigned char *s)
{
    while (*s) {
        unsigned c = *s, n, cp, i;
        if (c < 0x80) {
            s++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07;
        else
            return 0;
        for (i = 1; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        s += n + 1;
    }
    return 1;
}

usher_err pdf_check_field(const char *what, const char *s, int required, size_t max, char *errbuf,
                          size_t errlen)
{
    if (s == NULL || s[0] == '\0') {
        if (!required)
            return USHER_OK;
        snprintf(errbuf, errlen, "%s is missing or empty", what);
        return USHER_ERR_INVALID;
    }
    if (strlen(s) > max) {
        snprintf(errbuf, errlen, "%s is longer than %zu bytes", what, max);
        return USHER_ERR_INVALID;
    }
    if (!valid_utf8((const unsigned char *)s)) {
        snprintf(errbuf, errlen, "%s is not valid UTF-8", what);
        return USHER_ERR_INVALID;
    }
    return USHER_OK;
}

/* Width in points of the first len bytes of text at size. */
static float text_width(HPDF_Font font, const char *text, size_t len, float size)
{
    HPDF_TextWidth tw = HPDF_Font_TextWidth(font, (const HPDF_BYTE *)text, (HPDF_UINT)len);

    return (float)tw.width * size / 1000.0f;
}

size_t pdf_fitting_prefix(pdf_width_fn width, const void *ctx, const char *text, float size,
                          float max_width)
{
    float room = max_width - width(ctx, ELLIPSIS, strlen(ELLIPSIS), size);
    size_t lo = 0, hi = strlen(text);

    while (lo < hi) {
        size_t mid = (lo + hi + 1) / 2;
        while (mid > lo && ((unsigned char)text[mid] & 0xc0) == 0x80)
            mid--;
        if (mid == lo) {
            /* no boundary between lo and the old mid: step to the next one */
            mid = lo + 1;
            while (mid < hi && ((unsigned char)text[mid] & 0xc0) == 0x80)
                mid++;
            if (mid > hi || width(ctx, text, mid, size) > room)
                break;
            lo = mid;
            continue;
        }
        if (width(ctx, text, mid, size) <= room)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* pdf_width_fn for a libharu font. */
static float font_width(const void *font, const char *text, size_t len, float size)
{
    return text_width((HPDF_Font)font, text, len, size);
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
 * x + max_width / 2 (PDF_CENTER). Too wide: the size shrinks to fit, down to
 * MIN_FONT_SIZE; still too wide: the text is cut and ends with an ellipsis.
 */
usher_err pdf_draw_line(pdf_doc *d, HPDF_Page page, HPDF_Font font, float size, float x, float y,
                        float max_width, pdf_align how, const char *text)
{
    float width = text_width(font, text, strlen(text), size);
    char *cut = NULL;
    HPDF_STATUS st;

    if (width > max_width) {
        size = size * max_width / width * 0.999f;
        if (size < MIN_FONT_SIZE) {
            size_t keep;
            size = MIN_FONT_SIZE;
            keep = pdf_fitting_prefix(font_width, font, text, size, max_width);
            cut = malloc(keep + sizeof(ELLIPSIS));
            if (cut == NULL) {
                d->out_of_memory = 1;
                return USHER_ERR_NOMEM;
            }
            memcpy(cut, text, keep);
            memcpy(cut + keep, ELLIPSIS, sizeof(ELLIPSIS));
            text = cut;
        }
        width = text_width(font, text, strlen(text), size);
    }
    if (how == PDF_CENTER)
        x += (max_width - width) / 2;
    st = d->error_no == HPDF_OK ? show(page, font, size, x, y, text) : d->error_no;
    free(cut);
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
