/*
 * The messages between the supervisor and its children, over a
 * socketpair: a job to run, and the outcome of running it. Each frame is
 * a 4-byte length and a body; both ends are the same binary on the same
 * host, so numbers travel in host byte order.
 */
#ifndef USHER_WIRE_H
#define USHER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "handler.h"
#include "job.h"

/* Frames larger than this are refused (a payload is at most 16 MiB). */
#define USHER_WIRE_MAX (17u * 1024 * 1024)

/* Appends the frame of job to out. */
void usher_wire_put_job(usher_buf *out, const usher_job *job);

/* Appends the frame of a job's result to out. */
void usher_wire_put_result(usher_buf *out, int64_t id, const usher_handler_result *r);

/*
 * Decodes a job body (without its length) into job; job->payload is
 * allocated (free it with the job). -1 on a malformed body or no memory.
 */
int usher_wire_get_job(const unsigned char *body, size_t len, usher_job *job);

/* Decodes a result body into *id and r. -1 on a malformed body. */
int usher_wire_get_result(const unsigned char *body, size_t len, int64_t *id,
                          usher_handler_result *r);

#endif
