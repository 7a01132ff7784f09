/*
 * Reading reports back for tests/integration/test_reports.c: a strict
 * RFC 4180 parser, the expected records from database rows, files checked
 * against their sha256, and PDF pages through pdfinfo and pdftotext.
 * Every helper fails the running test on what it cannot accept.
 */
#ifndef USHER_REPORT_CHECK_H
#define USHER_REPORT_CHECK_H

#include <libpq-fe.h>
#include <stddef.h>

#include "config.h"
#include "store.h"

/* Records, each as its fields joined by the unit separator 0x1f. */
typedef struct csv_records {
    char **rec;
    size_t n, cap;
} csv_records;

/* Parses CSV text: quoted fields with doubled quotes, records ended by CRLF, nothing else. */
csv_records csv_parse(const char *text, size_t len);

/*
 * The header (fields already joined by 0x1f) and then res's rows, each
 * field as a spreadsheet-safe CSV holds it: with a leading apostrophe if
 * it starts with = + - @, a tab or CR.
 */
csv_records csv_expected(const PGresult *res, const char *header);

void csv_assert_same(const csv_records *got, const csv_records *want);
void csv_records_free(csv_records *r);

/* The file at path (NUL-terminated, *len bytes), after checking its size and sha256 (hex). */
char *read_checked_file(const char *path, long size, const char *sha256, size_t *len);

/* The same for the document sha256 of size bytes, read from cfg's document store through st. */
char *read_checked_document(const usher_config *cfg, usher_store *st, const char *sha256, long size,
                            size_t *len);

/* How many pages pdfinfo counts in path. */
long pdf_page_count(const char *path);

/* The UTF-8 text pdftotext reads from page `page` of path. */
void pdf_page_text(const char *path, long page, char *out, size_t len);

#endif
