/*
 * Test handlers. Payload fields:
 *   test.noop   {}                                   succeeds at once
 *   test.sleep  {"ms": N}                            succeeds after N ms
 *   test.fail   {"message": "...", "permanent": bool,
 *                "delay_ms": N, "snooze": bool}      fails as told
 *   test.crash  {"signal": N}                        the child dies by signal N (SIGSEGV)
 *   test.hang   {}                                   never returns (the timeout kills it)
 * Each may carry "log": "/path": the handler first appends
 * "ID ATTEMPT START_US\n" (START_US: CLOCK_REALTIME in microseconds)
 * to that file (one write with O_APPEND, so lines from many children never
 * interleave), which lets tests see every run of every job. With "trace":
 * true the line goes on with the job's pickup trace (engine/job.h):
 * " SENT_US NOTIFIED_US CLAIM_SENT_US CLAIMED_US".
 */
#include "test_handlers.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* Appends "id attempt" to the payload's "log" file, if it names one. */
static void log_run(const usher_job *job, json_t *payload)
{
    const char *path = json_string_value(json_object_get(payload, "log"));
    char line[192];
    struct timespec now;
    int fd, len;

    if (path == NULL)
        return;
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    len = snprintf(line, sizeof(line), "%lld %d %lld", (long long)job->id, job->attempt,
                   (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000);
    if (json_is_true(json_object_get(payload, "trace")))
        len += snprintf(line + len, sizeof(line) - (size_t)len, " %lld %lld %lld %lld",
                        (long long)job->trace.sent_us, (long long)job->trace.notified_us,
                        (long long)job->trace.claim_sent_us, (long long)job->trace.claimed_us);
    len += snprintf(line + len, sizeof(line) - (size_t)len, "\n");
    if (write(fd, line, (size_t)len) != len)
        perror("test handler log");
    close(fd);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void run_noop(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                     usher_handler_result *r)
{
    (void)ctx;
    log_run(job, payload);
    (void)r;
}

static void run_sleep(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                      usher_handler_result *r)
{
    (void)ctx;
    json_int_t ms = json_integer_value(json_object_get(payload, "ms"));

    log_run(job, payload);
    if (ms < 0 || ms > 3600 * 1000) {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "test.sleep: ms must be 0..3600000");
        return;
    }
    sleep_ms(ms);
}

static void run_fail(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                     usher_handler_result *r)
{
    (void)ctx;
    const char *message = json_string_value(json_object_get(payload, "message"));
    json_t *delay = json_object_get(payload, "delay_ms");
    usher_outcome outcome = USHER_OUTCOME_RETRY;

    log_run(job, payload);
    if (json_is_true(json_object_get(payload, "permanent")))
        outcome = USHER_OUTCOME_PERMANENT;
    else if (json_is_true(json_object_get(payload, "snooze")))
        outcome = USHER_OUTCOME_SNOOZE;
    usher_handler_fail(r, outcome, "%s (attempt %d)", message != NULL ? message : "test.fail",
                       job->attempt);
    if (json_is_integer(delay))
        r->delay_ms = json_integer_value(delay);
}

static void run_crash(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                      usher_handler_result *r)
{
    (void)ctx;
    json_int_t sig = json_integer_value(json_object_get(payload, "signal"));

    log_run(job, payload);
    (void)r;
    signal(sig > 0 ? (int)sig : SIGSEGV, SIG_DFL);
    raise(sig > 0 ? (int)sig : SIGSEGV);
    _exit(70); /* a signal that does not kill still ends the child */
}

static void run_hang(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                     usher_handler_result *r)
{
    (void)ctx;
    log_run(job, payload);
    (void)r;
    for (;;)
        pause();
}

const usher_handler usher_test_handlers[] = {
    { .kind = "test.noop", .run = run_noop }, { .kind = "test.sleep", .run = run_sleep },
    { .kind = "test.fail", .run = run_fail }, { .kind = "test.crash", .run = run_crash },
    { .kind = "test.hang", .run = run_hang }, { .kind = NULL },
};
