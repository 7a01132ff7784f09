/*
 * The ticket fonts: each font file is opened with FreeType once and wrapped
 * in a cairo font face, which cairo then measures, subsets and embeds per
 * document. Opening the file per render is what made libharu's tickets
 * slow (it parses the font and maps every code point each time).
 *
 * Each face gets an FT_Library of its own, freed with it: FreeType wants
 * FT_New_Face and FT_Done_Face on one library serialised, and the cairo
 * face (so its FreeType face) is freed by whichever thread drops the last
 * reference, maybe long after a font change, when cairo's font caches
 * let go of it. The cache below is behind a mutex; cairo locks the
 * FreeType face itself while it reads glyphs, so renders may run in
 * parallel threads.
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include FT_FREETYPE_H

#include "alloc.h"
#include "pdf_text.h"

/* The loaded faces and the paths they were loaded from. */
static struct {
    cairo_font_face_t *face;
    char *path;
} fonts[2];
static pthread_mutex_t fonts_lock = PTHREAD_MUTEX_INITIALIZER;
static const cairo_user_data_key_t library_key;

/* Frees a face's FreeType library, and with it the face: cairo calls this when the face dies. */
static void free_library(void *library)
{
    FT_Done_FreeType(library);
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

/* Opens path with FreeType in a library of its own; the caller frees *library. */
static USHER_MUSTCHECK usher_err open_face(const char *path, FT_Library *library, FT_Face *face,
                                           char *errbuf, size_t errlen)
{
    FT_Error e = FT_Init_FreeType(library);

    if (e != 0) {
        snprintf(errbuf, errlen, "%s: cannot start FreeType (error 0x%02X)", path, (unsigned)e);
        return e == FT_Err_Out_Of_Memory ? USHER_ERR_NOMEM : USHER_ERR_INVALID;
    }
    e = FT_New_Face(*library, path, 0, face);
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

/* A cairo face over the font file at path, owning its FreeType library. */
static USHER_MUSTCHECK usher_err load_face(const char *path, cairo_font_face_t **out, char *errbuf,
                                           size_t errlen)
{
    FT_Library library;
    FT_Face ft;
    cairo_font_face_t *face;
    usher_err err = open_face(path, &library, &ft, errbuf, errlen);

    if (err != USHER_OK)
        return err;
    face = cairo_ft_font_face_create_for_ft_face(ft, 0);
    if (cairo_font_face_status(face) != CAIRO_STATUS_SUCCESS ||
        cairo_font_face_set_user_data(face, &library_key, library, free_library) !=
            CAIRO_STATUS_SUCCESS) {
        cairo_font_face_destroy(face);
        FT_Done_FreeType(library);
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
