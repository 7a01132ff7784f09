/*
 * Badge sheets with libharu 2.3, drawn with the document helpers of
 * pdf_doc.c (fonts, UTF-8 text that shrinks or is cut to fit by
 * pdf_text.c's rules, error translation). Every libharu call is checked: the render stops at the
 * first failure and the document is freed on every path. Sizes are in PDF
 * points (1/72 inch). Tickets are written without libharu, in
 * pdf_ticket_page.c.
 */
#include "pdf_render.h"

#include "pdf_doc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Badge sheet geometry: 2 x 4 cards of 90 x 55 mm centred on A4 (210 x 297 mm). */
#define BADGE_COLS 2
#define BADGE_ROWS 4
#define BADGE_W    (90 * PDF_MM)
#define BADGE_H    (55 * PDF_MM)
#define SHEET_X    ((210 * PDF_MM - BADGE_COLS * BADGE_W) / 2)
#define SHEET_Y    ((297 * PDF_MM - BADGE_ROWS * BADGE_H) / 2)

/* One card with its lower-left corner at (x, y). */
static USHER_MUSTCHECK usher_err draw_badge(pdf_doc *d, HPDF_Page page, const usher_badge *b,
                                            float x, float y)
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

static USHER_MUSTCHECK usher_err check_badges(const usher_badge *badges, size_t n, char *errbuf,
                                              size_t errlen)
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

static USHER_MUSTCHECK usher_err draw_badges(pdf_doc *d, const usher_badge *badges, size_t n,
                                             char *errbuf, size_t errlen)
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
