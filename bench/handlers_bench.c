/*
 * usher-bench-handlers: the job handlers' building blocks in-process, one
 * section (phase) each, against the real services:
 *
 *   pdf     ticket PDFs of seeded registrations, single-threaded (= per
 *           core): usher_pdf_ticket alone over --pdfs registrations whose
 *           facts were loaded beforehand (untimed), then the whole
 *           pdf.ticket handler (facts, render, document store with fsync,
 *           the documents row) over --handler-pdfs of them. The process
 *           keeps its heap as usher-worker does (usher_alloc_keep_heap)
 *           unless --keep-heap 0 (glibc's defaults, for a same-run ratio).
 *   email   messages built with usher_mail_message_build and sent with
 *           usher_mail_send_many to $USHER_SMTP_URL, without and with a
 *           ticket PDF attached, from 1 sender and from --senders threads,
 *           one message per SMTP session and --per-session of them. Every
 *           message's subject carries --tag, and the phase waits until the
 *           Maildir (--maildir) holds each one, then removes those files
 *           (and only those). --only pdf|txt runs one case instead: the
 *           --senders x --per-session one, with the ticket or without.
 *   index   --docs attendee documents put through usher_index_put into a
 *           fresh index under --dir, committed every --index-batch.
 *
 * One JSON line per measurement on stdout; errors on stderr and a non-zero
 * exit status. bench/handlers runs the rounds and reports medians.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "bench_common.h"
#include "cli.h"
#include "handler.h"
#include "job_handlers.h"
#include "mail_message.h"
#include "mail_send.h"
#include "pdf_render.h"
#include "registration_facts.h"
#include "xapian_wrap.h"

#define PROGRAM     "usher-bench-handlers"
#define MAX_SENDERS 64
#define WAIT_S      60 /* for the Maildir to show every message sent */

const char bench_program[] = PROGRAM;

typedef struct bench_opts {
    const char *phase, *maildir, *dir, *tag, *only;
    long long pdfs, handler_pdfs, emails, senders, per_session, docs, index_batch;
    long long keep_heap; /* 1: usher_alloc_keep_heap() as usher-worker; 0: glibc's defaults */
} bench_opts;

struct bench {
    usher_config cfg;
    bench_opts opts;
    usher_store *admin;
    usher_registration_facts *facts; /* opts.pdfs of them, loaded once */
    double facts_per_s;              /* how fast they loaded, one query each */
    unsigned char *ticket;           /* one rendered ticket, the email attachment */
    size_t ticket_len;
};

static double cpu_seconds(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Loads the facts of the first opts.pdfs registrations (untimed). */
static int load_facts(bench *b)
{
    char limit[24];
    const char *params[] = { limit };
    PGresult *res;
    usher_err err;
    int64_t t0;
    int n;

    if (b->facts != NULL)
        return 0;
    snprintf(limit, sizeof(limit), "%lld", b->opts.pdfs);
    err = usher_store_exec(b->admin, "SELECT id FROM registrations ORDER BY id LIMIT $1", 1, params,
                           &res);
    if (err != USHER_OK)
        return bench_fail(b->admin, err, "registrations");
    n = PQntuples(res);
    b->facts = calloc((size_t)(n > 0 ? n : 1), sizeof(*b->facts));
    if (n < b->opts.pdfs || b->facts == NULL) {
        PQclear(res);
        fprintf(stderr, "%s: %d registrations seeded, %lld needed (usherctl seed --demo)\n",
                PROGRAM, n, b->opts.pdfs);
        return 1;
    }
    t0 = bench_now_ns();
    for (int i = 0; i < n && err == USHER_OK; i++)
        err = usher_registration_facts_load(b->admin, &b->cfg,
                                            strtoll(PQgetvalue(res, i, 0), NULL, 10), &b->facts[i]);
    PQclear(res);
    b->facts_per_s = n / bench_seconds_between(t0, bench_now_ns());
    return err != USHER_OK ? bench_fail(b->admin, err, "registration facts") : 0;
}

static usher_ticket ticket_of(const usher_registration_facts *f)
{
    return (usher_ticket){ .event_name = f->event_name,
                           .venue = f->venue[0] ? f->venue : "-",
                           .starts_at = f->starts_at,
                           .attendee_name = f->attendee_name,
                           .ticket_type = f->ticket_type,
                           .ticket_code = f->ticket_code };
}

/* ---------------------------------------------------------------- pdf */

static int pdf_render(bench *b)
{
    size_t bytes = 0;
    double cpu0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID), cpu;
    int64_t t0 = bench_now_ns();
    double s;

    for (long long i = 0; i < b->opts.pdfs; i++) {
        usher_ticket t = ticket_of(&b->facts[i]);
        unsigned char *pdf;
        size_t len;
        char errbuf[256];
        usher_err err = usher_pdf_ticket(&t, USHER_PAGE_A6, &pdf, &len, errbuf, sizeof(errbuf));
        if (err != USHER_OK) {
            fprintf(stderr, "%s: ticket of registration %lld: %s\n", PROGRAM,
                    (long long)b->facts[i].registration_id, errbuf);
            return 1;
        }
        bytes += len;
        if (i == 0 && b->ticket == NULL) {
            b->ticket = pdf; /* kept as the email attachment */
            b->ticket_len = len;
        } else {
            free(pdf);
        }
    }
    s = bench_seconds_between(t0, bench_now_ns());
    cpu = cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    printf("{\"bench\":\"pdf_render\",\"keep_heap\":%s,\"pdfs\":%lld,\"seconds\":%.3f,"
           "\"pdfs_per_s\":%.0f,\"pdfs_per_cpu_s\":%.0f,\"avg_bytes\":%.0f,"
           "\"facts_loaded_per_s\":%.0f}\n",
           b->opts.keep_heap ? "true" : "false", b->opts.pdfs, s, (double)b->opts.pdfs / s,
           (double)b->opts.pdfs / cpu, (double)bytes / (double)b->opts.pdfs, b->facts_per_s);
    return 0;
}

/* The whole pdf.ticket handler, one job after another, as one child runs them. */
static int pdf_handler(bench *b)
{
    usher_handler_ctx *ctx = usher_handler_ctx_new(&b->cfg);
    int64_t t0 = bench_now_ns();
    long long n = b->opts.handler_pdfs < b->opts.pdfs ? b->opts.handler_pdfs : b->opts.pdfs;
    double s;
    int rc = ctx == NULL;

    for (long long i = 0; i < n && rc == 0; i++) {
        usher_job job = { .id = 1000000 + i, .attempt = 1, .max_attempts = 1 };
        usher_handler_result r = { .outcome = USHER_OUTCOME_OK, .delay_ms = -1 };
        json_t *payload =
            json_pack("{s:I}", "registration_id", (json_int_t)b->facts[i].registration_id);

        if (payload == NULL)
            rc = 1;
        else
            usher_run_pdf_ticket(ctx, &job, payload, &r);
        json_decref(payload);
        if (rc == 0 && r.outcome != USHER_OUTCOME_OK) {
            fprintf(stderr, "%s: pdf.ticket: %s\n", PROGRAM, r.error);
            rc = 1;
        }
    }
    s = bench_seconds_between(t0, bench_now_ns());
    usher_handler_ctx_free(ctx);
    if (rc == 0)
        printf("{\"bench\":\"pdf_handler\",\"tickets\":%lld,\"seconds\":%.3f,"
               "\"tickets_per_s\":%.0f}\n",
               n, s, (double)n / s);
    return rc;
}

static int phase_pdf(bench *b)
{
    int rc = load_facts(b);

    if (rc == 0)
        rc = pdf_render(b);
    if (rc == 0 && b->opts.handler_pdfs > 0)
        rc = pdf_handler(b);
    return rc;
}

/* ---------------------------------------------------------------- email */

/* One email sub-phase: which messages, and the sender threads' shares. */
typedef struct mail_run {
    bench *b;
    char label[32]; /* in every subject: "<tag>-<label> #<n>" */
    bool attach;
    long long senders;
    long long per_session; /* messages a sender puts in one SMTP session */
} mail_run;

typedef struct sender {
    mail_run *run;
    long long first; /* sends messages first, first + senders, ... */
    int64_t build_ns;
    int rc;
} sender;

static const char mail_text[] =
    "Hello,\n\nyour registration is confirmed. Your ticket is attached: show its QR code at the\n"
    "entrance. See you there!\n\n-- The organisers\n";
static const char mail_html[] =
    "<p>Hello,</p><p>your registration is <b>confirmed</b>. Your ticket is attached: show its QR"
    " code at the entrance. See you there!</p><p>&mdash; The organisers</p>";

/* Builds message i of the run into *msg / *len; 0 on success. */
static int build_one(sender *s, long long i, char **msg, size_t *len)
{
    const bench *b = s->run->b;
    const usher_registration_facts *f = &b->facts[i % b->opts.pdfs];
    usher_mail_attachment pdf = { "ticket.pdf", "application/pdf", b->ticket, b->ticket_len };
    char subject[128], message_id[256], errbuf[256];
    usher_mail_message m = { .from_name = "Usher Bench",
                             .from_addr = b->cfg.smtp_from_address,
                             .to_name = f->attendee_name,
                             .to_addr = f->email,
                             .subject = subject,
                             .message_id = message_id,
                             .date = (time_t)f->created_at_s,
                             .text = mail_text,
                             .html = mail_html,
                             .attachments = s->run->attach ? &pdf : NULL,
                             .attachment_count = s->run->attach ? 1 : 0 };
    int64_t t0 = bench_now_ns();
    usher_err err;

    snprintf(subject, sizeof(subject), "%s %s-%s #%lld", PROGRAM, b->opts.tag, s->run->label, i);
    err = usher_mail_message_id(message_id, sizeof(message_id), 1000000 + i,
                                b->cfg.smtp_message_id_domain);
    if (err == USHER_OK)
        err = usher_mail_message_build(&m, msg, len, errbuf, sizeof(errbuf));
    s->build_ns += bench_now_ns() - t0;
    if (err != USHER_OK) {
        fprintf(stderr, "%s: message %lld: %s\n", PROGRAM, i, errbuf);
        return 1;
    }
    return 0;
}

/* Builds and sends messages first, first + step, ... (n of them) over one session. */
static int send_session(sender *s, long long first, long long step, size_t n)
{
    const bench *b = s->run->b;
    usher_smtp_opts o = { .url = b->cfg.smtp_url, .timeout_ms = b->cfg.smtp_timeout_ms };
    usher_mail_envelope mails[USHER_MAIL_SESSION_MAX] = { 0 };
    usher_mail_result res[USHER_MAIL_SESSION_MAX];
    char *msgs[USHER_MAIL_SESSION_MAX] = { 0 };
    int rc = 0;

    for (size_t k = 0; k < n && rc == 0; k++) {
        long long i = first + (long long)k * step;

        rc = build_one(s, i, &msgs[k], &mails[k].len);
        mails[k].from_addr = b->cfg.smtp_from_address;
        mails[k].to_addr = b->facts[i % b->opts.pdfs].email;
        mails[k].msg = msgs[k];
    }
    if (rc == 0 && usher_mail_send_many(&o, mails, n, res) != USHER_OK)
        rc = 1;
    for (size_t k = 0; k < n && rc == 0; k++) {
        if (res[k].status != USHER_MAIL_DELIVERED) {
            fprintf(stderr, "%s: message %lld: %s\n", PROGRAM, first + (long long)k * step,
                    res[k].error);
            rc = 1;
        }
    }
    for (size_t k = 0; k < n; k++)
        free(msgs[k]);
    return rc;
}

static void *sender_main(void *arg)
{
    sender *s = arg;
    long long step = s->run->senders, total = s->run->b->opts.emails;

    for (long long i = s->first; i < total && s->rc == 0;) {
        long long left = (total - i + step - 1) / step;
        size_t n = (size_t)(left < s->run->per_session ? left : s->run->per_session);

        s->rc = send_session(s, i, step, n);
        i += (long long)n * step;
    }
    return NULL;
}

/* Files in maildir/new and maildir/cur whose subject carries the run's label; removes them. */
static long long collect_delivered(const mail_run *run)
{
    static const char *const subdirs[] = { "new", "cur" };
    char needle[128], path[4096], head[4096];
    long long found = 0;

    snprintf(needle, sizeof(needle), "Subject: %s %s-%s #", PROGRAM, run->b->opts.tag, run->label);
    for (size_t d = 0; d < 2; d++) {
        DIR *dir;
        struct dirent *e;
        snprintf(path, sizeof(path), "%s/%s", run->b->opts.maildir, subdirs[d]);
        if ((dir = opendir(path)) == NULL)
            continue;
        while ((e = readdir(dir)) != NULL) {
            FILE *f;
            size_t n;
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s/%s", run->b->opts.maildir, subdirs[d], e->d_name);
            if ((f = fopen(path, "rb")) == NULL)
                continue;
            n = fread(head, 1, sizeof(head) - 1, f);
            fclose(f);
            head[n] = '\0';
            if (strstr(head, needle) != NULL && unlink(path) == 0)
                found++;
        }
        closedir(dir);
    }
    return found;
}

/* Waits (up to WAIT_S) until the Maildir has held every message of the run. */
static long long wait_delivered(const mail_run *run)
{
    int64_t deadline = bench_now_ns() + WAIT_S * NS_PER_S;
    long long found = 0;

    while ((found += collect_delivered(run)) < run->b->opts.emails && bench_now_ns() < deadline)
        bench_sleep_until(bench_now_ns() + 100 * NS_PER_MS);
    return found;
}

static int mail_phase(bench *b, bool attach, long long senders, long long per_session)
{
    mail_run run = { .b = b, .attach = attach, .senders = senders, .per_session = per_session };
    sender s[MAX_SENDERS];
    pthread_t threads[MAX_SENDERS];
    int64_t t0, build_ns = 0;
    long long started = 0, found = 0;
    double secs;
    int rc = 0;

    snprintf(run.label, sizeof(run.label), "%s%lldx%lld", attach ? "pdf" : "txt", senders,
             per_session);
    t0 = bench_now_ns();
    for (long long i = 0; i < senders; i++) {
        s[i] = (sender){ .run = &run, .first = i };
        if (pthread_create(&threads[i], NULL, sender_main, &s[i]) != 0)
            break;
        started++;
    }
    for (long long i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
        rc |= s[i].rc;
        build_ns += s[i].build_ns;
    }
    secs = bench_seconds_between(t0, bench_now_ns());
    if (started < senders)
        rc = bench_fail(NULL, USHER_ERR_NOMEM, "starting a sender thread");
    if (rc == 0 && (found = wait_delivered(&run)) != b->opts.emails) {
        fprintf(stderr, "%s: %lld messages sent, %lld in %s\n", PROGRAM, b->opts.emails, found,
                b->opts.maildir);
        rc = 1;
    }
    if (rc == 0)
        printf("{\"bench\":\"email\",\"attachment\":%s,\"senders\":%lld,"
               "\"per_session\":%lld,\"messages\":%lld,"
               "\"seconds\":%.3f,\"messages_per_s\":%.0f,\"build_us_per_message\":%.1f,"
               "\"avg_attachment_bytes\":%zu,\"verified\":true}\n",
               attach ? "true" : "false", senders, per_session, b->opts.emails, secs,
               (double)b->opts.emails / secs, (double)build_ns / 1000.0 / (double)b->opts.emails,
               attach ? b->ticket_len : 0);
    return rc;
}

static int phase_email(bench *b)
{
    int rc = load_facts(b);

    if (rc == 0 && b->ticket == NULL) {
        usher_ticket t = ticket_of(&b->facts[0]);
        char errbuf[256];
        if (usher_pdf_ticket(&t, USHER_PAGE_A6, &b->ticket, &b->ticket_len, errbuf,
                             sizeof(errbuf)) != USHER_OK) {
            fprintf(stderr, "%s: ticket: %s\n", PROGRAM, errbuf);
            rc = 1;
        }
    }
    if (rc == 0 && b->opts.only != NULL)
        return mail_phase(b, strcmp(b->opts.only, "pdf") == 0, b->opts.senders,
                          b->opts.per_session);
    for (int attach = 0; attach < 2 && rc == 0; attach++) {
        rc = mail_phase(b, attach, 1, 1);
        if (rc == 0 && b->opts.senders > 1)
            rc = mail_phase(b, attach, b->opts.senders, 1);
        if (rc == 0 && b->opts.per_session > 1)
            rc = mail_phase(b, attach, 1, b->opts.per_session);
        if (rc == 0 && b->opts.per_session > 1 && b->opts.senders > 1)
            rc = mail_phase(b, attach, b->opts.senders, b->opts.per_session);
    }
    return rc;
}

/* ---------------------------------------------------------------- index */

static int phase_index(bench *b)
{
    static const char *const first[] = { "Ada", "Grace", "Zoë", "Łukasz", "Σωκράτης", "Пётр" };
    static const char *const last[] = { "Lovelace", "Hopper", "Ångström", "Żółć", "Иванов" };
    char dir[4096], errbuf[512], name[128], email[128];
    usher_index *ix = NULL;
    int64_t t0;
    double secs;
    usher_err err;

    snprintf(dir, sizeof(dir), "%s/index", b->opts.dir);
    err = usher_index_open_writer(dir, "english", &ix, errbuf, sizeof(errbuf));
    t0 = bench_now_ns();
    for (long long i = 0; i < b->opts.docs && err == USHER_OK; i++) {
        usher_index_doc d = {
            .type = "attendee", .id = i + 1, .event_id = 1 + i % 7, .name = name, .email = email
        };
        snprintf(name, sizeof(name), "%s %s %lld", first[i % 6], last[(i / 6) % 5], i);
        snprintf(email, sizeof(email), "attendee%lld@example.org", i);
        err = usher_index_put(ix, &d, errbuf, sizeof(errbuf));
        if (err == USHER_OK && (i + 1) % b->opts.index_batch == 0)
            err = usher_index_commit(ix, errbuf, sizeof(errbuf));
    }
    if (err == USHER_OK)
        err = usher_index_commit(ix, errbuf, sizeof(errbuf));
    secs = bench_seconds_between(t0, bench_now_ns());
    if (ix != NULL &&
        usher_index_close(ix, err == USHER_OK ? errbuf : NULL,
                          err == USHER_OK ? sizeof(errbuf) : 0) != USHER_OK &&
        err == USHER_OK)
        err = USHER_ERR_IO;
    if (err != USHER_OK) {
        fprintf(stderr, "%s: index %s: %s\n", PROGRAM, dir, errbuf);
        return 1;
    }
    printf("{\"bench\":\"index\",\"docs\":%lld,\"batch\":%lld,\"seconds\":%.3f,"
           "\"docs_per_s\":%.0f}\n",
           b->opts.docs, b->opts.index_batch, secs, (double)b->opts.docs / secs);
    return 0;
}

/* ---------------------------------------------------------------- main */

static const bench_phase phases[] = {
    { "pdf", phase_pdf },
    { "email", phase_email },
    { "index", phase_index },
};

static int usage(void)
{
    fprintf(stderr,
            "usage: %s [--config FILE] --dir DIR [--phase pdf|email|index|all] [--pdfs N]\n"
            "    [--handler-pdfs N] [--emails N] [--senders N] [--per-session N] [--maildir DIR]\n"
            "    [--tag TAG] [--only pdf|txt]\n"
            "    [--docs N] [--index-batch N] [--keep-heap 0|1]\n",
            PROGRAM);
    return 2;
}

int main(int argc, char **argv)
{
    bench b = { .opts = { .phase = "all",
                          .pdfs = 2000,
                          .handler_pdfs = 300,
                          .emails = 500,
                          .senders = 4,
                          .per_session = 32,
                          .docs = 20000,
                          .index_batch = 1000,
                          .keep_heap = 1,
                          .tag = "run" } };
    const bench_int_option ints[] = {
        { "--pdfs", &b.opts.pdfs, 1, 1000000 },
        { "--handler-pdfs", &b.opts.handler_pdfs, 0, 1000000 },
        { "--emails", &b.opts.emails, 1, 1000000 },
        { "--senders", &b.opts.senders, 1, MAX_SENDERS },
        { "--per-session", &b.opts.per_session, 1, USHER_MAIL_SESSION_MAX },
        { "--docs", &b.opts.docs, 1, 100000000 },
        { "--index-batch", &b.opts.index_batch, 1, 1000000 },
        { "--keep-heap", &b.opts.keep_heap, 0, 1 },
    };
    const bench_text_option texts[] = {
        { "--phase", &b.opts.phase }, { "--maildir", &b.opts.maildir }, { "--dir", &b.opts.dir },
        { "--tag", &b.opts.tag },     { "--only", &b.opts.only },
    };
    char *docdir = NULL;
    int rc;

    if (usher_cli_load_config(PROGRAM, &argc, argv, &b.cfg) != 0)
        return 1;
    rc = bench_parse_options(argc, argv, ints, sizeof(ints) / sizeof(ints[0]), texts,
                             sizeof(texts) / sizeof(texts[0]));
    if (rc < 0 || (rc == 0 && b.opts.dir == NULL))
        rc = usage();
    if (rc == 0 && b.opts.keep_heap && !usher_alloc_keep_heap())
        fprintf(stderr, "%s: mallopt refused (a sanitizer's allocator?)\n", PROGRAM);
    if (rc == 0 && b.opts.only != NULL && strcmp(b.opts.only, "pdf") != 0 &&
        strcmp(b.opts.only, "txt") != 0) {
        fprintf(stderr, "%s: --only takes pdf or txt, not '%s'\n", PROGRAM, b.opts.only);
        rc = 2;
    }
    if (rc == 0 && b.opts.maildir == NULL)
        b.opts.maildir = getenv("USHER_MAILDIR");
    if (rc == 0 && b.opts.maildir == NULL && strcmp(b.opts.phase, "pdf") != 0 &&
        strcmp(b.opts.phase, "index") != 0) {
        fprintf(stderr, "%s: the email phase needs --maildir or $USHER_MAILDIR\n", PROGRAM);
        rc = 2;
    }
    /* the handler's documents go under --dir, not into the configured store */
    if (rc == 0 && (docdir = malloc(strlen(b.opts.dir) + sizeof("/documents"))) == NULL)
        rc = bench_fail(NULL, USHER_ERR_NOMEM, "options");
    if (rc == 0) {
        sprintf(docdir, "%s/documents", b.opts.dir);
        free(b.cfg.document_dir);
        b.cfg.document_dir = docdir;
    }
    if (rc == 0 && bench_store_open(&b.cfg, &b.admin) != USHER_OK)
        rc = 1;
    if (rc == 0)
        rc = bench_run_phases(phases, sizeof(phases) / sizeof(phases[0]), b.opts.phase, &b);
    usher_store_free(b.admin);
    usher_config_free(&b.cfg);
    free(b.facts);
    free(b.ticket);
    return rc;
}
