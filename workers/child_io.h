/*
 * The child's end of its socket: job frames read ahead into a buffer, so
 * the jobs the supervisor queued for the child can be looked at without
 * waiting (see child_batch.h), and whole writes of result frames.
 */
#ifndef USHER_CHILD_IO_H
#define USHER_CHILD_IO_H

#include <stdbool.h>
#include <stddef.h>

#include "job.h"

/* Frames read ahead from the socket: buf[pos..len) is not consumed yet. */
typedef struct usher_child_reader {
    int fd;
    unsigned char *buf;
    size_t pos, len, cap;
    usher_job held; /* a job given back with usher_child_unget */
    bool has_held;
} usher_child_reader;

/* A reader on fd with its buffer (out of memory aborts: engine/alloc.h). */
void usher_child_reader_init(usher_child_reader *rd, int fd);

/*
 * The next job into *job (its payload is allocated: free it). With wait it
 * blocks until a whole frame arrived: 1, or 0 on EOF before any. Without
 * it, only a frame already in the buffer or in the socket counts: 1, or 0
 * when there is none yet. -1 on a read error or a malformed frame.
 */
int usher_child_next_job(usher_child_reader *rd, usher_job *job, bool wait);

/* Gives job back: the next usher_child_next_job returns it. At most one at a time. */
void usher_child_unget(usher_child_reader *rd, const usher_job *job);

/* Writes all n bytes; -1 on error. */
int usher_child_write(int fd, const void *p, size_t n);

#endif
