/*
 * One line per message, written with a single fprintf so lines from
 * threads do not interleave. The level check comes first: a debug call in
 * a hot path costs a comparison when debug logging is off. The level is
 * an atomic, read relaxed: a reload (SIGHUP) sets it while other threads log.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

static atomic_int current_level = USHER_LOG_INFO;

void usher_log_set_level(usher_log_level max_level)
{
    atomic_store_explicit(&current_level, (int)max_level, memory_order_relaxed);
}

usher_log_level usher_log_get_level(void)
{
    return (usher_log_level)atomic_load_explicit(&current_level, memory_order_relaxed);
}

void usher_log(usher_log_level level, const char *fmt, ...)
{
    char line[2048];
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
    fprintf(stderr, "<%d>%s\n", (int)level, line);
}
