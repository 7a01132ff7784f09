/*
 * The child's end of its socket: job frames read ahead into a buffer, so
 * the jobs the supervisor queued for the child can be looked at without
 * waiting (see child_batch.h), and whole writes of result frames.
 */
#ifndef USHER_CHILD_IO_H
#define USHER_CHILD_IO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "handler.h"
#include "job.h"
#include "wire.h"

#define USHER_CHILD_SLOTS  64           /* jobs one child may hold, at most */
#define USHER_SLOT_STARTED (1ull << 63) /* or'ed into a slot's token by the child */
#define USHER_SLOT_DONE    (1ull << 62) /* ...and this once the outcome is in results[] */

/*
 * A page shared by the supervisor and one child (mapped before the fork).
 * A job queued for the child waits with its ticket's token in its slot;
 * whoever changes the slot first decides the job's fate: the child marks
 * it started (usher_child_slot_take) and runs it, or the supervisor
 * empties it (usher_child_slot_revoke) and hands the job to another child.
 * The child then skips the frame. Tokens never repeat, so a slot reused for
 * a later job cannot be taken by the frame of an earlier one.
 */
typedef struct usher_child_slots {
    _Atomic uint64_t slot[USHER_CHILD_SLOTS];
    /*
     * Each finished job's outcome, written before its result frame: a
     * child that dies with jobs still queued for it resets its socket,
     * and the frames it wrote last may never be read.
     */
    usher_handler_result results[USHER_CHILD_SLOTS];
    _Atomic int64_t running_since_us; /* CLOCK_REALTIME at the start of the run going on, or 0 */
} usher_child_slots;

/* µs since the epoch (CLOCK_REALTIME). */
int64_t usher_child_now_us(void);

/* The child's side: a handler run starts (true) or ends (false). */
void usher_child_running(usher_child_slots *s, bool running);

/* The child's side: true when the job of ticket t is its to run (now marked started). */
bool usher_child_slot_take(usher_child_slots *s, const usher_wire_ticket *t);

/* The child's side: job (taken by this child) ended with r. */
void usher_child_slot_done(usher_child_slots *s, const usher_job *job,
                           const usher_handler_result *r);

/* The supervisor's side: true when the job of (slot, token) had not started and now never will. */
bool usher_child_slot_revoke(usher_child_slots *s, uint32_t slot, uint64_t token);

/* Frames read ahead from the socket: buf[pos..len) is not consumed yet. */
typedef struct usher_child_reader {
    int fd;
    usher_child_slots *slots; /* shared with the supervisor; NULL: every job is taken */
    unsigned char *buf;
    size_t pos, len, cap;
    usher_job held; /* a job given back with usher_child_unget */
    bool has_held;
} usher_child_reader;

/* A reader on fd with its buffer (out of memory aborts: engine/alloc.h). */
void usher_child_reader_init(usher_child_reader *rd, int fd, usher_child_slots *slots);

/*
 * The next job into *job (its payload is allocated: free it), which the
 * child has won (see usher_child_slots: the frames of jobs the supervisor
 * took back are skipped); job->started_us is when the supervisor sent it.
 * With wait it
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
