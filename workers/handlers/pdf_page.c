/*
 * The PDF objects, in the order written:
 *
 *   1 Catalog, 2 Pages, 3 Page, 4 content stream, 5 Info, then for each
 *   font the page used: Type0 font, CIDFontType2, FontDescriptor,
 *   FontFile2 (the subset TrueType file) and ToUnicode CMap.
 *
 * Character codes are the glyph numbers of the subset (two bytes each,
 * Identity-H), and the subset's glyph numbers are its CIDs, so no
 * CIDToGIDMap stream is needed. Glyphs are numbered in the order the text
 * first uses them, which is what makes the output deterministic.
 */
#include "pdf_page.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define FIRST_FONT_OBJ 6
#define OBJS_PER_FONT  5

usher_err usher_pdf_page_init(usher_pdf_page *p, float width, float height, const usher_ttf *font0,
                              const usher_ttf *font1)
{
    const usher_ttf *ttf[USHER_PDF_PAGE_FONTS] = { font0, font1 };

    memset(p, 0, sizeof(*p));
    p->width = width;
    p->height = height;
    for (int i = 0; i < USHER_PDF_PAGE_FONTS; i++) {
        usher_pdf_font_use *u = &p->fonts[i];
        size_t glyphs = usher_ttf_num_glyphs(ttf[i]);
        u->ttf = ttf[i];
        u->cap = glyphs + 1;
        u->subset_of = calloc(glyphs, sizeof(*u->subset_of));
        u->glyphs = malloc(u->cap * sizeof(*u->glyphs));
        u->unicode = malloc(u->cap * sizeof(*u->unicode));
        if (u->subset_of == NULL || u->glyphs == NULL || u->unicode == NULL) {
            usher_pdf_page_free(p);
            return USHER_ERR_NOMEM;
        }
        u->glyphs[0] = 0;
        u->unicode[0] = 0;
        u->n = 1;
    }
    return USHER_OK;
}

void usher_pdf_page_free(usher_pdf_page *p)
{
    for (int i = 0; i < USHER_PDF_PAGE_FONTS; i++) {
        free(p->fonts[i].subset_of);
        free(p->fonts[i].glyphs);
        free(p->fonts[i].unicode);
        p->fonts[i] = (usher_pdf_font_use){ 0 };
    }
    usher_buf_release(&p->content);
}

/* Decodes one code point of valid UTF-8 at *s and advances *s. */
static uint32_t next_code_point(const unsigned char **s)
{
    const unsigned char *p = *s;
    uint32_t cp;
    int extra;

    if (p[0] < 0x80) {
        *s = p + 1;
        return p[0];
    }
    extra = p[0] >= 0xf0 ? 3 : p[0] >= 0xe0 ? 2 : 1;
    cp = p[0] & (0x3f >> extra);
    for (int i = 1; i <= extra; i++)
        cp = cp << 6 | (p[i] & 0x3f);
    *s = p + 1 + extra;
    return cp;
}

float usher_pdf_page_text_width(const usher_pdf_page *p, int font, const char *text, size_t len,
                                float size)
{
    const usher_ttf *ttf = p->fonts[font].ttf;
    const unsigned char *s = (const unsigned char *)text, *end = s + len;
    long units = 0;

    while (s < end)
        units += usher_ttf_advance(ttf, usher_ttf_glyph(ttf, next_code_point(&s)));
    return (float)units * size / 1000.0f;
}

void usher_pdf_page_num(usher_pdf_page *p, float v)
{
    long long milli = llroundf(v * 1000.0f);
    char buf[32];
    int n;

    n = snprintf(buf, sizeof(buf), "%s%lld", milli < 0 ? "-" : "", llabs(milli) / 1000);
    if (milli % 1000 != 0) {
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, ".%03lld", llabs(milli) % 1000);
        while (buf[n - 1] == '0')
            buf[--n] = '\0';
    }
    buf[n++] = ' ';
    usher_buf_append(&p->content, buf, (size_t)n);
}

void usher_pdf_page_ops(usher_pdf_page *p, const char *ops)
{
    usher_buf_append(&p->content, ops, strlen(ops));
}

/* The subset number of the glyph showing cp in font u, added on first use. */
static uint16_t subset_glyph(usher_pdf_font_use *u, uint32_t cp)
{
    uint16_t gid = usher_ttf_glyph(u->ttf, cp);

    if (gid == 0)
        return 0;
    if (u->subset_of[gid] == 0) {
        u->subset_of[gid] = (uint16_t)u->n;
        u->glyphs[u->n] = gid;
        u->unicode[u->n] = cp;
        u->n++;
    }
    return u->subset_of[gid];
}

void usher_pdf_page_text(usher_pdf_page *p, int font, float size, float x, float y,
                         const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)text;
    char op[24];

    snprintf(op, sizeof(op), "BT /F%d ", font + 1);
    usher_pdf_page_ops(p, op);
    usher_pdf_page_num(p, size);
    usher_pdf_page_ops(p, "Tf ");
    usher_pdf_page_num(p, x);
    usher_pdf_page_num(p, y);
    usher_pdf_page_ops(p, "Td <");
    while (*s) {
        uint16_t g = subset_glyph(&p->fonts[font], next_code_point(&s));
        char h[4] = { hex[g >> 12], hex[(g >> 8) & 15], hex[(g >> 4) & 15], hex[g & 15] };
        usher_buf_append(&p->content, h, 4);
    }
    usher_pdf_page_ops(p, "> Tj ET\n");
}

/* ---------------------------------------------------------------- output */

typedef struct writer {
    usher_buf out;
    size_t offsets[FIRST_FONT_OBJ + OBJS_PER_FONT * USHER_PDF_PAGE_FONTS];
    int objects;
} writer;

static void begin_obj(writer *w, int num)
{
    w->offsets[num] = w->out.len;
    if (num > w->objects)
        w->objects = num;
    usher_buf_appendf(&w->out, "%d 0 obj\n", num);
}

static void obj(writer *w, int num, const char *body)
{
    begin_obj(w, num);
    usher_buf_append(&w->out, body, strlen(body));
    usher_buf_append(&w->out, "\nendobj\n", 8);
}

/* Writes object num as a deflated stream of data; extra goes into its dictionary. */
static void stream_obj(writer *w, int num, const char *data, size_t len, const char *extra)
{
    uLongf zlen = compressBound((uLong)len);
    Bytef *z = malloc(zlen);

    if (z == NULL ||
        compress2(z, &zlen, (const Bytef *)data, (uLong)len, Z_DEFAULT_COMPRESSION) != Z_OK) {
        w->out.failed = true;
        free(z);
        return;
    }
    begin_obj(w, num);
    usher_buf_appendf(&w->out, "<< /Length %lu /Filter /FlateDecode%s >>\nstream\n",
                      (unsigned long)zlen, extra);
    usher_buf_append(&w->out, (const char *)z, zlen);
    usher_buf_append(&w->out, "\nendstream\nendobj\n", 18);
    free(z);
}

/* Six capital letters naming this subset (ISO 32000 9.6.4), from its glyphs. */
static void subset_tag(const usher_pdf_font_use *u, char tag[7])
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < u->n; i++)
        h = (h ^ u->glyphs[i]) * 16777619u;
    for (int i = 0; i < 6; i++, h /= 26)
        tag[i] = (char)('A' + h % 26);
    tag[6] = '\0';
}

/* The ToUnicode CMap: each subset glyph to the code point it was used for. */
static void to_unicode(const usher_pdf_font_use *u, usher_buf *b)
{
    size_t left = 0, block = 0;

    usher_buf_appendf(b,
                      "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
                      "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
                      "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
                      "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n");
    for (size_t i = 1; i < u->n; i++)
        left += u->unicode[i] != 0;
    for (size_t i = 1; i < u->n; i++) {
        uint32_t cp = u->unicode[i];
        if (cp == 0)
            continue;
        if (block == 0) {
            block = left < 100 ? left : 100; /* at most 100 entries a block */
            usher_buf_appendf(b, "%zu beginbfchar\n", block);
        }
        if (cp < 0x10000)
            usher_buf_appendf(b, "<%04zX> <%04X>\n", i, (unsigned)cp);
        else
            usher_buf_appendf(b, "<%04zX> <%04X%04X>\n", i, 0xd800 + ((cp - 0x10000) >> 10),
                              0xdc00 + ((cp - 0x10000) & 0x3ff));
        left--;
        if (--block == 0)
            usher_buf_appendf(b, "endbfchar\n");
    }
    usher_buf_appendf(b, "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
}

/* The five objects of font k, numbered from first. */
static usher_err write_font(writer *w, usher_pdf_font_use *u, int first, char *errbuf,
                            size_t errlen)
{
    usher_buf file = { 0 }, cmap = { 0 };
    usher_ttf_metrics m;
    char tag[7], extra[48];
    const char *name = usher_ttf_name(u->ttf);
    size_t shown = u->n;
    usher_err err = usher_ttf_subset(u->ttf, u->glyphs, &u->n, u->cap, &file);

    if (err != USHER_OK) {
        snprintf(errbuf, errlen, "PDF: cannot subset the font %s: %s", name, usher_strerror(err));
        usher_buf_release(&file);
        return err;
    }
    for (size_t i = shown; i < u->n; i++)
        u->unicode[i] = 0; /* parts of composite glyphs, never shown alone */
    usher_ttf_get_metrics(u->ttf, &m);
    subset_tag(u, tag);
    begin_obj(w, first);
    usher_buf_appendf(&w->out,
                      "<< /Type /Font /Subtype /Type0 /BaseFont /%s+%s /Encoding /Identity-H"
                      " /DescendantFonts [%d 0 R] /ToUnicode %d 0 R >>\nendobj\n",
                      tag, name, first + 1, first + 4);
    begin_obj(w, first + 1);
    usher_buf_appendf(&w->out,
                      "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /%s+%s /CIDSystemInfo"
                      " << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >>"
                      " /FontDescriptor %d 0 R /CIDToGIDMap /Identity /W [0 [",
                      tag, name, first + 2);
    for (size_t i = 0; i < u->n; i++)
        usher_buf_appendf(&w->out, "%s%d", i ? " " : "", usher_ttf_advance(u->ttf, u->glyphs[i]));
    usher_buf_appendf(&w->out, "]] >>\nendobj\n");
    begin_obj(w, first + 2);
    usher_buf_appendf(&w->out,
                      "<< /Type /FontDescriptor /FontName /%s+%s /Flags 32 /FontBBox [%d %d %d %d]"
                      " /ItalicAngle %d /Ascent %d /Descent %d /CapHeight %d /StemV 80"
                      " /FontFile2 %d 0 R >>\nendobj\n",
                      tag, name, m.bbox[0], m.bbox[1], m.bbox[2], m.bbox[3], m.italic_angle,
                      m.ascent, m.descent, m.cap_height, first + 3);
    snprintf(extra, sizeof(extra), " /Length1 %zu", file.len);
    stream_obj(w, first + 3, file.data, file.len, extra);
    to_unicode(u, &cmap);
    stream_obj(w, first + 4, cmap.data, cmap.len, "");
    err = file.failed || cmap.failed ? USHER_ERR_NOMEM : USHER_OK;
    usher_buf_release(&file);
    usher_buf_release(&cmap);
    return err;
}

usher_err usher_pdf_page_finish(usher_pdf_page *p, unsigned char **pdf, size_t *len, char *errbuf,
                                size_t errlen)
{
    writer w = { .objects = 0 };
    int font_obj[USHER_PDF_PAGE_FONTS], next = FIRST_FONT_OBJ;
    size_t xref;
    usher_err err = USHER_OK;

    usher_buf_append(&w.out, "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", 15);
    obj(&w, 1, "<< /Type /Catalog /Pages 2 0 R >>");
    obj(&w, 2, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
    begin_obj(&w, 3);
    usher_buf_appendf(&w.out,
                      "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.3f %.3f]"
                      " /Contents 4 0 R /Resources << /Font <<",
                      (double)p->width, (double)p->height);
    for (int i = 0; i < USHER_PDF_PAGE_FONTS; i++) {
        font_obj[i] = p->fonts[i].n > 1 ? next : 0;
        next += font_obj[i] ? OBJS_PER_FONT : 0;
        if (font_obj[i])
            usher_buf_appendf(&w.out, " /F%d %d 0 R", i + 1, font_obj[i]);
    }
    usher_buf_appendf(&w.out, " >> >> >>\nendobj\n");
    stream_obj(&w, 4, p->content.data, p->content.len, "");
    obj(&w, 5, "<< /Creator (Usher) /Producer (Usher) >>");
    for (int i = 0; i < USHER_PDF_PAGE_FONTS && err == USHER_OK; i++) {
        if (font_obj[i])
            err = write_font(&w, &p->fonts[i], font_obj[i], errbuf, errlen);
    }
    xref = w.out.len;
    usher_buf_appendf(&w.out, "xref\n0 %d\n0000000000 65535 f \n", w.objects + 1);
    for (int i = 1; i <= w.objects; i++)
        usher_buf_appendf(&w.out, "%010zu 00000 n \n", w.offsets[i]);
    usher_buf_appendf(&w.out,
                      "trailer\n<< /Size %d /Root 1 0 R /Info 5 0 R >>\nstartxref\n%zu\n%%%%EOF\n",
                      w.objects + 1, xref);
    if (err == USHER_OK && (w.out.failed || p->content.failed || p->failed)) {
        snprintf(errbuf, errlen, "PDF: out of memory writing the ticket");
        err = USHER_ERR_NOMEM;
    }
    if (err != USHER_OK) {
        usher_buf_release(&w.out);
        return err;
    }
    *pdf = (unsigned char *)w.out.data;
    *len = w.out.len;
    return USHER_OK;
}
