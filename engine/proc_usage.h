/*
 * What a process uses, read from /proc: CPU seconds (user + system) and
 * resident memory; and what the host has: cores and memory. For the
 * scaling signals of usher-api (api/fleet.c) and the worker pools
 * (workers/pool_metrics.c), which the seed's rules express as fractions of
 * an instance.
 */
#ifndef USHER_PROC_USAGE_H
#define USHER_PROC_USAGE_H

#include <stdbool.h>
#include <sys/types.h>

/* pid's CPU seconds and resident bytes; false when it is gone or unreadable. */
bool usher_proc_usage(pid_t pid, double *cpu_s, double *rss_bytes);

int usher_host_cores(void);           /* online cores, at least 1 */
double usher_host_memory_bytes(void); /* physical memory, 0 when unknown */

#endif
