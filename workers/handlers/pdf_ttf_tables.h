/*
 * Inside pdf_ttf.c and pdf_ttf_subset.c only: the loaded font and
 * big-endian readers for its tables.
 */
#ifndef USHER_PDF_TTF_TABLES_H
#define USHER_PDF_TTF_TABLES_H

#include <stddef.h>
#include <stdint.h>

#include "pdf_ttf.h"

#define TAG(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))
#define NAME_MAX_LEN    63

typedef struct table {
    const unsigned char *p;
    uint32_t len;
} table;

struct usher_ttf {
    unsigned char *file;
    size_t size;
    table head, hhea, maxp, hmtx, loca, glyf, cvt, fpgm, prep;
    const unsigned char *groups; /* format 12 groups for code points past U+FFFF */
    uint32_t ngroups;
    uint16_t num_glyphs, num_hmetrics, units_per_em;
    int long_loca;
    usher_ttf_metrics metrics;
    char name[NAME_MAX_LEN + 1];
    uint16_t bmp[0x10000];
};

static inline uint16_t u16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline int16_t s16(const unsigned char *p)
{
    return (int16_t)u16(p);
}

static inline uint32_t u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint16_t advance_units(const usher_ttf *f, uint16_t gid)
{
    uint16_t i = gid < f->num_hmetrics ? gid : (uint16_t)(f->num_hmetrics - 1);

    return u16(f->hmtx.p + 4 * (size_t)i);
}

static inline int16_t lsb_units(const usher_ttf *f, uint16_t gid)
{
    if (gid < f->num_hmetrics)
        return s16(f->hmtx.p + 4 * (size_t)gid + 2);
    return s16(f->hmtx.p + 4 * (size_t)f->num_hmetrics + 2 * (size_t)(gid - f->num_hmetrics));
}

#endif
