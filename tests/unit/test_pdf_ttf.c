/*
 * The TrueType reader and subsetter behind the ticket PDFs, on the DejaVu
 * fonts the tickets use: character lookups, widths, and a subset that is
 * a well-formed font (table directory, checksums, glyph count) holding the
 * parts of composite glyphs too. pdftotext and zbarimg check the PDFs
 * themselves in tests/integration/test_pdf.c.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "pdf_render.h"
#include "pdf_ttf.h"

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t be16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static usher_ttf *load(const char *path)
{
    usher_ttf *f = NULL;
    char err[512] = "";

    cr_assert_eq(usher_ttf_load(path, &f, err, sizeof(err)), USHER_OK, "%s", err);
    return f;
}

/* The table tag's (offset, length) in a font file; 0 when it is missing. */
static int find(const unsigned char *font, const char *tag, uint32_t *off, uint32_t *len)
{
    for (uint16_t i = 0; i < be16(font + 4); i++) {
        const unsigned char *e = font + 12 + 16 * i;
        if (memcmp(e, tag, 4) == 0) {
            *off = be32(e + 8);
            *len = be32(e + 12);
            return 1;
        }
    }
    return 0;
}

Test(pdf_ttf, looks_up_latin_greek_cyrillic_and_knows_what_it_lacks)
{
    usher_ttf *f = load(USHER_PDF_FONT_REGULAR);

    cr_assert_neq(usher_ttf_glyph(f, 'A'), 0);
    cr_assert_neq(usher_ttf_glyph(f, 0x03A9), 0); /* Ω */
    cr_assert_neq(usher_ttf_glyph(f, 0x0416), 0); /* Ж */
    cr_assert_neq(usher_ttf_glyph(f, 'A'), usher_ttf_glyph(f, 'B'));
    cr_assert_eq(usher_ttf_glyph(f, 0x4E00), 0);   /* 一: DejaVu has no CJK */
    cr_assert_eq(usher_ttf_glyph(f, 0x10FFFF), 0); /* past the map */
    /* DejaVu Sans: 'A' advances 1401 of 2048 units, i.e. 684 of 1000 */
    cr_assert_eq(usher_ttf_advance(f, usher_ttf_glyph(f, 'A')), 684);
    cr_assert_eq(usher_ttf_advance(f, usher_ttf_glyph(f, 'i')),
                 usher_ttf_advance(f, usher_ttf_glyph(f, 'l')));
    cr_assert_str_eq(usher_ttf_name(f), "DejaVuSans");
    usher_ttf_free(f);
}

Test(pdf_ttf, a_subset_is_a_well_formed_font_with_composite_parts)
{
    usher_ttf *f = load(USHER_PDF_FONT_BOLD);
    uint16_t glyphs[16] = { 0, usher_ttf_glyph(f, 0x00E9 /* é */), usher_ttf_glyph(f, 'x') };
    size_t n = 3;
    usher_buf out = { 0 };
    const unsigned char *font;
    uint32_t off, len, sum = 0;

    cr_assert_eq(usher_ttf_subset(f, glyphs, &n, 16, &out), USHER_OK);
    cr_assert_gt(n, 3, "é is built from e and an acute accent: its parts join the subset");
    for (size_t i = 3; i < n; i++)
        cr_assert_neq(glyphs[i], glyphs[1]);
    font = (const unsigned char *)out.data;
    cr_assert_eq(be32(font), 0x00010000);
    cr_assert_eq(be16(font + 4), 10, "cvt fpgm glyf head hhea hmtx loca maxp post prep");
    cr_assert(find(font, "maxp", &off, &len));
    cr_assert_eq(be16(font + off + 4), n);
    cr_assert(find(font, "hhea", &off, &len));
    cr_assert_eq(be16(font + off + 34), n);
    cr_assert(find(font, "loca", &off, &len));
    cr_assert_eq(len, 4 * (n + 1));
    cr_assert(!find(font, "cmap", &off, &len), "the PDF maps codes itself");
    {
        uint32_t loca, glyf, glyf_len;
        const unsigned char *e_acute;
        cr_assert(find(font, "loca", &loca, &len));
        cr_assert(find(font, "glyf", &glyf, &glyf_len));
        e_acute = font + glyf + be32(font + loca + 4); /* subset glyph 1 */
        cr_assert_lt((int16_t)be16(e_acute), 0, "still a composite");
        /* its first part now points into the subset, at a part appended after 'x' */
        cr_assert_geq(be16(e_acute + 12), 3);
        cr_assert_lt(be16(e_acute + 12), n);
    }
    cr_assert_eq(out.len % 4, 0);
    for (size_t i = 0; i < out.len; i += 4)
        sum += be32(font + i);
    cr_assert_eq(sum, 0xB1B0AFBAu, "head.checkSumAdjustment makes the file sum to the magic");
    usher_buf_release(&out);
    usher_ttf_free(f);
}

Test(pdf_ttf, the_subset_refuses_a_list_not_starting_with_notdef_or_too_small)
{
    usher_ttf *f = load(USHER_PDF_FONT_REGULAR);
    uint16_t glyphs[2] = { usher_ttf_glyph(f, 'A'), 0 };
    uint16_t tight[2] = { 0, usher_ttf_glyph(f, 0x00E9) };
    size_t n = 2;
    usher_buf out = { 0 };

    cr_assert_eq(usher_ttf_subset(f, glyphs, &n, 2, &out), USHER_ERR_INVALID);
    cr_assert_eq(usher_ttf_subset(f, tight, &n, 2, &out), USHER_ERR_TOO_LARGE);
    usher_buf_release(&out);
    usher_ttf_free(f);
}

Test(pdf_ttf, a_missing_file_is_io_and_a_non_font_is_invalid_both_named)
{
    usher_ttf *f = NULL;
    char err[512] = "";

    cr_assert_eq(usher_ttf_load("/nonexistent/Font.ttf", &f, err, sizeof(err)), USHER_ERR_IO);
    cr_assert(strstr(err, "/nonexistent/Font.ttf") != NULL, "%s", err);
    cr_assert_null(f);
    cr_assert_eq(usher_ttf_load("/etc/passwd", &f, err, sizeof(err)), USHER_ERR_INVALID);
    cr_assert(strstr(err, "/etc/passwd") != NULL, "%s", err);
    cr_assert_null(f);
}
