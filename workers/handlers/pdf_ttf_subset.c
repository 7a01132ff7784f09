/*
 * Cutting a loaded font down to the glyphs a document uses.
 *
 * A subset keeps the tables a PDF viewer needs for a CIDFontType2 font
 * (ISO 32000 9.9: head, hhea, maxp, hmtx, loca, glyf, and cvt, fpgm, prep
 * for the hinting programs the outlines call), with a format 3 post table
 * and no cmap: the PDF maps character codes to glyphs itself. Glyphs are
 * renumbered in the order given, and the components of composite glyphs
 * (accented letters are often built from two) are added and renumbered
 * too, so the same text gives the same bytes.
 */
#include <string.h>

#include "pdf_ttf_tables.h"

/* Composite glyph flags (OpenType glyf table). */
#define ARG_1_AND_2_ARE_WORDS    0x0001
#define WE_HAVE_A_SCALE          0x0008
#define MORE_COMPONENTS          0x0020
#define WE_HAVE_AN_X_AND_Y_SCALE 0x0040
#define WE_HAVE_A_TWO_BY_TWO     0x0080

/* The outline of gid in glyf: *len 0 for an empty glyph; 0 when out of bounds. */
static int outline(const usher_ttf *f, uint16_t gid, const unsigned char **p, uint32_t *len)
{
    uint32_t from, to;

    if (gid >= f->num_glyphs)
        return 0;
    if (f->long_loca) {
        from = u32(f->loca.p + 4 * (size_t)gid);
        to = u32(f->loca.p + 4 * (size_t)gid + 4);
    } else {
        from = 2u * u16(f->loca.p + 2 * (size_t)gid);
        to = 2u * u16(f->loca.p + 2 * (size_t)gid + 2);
    }
    if (from > to || to > f->glyf.len || (to > from && to - from < 10))
        return 0;
    *p = f->glyf.p + from;
    *len = to - from;
    return 1;
}

/*
 * Walks the components of a composite outline: calls visit(ctx, at) with
 * the offset of each component's glyph index. 0 when the outline is cut short.
 */
static int each_component(const unsigned char *g, uint32_t len,
                          int (*visit)(void *ctx, const unsigned char *g, uint32_t at), void *ctx)
{
    uint32_t at = 10;
    uint16_t flags;

    do {
        if (at + 4 > len)
            return 0;
        flags = u16(g + at);
        if (!visit(ctx, g, at + 2))
            return 0;
        at += 4 + ((flags & ARG_1_AND_2_ARE_WORDS) ? 4 : 2);
        if (flags & WE_HAVE_A_SCALE)
            at += 2;
        else if (flags & WE_HAVE_AN_X_AND_Y_SCALE)
            at += 4;
        else if (flags & WE_HAVE_A_TWO_BY_TWO)
            at += 8;
    } while (flags & MORE_COMPONENTS);
    return at <= len;
}

typedef struct glyph_list {
    uint16_t *glyphs;
    size_t *n, cap;
    int too_many;
} glyph_list;

static size_t index_of(const uint16_t *glyphs, size_t n, uint16_t gid)
{
    size_t i = 0;

    while (i < n && glyphs[i] != gid)
        i++;
    return i;
}

/* Adds a component's glyph to the list unless it is there. */
static int add_component(void *ctx, const unsigned char *g, uint32_t at)
{
    glyph_list *l = ctx;
    uint16_t gid = u16(g + at);

    if (index_of(l->glyphs, *l->n, gid) < *l->n)
        return 1;
    if (*l->n == l->cap) {
        l->too_many = 1;
        return 0;
    }
    l->glyphs[(*l->n)++] = gid;
    return 1;
}

/* Appends the components of every composite glyph in the list (recursively). */
static usher_err close_over_components(const usher_ttf *f, uint16_t *glyphs, size_t *n, size_t cap)
{
    glyph_list l = { glyphs, n, cap, 0 };

    for (size_t i = 0; i < *n; i++) {
        const unsigned char *g;
        uint32_t len;
        if (!outline(f, glyphs[i], &g, &len))
            return USHER_ERR_INVALID;
        if (len > 0 && s16(g) < 0 && !each_component(g, len, add_component, &l))
            return l.too_many ? USHER_ERR_TOO_LARGE : USHER_ERR_INVALID;
    }
    return USHER_OK;
}

typedef struct renumber {
    unsigned char *copy; /* the outline as written into the subset */
    const uint16_t *glyphs;
    size_t n;
} renumber;

/* Rewrites a component's glyph index to its number in the subset. */
static int renumber_component(void *ctx, const unsigned char *g, uint32_t at)
{
    renumber *r = ctx;
    size_t i = index_of(r->glyphs, r->n, u16(g + at));

    r->copy[at] = (unsigned char)(i >> 8);
    r->copy[at + 1] = (unsigned char)i;
    return i < r->n;
}

static void put16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p + 2, v);
}

static uint32_t checksum(const unsigned char *p, size_t len)
{
    uint32_t sum = 0;

    for (size_t i = 0; i < len; i += 4) {
        unsigned char w[4] = { 0, 0, 0, 0 };
        memcpy(w, p + i, len - i < 4 ? len - i : 4);
        sum += u32(w);
    }
    return sum;
}

enum { T_CVT, T_FPGM, T_GLYF, T_HEAD, T_HHEA, T_HMTX, T_LOCA, T_MAXP, T_POST, T_PREP, NTABLES };

/* Writes table t's bytes (with the subset's changes) at the end of out. */
static void write_table(const usher_ttf *f, int t, const uint16_t *glyphs, size_t n, usher_buf *out)
{
    static const unsigned char post3[32] = { 0, 3, 0, 0 };
    unsigned char w[4];
    const table *copy[] = { [T_CVT] = &f->cvt, [T_FPGM] = &f->fpgm, [T_PREP] = &f->prep };
    uint32_t off = 0;

    switch (t) {
    case T_CVT:
    case T_FPGM:
    case T_PREP:
        usher_buf_append(out, (const char *)copy[t]->p, copy[t]->len);
        break;
    case T_HEAD: /* long loca; the checksum adjustment is set last */
    case T_HHEA:
    case T_MAXP:
        break; /* copied and patched by the caller */
    case T_POST:
        usher_buf_append(out, (const char *)post3, sizeof(post3));
        break;
    case T_HMTX:
        for (size_t i = 0; i < n; i++) {
            put16(w, advance_units(f, glyphs[i]));
            put16(w + 2, (uint16_t)lsb_units(f, glyphs[i]));
            usher_buf_append(out, (const char *)w, 4);
        }
        break;
    case T_LOCA:
        for (size_t i = 0; i <= n; i++) {
            const unsigned char *g;
            uint32_t len = 0;
            put32(w, off);
            usher_buf_append(out, (const char *)w, 4);
            if (i < n && outline(f, glyphs[i], &g, &len))
                off += (len + 3) & ~3u;
        }
        break;
    case T_GLYF:
        for (size_t i = 0; i < n; i++) {
            const unsigned char *g;
            uint32_t len = 0;
            size_t at = out->len;
            if (!outline(f, glyphs[i], &g, &len) || len == 0)
                continue;
            usher_buf_append(out, (const char *)g, len);
            usher_buf_append(out, "\0\0\0", ((len + 3) & ~3u) - len);
            if (!out->failed && s16(g) < 0) {
                renumber r = { (unsigned char *)out->data + at, glyphs, n };
                (void)each_component(g, len, renumber_component, &r);
            }
        }
        break;
    }
}

usher_err usher_ttf_subset(const usher_ttf *f, uint16_t *glyphs, size_t *n, size_t cap,
                           usher_buf *out)
{
    static const uint32_t tags[NTABLES] = {
        [T_CVT] = TAG('c', 'v', 't', ' '),  [T_FPGM] = TAG('f', 'p', 'g', 'm'),
        [T_GLYF] = TAG('g', 'l', 'y', 'f'), [T_HEAD] = TAG('h', 'e', 'a', 'd'),
        [T_HHEA] = TAG('h', 'h', 'e', 'a'), [T_HMTX] = TAG('h', 'm', 't', 'x'),
        [T_LOCA] = TAG('l', 'o', 'c', 'a'), [T_MAXP] = TAG('m', 'a', 'x', 'p'),
        [T_POST] = TAG('p', 'o', 's', 't'), [T_PREP] = TAG('p', 'r', 'e', 'p'),
    };
    const table *raw[NTABLES] = { [T_CVT] = &f->cvt,   [T_FPGM] = &f->fpgm, [T_HEAD] = &f->head,
                                  [T_HHEA] = &f->hhea, [T_MAXP] = &f->maxp, [T_PREP] = &f->prep };
    size_t base = out->len, dir, start[NTABLES], len[NTABLES];
    unsigned ntables = 0, selector = 0;
    unsigned char head[12];
    usher_err err;

    if (*n == 0 || glyphs[0] != 0)
        return USHER_ERR_INVALID;
    if ((err = close_over_components(f, glyphs, n, cap)) != USHER_OK)
        return err;
    for (int t = 0; t < NTABLES; t++)
        ntables += raw[t] == NULL || raw[t]->len > 0;
    while ((2u << selector) <= ntables)
        selector++;
    put32(head, 0x00010000);
    put16(head + 4, ntables);
    put16(head + 6, 16u << selector);
    put16(head + 8, selector);
    put16(head + 10, ntables * 16 - (16u << selector));
    usher_buf_append(out, (const char *)head, sizeof(head));
    dir = out->len;
    for (unsigned i = 0; i < ntables * 16; i += 4)
        usher_buf_append(out, "\0\0\0\0", 4);
    for (int t = 0, e = 0; t < NTABLES; t++) {
        if (raw[t] != NULL && raw[t]->len == 0)
            continue;
        start[t] = out->len;
        if (t == T_HEAD || t == T_HHEA || t == T_MAXP)
            usher_buf_append(out, (const char *)raw[t]->p, raw[t]->len);
        else
            write_table(f, t, glyphs, *n, out);
        len[t] = out->len - start[t];
        usher_buf_append(out, "\0\0\0", (4 - len[t] % 4) % 4);
        if (out->failed)
            return USHER_ERR_NOMEM;
        unsigned char *d = (unsigned char *)out->data;
        if (t == T_HEAD) {
            put32(d + start[t] + 8, 0);
            put16(d + start[t] + 50, 1);
        } else if (t == T_HHEA) {
            put16(d + start[t] + 34, (uint32_t)*n);
        } else if (t == T_MAXP) {
            put16(d + start[t] + 4, (uint32_t)*n);
        }
        put32(d + dir + 16 * (size_t)e, tags[t]);
        put32(d + dir + 16 * (size_t)e + 4, checksum(d + start[t], len[t]));
        put32(d + dir + 16 * (size_t)e + 8, (uint32_t)(start[t] - base));
        put32(d + dir + 16 * (size_t)e + 12, (uint32_t)len[t]);
        e++;
    }
    put32((unsigned char *)out->data + start[T_HEAD] + 8,
          0xB1B0AFBAu - checksum((unsigned char *)out->data + base, out->len - base));
    return USHER_OK;
}
