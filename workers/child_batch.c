/*
 * Gathering never waits: a batch is whatever the supervisor has already
 * queued for this child (its child_queue), so batching adds no latency
 * and a lone job runs at once as a batch of one. The supervisor times
 * only the job at the head of the child's queue, so the whole batch runs
 * under the first job's timeout. A job whose payload is not JSON fails on
 * its own and stays out of the batch, and so does one that its kind's
 * schema refuses (payload_gate.h).
 */
#include "child_batch.h"

#include <stdlib.h>
#include <string.h>

#include "payload_gate.h"
#include "wire.h"

/* Static: a batch's results are 64 x 2 KB, too much for the stack. */
static usher_job jobs[USHER_BATCH_MAX];               /* as they arrived */
static usher_job batch_jobs[USHER_BATCH_MAX];         /* those with a JSON payload */
static json_t *payloads[USHER_BATCH_MAX];             /* of batch_jobs */
static usher_handler_result results[USHER_BATCH_MAX]; /* batch_jobs' first, then the rest's */
static size_t result_of[USHER_BATCH_MAX];             /* jobs[i]'s index in results */

/*
 * Reads the jobs of h's kind that wait behind jobs[0]; returns how many
 * jobs there are, or 0 on an error (then only jobs[0] is left to free).
 */
static size_t gather(usher_child_reader *rd, const usher_handler *h, size_t max)
{
    size_t n = 1;

    while (n < max) {
        int r = usher_child_next_job(rd, &jobs[n], false);

        if (r < 0) {
            while (--n > 0)
                free(jobs[n].payload);
            return 0;
        }
        if (r == 0)
            break;
        if (strcmp(jobs[n].kind, h->kind) != 0) {
            usher_child_unget(rd, &jobs[n]);
            break;
        }
        n++;
    }
    return n;
}

/* Parses the payloads: k jobs go into the batch, the others fail into results[k..n). */
static size_t parse(size_t n)
{
    size_t k = 0, bad = n;

    for (size_t i = 0; i < n; i++) {
        json_error_t jerr;
        json_t *payload = json_loads(jobs[i].payload, 0, &jerr);
        usher_handler_result failed = { .delay_ms = -1 };

        if (payload == NULL) {
            usher_handler_fail(&failed, USHER_OUTCOME_PERMANENT, "payload is not JSON: %s",
                               jerr.text);
        } else if (!usher_job_payload_admitted(jobs[i].kind, payload, &failed)) {
            json_decref(payload);
            payload = NULL;
        }
        if (payload == NULL) {
            result_of[i] = --bad; /* filled from the end: k + failures = n */
            results[bad] = failed;
            continue;
        }
        result_of[i] = k;
        results[k] = (usher_handler_result){ .outcome = USHER_OUTCOME_OK, .delay_ms = -1 };
        batch_jobs[k] = jobs[i];
        payloads[k++] = payload;
    }
    return k;
}

/* One write of the n result frames, in the order the jobs came; the run's time shared. */
static int reply(int fd, usher_child_slots *slots, size_t n, int64_t run_us)
{
    usher_buf out = { 0 };
    int rc;

    for (size_t i = 0; i < n; i++) {
        usher_child_slot_done(slots, &jobs[i], &results[result_of[i]]);
        usher_wire_put_result(&out, jobs[i].id, &results[result_of[i]], run_us / (int64_t)n);
    }
    rc = usher_buf_failed(&out) ? -1 : usher_child_write(fd, out.data, out.len);
    usher_buf_release(&out);
    return rc;
}

int usher_child_run_batch(usher_handler_ctx *ctx, usher_child_reader *rd, const usher_handler *h,
                          usher_job *first)
{
    size_t max = h->batch_max < 1                 ? 1
                 : h->batch_max > USHER_BATCH_MAX ? USHER_BATCH_MAX
                                                  : h->batch_max;
    size_t n, k;
    int rc;

    jobs[0] = *first;
    n = gather(rd, h, max);
    if (n == 0) {
        free(jobs[0].payload);
        return -1;
    }
    int64_t t0 = usher_child_now_us();

    usher_child_running(rd->slots, true);
    k = parse(n);
    if (k > 0)
        h->run_batch(ctx, batch_jobs, payloads, k, results);
    usher_child_running(rd->slots, false);
    rc = reply(rd->fd, rd->slots, n, usher_child_now_us() - t0);
    for (size_t i = 0; i < k; i++)
        json_decref(payloads[i]);
    for (size_t i = 0; i < n; i++)
        free(jobs[i].payload);
    return rc;
}
