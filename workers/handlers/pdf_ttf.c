/*
 * Reading TrueType fonts (the OpenType spec's "glyf" flavour); the subset
 * is cut in pdf_ttf_subset.c.
 *
 * Loading reads the whole file once, checks the tables this file relies
 * on, and expands the Unicode character map into a flat table for the
 * Basic Multilingual Plane (128 KB, one lookup per character); code points
 * past U+FFFF are found by binary search in a format 12 map, if the font
 * has one.
 */
#include "pdf_ttf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdf_ttf_tables.h"

#define MAX_FONT_BYTES (64u << 20)

static int to_pdf_units(const usher_ttf *f, int v)
{
    long scaled = (long)v * 1000;

    return (int)(scaled >= 0 ? (scaled + f->units_per_em / 2) / f->units_per_em
                             : (scaled - f->units_per_em / 2) / f->units_per_em);
}

/* Finds the table tag in the directory; len 0 when missing or out of the file. */
static table find_table(const usher_ttf *f, uint32_t tag)
{
    uint16_t n = u16(f->file + 4);
    table t = { NULL, 0 };

    for (uint16_t i = 0; i < n && 12 + 16 * (size_t)(i + 1) <= f->size; i++) {
        const unsigned char *e = f->file + 12 + 16 * (size_t)i;
        uint32_t off = u32(e + 8), len = u32(e + 12);
        if (u32(e) == tag && off <= f->size && len <= f->size - off) {
            t.p = f->file + off;
            t.len = len;
        }
    }
    return t;
}

/* Expands a format 4 subtable into f->bmp; 0 when malformed. */
static int read_cmap4(usher_ttf *f, const unsigned char *t, uint32_t avail)
{
    uint32_t len = avail >= 4 ? u16(t + 2) : 0;
    uint16_t segs = len >= 14 ? u16(t + 6) / 2 : 0;
    const unsigned char *ends = t + 14, *starts = ends + 2 * segs + 2;
    const unsigned char *deltas = starts + 2 * segs, *ranges = deltas + 2 * segs;

    if (len > avail || segs == 0 || 16 + 8 * (uint32_t)segs > len)
        return 0;
    for (uint16_t i = 0; i < segs; i++) {
        uint32_t start = u16(starts + 2 * i), end = u16(ends + 2 * i);
        uint16_t delta = u16(deltas + 2 * i), range = u16(ranges + 2 * i);
        for (uint32_t c = start; c <= end && c < 0xffff; c++) {
            uint32_t g = (c + delta) & 0xffff;
            if (range != 0) {
                size_t at = (size_t)(ranges + 2 * i - t) + range + 2 * (c - start);
                g = at + 2 <= len ? u16(t + at) : 0;
                g = g != 0 ? (g + delta) & 0xffff : 0;
            }
            f->bmp[c] = g < f->num_glyphs ? (uint16_t)g : 0;
        }
    }
    return 1;
}

/* Expands a format 12 subtable's BMP part into f->bmp and keeps it for the rest. */
static int read_cmap12(usher_ttf *f, const unsigned char *t, uint32_t avail)
{
    uint32_t len = avail >= 16 ? u32(t + 4) : 0, n = len >= 16 ? u32(t + 12) : 0;

    if (len > avail || len < 16 || n > (len - 16) / 12)
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *g = t + 16 + 12 * (size_t)i;
        uint32_t start = u32(g), end = u32(g + 4), glyph = u32(g + 8);
        for (uint32_t c = start; c <= end && c < 0xffff; c++, glyph++)
            f->bmp[c] = glyph < f->num_glyphs ? (uint16_t)glyph : 0;
    }
    f->groups = t + 16;
    f->ngroups = n;
    return 1;
}

/* Reads the best Unicode map: (3,10) format 12, else (3,1) or (0,x) format 4. */
static int read_cmap(usher_ttf *f)
{
    table cmap = find_table(f, TAG('c', 'm', 'a', 'p'));
    const unsigned char *best = NULL;
    int best_rank = 0;
    uint16_t n = cmap.len >= 4 ? u16(cmap.p + 2) : 0;

    for (uint16_t i = 0; i < n && 4 + 8 * (uint32_t)(i + 1) <= cmap.len; i++) {
        const unsigned char *e = cmap.p + 4 + 8 * i;
        uint16_t platform = u16(e), encoding = u16(e + 2);
        uint32_t off = u32(e + 4);
        int rank;
        if (off >= cmap.len || cmap.len - off < 2)
            continue;
        uint16_t format = u16(cmap.p + off);
        if (format == 12 && (platform == 0 || (platform == 3 && encoding == 10)))
            rank = 3;
        else if (format == 4 && platform == 3 && encoding == 1)
            rank = 2;
        else if (format == 4 && platform == 0)
            rank = 1;
        else
            continue;
        if (rank > best_rank) {
            best = cmap.p + off;
            best_rank = rank;
        }
    }
    if (best == NULL)
        return 0;
    if (best_rank == 3)
        return read_cmap12(f, best, cmap.len - (uint32_t)(best - cmap.p));
    return read_cmap4(f, best, cmap.len - (uint32_t)(best - cmap.p));
}

/* Checks the tables and reads the header fields; 0 when the font is unusable. */
static int read_tables(usher_ttf *f)
{
    table os2, post;
    size_t loca_need, hmtx_need;

    if (f->size < 12 || (u32(f->file) != 0x00010000 && u32(f->file) != TAG('t', 'r', 'u', 'e')))
        return 0;
    f->head = find_table(f, TAG('h', 'e', 'a', 'd'));
    f->hhea = find_table(f, TAG('h', 'h', 'e', 'a'));
    f->maxp = find_table(f, TAG('m', 'a', 'x', 'p'));
    f->hmtx = find_table(f, TAG('h', 'm', 't', 'x'));
    f->loca = find_table(f, TAG('l', 'o', 'c', 'a'));
    f->glyf = find_table(f, TAG('g', 'l', 'y', 'f'));
    f->cvt = find_table(f, TAG('c', 'v', 't', ' '));
    f->fpgm = find_table(f, TAG('f', 'p', 'g', 'm'));
    f->prep = find_table(f, TAG('p', 'r', 'e', 'p'));
    if (f->head.len < 54 || f->hhea.len < 36 || f->maxp.len < 6 || f->glyf.len == 0)
        return 0;
    f->units_per_em = u16(f->head.p + 18);
    f->long_loca = s16(f->head.p + 50) == 1;
    f->num_glyphs = u16(f->maxp.p + 4);
    f->num_hmetrics = u16(f->hhea.p + 34);
    loca_need = ((size_t)f->num_glyphs + 1) * (f->long_loca ? 4 : 2);
    hmtx_need = 4 * (size_t)f->num_hmetrics + 2 * (size_t)(f->num_glyphs - f->num_hmetrics);
    if (f->units_per_em < 16 || f->num_glyphs == 0 || f->num_hmetrics == 0 ||
        f->num_hmetrics > f->num_glyphs || f->loca.len < loca_need || f->hmtx.len < hmtx_need)
        return 0;
    f->metrics.ascent = to_pdf_units(f, s16(f->hhea.p + 4));
    f->metrics.descent = to_pdf_units(f, s16(f->hhea.p + 6));
    os2 = find_table(f, TAG('O', 'S', '/', '2'));
    f->metrics.cap_height =
        os2.len >= 90 && u16(os2.p) >= 2 ? to_pdf_units(f, s16(os2.p + 88)) : f->metrics.ascent;
    for (int i = 0; i < 4; i++)
        f->metrics.bbox[i] = to_pdf_units(f, s16(f->head.p + 36 + 2 * i));
    post = find_table(f, TAG('p', 'o', 's', 't'));
    f->metrics.italic_angle = post.len >= 8 ? s16(post.p + 4) : 0;
    return read_cmap(f);
}

/* The PDF name: the file's base name up to its extension, kept to [A-Za-z0-9-]. */
static void set_name(usher_ttf *f, const char *path)
{
    const char *base = strrchr(path, '/');
    size_t n = 0;

    for (base = base ? base + 1 : path; *base && *base != '.' && n < NAME_MAX_LEN; base++) {
        char c = *base;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
            f->name[n++] = c;
    }
    if (n == 0)
        memcpy(f->name, "Font", 5);
    else
        f->name[n] = '\0';
}

static usher_err read_file(const char *path, usher_ttf *f, char *errbuf, size_t errlen)
{
    FILE *in = fopen(path, "rb");
    long size;

    if (in == NULL) {
        snprintf(errbuf, errlen, "%s: cannot open the font file: %s", path, strerror(errno));
        return USHER_ERR_IO;
    }
    if (fseek(in, 0, SEEK_END) != 0 || (size = ftell(in)) < 0 || fseek(in, 0, SEEK_SET) != 0 ||
        (unsigned long)size > MAX_FONT_BYTES) {
        fclose(in);
        snprintf(errbuf, errlen, "%s: cannot size the font file (or larger than %u bytes)", path,
                 MAX_FONT_BYTES);
        return USHER_ERR_IO;
    }
    f->size = (size_t)size;
    f->file = malloc(f->size > 0 ? f->size : 1);
    if (f->file == NULL) {
        fclose(in);
        snprintf(errbuf, errlen, "%s: out of memory for the font file", path);
        return USHER_ERR_NOMEM;
    }
    if (fread(f->file, 1, f->size, in) != f->size) {
        fclose(in);
        snprintf(errbuf, errlen, "%s: file read error", path);
        return USHER_ERR_IO;
    }
    fclose(in);
    return USHER_OK;
}

usher_err usher_ttf_load(const char *path, usher_ttf **out, char *errbuf, size_t errlen)
{
    usher_ttf *f = calloc(1, sizeof(*f));
    usher_err err;

    if (f == NULL) {
        snprintf(errbuf, errlen, "%s: out of memory", path);
        return USHER_ERR_NOMEM;
    }
    err = read_file(path, f, errbuf, errlen);
    if (err == USHER_OK && !read_tables(f)) {
        snprintf(errbuf, errlen, "%s: the font file is not a usable TrueType font", path);
        err = USHER_ERR_INVALID;
    }
    if (err != USHER_OK) {
        usher_ttf_free(f);
        return err;
    }
    set_name(f, path);
    *out = f;
    return USHER_OK;
}

void usher_ttf_free(usher_ttf *f)
{
    if (f != NULL)
        free(f->file);
    free(f);
}

const char *usher_ttf_name(const usher_ttf *f)
{
    return f->name;
}

void usher_ttf_get_metrics(const usher_ttf *f, usher_ttf_metrics *m)
{
    *m = f->metrics;
}

uint16_t usher_ttf_num_glyphs(const usher_ttf *f)
{
    return f->num_glyphs;
}

uint16_t usher_ttf_glyph(const usher_ttf *f, uint32_t cp)
{
    uint32_t lo = 0, hi = f->ngroups;

    if (cp < 0xffff)
        return f->bmp[cp];
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const unsigned char *g = f->groups + 12 * (size_t)mid;
        if (cp < u32(g))
            hi = mid;
        else if (cp > u32(g + 4))
            lo = mid + 1;
        else {
            uint32_t glyph = u32(g + 8) + (cp - u32(g));
            return glyph < f->num_glyphs ? (uint16_t)glyph : 0;
        }
    }
    return 0;
}

int usher_ttf_advance(const usher_ttf *f, uint16_t gid)
{
    return to_pdf_units(f, gid < f->num_glyphs ? advance_units(f, gid) : 0);
}
