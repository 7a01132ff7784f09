/*
 * Which network addresses an outgoing request of ours may reach. Webhook
 * endpoints are typed in by organizers, so without a guard the worker
 * would POST wherever they point: the loopback interface, the private
 * network, a cloud's metadata service. These pure functions classify an
 * address (a sockaddr, raw bytes or a URL's host text) into the class
 * that forbids it, or USHER_NET_PUBLIC. No I/O: no name is ever resolved
 * here; the caller checks the addresses it actually connects to.
 */
#ifndef USHER_NETGUARD_H
#define USHER_NETGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "error.h"

typedef enum usher_net_class {
    USHER_NET_PUBLIC = 0,  /* none of the below: may be reached */
    USHER_NET_UNSPECIFIED, /* 0.0.0.0/8, :: */
    USHER_NET_LOOPBACK,    /* 127.0.0.0/8, ::1, and the localhost names */
    USHER_NET_PRIVATE,     /* 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10, 64:ff9b:1::/48 */
    USHER_NET_SHARED,      /* 100.64.0.0/10, carrier-grade NAT */
    USHER_NET_LINK_LOCAL,  /* 169.254.0.0/16 (cloud metadata), fe80::/10 */
    USHER_NET_MULTICAST,   /* 224.0.0.0/4, ff00::/8 */
    USHER_NET_RESERVED,    /* 240.0.0.0/4 but the broadcast address */
    USHER_NET_BROADCAST,   /* 255.255.255.255 */
    USHER_NET_NOT_IP,      /* a sockaddr of another family */
} usher_net_class;

/*
 * The class of an IPv4 address given in host byte order (0x7f000001 is
 * 127.0.0.1).
 */
usher_net_class usher_netguard_ipv4(uint32_t addr);

/*
 * The class of an IPv6 address (16 bytes, network order). Forms that carry
 * an IPv4 address take its class: mapped ::ffff:0:0/96, translated
 * ::ffff:0:0:0/96, compatible ::a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16.
 */
usher_net_class usher_netguard_ipv6(const unsigned char addr[16]);

/* The class of an AF_INET or AF_INET6 address; anything else is USHER_NET_NOT_IP. */
usher_net_class usher_netguard_sockaddr(const struct sockaddr *sa, socklen_t len);

/*
 * The class of a URL's host when the text alone decides it: an IPv4
 * literal in any form the resolver reads as one ("127.1", "0x7f000001",
 * "2130706433"), an IPv6 literal with or without brackets and zone, or a
 * name that always means this host ("localhost", "*.localhost",
 * "localhost.localdomain", "ip6-localhost", "ip6-loopback"), any of them
 * with one trailing dot. Returns false, *out untouched, for any other name:
 * only the addresses it resolves to, when connecting, can be judged.
 */
USHER_MUSTCHECK bool usher_netguard_host(const char *host, usher_net_class *out);

/* What the class is, in words for messages: "loopback", "private", ... */
const char *usher_netguard_class_name(usher_net_class c);

/* sa as text ("127.0.0.1", "::1") into out; "?" for another family. */
void usher_netguard_format(const struct sockaddr *sa, socklen_t len, char *out, size_t outlen);

#endif
