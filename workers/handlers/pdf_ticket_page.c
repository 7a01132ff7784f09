/*
 * The ticket page: usher_pdf_ticket (pdf_render.h), drawn with cairo on a
 * PDF surface that writes into memory, in the fonts of pdf_ticket_fonts.c,
 * with a QR code from libqrencode.
 *
 * cairo embeds each font as a subset of the glyphs the page shows, with a
 * ToUnicode map so the text can be extracted; a character the font lacks
 * is drawn as the font's missing-glyph box but still extracts as itself.
 * PDF surfaces measure text unhinted (no hinted metrics, no rounded glyph
 * positions), so widths scale exactly with the size. No creation date is
 * written (cairo 1.16 writes a malformed one when given a fixed date), and
 * cairo 1.16 writes no /ID: the same ticket gives the same bytes.
 *
 * cairo's y axis points down; the layout below is in PDF's (up) and is
 * flipped where it is drawn.
 *
 * The page's streams are deflated at zlib's fastest level (1), not its
 * default (6): cairo 1.16 compresses every stream, the three font subsets
 * of a ticket among them, with deflateInit(..., Z_DEFAULT_COMPRESSION) and
 * has no setting for it, and zlib was about half of a render. So this file
 * defines deflateInit_ (what zlib's deflateInit macro calls): the dynamic
 * linker binds cairo's calls, and libharu's (badges, reports), to the
 * binary's definition ahead of libz's, which starts the stream through
 * deflateInit2_, still zlib's. Callers that choose their own parameters with
 * deflateInit2 (Xapian) are untouched, and the output is ordinary deflate.
 * Measured (bench/README.md, ticket PDFs): 1.19x the tickets per
 * CPU-second for 0.85% more bytes. `nm -D usher-worker | grep deflateInit_`
 * shows the definition exported.
 */
#include <cairo-pdf.h>
#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <qrencode.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "buf.h"
#include "pdf_render.h"
#include "pdf_text.h"
#include "pdf_ticket_fonts.h"

#define A6_WIDTH  (105.0f * PDF_MM)
#define QR_QUIET  4 /* modules of white around the symbol */
#define F_REGULAR 0
#define F_BOLD    1

typedef enum align { LEFT, CENTER } align;

/* zlib's prototype (zlib.h); the stream gets level 1, whatever the caller asked. */
int deflateInit_(z_streamp strm, int level, const char *version, int stream_size)
{
    (void)level;
    return deflateInit2_(strm, Z_BEST_SPEED, Z_DEFLATED, MAX_WBITS, 8, Z_DEFAULT_STRATEGY, version,
                         stream_size);
}

typedef struct page {
    cairo_t *cr;
    cairo_font_face_t *faces[2];
    float width, height;
} page;

/* A face at one size, for pdf_width_fn. */
typedef struct measure {
    cairo_scaled_font_t *font;
    float size;
} measure;

/* pdf_width_fn: the advance of the first len bytes of text, scaled from m's size to size. */
static float text_width(const void *ctx, const char *text, size_t len, float size)
{
    const measure *m = ctx;
    cairo_glyph_t *glyphs = NULL;
    cairo_text_extents_t e;
    int n = 0;

    if (cairo_scaled_font_text_to_glyphs(m->font, 0, 0, text, (int)len, &glyphs, &n, NULL, NULL,
                                         NULL) != CAIRO_STATUS_SUCCESS)
        return HUGE_VALF; /* out of memory: the error sticks to the font and fails the render */
    cairo_scaled_font_glyph_extents(m->font, glyphs, n, &e);
    cairo_glyph_free(glyphs);
    return (float)e.x_advance * size / m->size;
}

/*
 * Draws one line of text at baseline y, starting at x (LEFT) or centred on
 * x + max_width / 2 (CENTER), shrunk or cut to fit by pdf_fit_line.
 */
static USHER_MUSTCHECK usher_err draw_line(page *p, int face, float size, float x, float y,
                                           float max_width, align how, const char *text)
{
    measure m = { NULL, size };
    pdf_line line;

    cairo_set_font_face(p->cr, p->faces[face]);
    cairo_set_font_size(p->cr, size);
    m.font = cairo_get_scaled_font(p->cr);
    if (pdf_fit_line(text_width, &m, text, size, max_width, &line) != USHER_OK)
        return USHER_ERR_NOMEM;
    if (line.size != size)
        cairo_set_font_size(p->cr, line.size);
    if (how == CENTER)
        x += (max_width - line.width) / 2;
    cairo_move_to(p->cr, x, p->height - y);
    cairo_show_text(p->cr, line.text);
    pdf_line_release(&line);
    return USHER_OK;
}

/*
 * Paints the dark modules of the QR code of code into a box of side `side`
 * whose lower-left corner is (x, y), quiet zone included, as a 1-bit
 * stencil mask of one pixel per module scaled up without interpolation.
 * A path of one rectangle per run of modules, drawn before, cost a few
 * hundred printed coordinates per ticket (about a tenth of the render in
 * number formatting and compression); the mask is a few hundred bytes.
 */
static USHER_MUSTCHECK usher_err draw_qr(page *p, const char *code, float x, float y, float side,
                                         char *errbuf, size_t errlen)
{
    QRcode *qr = QRcode_encodeString(code, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    cairo_surface_t *modules;
    cairo_pattern_t *mask;
    cairo_matrix_t to_modules;
    unsigned char *bits;
    int size, stride;

    if (qr == NULL) {
        int e = errno;
        snprintf(errbuf, errlen, "QR code of the ticket code: %s", strerror(e));
        return e == ERANGE   ? USHER_ERR_TOO_LARGE
               : e == ENOMEM ? USHER_ERR_NOMEM
                             : USHER_ERR_INVALID;
    }
    size = qr->width + 2 * QR_QUIET;
    modules = cairo_image_surface_create(CAIRO_FORMAT_A1, size, size);
    if (cairo_surface_status(modules) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(modules);
        QRcode_free(qr);
        snprintf(errbuf, errlen, "PDF: the QR code's image: out of memory");
        return USHER_ERR_NOMEM;
    }
    cairo_surface_flush(modules);
    bits = cairo_image_surface_get_data(modules);
    stride = cairo_image_surface_get_stride(modules);
    memset(bits, 0, (size_t)stride * (size_t)size);
    for (int row = 0; row < qr->width; row++) {
        for (int col = 0; col < qr->width; col++) {
            /* A1 pixels are bits of 32-bit words, least significant first on little-endian */
            if (qr->data[row * qr->width + col] & 1) {
                int px = col + QR_QUIET;
                uint32_t *word =
                    (uint32_t *)(bits + (size_t)(row + QR_QUIET) * (size_t)stride) + px / 32;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                *word |= 1u << (px % 32);
#else
                *word |= 0x80000000u >> (px % 32);
#endif
            }
        }
    }
    cairo_surface_mark_dirty(modules);
    QRcode_free(qr);
    mask = cairo_pattern_create_for_surface(modules);
    cairo_surface_destroy(modules);
    cairo_pattern_set_filter(mask, CAIRO_FILTER_NEAREST);
    /* the pattern's matrix maps user space (points) to module pixels */
    cairo_matrix_init_scale(&to_modules, size / side, size / side);
    cairo_matrix_translate(&to_modules, -x, -(p->height - y - side));
    cairo_pattern_set_matrix(mask, &to_modules);
    cairo_mask(p->cr, mask);
    cairo_pattern_destroy(mask);
    return USHER_OK;
}

/* The rule under the venue: a line of width lw from (x0, y) to (x1, y). */
static void draw_rule(page *p, float lw, float x0, float x1, float y)
{
    cairo_set_line_width(p->cr, lw);
    cairo_move_to(p->cr, x0, p->height - y);
    cairo_line_to(p->cr, x1, p->height - y);
    cairo_stroke(p->cr);
}

/*
 * The ticket, laid out for A6 (105 x 148 mm) in units scaled by s:
 * event, date and venue at the top, a rule, attendee and ticket type,
 * then the QR code with the code printed under it.
 */
static USHER_MUSTCHECK usher_err draw_ticket(page *p, const usher_ticket *t, float s, char *errbuf,
                                             size_t errlen)
{
    float w = p->width, h = p->height;
    float m = 20 * s, text_w = w - 2 * m, qr = 180 * s;
    const struct {
        int face;
        float size, y;
        const char *text;
    } lines[] = {
        { F_BOLD, 18 * s, h - m - 18 * s, t->event_name },
        { F_REGULAR, 10 * s, h - m - 36 * s, t->starts_at },
        { F_REGULAR, 10 * s, h - m - 50 * s, t->venue },
        { F_BOLD, 16 * s, h - m - 90 * s, t->attendee_name },
        { F_REGULAR, 11 * s, h - m - 108 * s, t->ticket_type },
        { F_REGULAR, 8 * s, m, t->ticket_code },
    };

    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        if (draw_line(p, lines[i].face, lines[i].size, m, lines[i].y, text_w,
                      i == 5 ? CENTER : LEFT, lines[i].text) != USHER_OK) {
            snprintf(errbuf, errlen, "PDF: drawing the ticket text: out of memory");
            return USHER_ERR_NOMEM;
        }
    }
    draw_rule(p, 0.5f * s, m, w - m, h - m - 62 * s);
    return draw_qr(p, t->ticket_code, (w - qr) / 2, m + 10 * s, qr, errbuf, errlen);
}

static USHER_MUSTCHECK usher_err check_ticket(const usher_ticket *t, char *errbuf, size_t errlen)
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

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        usher_err err =
            pdf_check_field(fields[i].what, fields[i].value, 1, fields[i].max, errbuf, errlen);
        if (err != USHER_OK)
            return err;
    }
    return USHER_OK;
}

/* cairo_write_func_t into a usher_buf. */
static cairo_status_t write_out(void *closure, const unsigned char *data, unsigned int len)
{
    usher_buf *out = closure;

    usher_buf_append(out, (const char *)data, len);
    return out->failed ? CAIRO_STATUS_WRITE_ERROR : CAIRO_STATUS_SUCCESS;
}

/* Turns the first cairo error of the render (or of writing it out) into a usher_err. */
static USHER_MUSTCHECK usher_err cairo_failure(cairo_status_t st, const usher_buf *out,
                                               char *errbuf, size_t errlen)
{
    if (out->failed || st == CAIRO_STATUS_NO_MEMORY) {
        snprintf(errbuf, errlen, "PDF: out of memory writing the ticket");
        return USHER_ERR_NOMEM;
    }
    snprintf(errbuf, errlen, "PDF: cairo: %s", cairo_status_to_string(st));
    return USHER_ERR_INVALID;
}

/* Draws the ticket on a PDF surface of width x height points writing into out. */
static USHER_MUSTCHECK usher_err render(page *p, const usher_ticket *t, usher_buf *out,
                                        char *errbuf, size_t errlen)
{
    cairo_surface_t *surface =
        cairo_pdf_surface_create_for_stream(write_out, out, p->width, p->height);
    cairo_status_t st;
    usher_err err;

    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATE_DATE, "");
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "Usher");
    p->cr = cairo_create(surface);
    err = draw_ticket(p, t, p->width / A6_WIDTH, errbuf, errlen);
    st = cairo_status(p->cr);
    cairo_destroy(p->cr);
    cairo_surface_finish(surface);
    if (st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_status(surface);
    cairo_surface_destroy(surface);
    if (err == USHER_OK && st != CAIRO_STATUS_SUCCESS)
        err = cairo_failure(st, out, errbuf, errlen);
    return err;
}

usher_err usher_pdf_ticket(const usher_ticket *t, usher_page_size size, unsigned char **pdf,
                           size_t *len, char *errbuf, size_t errlen)
{
    page p = { .width = (size == USHER_PAGE_A6 ? 105 : 210) * PDF_MM,
               .height = (size == USHER_PAGE_A6 ? 148 : 297) * PDF_MM };
    usher_buf out = { 0 };
    usher_err err;

    if (t == NULL || pdf == NULL || len == NULL ||
        (size != USHER_PAGE_A4 && size != USHER_PAGE_A6)) {
        snprintf(errbuf, errlen, "ticket: a ticket, an A4 or A6 size and outputs are required");
        return USHER_ERR_INVALID;
    }
    err = check_ticket(t, errbuf, errlen);
    if (err == USHER_OK)
        err = pdf_ticket_font(F_REGULAR, &p.faces[F_REGULAR], errbuf, errlen);
    if (err == USHER_OK)
        err = pdf_ticket_font(F_BOLD, &p.faces[F_BOLD], errbuf, errlen);
    if (err == USHER_OK)
        err = render(&p, t, &out, errbuf, errlen);
    cairo_font_face_destroy(p.faces[F_REGULAR]);
    cairo_font_face_destroy(p.faces[F_BOLD]);
    if (err != USHER_OK) {
        usher_buf_release(&out);
        return err;
    }
    *pdf = (unsigned char *)out.data;
    *len = out.len;
    return USHER_OK;
}
