/*
 * Tickets and badges with libharu 2.3 and libqrencode, drawn with the
 * document helpers of pdf_doc.c (fonts, UTF-8 text that shrinks or is cut
 * to fit, error translation). Every libharu call is checked: the render
 * stops at the first failure and the document is freed on every path.
 * Sizes are in PDF points (1/72 inch).
 */
#include "pdf_render.h"

#include "pdf_doc.h"

#include <errno.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define A6_WIDTH (105.0f * PDF_MM)
#define QR_QUIET 4 /* modules of white around the symbol */

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

static usher_err draw_qr(pdf_doc *d, HPDF_Page page, const char *code, float x, float y, float side,
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
        return pdf_doc_fail(d, "drawing the QR code", errbuf, errlen);
    return USHER_OK;
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
            pdf_check_field(fields[i].what, fields[i].value, 1, fields[i].max, errbuf, errlen);
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
static usher_err draw_ticket(pdf_doc *d, HPDF_Page page, const usher_ticket *t, float s,
                             char *errbuf, size_t errlen)
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
        if (pdf_draw_line(d, page, lines[i].font, lines[i].size, m, lines[i].y, text_w,
                          i == 5 ? PDF_CENTER : PDF_LEFT, lines[i].text) != USHER_OK)
            return pdf_doc_fail(d, "drawing the ticket text", errbuf, errlen);
    }
    st = HPDF_Page_SetLineWidth(page, 0.5f * s);
    if (st == HPDF_OK)
        st = HPDF_Page_MoveTo(page, m, h - m - 62 * s);
    if (st == HPDF_OK)
        st = HPDF_Page_LineTo(page, w - m, h - m - 62 * s);
    if (st == HPDF_OK)
        st = HPDF_Page_Stroke(page);
    if (st != HPDF_OK)
        return pdf_doc_fail(d, "drawing the ticket rule", errbuf, errlen);
    return draw_qr(d, page, t->ticket_code, (w - qr) / 2, m + 10 * s, qr, errbuf, errlen);
}

usher_err usher_pdf_ticket(const usher_ticket *t, usher_page_size size, unsigned char **pdf,
                           size_t *len, char *errbuf, size_t errlen)
{
    HPDF_Page page;
    usher_err err;
    pdf_doc d;

    if (t == NULL || pdf == NULL || len == NULL ||
        (size != USHER_PAGE_A4 && size != USHER_PAGE_A6)) {
        snprintf(errbuf, errlen, "ticket: a ticket, an A4 or A6 size and outputs are required");
        return USHER_ERR_INVALID;
    }
    err = check_ticket(t, errbuf, errlen);
    if (err != USHER_OK)
        return err;
    err = pdf_doc_open(&d, errbuf, errlen);
    if (err != USHER_OK)
        goto out;
    if (size == USHER_PAGE_A6)
        page = pdf_doc_add_page(&d, 105, 148);
    else
        page = pdf_doc_add_page(&d, 210, 297);
    if (page == NULL) {
        err = pdf_doc_fail(&d, "adding a page", errbuf, errlen);
        goto out;
    }
    err = draw_ticket(&d, page, t, HPDF_Page_GetWidth(page) / A6_WIDTH, errbuf, errlen);
    if (err == USHER_OK)
        err = pdf_doc_save(&d, pdf, len, errbuf, errlen);
out:
    HPDF_Free(d.pdf);
    return err;
}

/* Badge sheet geometry: 2 x 4 cards of 90 x 55 mm centred on A4 (210 x 297 mm). */
#define BADGE_COLS 2
#define BADGE_ROWS 4
#define BADGE_W    (90 * PDF_MM)
#define BADGE_H    (55 * PDF_MM)
#define SHEET_X    ((210 * PDF_MM - BADGE_COLS * BADGE_W) / 2)
#define SHEET_Y    ((297 * PDF_MM - BADGE_ROWS * BADGE_H) / 2)

/* One card with its lower-left corner at (x, y). */
static usher_err draw_badge(pdf_doc *d, HPDF_Page page, const usher_badge *b, float x, float y)
{
    float pad = 6 * PDF_MM, text_w = BADGE_W - 2 * pad;
    HPDF_STATUS st = HPDF_Page_SetGrayStroke(page, 0.7f);

    if (st == HPDF_OK)
        st = HPDF_Page_SetLineWidth(page, 0.3f);
    if (st == HPDF_OK)
        st = HPDF_Page_Rectangle(page, x, y, BADGE_W, BADGE_H);
    if (st == HPDF_OK)
        st = HPDF_Page_Stroke(page);
    if (st != HPDF_OK)
        return USHER_ERR_INVALID;
    if (pdf_draw_line(d, page, d->bold, 22, x + pad, y + BADGE_H * 0.55f, text_w, PDF_CENTER,
                      b->name) != USHER_OK)
        return USHER_ERR_INVALID;
    if (b->organisation && b->organisation[0] &&
        pdf_draw_line(d, page, d->regular, 12, x + pad, y + BADGE_H * 0.55f - 22, text_w,
                      PDF_CENTER, b->organisation) != USHER_OK)
        return USHER_ERR_INVALID;
    if (b->role && b->role[0] &&
        pdf_draw_line(d, page, d->bold, 10, x + pad, y + pad, text_w, PDF_CENTER, b->role) !=
            USHER_OK)
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
        err = pdf_check_field(what, badges[i].name, 1, USHER_PDF_MAX_FIELD, errbuf, errlen);
        snprintf(what, sizeof(what), "badge %zu organisation", i);
        if (err == USHER_OK)
            err = pdf_check_field(what, badges[i].organisation, 0, USHER_PDF_MAX_FIELD, errbuf,
                                  errlen);
        snprintf(what, sizeof(what), "badge %zu role", i);
        if (err == USHER_OK)
            err = pdf_check_field(what, badges[i].role, 0, USHER_PDF_MAX_FIELD, errbuf, errlen);
        if (err != USHER_OK)
            return err;
    }
    return USHER_OK;
}

static usher_err draw_badges(pdf_doc *d, const usher_badge *badges, size_t n, char *errbuf,
                             size_t errlen)
{
    HPDF_Page page = NULL;
    size_t i;

    for (i = 0; i < n; i++) {
        size_t slot = i % (BADGE_COLS * BADGE_ROWS);
        float x = SHEET_X + (float)(slot % BADGE_COLS) * BADGE_W;
        float y = SHEET_Y + (float)(BADGE_ROWS - 1 - slot / BADGE_COLS) * BADGE_H;
        if (slot == 0) {
            page = pdf_doc_add_page(d, 210, 297);
            if (page == NULL)
                return pdf_doc_fail(d, "adding a badge sheet", errbuf, errlen);
        }
        if (draw_badge(d, page, &badges[i], x, y) != USHER_OK)
            return pdf_doc_fail(d, "drawing a badge", errbuf, errlen);
    }
    return USHER_OK;
}

usher_err usher_pdf_badges(const usher_badge *badges, size_t n, unsigned char **pdf, size_t *len,
                           char *errbuf, size_t errlen)
{
    usher_err err;
    pdf_doc d;

    if (badges == NULL || n == 0 || n > USHER_PDF_MAX_BADGES || pdf == NULL || len == NULL) {
        snprintf(errbuf, errlen, "badges: between 1 and %d badges and outputs are required",
                 USHER_PDF_MAX_BADGES);
        return USHER_ERR_INVALID;
    }
    err = check_badges(badges, n, errbuf, errlen);
    if (err != USHER_OK)
        return err;
    err = pdf_doc_open(&d, errbuf, errlen);
    if (err == USHER_OK)
        err = draw_badges(&d, badges, n, errbuf, errlen);
    if (err == USHER_OK)
        err = pdf_doc_save(&d, pdf, len, errbuf, errlen);
    HPDF_Free(d.pdf);
    return err;
}
