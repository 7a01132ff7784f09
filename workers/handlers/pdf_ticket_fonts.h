/*
 * The ticket's two fonts (pdf_font_path of pdf_text.h: regular and bold)
 * as cairo font faces over FreeType faces, loaded once per process and
 * shared by every ticket render, in any thread. Only pdf_ticket_fonts.c
 * includes FreeType.
 */
#ifndef USHER_PDF_TICKET_FONTS_H
#define USHER_PDF_TICKET_FONTS_H

#include <cairo.h>
#include <stddef.h>

#include "error.h"

/*
 * A new reference to the face for bold (0 regular, 1 bold), loading its
 * font file on first use or when usher_pdf_set_fonts named another file.
 * Release it with cairo_font_face_destroy. USHER_ERR_IO when the file
 * cannot be opened, USHER_ERR_INVALID when it is not a scalable font with
 * a Unicode character map, USHER_ERR_NOMEM; errbuf names the file.
 */
USHER_MUSTCHECK usher_err pdf_ticket_font(int bold, cairo_font_face_t **out, char *errbuf,
                                          size_t errlen);

#endif
