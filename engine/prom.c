#include "prom.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <string.h>

const double usher_prom_buckets[USHER_PROM_NBUCKETS] = { 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                         0.025,  0.05,  0.1,    0.25,  0.5,
                                                         1,      2.5,   10,     60 };

void usher_prom_observe(usher_prom_histogram *h, double seconds)
{
    size_t b = 0;

    if (seconds < 0)
        seconds = 0;
    while (b < USHER_PROM_NBUCKETS && seconds > usher_prom_buckets[b])
        b++;
    if (b < USHER_PROM_NBUCKETS)
        atomic_fetch_add_explicit(&h->le[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint_fast64_t)(seconds * 1e6), memory_order_relaxed);
}

int usher_prom_histogram_render(struct evbuffer *out, const char *name, const char *labels,
                                usher_prom_histogram *h)
{
    uint64_t count = atomic_load_explicit(&h->count, memory_order_relaxed), cumulative = 0;
    const char *sep = labels[0] != '\0' ? "," : "";
    int rc = 0;

    for (size_t b = 0; b < USHER_PROM_NBUCKETS && rc >= 0; b++) {
        cumulative += atomic_load_explicit(&h->le[b], memory_order_relaxed);
        /* A bucket observed after count was read must not exceed it. */
        if (cumulative > count)
            cumulative = count;
        rc = evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                                 usher_prom_buckets[b], (unsigned long long)cumulative);
    }
    if (rc >= 0)
        rc = evbuffer_add_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                                 (unsigned long long)count);
    /* No braces at all when there are no labels. */
    if (rc >= 0)
        rc = evbuffer_add_printf(
            out, "%s_sum%s%s%s %.6f\n%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
            labels[0] ? "}" : "",
            (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6, name,
            labels[0] ? "{" : "", labels, labels[0] ? "}" : "", (unsigned long long)count);
    return rc < 0 ? -1 : 0;
}

void usher_prom_escape(const char *v, char *out, size_t len)
{
    size_t o = 0;

    for (; *v != '\0' && o + 3 < len; v++) {
        if (*v == '\\' || *v == '"') {
            out[o++] = '\\';
            out[o++] = *v;
        } else if (*v == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *v;
        }
    }
    out[o] = '\0';
}

void usher_prom_reply(struct evhttp_request *req, struct evbuffer *out, bool rendered)
{
    if (out != NULL && rendered) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "text/plain; version=0.0.4; charset=utf-8");
        evhttp_send_reply(req, 200, "OK", out);
    } else {
        evhttp_send_error(req, 500, "could not render the metrics");
    }
    if (out != NULL)
        evbuffer_free(out);
}
