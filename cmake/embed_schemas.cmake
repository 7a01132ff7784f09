# Turns schemas/jobs/KIND.schema.json into a C source that holds each file's
# text, so usher-worker validates payloads with the schemas it was built with
# and never looks for files at run time. Run as a script:
#   cmake -DSCHEMA_DIR=<dir> -DOUTPUT=<file.c> -P embed_schemas.cmake
# Each text is an array of bytes rather than a string literal: -Wpedantic
# warns about literals longer than the 4095 bytes ISO C promises, and a
# schema may well grow past that.
cmake_minimum_required(VERSION 3.25)

if(NOT SCHEMA_DIR OR NOT OUTPUT)
    message(FATAL_ERROR "usage: cmake -DSCHEMA_DIR=<dir> -DOUTPUT=<file.c> -P embed_schemas.cmake")
endif()

file(GLOB files ${SCHEMA_DIR}/*.schema.json)
list(SORT files)
set(arrays "")
set(table "")
set(index 0)
# CMake's regular expressions have no {n}: sixteen bytes a line, spelled out.
string(REPEAT "0x[0-9a-f][0-9a-f]," 16 sixteen)
foreach(file ${files})
    get_filename_component(name ${file} NAME)
    string(REGEX REPLACE "\\.schema\\.json$" "" kind ${name})
    if(NOT kind MATCHES "^[a-z0-9_.-]+$")
        message(FATAL_ERROR "${file}: a job kind is made of a-z 0-9 _ . - only")
    endif()
    file(READ ${file} hex HEX)
    if(hex STREQUAL "")
        message(FATAL_ERROR "${file} is empty")
    endif()
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
    string(REGEX REPLACE "(${sixteen})" "\\1\n    " bytes "${bytes}")
    string(APPEND arrays "/* ${name} */\nstatic const unsigned char schema_${index}[] = {\n"
                         "    ${bytes}0x00\n};\n\n")
    string(APPEND table "    { \"${kind}\", (const char *)schema_${index} },\n")
    math(EXPR index "${index} + 1")
endforeach()

file(WRITE ${OUTPUT}
     "/* Generated from schemas/jobs/ by cmake/embed_schemas.cmake: do not edit. */\n"
     "#include <stddef.h>\n\n#include \"job_schemas.h\"\n\n"
     "${arrays}"
     "const usher_job_schema_source usher_job_schema_sources[] = {\n${table}    { NULL, NULL },\n};\n")
