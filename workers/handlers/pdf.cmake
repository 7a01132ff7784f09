# PDF tickets (cairo on FreeType: subset fonts; QR codes from libqrencode),
# badges and report tables (libharu); their files go to the document store of
# platform/docstore.c (shared with usher-api). Included by workers/CMakeLists.txt.
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
pkg_check_modules(PDF_QRENCODE REQUIRED IMPORTED_TARGET libqrencode)
pkg_check_modules(PDF_SODIUM REQUIRED IMPORTED_TARGET libsodium)

target_sources(usher_handlers PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/handlers/pdf_doc.c
                                      ${CMAKE_CURRENT_SOURCE_DIR}/handlers/pdf_render.c
                                      ${CMAKE_CURRENT_SOURCE_DIR}/handlers/pdf_table.c
                                      ${CMAKE_CURRENT_SOURCE_DIR}/handlers/pdf_ticket_fonts.c
                                      ${CMAKE_CURRENT_SOURCE_DIR}/handlers/pdf_ticket_page.c)
target_include_directories(usher_handlers PRIVATE ${HPDF_INCLUDE})
target_link_libraries(usher_handlers PUBLIC ${HPDF_LIB} PkgConfig::PDF_CAIRO PkgConfig::PDF_FREETYPE
                                            PkgConfig::PDF_QRENCODE PkgConfig::PDF_SODIUM)
