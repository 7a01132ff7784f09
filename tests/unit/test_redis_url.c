/*
 * redis.url (api/redis_url.c): the forms usher-api takes (a password for
 * AUTH, Redis 6 ACL users, SELECT's database, IPv6 hosts, the default
 * port), and refusals that never repeat the URL, which holds the secret.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "redis_url.h"

static api_redis_url parsed(const char *url)
{
    api_redis_url u;
    char why[256] = "";

    cr_assert_eq(api_redis_url_parse(url, &u, why, sizeof(why)), USHER_OK, "%s: %s", url, why);
    return u;
}

Test(redis_url, a_plain_url_has_no_auth_and_its_database)
{
    api_redis_url u = parsed("redis://127.0.0.1:56379/0");

    cr_assert_str_eq(u.host, "127.0.0.1");
    cr_assert_eq(u.port, 56379);
    cr_assert_eq(u.db, 0);
    cr_assert_str_eq(u.user, "");
    cr_assert_str_eq(u.password, "");
    u = parsed("redis://cache.example");
    cr_assert_str_eq(u.host, "cache.example");
    cr_assert_eq(u.port, 6379, "the default port");
    cr_assert_eq(u.db, 0);
    cr_assert_eq(parsed("redis://cache.example/").db, 0);
    cr_assert_eq(parsed("redis://cache.example:6380/15").db, 15);
}

Test(redis_url, a_password_alone_or_with_an_acl_user)
{
    api_redis_url u = parsed("redis://:SECRET@cache.example:6379/3");

    cr_assert_str_eq(u.user, "");
    cr_assert_str_eq(u.password, "SECRET");
    cr_assert_str_eq(u.host, "cache.example");
    cr_assert_eq(u.db, 3);
    u = parsed("redis://usher:s3cret@10.0.0.5:6379/0");
    cr_assert_str_eq(u.user, "usher");
    cr_assert_str_eq(u.password, "s3cret");
    cr_assert_str_eq(u.host, "10.0.0.5");
    /* Escapes, and a raw '@' in the password: the last '@' ends the userinfo. */
    u = parsed("redis://:p%40ss%2Fw%3Ard%25@h:1");
    cr_assert_str_eq(u.password, "p@ss/w:rd%");
    u = parsed("redis://:p@ss@h:1/2");
    cr_assert_str_eq(u.password, "p@ss");
    cr_assert_str_eq(u.host, "h");
    cr_assert_eq(u.db, 2);
}

Test(redis_url, ipv6_hosts_are_bracketed)
{
    api_redis_url u = parsed("redis://:pw@[2001:db8::5]:6380/1");

    cr_assert_str_eq(u.host, "2001:db8::5");
    cr_assert_eq(u.port, 6380);
    cr_assert_eq(u.db, 1);
    cr_assert_eq(parsed("redis://[::1]").port, 6379);
}

Test(redis_url, bad_urls_are_refused_without_repeating_the_secret)
{
    static const char *const bad[] = {
        "http://h:1/0",           "redis://",
        "redis://:1/0",           "redis://h:0/0",
        "redis://h:65536/0",      "redis://h:x/0",
        "redis://h:/0",           "redis://h:1/x",
        "redis://h:1/0/1",        "redis://h:1/0?a=b",
        "redis://h:1/-1",         "redis://h:1/1000001",
        "redis://SECRET@h:1/0",   "redis://:@h:1/0",
        "redis://:SECRET%zz@h:1", "redis://:SECRET%0@h",
        "redis://:SECRET%00x@h",  "redis://[::1:1/0",
        "redis://[::1]x/0",       "redis://u:SECRET@",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        api_redis_url u;
        char why[256] = "";

        cr_assert_eq(api_redis_url_parse(bad[i], &u, why, sizeof(why)), USHER_ERR_CONFIG, "%s",
                     bad[i]);
        cr_assert_not_null(strstr(why, "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]"), "%s", why);
        cr_assert_null(strstr(why, "SECRET"), "%s: %s", bad[i], why);
    }
}
