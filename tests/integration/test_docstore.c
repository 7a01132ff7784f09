/*
 * The document store in PostgreSQL (platform/docstore.h, migration 0013),
 * on the stack's real database: round trips across chunk boundaries and
 * past 20 MB, idempotent and concurrent puts (one stored copy), puts inside
 * a caller's transaction, the directory store behind the same interface;
 * and across processes, two usher-api with different document directories
 * on one database (an upload on one is downloaded from the other, with
 * ETag, If-None-Match and a Range across a chunk boundary), the same with a
 * shared directory store, a client that leaves mid-stream, and the time to
 * put and stream 20 MB with each store (printed as JSON lines).
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api_content_support.h"
#include "docstore.h"
#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"

TESTDB_SUITE(docstore, "usher_test_docstore");

#define CHUNK   USHER_DOCSTORE_CHUNK_BYTES
#define BIG     (20 * 1024 * 1024 + 12345) /* past 20 MB, not a whole number of chunks */
#define WRITERS 8

/* Each test starts with an empty store (the tests share one database). */
static void empty_store(void)
{
    testdb_exec(st, "TRUNCATE document_blobs, document_chunks");
}

static unsigned char *random_bytes(size_t n)
{
    unsigned char *data = malloc(n > 0 ? n : 1);

    cr_assert_not_null(data);
    cr_assert_geq(sodium_init(), 0);
    randombytes_buf(data, n);
    return data;
}

/* testdb_scalar of a statement built with printf. */
static long long scalar_for(const char *format, ...) __attribute__((format(printf, 1, 2)));

static long long scalar_for(const char *format, ...)
{
    char sql[512];
    va_list ap;

    va_start(ap, format);
    vsnprintf(sql, sizeof(sql), format, ap);
    va_end(ap);
    return testdb_scalar(st, sql);
}

static long long blobs(const char *sha256)
{
    return scalar_for("SELECT count(*) FROM document_blobs WHERE sha256 = '%s'", sha256);
}

static long long chunks(const char *sha256)
{
    return scalar_for("SELECT count(*) FROM document_chunks WHERE sha256 = '%s'", sha256);
}

/* The stored chunks: numbered 0..n-1, each CHUNK bytes but the last, adding up to size. */
static void assert_chunked(const usher_docstore_ref *ref)
{
    long long n = (long long)((ref->size + CHUNK - 1) / CHUNK);

    cr_assert_eq(blobs(ref->sha256), 1);
    cr_assert_eq(chunks(ref->sha256), n, "%zu bytes", ref->size);
    cr_assert_eq(scalar_for("SELECT coalesce(sum(length(data)), 0) FROM document_chunks"
                            " WHERE sha256 = '%s'",
                            ref->sha256),
                 (long long)ref->size);
    cr_assert_eq(scalar_for("SELECT count(*) FROM document_chunks WHERE sha256 = '%s'"
                            " AND length(data) <> 262144",
                            ref->sha256),
                 ref->size % CHUNK != 0 ? 1 : 0);
    cr_assert_eq(scalar_for("SELECT coalesce(max(seq), -1) FROM document_chunks"
                            " WHERE sha256 = '%s'",
                            ref->sha256),
                 n - 1);
}

/* Reads len bytes at offset back through the store and compares them with data. */
static void assert_reads(const usher_config *c, const char *sha256, const unsigned char *data,
                         uint64_t offset, size_t len)
{
    unsigned char *got = malloc(len > 0 ? len : 1);
    char err[256] = "";

    cr_assert_not_null(got);
    cr_assert_eq(usher_docstore_read(c, st, sha256, offset, len, got, err, sizeof(err)), USHER_OK,
                 "offset %llu, %zu bytes: %s", (unsigned long long)offset, len, err);
    cr_assert(memcmp(got, data + offset, len) == 0, "bytes differ at offset %llu (%zu bytes)",
              (unsigned long long)offset, len);
    free(got);
}

Test(docstore, documents_round_trip_across_chunk_boundaries)
{
    const size_t sizes[] = { 0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 7 };
    unsigned char *data = random_bytes(3 * CHUNK + 7);
    char err[256] = "";

    empty_store();
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        usher_docstore_ref ref;
        size_t n = sizes[i];

        data[0] ^= 1; /* each size its own content */
        cr_assert_eq(usher_docstore_put_bytes(&cfg, st, data, n, &ref, err, sizeof(err)), USHER_OK,
                     "%s", err);
        cr_assert_eq(ref.size, n);
        assert_chunked(&ref);
        assert_reads(&cfg, ref.sha256, data, 0, n);
        if (n > CHUNK + 3) { /* reads that straddle a boundary, and end on one */
            assert_reads(&cfg, ref.sha256, data, CHUNK - 3, 6);
            assert_reads(&cfg, ref.sha256, data, CHUNK, n - CHUNK);
            assert_reads(&cfg, ref.sha256, data, 1, CHUNK - 1);
        }
    }
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM document_blobs"), 7);
    free(data);
}

Test(docstore, a_document_past_20_mb_is_81_chunks_and_reads_back_byte_for_byte, .timeout = 120)
{
    unsigned char *data = random_bytes(BIG);
    usher_docstore_ref ref;
    char err[256] = "";

    empty_store();
    cr_assert_eq(usher_docstore_put_bytes(&cfg, st, data, BIG, &ref, err, sizeof(err)), USHER_OK,
                 "%s", err);
    cr_assert_eq(chunks(ref.sha256), 81);
    assert_chunked(&ref);
    assert_reads(&cfg, ref.sha256, data, 0, BIG);
    assert_reads(&cfg, ref.sha256, data, 80 * (uint64_t)CHUNK - 1, 2);
    assert_reads(&cfg, ref.sha256, data, BIG - 1, 1);
    free(data);
}

Test(docstore, a_document_in_pieces_is_named_and_stored_as_the_whole)
{
    unsigned char *data = random_bytes(2 * CHUNK + 100);
    /* Pieces that cut chunks anywhere, an empty one among them. */
    struct iovec parts[] = { { data, 10 },
                             { data + 10, 0 },
                             { data + 10, CHUNK },
                             { data + 10 + CHUNK, 3 },
                             { data + 13 + CHUNK, CHUNK + 87 } };
    usher_docstore_ref whole, pieces;
    char err[256] = "";

    empty_store();
    cr_assert_eq(usher_docstore_put(&cfg, st, parts, 5, &pieces, err, sizeof(err)), USHER_OK, "%s",
                 err);
    assert_chunked(&pieces);
    assert_reads(&cfg, pieces.sha256, data, 0, 2 * CHUNK + 100);
    cr_assert_eq(
        usher_docstore_put_bytes(&cfg, st, data, 2 * CHUNK + 100, &whole, err, sizeof(err)),
        USHER_OK, "%s", err);
    cr_assert_str_eq(whole.sha256, pieces.sha256);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM document_blobs"), 1);
    free(data);
}

Test(docstore, a_repeated_put_writes_nothing)
{
    unsigned char *data = random_bytes(CHUNK + 5);
    usher_docstore_ref a, b;
    char err[256] = "";
    long long xmin;

    empty_store();
    cr_assert_eq(usher_docstore_put_bytes(&cfg, st, data, CHUNK + 5, &a, err, sizeof(err)),
                 USHER_OK, "%s", err);
    xmin =
        scalar_for("SELECT xmin::text::bigint FROM document_blobs WHERE sha256 = '%s'", a.sha256);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(usher_docstore_put_bytes(&cfg, st, data, CHUNK + 5, &b, err, sizeof(err)),
                     USHER_OK, "%s", err);
        cr_assert_str_eq(a.sha256, b.sha256);
        cr_assert_eq(b.size, CHUNK + 5);
    }
    cr_assert_eq(blobs(a.sha256), 1);
    cr_assert_eq(chunks(a.sha256), 2);
    /* The same row versions: the first put's transaction wrote them all, no later one. */
    cr_assert_eq(
        scalar_for("SELECT xmin::text::bigint FROM document_blobs WHERE sha256 = '%s'", a.sha256),
        xmin);
    cr_assert_eq(scalar_for("SELECT count(*) FROM document_chunks WHERE sha256 = '%s'"
                            " AND xmin::text::bigint = (SELECT xmin::text::bigint"
                            "  FROM document_blobs WHERE sha256 = document_chunks.sha256)",
                            a.sha256),
                 2);
    free(data);
}

/* A child: its own connection, waits at the gate, puts the document, exits 0 if the name is right.
 */
static void put_at_gate(int ready, int gate, const unsigned char *data, size_t len,
                        const char *want)
{
    usher_store *mine = NULL;
    usher_docstore_ref ref;
    char err[256], byte = 1;

    if (usher_store_open(&cfg, &mine, err, sizeof(err)) != USHER_OK) {
        fprintf(stderr, "connect: %s\n", err);
        _exit(2);
    }
    if (write(ready, &byte, 1) != 1 || read(gate, &byte, 1) != 0) /* the parent closes it */
        _exit(3);
    if (usher_docstore_put_bytes(&cfg, mine, data, len, &ref, err, sizeof(err)) != USHER_OK) {
        fprintf(stderr, "put: %s\n", err);
        _exit(4);
    }
    usher_store_free(mine);
    _exit(strcmp(ref.sha256, want) == 0 ? 0 : 5);
}

Test(docstore, concurrent_puts_of_the_same_bytes_store_one_copy, .timeout = 120)
{
    size_t len = 12 * CHUNK + 1;
    unsigned char *data = random_bytes(len);
    struct iovec whole = { data, len };
    usher_docstore_ref ref;
    pid_t pids[WRITERS];
    char err[256] = "";
    int gate[2], ready[2];

    empty_store();
    cr_assert_eq(usher_docstore_name(&whole, 1, &ref, err, sizeof(err)), USHER_OK);
    cr_assert_eq(pipe(gate), 0);
    cr_assert_eq(pipe(ready), 0);
    for (int i = 0; i < WRITERS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) { /* no cr_assert here: the runner talks to the parent only */
            close(gate[1]);
            close(ready[0]);
            put_at_gate(ready[1], gate[0], data, len, ref.sha256);
        }
        cr_assert_geq(pids[i], 0);
    }
    close(gate[0]);
    close(ready[1]);
    /* Every writer connected and waiting: let them go together. */
    for (int i = 0; i < WRITERS; i++) {
        char byte;

        cr_assert_eq(read(ready[0], &byte, 1), 1, "writer %d did not connect", i);
    }
    close(ready[0]);
    close(gate[1]);
    for (int i = 0; i < WRITERS; i++) {
        int status;

        cr_assert_eq(waitpid(pids[i], &status, 0), pids[i]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d: status %d", i, status);
    }
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM document_blobs"), 1);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM document_chunks"), 13);
    assert_chunked(&ref);
    assert_reads(&cfg, ref.sha256, data, 0, len);
    free(data);
}

Test(docstore, a_put_in_the_callers_transaction_commits_or_rolls_back_with_it)
{
    unsigned char *data = random_bytes(CHUNK + 1);
    usher_docstore_ref ref;
    char err[256] = "";

    empty_store();
    testdb_exec(st, "BEGIN");
    cr_assert_eq(usher_docstore_put_bytes(&cfg, st, data, CHUNK + 1, &ref, err, sizeof(err)),
                 USHER_OK, "%s", err);
    cr_assert_eq(PQtransactionStatus(usher_store_conn(st)), PQTRANS_INTRANS);
    testdb_exec(st, "ROLLBACK");
    cr_assert_eq(blobs(ref.sha256), 0);
    cr_assert_eq(chunks(ref.sha256), 0);
    cr_assert_eq(usher_docstore_read(&cfg, st, ref.sha256, 0, 1, data, err, sizeof(err)),
                 USHER_ERR_NOT_FOUND);
    testdb_exec(st, "BEGIN");
    cr_assert_eq(usher_docstore_put_bytes(&cfg, st, data, CHUNK + 1, &ref, err, sizeof(err)),
                 USHER_OK, "%s", err);
    testdb_exec(st, "COMMIT");
    assert_chunked(&ref);
    free(data);
}

Test(docstore, missing_documents_and_reads_past_the_end_are_not_found)
{
    unsigned char *data = random_bytes(100), buf[200];
    usher_docstore_ref ref;
    char err[256] = "";

    empty_store();
    cr_assert_eq(usher_docstore_put_bytes(&cfg, st, data, 100, &ref, err, sizeof(err)), USHER_OK);
    cr_assert_eq(usher_docstore_read(&cfg, st, ref.sha256, 50, 51, buf, err, sizeof(err)),
                 USHER_ERR_NOT_FOUND);
    cr_assert(strstr(err, "has 100 bytes") != NULL, "%s", err);
    char first = ref.sha256[0];

    ref.sha256[0] = first == 'a' ? 'b' : 'a';
    cr_assert_eq(usher_docstore_read(&cfg, st, ref.sha256, 0, 1, buf, err, sizeof(err)),
                 USHER_ERR_NOT_FOUND);
    cr_assert_eq(usher_docstore_read(&cfg, st, "../../etc/passwd", 0, 1, buf, err, sizeof(err)),
                 USHER_ERR_INVALID);
    /* A chunk lost from under its blob is an error, never short bytes. */
    ref.sha256[0] = first;
    testdb_exec(st, "DELETE FROM document_chunks");
    cr_assert_eq(usher_docstore_read(&cfg, st, ref.sha256, 0, 100, buf, err, sizeof(err)),
                 USHER_ERR_NOT_FOUND);
    cr_assert(strstr(err, "chunk 0 is missing") != NULL, "%s", err);
    free(data);
}

Test(docstore, the_directory_store_answers_the_same_interface_and_writes_no_rows)
{
    char root[64] = "/tmp/usher-docstore-XXXXXX", path[512], err[256] = "", cmd[128];
    unsigned char *data = random_bytes(CHUNK + 9);
    usher_docstore_ref ref, again;
    struct stat sb;

    empty_store();
    cr_assert_not_null(mkdtemp(root));
    free(cfg.document_dir);
    cfg.document_dir = strdup(root);
    cfg.document_store = USHER_DOCUMENTS_DIRECTORY;
    cr_assert_eq(usher_docstore_put_bytes(&cfg, NULL, data, CHUNK + 9, &ref, err, sizeof(err)),
                 USHER_OK, "%s", err);
    cr_assert_eq(usher_docstore_put_bytes(&cfg, NULL, data, CHUNK + 9, &again, err, sizeof(err)),
                 USHER_OK, "%s", err);
    cr_assert_str_eq(ref.sha256, again.sha256);
    cr_assert_eq(usher_docstore_path(root, ref.sha256, path, sizeof(path)), USHER_OK);
    cr_assert(stat(path, &sb) == 0 && sb.st_size == CHUNK + 9, "%s", path);
    assert_reads(&cfg, ref.sha256, data, 0, CHUNK + 9);
    assert_reads(&cfg, ref.sha256, data, CHUNK - 1, 3);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM document_blobs"), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    cr_assert_eq(system(cmd), 0);
    free(data);
}

/* Two usher-api on the stack's database, each with a document directory of its own. */
typedef struct two_apis {
    content_world a, b; /* b shares a's organizers, tokens and Redis; only its api differs */
    char dir_a[64], dir_b[64];
} two_apis;

static void start_two(two_apis *t, const char *store, bool shared_dir)
{
    snprintf(t->dir_a, sizeof(t->dir_a), "/tmp/usher-docs-a-XXXXXX");
    cr_assert_not_null(mkdtemp(t->dir_a));
    snprintf(t->dir_b, sizeof(t->dir_b), "/tmp/usher-docs-b-XXXXXX");
    cr_assert_not_null(mkdtemp(t->dir_b));
    if (shared_dir)
        memcpy(t->dir_b, t->dir_a, sizeof(t->dir_b));
    cr_assert_eq(setenv("USHER_DOCUMENTS_STORE", store, 1), 0);
    cr_assert_eq(setenv("USHER_DOCUMENT_DIR", t->dir_a, 1), 0);
    content_start(&t->a, st, &cfg, NULL, 1);
    t->b = t->a;
    cr_assert_eq(setenv("USHER_DOCUMENT_DIR", t->dir_b, 1), 0);
    testapi_start(&t->b.api, USHER_API_PATH, cfg.database_url, 1);
}

static two_apis apis; /* what a test started, stopped by stop_apis however it ends */

/* A test's .fini: stops both usher-api (each must exit cleanly) and Redis, removes the dirs. */
static void stop_apis(void)
{
    char cmd[160];

    if (apis.b.api.pid > 0)
        testapi_stop(&apis.b.api);
    apis.b.api.pid = 0;
    if (apis.a.api.pid > 0)
        testapi_stop(&apis.a.api);
    apis.a.api.pid = 0;
    if (apis.a.redis_pid > 0)
        testproc_kill(apis.a.redis_pid);
    apis.a.redis_pid = 0;
    if (apis.dir_a[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", apis.dir_a, apis.dir_b);
        cr_assert_eq(system(cmd), 0);
    }
    unsetenv("USHER_DOCUMENTS_STORE");
    unsetenv("USHER_DOCUMENT_DIR");
}

/* Entries in dir (0 when it does not exist). */
static int entries(const char *dir)
{
    char cmd[128], line[32] = "";
    FILE *p;

    snprintf(cmd, sizeof(cmd), "find '%s' -mindepth 1 2>/dev/null | wc -l", dir);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    cr_assert_not_null(fgets(line, sizeof(line), p));
    pclose(p);
    return atoi(line);
}

/* GET path from api with one extra header; the status, the body in *out. */
static long get(content_world *w, const char *path, const char *header, testhttp_resp *out)
{
    return content_call(w, "GET", path, w->admin, NULL, header, out);
}

/* The whole document, a 304 for its ETag and Ranges within, across and at the end of chunks. */
static void assert_served(content_world *w, long long doc, const unsigned char *data, size_t len)
{
    unsigned char sha[crypto_hash_sha256_BYTES];
    char path[64], etag[80], header[160], hex[65];
    const struct {
        size_t first, last;
    } ranges[] = { { CHUNK - 100, CHUNK + 99 },  /* across the first boundary */
                   { 100, 3 * CHUNK + 5 },       /* across three */
                   { 2 * CHUNK, 3 * CHUNK - 1 }, /* exactly one chunk */
                   { len - 1, len - 1 } };       /* the last byte */
    testhttp_resp resp;

    crypto_hash_sha256(sha, data, len);
    sodium_bin2hex(hex, sizeof(hex), sha, sizeof(sha));
    snprintf(etag, sizeof(etag), "\"%s\"", hex);
    snprintf(path, sizeof(path), "/v1/content/%lld", doc);
    cr_assert_eq(get(w, path, NULL, &resp), 200);
    cr_assert_eq(resp.len, len);
    cr_assert(memcmp(resp.body, data, len) == 0, "the download differs from the upload");
    cr_assert_str_eq(content_header(&resp, "ETag"), etag);
    testhttp_resp_free(&resp);
    snprintf(header, sizeof(header), "If-None-Match: %s", etag);
    cr_assert_eq(get(w, path, header, &resp), 304);
    cr_assert_eq(resp.len, 0);
    testhttp_resp_free(&resp);
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        size_t first = ranges[i].first, last = ranges[i].last;
        char want[96];

        snprintf(header, sizeof(header), "Range: bytes=%zu-%zu", first, last);
        cr_assert_eq(get(w, path, header, &resp), 206, "%s", header);
        cr_assert_eq(resp.len, last - first + 1, "%s", header);
        cr_assert(memcmp(resp.body, data + first, last - first + 1) == 0, "%s: bytes differ",
                  header);
        snprintf(want, sizeof(want), "bytes %zu-%zu/%zu", first, last, len);
        cr_assert_str_eq(content_header(&resp, "Content-Range"), want);
        cr_assert_str_eq(content_header(&resp, "ETag"), etag);
        testhttp_resp_free(&resp);
    }
}

static long long upload(content_world *w, const unsigned char *data, size_t len)
{
    long long session = content_session(w, st, w->event_a);

    return content_upload(w, w->event_a, session, "deck.pdf", "application/pdf", data, len,
                          w->org_a, 201);
}

Test(docstore, an_upload_on_one_api_downloads_from_another_with_its_own_directory, .timeout = 180,
     .fini = stop_apis)
{
    size_t small = 5 * CHUNK + 1000, big = 20 * 1024 * 1024; /* api.upload_max_bytes */
    unsigned char *a = random_bytes(small), *b = random_bytes(big);
    long long doc_a, doc_b;

    empty_store();
    start_two(&apis, "database", false);
    doc_a = upload(&apis.a, a, small);
    doc_b = upload(&apis.b, b, big); /* and the other way round */
    assert_served(&apis.b, doc_a, a, small);
    assert_served(&apis.a, doc_b, b, big);
    assert_served(&apis.a, doc_a, a, small);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM document_blobs"), 2);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM document_chunks"), 6 + 80);
    cr_assert_eq(entries(apis.dir_a) + entries(apis.dir_b), 0, "a document went to a directory");
    free(a);
    free(b);
}

Test(docstore, with_the_directory_store_two_apis_share_a_volume, .timeout = 120, .fini = stop_apis)
{
    size_t len = 4 * CHUNK + 3;
    unsigned char *data = random_bytes(len);
    long long doc;

    empty_store();
    start_two(&apis, "directory", true);
    doc = upload(&apis.a, data, len);
    assert_served(&apis.b, doc, data, len);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM document_blobs"), 0);
    cr_assert_eq(entries(apis.dir_a), 3, "ab/, ab/cd/ and the file");
    free(data);
}

/* Takes limit bytes of a download, then hangs up. */
typedef struct partial {
    size_t got, limit;
} partial;

static size_t take_some(char *p, size_t size, size_t n, void *arg)
{
    partial *part = arg;

    (void)p;
    part->got += size * n;
    return part->got >= part->limit ? 0 : size * n; /* 0: curl aborts the transfer */
}

static void hang_up_during(content_world *w, long long doc, size_t limit)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    partial part = { .limit = limit };
    char url[128], auth[160];
    CURLcode rc;

    cr_assert_not_null(curl);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/content/%lld", w->api.port, doc);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", w->admin);
    headers = curl_slist_append(headers, auth);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, take_some);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &part);
    curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 16384L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    rc = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    cr_assert_eq(rc, CURLE_WRITE_ERROR, "%s", curl_easy_strerror(rc));
    cr_assert_geq(part.got, limit);
}

Test(docstore, a_client_that_leaves_mid_stream_costs_nothing, .timeout = 180, .fini = stop_apis)
{
    size_t len = 8 * 1024 * 1024;
    unsigned char *data = random_bytes(len);
    long long doc;

    empty_store();
    start_two(&apis, "database", false);
    doc = content_document(&apis.a, st, "content", apis.a.event_a, 0, data, len);
    for (int i = 0; i < 5; i++)
        hang_up_during(&apis.a, doc, (size_t)(i + 1) * 300000);
    /* The server is whole: it serves the document in full, and stops cleanly (stop_apis). */
    assert_served(&apis.a, doc, data, len);
    cr_assert_eq(content_metric(&apis.a, "usher_http_requests_in_flight "), 0);
    free(data);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double median3(double a, double b, double c)
{
    return a > b ? (b > c ? b : (a > c ? c : a)) : (a > c ? a : (b > c ? c : b));
}

/* Puts 20 MiB three times (new bytes each time) and streams it three times; prints the medians. */
static void measure(const char *store, unsigned char *data, size_t len)
{
    double put[3], fetch[3];
    char path[64], err[256] = "";
    usher_docstore_ref ref;
    testhttp_resp resp;
    long long doc;

    memset(&apis, 0, sizeof(apis));
    start_two(&apis, store, true);
    free(cfg.document_dir);
    cfg.document_dir = strdup(apis.dir_a);
    cfg.document_store =
        strcmp(store, "database") == 0 ? USHER_DOCUMENTS_DATABASE : USHER_DOCUMENTS_DIRECTORY;
    for (int i = 0; i < 3; i++) {
        double t0 = now_s();

        data[i] ^= 0x5a;
        cr_assert_eq(usher_docstore_put_bytes(&cfg, st, data, len, &ref, err, sizeof(err)),
                     USHER_OK, "%s", err);
        put[i] = now_s() - t0;
    }
    doc = content_document(&apis.a, st, "content", apis.a.event_a, 0, data, len);
    snprintf(path, sizeof(path), "/v1/content/%lld", doc);
    for (int i = 0; i < 3; i++) {
        double t0 = now_s();

        cr_assert_eq(get(&apis.b, path, NULL, &resp), 200);
        fetch[i] = now_s() - t0;
        cr_assert_eq(resp.len, len);
        cr_assert(memcmp(resp.body, data, len) == 0, "the %s store streamed other bytes", store);
        testhttp_resp_free(&resp);
    }
    printf("{\"bench\":\"docstore_20mib\",\"store\":\"%s\",\"bytes\":%zu,\"put_median_s\":%.3f,"
           "\"stream_median_s\":%.3f}\n",
           store, len, median3(put[0], put[1], put[2]), median3(fetch[0], fetch[1], fetch[2]));
    fflush(stdout);
    stop_apis();
    memset(&apis, 0, sizeof(apis));
}

Test(docstore, twenty_mib_put_and_streamed_from_each_store, .timeout = 300, .fini = stop_apis)
{
    size_t len = 20 * 1024 * 1024;
    unsigned char *data = random_bytes(len);

    empty_store();
    measure("database", data, len);
    measure("directory", data, len);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM document_blobs"), 3);
    free(data);
}
