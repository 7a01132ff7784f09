/*
 * Tests of platform/netguard.c: every forbidden class of IPv4 and IPv6, at
 * its first and last address and at the addresses just outside it; the
 * IPv6 forms that carry an IPv4 address; the host texts a URL may hold
 * (lenient IPv4 forms, brackets, zones, localhost names) and the names
 * that only DNS can answer.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "netguard.h"

typedef struct addr_case {
    const char *text;
    usher_net_class cls;
} addr_case;

#define PUB  USHER_NET_PUBLIC
#define UNSP USHER_NET_UNSPECIFIED
#define LOOP USHER_NET_LOOPBACK
#define PRIV USHER_NET_PRIVATE
#define SHRD USHER_NET_SHARED
#define LINK USHER_NET_LINK_LOCAL
#define MCST USHER_NET_MULTICAST
#define RSVD USHER_NET_RESERVED
#define BCST USHER_NET_BROADCAST

/* Each class: the address before it, its first, its last, the address after it. */
static const addr_case v4_cases[] = {
    { "0.0.0.0", UNSP },         { "0.255.255.255", UNSP },   { "1.0.0.0", PUB },
    { "9.255.255.255", PUB },    { "10.0.0.0", PRIV },        { "10.255.255.255", PRIV },
    { "11.0.0.0", PUB },         { "100.63.255.255", PUB },   { "100.64.0.0", SHRD },
    { "100.127.255.255", SHRD }, { "100.128.0.0", PUB },      { "126.255.255.255", PUB },
    { "127.0.0.0", LOOP },       { "127.0.0.1", LOOP },       { "127.255.255.255", LOOP },
    { "128.0.0.0", PUB },        { "169.253.255.255", PUB },  { "169.254.0.0", LINK },
    { "169.254.169.254", LINK }, { "169.254.255.255", LINK }, { "169.255.0.0", PUB },
    { "172.15.255.255", PUB },   { "172.16.0.0", PRIV },      { "172.31.255.255", PRIV },
    { "172.32.0.0", PUB },       { "192.167.255.255", PUB },  { "192.168.0.0", PRIV },
    { "192.168.255.255", PRIV }, { "192.169.0.0", PUB },      { "223.255.255.255", PUB },
    { "224.0.0.0", MCST },       { "239.255.255.255", MCST }, { "240.0.0.0", RSVD },
    { "255.255.255.254", RSVD }, { "255.255.255.255", BCST }, { "8.8.8.8", PUB },
    { "93.184.216.34", PUB },
};

static const addr_case v6_cases[] = {
    /* ::, ::1 and their neighbours (::2 is the compatible form of 0.0.0.2) */
    { "::", UNSP },
    { "::1", LOOP },
    { "::2", UNSP },
    /* fc00::/7 */
    { "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PUB },
    { "fc00::", PRIV },
    { "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PRIV },
    { "fe00::", PUB },
    /* fe80::/10, then fec0::/10 (site-local) and ff00::/8 */
    { "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PUB },
    { "fe80::", LINK },
    { "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", LINK },
    { "fec0::", PRIV },
    { "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PRIV },
    { "ff00::", MCST },
    { "ff02::1", MCST },
    { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", MCST },
    /* ::ffff:0:0/96, mapped: the IPv4 address decides */
    { "::fffe:ffff:ffff", PUB },
    { "::ffff:0.0.0.0", UNSP },
    { "::ffff:127.0.0.1", LOOP },
    { "::ffff:10.1.2.3", PRIV },
    { "::ffff:169.254.169.254", LINK },
    { "::ffff:8.8.8.8", PUB },
    { "::ffff:255.255.255.255", BCST },
    { "::1:0:0:0", PUB },
    /* ::ffff:0:0:0/96, translated */
    { "::ffff:0:127.0.0.1", LOOP },
    { "::ffff:0:8.8.8.8", PUB },
    /* ::a.b.c.d, compatible */
    { "::127.0.0.1", LOOP },
    { "::192.168.1.1", PRIV },
    { "::8.8.8.8", PUB },
    /* 64:ff9b::/96, NAT64 */
    { "64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", PUB },
    { "64:ff9b::", UNSP },
    { "64:ff9b::127.0.0.1", LOOP },
    { "64:ff9b::172.16.0.1", PRIV },
    { "64:ff9b::8.8.8.8", PUB },
    { "64:ff9b::255.255.255.255", BCST },
    { "64:ff9b::1:0:0", PUB },
    /* 64:ff9b:1::/48, NAT64 for local use */
    { "64:ff9b:0:ffff:ffff:ffff:ffff:ffff", PUB },
    { "64:ff9b:1::", PRIV },
    { "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", PRIV },
    { "64:ff9b:2::", PUB },
    /* 2002::/16, 6to4 */
    { "2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PUB },
    { "2002:7f00:1::", LOOP },
    { "2002:a9fe:a9fe::1", LINK },
    { "2002:808:808::1", PUB },
    { "2003::", PUB },
    /* public */
    { "2001:4860:4860::8888", PUB },
    { "2606:4700::1111", PUB },
};

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

Test(netguard, every_ipv4_class_holds_its_first_and_last_address_and_not_its_neighbours)
{
    for (size_t i = 0; i < NCASES(v4_cases); i++) {
        struct in_addr in;

        cr_assert_eq(inet_pton(AF_INET, v4_cases[i].text, &in), 1, "%s", v4_cases[i].text);
        cr_expect_eq(usher_netguard_ipv4(ntohl(in.s_addr)), v4_cases[i].cls, "%s is %s",
                     v4_cases[i].text,
                     usher_netguard_class_name(usher_netguard_ipv4(ntohl(in.s_addr))));
    }
}

Test(netguard, every_ipv6_class_and_embedded_ipv4_form_is_classified)
{
    for (size_t i = 0; i < NCASES(v6_cases); i++) {
        unsigned char a[16];

        cr_assert_eq(inet_pton(AF_INET6, v6_cases[i].text, a), 1, "%s", v6_cases[i].text);
        cr_expect_eq(usher_netguard_ipv6(a), v6_cases[i].cls, "%s is %s", v6_cases[i].text,
                     usher_netguard_class_name(usher_netguard_ipv6(a)));
    }
}

Test(netguard, sockaddrs_of_both_families_are_classified_and_others_are_not_ip)
{
    struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
    struct sockaddr_un un = { .sun_family = AF_UNIX };

    cr_assert_eq(usher_netguard_sockaddr((struct sockaddr *)&in, sizeof(in)), LOOP);
    in.sin_addr.s_addr = htonl(0x5db8d822); /* 93.184.216.34 */
    cr_assert_eq(usher_netguard_sockaddr((struct sockaddr *)&in, sizeof(in)), PUB);
    cr_assert_eq(inet_pton(AF_INET6, "::ffff:169.254.169.254", &in6.sin6_addr), 1);
    cr_assert_eq(usher_netguard_sockaddr((struct sockaddr *)&in6, sizeof(in6)), LINK);
    cr_assert_eq(inet_pton(AF_INET6, "2606:4700::1111", &in6.sin6_addr), 1);
    cr_assert_eq(usher_netguard_sockaddr((struct sockaddr *)&in6, sizeof(in6)), PUB);
    cr_assert_eq(usher_netguard_sockaddr((struct sockaddr *)&un, sizeof(un)), USHER_NET_NOT_IP);
    cr_assert_eq(usher_netguard_sockaddr((struct sockaddr *)&in6, sizeof(in)), USHER_NET_NOT_IP,
                 "a length too short for its family is not read past");
    cr_assert_eq(usher_netguard_sockaddr(NULL, 0), USHER_NET_NOT_IP);
}

Test(netguard, host_literals_in_every_form_the_resolver_reads_are_classified)
{
    static const addr_case hosts[] = {
        { "127.0.0.1", LOOP },
        { "127.1", LOOP },
        { "0x7f000001", LOOP },
        { "0X7F.0.0.1", LOOP },
        { "2130706433", LOOP },
        { "017700000001", LOOP },
        { "0177.0.0.1", LOOP },
        { "127.0.0.1.", LOOP },
        { "0", UNSP },
        { "10.1", PRIV },
        { "[::1]", LOOP },
        { "::1", LOOP },
        { "[::ffff:127.0.0.1]", LOOP },
        { "[::ffff:7f00:1]", LOOP },
        { "[fe80::1%25eth0]", LINK },
        { "fe80::1%eth0", LINK },
        { "[fd00::1]", PRIV },
        { "169.254.169.254", LINK },
        { "8.8.8.8", PUB },
        { "[2606:4700::1111]", PUB },
        { "localhost", LOOP },
        { "LocalHost", LOOP },
        { "localhost.", LOOP },
        { "api.localhost", LOOP },
        { "localhost.localdomain", LOOP },
        { "ip6-localhost", LOOP },
        { "ip6-loopback", LOOP },
    };

    for (size_t i = 0; i < NCASES(hosts); i++) {
        usher_net_class cls = PUB;

        cr_expect(usher_netguard_host(hosts[i].text, &cls), "%s is not read as decided",
                  hosts[i].text);
        cr_expect_eq(cls, hosts[i].cls, "%s is %s", hosts[i].text, usher_netguard_class_name(cls));
    }
}

Test(netguard, names_that_only_dns_can_answer_are_left_undecided)
{
    static const char *const names[] = {
        "example.org",
        "hooks.example.org",
        "localhost.example.org",
        "notlocalhost",
        "localhostx",
        "127.0.0.1.nip.io",
        "1e100.net",
        "deadbeef",
        "[::1",
        "",
        "127.0.0.1 x",
        "0x7f000001 ",
    };

    for (size_t i = 0; i < NCASES(names); i++) {
        usher_net_class cls = RSVD;

        cr_expect_not(usher_netguard_host(names[i], &cls), "'%s' was decided", names[i]);
        cr_expect_eq(cls, RSVD, "'%s' changed the class", names[i]);
    }
    cr_assert_not(usher_netguard_host(NULL, NULL));
}

Test(netguard, classes_have_names_and_addresses_format_as_text)
{
    struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    char text[64];

    cr_assert_str_eq(usher_netguard_class_name(LOOP), "loopback");
    cr_assert_str_eq(usher_netguard_class_name(SHRD), "shared (carrier-grade NAT)");
    cr_assert_str_eq(usher_netguard_class_name(USHER_NET_NOT_IP), "not an IP address");
    cr_assert_str_eq(usher_netguard_class_name((usher_net_class)99), "not an IP address");
    usher_netguard_format((struct sockaddr *)&in, sizeof(in), text, sizeof(text));
    cr_assert_str_eq(text, "127.0.0.1");
    cr_assert_eq(inet_pton(AF_INET6, "::ffff:10.0.0.1", &in6.sin6_addr), 1);
    usher_netguard_format((struct sockaddr *)&in6, sizeof(in6), text, sizeof(text));
    cr_assert_str_eq(text, "::ffff:10.0.0.1");
    usher_netguard_format((struct sockaddr *)&un, sizeof(un), text, sizeof(text));
    cr_assert_str_eq(text, "?");
    usher_netguard_format((struct sockaddr *)&in, sizeof(in), text, 4);
    cr_assert_str_eq(text, "?", "an address that does not fit is not cut");
}
