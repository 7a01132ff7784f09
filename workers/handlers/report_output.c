/*
 * The two report formats behind one interface. CSV accumulates in a
 * growable buffer; the PDF table is built by libharu. Both hold the whole
 * file until it is stored, since the document store writes a file from
 * one buffer; the rows themselves arrive a page at a time.
 */
#include "report_output.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "report_csv.h"

struct usher_report_output {
    usher_pdf_table *pdf; /* NULL: CSV */
    usher_buf csv;
    size_t ncols;
};

usher_err usher_report_output_open(const char *format, const char *title,
                                   const usher_pdf_column *cols, size_t ncols,
                                   usher_report_output **out, char *errbuf, size_t errlen)
{
    usher_report_output *o;
    const char *titles[USHER_PDF_TABLE_MAX_COLUMNS];
    usher_err err = USHER_OK;

    *out = NULL;
    if (ncols == 0 || ncols > USHER_PDF_TABLE_MAX_COLUMNS)
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "report: 1 to %d columns",
                            USHER_PDF_TABLE_MAX_COLUMNS);
    o = usher_calloc(1, sizeof(*o));
    o->ncols = ncols;
    if (strcmp(format, "pdf") == 0) {
        err = usher_pdf_table_open(title, cols, ncols, &o->pdf, errbuf, errlen);
    } else {
        for (size_t i = 0; i < ncols; i++)
            titles[i] = cols[i].title;
        usher_csv_record(&o->csv, titles, ncols);
    }
    if (err != USHER_OK) {
        usher_report_output_free(o);
        return err;
    }
    *out = o;
    return USHER_OK;
}

usher_err usher_report_output_row(usher_report_output *o, const char *const *cells, char *errbuf,
                                  size_t errlen)
{
    if (o->pdf != NULL)
        return usher_pdf_table_row(o->pdf, cells, errbuf, errlen);
    usher_csv_record(&o->csv, cells, o->ncols);
    if (usher_buf_failed(&o->csv))
        return usher_errbuf(errbuf, errlen, USHER_ERR_NOMEM, "report: out of memory");
    return USHER_OK;
}

usher_err usher_report_output_finish(usher_report_output *o, unsigned char **data, size_t *len,
                                     char *errbuf, size_t errlen)
{
    if (o->pdf != NULL)
        return usher_pdf_table_finish(o->pdf, data, len, errbuf, errlen);
    if (usher_buf_failed(&o->csv))
        return usher_errbuf(errbuf, errlen, USHER_ERR_NOMEM, "report: out of memory");
    *data = (unsigned char *)o->csv.data; /* handed over: the buffer forgets it */
    *len = o->csv.len;
    o->csv = (usher_buf){ 0 };
    return USHER_OK;
}

void usher_report_output_free(usher_report_output *o)
{
    if (o == NULL)
        return;
    usher_pdf_table_free(o->pdf);
    usher_buf_release(&o->csv);
    free(o);
}
