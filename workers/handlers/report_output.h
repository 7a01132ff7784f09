/*
 * Where a report's rows go: a CSV text or a PDF table, behind one
 * interface so the report job streams rows without caring which.
 */
#ifndef USHER_REPORT_OUTPUT_H
#define USHER_REPORT_OUTPUT_H

#include <stddef.h>

#include "error.h"
#include "pdf_table.h"

typedef struct usher_report_output usher_report_output;

/*
 * Starts a report in format "csv" (a header row of the column titles) or
 * "pdf" (a table under title). Arguments are borrowed for the call. Errors
 * as for usher_pdf_table_open.
 */
USHER_MUSTCHECK usher_err usher_report_output_open(const char *format, const char *title,
                                                   const usher_pdf_column *cols, size_t ncols,
                                                   usher_report_output **out, char *errbuf,
                                                   size_t errlen);

/* Adds one row of the columns' cells (borrowed). Errors as for usher_pdf_table_row. */
USHER_MUSTCHECK usher_err usher_report_output_row(usher_report_output *o, const char *const *cells,
                                                  char *errbuf, size_t errlen);

/* The finished file, in a malloc'd buffer of *len bytes that the caller frees. */
USHER_MUSTCHECK usher_err usher_report_output_finish(usher_report_output *o, unsigned char **data,
                                                     size_t *len, char *errbuf, size_t errlen);

/* Frees o; NULL is accepted. */
void usher_report_output_free(usher_report_output *o);

#endif
