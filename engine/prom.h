/*
 * Prometheus text exposition pieces shared by usher-api's /metrics and the
 * worker pools' metrics endpoint: a latency histogram with fixed buckets
 * (relaxed atomics, so any thread may observe while another renders) and
 * its rendering with a label set; and the answer to a scrape.
 */
#ifndef USHER_PROM_H
#define USHER_PROM_H

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define USHER_PROM_NBUCKETS 14

/* Upper bounds in seconds, from 0.5 ms to 60 s. */
extern const double usher_prom_buckets[USHER_PROM_NBUCKETS];

typedef struct usher_prom_histogram {
    atomic_uint_fast64_t le[USHER_PROM_NBUCKETS]; /* non-cumulative; summed when rendered */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_us;
} usher_prom_histogram;

void usher_prom_observe(usher_prom_histogram *h, double seconds);

/*
 * Appends name_bucket{labels,le=...} (cumulative, with +Inf), name_sum and
 * name_count; labels is "" or 'a="x",b="y"' (already escaped). Returns -1
 * when the buffer refused.
 */
int usher_prom_histogram_render(struct evbuffer *out, const char *name, const char *labels,
                                usher_prom_histogram *h);

/*
 * Writes v into out with \, " and newline escaped, as a label value needs.
 * USHER_PROM_ESCAPED_MAX(n): room for any escaped string of fewer than n
 * bytes (each may double), so a name from a char[n] is never cut.
 */
#define USHER_PROM_ESCAPED_MAX(n) (2 * (n))
void usher_prom_escape(const char *v, char *out, size_t len);

/*
 * Answers a scrape: 200 with the text in out (the exposition format's
 * content type) when rendered, else 500. Frees out, which may be NULL.
 */
void usher_prom_reply(struct evhttp_request *req, struct evbuffer *out, bool rendered);

#endif
