/*
 * The helpers both benchmarks use. Times are CLOCK_MONOTONIC nanoseconds;
 * database helpers run on the caller's admin store and report failures on
 * stderr under bench_program, returning 1 as the exit status; latency
 * figures are nearest-rank percentiles printed to stdout with the same
 * field names in both programs, so bench/queue and bench/workers read them
 * alike.
 */
#include "bench_common.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enqueue.h"

/* ---------------------------------------------------------------- time */

int64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

int64_t bench_wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

double bench_seconds_between(int64_t start_ns, int64_t end_ns)
{
    return (double)(end_ns - start_ns) / (double)NS_PER_S;
}

void bench_sleep_until(int64_t when_ns)
{
    struct timespec ts = { .tv_sec = when_ns / NS_PER_S, .tv_nsec = when_ns % NS_PER_S };

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* ---------------------------------------------------------------- database */

int bench_fail(usher_store *st, usher_err err, const char *what)
{
    const char *detail = st != NULL ? usher_store_errstr(st) : "";

    fprintf(stderr, "%s: %s: %s%s%s\n", bench_program, what, usher_strerror(err),
            detail[0] != '\0' ? ": " : "", detail);
    return 1;
}

usher_err bench_store_open(const usher_config *cfg, usher_store **st)
{
    char errbuf[256];
    usher_err err = usher_store_open(cfg, st, errbuf, sizeof(errbuf));

    if (err != USHER_OK)
        fprintf(stderr, "%s: connect: %s: %s\n", bench_program, usher_strerror(err), errbuf);
    return err;
}

int bench_reset_queue(usher_store *admin)
{
    usher_err err = usher_store_command(admin, "TRUNCATE usher_jobs, usher_queue_stats");

    /* A run stopped between a pause and its resume (usher-bench-workers --phase warm). */
    if (err == USHER_OK)
        err = usher_store_command(admin, "UPDATE usher_queues SET paused = false WHERE paused");
    return err != USHER_OK ? bench_fail(admin, err, "truncate") : 0;
}

int bench_query_ints(usher_store *admin, const char *sql, long long *values, int n)
{
    PGresult *res;
    usher_err err = usher_store_exec(admin, sql, 0, NULL, &res);

    if (err != USHER_OK)
        return bench_fail(admin, err, sql);
    for (int i = 0; i < n; i++)
        values[i] = strtoll(PQgetvalue(res, 0, i), NULL, 10);
    PQclear(res);
    return 0;
}

/* ---------------------------------------------------------------- jobs */

void bench_make_payload(char *buf, size_t len, long long seq, int64_t sent_ns)
{
    int head = snprintf(buf, len, "{\"seq\":%lld,\"sent_ns\":%" PRId64 ",\"pad\":\"", seq, sent_ns);
    size_t pad;

    if (head < 0 || (size_t)head + 3 > len)
        return;
    pad = (size_t)head + 2 < BENCH_PAYLOAD_BYTES ? BENCH_PAYLOAD_BYTES - (size_t)head - 2 : 0;
    if ((size_t)head + pad + 3 > len)
        pad = len - (size_t)head - 3;
    memset(buf + head, 'x', pad);
    memcpy(buf + (size_t)head + pad, "\"}", 3);
}

int bench_fill(usher_store *admin, long long total, const char *payload, int64_t *ids)
{
    usher_enqueue_opts *jobs = calloc(BENCH_FILL_BATCH, sizeof(*jobs));
    usher_enqueued *out = calloc(BENCH_FILL_BATCH, sizeof(*out));
    int rc = jobs == NULL || out == NULL ? bench_fail(NULL, USHER_ERR_NOMEM, "fill") : 0;

    for (size_t i = 0; i < BENCH_FILL_BATCH && rc == 0; i++)
        jobs[i] =
            (usher_enqueue_opts){ .queue = BENCH_QUEUE, .kind = BENCH_KIND, .payload = payload };
    for (long long done = 0; done < total && rc == 0;) {
        size_t n = (size_t)(total - done < BENCH_FILL_BATCH ? total - done : BENCH_FILL_BATCH);
        usher_err err = usher_enqueue_batch(admin, jobs, n, out);

        if (err != USHER_OK)
            rc = bench_fail(admin, err, "fill");
        for (size_t i = 0; i < n && rc == 0 && ids != NULL; i++)
            ids[done + (long long)i] = out[i].id;
        done += (long long)n;
    }
    free(jobs);
    free(out);
    return rc;
}

/* ---------------------------------------------------------------- figures */

int bench_compare_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

double bench_percentile_ms(const int64_t *sorted, long long n, double p, int64_t per_ms)
{
    long long rank = (long long)ceil(p / 100.0 * (double)n);

    if (rank < 1)
        rank = 1;
    return (double)sorted[(rank > n ? n : rank) - 1] / (double)per_ms;
}

void bench_print_latency(int64_t *lat, long long n, int64_t per_ms, int64_t *call_ns,
                         long long ncalls)
{
    qsort(lat, (size_t)n, sizeof(*lat), bench_compare_int64);
    qsort(call_ns, (size_t)ncalls, sizeof(*call_ns), bench_compare_int64);
    printf("\"p50_ms\":%.3f,\"p95_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
           "\"enqueue_call_p50_ms\":%.3f,\"enqueue_call_p99_ms\":%.3f}\n",
           bench_percentile_ms(lat, n, 50, per_ms), bench_percentile_ms(lat, n, 95, per_ms),
           bench_percentile_ms(lat, n, 99, per_ms), (double)lat[n - 1] / (double)per_ms,
           bench_percentile_ms(call_ns, ncalls, 50, NS_PER_MS),
           bench_percentile_ms(call_ns, ncalls, 99, NS_PER_MS));
}

/* ---------------------------------------------------------------- options */

static int parse_int(const bench_int_option *o, const char *text)
{
    char *end;

    errno = 0;
    *o->value = strtoll(text, &end, 10);
    if (errno == 0 && end != text && *end == '\0' && *o->value >= o->min && *o->value <= o->max)
        return 0;
    fprintf(stderr, "%s: %s must be a whole number from %lld to %lld, not '%s'\n", bench_program,
            o->name, o->min, o->max, text);
    return 1;
}

int bench_parse_options(int argc, char **argv, const bench_int_option *ints, size_t nints,
                        const bench_text_option *texts, size_t ntexts)
{
    for (int i = 1; i < argc; i += 2) {
        size_t k = 0, t = 0;

        while (k < nints && strcmp(argv[i], ints[k].name) != 0)
            k++;
        while (t < ntexts && strcmp(argv[i], texts[t].name) != 0)
            t++;
        if (i + 1 == argc || (k == nints && t == ntexts))
            return -1;
        if (t < ntexts)
            *texts[t].value = argv[i + 1];
        else if (parse_int(&ints[k], argv[i + 1]) != 0)
            return 1;
    }
    return 0;
}

int bench_run_phases(const bench_phase *phases, size_t n, const char *which, bench *b)
{
    bool all = strcmp(which, "all") == 0, known = all;
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        if (all || strcmp(which, phases[i].name) == 0) {
            known = true;
            rc = phases[i].run(b);
            fflush(stdout);
        }
    }
    if (!known)
        fprintf(stderr, "%s: unknown phase '%s'\n", bench_program, which);
    return known ? rc : 2;
}
