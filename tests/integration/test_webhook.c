/*
 * notify.webhook through a real usher-worker against an HTTP endpoint that
 * this test serves on 127.0.0.1 (a thread answering with the status the
 * test chooses): the signature, the delivery log, 410 and 429. The
 * configuration (chain-test.conf) allows private targets; the tests of the
 * guard turn it off through the environment and check that neither the
 * real usher-api (registration) nor the real usher-worker (delivery) lets
 * an endpoint reach this loopback receiver, and that redirects are never
 * followed.
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "enqueue.h"
#include "webhook_replay.h"
#include "seed.h"
#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"
#include "token.h"

__attribute__((constructor)) static void use_chain_config(void)
{
    setenv("USHER_CONFIG", CHAIN_TEST_CONF, 1);
}

TESTDB_SUITE(webhook, "usher_test_webhook");

#define SECRET "whsec_0123456789abcdef"

typedef struct endpoint {
    int fd;
    int port;
    const char *reply; /* status line and headers */
    pthread_t thread;
    pthread_mutex_t lock;
    char request[8192];
    int requests;
    int strays; /* requests for another path than /hooks */
} endpoint;

static endpoint ep = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Reads one request (headers and a Content-Length body) and answers it. */
static void serve_one(int client)
{
    char buf[8192];
    size_t len = 0;
    const char *body, *cl;
    long want = 0;

    for (;;) {
        ssize_t n = read(client, buf + len, sizeof(buf) - 1 - len);

        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        body = strstr(buf, "\r\n\r\n");
        cl = strcasestr(buf, "Content-Length:");
        want = cl != NULL ? strtol(cl + 15, NULL, 10) : 0;
        if (body != NULL && (long)(len - (size_t)(body + 4 - buf)) >= want)
            break;
    }
    pthread_mutex_lock(&ep.lock);
    memcpy(ep.request, buf, len + 1);
    ep.requests++;
    ep.strays += strncmp(buf, "POST /hooks ", 12) != 0;
    pthread_mutex_unlock(&ep.lock);
    if (write(client, ep.reply, strlen(ep.reply)) < 0)
        perror("endpoint write");
    close(client);
}

static void *serve(void *arg)
{
    int client;

    (void)arg;
    while ((client = accept(ep.fd, NULL, NULL)) >= 0)
        serve_one(client);
    return NULL;
}

static void start_endpoint(const char *reply)
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof(addr);

    ep.reply = reply;
    ep.requests = 0;
    ep.strays = 0;
    ep.fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(ep.fd, 0);
    cr_assert_eq(bind(ep.fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    cr_assert_eq(listen(ep.fd, 16), 0);
    cr_assert_eq(getsockname(ep.fd, (struct sockaddr *)&addr, &alen), 0);
    ep.port = ntohs(addr.sin_port);
    cr_assert_eq(pthread_create(&ep.thread, NULL, serve, NULL), 0);
}

/* An endpoint row for http://HOST:PORT/hooks (the receiver's port), written directly. */
static long long add_endpoint_on(const char *host)
{
    char sql[512];

    snprintf(sql, sizeof(sql),
             "INSERT INTO webhook_endpoints (organizer_id, url, secret) SELECT id,"
             " 'http://%s:%d/hooks', '" SECRET "' FROM organizers ORDER BY id LIMIT 1"
             " RETURNING id",
             host, ep.port);
    return testdb_scalar(st, sql);
}

static long long add_endpoint(void)
{
    return add_endpoint_on("127.0.0.1");
}

static int64_t enqueue_hook(long long endpoint_id)
{
    char payload[160];
    usher_enqueued out;

    snprintf(payload, sizeof(payload),
             "{\"endpoint_id\":%lld,\"event\":\"registration.created\",\"data\":{\"n\":1}}",
             endpoint_id);
    cr_assert_eq(usher_enqueue(st,
                               &(usher_enqueue_opts){ .queue = "notifications",
                                                      .kind = "notify.webhook",
                                                      .payload = payload,
                                                      .max_attempts = 3 },
                               &out),
                 USHER_OK, "%s", usher_store_errstr(st));
    return out.id;
}

static pid_t worker_pid; /* the usher-worker running, or 0 */
static testapi api;      /* the usher-api running, if any */

static pid_t start_worker(void)
{
    const char *argv[] = {
        USHER_WORKER_PATH, "--config", CHAIN_TEST_CONF, "--pool", "tests", NULL
    };

    cr_assert_eq(setenv("USHER_DATABASE_URL", cfg.database_url, 1), 0);
    worker_pid = testproc_start(argv, "/tmp/usher-test-webhook-worker.log");
    return worker_pid;
}

static void stop_worker(pid_t pid)
{
    int status;

    kill(pid, SIGTERM);
    cr_assert(testproc_wait(pid, 60000, &status), "usher-worker did not stop");
    worker_pid = 0;
}

/* A test's .fini: a failed assertion leaves no usher-worker or usher-api running. */
static void stop_left(void)
{
    int status;

    if (worker_pid > 0) {
        kill(worker_pid, SIGTERM);
        if (!testproc_wait(worker_pid, 60000, &status))
            testproc_kill(worker_pid);
        worker_pid = 0;
    }
    testapi_stop(&api);
}

static bool first_attempt_over(void *arg)
{
    (void)arg;
    return testdb_scalar(st, "SELECT count(*) FROM webhook_deliveries") >= 1 &&
           testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'running'") == 0;
}

static void prepare(const char *reply)
{
    usher_seed_result seed;

    testdb_exec(st, "TRUNCATE webhook_deliveries, webhook_endpoints");
    cr_assert_eq(usher_seed_demo(st, 1, &seed), USHER_OK, "%s", usher_store_errstr(st));
    start_endpoint(reply);
}

/* The last request's body is expected_body, signed with SECRET over "TIMESTAMP.BODY". */
static void assert_signed(const char *expected_body)
{
    char sigline[160], expected[2 * crypto_auth_hmacsha256_BYTES + 1], *ts, *sig, *body;
    crypto_auth_hmacsha256_state state;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];

    pthread_mutex_lock(&ep.lock);
    ts = strcasestr(ep.request, "X-Usher-Timestamp: ");
    sig = strcasestr(ep.request, "X-Usher-Signature: v1=");
    body = strstr(ep.request, "\r\n\r\n");
    cr_assert(ts != NULL && sig != NULL && body != NULL, "%s", ep.request);
    snprintf(sigline, sizeof(sigline), "%.*s", (int)strcspn(ts + 19, "\r"), ts + 19);
    body += 4;
    cr_assert_str_eq(body, expected_body);
    crypto_auth_hmacsha256_init(&state, (const unsigned char *)SECRET, strlen(SECRET));
    crypto_auth_hmacsha256_update(&state, (const unsigned char *)sigline, strlen(sigline));
    crypto_auth_hmacsha256_update(&state, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&state, (const unsigned char *)body, strlen(body));
    crypto_auth_hmacsha256_final(&state, mac);
    sodium_bin2hex(expected, sizeof(expected), mac, sizeof(mac));
    cr_assert_eq(strncmp(sig + 22, expected, strlen(expected)), 0, "signature mismatch");
    pthread_mutex_unlock(&ep.lock);
}

static void assert_body_of_job(int64_t job)
{
    char expected[160];

    snprintf(expected, sizeof(expected),
             "{\"data\":{\"n\":1},\"event\":\"registration.created\",\"id\":%lld}", (long long)job);
    assert_signed(expected);
}

Test(webhook, a_delivery_is_signed_logged_and_done_on_2xx, .timeout = 120, .fini = stop_left)
{
    int64_t job;
    pid_t pid;

    prepare("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    job = enqueue_hook(add_endpoint());
    pid = start_worker();
    cr_assert(testproc_wait_for(first_attempt_over, NULL, 60000), "no delivery");
    stop_worker(pid);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 0, "the job is not done");
    cr_assert_eq(testdb_scalar(st, "SELECT status_code FROM webhook_deliveries"), 204);
    assert_body_of_job(job);
}

Test(webhook, gone_disables_the_endpoint, .timeout = 120, .fini = stop_left)
{
    long long endpoint_id;
    pid_t pid;

    prepare("HTTP/1.1 410 Gone\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    endpoint_id = add_endpoint();
    enqueue_hook(endpoint_id);
    pid = start_worker();
    cr_assert(testproc_wait_for(first_attempt_over, NULL, 60000), "no delivery");
    stop_worker(pid);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM webhook_endpoints WHERE enabled"), 0);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'dead'"), 1);
}

Test(webhook, too_many_requests_retries_after_retry_after, .timeout = 120, .fini = stop_left)
{
    pid_t pid;

    prepare("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n");
    enqueue_hook(add_endpoint());
    pid = start_worker();
    cr_assert(testproc_wait_for(first_attempt_over, NULL, 60000), "no delivery");
    stop_worker(pid);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'available'"
                                   " AND attempt = 1 AND run_at > now() + interval '20 seconds'"),
                 1, "the retry does not wait for Retry-After");
    cr_assert_eq(testdb_scalar(st, "SELECT status_code FROM webhook_deliveries"), 429);
}

static bool replay_delivered(void *arg)
{
    (void)arg;
    return testdb_scalar(st, "SELECT count(*) FROM webhook_deliveries") >= 2 &&
           testdb_scalar(st, "SELECT count(*) FROM usher_jobs") == 0;
}

Test(webhook, a_replayed_delivery_arrives_again_signed, .timeout = 120, .fini = stop_left)
{
    long long endpoint_id, delivery;
    int64_t replay_job;
    pid_t pid;

    prepare("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    endpoint_id = add_endpoint();
    enqueue_hook(endpoint_id);
    pid = start_worker();
    cr_assert(testproc_wait_for(first_attempt_over, NULL, 60000), "no delivery");
    delivery = testdb_scalar(st, "SELECT id FROM webhook_deliveries");
    cr_assert_eq(usher_webhook_replay(st, delivery, &replay_job), USHER_OK, "%s",
                 usher_store_errstr(st));
    cr_assert(testproc_wait_for(replay_delivered, NULL, 60000), "the replay was not delivered");
    stop_worker(pid);
    pthread_mutex_lock(&ep.lock);
    cr_assert_eq(ep.requests, 2);
    pthread_mutex_unlock(&ep.lock);
    assert_body_of_job(replay_job);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM webhook_deliveries WHERE status_code = 200"
                                   " AND event = 'registration.created'"),
                 2);
}

Test(webhook, replay_refuses_unknown_deliveries_and_disabled_endpoints, .timeout = 60,
     .fini = stop_left)
{
    long long endpoint_id, delivery;
    char sql[256];
    int64_t job = -1;

    prepare("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    endpoint_id = add_endpoint();
    cr_assert_eq(usher_webhook_replay(st, 987654321, &job), USHER_ERR_NOT_FOUND);
    cr_assert_eq(job, 0);
    snprintf(sql, sizeof(sql),
             "INSERT INTO webhook_deliveries (endpoint_id, attempt, event, payload, status_code)"
             " VALUES (%lld, 1, 'registration.created', '{\"id\":1,\"data\":{}}', 500)"
             " RETURNING id",
             endpoint_id);
    delivery = testdb_scalar(st, sql);
    snprintf(sql, sizeof(sql),
             "UPDATE webhook_endpoints SET enabled = false, disabled_reason = '410 Gone'"
             " WHERE id = %lld",
             endpoint_id);
    testdb_exec(st, sql);
    cr_assert_eq(usher_webhook_replay(st, delivery, &job), USHER_ERR_INVALID);
    cr_assert_not_null(strstr(usher_store_errstr(st), "is disabled (410 Gone)"), "%s",
                       usher_store_errstr(st));
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 0, "a job was enqueued");
}

/* ---- the guard against private targets ------------------------------------ */

static void organizer_token(char out[USHER_TOKEN_MAX])
{
    long long org = testdb_scalar(st, "SELECT min(id) FROM organizers");
    int64_t id;

    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, org, 0, "test", out, &id), USHER_OK,
                 "%s", usher_store_errstr(st));
}

/* POST /v1/webhooks {url, events} to the running usher-api; returns the status. */
static long register_url(const char *token, const char *url, testhttp_resp *resp)
{
    char body[512];

    snprintf(body, sizeof(body), "{\"url\":\"%s\",\"events\":[\"registration.created\"]}", url);
    return testhttp(&api, &(testhttp_req){ "POST", "/v1/webhooks", token, body, NULL, NULL }, resp);
}

static void assert_refused(const char *token, const char *url, const char *message)
{
    testhttp_resp resp;
    json_t *error;

    cr_assert_eq(register_url(token, url, &resp), 422, "%s: %s", url, resp.body);
    error = json_object_get(resp.json, "error");
    cr_assert_str_eq(json_string_value(json_object_get(error, "code")), "invalid", "%s", resp.body);
    cr_assert_str_eq(json_string_value(json_object_get(error, "field")), "url", "%s", resp.body);
    cr_assert_str_eq(json_string_value(json_object_get(error, "message")), message, "%s", url);
    testhttp_resp_free(&resp);
}

Test(webhook, private_targets_are_refused_at_registration_unless_allowed, .timeout = 180,
     .fini = stop_left)
{
    static const char *const refused[][2] = {
        { "http://localhost/hooks", "url's host localhost is not allowed (loopback)" },
        { "http://api.localhost./", "url's host api.localhost. is not allowed (loopback)" },
        { "http://[::1]:8080/", "url's host [::1] is not allowed (loopback)" },
        { "http://[::ffff:127.0.0.1]/", "url's host [::ffff:127.0.0.1] is not allowed (loopback)" },
        { "http://[64:ff9b::7f00:1]/", "url's host [64:ff9b::7f00:1] is not allowed (loopback)" },
        { "http://2130706433/", "url's host 127.0.0.1 is not allowed (loopback)" },
        { "http://0x7f.1/", "url's host 127.0.0.1 is not allowed (loopback)" },
        { "https://user@10.1.2.3/", "url's host 10.1.2.3 is not allowed (private)" },
        { "http://[fd00::1]/", "url's host [fd00::1] is not allowed (private)" },
        { "http://169.254.169.254/latest/meta-data/",
          "url's host 169.254.169.254 is not allowed (link-local)" },
        { "http://[fe80::1%25eth0]/", "url's host [fe80::1] is not allowed (link-local)" },
        { "http://100.64.0.1/",
          "url's host 100.64.0.1 is not allowed (shared (carrier-grade NAT))" },
        { "http://0.0.0.0:9/", "url's host 0.0.0.0 is not allowed (unspecified)" },
        { "http://224.0.0.1/", "url's host 224.0.0.1 is not allowed (multicast)" },
    };
    char token[USHER_TOKEN_MAX], url[128];
    testhttp_resp resp;

    prepare("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    organizer_token(token);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hooks", ep.port);
    cr_assert_eq(setenv("USHER_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "false", 1), 0);
    testapi_start(&api, USHER_API_PATH, cfg.database_url, 1);
    assert_refused(token, url, "url's host 127.0.0.1 is not allowed (loopback)");
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        assert_refused(token, refused[i][0], refused[i][1]);
    assert_refused(token, "http://[::1/", "url is not a valid URL: Bad IPv6 address");
    /* A name is not resolved at registration (the worker checks what it connects to). */
    cr_assert_eq(register_url(token, "https://hooks.example.org/usher", &resp), 201, "%s",
                 resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(register_url(token, "https://93.184.216.34/usher", &resp), 201, "%s", resp.body);
    testhttp_resp_free(&resp);
    testapi_stop(&api);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM webhook_endpoints"), 2);

    cr_assert_eq(setenv("USHER_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "true", 1), 0);
    testapi_start(&api, USHER_API_PATH, cfg.database_url, 1);
    cr_assert_eq(register_url(token, url, &resp), 201, "%s", resp.body);
    testhttp_resp_free(&resp);
    testapi_stop(&api);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM webhook_endpoints"
                                   " WHERE url LIKE 'http://127.0.0.1:%'"),
                 1);
    pthread_mutex_lock(&ep.lock);
    cr_assert_eq(ep.requests, 0, "registration sent a request to the endpoint");
    pthread_mutex_unlock(&ep.lock);
}

static bool jobs_dead(void *arg)
{
    return testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'dead'") ==
           *(const int *)arg;
}

Test(webhook, deliveries_to_loopback_in_any_spelling_fail_for_good_and_never_arrive, .timeout = 120,
     .fini = stop_left)
{
    /* Rows written directly, as if registered before the guard or resolved differently then. */
    static const char *const hosts[] = { "127.0.0.1", "2130706433", "[::ffff:127.0.0.1]",
                                         "localhost" };
    static const char *const errors[] = {
        "target address 127.0.0.1 is not allowed (loopback)",
        "target address 127.0.0.1 is not allowed (loopback)",
        "target address ::ffff:127.0.0.1 is not allowed (loopback)",
        "target address % is not allowed (loopback)", /* 127.0.0.1 or ::1: the last tried */
    };
    int n = sizeof(hosts) / sizeof(hosts[0]);
    int64_t jobs[sizeof(hosts) / sizeof(hosts[0])];
    char sql[512];
    pid_t pid;

    prepare("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    for (int i = 0; i < n; i++)
        jobs[i] = enqueue_hook(add_endpoint_on(hosts[i]));
    cr_assert_eq(setenv("USHER_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "false", 1), 0);
    pid = start_worker();
    cr_assert(testproc_wait_for(jobs_dead, &n, 60000), "the refused jobs did not die");
    stop_worker(pid);
    pthread_mutex_lock(&ep.lock);
    cr_assert_eq(ep.requests, 0, "a refused delivery reached the endpoint");
    pthread_mutex_unlock(&ep.lock);
    for (int i = 0; i < n; i++) {
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM usher_jobs WHERE id = %lld AND state = 'dead'"
                 " AND attempt = 1 AND jsonb_array_length(errors) = 1"
                 " AND errors->0->>'error' %s '%s'",
                 (long long)jobs[i], i == 3 ? "LIKE" : "=", errors[i]);
        cr_assert_eq(testdb_scalar(st, sql), 1, "%s: %s", hosts[i], sql);
    }
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"
                                   " WHERE errors->0->>'error' LIKE 'target address %'"
                                   " AND errors->0->>'error' NOT IN"
                                   " ('target address 127.0.0.1 is not allowed (loopback)',"
                                   " 'target address ::1 is not allowed (loopback)',"
                                   " 'target address ::ffff:127.0.0.1 is not allowed (loopback)')"),
                 0);
    cr_assert_eq(testdb_scalar(st,
                               "SELECT count(*) FROM webhook_deliveries WHERE status_code IS"
                               " NULL AND error LIKE 'target address % is not allowed (loopback)'"),
                 n, "every refused attempt is in the delivery log");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM webhook_deliveries"), n);
}

Test(webhook, redirects_are_not_followed_even_to_allowed_targets, .timeout = 120, .fini = stop_left)
{
    char reply[256];
    int dead = 1;
    pid_t pid;

    prepare("");
    /* The receiver redirects to itself, another path: following it would be a second request. */
    snprintf(reply, sizeof(reply),
             "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/elsewhere\r\n"
             "Content-Length: 0\r\nConnection: close\r\n\r\n",
             ep.port);
    ep.reply = reply;
    enqueue_hook(add_endpoint());
    pid = start_worker();
    cr_assert(testproc_wait_for(jobs_dead, &dead, 60000), "the redirected job did not die");
    stop_worker(pid);
    pthread_mutex_lock(&ep.lock);
    cr_assert_eq(ep.requests, 3, "one request per attempt");
    cr_assert_eq(ep.strays, 0, "a redirect was followed");
    pthread_mutex_unlock(&ep.lock);
    cr_assert_eq(
        testdb_scalar(st, "SELECT count(*) FROM webhook_deliveries WHERE status_code = 302"), 3);
}
