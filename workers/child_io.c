/*
 * Reads are as large as the buffer, so one read usually brings in every
 * frame the supervisor has queued; a look without waiting adds what the
 * socket holds with MSG_DONTWAIT and never blocks.
 */
#include "child_io.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "wire.h"

#define READ_AHEAD 65536

int64_t usher_child_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void usher_child_running(usher_child_slots *s, bool running)
{
    if (s != NULL)
        atomic_store(&s->running_since_us, running ? usher_child_now_us() : 0);
}

bool usher_child_slot_take(usher_child_slots *s, const usher_wire_ticket *t)
{
    uint64_t expected = t->token;

    if (s == NULL)
        return true;
    if (t->slot >= USHER_CHILD_SLOTS)
        return false;
    return atomic_compare_exchange_strong(&s->slot[t->slot], &expected,
                                          t->token | USHER_SLOT_STARTED);
}

void usher_child_slot_done(usher_child_slots *s, const usher_job *job,
                           const usher_handler_result *r)
{
    if (s == NULL || job->slot >= USHER_CHILD_SLOTS)
        return;
    s->results[job->slot] = *r;
    atomic_store(&s->slot[job->slot], job->token | USHER_SLOT_STARTED | USHER_SLOT_DONE);
}

bool usher_child_slot_revoke(usher_child_slots *s, uint32_t slot, uint64_t token)
{
    uint64_t expected = token;

    return slot < USHER_CHILD_SLOTS && atomic_compare_exchange_strong(&s->slot[slot], &expected, 0);
}

void usher_child_reader_init(usher_child_reader *rd, int fd, usher_child_slots *slots)
{
    *rd = (usher_child_reader){ .fd = fd, .slots = slots, .cap = READ_AHEAD };
    rd->buf = usher_malloc(rd->cap);
}

/*
 * 1 when at least n unconsumed bytes are buffered. Otherwise, with wait:
 * 0 on EOF before any byte, -1 on EOF mid-frame or an error; without wait:
 * 0 when the socket has no more now (or is at EOF, which the next waiting
 * call reports), -1 on an error.
 */
static int fill(usher_child_reader *rd, size_t n, bool wait)
{
    while (rd->len - rd->pos < n) {
        ssize_t r;

        if (rd->pos > 0) {
            memmove(rd->buf, rd->buf + rd->pos, rd->len - rd->pos);
            rd->len -= rd->pos;
            rd->pos = 0;
        }
        if (rd->cap < n) {
            unsigned char *more = usher_realloc(rd->buf, n);

            rd->buf = more;
            rd->cap = n;
        }
        if (wait)
            r = read(rd->fd, rd->buf + rd->len, rd->cap - rd->len);
        else
            r = recv(rd->fd, rd->buf + rd->len, rd->cap - rd->len, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (!wait && (r == 0 || (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))))
            return 0;
        if (r == 0)
            return rd->len == 0 ? 0 : -1;
        if (r < 0)
            return -1;
        rd->len += (size_t)r;
    }
    return 1;
}

/* The next frame's job, taken or not: as usher_child_next_job, and *taken. */
static int next_frame(usher_child_reader *rd, usher_job *job, bool wait, bool *taken)
{
    usher_wire_ticket t;
    uint32_t len;
    int r;

    r = fill(rd, sizeof(len), wait);
    if (r <= 0)
        return r;
    memcpy(&len, rd->buf + rd->pos, sizeof(len));
    if (len > USHER_WIRE_MAX)
        return -1;
    r = fill(rd, sizeof(len) + len, wait);
    if (r != 1)
        return wait || r < 0 ? -1 : 0; /* waiting, EOF mid-frame is an error */
    *job = (usher_job){ 0 };
    if (usher_wire_get_job(rd->buf + rd->pos + sizeof(len), len, job, &t) != 0)
        return -1;
    rd->pos += sizeof(len) + len;
    job->started_us = t.trace.sent_us;
    job->trace = t.trace;
    job->slot = t.slot;
    job->token = t.token;
    *taken = usher_child_slot_take(rd->slots, &t);
    if (!*taken) {
        free(job->payload);
        job->payload = NULL;
    }
    return 1;
}

int usher_child_next_job(usher_child_reader *rd, usher_job *job, bool wait)
{
    bool taken = false;
    int r;

    if (rd->has_held) {
        *job = rd->held;
        rd->has_held = false;
        return 1;
    }
    while ((r = next_frame(rd, job, wait, &taken)) == 1 && !taken)
        ;
    return r;
}

void usher_child_unget(usher_child_reader *rd, const usher_job *job)
{
    rd->held = *job;
    rd->has_held = true;
}

int usher_child_write(int fd, const void *p, size_t n)
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
