/*
 * A conninfo split into per-host attempts (engine/pgconnect.h): one per
 * host in order, with that host's port, the URL's target_session_attrs
 * (prefer-standby as two passes) and the connect_timeout libpq would read.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "pgconnect.h"

static usher_pg_attempts *split_ok(const char *conninfo)
{
    usher_pg_attempts *a = NULL;
    char errbuf[256] = "";

    cr_assert_eq(usher_pg_attempts_new(conninfo, &a, errbuf, sizeof(errbuf)), USHER_OK, "%s: %s",
                 conninfo, errbuf);
    return a;
}

static void assert_param(const usher_pg_attempts *a, size_t i, const char *keyword,
                         const char *want)
{
    const char *got = usher_pg_attempts_param(a, i, keyword);

    if (want == NULL)
        cr_assert_null(got, "attempt %zu %s = %s", i, keyword, got);
    else
        cr_assert(got != NULL && strcmp(got, want) == 0, "attempt %zu %s = %s, want %s", i, keyword,
                  got != NULL ? got : "(null)", want);
}

Test(pgconnect, a_multi_host_url_is_one_attempt_per_host_in_order)
{
    usher_pg_attempts *a = split_ok("postgresql://usher@pg1:5432,pg2:5433/usher"
                                    "?target_session_attrs=read-write&application_name=x");

    cr_assert_eq(usher_pg_attempts_count(a), 2);
    assert_param(a, 0, "host", "pg1");
    assert_param(a, 0, "port", "5432");
    assert_param(a, 1, "host", "pg2");
    assert_param(a, 1, "port", "5433");
    for (size_t i = 0; i < 2; i++) {
        assert_param(a, i, "target_session_attrs", "read-write");
        assert_param(a, i, "dbname", "usher");
        assert_param(a, i, "user", "usher");
        assert_param(a, i, "application_name", "x");
        assert_param(a, i, "hostaddr", NULL);
        cr_assert_eq(usher_pg_attempts_host_index(a, i), i);
    }
    usher_pg_attempts_free(a);
}

Test(pgconnect, one_port_serves_every_host_and_hostaddr_goes_with_its_host)
{
    usher_pg_attempts *a = split_ok("host=a,b,c hostaddr=10.0.0.1,10.0.0.2,10.0.0.3 port=6000");

    cr_assert_eq(usher_pg_attempts_count(a), 3);
    assert_param(a, 2, "host", "c");
    assert_param(a, 2, "hostaddr", "10.0.0.3");
    for (size_t i = 0; i < 3; i++)
        assert_param(a, i, "port", "6000");
    usher_pg_attempts_free(a);
}

Test(pgconnect, a_conninfo_without_host_is_one_attempt_with_libpq_defaults)
{
    usher_pg_attempts *a = split_ok("dbname=usher");

    cr_assert_eq(usher_pg_attempts_count(a), 1);
    assert_param(a, 0, "host", NULL);
    assert_param(a, 0, "port", NULL);
    assert_param(a, 0, "dbname", "usher");
    usher_pg_attempts_free(a);
}

Test(pgconnect, prefer_standby_tries_every_host_as_standby_then_every_host_as_any)
{
    usher_pg_attempts *a = split_ok("postgresql://r1,r2/usher?target_session_attrs=prefer-standby");
    const char *want_host[] = { "r1", "r2", "r1", "r2" };
    const char *want_attrs[] = { "standby", "standby", "any", "any" };

    cr_assert_eq(usher_pg_attempts_count(a), 4);
    for (size_t i = 0; i < 4; i++) {
        assert_param(a, i, "host", want_host[i]);
        assert_param(a, i, "target_session_attrs", want_attrs[i]);
        cr_assert_eq(usher_pg_attempts_host_index(a, i), i % 2);
    }
    usher_pg_attempts_free(a);
}

Test(pgconnect, the_deadline_is_connect_timeout_as_libpq_reads_it_and_2_s_without)
{
    struct {
        const char *conninfo;
        int ms;
    } cases[] = {
        { "postgresql://h/usher", 2000 },
        { "postgresql://h/usher?connect_timeout=5", 5000 },
        { "postgresql://h/usher?connect_timeout=1", 2000 }, /* libpq's minimum */
        { "postgresql://h/usher?connect_timeout=0", 0 },    /* wait for ever, as asked */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        usher_pg_attempts *a = split_ok(cases[i].conninfo);

        cr_assert_eq(usher_pg_attempts_timeout_ms(a), cases[i].ms, "%s: %d ms", cases[i].conninfo,
                     usher_pg_attempts_timeout_ms(a));
        usher_pg_attempts_free(a);
    }
}

Test(pgconnect, lists_that_do_not_match_and_garbage_are_refused)
{
    const char *bad[] = { "host=a,b port=1,2,3", "host=a,b hostaddr=10.0.0.1",
                          "postgresql://h/usher?no_such_option=1", "host='unterminated" };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        usher_pg_attempts *a = NULL;
        char errbuf[256] = "";

        cr_assert_eq(usher_pg_attempts_new(bad[i], &a, errbuf, sizeof(errbuf)), USHER_ERR_CONFIG,
                     "%s accepted", bad[i]);
        cr_assert_null(a);
        cr_assert_neq(errbuf[0], '\0', "%s: no reason given", bad[i]);
    }
}

Test(pgconnect, a_blocking_connect_to_nowhere_fails_with_a_connection_object)
{
    /* Port 1 refuses at once; the object carries libpq's message. */
    PGconn *conn = usher_pg_connectdb("postgresql://postgres@127.0.0.1:1/usher");

    cr_assert_not_null(conn);
    cr_assert_eq(PQstatus(conn), CONNECTION_BAD);
    cr_assert_neq(PQerrorMessage(conn)[0], '\0');
    PQfinish(conn);
    conn = usher_pg_connectdb("host='unterminated");
    cr_assert_eq(PQstatus(conn), CONNECTION_BAD);
    PQfinish(conn);
}
