/*
 * usher-bench-api-load's figures: each type's latencies and errors, and the
 * JSON lines that report them (percentiles by nearest rank).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_load.h"

const double load_peak_rate[LOAD_NTYPES] = { 100, 50, 200, 500, 200, 200 };
const char *const load_type_name[LOAD_NTYPES] = { "registration",   "checkin",
                                                  "session_access", "content_download",
                                                  "event_details",  "sold_out_registration" };
const char *const load_profile_name[4] = { "steady", "peak", "spike", "endurance" };

int load_stats_add(load_stats *s, int64_t ns)
{
    if (s->n == s->cap) {
        long long cap = s->cap != 0 ? s->cap * 2 : 4096;
        int64_t *lat = realloc(s->lat_ns, (size_t)cap * sizeof(*lat));

        if (lat == NULL)
            return -1;
        s->lat_ns = lat;
        s->cap = cap;
    }
    s->lat_ns[s->n++] = ns;
    return 0;
}

void load_stats_error(load_stats *s, const char *why)
{
    if (s->errors++ == 0)
        snprintf(s->first_error, sizeof(s->first_error), "%s", why);
}

static int compare_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Nearest-rank percentile p of n sorted latencies, in ms. */
static double percentile_ms(const int64_t *sorted, long long n, double p)
{
    long long rank = (long long)ceil(p / 100.0 * (double)n);

    if (n == 0)
        return 0;
    if (rank < 1)
        rank = 1;
    return (double)sorted[rank - 1] / 1e6;
}

static void print_line(const load_opts *o, const char *type, load_stats *s, double seconds)
{
    if (s->n > 0) /* qsort's array may not be NULL, even empty */
        qsort(s->lat_ns, (size_t)s->n, sizeof(*s->lat_ns), compare_int64);
    printf("{\"bench\":\"api_load\",\"profile\":\"%s\",\"scale\":%g,\"type\":\"%s\","
           "\"seconds\":%lld,\"target_per_s\":%.1f,\"achieved_per_s\":%.1f,\"sent\":%lld,"
           "\"ok\":%lld,\"errors\":%lld,\"unfinished\":%lld,\"p50_ms\":%.2f,\"p90_ms\":%.2f,"
           "\"p95_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f",
           load_profile_name[o->profile], o->scale, type, o->seconds, s->scheduled / seconds,
           (double)s->n / seconds, s->sent, s->n, s->errors, s->unfinished,
           percentile_ms(s->lat_ns, s->n, 50), percentile_ms(s->lat_ns, s->n, 90),
           percentile_ms(s->lat_ns, s->n, 95), percentile_ms(s->lat_ns, s->n, 99),
           s->n > 0 ? (double)s->lat_ns[s->n - 1] / 1e6 : 0.0);
    if (s->errors > 0)
        printf(",\"first_error\":\"%s\"", s->first_error);
    printf("}\n");
}

int load_report(const load_opts *o, load_stats stats[LOAD_NTYPES], double seconds)
{
    load_stats all = { 0 };
    int rc = 0;

    for (int t = 0; t < LOAD_NTYPES; t++) {
        if (!o->enabled[t])
            continue;
        for (long long i = 0; i < stats[t].n && rc == 0; i++)
            rc = load_stats_add(&all, stats[t].lat_ns[i]);
        all.sent += stats[t].sent;
        all.unfinished += stats[t].unfinished;
        all.scheduled += stats[t].scheduled;
        if (stats[t].errors > 0 && all.errors == 0)
            snprintf(all.first_error, sizeof(all.first_error), "%s: %.*s", load_type_name[t],
                     (int)(sizeof(all.first_error) / 2), stats[t].first_error); /* shortened */
        all.errors += stats[t].errors;
        print_line(o, load_type_name[t], &stats[t], seconds);
        free(stats[t].lat_ns);
        stats[t].lat_ns = NULL;
    }
    if (rc != 0) {
        fprintf(stderr, "usher-bench-api-load: out of memory\n");
    } else {
        print_line(o, "all", &all, seconds);
    }
    free(all.lat_ns);
    return rc != 0 || fflush(stdout) != 0 ? 1 : 0;
}
