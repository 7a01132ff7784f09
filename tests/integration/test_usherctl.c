/*
 * usherctl as an operator runs it: the real binary against the test
 * database, checking what it prints and its exit status.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "migrate.h"
#include "testdb.h"

TESTDB_SUITE(usherctl, "usher_test_usherctl");

/* Runs "usherctl ARGS" (stdout and stderr together into out); returns its exit status. */
static int ctl(char *out, size_t len, const char *args)
{
    char cmd[2048];
    FILE *p;
    size_t got;
    int status;

    /* usherctl reads the database from the environment, like an operator's shell. */
    cr_assert_eq(setenv("USHER_DATABASE_URL", cfg.database_url, 1), 0);
    snprintf(cmd, sizeof(cmd), "%s %s 2>&1", USHERCTL_PATH, args);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    got = fread(out, 1, len - 1, p);
    out[got] = '\0';
    status = pclose(p);
    cr_assert(WIFEXITED(status), "usherctl %s did not exit", args);
    return WEXITSTATUS(status);
}

Test(usherctl, enqueue_prints_the_id_and_jobs_show_finds_it)
{
    char out[8192], args[64];
    long long id;

    cr_assert_eq(ctl(out, sizeof(out),
                     "enqueue email email.send '{\"to\":\"x@example.org\","
                     "\"template\":\"registration_confirmation\",\"vars\":{}}'"
                     " --priority 0 --max-attempts 3"),
                 0, "%s", out);
    id = strtoll(out, NULL, 10);
    cr_assert_gt(id, 0, "%s", out);
    snprintf(args, sizeof(args), "jobs show %lld", id);
    cr_assert_eq(ctl(out, sizeof(out), args), 0, "%s", out);
    cr_assert(strstr(out, "\"x@example.org\"") != NULL, "%s", out);
    cr_assert(strstr(out, "\"max_attempts\": 3") != NULL, "%s", out);
    cr_assert(strstr(out, "\"priority\": 0") != NULL, "%s", out);
}

Test(usherctl, errors_go_to_stderr_with_a_nonzero_status)
{
    char out[8192];

    cr_assert_eq(ctl(out, sizeof(out), "enqueue nosuch test.noop '{}'"), 1);
    cr_assert(strstr(out, "unknown queue") != NULL, "%s", out);
    /* A payload its kind's schema refuses is never written. */
    cr_assert_eq(ctl(out, sizeof(out), "enqueue email email.send '{\"template\":5}'"), 1);
    cr_assert(strstr(out, "does not fit email.send's schema") != NULL, "%s", out);
    cr_assert_eq(ctl(out, sizeof(out), "enqueue pdf pdf.ticket '{\"registration_id\":\"7\"}'"), 1);
    cr_assert(strstr(out, "payload.registration_id: expected integer") != NULL, "%s", out);
    cr_assert_eq(ctl(out, sizeof(out), "enqueue email email.send '{oops'"), 1);
    cr_assert(strstr(out, "not valid JSON") != NULL, "%s", out);
    cr_assert_eq(ctl(out, sizeof(out), "enqueue email email.send '{}' --priority 7"), 2);
    cr_assert_eq(ctl(out, sizeof(out), "enqueue email email.send '{}' --delay 5 --run-at @1"), 2);
    cr_assert_eq(ctl(out, sizeof(out), "jobs show 424242"), 1);
    cr_assert(strstr(out, "not found") != NULL, "%s", out);
    cr_assert_eq(ctl(out, sizeof(out), "frobnicate"), 2);
    cr_assert_eq(ctl(out, sizeof(out), "dead discard"), 2, "a filterless discard ran: %s", out);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 0);
}

Test(usherctl, bad_config_is_refused_with_file_and_line)
{
    char out[8192];
    char path[] = "/tmp/usherctl-conf-XXXXXX";
    int fd = mkstemp(path);
    char args[256];

    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "[engine]\npoll_interval_ms = often\n", 34), 34);
    close(fd);
    snprintf(args, sizeof(args), "--config %s queues", path);
    cr_assert_eq(ctl(out, sizeof(out), args), 1);
    unlink(path);
    cr_assert(strstr(out, ":2:") != NULL, "%s", out);
    cr_assert(strstr(out, path) != NULL, "%s", out);
}

Test(usherctl, scheduled_unique_and_queue_listing)
{
    char out[8192];
    long long first;

    cr_assert_eq(
        ctl(out, sizeof(out),
            "enqueue pdf pdf.ticket '{\"registration_id\":1}' --delay 600 --unique-key t1"),
        0, "%s", out);
    first = strtoll(out, NULL, 10);
    cr_assert_eq(
        ctl(out, sizeof(out), "enqueue pdf pdf.ticket '{\"registration_id\":1}' --unique-key t1"),
        0);
    cr_assert_eq(strtoll(out, NULL, 10), first, "%s vs %lld", out, first);
    cr_assert_eq(ctl(out, sizeof(out), "queues --json"), 0);
    cr_assert(strstr(out, "\"scheduled\": 1") != NULL, "%s", out);
    cr_assert_eq(ctl(out, sizeof(out), "pause pdf"), 0);
    cr_assert_eq(ctl(out, sizeof(out), "queues"), 0);
    {
        char name[32] = "", pool[32] = "", paused[8] = "";
        const char *line = strstr(out, "\npdf ");

        cr_assert_not_null(line, "%s", out);
        cr_assert_eq(sscanf(line, "%31s %31s %7s", name, pool, paused), 3);
        cr_assert_str_eq(paused, "yes", "%s", out);
    }
    cr_assert_eq(ctl(out, sizeof(out), "resume pdf"), 0);
    cr_assert_eq(ctl(out, sizeof(out), "pause nosuch"), 1);
}

Test(usherctl, dead_jobs_are_listed_and_retried_from_the_command_line)
{
    char out[8192];

    testdb_exec(st, "INSERT INTO usher_jobs (queue, kind, priority, payload, max_attempts,"
                    " timeout_ms, state, attempt, finished_at, errors) VALUES"
                    " ('email', 'email.send', 1, '{}', 1, 1000, 'dead', 1, now(),"
                    "  '[{\"attempt\":1,\"error\":\"smtp 554 rejected\"}]'),"
                    " ('email', 'email.send', 1, '{}', 1, 1000, 'dead', 1, now(),"
                    "  '[{\"attempt\":1,\"error\":\"template missing\"}]')");
    cr_assert_eq(ctl(out, sizeof(out), "dead list --error 554"), 0);
    cr_assert(strstr(out, "smtp 554 rejected") != NULL, "%s", out);
    cr_assert(strstr(out, "template missing") == NULL, "%s", out);
    cr_assert_eq(ctl(out, sizeof(out), "dead retry --all --error 554"), 0, "%s", out);
    cr_assert(strstr(out, "retried 1") != NULL, "%s", out);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'available'"), 1);
    cr_assert_eq(ctl(out, sizeof(out), "dead discard --all"), 0, "%s", out);
    cr_assert(strstr(out, "discarded 1") != NULL, "%s", out);
    cr_assert_eq(ctl(out, sizeof(out), "maintain"), 0, "%s", out);
    cr_assert(strstr(out, "rescued 0") != NULL, "%s", out);
}

Test(usherctl, seed_demo_creates_an_event_with_registrations_and_sold_seats)
{
    char out[8192];

    cr_assert_eq(ctl(out, sizeof(out), "seed --demo --registrations 50"), 0, "%s", out);
    cr_assert(strstr(out, "50 registrations, 6 sessions") != NULL, "%s", out);
    cr_assert_geq(testdb_scalar(st, "SELECT count(*) FROM registrations"), 50);
    cr_assert_eq(testdb_scalar(st,
                               "SELECT a.sold FROM ticket_availability a"
                               " JOIN ticket_types t ON t.id = a.ticket_type_id"
                               " WHERE t.name = 'General admission' ORDER BY t.id DESC LIMIT 1"),
                 50);
    cr_assert_eq(ctl(out, sizeof(out), "seed"), 2, "seed without --demo ran: %s", out);
}

Test(usherctl, webhook_deliveries_are_listed_as_json_lines_and_replayed)
{
    char out[8192], args[64];
    long long endpoint, delivery, job;

    cr_assert_eq(ctl(out, sizeof(out), "seed --demo --registrations 1"), 0, "%s", out);
    endpoint = testdb_scalar(st, "INSERT INTO webhook_endpoints (organizer_id, url, secret)"
                                 " SELECT id, 'http://127.0.0.1:9/hooks', 'whsec_x'"
                                 " FROM organizers ORDER BY id LIMIT 1 RETURNING id");
    snprintf(out, sizeof(out),
             "INSERT INTO webhook_deliveries (endpoint_id, job_id, attempt, event, payload,"
             " status_code, latency_ms) VALUES"
             " (%lld, 7, 1, 'registration.created', '{\"id\":7,\"data\":{\"n\":1}}', 503, 12),"
             " (%lld, 7, 2, 'registration.created', '{\"id\":7,\"data\":{\"n\":1}}', 200, 9)",
             endpoint, endpoint);
    testdb_exec(st, out);
    delivery = testdb_scalar(st, "SELECT max(id) FROM webhook_deliveries WHERE status_code = 503");
    snprintf(args, sizeof(args), "webhook deliveries --endpoint %lld --limit 5", endpoint);
    cr_assert_eq(ctl(out, sizeof(out), args), 0, "%s", out);
    {
        char *second = strchr(out, '\n');

        cr_assert(out[0] == '{' && second != NULL && second[1] == '{', "%s", out);
        cr_assert(strchr(second + 1, '\n') != NULL && strchr(second + 1, '\n')[1] == '\0', "%s",
                  out);
        cr_assert(strstr(out, "\"status_code\":503") != NULL, "%s", out);
        cr_assert(strstr(out, "\"latency_ms\":9") != NULL, "%s", out);
    }
    cr_assert_eq(ctl(out, sizeof(out), "webhook deliveries --limit 1"), 0, "%s", out);
    cr_assert_eq(strchr(out, '\n')[1], '\0', "--limit 1 printed more: %s", out);
    snprintf(args, sizeof(args), "webhook replay %lld", delivery);
    cr_assert_eq(ctl(out, sizeof(out), args), 0, "%s", out);
    job = strtoll(out, NULL, 10);
    cr_assert_gt(job, 0, "%s", out);
    snprintf(args, sizeof(args), "jobs show %lld", job);
    cr_assert_eq(ctl(out, sizeof(out), args), 0, "%s", out);
    cr_assert(strstr(out, "notify.webhook") != NULL, "%s", out);
    cr_assert(strstr(out, "registration.created") != NULL, "%s", out);
    cr_assert_eq(ctl(out, sizeof(out), "webhook replay 987654321"), 1);
    cr_assert(strstr(out, "no webhook delivery 987654321") != NULL, "%s", out);
    cr_assert_eq(ctl(out, sizeof(out), "webhook replay"), 2);
}

/* Copies the migrations into a fresh directory (dir: "/tmp/usherctl-migrations-XXXXXX"). */
static void copy_migrations(char *dir)
{
    char cmd[1024];

    cr_assert_not_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd), "cp %s/*.sql %s/", usher_migrate_default_dir(), dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void remove_dir(const char *dir)
{
    char cmd[1024];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

Test(usherctl, migrate_refuses_to_run_when_an_applied_file_has_changed)
{
    char out[8192], args[256], path[512];
    char dir[] = "/tmp/usherctl-migrations-XXXXXX";
    FILE *f;

    copy_migrations(dir);
    snprintf(args, sizeof(args), "migrate --dir %s", dir);
    cr_assert_eq(ctl(out, sizeof(out), args), 0, "%s", out);
    cr_assert(strstr(out, "applied 0 migration(s)") != NULL, "%s", out);
    snprintf(path, sizeof(path), "%s/0007_api.sql", dir);
    f = fopen(path, "a");
    cr_assert_not_null(f);
    cr_assert_gt(fputs("-- edited after it was applied\n", f), 0);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(ctl(out, sizeof(out), args), 1, "%s", out);
    cr_assert(strstr(out, "usherctl: migrate: changed since it was recorded: ") != NULL, "%s", out);
    cr_assert(strstr(out, path) != NULL, "the message does not name %s: %s", path, out);
    cr_assert(strstr(out, "an applied migration is never edited") != NULL, "%s", out);
    remove_dir(dir);
}

Test(usherctl, migrate_trusts_on_first_use_the_files_applied_before_checksums_were_kept)
{
    char out[8192], sha[80] = "", cmd[1024];
    long long rows = testdb_scalar(st, "SELECT count(*) FROM usher_migrations");
    char expect[128];
    FILE *p;

    /* A database migrated before checksums were kept has no such column. */
    testdb_exec(st, "ALTER TABLE usher_migrations DROP COLUMN checksum");
    cr_assert_eq(ctl(out, sizeof(out), "migrate"), 0, "%s", out);
    snprintf(expect, sizeof(expect), "recorded the SHA-256 of %lld migration(s) applied before",
             rows);
    cr_assert(strstr(out, expect) != NULL, "%s", out);
    cr_assert(strstr(out, "applied 0 migration(s)") != NULL, "%s", out);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_migrations WHERE checksum IS NULL"),
                 0);
    /* What it recorded is the file's SHA-256 (as sha256sum sees it). */
    snprintf(cmd, sizeof(cmd), "sha256sum %s/0001_queue.sql", usher_migrate_default_dir());
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    cr_assert_eq(fscanf(p, "%64s", sha), 1);
    cr_assert_eq(pclose(p), 0);
    snprintf(cmd, sizeof(cmd),
             "SELECT count(*) FROM usher_migrations WHERE version = 1 AND checksum = '%s'", sha);
    cr_assert_eq(testdb_scalar(st, cmd), 1, "0001_queue.sql's SHA-256 is %s", sha);
    /* The second run has nothing to record. */
    cr_assert_eq(ctl(out, sizeof(out), "migrate"), 0, "%s", out);
    cr_assert(strstr(out, "recorded") == NULL, "%s", out);
}
