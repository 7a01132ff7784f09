#define _GNU_SOURCE /* strcasestr */
#include "testhttp.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testdb.h"
#include "testproc.h"

typedef struct buf {
    char *data;
    size_t len, cap;
} buf;

/*
 * Grows by doubling: a 20 MB download arrives in 16 KiB pieces, and growing
 * by each piece copied the whole body every time (minutes under ASan).
 */
static size_t append(char *p, size_t size, size_t n, void *arg)
{
    buf *b = arg;
    size_t need = b->len + size * n + 1;

    if (need > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 4096;
        char *more;

        while (cap < need)
            cap *= 2;
        if ((more = realloc(b->data, cap)) == NULL)
            return 0;
        b->data = more;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* The port of the last line of the log at path that says "<what>HOST:PORT", or 0. */
static int port_in_log(const char *path, const char *what)
{
    FILE *f = fopen(path, "r");
    char line[512];
    int port = 0;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        const char *at = strstr(line, what);
        const char *colon = at != NULL ? strchr(at + strlen(what), ':') : NULL;

        if (colon != NULL)
            port = atoi(colon + 1);
    }
    if (f != NULL)
        fclose(f);
    return port;
}

/* The start of the log at path (what a process said before it exited), into out. */
static const char *log_head(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t got = f != NULL ? fread(out, 1, len - 1, f) : 0;

    out[got] = '\0';
    if (f != NULL)
        fclose(f);
    return out;
}

void testapi_launch(testapi *api, const char *path, const char *database_url, int threads)
{
    static int started; /* several APIs in one test: a log each */
    char nthreads[16];
    const char *argv[] = { path, "--threads", nthreads, NULL };
    long long deadline = testdb_now_ms() + 60000;

    snprintf(nthreads, sizeof(nthreads), "%d", threads);
    snprintf(api->log, sizeof(api->log), "/tmp/usher-api-test-%d-%d.log", (int)getpid(), started++);
    unlink(api->log);
    setenv("USHER_DATABASE_URL", database_url, 1);
    setenv("USHER_API_LISTEN", "127.0.0.1:0", 1);
    setenv("USHER_API_METRICS_LISTEN", "127.0.0.1:0", 1);
    /* The cache warm-up would change the cache counts tests assert: off unless a test asks. */
    setenv("USHER_API_CACHE_WARM_WINDOW_S", "0", 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    api->port = 0;
    api->host = NULL; /* callers declare their testapi without an initializer */
    api->pid = testproc_start(argv, api->log);
    cr_assert_gt(api->pid, 0);
    while (api->port == 0 && testdb_now_ms() < deadline) {
        char said[1024];
        int status;

        /* E.g. without USHER_TICKET_SECRET (the stack's env exports it): the log says so. */
        cr_assert_eq(waitpid(api->pid, &status, WNOHANG), 0, "usher-api exited (%s): %s", api->log,
                     log_head(api->log, said, sizeof(said)));
        api->port = port_in_log(api->log, "listening on ");
        if (api->port == 0)
            usleep(20000);
    }
    cr_assert_gt(api->port, 0, "usher-api did not start listening; see %s", api->log);
    /* Logged before "listening on". */
    api->metrics_port = port_in_log(api->log, "serving /metrics at ");
    cr_assert_gt(api->metrics_port, 0, "usher-api did not say where /metrics is; see %s", api->log);
}

void testapi_start(testapi *api, const char *path, const char *database_url, int threads)
{
    long long deadline = testdb_now_ms() + 60000;

    testapi_launch(api, path, database_url, threads);
    /* Ready once the database connections answer. */
    for (;;) {
        testhttp_resp resp;
        long status =
            testhttp(api, &(testhttp_req){ "GET", "/readyz", NULL, NULL, NULL, NULL }, &resp);

        testhttp_resp_free(&resp);
        if (status == 200)
            break;
        cr_assert_lt(testdb_now_ms(), deadline, "usher-api never became ready; see %s", api->log);
        usleep(20000);
    }
}

int testapi_refused(const char *path, const char *database_url, int threads, char *said, size_t len)
{
    char nthreads[16], log[128];
    const char *argv[] = { path, "--threads", nthreads, NULL };
    int status = 0;
    pid_t pid;

    snprintf(nthreads, sizeof(nthreads), "%d", threads);
    snprintf(log, sizeof(log), "/tmp/usher-api-refused-%d.log", (int)getpid());
    unlink(log);
    setenv("USHER_DATABASE_URL", database_url, 1);
    setenv("USHER_API_LISTEN", "127.0.0.1:0", 1);
    setenv("USHER_API_METRICS_LISTEN", "127.0.0.1:0", 1);
    pid = testproc_start(argv, log);
    cr_assert_gt(pid, 0);
    if (!testproc_wait(pid, 30000, &status)) {
        testproc_kill(pid);
        cr_assert_fail("usher-api started anyway; see %s", log);
    }
    log_head(log, said, len);
    cr_assert(WIFEXITED(status), "usher-api died with status %d: %s", status, said);
    return WEXITSTATUS(status);
}

void testapi_stop(testapi *api)
{
    int status = 0;

    if (api->pid <= 0)
        return;
    kill(api->pid, SIGTERM);
    if (!testproc_wait(api->pid, 30000, &status)) {
        testproc_kill(api->pid);
        cr_assert_fail("usher-api did not stop on SIGTERM; see %s", api->log);
    }
    api->pid = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "usher-api exited with status %d; see %s", status, api->log);
}

typedef struct easy {
    CURL *curl;
    struct curl_slist *headers;
    buf body, head;
} easy;

static void setup(easy *e, const testapi *api, const testhttp_req *req)
{
    char url[1024], auth[256], type[128];

    memset(e, 0, sizeof(*e));
    e->curl = curl_easy_init();
    cr_assert_not_null(e->curl);
    snprintf(url, sizeof(url), "http://%s:%d%s", api->host != NULL ? api->host : "127.0.0.1",
             api->port, req->path);
    curl_easy_setopt(e->curl, CURLOPT_URL, url);
    curl_easy_setopt(e->curl, CURLOPT_CUSTOMREQUEST, req->method);
    curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, append);
    curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &e->body);
    curl_easy_setopt(e->curl, CURLOPT_HEADERFUNCTION, append);
    curl_easy_setopt(e->curl, CURLOPT_HEADERDATA, &e->head);
    curl_easy_setopt(e->curl, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
    if (strcmp(req->method, "HEAD") == 0)
        curl_easy_setopt(e->curl, CURLOPT_NOBODY, 1L);
    if (req->body != NULL) {
        curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(e->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(req->body));
        snprintf(type, sizeof(type), "Content-Type: %s",
                 req->content_type != NULL ? req->content_type : "application/json");
        e->headers = curl_slist_append(e->headers, type);
    }
    if (req->token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", req->token);
        e->headers = curl_slist_append(e->headers, auth);
    }
    if (req->header != NULL)
        e->headers = curl_slist_append(e->headers, req->header);
    e->headers = curl_slist_append(e->headers, "Expect:");
    curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, e->headers);
}

static void finish(easy *e, testhttp_resp *out)
{
    memset(out, 0, sizeof(*out));
    curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &out->status);
    out->body = e->body.data != NULL ? e->body.data : strdup("");
    out->len = e->body.len;
    out->headers = e->head.data != NULL ? e->head.data : strdup("");
    out->json = json_loadb(out->body, out->len, 0, NULL);
    curl_slist_free_all(e->headers);
    curl_easy_cleanup(e->curl);
}

long testhttp(const testapi *api, const testhttp_req *req, testhttp_resp *out)
{
    easy e;

    setup(&e, api, req);
    curl_easy_perform(e.curl);
    finish(&e, out);
    return out->status;
}

long testapi_scrape(const testapi *api, testhttp_resp *out)
{
    testapi metrics = { .pid = api->pid, .port = api->metrics_port };

    return testhttp(&metrics, &(testhttp_req){ "GET", "/metrics", NULL, NULL, NULL, NULL }, out);
}

void testhttp_many(const testapi *api, const testhttp_req *reqs, testhttp_resp *out, size_t n,
                   long conns)
{
    CURLM *multi = curl_multi_init();
    easy *es = calloc(n, sizeof(*es));
    int running = 1;

    cr_assert(multi != NULL && es != NULL);
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, conns);
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
    for (size_t i = 0; i < n; i++) {
        setup(&es[i], api, &reqs[i]);
        curl_multi_add_handle(multi, es[i].curl);
    }
    while (running > 0) {
        curl_multi_perform(multi, &running);
        if (running > 0)
            curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        curl_multi_remove_handle(multi, es[i].curl);
        finish(&es[i], &out[i]);
    }
    free(es);
    curl_multi_cleanup(multi);
}

void testhttp_resp_free(testhttp_resp *resp)
{
    free(resp->body);
    free(resp->headers);
    json_decref(resp->json);
    memset(resp, 0, sizeof(*resp));
}

const char *testhttp_error_code(const testhttp_resp *resp)
{
    const char *code =
        json_string_value(json_object_get(json_object_get(resp->json, "error"), "code"));

    return code != NULL ? code : "";
}

long long testhttp_post_retrying(const testapi *api, const char *path, const char *body,
                                 const char *header, const char *id_field, bool cut_ok,
                                 long long deadline_ms, testhttp_retries *r)
{
    while (testdb_now_ms() < deadline_ms) {
        testhttp_resp resp;
        long status =
            testhttp(api, &(testhttp_req){ "POST", path, NULL, body, header, NULL }, &resp);
        long long id = status == 201 ? json_integer_value(json_object_get(resp.json, id_field)) : 0;

        if (status == 503 &&
            (resp.headers == NULL || strcasestr(resp.headers, "\nRetry-After:") == NULL))
            r->without_retry_after++;
        if (status != 201 && status != 503 && !(cut_ok && status == 0))
            snprintf(r->failure, sizeof(r->failure), "POST %s (%s) answered %ld: %.150s", path,
                     header, status, resp.body != NULL ? resp.body : "");
        testhttp_resp_free(&resp);
        if (id > 0 || r->failure[0] != '\0')
            return id;
        r->unavailable++;
    }
    snprintf(r->failure, sizeof(r->failure), "POST %s (%s): no 201 in time", path, header);
    return 0;
}
