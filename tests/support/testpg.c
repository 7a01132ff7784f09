/*
 * Private PostgreSQL servers (testpg.h). Every command runs through the
 * shell with paths this file made (mkdtemp) and numbers, nothing from
 * outside; as root it runs as postgres through runuser, which owns the
 * temporary directory. Waiting is polling a condition up to a deadline.
 */
#include "testpg.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "migrate.h"
#include "queues.h"
#include "store.h"
#include "testdb.h"

#define PG_BIN      "/usr/lib/postgresql/15/bin"
#define DEADLINE_MS 60000

/* Runs a shell command made from fmt, as postgres when we are root; its exit status. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int run(const char *fmt, ...)
{
    char cmd[2048], full[2200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (geteuid() == 0)
        snprintf(full, sizeof(full), "cd / && runuser -u postgres -- sh -c '%s'", cmd);
    else
        snprintf(full, sizeof(full), "cd / && sh -c '%s'", cmd);
    return system(full);
}

void testpg_root(char root[96], const char *name)
{
    snprintf(root, 96, "/tmp/usher-%s-pg-XXXXXX", name);
    cr_assert_not_null(mkdtemp(root), "mkdtemp %s", root);
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");

        cr_assert_not_null(pw, "no postgres user to run PostgreSQL as");
        cr_assert_eq(chown(root, pw->pw_uid, pw->pw_gid), 0, "chown %s", root);
    }
}

static int free_port(void)
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

int testpg_port(int index)
{
    const char *base = getenv("USHER_TEST_PG_PORT_BASE");

    if (base != NULL && base[0] != '\0')
        return atoi(base) + index;
    return free_port();
}

void testpg_conninfo(const testpg *pg, char *out, size_t len)
{
    snprintf(out, len, "host=127.0.0.1 port=%d user=postgres dbname=usher connect_timeout=5",
             pg->port);
}

static PGconn *connect_to(const testpg *pg, const char *dbname)
{
    char conninfo[200];

    snprintf(conninfo, sizeof(conninfo),
             "host=127.0.0.1 port=%d user=postgres dbname=%s connect_timeout=5"
             " options='-c default_transaction_read_only=off'",
             pg->port, dbname);
    return PQconnectdb(conninfo);
}

/* pg answers on dbname (the postmaster is up and accepts connections). */
static bool answers(const testpg *pg, const char *dbname)
{
    PGconn *conn = connect_to(pg, dbname);
    bool ok = PQstatus(conn) == CONNECTION_OK;

    PQfinish(conn);
    return ok;
}

static void exec_on(const testpg *pg, const char *dbname, const char *sql)
{
    PGconn *conn = connect_to(pg, dbname);
    PGresult *res = PQexec(conn, sql);
    ExecStatusType status = PQresultStatus(res);

    cr_assert(status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK, "%s on port %d: %s", sql,
              pg->port, PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
}

void testpg_exec(const testpg *pg, const char *sql)
{
    exec_on(pg, "usher", sql);
}

long long testpg_scalar(const testpg *pg, const char *sql)
{
    PGconn *conn = connect_to(pg, "usher");
    PGresult *res = PQexec(conn, sql);
    long long value;

    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s on port %d: %s", sql, pg->port,
                 PQerrorMessage(conn));
    cr_assert(PQntuples(res) >= 1, "%s: no row", sql);
    value = PQgetisnull(res, 0, 0) ? -1 : atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(conn);
    return value;
}

/* The settings of one server, rewritten into DIR/testpg.conf (postgresql.conf includes it). */
static void write_conf(const testpg *pg, const char *root)
{
    cr_assert_eq(run("cat > %s/testpg.conf <<EOF\n"
                     "listen_addresses = '\\''127.0.0.1'\\''\n"
                     "port = %d\n"
                     "unix_socket_directories = '\\''%s'\\''\n"
                     "max_connections = 100\n"
                     "shared_buffers = 32MB\n"
                     "wal_level = replica\n"
                     "max_wal_senders = 10\n"
                     "hot_standby = on\n"
                     "hot_standby_feedback = on\n"
                     "wal_receiver_status_interval = 1s\n"
                     "synchronous_commit = on\n"
                     /* The server processes die, never the machine: the page
                      * cache keeps what fsync would force, at a cost the
                      * shared test machine does not need to pay. */
                     "fsync = off\n"
                     "EOF",
                     pg->dir, pg->port, root),
                 0, "writing %s/testpg.conf", pg->dir);
}

static void paths(testpg *pg, const char *root, const char *name, int port)
{
    snprintf(pg->dir, sizeof(pg->dir), "%s/%s", root, name);
    snprintf(pg->log, sizeof(pg->log), "%s/%s.log", root, name);
    pg->port = port;
}

/* The end of pg's server log, for a failure's message (the directory goes at cleanup). */
static const char *log_tail(const testpg *pg, char *out, size_t len)
{
    FILE *f = fopen(pg->log, "r");
    size_t n = 0;

    out[0] = '\0';
    if (f == NULL)
        return out;
    if (fseek(f, -(long)(len - 1), SEEK_END) != 0)
        rewind(f);
    n = fread(out, 1, len - 1, f);
    out[n] = '\0';
    fclose(f);
    return out;
}

static void wait_answers(const testpg *pg)
{
    long long deadline = testdb_now_ms() + DEADLINE_MS;

    while (!answers(pg, "postgres"))
        cr_assert_lt(testdb_now_ms(), deadline, "%s does not answer; see %s", pg->dir, pg->log);
}

void testpg_start(testpg *pg)
{
    char tail[800];

    cr_assert_eq(run(PG_BIN "/pg_ctl start -D %s -l %s -w -t 60 >/dev/null", pg->dir, pg->log), 0,
                 "pg_ctl start %s failed: %s", pg->dir, log_tail(pg, tail, sizeof(tail)));
    wait_answers(pg);
}

/*
 * Starts a server made just now. A port taken meanwhile (another test's
 * server or client: ctest runs tests side by side, and a port the kernel
 * called free may be handed out again) moves it to another free port.
 */
static void start_new(testpg *pg, const char *root)
{
    char tail[800];

    for (int attempt = 0;; attempt++) {
        write_conf(pg, root);
        if (run(PG_BIN "/pg_ctl start -D %s -l %s -w -t 60 >/dev/null", pg->dir, pg->log) == 0)
            break;
        log_tail(pg, tail, sizeof(tail));
        cr_assert(attempt < 5 && strstr(tail, "Address already in use") != NULL,
                  "pg_ctl start %s failed: %s", pg->dir, tail);
        pg->port = free_port();
    }
    wait_answers(pg);
}

void testpg_stop(testpg *pg)
{
    cr_assert_eq(run(PG_BIN "/pg_ctl stop -D %s -m fast -w -t 60 >/dev/null", pg->dir), 0,
                 "pg_ctl stop %s failed; see %s", pg->dir, pg->log);
}

void testpg_primary(testpg *pg, const char *root, const char *name, int port)
{
    paths(pg, root, name, port);
    cr_assert_eq(run(PG_BIN "/initdb -D %s -U postgres --auth=trust --encoding=UTF8"
                            " --locale=C.UTF-8 >%s.initdb 2>&1",
                     pg->dir, pg->dir),
                 0, "initdb %s failed; see %s.initdb", pg->dir, pg->dir);
    cr_assert_eq(run("printf \"local all all trust\\nhost all all 127.0.0.1/32 trust\\n"
                     "host replication all 127.0.0.1/32 trust\\n\" > %s/pg_hba.conf"
                     " && echo \"include '\\''testpg.conf'\\''\" >> %s/postgresql.conf",
                     pg->dir, pg->dir),
                 0);
    start_new(pg, root);
    exec_on(pg, "postgres", "CREATE DATABASE usher");
}

void testpg_standby(testpg *pg, const testpg *primary, const char *root, const char *name, int port)
{
    long long deadline = testdb_now_ms() + DEADLINE_MS;
    char sql[200];

    paths(pg, root, name, port);
    cr_assert_eq(run(PG_BIN "/pg_basebackup -D %s -R -X stream -c fast"
                            " -d \"host=127.0.0.1 port=%d user=postgres application_name=%s\""
                            " >%s.basebackup 2>&1",
                     pg->dir, primary->port, name, pg->dir),
                 0, "pg_basebackup for %s failed; see %s.basebackup", pg->dir, pg->dir);
    /* -R wrote standby.signal and primary_conninfo; make sure it names us. */
    cr_assert_eq(run("echo \"primary_conninfo = '\\''host=127.0.0.1 port=%d user=postgres"
                     " application_name=%s'\\''\" >> %s/postgresql.auto.conf",
                     primary->port, name, pg->dir),
                 0);
    start_new(pg, root);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_replication WHERE application_name = '%s'"
             " AND state = 'streaming'",
             name);
    while (testpg_scalar(primary, sql) != 1)
        cr_assert_lt(testdb_now_ms(), deadline, "standby %s never streamed; see %s", name, pg->log);
}

void testpg_synchronous(testpg *primary, const char *name)
{
    long long deadline = testdb_now_ms() + DEADLINE_MS;
    char sql[200];

    snprintf(sql, sizeof(sql), "ALTER SYSTEM SET synchronous_standby_names = '%s'", name);
    exec_on(primary, "postgres", sql);
    exec_on(primary, "postgres", "SELECT pg_reload_conf()");
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_replication WHERE application_name = '%s'"
             " AND sync_state = 'sync'",
             name);
    while (testpg_scalar(primary, sql) != 1)
        cr_assert_lt(testdb_now_ms(), deadline, "standby %s never became synchronous", name);
}

pid_t testpg_postmaster(const testpg *pg)
{
    char path[256];
    FILE *f;
    long pid = 0;

    snprintf(path, sizeof(path), "%s/postmaster.pid", pg->dir);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return (pid_t)pid;
}

void testpg_kill9(testpg *pg)
{
    pid_t pid = testpg_postmaster(pg);
    long long deadline = testdb_now_ms() + DEADLINE_MS;

    cr_assert_gt(pid, 0, "no postmaster for %s", pg->dir);
    cr_assert_eq(kill(pid, SIGKILL), 0, "kill -9 %d", (int)pid);
    while (kill(pid, 0) == 0)
        cr_assert_lt(testdb_now_ms(), deadline, "postmaster %d survived kill -9", (int)pid);
}

void testpg_promote(testpg *pg)
{
    long long deadline = testdb_now_ms() + DEADLINE_MS;

    cr_assert_eq(run(PG_BIN "/pg_ctl promote -D %s -w -t 60 >/dev/null", pg->dir), 0,
                 "pg_ctl promote %s failed; see %s", pg->dir, pg->log);
    while (testpg_scalar(pg, "SELECT pg_is_in_recovery()::int") != 0)
        cr_assert_lt(testdb_now_ms(), deadline, "%s still in recovery", pg->dir);
}

void testpg_cleanup(const char *root, testpg *const *servers, int n)
{
    char cmd[300];

    for (int i = 0; i < n; i++) {
        if (servers[i] != NULL && servers[i]->dir[0] != '\0' && testpg_postmaster(servers[i]) > 0)
            (void)run(PG_BIN "/pg_ctl stop -D %s -m immediate -w -t 60 >/dev/null 2>&1",
                      servers[i]->dir);
    }
    if (root[0] == '\0' || strncmp(root, "/tmp/usher-", 11) != 0)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "testpg: could not remove %s\n", root);
}

void testpg_migrate(const testpg *pg, usher_config *cfg)
{
    char errbuf[512], conninfo[200];
    usher_store *st;

    cr_assert_eq(usher_config_load(cfg, usher_config_default_path(), errbuf, sizeof(errbuf)),
                 USHER_OK, "config: %s", errbuf);
    testpg_conninfo(pg, conninfo, sizeof(conninfo));
    free(cfg->database_url);
    cfg->database_url = usher_strdup(conninfo);
    st = testdb_store(cfg);
    cr_assert_eq(usher_migrate(st, usher_migrate_default_dir(), NULL), USHER_OK, "migrate: %s",
                 usher_store_errstr(st));
    cr_assert_eq(usher_queues_sync(st), USHER_OK, "queues: %s", usher_store_errstr(st));
    usher_store_free(st);
}
