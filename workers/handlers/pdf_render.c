/*
 * Tickets and badges with libharu 2.3 and libqrencode. This is the only file
 * that includes hpdf.h: libharu's errors are turned into usher_err here.
 *
 * libharu reports errors through the handler given to HPDF_New. The handler
 * below only records the first error and returns; libharu then returns the
 * error status from the failing call and refuses further work on the
 * document, so every call is checked, the render stops at the first failure
 * and the document is freed with HPDF_Free on every path. No setjmp/longjmp.
 *
 * Text is UTF-8 through HPDF_UseUTFEncodings and an embedded TrueType font
 * (libharu writes only the glyphs used). Streams are deflated. libharu writes
 * no /ID and no dates unless asked, so the same input yields the same bytes.
 * Sizes are in PDF points (1/72 inch).
 */
#include "pdf_render.h"

#include <errno.h>
#include <hpdf.h>
#include <limits.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MM            2.834645669f
#define A6_WIDTH      (105.0f * MM)
#define MIN_FONT_SIZE 5.0f
#define ELLIPSIS      "\xe2\x80\xa6"
#define QR_QUIET      4 /* modules of white around the symbol */

static char font_regular[PATH_MAX] = USHER_PDF_FONT_REGULAR;
static char font_bold[PATH_MAX] = USHER_PDF_FONT_BOLD;

/* One document being built, with the first libharu error it reported. */
typedef struct doc {
    HPDF_Doc pdf;
    HPDF_Font regular, bold;
    HPDF_STATUS error_no, detail_no;
    int out_of_memory; /* one of our own allocations failed */
} doc;

typedef enum align { LEFT, CENTER } align;

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

static void HPDF_STDCALL on_error(HPDF_STATUS error_no, HPDF_STATUS detail_no, void *user_data)
{
    doc *d = user_data;

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
static usher_err doc_fail(const doc *d, const char *step, char *errbuf, size_t errlen)
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

static HPDF_Font load_font(doc *d, const char *path)
{
    const char *name = HPDF_LoadTTFontFromFile(d->pdf, path, HPDF_TRUE);

    if (name == NULL)
        return NULL;
    return HPDF_GetFont(d->pdf, name, "UTF-8");
}

/* Creates the document with UTF-8 text and both fonts loaded. */
static usher_err doc_open(doc *d, char *errbuf, size_t errlen)
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
        return doc_fail(d, "setting up the document", errbuf, errlen);
    d->regular = load_font(d, font_regular);
    if (d->regular == NULL)
        return doc_fail(d, font_regular, errbuf, errlen);
    d->bold = load_font(d, font_bold);
    if (d->bold == NULL)
        return doc_fail(d, font_bold, errbuf, errlen);
    return USHER_OK;
}

/* Serialises the document into a malloc'd buffer. */
static usher_err doc_save(doc *d, unsigned char **pdf, size_t *len, char *errbuf, size_t errlen)
{
    HPDF_UINT32 size, got;
    unsigned char *buf;

    if (HPDF_SaveToStream(d->pdf) != HPDF_OK)
        return doc_fail(d, "writing the document", errbuf, errlen);
    size = HPDF_GetStreamSize(d->pdf);
    if (size == 0)
        return doc_fail(d, "writing the document", errbuf, errlen);
    buf = malloc(size);
    if (buf == NULL) {
        snprintf(errbuf, errlen, "PDF: out of memory for %u bytes", (unsigned)size);
        return USHER_ERR_NOMEM;
    }
    got = size;
    if (HPDF_ReadFromStream(d->pdf, buf, &got) != HPDF_OK && got != size) {
        free(buf);
        return doc_fail(d, "reading the document back", errbuf, errlen);
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

/* Checks one text field; required fields must be non-empty. */
static usher_err check_field(const char *what, const char *s, int required, size_t max,
                             char *errbuf, size_t errlen)
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

/* Longest prefix of text (on a UTF-8 boundary) that, followed by an ellipsis, fits max_width. */
static size_t fitting_prefix(HPDF_Font font, const char *text, float size, float max_width)
{
    float room = max_width - text_width(font, ELLIPSIS, strlen(ELLIPSIS), size);
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
            if (mid > hi || text_width(font, text, mid, size) > room)
                break;
            lo = mid;
            continue;
        }
        if (text_width(font, text, mid, size) <= room)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
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
 * Draws one line of text at baseline y, starting at x (LEFT) or centred on
 * x + max_width / 2 (CENTER). Too wide: the size shrinks to fit, down to
 * MIN_FONT_SIZE; still too wide: the text is cut and ends with an ellipsis.
 */
static usher_err draw_line(doc *d, HPDF_Page page, HPDF_Font font, float size, float x, float y,
                           float max_width, align how, const char *text)
{
    float width = text_width(font, text, strlen(text), size);
    char *cut = NULL;
    HPDF_STATUS st;

    if (width > max_width) {
        size = size * max_width / width * 0.999f;
        if (size < MIN_FONT_SIZE) {
            size_t keep;
            size = MIN_FONT_SIZE;
            keep = fitting_prefix(font, text, size, max_width);
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
    if (how == CENTER)
        x += (max_width - width) / 2;
    st = d->error_no == HPDF_OK ? show(page, font, size, x, y, text) : d->error_no;
    free(cut);
    return st == HPDF_OK ? USHER_OK : USHER_ERR_INVALID;
}

/* Fills the dark modules of qr into a box of side `side` at (x, y), quiet zone included. */
static HPDF_STATUS fill_modules(HPDF_Page page, const QRcode *qr, float x, float y, float side)
{
    float module = side / (float)(qr->width + 2 * QR_QUIET);
    HPDF_STATUS st = HPDF_Page_SetRGBFill(page, 0, 0, 0);
    int row, col;

    for (row = 0; row < qr->width && st == HPDF_OK; row++) {
        float top = y + side - (float)(row + QR_QUIET) * module;
        for (col = 0; col < qr->width && st == HPDF_OK; col++) {
            int run = 0;
            while (col + run < qr->width && (qr->data[row * qr->width + col + run] & 1))
                run++;
            if (run == 0)
                continue;
            /* one rectangle per horizontal run avoids hairline seams when rasterised */
            st = HPDF_Page_Rectangle(page, x + (float)(col + QR_QUIET) * module, top - module,
                                     (float)run * module, module);
            col += run;
        }
    }
    if (st == HPDF_OK)
        st = HPDF_Page_Fill(page);
    return st;
}

static usher_err draw_qr(doc *d, HPDF_Page page, const char *code, float x, float y, float side,
                         char *errbuf, size_t errlen)
{
    QRcode *qr = QRcode_encodeString(code, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    HPDF_STATUS st;

    if (qr == NULL) {
        int e = errno;
        snprintf(errbuf, errlen, "QR code of the ticket code: %s", strerror(e));
        return e == ERANGE   ? USHER_ERR_TOO_LARGE
               : e == ENOMEM ? USHER_ERR_NOMEM
                             : USHER_ERR_INVALID;
    }
    st = fill_modules(page, qr, x, y, side);
    QRcode_free(qr);
    if (st != HPDF_OK)
        return doc_fail(d, "drawing the QR code", errbuf, errlen);
    return USHER_OK;
}

/* Adds a portrait page of width x height mm (libharu 2.3 has no A6 preset). */
static HPDF_Page add_page(doc *d, float width_mm, float height_mm)
{
    HPDF_Page page = HPDF_AddPage(d->pdf);

    if (page == NULL || HPDF_Page_SetWidth(page, width_mm * MM) != HPDF_OK ||
        HPDF_Page_SetHeight(page, height_mm * MM) != HPDF_OK)
        return NULL;
    return page;
}

static usher_err check_ticket(const usher_ticket *t, char *errbuf, size_t errlen)
{
    const struct {
        const char *what, *value;
        size_t max;
    } fields[] = {
        { "event_name", t->event_name, USHER_PDF_MAX_FIELD },
        { "venue", t->venue, USHER_PDF_MAX_FIELD },
        { "starts_at", t->starts_at, USHER_PDF_MAX_FIELD },
        { "attendee_name", t->attendee_name, USHER_PDF_MAX_FIELD },
        { "ticket_type", t->ticket_type, USHER_PDF_MAX_FIELD },
        { "ticket_code", t->ticket_code, USHER_PDF_MAX_CODE },
    };
    size_t i;

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        usher_err err =
            check_field(fields[i].what, fields[i].value, 1, fields[i].max, errbuf, errlen);
        if (err != USHER_OK)
            return err;
    }
    return USHER_OK;
}

/*
 * The ticket, laid out for A6 (105 x 148 mm) in units scaled by s:
 * event, date and venue at the top, a rule, attendee and ticket type,
 * then the QR code with the code printed under it.
 */
static usher_err draw_ticket(doc *d, HPDF_Page page, const usher_ticket *t, float s, char *errbuf,
                             size_t errlen)
{
    float w = HPDF_Page_GetWidth(page), h = HPDF_Page_GetHeight(page);
    float m = 20 * s, text_w = w - 2 * m, qr = 180 * s;
    const struct {
        HPDF_Font font;
        float size, y;
        const char *text;
    } lines[] = {
        { d->bold, 18 * s, h - m - 18 * s, t->event_name },
        { d->regular, 10 * s, h - m - 36 * s, t->starts_at },
        { d->regular, 10 * s, h - m - 50 * s, t->venue },
        { d->bold, 16 * s, h - m - 90 * s, t->attendee_name },
        { d->regular, 11 * s, h - m - 108 * s, t->ticket_type },
        { d->regular, 8 * s, m, t->ticket_code },
    };
    HPDF_STATUS st;
    size_t i;

    for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        if (draw_line(d, page, lines[i].font, lines[i].size, m, lines[i].y, text_w,
                      i == 5 ? CENTER : LEFT, lines[i].text) != USHER_OK)
            return doc_fail(d, "drawing the ticket text", errbuf, errlen);
    }
    st = HPDF_Page_SetLineWidth(page, 0.5f * s);
    if (st == HPDF_OK)
        st = HPDF_Page_MoveTo(page, m, h - m - 62 * s);
    if (st == HPDF_OK)
        st = HPDF_Page_LineTo(page, w - m, h - m - 62 * s);
    if (st == HPDF_OK)
        st = HPDF_Page_Stroke(page);
    if (st != HPDF_OK)
        return doc_fail(d, "drawing the ticket rule", errbuf, errlen);
    return draw_qr(d, page, t->ticket_code, (w - qr) / 2, m + 10 * s, qr, errbuf, errlen);
}

usher_err usher_pdf_ticket(const usher_ticket *t, usher_page_size size, unsigned char **pdf,
                           size_t *len, char *errbuf, size_t errlen)
{
    HPDF_Page page;
    usher_err err;
    doc d;

    if (t == NULL || pdf == NULL || len == NULL ||
        (size != USHER_PAGE_A4 && size != USHER_PAGE_A6)) {
        snprintf(errbuf, errlen, "ticket: a ticket, an A4 or A6 size and outputs are required");
        return USHER_ERR_INVALID;
    }
    err = check_ticket(t, errbuf, errlen);
    if (err != USHER_OK)
        return err;
    err = doc_open(&d, errbuf, errlen);
    if (err != USHER_OK)
        goto out;
    if (size == USHER_PAGE_A6)
        page = add_page(&d, 105, 148);
    else
        page = add_page(&d, 210, 297);
    if (page == NULL) {
        err = doc_fail(&d, "adding a page", errbuf, errlen);
        goto out;
    }
    err = draw_ticket(&d, page, t, HPDF_Page_GetWidth(page) / A6_WIDTH, errbuf, errlen);
    if (err == USHER_OK)
        err = doc_save(&d, pdf, len, errbuf, errlen);
out:
    HPDF_Free(d.pdf);
    return err;
}

/* Badge sheet geometry: 2 x 4 cards of 90 x 55 mm centred on A4 (210 x 297 mm). */
#define BADGE_COLS 2
#define BADGE_ROWS 4
#define BADGE_W    (90 * MM)
#define BADGE_H    (55 * MM)
#define SHEET_X    ((210 * MM - BADGE_COLS * BADGE_W) / 2)
#define SHEET_Y    ((297 * MM - BADGE_ROWS * BADGE_H) / 2)

/* One card with its lower-left corner at (x, y). */
static usher_err draw_badge(doc *d, HPDF_Page page, const usher_badge *b, float x, float y)
{
    float pad = 6 * MM, text_w = BADGE_W - 2 * pad;
    HPDF_STATUS st = HPDF_Page_SetGrayStroke(page, 0.7f);

    if (st == HPDF_OK)
        st = HPDF_Page_SetLineWidth(page, 0.3f);
    if (st == HPDF_OK)
        st = HPDF_Page_Rectangle(page, x, y, BADGE_W, BADGE_H);
    if (st == HPDF_OK)
        st = HPDF_Page_Stroke(page);
    if (st != HPDF_OK)
        return USHER_ERR_INVALID;
    if (draw_line(d, page, d->bold, 22, x + pad, y + BADGE_H * 0.55f, text_w, CENTER, b->name) !=
        USHER_OK)
        return USHER_ERR_INVALID;
    if (b->organisation && b->organisation[0] &&
        draw_line(d, page, d->regular, 12, x + pad, y + BADGE_H * 0.55f - 22, text_w, CENTER,
                  b->organisation) != USHER_OK)
        return USHER_ERR_INVALID;
    if (b->role && b->role[0] &&
        draw_line(d, page, d->bold, 10, x + pad, y + pad, text_w, CENTER, b->role) != USHER_OK)
        return USHER_ERR_INVALID;
    return USHER_OK;
}

static usher_err check_badges(const usher_badge *badges, size_t n, char *errbuf, size_t errlen)
{
    size_t i;

    for (i = 0; i < n; i++) {
        char what[64];
        usher_err err;
        snprintf(what, sizeof(what), "badge %zu name", i);
        err = check_field(what, badges[i].name, 1, USHER_PDF_MAX_FIELD, errbuf, errlen);
        snprintf(what, sizeof(what), "badge %zu organisation", i);
        if (err == USHER_OK)
            err = check_field(what, badges[i].organisation, 0, USHER_PDF_MAX_FIELD, errbuf, errlen);
        snprintf(what, sizeof(what), "badge %zu role", i);
        if (err == USHER_OK)
            err = check_field(what, badges[i].role, 0, USHER_PDF_MAX_FIELD, errbuf, errlen);
        if (err != USHER_OK)
            return err;
    }
    return USHER_OK;
}

static usher_err draw_badges(doc *d, const usher_badge *badges, size_t n, char *errbuf,
                             size_t errlen)
{
    HPDF_Page page = NULL;
    size_t i;

    for (i = 0; i < n; i++) {
        size_t slot = i % (BADGE_COLS * BADGE_ROWS);
        float x = SHEET_X + (float)(slot % BADGE_COLS) * BADGE_W;
        float y = SHEET_Y + (float)(BADGE_ROWS - 1 - slot / BADGE_COLS) * BADGE_H;
        if (slot == 0) {
            page = add_page(d, 210, 297);
            if (page == NULL)
                return doc_fail(d, "adding a badge sheet", errbuf, errlen);
        }
        if (draw_badge(d, page, &badges[i], x, y) != USHER_OK)
            return doc_fail(d, "drawing a badge", errbuf, errlen);
    }
    return USHER_OK;
}

usher_err usher_pdf_badges(const usher_badge *badges, size_t n, unsigned char **pdf, size_t *len,
                           char *errbuf, size_t errlen)
{
    usher_err err;
    doc d;

    if (badges == NULL || n == 0 || n > USHER_PDF_MAX_BADGES || pdf == NULL || len == NULL) {
        snprintf(errbuf, errlen, "badges: between 1 and %d badges and outputs are required",
                 USHER_PDF_MAX_BADGES);
        return USHER_ERR_INVALID;
    }
    err = check_badges(badges, n, errbuf, errlen);
    if (err != USHER_OK)
        return err;
    err = doc_open(&d, errbuf, errlen);
    if (err == USHER_OK)
        err = draw_badges(&d, badges, n, errbuf, errlen);
    if (err == USHER_OK)
        err = doc_save(&d, pdf, len, errbuf, errlen);
    HPDF_Free(d.pdf);
    return err;
}
