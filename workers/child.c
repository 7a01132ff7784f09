/*
 * The child's loop uses plain blocking I/O: it has nothing else to do
 * while a job runs. It ignores SIGTERM, SIGINT and SIGHUP, because a
 * graceful stop is the supervisor's to run (it closes the socket when the
 * child may go), and it asks the kernel for SIGKILL when the supervisor
 * dies, so no orphan keeps running a job whose lease will be rescued.
 * Jobs run one at a time through run_job, except those of a kind with a
 * batch function, which child_batch.c runs together with the jobs of the
 * same kind already queued behind them. A queued job that the supervisor
 * took back (child_io.h: the shared slots) is skipped by the reader, and
 * each outcome is kept in the job's slot before its frame is written.
 */
#include "child.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "child_batch.h"
#include "child_io.h"
#include "handler.h"
#include "payload_gate.h"
#include "wire.h"

static void run_job(usher_handler_ctx *ctx, const usher_job *job, usher_handler_result *r)
{
    const usher_handler *h = usher_handler_find(ctx, job->kind);
    json_error_t jerr;
    json_t *payload;

    *r = (usher_handler_result){ .outcome = USHER_OUTCOME_OK, .delay_ms = -1 };
    if (h == NULL) {
        usher_handler_missing(r, job->kind);
        return;
    }
    payload = json_loads(job->payload, 0, &jerr);
    if (payload == NULL) {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "payload is not JSON: %s", jerr.text);
        return;
    }
    if (usher_job_payload_admitted(job->kind, payload, r))
        h->run(ctx, job, payload, r);
    json_decref(payload);
}

static void prepare_signals(void)
{
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

void usher_child_main(int fd, pid_t parent, const usher_config *cfg, usher_child_slots *slots)
{
    static usher_handler_result result;
    usher_handler_ctx *ctx;
    usher_child_reader rd;

    prepare_signals();
    if (getppid() != parent)
        _exit(0);                     /* the supervisor died before PDEATHSIG was set */
    ctx = usher_handler_ctx_new(cfg); /* never NULL: out of memory aborts */
    usher_child_reader_init(&rd, fd, slots);
    for (;;) {
        usher_job job = { 0 };
        usher_buf out = { 0 };
        const usher_handler *h;
        int r = usher_child_next_job(&rd, &job, true);

        if (r <= 0)
            _exit(r == 0 ? 0 : 1);
        h = usher_handler_find(ctx, job.kind);
        if (h != NULL && h->run_batch != NULL) {
            if (usher_child_run_batch(ctx, &rd, h, &job) != 0)
                _exit(1);
            continue;
        }
        int64_t t0 = usher_child_now_us();

        usher_child_running(slots, true);
        run_job(ctx, &job, &result);
        usher_child_running(slots, false);
        usher_child_slot_done(slots, &job, &result);
        usher_wire_put_result(&out, job.id, &result, usher_child_now_us() - t0);
        free(job.payload);
        if (usher_buf_failed(&out) || usher_child_write(fd, out.data, out.len) != 0)
            _exit(1);
        usher_buf_release(&out);
    }
}
