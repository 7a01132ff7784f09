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
#include <unistd.h>

#include "alloc.h"
#include "wire.h"

#define READ_AHEAD 65536

void usher_child_reader_init(usher_child_reader *rd, int fd)
{
    *rd = (usher_child_reader){ .fd = fd, .cap = READ_AHEAD };
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

int usher_child_next_job(usher_child_reader *rd, usher_job *job, bool wait)
{
    uint32_t len;
    int r;

    if (rd->has_held) {
        *job = rd->held;
        rd->has_held = false;
        return 1;
    }
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
    if (usher_wire_get_job(rd->buf + rd->pos + sizeof(len), len, job) != 0)
        return -1;
    rd->pos += sizeof(len) + len;
    return 1;
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
