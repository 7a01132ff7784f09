/*
 * Usher's configuration: an INI file (conf/usher.conf) parsed with inih
 * through one table of {section, key, type, offset, default, reloadable},
 * then USHER_DATABASE_URL, USHER_REDIS_URL and USHER_SMTP_URL override the
 * file. A bad file is refused with "FILE:LINE: reason".
 *
 * Sections:
 *   [database] [redis] [smtp]  url
 *   [log]        level
 *   [engine]     queue-engine settings (payload limit, wake-ups, leases, retention)
 *   [defaults]   the retry policy and priority of a kind not listed below
 *   [queue.NAME] one per queue: pool
 *   [kind.NAME]  one per job kind: queue, priority, max_attempts, timeout_ms,
 *                backoff_base_ms, backoff_cap_ms (unset keys take [defaults])
 */
#ifndef USHER_CONFIG_H
#define USHER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define USHER_NAME_MAX 64 /* queue, kind and pool names, with the NUL */

typedef struct usher_kind_conf {
    char name[USHER_NAME_MAX];
    char queue[USHER_NAME_MAX]; /* default queue for this kind ("" = none) */
    int priority;               /* 0 high, 1 medium, 2 low */
    int max_attempts;           /* >= 1 */
    int timeout_ms;             /* a run longer than this fails the attempt */
    int backoff_base_ms;        /* first retry waits up to this */
    int backoff_cap_ms;         /* no retry waits longer than this */
} usher_kind_conf;

typedef struct usher_queue_conf {
    char name[USHER_NAME_MAX];
    char pool[USHER_NAME_MAX]; /* the worker pool that serves it */
} usher_queue_conf;

typedef struct usher_config {
    char *path; /* the file it came from, or NULL for built-in defaults */
    char *database_url;
    char *redis_url;
    char *smtp_url;
    int log_level; /* syslog level 3 (err) .. 7 (debug) */

    /* [engine] */
    int payload_max_bytes;     /* enqueue refuses larger payloads */
    int notify_debounce_ms;    /* at most one NOTIFY per queue per process per window */
    int poll_interval_ms;      /* a waiting claimer polls this often without NOTIFY */
    int lease_grace_ms;        /* lease = job timeout + this */
    int dead_retention_hours;  /* dead and cancelled jobs are pruned after this */
    int stats_retention_hours; /* per-minute statistics are pruned after this */

    usher_kind_conf defaults; /* [defaults]; name is "" */
    usher_queue_conf *queues;
    size_t nqueues;
    usher_kind_conf *kinds;
    size_t nkinds;
} usher_config;

/*
 * Fills *out with the built-in defaults, then the file at path (NULL: no
 * file), then the environment. On failure returns USHER_ERR_CONFIG (or
 * NOMEM) and writes "FILE:LINE: reason" into errbuf; *out is left empty.
 * The caller frees *out with usher_config_free.
 */
usher_err usher_config_load(usher_config *out, const char *path, char *errbuf, size_t errlen);

/* Frees what usher_config_load allocated; accepts a zeroed or NULL config. */
void usher_config_free(usher_config *cfg);

/* The policy of kind, or &cfg->defaults when kind is not configured. Never NULL. */
const usher_kind_conf *usher_config_kind(const usher_config *cfg, const char *kind);

/* The queue named name, or NULL when it is not declared. */
const usher_queue_conf *usher_config_queue(const usher_config *cfg, const char *name);

/*
 * The path binaries use when no --config is given: $USHER_CONFIG if set,
 * else conf/usher.conf in the source tree.
 */
const char *usher_config_default_path(void);

/* True when name is a valid queue, kind or pool name: [a-z0-9_.-], 1..63 chars. */
bool usher_config_valid_name(const char *name);

#endif
