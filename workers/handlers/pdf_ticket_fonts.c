/*
 * The ticket fonts: each font file is opened with FreeType once and wrapped
 * in a cairo font face, which cairo then measures, subsets and embeds per
 * document. Opening the file per render is what made libharu's tickets
 * slow (it parses the font and maps every code point each time).
 *
 * Each face gets an FT_Library of its own, freed with it: FreeType wants
 * FT_New_Face (or FT_New_Memory_Face) and FT_Done_Face on one library
 * serialised, and the cairo face (so its FreeType face) is freed by
 * whichever thread drops the last reference, maybe long after a font
 * change, when cairo's font caches let go of it. The cache below is
 * behind a mutex; cairo locks the FreeType face itself while it reads
 * glyphs, so renders may run in parallel threads.
 *
 * A face is read without its TrueType hinting (HarfBuzz's subsetter keeps
 * every glyph and character and drops the instructions: fpgm, prep, cvt and
 * each glyph's own). cairo embeds what the face holds, and DejaVu's hinting
 * was 45% of a ticket: 19.7 KB -> 10.7 KB per A6 ticket on average
 * (bench/handlers' seeded registrations), so 45% fewer base64 lines in each
 * confirmation email for the relay to carry, with the same text positions
 * (pdftotext -bbox) and no visible difference: PDF viewers and printers
 * scale outlines; hinting is for screens at small pixel sizes. It costs
 * ~25 ms per font, once per process. A font HarfBuzz cannot read is logged
 * and opened as it is, and FreeType says why if it cannot either.
 *
 * The cached faces are kept for the life of the process, reachable from
 * fonts[] (and cairo's own caches), like the fonts of any long-running
 * worker: LeakSanitizer and valgrind's definite-leak check do not count
 * them.
 */
#include "pdf_ticket_fonts.h"

#include <cairo-ft.h>
#include <errno.h>
#include <fcntl.h>
#include <ft2build.h>
#include <hb-subset.h>
#include <hb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include FT_FREETYPE_H

#include "alloc.h"
#include "log.h"
#include "pdf_text.h"

/* The loaded faces and the paths they were loaded from. */
static struct {
    cairo_font_face_t *face;
    char *path;
} fonts[2];
static pthread_mutex_t fonts_lock = PTHREAD_MUTEX_INITIALIZER;
static const cairo_user_data_key_t library_key;

/* What a face holds: its FreeType library, and the bytes it reads when they are not the file's. */
typedef struct face_owner {
    FT_Library library;
    hb_blob_t *unhinted; /* NULL: FreeType reads the file */
} face_owner;

/* Frees a face's FreeType library, with it the face, then its bytes: cairo calls this when the
 * face dies. */
static void free_owner(void *data)
{
    face_owner *owner = data;

    FT_Done_FreeType(owner->library);
    hb_blob_destroy(owner->unhinted);
    free(owner);
}

/* The font at path with every glyph and character and no hinting, or NULL (HarfBuzz cannot read
 * it, or no memory): the caller then opens the file as it is. */
static hb_blob_t *unhinted_font(const char *path)
{
    hb_blob_t *file = hb_blob_create_from_file_or_fail(path), *out = NULL;
    hb_face_t *face = file != NULL ? hb_face_create(file, 0) : NULL;
    hb_subset_input_t *input = hb_subset_input_create_or_fail();
    hb_face_t *subset = NULL;

    if (face != NULL && input != NULL && hb_face_get_glyph_count(face) > 0) {
        hb_set_add_range(hb_subset_input_glyph_set(input), 0, hb_face_get_glyph_count(face) - 1);
        hb_face_collect_unicodes(face, hb_subset_input_unicode_set(input));
        /* the missing-glyph box stays: a ticket draws it for characters DejaVu lacks */
        hb_subset_input_set_flags(input, HB_SUBSET_FLAGS_NO_HINTING | HB_SUBSET_FLAGS_RETAIN_GIDS |
                                             HB_SUBSET_FLAGS_NOTDEF_OUTLINE);
        subset = hb_subset_or_fail(face, input);
    }
    if (subset != NULL) {
        out = hb_face_reference_blob(subset);
        if (hb_blob_get_length(out) == 0) {
            hb_blob_destroy(out);
            out = NULL;
        }
    }
    hb_face_destroy(subset);
    hb_subset_input_destroy(input);
    hb_face_destroy(face);
    hb_blob_destroy(file);
    return out;
}

/* Why path could not be opened, when FreeType says it could not. */
static USHER_MUSTCHECK usher_err open_failure(const char *path, char *errbuf, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        snprintf(errbuf, errlen, "%s: cannot open the font file: %s", path, strerror(errno));
        return USHER_ERR_IO;
    }
    close(fd);
    snprintf(errbuf, errlen, "%s: cannot read the font file", path);
    return USHER_ERR_IO;
}

/* Opens path with FreeType in a library of its own, from owner->unhinted's bytes when there are
 * some; the caller frees owner->library. */
static USHER_MUSTCHECK usher_err open_face(const char *path, face_owner *owner, FT_Face *face,
                                           char *errbuf, size_t errlen)
{
    FT_Library *library = &owner->library;
    FT_Error e = FT_Init_FreeType(library);
    unsigned int len;
    const char *bytes;

    if (e != 0) {
        snprintf(errbuf, errlen, "%s: cannot start FreeType (error 0x%02X)", path, (unsigned)e);
        return e == FT_Err_Out_Of_Memory ? USHER_ERR_NOMEM : USHER_ERR_INVALID;
    }
    if (owner->unhinted != NULL) {
        bytes = hb_blob_get_data(owner->unhinted, &len);
        e = FT_New_Memory_Face(*library, (const FT_Byte *)bytes, (FT_Long)len, 0, face);
    } else {
        e = FT_New_Face(*library, path, 0, face);
    }
    if (e == 0 && (!FT_IS_SCALABLE(*face) || (*face)->charmap == NULL ||
                   (*face)->charmap->encoding != FT_ENCODING_UNICODE))
        e = FT_Err_Invalid_File_Format;
    if (e == 0)
        return USHER_OK;
    FT_Done_FreeType(*library);
    if (e == FT_Err_Cannot_Open_Resource)
        return open_failure(path, errbuf, errlen);
    if (e == FT_Err_Out_Of_Memory) {
        snprintf(errbuf, errlen, "%s: out of memory", path);
        return USHER_ERR_NOMEM;
    }
    snprintf(errbuf, errlen, "%s: not a scalable font with a Unicode map (FreeType error 0x%02X)",
             path, (unsigned)e);
    return USHER_ERR_INVALID;
}

/* A cairo face over the font file at path (unhinted), owning its FreeType library. */
static USHER_MUSTCHECK usher_err load_face(const char *path, cairo_font_face_t **out, char *errbuf,
                                           size_t errlen)
{
    face_owner *owner = usher_calloc(1, sizeof(*owner));
    FT_Face ft;
    cairo_font_face_t *face;
    usher_err err;

    owner->unhinted = unhinted_font(path);
    err = open_face(path, owner, &ft, errbuf, errlen);
    if (err != USHER_OK) {
        hb_blob_destroy(owner->unhinted);
        free(owner);
        return err;
    }
    /* A font FreeType reads but HarfBuzz could not unhint still renders, ~2x larger. */
    if (owner->unhinted == NULL)
        usher_log(USHER_LOG_WARNING,
                  "%s: HarfBuzz cannot drop its hinting; FreeType reads it as it is", path);
    face = cairo_ft_font_face_create_for_ft_face(ft, 0);
    if (cairo_font_face_status(face) != CAIRO_STATUS_SUCCESS ||
        cairo_font_face_set_user_data(face, &library_key, owner, free_owner) !=
            CAIRO_STATUS_SUCCESS) {
        cairo_font_face_destroy(face);
        free_owner(owner);
        snprintf(errbuf, errlen, "%s: out of memory", path);
        return USHER_ERR_NOMEM;
    }
    *out = face;
    return USHER_OK;
}

/* The cached face for bold, (re)loaded when its path changed; the caller holds fonts_lock. */
static USHER_MUSTCHECK usher_err cached_face(int bold, cairo_font_face_t **out, char *errbuf,
                                             size_t errlen)
{
    const char *path = pdf_font_path(bold);
    cairo_font_face_t *face;
    char *copy;
    usher_err err;

    if (fonts[bold].face == NULL || strcmp(fonts[bold].path, path) != 0) {
        err = load_face(path, &face, errbuf, errlen);
        if (err != USHER_OK)
            return err;
        copy = usher_strdup(path);
        /* renders still using the old face hold references of their own */
        cairo_font_face_destroy(fonts[bold].face);
        free(fonts[bold].path);
        fonts[bold].face = face;
        fonts[bold].path = copy;
    }
    *out = cairo_font_face_reference(fonts[bold].face);
    return USHER_OK;
}

usher_err pdf_ticket_font(int bold, cairo_font_face_t **out, char *errbuf, size_t errlen)
{
    usher_err err;

    bold = bold != 0;
    pthread_mutex_lock(&fonts_lock);
    err = cached_face(bold, out, errbuf, errlen);
    pthread_mutex_unlock(&fonts_lock);
    return err;
}
