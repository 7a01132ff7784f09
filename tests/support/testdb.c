/*
 * The per-binary test database. Dropping and creating a database costs
 * about half a second, so it happens once per binary; between tests only
 * the queue tables are truncated.
 */
#include "testdb.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inttext.h"
#include "migrate.h"
#include "queues.h"

/*
 * Setup runs in Criterion's runner process too (the PRE_ALL hook), where
 * cr_assert must not be used: it reports to the runner itself and blocks.
 * So setup checks with require(), which says why and aborts.
 */
static void require(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void require(bool ok, const char *fmt, ...)
{
    va_list ap;

    if (ok)
        return;
    va_start(ap, fmt);
    fputs("test setup failed: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* url with its database name replaced by name; the caller frees it. */
static char *url_with_database(const char *url, const char *name)
{
    const char *scheme = strstr(url, "://");
    const char *slash = scheme != NULL ? strchr(scheme + 3, '/') : NULL;
    const char *query = strchr(url, '?');
    size_t head = slash != NULL ? (size_t)(slash - url) : strlen(url);
    size_t len = head + strlen(name) + (query != NULL ? strlen(query) : 0) + 2;
    char *out = malloc(len);

    require(scheme != NULL, "USHER_DATABASE_URL must be a URL: %s", url);
    require(out != NULL, "out of memory");
    snprintf(out, len, "%.*s/%s%s", (int)head, url, name, query != NULL ? query : "");
    return out;
}

static void exec_on(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);

    require(PQresultStatus(res) == PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
}

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static void recreate_database(const char *admin_url, const char *name)
{
    PGconn *conn = PQconnectdb(admin_url);
    char sql[256];

    require(PQstatus(conn) == CONNECTION_OK, "cannot connect to %s: %s", admin_url,
            PQerrorMessage(conn));
    PQsetNoticeProcessor(conn, quiet, NULL);
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", name);
    exec_on(conn, sql);
    snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", name);
    exec_on(conn, sql);
    PQfinish(conn);
}

void testdb_setup(const char *name, usher_config *cfg, bool create)
{
    char errbuf[512];
    char *url;
    usher_store *st;
    usher_err err;

    err = usher_config_load(cfg, usher_config_default_path(), errbuf, sizeof(errbuf));
    require(err == USHER_OK, "config: %s", errbuf);
    if (create) {
        url = url_with_database(cfg->database_url, "postgres");
        recreate_database(url, name);
        free(url);
    }
    url = url_with_database(cfg->database_url, name);
    free(cfg->database_url);
    cfg->database_url = url;
    if (!create)
        return;
    st = testdb_store(cfg);
    err = usher_migrate(st, usher_migrate_default_dir(), NULL);
    require(err == USHER_OK, "migrate: %s", usher_store_errstr(st));
    err = usher_queues_sync(st);
    require(err == USHER_OK, "queues: %s", usher_store_errstr(st));
    usher_store_free(st);
}

usher_store *testdb_store(const usher_config *cfg)
{
    char errbuf[512];
    usher_store *st = NULL;
    usher_err err = usher_store_open(cfg, &st, errbuf, sizeof(errbuf));

    require(err == USHER_OK, "%s", errbuf);
    return st;
}

void testdb_exec(usher_store *st, const char *sql)
{
    usher_err err = usher_store_command(st, sql);

    cr_assert_eq(err, USHER_OK, "%s: %s", sql, usher_store_errstr(st));
}

void testdb_reset(usher_store *st)
{
    testdb_exec(st, "TRUNCATE usher_jobs, usher_queue_stats, usher_effects");
    testdb_exec(st, "UPDATE usher_queues SET paused = false, paused_at = NULL");
}

/* The first column of the one row sql yields with params, as a number; fails the test on error. */
static long long scalar(usher_store *st, const char *sql, int nparams, const char *const *params)
{
    PGresult *res;
    long long value;
    usher_err err = usher_store_exec(st, sql, nparams, params, &res);

    cr_assert_eq(err, USHER_OK, "%s: %s", sql, usher_store_errstr(st));
    cr_assert_eq(PQntuples(res), 1, "%s returned %d rows", sql, PQntuples(res));
    value = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return value;
}

long long testdb_scalar(usher_store *st, const char *sql)
{
    return scalar(st, sql, 0, NULL);
}

long long testdb_scalarf(usher_store *st, const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < sizeof(sql), "query too long: %s", fmt);
    return testdb_scalar(st, sql);
}

long long testdb_organizer(usher_store *st, const char *name)
{
    const char *params[] = { name };

    return scalar(st, "INSERT INTO organizers (name) VALUES ($1) RETURNING id", 1, params);
}

testdb_event testdb_event_new(usher_store *st, long long organizer, const char *name, int days,
                              int capacity)
{
    char org[USHER_INT_TEXT_MAX], length[USHER_INT_TEXT_MAX], event[USHER_INT_TEXT_MAX],
        seats[USHER_INT_TEXT_MAX];
    const char *event_params[] = { usher_int_text(organizer, org), name,
                                   usher_int_text(days, length) };
    testdb_event e = { 0 };

    e.id = scalar(st,
                  "INSERT INTO events (organizer_id, name, starts_at, ends_at)"
                  " VALUES ($1, $2, now(), now() + make_interval(days => $3::int)) RETURNING id",
                  3, event_params);
    if (capacity > 0) {
        const char *type_params[] = { usher_int_text(e.id, event),
                                      usher_int_text(capacity, seats) };

        e.ticket_type = scalar(st,
                               "INSERT INTO ticket_types (event_id, name, capacity)"
                               " VALUES ($1, 'GA', $2) RETURNING id",
                               2, type_params);
    }
    return e;
}

long long testdb_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
