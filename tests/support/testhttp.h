/*
 * A real usher-api for tests, and an HTTP client (libcurl) to talk to it:
 * single requests, and many at once over a bounded number of connections.
 */
#ifndef USHER_TESTHTTP_H
#define USHER_TESTHTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct testapi {
    pid_t pid;
    int port;
    int metrics_port; /* api.metrics_listen's: GET /metrics is served there only */
    const char *host; /* the address to ask; NULL: 127.0.0.1 */
    char log[256];
} testapi;

/*
 * Starts the usher-api binary at path on database_url, listening on a free
 * loopback port (and its /metrics on another), and waits (up to 60 s) until
 * it says where. Fails the test if it does not come up.
 */
void testapi_start(testapi *api, const char *path, const char *database_url, int threads);

/* The same without waiting for /readyz: it has said where it listens. */
void testapi_launch(testapi *api, const char *path, const char *database_url, int threads);

/* SIGTERM, then waits for a clean exit (fails the test otherwise). */
void testapi_stop(testapi *api);

/*
 * Starts usher-api at path with threads loop threads on database_url, as
 * testapi_start does, expecting it to refuse to start: waits (up to 30 s)
 * for it to exit and returns its exit status, with the start of what it
 * said in said. Fails the test if it keeps running or dies by a signal.
 */
int testapi_refused(const char *path, const char *database_url, int threads, char *said,
                    size_t len);

typedef struct testhttp_req {
    const char *method; /* "GET", "POST", ... */
    const char *path;
    const char *token;        /* bearer token, or NULL */
    const char *body;         /* JSON text, or NULL */
    const char *header;       /* one extra "Name: value" header, or NULL */
    const char *content_type; /* NULL: application/json when there is a body */
} testhttp_req;

typedef struct testhttp_resp {
    long status; /* 0: no answer */
    char *body;  /* NUL-terminated */
    size_t len;
    char *headers; /* the raw response headers */
    json_t *json;  /* the body parsed, or NULL */
} testhttp_resp;

/* One request; returns the status. */
long testhttp(const testapi *api, const testhttp_req *req, testhttp_resp *out);

/* What testhttp_post_retrying saw besides its 201. */
typedef struct testhttp_retries {
    int unavailable;         /* answers retried: 503s, and cut connections if allowed */
    int without_retry_after; /* 503s that came without a Retry-After header */
    char failure[256];       /* set when an answer was none of those */
} testhttp_retries;

/*
 * POSTs body (JSON) to path with header (an Idempotency-Key, so a retry is
 * the same request) until a 201, retrying 503s and, when cut_ok, connections
 * cut (status 0), until deadline_ms (testdb_now_ms's clock). Returns the 201's
 * id_field, or 0 with r->failure set.
 */
long long testhttp_post_retrying(const testapi *api, const char *path, const char *body,
                                 const char *header, const char *id_field, bool cut_ok,
                                 long long deadline_ms, testhttp_retries *r);

/* GET /metrics on the API's metrics listener; returns the status. */
long testapi_scrape(const testapi *api, testhttp_resp *out);

/* n requests at once over at most conns connections; out[i] answers req[i]. */
void testhttp_many(const testapi *api, const testhttp_req *reqs, testhttp_resp *out, size_t n,
                   long conns);

void testhttp_resp_free(testhttp_resp *resp);

/* The error code of a {"error":{"code":...}} answer, or "" */
const char *testhttp_error_code(const testhttp_resp *resp);

#endif
