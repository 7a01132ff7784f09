/*
 * The organizer's lifecycle routes whose work is done by jobs (issue 15),
 * over real HTTP against a real usher-api and a real usher-worker: a
 * resent confirmation is a second mail with the same ticket attached and
 * a Message-ID of its own; a badge request (202 + job) becomes a PDF
 * sheet that the organizer downloads.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"
#include "token.h"

TESTDB_SUITE(lifecycle_jobs, "usher_test_api_lifecycle_jobs");

#define DEADLINE_MS 60000

static testapi server;
static pid_t worker;
static char workdir[64];
static long long org, other_org, event, ticket_type;
static char organizer[USHER_TOKEN_MAX], other[USHER_TOKEN_MAX], scanner[USHER_TOKEN_MAX];

static long long scalar(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long scalar(const char *fmt, ...)
{
    char sql[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return testdb_scalar(st, sql);
}

static void start(void)
{
    int64_t id;

    org = testdb_organizer(st, "Org A");
    other_org = testdb_organizer(st, "Org B");
    testdb_event e = testdb_event_new(st, org, "Summit", 1, 100);
    event = e.id;
    ticket_type = e.ticket_type;
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, org, 0, "t", organizer, &id),
                 USHER_OK);
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, other_org, 0, "t", other, &id),
                 USHER_OK);
    cr_assert_eq(usher_token_create(st, USHER_ROLE_SCANNER, org, 0, "t", scanner, &id), USHER_OK);
    setenv("USHER_API_RATE_PER_MINUTE", "0", 1);
    worker = testproc_start_worker(USHER_WORKER_PATH, CHAIN_TEST_CONF, "tests", cfg.database_url,
                                   "lifecycle-jobs", workdir);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 1);
}

static void stop(void)
{
    testapi_stop(&server);
    if (worker > 0)
        testproc_stop_cleanly(worker);
}

static long callf(testhttp_resp *out, const char *method, const char *tok, const char *body,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static long callf(testhttp_resp *out, const char *method, const char *tok, const char *body,
                  const char *fmt, ...)
{
    char path[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    return testhttp(&server, &(testhttp_req){ method, path, tok, body, NULL, NULL }, out);
}

static void expect(testhttp_resp *resp, long status, const char *code)
{
    cr_assert_eq(resp->status, status, "want %ld, got %ld: %s", status, resp->status, resp->body);
    if (code != NULL)
        cr_assert_str_eq(testhttp_error_code(resp), code, "%s", resp->body);
    testhttp_resp_free(resp);
}

/* The mails to address: their Message-IDs (at most max) and how many attach filename. */
typedef struct mails {
    const char *address, *filename;
    char ids[8][256];
    int n, attached;
} mails;

static void read_mail(const char *path, mails *m)
{
    char line[1024], id[256] = "";
    FILE *f = fopen(path, "r");
    bool to = false, attached = false, headers = true;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (headers && (line[0] == '\r' || line[0] == '\n'))
            headers = false;
        if (headers && strncmp(line, "To:", 3) == 0 && strstr(line, m->address) != NULL)
            to = true;
        if (headers && strncasecmp(line, "Message-ID:", 11) == 0)
            snprintf(id, sizeof(id), "%.200s", line + 11);
        if (strstr(line, m->filename) != NULL)
            attached = true;
    }
    if (f != NULL)
        fclose(f);
    if (to && m->n < 8) {
        snprintf(m->ids[m->n++], sizeof(m->ids[0]), "%s", id);
        m->attached += attached;
    }
}

static void read_mails(mails *m)
{
    const char *maildir = getenv("USHER_MAILDIR");
    char dir[512];
    struct dirent *e;
    DIR *d;

    m->n = m->attached = 0;
    snprintf(dir, sizeof(dir), "%s/new", maildir != NULL ? maildir : ".");
    d = opendir(dir);
    while (d != NULL && (e = readdir(d)) != NULL) {
        char path[1024];

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        read_mail(path, m);
    }
    if (d != NULL)
        closedir(d);
}

typedef struct want_mails {
    mails *m;
    int n;
} want_mails;

static bool got_mails(void *arg)
{
    want_mails *w = arg;

    read_mails(w->m);
    return w->m->n >= w->n;
}

static bool no_email_jobs_left(void *arg)
{
    (void)arg;
    return scalar("SELECT count(*) FROM usher_jobs WHERE kind IN ('pdf.ticket', 'email.send')") ==
           0;
}

Test(lifecycle_jobs, a_resent_confirmation_is_a_second_mail_with_the_same_ticket, .init = start,
     .fini = stop, .timeout = 300)
{
    char address[96], body[256], filename[64];
    mails m = { 0 };
    testhttp_resp resp;
    long long reg, doc;

    snprintf(address, sizeof(address), "resend-%lx-%d@example.org", (unsigned long)time(NULL),
             (int)getpid());
    snprintf(body, sizeof(body), "{\"ticket_type_id\":%lld,\"name\":\"Ada\",\"email\":\"%s\"}",
             ticket_type, address);
    cr_assert_eq(callf(&resp, "POST", NULL, body, "/v1/events/%lld/registrations", event), 201,
                 "%s", resp.body);
    reg = json_integer_value(json_object_get(resp.json, "registration_id"));
    testhttp_resp_free(&resp);
    snprintf(filename, sizeof(filename), "ticket-%lld.pdf", reg);
    m.address = address;
    m.filename = filename;
    cr_assert(testproc_wait_for(got_mails, &(want_mails){ &m, 1 }, DEADLINE_MS),
              "the confirmation never arrived");
    doc = scalar("SELECT id FROM documents WHERE kind = 'ticket' AND registration_id = %lld", reg);
    cr_assert_eq(
        callf(&resp, "POST", organizer, NULL, "/v1/registrations/%lld/resend-confirmation", reg),
        202, "%s", resp.body);
    cr_assert_eq(json_integer_value(json_object_get(resp.json, "document_id")), doc);
    testhttp_resp_free(&resp);
    cr_assert(testproc_wait_for(got_mails, &(want_mails){ &m, 2 }, DEADLINE_MS),
              "the resent confirmation never arrived");
    cr_assert(testproc_wait_for(no_email_jobs_left, NULL, DEADLINE_MS));
    read_mails(&m);
    /* Exactly two mails, both with the ticket, each with its own Message-ID. */
    cr_assert_eq(m.n, 2);
    cr_assert_eq(m.attached, 2);
    cr_assert(m.ids[0][0] != '\0' && m.ids[1][0] != '\0');
    cr_assert_str_neq(m.ids[0], m.ids[1]);
    /* The same ticket: one ticket document, not rendered again. */
    cr_assert_eq(scalar("SELECT count(*) FROM documents WHERE kind = 'ticket'"
                        " AND registration_id = %lld",
                        reg),
                 1);
}

typedef struct sheet {
    long long job, document;
} sheet;

static bool sheet_made(void *arg)
{
    sheet *s = arg;

    s->document = scalar("SELECT coalesce(max(id), 0) FROM documents WHERE kind = 'badges'"
                         " AND event_id = %lld AND job_id = %lld",
                         event, s->job);
    return s->document != 0;
}

Test(lifecycle_jobs, a_badge_request_becomes_a_sheet_the_organizer_downloads, .init = start,
     .fini = stop, .timeout = 300)
{
    sheet s = { 0 };
    testhttp_resp resp;
    json_t *sheets;

    for (int i = 0; i < 3; i++) {
        char body[160];

        snprintf(body, sizeof(body),
                 "{\"ticket_type_id\":%lld,\"name\":\"Badge %d\",\"email\":\"b%d@example.org\"}",
                 ticket_type, i, i);
        callf(&resp, "POST", NULL, body, "/v1/events/%lld/registrations", event);
        expect(&resp, 201, NULL);
    }
    callf(&resp, "POST", other, NULL, "/v1/events/%lld/badges", event);
    expect(&resp, 404, "not_found");
    callf(&resp, "POST", scanner, NULL, "/v1/events/%lld/badges", event);
    expect(&resp, 403, "forbidden");
    callf(&resp, "POST", organizer, NULL, "/v1/events/987654321/badges");
    expect(&resp, 404, "not_found");
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE kind = 'pdf.badge'"), 0);
    cr_assert_eq(callf(&resp, "POST", organizer, NULL, "/v1/events/%lld/badges", event), 202, "%s",
                 resp.body);
    s.job = json_integer_value(json_object_get(resp.json, "job_id"));
    testhttp_resp_free(&resp);
    cr_assert_gt(s.job, 0);
    cr_assert(testproc_wait_for(sheet_made, &s, DEADLINE_MS), "no badge sheet was made");
    cr_assert_eq(callf(&resp, "GET", organizer, NULL, "/v1/events/%lld/badges", event), 200);
    sheets = json_object_get(resp.json, "sheets");
    cr_assert_eq(json_array_size(sheets), 1, "%s", resp.body);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(sheets, 0), "job_id")), s.job);
    testhttp_resp_free(&resp);
    callf(&resp, "GET", other, NULL, "/v1/events/%lld/badges", event);
    expect(&resp, 404, "not_found");
    cr_assert_eq(callf(&resp, "GET", organizer, NULL, "/v1/content/%lld", s.document), 200, "%s",
                 resp.body);
    cr_assert(resp.len > 100 && memcmp(resp.body, "%PDF", 4) == 0);
    testhttp_resp_free(&resp);
    cr_assert_eq(scalar("SELECT count(*) FROM audit_log WHERE action = 'badges.request'"
                        " AND target_id = %lld AND (after->>'job_id')::bigint = %lld",
                        event, s.job),
                 1);
}
