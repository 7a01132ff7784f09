/*
 * Addresses and CIDR blocks (api/cidr.c) and the client address rule
 * (api/client_addr.c): which X-Forwarded-For entry is the client, from
 * which peer the header is believed, and that a malformed header or an
 * untrusted peer leaves the peer's address.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "cidr.h"
#include "client_addr.h"

static api_cidr_list list_of(const char *text)
{
    api_cidr_list list;
    char why[128] = "";

    cr_assert_eq(api_cidr_list_parse(text, &list, why, sizeof(why)), USHER_OK, "%s: %s", text, why);
    return list;
}

static bool in(const char *list_text, const char *addr_text)
{
    api_cidr_list list = list_of(list_text);
    api_addr a;
    bool inside;

    cr_assert(api_addr_parse(addr_text, strlen(addr_text), &a), "%s", addr_text);
    inside = api_cidr_list_contains(&list, &a);
    api_cidr_list_release(&list);
    return inside;
}

Test(cidr, blocks_hold_exactly_their_addresses)
{
    cr_assert(in("10.0.0.0/8", "10.255.3.4"));
    cr_assert_not(in("10.0.0.0/8", "11.0.0.0"));
    cr_assert(in("192.168.4.0/22", "192.168.7.255"));
    cr_assert_not(in("192.168.4.0/22", "192.168.8.0"));
    cr_assert_not(in("192.168.4.0/22", "192.168.3.255"));
    cr_assert(in("192.0.2.7", "192.0.2.7"));
    cr_assert_not(in("192.0.2.7", "192.0.2.8"));
    cr_assert(in("0.0.0.0/0", "203.0.113.9"));
    cr_assert_not(in("0.0.0.0/0", "2001:db8::1"), "an IPv4 block never holds IPv6");
    cr_assert(in("2001:db8::/32", "2001:db8:ffff::1"));
    cr_assert_not(in("2001:db8::/32", "2001:db9::1"));
    cr_assert(in("fc00::/7", "fdff::1"));
    cr_assert_not(in("fc00::/7", "fe00::1"));
    cr_assert(in("::1", "::1"));
    cr_assert(in("::/0", "2001:db8::1"));
}

Test(cidr, an_ipv4_mapped_address_is_its_ipv4_address)
{
    cr_assert(in("127.0.0.1", "::ffff:127.0.0.1"));
    cr_assert(in("::ffff:10.0.0.0/104", "10.9.9.9"));
    cr_assert_not(in("::ffff:10.0.0.0/104", "11.0.0.1"));
}

Test(cidr, lists_take_commas_and_spaces_and_refuse_a_bad_item_by_name)
{
    static const char *const bad[] = {
        "10.0.0.0/33", "10.1.0.0/8", "10.0.0.0/",      "10.0.0.0/+8",    "10.0.0.0/08x",
        "10.0.0",      "010.0.0.1x", "host.example",   "2001:db8::/129", "fe80::1%eth0",
        "[::1]",       "1.2.3.4:80", "2001:db8::1/64",
    };
    api_cidr_list list = list_of(" 10.0.0.0/8,192.168.0.0/16  2001:db8::/32 ,, ");

    cr_assert_eq(list.n, 3);
    api_cidr_list_release(&list);
    list = list_of(NULL);
    cr_assert_eq(list.n, 0);
    list = list_of("   ");
    cr_assert_eq(list.n, 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[96], why[128] = "";

        snprintf(text, sizeof(text), "127.0.0.1, %s", bad[i]);
        cr_assert_eq(api_cidr_list_parse(text, &list, why, sizeof(why)), USHER_ERR_CONFIG, "%s",
                     bad[i]);
        cr_assert_not_null(strstr(why, bad[i]), "%s: %s", bad[i], why);
        cr_assert_eq(list.n, 0);
        cr_assert_null(list.blocks);
    }
}

Test(cidr, addresses_print_in_one_canonical_spelling)
{
    static const char *const pairs[][2] = {
        { "2001:0DB8:0000::0001", "2001:db8::1" },
        { "::ffff:192.0.2.1", "192.0.2.1" },
        { "192.0.2.1", "192.0.2.1" },
    };

    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        api_addr a;
        char text[API_ADDR_TEXT_MAX];

        cr_assert(api_addr_parse(pairs[i][0], strlen(pairs[i][0]), &a));
        api_addr_text(&a, text);
        cr_assert_str_eq(text, pairs[i][1]);
    }
}

/* The client of a request from peer with X-Forwarded-For xff, trusting list_text. */
static void expect_client(const char *list_text, const char *peer, const char *xff,
                          const char *expected)
{
    api_cidr_list list = list_of(list_text);
    char out[API_ADDR_TEXT_MAX];

    api_client_addr(&list, peer, xff, out);
    cr_assert_str_eq(out, expected, "trusting '%s', peer %s, X-Forwarded-For '%s'", list_text, peer,
                     xff != NULL ? xff : "(none)");
    api_cidr_list_release(&list);
}

Test(client_addr, without_trusted_proxies_the_header_is_never_read)
{
    expect_client("", "192.0.2.1", "203.0.113.7", "192.0.2.1");
    expect_client("", "::ffff:192.0.2.1", NULL, "192.0.2.1");
    expect_client("", "?", "203.0.113.7", "?");
}

Test(client_addr, an_untrusted_peer_is_the_client_whatever_it_forwards)
{
    expect_client("10.0.0.0/8", "192.0.2.1", "203.0.113.7", "192.0.2.1");
    expect_client("10.0.0.0/8", "192.0.2.1", "10.0.0.1", "192.0.2.1");
}

Test(client_addr, a_trusted_peer_forwards_the_right_most_untrusted_entry)
{
    expect_client("10.0.0.0/8", "10.0.0.2", "203.0.113.7", "203.0.113.7");
    /* The client wrote 198.51.100.1 itself: only what proxies appended counts. */
    expect_client("10.0.0.0/8", "10.0.0.2", "198.51.100.1, 203.0.113.7", "203.0.113.7");
    /* Trusted hops are skipped, however many. */
    expect_client("10.0.0.0/8", "10.0.0.2", "198.51.100.1,203.0.113.7, 10.1.1.1,10.2.2.2",
                  "203.0.113.7");
    expect_client("10.0.0.0/8 2001:db8::/32", "2001:db8::5", "2001:0db8::9, 2001:DB8:1::7",
                  "2001:db8::9");
    expect_client("10.0.0.0/8 ::1", "::1", "2001:db8::7", "2001:db8::7");
    expect_client("127.0.0.1", "::ffff:127.0.0.1", "::ffff:203.0.113.7", "203.0.113.7");
}

Test(client_addr, when_every_entry_is_a_trusted_proxy_the_left_most_is_the_client)
{
    expect_client("10.0.0.0/8", "10.0.0.2", "10.9.9.9, 10.8.8.8", "10.9.9.9");
}

Test(client_addr, ports_as_some_proxies_write_them_are_dropped)
{
    expect_client("10.0.0.0/8", "10.0.0.2", "203.0.113.7:5123", "203.0.113.7");
    expect_client("10.0.0.0/8", "10.0.0.2", "[2001:db8::7]:5123", "2001:db8::7");
    expect_client("10.0.0.0/8", "10.0.0.2", "[2001:db8::7]", "2001:db8::7");
}

Test(client_addr, a_malformed_header_from_a_trusted_proxy_leaves_the_peer)
{
    static const char *const bad[] = {
        "",
        " ",
        ",",
        "unknown",
        "203.0.113.7,",
        "host.example",
        "203.0.113.7:",
        "[2001:db8::7",
        "[2001:db8::7]x",
        "[2001:db8::7]:5a",
        "203.0.113.7:80:81",
        "203.0.113.300",
        "203.0.113.7 10.0.0.1",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_client("10.0.0.0/8", "10.0.0.2", bad[i], "10.0.0.2");
    /* Garbage left of the client is the client's own business: it is never read. */
    expect_client("10.0.0.0/8", "10.0.0.2", "garbage, 203.0.113.7", "203.0.113.7");
}
