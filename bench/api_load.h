/*
 * What usher-bench-api-load's two files share: its options, the request
 * types, and each type's figures (api_load_report.c keeps and prints them).
 */
#ifndef USHER_BENCH_API_LOAD_H
#define USHER_BENCH_API_LOAD_H

#include <stddef.h>
#include <stdint.h>

#define LOAD_CONNECTIONS_MAX 4096

enum {
    LOAD_REGISTRATION,
    LOAD_CHECKIN,
    LOAD_ACCESS,
    LOAD_CONTENT,
    LOAD_EVENT,    /* the sold-out event's details, GET */
    LOAD_SOLD_OUT, /* registrations into it, each refused (409) */
    LOAD_NTYPES
};

typedef enum load_profile { LOAD_STEADY, LOAD_PEAK, LOAD_SPIKE, LOAD_ENDURANCE } load_profile;

/* The seed's peak rates per second, in the order of the types above. */
extern const double load_peak_rate[LOAD_NTYPES];
extern const char *const load_type_name[LOAD_NTYPES];
extern const char *const load_profile_name[4];

/* A file's lines, in one buffer. */
typedef struct load_lines {
    char *text;
    char **lines;
    long long n;
} load_lines;

typedef struct load_opts {
    char host[256];      /* HOST:PORT, the Host header */
    char host_name[256]; /* HOST */
    int port;
    load_profile profile;
    long long seconds, connections, drain_s;
    double scale;    /* the peak rates' factor, 0.01..10000 */
    const char *tag; /* makes the registrations' emails fresh across runs */
    long long event, ticket_type, session, content;
    long long sold_out_event, sold_out_ticket_type;
    char scanner_auth[300]; /* "Bearer TOKEN" */
    load_lines codes, access_codes;
    int enabled[LOAD_NTYPES];
} load_opts;

typedef struct load_stats {
    int64_t *lat_ns; /* latencies of the good answers, from the scheduled send time */
    long long n, cap;
    long long sent, errors, unfinished;
    double scheduled; /* requests the schedule asked for */
    char first_error[48];
} load_stats;

/* Reads the command line into o; 0, or the exit status after a message. */
int load_parse_options(int argc, char **argv, load_opts *o);

/* Adds a good answer's latency; -1 when out of memory. */
int load_stats_add(load_stats *s, int64_t ns);
/* Counts an error, keeping the first one's description. */
void load_stats_error(load_stats *s, const char *why);
/* Prints a JSON line per enabled type and one for all of them; frees the latencies. */
int load_report(const load_opts *o, load_stats stats[LOAD_NTYPES], double seconds);

#endif
