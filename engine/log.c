/*
 * One line per message, written with a single fprintf so lines from
 * threads do not interleave. The level check comes first: a debug call in
 * a hot path costs a comparison when debug logging is off. The level is
 * an atomic, read relaxed: a reload (SIGHUP) sets it while other threads log.
 *
 * Two forms, chosen once by where stderr goes. To the journal (systemd sets
 * JOURNAL_STREAM to the device and inode of the stream it reads, which
 * stderr still is unless redirected): "<N>message", the journal adding time
 * and process. Anywhere else (a terminal, a file, a container's log):
 * logfmt with the time, "ts=2026-12-06T06:30:00.123Z level=info pid=42
 * msg=\"...\"", the message quoted with its quotes and backslashes escaped.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static atomic_int current_level = USHER_LOG_INFO;

/* 0: not decided yet, 1: the journal, 2: logfmt. A race decides twice, alike. */
static atomic_int destination;

static const char *const level_names[] = { [USHER_LOG_ERR] = "err",
                                           [USHER_LOG_WARNING] = "warning",
                                           [USHER_LOG_NOTICE] = "notice",
                                           [USHER_LOG_INFO] = "info",
                                           [USHER_LOG_DEBUG] = "debug" };

void usher_log_set_level(usher_log_level max_level)
{
    atomic_store_explicit(&current_level, (int)max_level, memory_order_relaxed);
}

usher_log_level usher_log_get_level(void)
{
    return (usher_log_level)atomic_load_explicit(&current_level, memory_order_relaxed);
}

bool usher_log_to_journal(void)
{
    int d = atomic_load_explicit(&destination, memory_order_relaxed);

    if (d == 0) {
        const char *stream = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        d = stream != NULL && sscanf(stream, "%llu:%llu", &dev, &ino) == 2 &&
                    fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
                    (unsigned long long)st.st_ino == ino
                ? 1
                : 2;
        atomic_store_explicit(&destination, d, memory_order_relaxed);
    }
    return d == 1;
}

/* The message quoted for logfmt: " and \ escaped (newlines are gone already). */
static void quote(const char *in, char *out, size_t len)
{
    size_t n = 0;

    for (; *in != '\0' && n + 3 < len; in++) {
        if (*in == '"' || *in == '\\')
            out[n++] = '\\';
        out[n++] = *in;
    }
    out[n] = '\0';
}

void usher_log(usher_log_level level, const char *fmt, ...)
{
    char line[2048], quoted[4100], stamp[32];
    struct timespec now;
    struct tm tm;
    va_list ap;

    if ((int)level > atomic_load_explicit(&current_level, memory_order_relaxed))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One message, one line: journald splits on newlines (libpq's DETAIL lines). */
    for (char *p = line; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    }
    if (usher_log_to_journal()) {
        fprintf(stderr, "<%d>%s\n", (int)level, line);
        return;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    quote(line, quoted, sizeof(quoted));
    fprintf(stderr, "ts=%s.%03ldZ level=%s pid=%d msg=\"%s\"\n", stamp, now.tv_nsec / 1000000,
            level >= USHER_LOG_ERR && level <= USHER_LOG_DEBUG ? level_names[level] : "info",
            (int)getpid(), quoted);
}
