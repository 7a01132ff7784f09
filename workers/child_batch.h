/*
 * The child's batch path: a kind with a batch function (handler.h) gets
 * the job just read together with the jobs of the same kind that are
 * already waiting in the child's socket, in one call.
 */
#ifndef USHER_CHILD_BATCH_H
#define USHER_CHILD_BATCH_H

#include "child_io.h"
#include "handler.h"

/*
 * Runs first (taken over: its payload is freed here) and the jobs of h's
 * kind that follow it without waiting, up to h->batch_max, and writes one
 * result frame per job, in order, to rd->fd. The first job of another kind
 * is given back to rd. -1 when the socket or memory failed (the child
 * should exit: the supervisor rescues the jobs).
 */
int usher_child_run_batch(usher_handler_ctx *ctx, usher_child_reader *rd, const usher_handler *h,
                          usher_job *first);

#endif
