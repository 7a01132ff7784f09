/*
 * What usher-bench-queue and usher-bench-workers share: clocks, the admin
 * store's queries, the fill, percentiles and the latency line, option
 * parsing and the phase table.
 */
#ifndef USHER_BENCH_COMMON_H
#define USHER_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "store.h"

#define BENCH_QUEUE         "default"
#define BENCH_KIND          "test.noop"
#define BENCH_PAYLOAD_BYTES 200 /* both drains move rows of the same size */
#define BENCH_FILL_BATCH    1000
#define NS_PER_S            1000000000LL
#define NS_PER_MS           1000000LL

/* The program's name for messages; each benchmark defines it. */
extern const char bench_program[];

/* Each benchmark defines its own struct bench; this file only passes it on. */
typedef struct bench bench;

/* CLOCK_MONOTONIC in ns. */
int64_t bench_now_ns(void);
/* CLOCK_REALTIME in µs: comparable across processes (a job's sent and started times). */
int64_t bench_wall_us(void);
double bench_seconds_between(int64_t start_ns, int64_t end_ns);
/* Sleeps until the CLOCK_MONOTONIC time when_ns. */
void bench_sleep_until(int64_t when_ns);

/* Reports a failed engine call on st (may be NULL); returns 1, the exit status. */
int bench_fail(usher_store *st, usher_err err, const char *what);
/* Opens a store on cfg, reporting a failure as "connect". */
usher_err bench_store_open(const usher_config *cfg, usher_store **st);
/* Empties usher_jobs and usher_queue_stats so a phase starts from nothing. */
int bench_reset_queue(usher_store *admin);
/* Runs a query on admin whose one row holds n integers. */
int bench_query_ints(usher_store *admin, const char *sql, long long *values, int n);

/* Writes a JSON object of exactly BENCH_PAYLOAD_BYTES bytes carrying seq and sent_ns. */
void bench_make_payload(char *buf, size_t len, long long seq, int64_t sent_ns);
/*
 * Enqueues total jobs with payload in batches of BENCH_FILL_BATCH on admin;
 * ids (may be NULL) receives their ids in order.
 */
int bench_fill(usher_store *admin, long long total, const char *payload, int64_t *ids);

/* qsort/bsearch order of int64_t values. */
int bench_compare_int64(const void *a, const void *b);
/* Nearest-rank percentile p of n sorted values, in ms of per_ms units each. */
double bench_percentile_ms(const int64_t *sorted, long long n, double p, int64_t per_ms);
/*
 * Sorts both arrays and ends a latency line begun by the caller: p50, p95,
 * p99 and max of the n latencies (per_ms units a ms), then p50 and p99 of
 * the ncalls enqueue call times (ns), and the closing brace.
 */
void bench_print_latency(int64_t *lat, long long n, int64_t per_ms, int64_t *call_ns,
                         long long ncalls);

typedef struct bench_int_option {
    const char *name;
    long long *value;
    long long min, max;
} bench_int_option;

typedef struct bench_text_option {
    const char *name;
    const char **value;
} bench_text_option;

/*
 * Reads "--name value" pairs into the options. 0 when all were read, 1
 * after reporting a bad number, -1 when the caller should print its usage.
 */
int bench_parse_options(int argc, char **argv, const bench_int_option *ints, size_t nints,
                        const bench_text_option *texts, size_t ntexts);

typedef struct bench_phase {
    const char *name;
    int (*run)(bench *b);
} bench_phase;

/* Runs the phase named which, or every one for "all"; 2 for an unknown name. */
int bench_run_phases(const bench_phase *phases, size_t n, const char *which, bench *b);

#endif
