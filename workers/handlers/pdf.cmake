# The PDF renderers, one library per kind of document; their files go to the
# document store of platform/docstore.c (shared with usher-api). Included by
# workers/CMakeLists.txt (which lists the handlers pdf_ticket.c and pdf_badges.c).
#
# - Tickets (the hot path: one per registration) are drawn with cairo on FreeType
#   (pdf_ticket_page.c, pdf_ticket_fonts.c: fonts loaded once per process and
#   embedded as subsets; QR codes from libqrencode): 48 -> 834 tickets per
#   CPU-second against libharu, which parsed the font file on every render.
# - Badge sheets and report tables stay on libharu (pdf_render.c, pdf_table.c,
#   through the adapter pdf_doc.c, the only files that include hpdf.h): one
#   document of many pages per job, so its font load per document does not count,
#   and a table numbers its pages ("Page N of M") at the end by going back to
#   pages libharu keeps open, which cairo's PDF surface (one page at a time) cannot.
# - pdf_text.c is what both share (font paths, field checks, fitting a line of
#   text into a width) and calls no PDF library, so the ticket objects reference
#   no HPDF_ symbol: `nm -u` on pdf_ticket*.o and pdf_text.o lists none.
#
# libharu ships no pkg-config file on Debian 12, so it is found by hand.
find_path(HPDF_INCLUDE hpdf.h)
find_library(HPDF_LIB hpdf)
if(NOT HPDF_INCLUDE OR NOT HPDF_LIB)
    message(FATAL_ERROR "libharu not found (hpdf.h / libhpdf): install libhpdf-dev "
                        "(scripts/install-deps.sh)")
endif()
# cairo-ft (cairo's FreeType font backend) is part of Debian's libcairo2-dev.
pkg_check_modules(PDF_CAIRO REQUIRED IMPORTED_TARGET cairo cairo-pdf cairo-ft)
pkg_check_modules(PDF_FREETYPE REQUIRED IMPORTED_TARGET freetype2)
# HarfBuzz's subsetter: the ticket fonts are loaded without their hinting
# (pdf_ticket_fonts.c), 45% of a ticket's bytes.
pkg_check_modules(PDF_HB_SUBSET REQUIRED IMPORTED_TARGET harfbuzz-subset)
pkg_check_modules(PDF_QRENCODE REQUIRED IMPORTED_TARGET libqrencode)
pkg_check_modules(PDF_SODIUM REQUIRED IMPORTED_TARGET libsodium)
# zlib: the ticket page sets its streams' deflate level (pdf_ticket_page.c).
pkg_check_modules(PDF_ZLIB REQUIRED IMPORTED_TARGET zlib)

target_sources(usher_handlers PRIVATE # shared, no PDF library
                                      ${CMAKE_CURRENT_SOURCE_DIR}/handlers/pdf_text.c
                                      # tickets: cairo
                                      ${CMAKE_CURRENT_SOURCE_DIR}/handlers/pdf_ticket_fonts.c
                                      ${CMAKE_CURRENT_SOURCE_DIR}/handlers/pdf_ticket_page.c
                                      # badges and report tables: libharu
                                      ${CMAKE_CURRENT_SOURCE_DIR}/handlers/pdf_doc.c
                                      ${CMAKE_CURRENT_SOURCE_DIR}/handlers/pdf_render.c
                                      ${CMAKE_CURRENT_SOURCE_DIR}/handlers/pdf_table.c)
target_include_directories(usher_handlers PRIVATE ${HPDF_INCLUDE})
target_link_libraries(usher_handlers PUBLIC ${HPDF_LIB} PkgConfig::PDF_CAIRO PkgConfig::PDF_FREETYPE
                                            PkgConfig::PDF_HB_SUBSET PkgConfig::PDF_QRENCODE
                                            PkgConfig::PDF_SODIUM PkgConfig::PDF_ZLIB)
