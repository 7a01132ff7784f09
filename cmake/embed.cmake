# usher_embed_files(OUTPUT <file.c> SYMBOL <name> COMMENT <text> FILES <files...>):
# the build rule that runs embed_files.cmake over FILES into OUTPUT (the
# table usher_embedded_file SYMBOL[], engine/embedded.h), again whenever a
# file or the script changes.
function(usher_embed_files)
    cmake_parse_arguments(ARG "" "OUTPUT;SYMBOL;COMMENT" "FILES" ${ARGN})
    # "|" between the files: a ";" would split the command's argument.
    string(REPLACE ";" "|" list "${ARG_FILES}")
    add_custom_command(
        OUTPUT ${ARG_OUTPUT}
        COMMAND ${CMAKE_COMMAND} "-DFILES=${list}" -DSYMBOL=${ARG_SYMBOL} -DOUTPUT=${ARG_OUTPUT}
                -P ${PROJECT_SOURCE_DIR}/cmake/embed_files.cmake
        DEPENDS ${ARG_FILES} ${PROJECT_SOURCE_DIR}/cmake/embed_files.cmake
        COMMENT "${ARG_COMMENT}"
        VERBATIM)
endfunction()
