/*
 * Jobs as the engine hands them around: what a producer enqueues, what a
 * claimer receives, and how a claimer reports an attempt that did not
 * succeed. The lifecycle is in ARCHITECTURE.md: available -> running ->
 * (deleted on success | available again | dead), or cancelled.
 */
#ifndef USHER_JOB_H
#define USHER_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "retry.h"

/* An X-Request-Id carried by a job: 1 to 64 of [A-Za-z0-9._:-] (api/access_log.h). */
#define USHER_REQUEST_ID_MAX 64

/*
 * One job to enqueue. Zero means "the kind's default" for priority_set=false,
 * max_attempts, timeout_ms; run_at_us (microseconds since the epoch) wins
 * over delay_ms when both are set.
 */
typedef struct usher_enqueue_opts {
    const char *queue;         /* required; must be declared */
    const char *kind;          /* required */
    const char *payload;       /* JSON object text; NULL means {} */
    bool priority_set;         /* use priority instead of the kind's */
    int priority;              /* 0 high, 1 medium, 2 low */
    int64_t delay_ms;          /* run no earlier than now + delay_ms */
    int64_t run_at_us;         /* run no earlier than this instant */
    const char *unique_key;    /* at most one live job per (queue, key) */
    int max_attempts;          /* 0: the kind's */
    int timeout_ms;            /* 0: the kind's */
    const char *partition_key; /* who the job works for ("org:42"); NULL: nobody in particular */
    int64_t deadline_ms;       /* late this long after now; 0: the kind's deadline_ms, -1: none */
    const char *request_id;    /* the request that caused it (logs only), or NULL */
    int64_t parent_id;         /* the job whose handler enqueues this one; 0: none */
} usher_enqueue_opts;

/* The result of one enqueue. */
typedef struct usher_enqueued {
    int64_t id;
    bool existed; /* a live job with the same unique key was returned instead */
} usher_enqueued;

/*
 * When a worker's supervisor noticed a job (µs since the epoch, 0 when
 * unknown): the last NOTIFY before the claim that took it, that claim
 * sent and answered, the job written to a child. bench/workers breaks the
 * pickup latency down with it (the test handlers log it on request).
 */
typedef struct usher_job_trace {
    int64_t notified_us, claim_sent_us, claimed_us, sent_us;
} usher_job_trace;

/* A claimed job. The claimer owns it until it reports the outcome. */
typedef struct usher_job {
    int64_t id;
    char queue[64];
    char kind[64];
    char partition_key[64]; /* "" when it has none */
    int priority;
    int attempt; /* this attempt's number, from 1 */
    int max_attempts;
    int timeout_ms;
    int64_t run_at_us;  /* when it became runnable, µs since the epoch */
    char *payload;      /* JSON text, owned by the job */
    int64_t started_us; /* the worker's bookkeeping: when a child got it (0 = not yet) */
    char request_id[USHER_REQUEST_ID_MAX + 1]; /* the request that caused it, or "" */
    usher_job_trace trace;                     /* the worker's bookkeeping: how it was picked up */
    uint32_t slot;  /* the worker's bookkeeping: its slot in the child (child_io.h) */
    uint64_t token; /* ...and the token that slot held for it */
} usher_job;

/* How an attempt of a claimed job ended, for usher_jobs_fail. */
typedef struct usher_job_result {
    const usher_job *job;
    usher_outcome outcome; /* RETRY, PERMANENT or SNOOZE */
    int64_t delay_ms;      /* the handler's delay, or -1 for the policy's */
    const char *error;     /* what went wrong (kept on the job); NULL for SNOOZE */
} usher_job_result;

/* Frees the payloads of n claimed jobs and then the array itself. */
void usher_jobs_free(usher_job *jobs, size_t n);

#endif
