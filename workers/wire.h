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

/*
 * What travels with a job besides the job: the shared slot the child must
 * win before it runs the job (children.h: hand-back), and when the
 * supervisor sent it.
 */
typedef struct usher_wire_ticket {
    uint32_t slot;         /* index into the child's shared slots */
    uint64_t token;        /* the value the slot holds while the job waits (never 0) */
    usher_job_trace trace; /* sent_us: CLOCK_REALTIME when the supervisor wrote the frame */
} usher_wire_ticket;

/* Appends the frame of job to out. */
void usher_wire_put_job(usher_buf *out, const usher_job *job, const usher_wire_ticket *t);

/* Appends the frame of a job's result to out; run_us is how long its handler ran. */
void usher_wire_put_result(usher_buf *out, int64_t id, const usher_handler_result *r,
                           int64_t run_us);

/*
 * Decodes a job body (without its length) into job; job->payload is
 * allocated (free it with the job). -1 on a malformed body or no memory.
 */
int usher_wire_get_job(const unsigned char *body, size_t len, usher_job *job, usher_wire_ticket *t);

/* Decodes a result body into *id, r and *run_us. -1 on a malformed body. */
int usher_wire_get_result(const unsigned char *body, size_t len, int64_t *id,
                          usher_handler_result *r, int64_t *run_us);

#endif
