/*
 * CSV records for reports (RFC 4180) that are also safe to open in a
 * spreadsheet.
 */
#ifndef USHER_REPORT_CSV_H
#define USHER_REPORT_CSV_H

#include <stddef.h>

#include "buf.h"

/*
 * Appends one record of n fields to b, ended by CRLF. A field holding a
 * comma, a double quote, CR or LF is quoted, its quotes doubled. A field
 * that starts with = + - @, a tab or CR gets a leading apostrophe, so that
 * a spreadsheet shows it as text instead of running it as a formula
 * (CSV injection). NULL fields are empty. Allocation failure is sticky in b.
 */
void usher_csv_record(usher_buf *b, const char *const *fields, size_t n);

#endif
