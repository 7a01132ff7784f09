/*
 * The text helpers every PDF renderer shares, with no PDF library behind
 * them (pdf_text.h): the font files set by usher_pdf_set_fonts, the checks
 * of text fields, and the fitting of a line into a width. A renderer
 * passes its own measure (a pdf_width_fn over a cairo scaled font or a
 * libharu font), so the same fitting rules hold on tickets, badges and
 * report tables.
 */
#include "pdf_text.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "pdf_render.h"

#define ELLIPSIS "\xe2\x80\xa6"

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

/* Longest prefix of text (on a UTF-8 boundary) that, followed by an ellipsis, fits max_width. */
static size_t fitting_prefix(pdf_width_fn width, const void *ctx, const char *text, float size,
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

/* text cut to what fits max_width at size with an ellipsis after it, malloc'd; NULL: no memory. */
static char *cut_to_fit(pdf_width_fn width, const void *ctx, const char *text, float size,
                        float max_width)
{
    size_t keep = fitting_prefix(width, ctx, text, size, max_width);
    char *cut = usher_malloc(keep + sizeof(ELLIPSIS));

    memcpy(cut, text, keep);
    memcpy(cut + keep, ELLIPSIS, sizeof(ELLIPSIS));
    return cut;
}

usher_err pdf_fit_line(pdf_width_fn width, const void *ctx, const char *text, float size,
                       float max_width, pdf_line *out)
{
    *out = (pdf_line){ .text = text, .size = size };
    out->width = width(ctx, text, strlen(text), size);
    if (!(out->width > max_width))
        return USHER_OK;
    out->size = size * max_width / out->width * 0.999f;
    if (out->size < PDF_MIN_FONT_SIZE) {
        out->size = PDF_MIN_FONT_SIZE;
        out->cut = cut_to_fit(width, ctx, text, out->size, max_width);
        out->text = out->cut;
    }
    out->width = width(ctx, out->text, strlen(out->text), out->size);
    return USHER_OK;
}

void pdf_line_release(pdf_line *line)
{
    free(line->cut);
    line->cut = NULL;
}
