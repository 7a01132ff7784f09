/*
 * usher-api's reader of the document store (platform/docstore.h): a
 * stored document's bytes as the body of an answer, without blocking the
 * loop thread and without holding the document in memory. From a
 * directory store the file is sent with sendfile (an evbuffer file
 * segment); from the database store the chunks a range covers are read one
 * statement at a time on the loop's connections and streamed, the next one
 * read while the last is written, so at most two chunks are in memory.
 * Routes see neither: they open a document, decide the answer, and send it.
 */
#ifndef USHER_API_DOCSEND_H
#define USHER_API_DOCSEND_H

#include <stdbool.h>
#include <stdint.h>

#include "request.h"

typedef struct api_doc api_doc;

/*
 * The document was found with its recorded size (doc, which the callback
 * hands to api_doc_send or api_doc_close), or not (doc NULL: logged, and
 * the callback answers 500). r is valid as in any database callback.
 */
typedef void (*api_doc_opened)(api_req *r, api_doc *doc, void *arg);

/*
 * Opens the stored document sha256 of size bytes. false when the database
 * could not be asked: r is answered (503) and opened is not called.
 */
USHER_MUSTCHECK bool api_doc_open(api_req *r, const char *sha256, uint64_t size,
                                  api_doc_opened opened, void *arg);

/*
 * Answers status with the document's bytes first..first+len-1 (the caller
 * has set the other headers) and ends the request; takes doc.
 */
void api_doc_send(api_req *r, api_doc *doc, int status, const char *content_type, uint64_t first,
                  uint64_t len);

/* Drops an opened document that is not sent (304, 416, HEAD). */
void api_doc_close(api_doc *doc);

#endif
