/*
 * The ticket page: usher_pdf_ticket (pdf_render.h), written with the
 * direct PDF writer of pdf_page.c and a QR code from libqrencode.
 *
 * The fonts are read and indexed once per process and kept (one regular,
 * one bold, re-read when usher_pdf_set_fonts names other files); a render
 * only looks up the glyphs its text uses and embeds those. Loaded fonts
 * are immutable, so renders may run in parallel threads; the cache itself
 * is behind a mutex.
 */
#include <errno.h>
#include <pthread.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdf_page.h"
#include "pdf_render.h"
#include "pdf_text.h"
#include "pdf_ttf.h"

#define MM        2.834645669f
#define A6_WIDTH  (105.0f * MM)
#define QR_QUIET  4 /* modules of white around the symbol */
#define F_REGULAR 0
#define F_BOLD    1

typedef enum align { LEFT, CENTER } align;

/* The loaded fonts and the paths they were loaded from. */
static struct {
    usher_ttf *ttf;
    char *path;
} fonts[2];
static pthread_mutex_t fonts_lock = PTHREAD_MUTEX_INITIALIZER;

/* The font for face (0 regular, 1 bold), loading it if its path changed. */
static usher_err load_font(int face, const usher_ttf **out, char *errbuf, size_t errlen)
{
    const char *path = pdf_font_path(face);
    usher_ttf *ttf;
    char *copy;
    usher_err err;

    if (fonts[face].ttf == NULL || strcmp(fonts[face].path, path) != 0) {
        err = usher_ttf_load(path, &ttf, errbuf, errlen);
        if (err != USHER_OK)
            return err;
        if ((copy = strdup(path)) == NULL) {
            usher_ttf_free(ttf);
            snprintf(errbuf, errlen, "PDF: out of memory");
            return USHER_ERR_NOMEM;
        }
        usher_ttf_free(fonts[face].ttf);
        free(fonts[face].path);
        fonts[face].ttf = ttf;
        fonts[face].path = copy;
    }
    *out = fonts[face].ttf;
    return USHER_OK;
}

static usher_err font(int face, const usher_ttf **out, char *errbuf, size_t errlen)
{
    usher_err err;

    pthread_mutex_lock(&fonts_lock);
    err = load_font(face, out, errbuf, errlen);
    pthread_mutex_unlock(&fonts_lock);
    return err;
}

typedef struct face_of_page {
    const usher_pdf_page *page;
    int face;
} face_of_page;

/* pdf_width_fn for a face of the page. */
static float face_width(const void *ctx, const char *text, size_t len, float size)
{
    const face_of_page *f = ctx;

    return usher_pdf_page_text_width(f->page, f->face, text, len, size);
}

/*
 * Draws one line of text at baseline y, starting at x (LEFT) or centred on
 * x + max_width / 2 (CENTER). Too wide: the size shrinks to fit, down to
 * PDF_MIN_FONT_SIZE; still too wide: the text is cut and ends with an
 * ellipsis.
 */
static usher_err draw_line(usher_pdf_page *p, int face, float size, float x, float y,
                           float max_width, align how, const char *text)
{
    face_of_page f = { p, face };
    float width = face_width(&f, text, strlen(text), size);
    char *cut = NULL;

    if (width > max_width) {
        size = size * max_width / width * 0.999f;
        if (size < PDF_MIN_FONT_SIZE) {
            size_t keep;
            size = PDF_MIN_FONT_SIZE;
            keep = pdf_fitting_prefix(face_width, &f, text, size, max_width);
            cut = malloc(keep + sizeof(PDF_ELLIPSIS));
            if (cut == NULL)
                return USHER_ERR_NOMEM;
            memcpy(cut, text, keep);
            memcpy(cut + keep, PDF_ELLIPSIS, sizeof(PDF_ELLIPSIS));
            text = cut;
        }
        width = face_width(&f, text, strlen(text), size);
    }
    if (how == CENTER)
        x += (max_width - width) / 2;
    usher_pdf_page_text(p, face, size, x, y, text);
    free(cut);
    return USHER_OK;
}

/*
 * Fills the dark modules of the QR code of code into a box of side `side`
 * at (x, y), quiet zone included: one path in module units (the cm scales
 * them), one rectangle per horizontal run so no hairline seams show when
 * rasterised.
 */
static usher_err draw_qr(usher_pdf_page *p, const char *code, float x, float y, float side,
                         char *errbuf, size_t errlen)
{
    QRcode *qr = QRcode_encodeString(code, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    int size;
    char rect[64];

    if (qr == NULL) {
        int e = errno;
        snprintf(errbuf, errlen, "QR code of the ticket code: %s", strerror(e));
        return e == ERANGE   ? USHER_ERR_TOO_LARGE
               : e == ENOMEM ? USHER_ERR_NOMEM
                             : USHER_ERR_INVALID;
    }
    size = qr->width + 2 * QR_QUIET;
    usher_pdf_page_ops(p, "q 0 g ");
    usher_pdf_page_num(p, side / (float)size);
    usher_pdf_page_ops(p, "0 0 ");
    usher_pdf_page_num(p, side / (float)size);
    usher_pdf_page_num(p, x);
    usher_pdf_page_num(p, y);
    usher_pdf_page_ops(p, "cm\n");
    for (int row = 0; row < qr->width; row++) {
        for (int col = 0; col < qr->width; col++) {
            int run = 0;
            while (col + run < qr->width && (qr->data[row * qr->width + col + run] & 1))
                run++;
            if (run == 0)
                continue;
            snprintf(rect, sizeof(rect), "%d %d %d 1 re\n", col + QR_QUIET,
                     qr->width + QR_QUIET - 1 - row, run);
            usher_pdf_page_ops(p, rect);
            col += run;
        }
    }
    usher_pdf_page_ops(p, "f Q\n");
    QRcode_free(qr);
    return USHER_OK;
}

/* The rule under the venue: a line of width lw from (x0, y) to (x1, y). */
static void draw_rule(usher_pdf_page *p, float lw, float x0, float x1, float y)
{
    usher_pdf_page_num(p, lw);
    usher_pdf_page_ops(p, "w ");
    usher_pdf_page_num(p, x0);
    usher_pdf_page_num(p, y);
    usher_pdf_page_ops(p, "m ");
    usher_pdf_page_num(p, x1);
    usher_pdf_page_num(p, y);
    usher_pdf_page_ops(p, "l S\n");
}

/*
 * The ticket, laid out for A6 (105 x 148 mm) in units scaled by s:
 * event, date and venue at the top, a rule, attendee and ticket type,
 * then the QR code with the code printed under it.
 */
static usher_err draw_ticket(usher_pdf_page *p, const usher_ticket *t, float s, char *errbuf,
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

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        usher_err err =
            pdf_check_field(fields[i].what, fields[i].value, 1, fields[i].max, errbuf, errlen);
        if (err != USHER_OK)
            return err;
    }
    return USHER_OK;
}

usher_err usher_pdf_ticket(const usher_ticket *t, usher_page_size size, unsigned char **pdf,
                           size_t *len, char *errbuf, size_t errlen)
{
    float width = (size == USHER_PAGE_A6 ? 105 : 210) * MM;
    float height = (size == USHER_PAGE_A6 ? 148 : 297) * MM;
    const usher_ttf *regular, *bold;
    usher_pdf_page page;
    usher_err err;

    if (t == NULL || pdf == NULL || len == NULL ||
        (size != USHER_PAGE_A4 && size != USHER_PAGE_A6)) {
        snprintf(errbuf, errlen, "ticket: a ticket, an A4 or A6 size and outputs are required");
        return USHER_ERR_INVALID;
    }
    err = check_ticket(t, errbuf, errlen);
    if (err == USHER_OK)
        err = font(F_REGULAR, &regular, errbuf, errlen);
    if (err == USHER_OK)
        err = font(F_BOLD, &bold, errbuf, errlen);
    if (err != USHER_OK)
        return err;
    if (usher_pdf_page_init(&page, width, height, regular, bold) != USHER_OK) {
        snprintf(errbuf, errlen, "PDF: out of memory");
        return USHER_ERR_NOMEM;
    }
    err = draw_ticket(&page, t, width / A6_WIDTH, errbuf, errlen);
    if (err == USHER_OK)
        err = usher_pdf_page_finish(&page, pdf, len, errbuf, errlen);
    usher_pdf_page_free(&page);
    return err;
}
