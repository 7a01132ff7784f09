/*
 * Address classes for the guard on outgoing requests (netguard.h). IPv4 is
 * a table of prefixes, most specific first; IPv6 first unwraps the forms
 * that embed an IPv4 address (so ::ffff:127.0.0.1 is loopback like
 * 127.0.0.1), then checks its own prefixes. Host text is read the way the
 * resolver reads it: inet_aton's lenient IPv4 forms are what libcurl and
 * getaddrinfo accept too, so "http://2130706433/" cannot slip past.
 */
#include "netguard.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define HOST_MAX 256 /* a DNS name is at most 253 characters */

typedef struct prefix4 {
    uint32_t net;
    int bits;
    usher_net_class cls;
} prefix4;

/* The first match wins: 255.255.255.255 before the 240/4 that holds it. */
static const prefix4 prefixes4[] = {
    { 0xffffffffu, 32, USHER_NET_BROADCAST }, { 0x00000000u, 8, USHER_NET_UNSPECIFIED },
    { 0x0a000000u, 8, USHER_NET_PRIVATE },    { 0x64400000u, 10, USHER_NET_SHARED },
    { 0x7f000000u, 8, USHER_NET_LOOPBACK },   { 0xa9fe0000u, 16, USHER_NET_LINK_LOCAL },
    { 0xac100000u, 12, USHER_NET_PRIVATE },   { 0xc0a80000u, 16, USHER_NET_PRIVATE },
    { 0xe0000000u, 4, USHER_NET_MULTICAST },  { 0xf0000000u, 4, USHER_NET_RESERVED },
};

usher_net_class usher_netguard_ipv4(uint32_t addr)
{
    for (size_t i = 0; i < sizeof(prefixes4) / sizeof(prefixes4[0]); i++) {
        uint32_t mask = 0xffffffffu << (32 - prefixes4[i].bits);

        if ((addr & mask) == prefixes4[i].net)
            return prefixes4[i].cls;
    }
    return USHER_NET_PUBLIC;
}

static uint32_t ipv4_at(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* True when the first `bytes` bytes of addr are those of want. */
static bool starts(const unsigned char *addr, const unsigned char *want, size_t bytes)
{
    return memcmp(addr, want, bytes) == 0;
}

/* The IPv4 address an IPv6 form carries, into *v4; false for a native IPv6 address. */
static bool embedded_ipv4(const unsigned char a[16], uint32_t *v4)
{
    static const unsigned char zeros[12] = { 0 };
    static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    static const unsigned char translated[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0 };
    static const unsigned char nat64[12] = { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };

    if (starts(a, mapped, 12) || starts(a, translated, 12) || starts(a, nat64, 12) ||
        starts(a, zeros, 12)) {
        *v4 = ipv4_at(a + 12);
        return true;
    }
    if (a[0] == 0x20 && a[1] == 0x02) { /* 6to4: 2002:AABB:CCDD::/48 */
        *v4 = ipv4_at(a + 2);
        return true;
    }
    return false;
}

usher_net_class usher_netguard_ipv6(const unsigned char addr[16])
{
    static const unsigned char loopback[16] = { [15] = 1 };
    static const unsigned char unspecified[16] = { 0 };
    static const unsigned char nat64_local[6] = { 0, 0x64, 0xff, 0x9b, 0, 0x01 };
    uint32_t v4;

    if (starts(addr, unspecified, 16))
        return USHER_NET_UNSPECIFIED;
    if (starts(addr, loopback, 16))
        return USHER_NET_LOOPBACK;
    if (embedded_ipv4(addr, &v4))
        return usher_netguard_ipv4(v4);
    if (starts(addr, nat64_local, 6)) /* 64:ff9b:1::/48, NAT64 for local use (RFC 8215) */
        return USHER_NET_PRIVATE;
    if ((addr[0] & 0xfe) == 0xfc) /* fc00::/7, unique local */
        return USHER_NET_PRIVATE;
    if (addr[0] == 0xfe && (addr[1] & 0xc0) == 0x80) /* fe80::/10 */
        return USHER_NET_LINK_LOCAL;
    if (addr[0] == 0xfe && (addr[1] & 0xc0) == 0xc0) /* fec0::/10, the old site-local */
        return USHER_NET_PRIVATE;
    if (addr[0] == 0xff)
        return USHER_NET_MULTICAST;
    return USHER_NET_PUBLIC;
}

usher_net_class usher_netguard_sockaddr(const struct sockaddr *sa, socklen_t len)
{
    if (sa != NULL && sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

        return usher_netguard_ipv4(ntohl(in->sin_addr.s_addr));
    }
    if (sa != NULL && sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

        return usher_netguard_ipv6(in6->sin6_addr.s6_addr);
    }
    return USHER_NET_NOT_IP;
}

/* A name that /etc/hosts or RFC 6761 ties to this host (lowercase or not). */
static bool localhost_name(const char *name)
{
    static const char *const names[] = { "localhost", "localhost.localdomain", "ip6-localhost",
                                         "ip6-loopback", NULL };
    size_t len = strlen(name);

    for (size_t i = 0; names[i] != NULL; i++)
        if (strcasecmp(name, names[i]) == 0)
            return true;
    return len > 10 && strcasecmp(name + len - 10, ".localhost") == 0;
}

/* An IPv4 literal as the resolver reads it: 1 to 4 parts, decimal, octal or hex. */
static bool ipv4_literal(const char *text, uint32_t *addr)
{
    struct in_addr in;

    /* inet_aton stops at whitespace and ignores the rest: allow only its digits. */
    if (text[0] == '\0' || text[strspn(text, "0123456789abcdefABCDEFxX.")] != '\0' ||
        inet_aton(text, &in) == 0)
        return false;
    *addr = ntohl(in.s_addr);
    return true;
}

bool usher_netguard_host(const char *host, usher_net_class *out)
{
    char text[HOST_MAX];
    unsigned char v6[16];
    size_t len;
    uint32_t v4;

    if (host == NULL || (len = strlen(host)) == 0 || len >= sizeof(text))
        return false;
    if (host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    snprintf(text, sizeof(text), "%.*s", (int)len, host);
    text[strcspn(text, "%")] = '\0'; /* the zone of fe80::1%eth0 (or %25eth0) */
    len = strlen(text);
    if (len > 1 && text[len - 1] == '.')
        text[len - 1] = '\0';
    if (inet_pton(AF_INET6, text, v6) == 1)
        *out = usher_netguard_ipv6(v6);
    else if (ipv4_literal(text, &v4))
        *out = usher_netguard_ipv4(v4);
    else if (localhost_name(text))
        *out = USHER_NET_LOOPBACK;
    else
        return false;
    return true;
}

/* Indexed by usher_net_class. */
static const char *const class_names[] = {
    "public",     "unspecified", "loopback", "private",   "shared (carrier-grade NAT)",
    "link-local", "multicast",   "reserved", "broadcast", "not an IP address",
};
static_assert(sizeof(class_names) / sizeof(class_names[0]) == USHER_NET_NOT_IP + 1,
              "a name for every class");

const char *usher_netguard_class_name(usher_net_class c)
{
    if ((size_t)c >= sizeof(class_names) / sizeof(class_names[0]))
        return class_names[USHER_NET_NOT_IP];
    return class_names[c];
}

void usher_netguard_format(const struct sockaddr *sa, socklen_t len, char *out, size_t outlen)
{
    const void *addr = NULL;

    if (outlen == 0)
        return;
    if (sa != NULL && sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in))
        addr = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa != NULL && sa->sa_family == AF_INET6 &&
             len >= (socklen_t)sizeof(struct sockaddr_in6))
        addr = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (addr == NULL || inet_ntop(sa->sa_family, addr, out, (socklen_t)outlen) == NULL)
        snprintf(out, outlen, "?");
}
