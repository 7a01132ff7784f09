/*
 * Backup and restore (issue 16): a dump taken while mails are going out,
 * restored into a fresh PostgreSQL server, sends every attendee exactly one
 * mail in all, the original's and the restored system's together. The
 * dump reads a snapshot taken behind the send barrier (engine/backup.h):
 * a mail the relay took before the snapshot has its usher_effects row in
 * it, so the restored worker completes that job (running at backup time,
 * rescued after its lease) without sending it again. The original site
 * "dies" at the snapshot: its worker is SIGKILLed while the backup holds
 * the barrier, so it sends nothing after it. Then usherctl backup is run as
 * an operator would, and its file restores too.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup.h"
#include "enqueue.h"
#include "testdb.h"
#include "testmail.h"
#include "testpg.h"
#include "testproc.h"

__attribute__((constructor)) static void use_backup_config(void)
{
    setenv("USHER_CONFIG", BACKUP_TEST_CONF, 1);
}

TESTDB_SUITE(backup, "usher_test_backup");

#define ATTENDEES   60
#define DEADLINE_MS 120000

static char prefix[64];

static void enqueue_mails(void)
{
    snprintf(prefix, sizeof(prefix), "backup%d-", (int)getpid());
    for (int i = 0; i < ATTENDEES; i++) {
        char payload[512];
        usher_enqueued out;

        snprintf(payload, sizeof(payload),
                 "{\"template\":\"registration_confirmation\",\"to\":\"%s%d@example.org\","
                 "\"to_name\":\"A %d\",\"vars\":{\"event_name\":\"Backup Conf\",\"attendee_name\":"
                 "\"A %d\",\"ticket_type\":\"General\",\"starts_at\":\"2026-12-01 09:00\","
                 "\"venue\":\"Hall 1\",\"ticket_code\":\"CODE-%d\"}}",
                 prefix, i, i, i, i);
        cr_assert_eq(usher_enqueue(st,
                                   &(usher_enqueue_opts){
                                       .queue = "email", .kind = "email.send", .payload = payload },
                                   &out),
                     USHER_OK, "%s", usher_store_errstr(st));
    }
}

static int mails(int *counts)
{
    return testmail_count(prefix, counts, ATTENDEES);
}

/*
 * Removes this test's mails from the sink: their Message-IDs (usher-job-N)
 * would be taken for those of later tests on a database of their own.
 */
static void remove_mails(void)
{
    const char *maildir = getenv("USHER_MAILDIR");
    char dir[512], path[1024], line[1024];
    struct dirent *e;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/new", maildir != NULL ? maildir : ".");
    d = opendir(dir);
    while (d != NULL && (e = readdir(d)) != NULL) {
        FILE *f;
        bool ours = false;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        f = fopen(path, "r");
        while (f != NULL && !ours && fgets(line, sizeof(line), f) != NULL)
            ours = strncmp(line, "To:", 3) == 0 && strstr(line, prefix) != NULL;
        if (f != NULL)
            fclose(f);
        if (ours)
            cr_assert_eq(unlink(path), 0, "%s", path);
    }
    if (d != NULL)
        closedir(d);
}

/*
 * A quarter sent, by the mail rows (cheap to count: scanning a sink of
 * thousands of files, under ASan, took longer than the other 45 mails did).
 */
static bool some_sent(void *arg)
{
    (void)arg;
    return testdb_scalar(st, "SELECT count(*) FROM usher_effects WHERE key LIKE 'mail:%'") >=
           ATTENDEES / 4;
}

static bool all_sent(void *arg)
{
    int counts[ATTENDEES];

    (void)arg;
    return mails(counts) >= ATTENDEES;
}

static bool queue_empty(void *arg)
{
    const testpg *pg = arg;

    return testpg_scalar(pg, "SELECT count(*) FROM usher_jobs") == 0;
}

/* The site dies: the supervisor stopped, its children and itself SIGKILLed. */
static void kill_worker(pid_t worker)
{
    pid_t kids[16];
    size_t n;

    cr_assert_eq(kill(worker, SIGSTOP), 0);
    n = testproc_children(worker, kids, 16);
    for (size_t i = 0; i < n; i++)
        kill(kids[i], SIGKILL);
    testproc_kill(worker);
}

static void run(const char *cmd)
{
    int rc = system(cmd);

    cr_assert_eq(rc, 0, "%s: %d", cmd, rc);
}

/* A fresh server pg named name on port, and pg_restore of file into its database usher. */
static void restore_into(testpg *pg, const char *root, const char *name, int port, const char *file)
{
    char conninfo[256], cmd[1024];

    testpg_primary(pg, root, name, port);
    testpg_conninfo(pg, conninfo, sizeof(conninfo));
    snprintf(cmd, sizeof(cmd), "pg_restore --no-owner --exit-on-error -d '%s' '%s'", conninfo,
             file);
    run(cmd);
}

Test(backup, a_restored_system_mails_nobody_twice_for_jobs_in_flight_at_backup_time)
{
    char workdir[64], root[96], snapshot[USHER_SNAPSHOT_MAX], cmd[1024], dump[160], conninfo[256];
    usher_store *backup = testdb_store(&cfg);
    int counts[ATTENDEES], before;
    testpg pg;
    pid_t worker;

    enqueue_mails();
    worker = testproc_start_worker(USHER_WORKER_PATH, BACKUP_TEST_CONF, "tests", cfg.database_url,
                                   "backup", workdir);
    cr_assert(testproc_wait_for(some_sent, NULL, DEADLINE_MS), "no mail went out");

    /* The snapshot behind the barrier; the site dies before any other send. */
    cr_assert_eq(usher_backup_snapshot_open(backup, snapshot), USHER_OK, "%s",
                 usher_store_errstr(backup));
    kill_worker(worker);
    cr_assert_eq(usher_backup_barrier_release(backup), USHER_OK);
    snprintf(dump, sizeof(dump), "%s/usher.dump", workdir);
    snprintf(cmd, sizeof(cmd), "pg_dump --format=custom --snapshot=%s --file='%s' --dbname='%s'",
             snapshot, dump, cfg.database_url);
    run(cmd);
    cr_assert_eq(usher_backup_snapshot_close(backup), USHER_OK);
    usher_store_free(backup);
    before = mails(counts);
    cr_assert_lt(before, ATTENDEES, "every mail was out before the backup: nothing in flight");

    testpg_root(root, "backup");
    restore_into(&pg, root, "restored", testpg_port(0), dump);
    cr_log_info("at backup: %d mails out, %lld jobs running, %lld of them sent", before,
                testpg_scalar(&pg, "SELECT count(*) FROM usher_jobs WHERE state = 'running'"),
                testpg_scalar(&pg, "SELECT count(*) FROM usher_jobs j JOIN usher_effects e"
                                   " ON e.key = 'mail:' || j.id WHERE j.state = 'running'"));
    cr_assert_eq(testpg_scalar(&pg, "SELECT count(*) FROM usher_jobs") +
                     testpg_scalar(&pg, "SELECT count(*) FROM usher_effects e"
                                        " WHERE e.key LIKE 'mail:%' AND NOT EXISTS (SELECT 1"
                                        " FROM usher_jobs j WHERE e.key = 'mail:' || j.id)"),
                 ATTENDEES, "every mail is either a job or a sent one in the dump");

    testpg_conninfo(&pg, conninfo, sizeof(conninfo));
    worker = testproc_start_worker(USHER_WORKER_PATH, BACKUP_TEST_CONF, "tests", conninfo,
                                   "restored", workdir);
    cr_assert(testproc_wait_for(all_sent, NULL, DEADLINE_MS), "mails missing: %d of %d",
              mails(counts), ATTENDEES);
    cr_assert(testproc_wait_for(queue_empty, &pg, DEADLINE_MS), "jobs left on the restored system");
    testproc_stop_cleanly(worker);
    cr_assert_eq(mails(counts), ATTENDEES);
    for (int i = 0; i < ATTENDEES; i++)
        cr_assert_eq(counts[i], 1, "attendee %d got %d mails", i, counts[i]);
    cr_assert_eq(testpg_scalar(&pg, "SELECT count(*) FROM usher_effects WHERE key LIKE 'mail:%'"),
                 ATTENDEES);

    /* usherctl backup, as an operator runs it; its file restores too. */
    snprintf(dump, sizeof(dump), "%s/ctl.dump", workdir);
    snprintf(cmd, sizeof(cmd), "USHER_DATABASE_URL='%s' '%s' backup '%s' > /dev/null", conninfo,
             USHERCTL_PATH, dump);
    run(cmd);
    testpg again;
    restore_into(&again, root, "again", testpg_port(1), dump);
    cr_assert_eq(
        testpg_scalar(&again, "SELECT count(*) FROM usher_effects WHERE key LIKE 'mail:%'"),
        ATTENDEES);
    testpg_cleanup(root, (testpg *const[]){ &pg, &again }, 2);
    remove_mails();
}
