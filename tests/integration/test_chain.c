/*
 * The registration confirmation chain through a real usher-worker with the
 * real handlers: pdf.ticket renders and stores the ticket and enqueues
 * email.send, which mails it through the SMTP sink. The test reads the mail
 * from the sink's Maildir, decodes the attached PDF, reads its text with
 * pdftotext and its QR code with zbarimg, and verifies the signed code.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "docstore.h"
#include "enqueue.h"
#include "seed.h"
#include "testdb.h"
#include "testjob.h"
#include "testproc.h"
#include "ticket.h"
#include "xapian_wrap.h"

__attribute__((constructor)) static void use_chain_config(void)
{
    setenv("USHER_CONFIG", CHAIN_TEST_CONF, 1);
}

TESTDB_SUITE(chain, "usher_test_chain");

static char workdir[64];

static const char *maildir(void)
{
    const char *dir = getenv("USHER_MAILDIR");

    cr_assert(dir != NULL && dir[0] != '\0', "USHER_MAILDIR is not set (scripts/stack.sh env)");
    return dir;
}

static pid_t start_worker(void)
{
    return testproc_start_worker(USHER_WORKER_PATH, CHAIN_TEST_CONF, "tests", cfg.database_url,
                                 "chain", workdir);
}

/* Reads a whole file (NUL-terminated); NULL if it cannot. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    long size;

    if (f != NULL && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)size + 1)) != NULL) {
        *len = fread(data, 1, (size_t)size, f);
        data[*len] = '\0';
    }
    if (f != NULL)
        fclose(f);
    return data;
}

typedef struct mail_search {
    const char *needle, *to;
    char path[1024];
} mail_search;

/*
 * True when a message in the Maildir's new/ contains the needle and the
 * recipient (its path kept). Both: a Message-ID alone may be an older
 * run's, since other tests (test_messages) leave their mails in the sink
 * and job ids start again in a fresh database.
 */
static bool find_mail(void *arg)
{
    mail_search *m = arg;
    char dir[512];
    DIR *d;
    struct dirent *e;
    bool found = false;

    snprintf(dir, sizeof(dir), "%s/new", maildir());
    d = opendir(dir);
    while (d != NULL && !found && (e = readdir(d)) != NULL) {
        size_t len;
        char *text;

        if (e->d_name[0] == '.')
            continue;
        snprintf(m->path, sizeof(m->path), "%s/%s", dir, e->d_name);
        text = slurp(m->path, &len);
        found = text != NULL && strstr(text, m->needle) != NULL && strstr(text, m->to) != NULL;
        free(text);
    }
    if (d != NULL)
        closedir(d);
    return found;
}

/* Drops the CRs, since the sink's Maildir may store lines with LF alone. */
static void strip_cr(char *text)
{
    char *out = text;

    for (; *text != '\0'; text++) {
        if (*text != '\r')
            *out++ = *text;
    }
    *out = '\0';
}

/* Decodes the base64 body of the mail's application/pdf part into path. */
static void save_pdf_attachment(char *mail, const char *path)
{
    const char *part, *body, *end;
    size_t cap, len = 0;
    unsigned char *pdf;
    FILE *f;

    strip_cr(mail);
    part = strstr(mail, "Content-Type: application/pdf");
    body = part != NULL ? strstr(part, "\n\n") : NULL;
    end = body != NULL ? strstr(body + 2, "\n--") : NULL;
    cr_assert(body != NULL && end != NULL, "no PDF attachment in the mail");
    cap = (size_t)(end - body);
    pdf = malloc(cap);
    cr_assert_not_null(pdf);
    cr_assert_eq(sodium_base642bin(pdf, cap, body + 2, (size_t)(end - body - 2), "\n", &len, NULL,
                                   sodium_base64_VARIANT_ORIGINAL),
                 0, "the attachment is not base64");
    cr_assert_eq(memcmp(pdf, "%PDF-", 5), 0, "the attachment is not a PDF");
    f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(pdf, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
    free(pdf);
}

/* The first line a shell command prints. */
static void run_line(const char *cmd, char *out, size_t len)
{
    FILE *p = popen(cmd, "r");

    cr_assert_not_null(p);
    if (fgets(out, (int)len, p) == NULL)
        out[0] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    pclose(p);
}

/* Copies the stored document sha256 of size bytes (read through the store) to path. */
static void save_document(const char *sha256, size_t size, const char *path)
{
    char err[256] = "";
    unsigned char *data = malloc(size > 0 ? size : 1);
    FILE *f = fopen(path, "wb");

    cr_assert(data != NULL && f != NULL);
    cr_assert_eq(usher_docstore_read(&cfg, st, sha256, 0, size, data, err, sizeof(err)), USHER_OK,
                 "%s", err);
    cr_assert_eq(fwrite(data, 1, size, f), size);
    cr_assert_eq(fclose(f), 0);
    free(data);
}

/*
 * The attached PDF is the ticket's document, byte for byte, and it came
 * from the database store ([documents] store's default): the ticket is one
 * blob of chunks there, and the worker's document directory was never made.
 */
static void assert_attachment_from_database(const char *pdf_path)
{
    unsigned char hash[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1], sql[256], dir[128];
    size_t len;
    char *pdf = slurp(pdf_path, &len);

    cr_assert_not_null(pdf);
    crypto_hash_sha256(hash, (unsigned char *)pdf, len);
    free(pdf);
    sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM documents d JOIN document_blobs b ON b.sha256 = d.sha256"
             " WHERE d.kind = 'ticket' AND d.sha256 = '%s' AND b.size = %zu",
             hex, len);
    cr_assert_eq(testdb_scalar(st, sql), 1, "the attachment is not the ticket in the database");
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM document_chunks WHERE sha256 = '%s'", hex);
    cr_assert_eq(testdb_scalar(st, sql), (long long)((len + 262143) / 262144));
    snprintf(dir, sizeof(dir), "%s/documents", workdir);
    cr_assert_eq(access(dir, F_OK), -1, "the worker wrote %s", dir);
}

/* No job left to run (dead ones do not count: the tests look at them). */
static bool jobs_done(void *arg)
{
    (void)arg;
    return testdb_scalar(st, "SELECT count(*) FROM usher_jobs"
                             " WHERE state IN ('available', 'running')") == 0;
}

Test(chain, a_registration_gets_its_ticket_by_mail_with_a_scannable_signed_code, .timeout = 300)
{
    usher_seed_result seed;
    usher_enqueued out;
    char payload[128], pdf_path[160], cmd[512], line[512], needle[128];
    unsigned char key[USHER_TICKET_KEY_BYTES];
    mail_search search = { .needle = needle, .to = "attendee3@example.org" };
    int64_t event, registration, id;
    size_t len;
    char *mail;
    pid_t pid;

    cr_assert_eq(usher_seed_demo(st, 3, &seed), USHER_OK, "%s", usher_store_errstr(st));
    id = (int64_t)testdb_scalar(st, "SELECT max(id) FROM registrations");
    snprintf(payload, sizeof(payload), "{\"registration_id\":%lld,\"then_email\":true}",
             (long long)id);
    cr_assert_eq(
        usher_enqueue(
            st, &(usher_enqueue_opts){ .queue = "pdf", .kind = "pdf.ticket", .payload = payload },
            &out),
        USHER_OK, "%s", usher_store_errstr(st));
    pid = start_worker();
    cr_assert(testproc_wait_for(jobs_done, NULL, 120000), "the chain did not finish (see %s)",
              workdir);
    testproc_stop_cleanly(pid);

    /* The mail's Message-ID is that of the email job, which followed the ticket job. */
    snprintf(needle, sizeof(needle), "Message-ID: <usher-job-%lld@", (long long)out.id + 1);
    cr_assert(testproc_wait_for(find_mail, &search, 30000), "no mail with %s", needle);
    mail = slurp(search.path, &len);
    cr_assert_not_null(mail);
    cr_assert(strstr(mail, "attendee3@example.org") != NULL, "not to the attendee");
    snprintf(pdf_path, sizeof(pdf_path), "%s/ticket.pdf", workdir);
    save_pdf_attachment(mail, pdf_path);
    free(mail);
    unlink(search.path);

    snprintf(cmd, sizeof(cmd), "pdftotext %s - 2>/dev/null | grep -c 'Usher Summit 2026'",
             pdf_path);
    run_line(cmd, line, sizeof(line));
    cr_assert_geq(atoi(line), 1, "the event name is not on the ticket");
    snprintf(cmd, sizeof(cmd),
             "pdftoppm -r 150 -png -singlefile %s %s/page 2>/dev/null &&"
             " zbarimg --raw -q %s/page.png 2>/dev/null",
             pdf_path, workdir, workdir);
    run_line(cmd, line, sizeof(line));
    cr_assert_eq(usher_ticket_key_from_hex(cfg.ticket_secret, key), USHER_OK);
    cr_assert_eq(usher_ticket_verify(key, line, &event, &registration), USHER_OK,
                 "the QR code '%s' is not a valid ticket code", line);
    cr_assert_eq(registration, id);
    cr_assert_eq(event, seed.event_id);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM documents WHERE kind = 'ticket'"), 1);
    assert_attachment_from_database(pdf_path);
}

Test(chain, an_inbox_notification_is_written_once, .timeout = 300)
{
    usher_seed_result seed;
    usher_enqueued out;
    char payload[160];
    pid_t pid;

    cr_assert_eq(usher_seed_demo(st, 1, &seed), USHER_OK, "%s", usher_store_errstr(st));
    snprintf(payload, sizeof(payload),
             "{\"registration_id\":%lld,\"title\":\"Doors open at 8:30\",\"body\":\"Hall 3\"}",
             (long long)testdb_scalar(st, "SELECT max(id) FROM registrations"));
    cr_assert_eq(usher_enqueue(st,
                               &(usher_enqueue_opts){ .queue = "notifications",
                                                      .kind = "notify.inbox",
                                                      .payload = payload },
                               &out),
                 USHER_OK);
    cr_assert_eq(usher_enqueue(st,
                               &(usher_enqueue_opts){ .queue = "notifications",
                                                      .kind = "notify.inbox",
                                                      .payload = "{\"registration_id\":999999,"
                                                                 "\"title\":\"x\"}" },
                               &out),
                 USHER_OK);
    pid = start_worker();
    cr_assert(testproc_wait_for(jobs_done, NULL, 120000), "the notifications did not finish");
    testproc_stop_cleanly(pid);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM notifications"
                                   " WHERE title = 'Doors open at 8:30'"),
                 1);
    /* An unknown registration is a permanent failure, straight to the dead-letter queue. */
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'dead'"
                                   " AND attempt = 1"),
                 1);
}

static void enqueue_inbox(int n)
{
    testjob_enqueue_inbox(st, testdb_scalar(st, "SELECT max(id) FROM registrations"), n);
}

/*
 * After PostgreSQL restarts, a child's connection is dead but looks alive
 * until used. The child must notice before it runs a job, not spend that
 * job's attempt on "server closed the connection unexpectedly".
 */
Test(chain, after_a_restart_children_spend_no_attempt_on_their_dead_connections, .timeout = 300)
{
    const char *restart = getenv("USHER_PG_RESTART");
    usher_seed_result seed;
    pid_t pid;

    if (restart == NULL || restart[0] == '\0')
        cr_skip_test("USHER_PG_RESTART is not set");
    cr_assert_eq(usher_seed_demo(st, 1, &seed), USHER_OK, "%s", usher_store_errstr(st));
    enqueue_inbox(40); /* enough that every child opens its connection */
    pid = start_worker();
    cr_assert(testproc_wait_for(jobs_done, NULL, 120000), "the first notifications did not finish");
    usher_store_free(st);
    cr_assert_eq(system(restart), 0, "%s failed", restart);
    st = testdb_store(&cfg);
    enqueue_inbox(40);
    cr_assert(testproc_wait_for(jobs_done, NULL, 120000), "the notifications did not finish");
    testproc_stop_cleanly(pid);
    cr_assert_eq(
        testdb_scalar(st, "SELECT count(*) FROM notifications WHERE title LIKE 'Notice %'"), 80);
    cr_assert_eq(testdb_scalar(st, "SELECT coalesce(sum(failed), 0) FROM usher_queue_stats"
                                   " WHERE queue = 'notifications'"),
                 0, "an attempt failed after the restart (see %s)", workdir);
}

static void enqueue_index(const char *type, long long id, bool remove)
{
    char payload[128];
    usher_enqueued out;

    snprintf(payload, sizeof(payload), "{\"type\":\"%s\",\"id\":%lld%s}", type, id,
             remove ? ",\"delete\":true" : "");
    cr_assert_eq(usher_enqueue(st,
                               &(usher_enqueue_opts){
                                   .queue = "index", .kind = "index.document", .payload = payload },
                               &out),
                 USHER_OK, "%s", usher_store_errstr(st));
}

/* Ids of the hits of query (type filter or NULL), as a count and the first id. */
static size_t search(const char *query, const char *type, int64_t *first)
{
    char dir[128], errbuf[256];
    usher_search *s = NULL;
    usher_search_hit hits[10];
    size_t n = 0, total = 0;

    snprintf(dir, sizeof(dir), "%s/search", workdir);
    cr_assert_eq(usher_search_open(dir, &s, errbuf, sizeof(errbuf)), USHER_OK, "%s", errbuf);
    cr_assert_eq(
        usher_search_query(s, query, type, 0, 0, 10, hits, &n, &total, errbuf, sizeof(errbuf)),
        USHER_OK, "%s", errbuf);
    usher_search_close(s);
    *first = n > 0 ? hits[0].id : 0;
    return n;
}

Test(chain, index_jobs_make_sessions_and_attendees_searchable_and_unsearchable, .timeout = 300)
{
    usher_seed_result seed;
    long long session, attendee;
    int64_t hit;
    pid_t pid;

    cr_assert_eq(usher_seed_demo(st, 1, &seed), USHER_OK, "%s", usher_store_errstr(st));
    session = testdb_scalar(st, "SELECT max(id) FROM sessions WHERE title LIKE 'Queues%'");
    attendee = testdb_scalar(st, "SELECT max(id) FROM registrations");
    /* The session's uploaded material: its file name joins the session's document. */
    {
        char sql[512];

        snprintf(sql, sizeof(sql),
                 "INSERT INTO documents (kind, event_id, session_id, filename, content_type,"
                 " sha256, size) SELECT 'content', event_id, id, 'zeppelin-handout.pdf',"
                 " 'application/pdf', repeat('a', 64), 1 FROM sessions WHERE id = %lld"
                 " RETURNING id",
                 session);
        cr_assert_gt(testdb_scalar(st, sql), 0);
    }
    enqueue_index("session", session, false);
    enqueue_index("attendee", attendee, false);
    pid = start_worker();
    cr_assert(testproc_wait_for(jobs_done, NULL, 120000), "indexing did not finish");
    cr_assert_eq(search("queues", "session", &hit), 1);
    cr_assert_eq(hit, session);
    cr_assert_eq(search("speaker:hopper", NULL, &hit), 1, "speakers are not indexed");
    cr_assert_eq(search("zeppelin", "session", &hit), 1, "the material's name is not indexed");
    cr_assert_eq(hit, session);
    cr_assert_eq(search("attendee1", "attendee", &hit), 1, "the attendee's email is not indexed");
    cr_assert_eq(hit, attendee);
    cr_assert_eq(search("attendee1", "session,event", &hit), 0,
                 "attendees leak into public search");
    enqueue_index("session", session, true);
    cr_assert(testproc_wait_for(jobs_done, NULL, 120000), "the delete did not finish");
    testproc_stop_cleanly(pid);
    cr_assert_eq(search("queues", "session", &hit), 0, "the deleted session is still found");
}

Test(chain, a_badge_job_stores_one_sheet_per_eight_attendees, .timeout = 300)
{
    usher_seed_result seed;
    usher_enqueued out;
    char payload[64], sql[128], cmd[512], line[256], pdf_path[160];
    PGresult *res;
    pid_t pid;

    cr_assert_eq(usher_seed_demo(st, 11, &seed), USHER_OK, "%s", usher_store_errstr(st));
    snprintf(payload, sizeof(payload), "{\"event_id\":%lld}", (long long)seed.event_id);
    cr_assert_eq(
        usher_enqueue(
            st, &(usher_enqueue_opts){ .queue = "pdf", .kind = "pdf.badge", .payload = payload },
            &out),
        USHER_OK, "%s", usher_store_errstr(st));
    pid = start_worker();
    cr_assert(testproc_wait_for(jobs_done, NULL, 120000), "the badge job did not finish");
    testproc_stop_cleanly(pid);
    snprintf(sql, sizeof(sql),
             "SELECT sha256, size FROM documents WHERE kind = 'badges' AND job_id = %lld",
             (long long)out.id);
    cr_assert_eq(usher_store_exec(st, sql, 0, NULL, &res), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_eq(PQntuples(res), 1, "no badges document");
    snprintf(pdf_path, sizeof(pdf_path), "%s/badges.pdf", workdir);
    save_document(PQgetvalue(res, 0, 0), (size_t)atoll(PQgetvalue(res, 0, 1)), pdf_path);
    snprintf(cmd, sizeof(cmd), "pdfinfo %s 2>/dev/null | grep '^Pages:'", pdf_path);
    PQclear(res);
    run_line(cmd, line, sizeof(line));
    cr_assert_str_eq(line, "Pages:           2", "11 badges at 8 a sheet: '%s'", line);
}
