/*
 * The child's loop uses plain blocking I/O: it has nothing else to do
 * while a job runs. It ignores SIGTERM, SIGINT and SIGHUP, because a
 * graceful stop is the supervisor's to run (it closes the socket when the
 * child may go), and it asks the kernel for SIGKILL when the supervisor
 * dies, so no orphan keeps running a job whose lease will be rescued.
 */
#include "child.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "handler.h"
#include "job_schemas.h"
#include "wire.h"

/* Frames read ahead from the socket: buf[pos..len) is not consumed yet. */
typedef struct reader {
    int fd;
    unsigned char *buf;
    size_t pos, len, cap;
} reader;

/* 1 when at least n unconsumed bytes are buffered, 0 on EOF before any, -1 otherwise. */
static int fill(reader *rd, size_t n)
{
    while (rd->len - rd->pos < n) {
        ssize_t r;

        if (rd->pos > 0) {
            memmove(rd->buf, rd->buf + rd->pos, rd->len - rd->pos);
            rd->len -= rd->pos;
            rd->pos = 0;
        }
        if (rd->cap < n) {
            unsigned char *more = realloc(rd->buf, n);

            if (more == NULL)
                return -1;
            rd->buf = more;
            rd->cap = n;
        }
        r = read(rd->fd, rd->buf + rd->len, rd->cap - rd->len);
        if (r == 0)
            return rd->len == 0 ? 0 : -1;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        rd->len += (size_t)r;
    }
    return 1;
}

/* The next frame's body in *body (valid until the next call); returns fill's codes. */
static int next_frame(reader *rd, const unsigned char **body, uint32_t *len)
{
    int r = fill(rd, sizeof(*len));

    if (r <= 0)
        return r;
    memcpy(len, rd->buf + rd->pos, sizeof(*len));
    if (*len > USHER_WIRE_MAX || fill(rd, sizeof(*len) + *len) != 1)
        return -1;
    *body = rd->buf + rd->pos + sizeof(*len);
    rd->pos += sizeof(*len) + *len;
    return 1;
}

static int write_full(int fd, const void *p, size_t n)
{
    size_t done = 0;

    while (done < n) {
        ssize_t w = write(fd, (const char *)p + done, n - done);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        done += (size_t)w;
    }
    return 0;
}

static void run_job(usher_handler_ctx *ctx, const usher_job *job, usher_handler_result *r)
{
    const usher_handler *h = usher_handler_find(job->kind);
    json_error_t jerr;
    json_t *payload;
    char why[1024];
    usher_err err;

    *r = (usher_handler_result){ .outcome = USHER_OUTCOME_OK, .delay_ms = -1 };
    if (h == NULL) {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "no handler for kind '%s'", job->kind);
        return;
    }
    payload = json_loads(job->payload, 0, &jerr);
    if (payload == NULL) {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "payload is not JSON: %s", jerr.text);
        return;
    }
    /* A payload its kind's schema refuses never gets better: straight to dead. */
    err = usher_job_schema_check(job->kind, payload, why, sizeof(why));
    if (err == USHER_ERR_PAYLOAD)
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "invalid payload: %s", why);
    else if (err != USHER_OK) /* the schemas did not load (out of memory): may heal */
        usher_handler_fail(r, USHER_OUTCOME_RETRY, "payload schemas: %s", why);
    else
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

void usher_child_main(int fd, pid_t parent, const usher_config *cfg)
{
    static usher_handler_result result;
    usher_handler_ctx *ctx;

    reader rd = { .fd = fd, .cap = 65536 };

    prepare_signals();
    if (getppid() != parent)
        _exit(0); /* the supervisor died before PDEATHSIG was set */
    ctx = usher_handler_ctx_new(cfg);
    rd.buf = malloc(rd.cap);
    if (ctx == NULL || rd.buf == NULL)
        _exit(1);
    for (;;) {
        uint32_t len;
        const unsigned char *body;
        usher_job job = { 0 };
        usher_buf out = { 0 };
        int r = next_frame(&rd, &body, &len);

        if (r <= 0)
            _exit(r == 0 ? 0 : 1);
        if (usher_wire_get_job(body, len, &job) != 0)
            _exit(1);
        run_job(ctx, &job, &result);
        usher_wire_put_result(&out, job.id, &result);
        free(job.payload);
        if (usher_buf_failed(&out) || write_full(fd, out.data, out.len) != 0)
            _exit(1);
        usher_buf_release(&out);
    }
}
