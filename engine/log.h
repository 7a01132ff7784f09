/*
 * Logging to stderr: to the journal with sd-daemon "<N>" priority prefixes,
 * so journald keeps the level; anywhere else as logfmt lines with a UTC
 * timestamp, the level and the pid (log.c). Messages are key=value fields:
 * usher_log(USHER_LOG_INFO, "job=%lld queue=%s claimed", ...).
 */
#ifndef USHER_LOG_H
#define USHER_LOG_H

#include <stdbool.h>

typedef enum usher_log_level {
    USHER_LOG_ERR = 3,
    USHER_LOG_WARNING = 4,
    USHER_LOG_NOTICE = 5,
    USHER_LOG_INFO = 6,
    USHER_LOG_DEBUG = 7,
} usher_log_level;

/* Messages above this level are dropped before they are formatted. */
void usher_log_set_level(usher_log_level max_level);
usher_log_level usher_log_get_level(void);

/* Whether stderr is the journal's stream (JOURNAL_STREAM), decided once. */
bool usher_log_to_journal(void);

void usher_log(usher_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
