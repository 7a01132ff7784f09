/*
 * TrueType fonts for the PDF writer: a font file read and indexed once
 * (character map, advance widths, glyph outlines), then cut down per
 * document to the glyphs that document uses. Parsing a 700 KB font and
 * mapping all of Unicode on every render is what made libharu's tickets
 * slow; here a render only looks glyphs up and copies a few outlines.
 *
 * A loaded font is immutable and may be shared by any number of renders
 * (and threads). Glyph ids of a subset are renumbered from 0 (.notdef).
 */
#ifndef USHER_PDF_TTF_H
#define USHER_PDF_TTF_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

typedef struct usher_ttf usher_ttf;

/* Metrics in PDF glyph space (1/1000 of the em). */
typedef struct usher_ttf_metrics {
    int ascent, descent, cap_height;
    int bbox[4]; /* xMin, yMin, xMax, yMax */
    int italic_angle;
} usher_ttf_metrics;

/*
 * Reads and indexes the TrueType file at path. USHER_ERR_IO when it cannot
 * be read, USHER_ERR_INVALID when it is not a usable TrueType font (no
 * Unicode cmap, no glyf outlines, truncated tables), USHER_ERR_NOMEM;
 * errbuf names the path. Free with usher_ttf_free.
 */
usher_err usher_ttf_load(const char *path, usher_ttf **out, char *errbuf, size_t errlen);
void usher_ttf_free(usher_ttf *f);

/* The font's name for PDF (the file's base name, letters, digits and '-'). */
const char *usher_ttf_name(const usher_ttf *f);
void usher_ttf_get_metrics(const usher_ttf *f, usher_ttf_metrics *m);
/* How many glyphs the font has (glyph ids are below this). */
uint16_t usher_ttf_num_glyphs(const usher_ttf *f);
/* The glyph for code point cp; 0 (.notdef) when the font has none. */
uint16_t usher_ttf_glyph(const usher_ttf *f, uint32_t cp);
/* The advance width of glyph gid in 1/1000 em, rounded. */
int usher_ttf_advance(const usher_ttf *f, uint16_t gid);

/*
 * Appends to out a TrueType file holding glyphs[0..*n) renumbered 0..*n-1
 * (glyphs[0] must be 0, .notdef). Components of composite glyphs that are
 * not in the list are appended to it (cap entries at most) and *n grows.
 * USHER_ERR_INVALID for a glyph outside the font or a malformed outline,
 * USHER_ERR_TOO_LARGE when cap is too small, USHER_ERR_NOMEM.
 */
usher_err usher_ttf_subset(const usher_ttf *f, uint16_t *glyphs, size_t *n, size_t cap,
                           usher_buf *out);

#endif
