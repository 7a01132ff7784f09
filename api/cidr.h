/*
 * IP addresses and CIDR blocks as text, read strictly: "10.0.0.0/8",
 * "192.0.2.7" (a /32), "2001:db8::/32", "::1" (a /128), and lists of them
 * separated by commas or spaces (api.trusted_proxies). An IPv4-mapped IPv6
 * address (::ffff:a.b.c.d, what a dual-stack socket reports for an IPv4
 * peer) is read as the IPv4 address, so one block matches both spellings.
 * Pure: no I/O, no allocation but the list's own.
 */
#ifndef USHER_API_CIDR_H
#define USHER_API_CIDR_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* Long enough for any address as inet_ntop writes it, with its NUL. */
#define API_ADDR_TEXT_MAX 46

/* An address: 4 bytes (IPv4) or 16 (IPv6), in network order. */
typedef struct api_addr {
    int len; /* 4 or 16 */
    unsigned char bytes[16];
} api_addr;

/* A block: the addresses whose first prefix bits equal those of base. */
typedef struct api_cidr {
    api_addr base; /* bits past prefix are zero */
    int prefix;    /* 0..32 or 0..128 */
} api_cidr;

typedef struct api_cidr_list {
    size_t n;
    api_cidr *blocks; /* owned */
} api_cidr_list;

/* Reads one address (no brackets, no port, no zone); false if text is not one. */
USHER_MUSTCHECK bool api_addr_parse(const char *text, size_t len, api_addr *out);

/* The address as text (IPv4 dotted, IPv6 in RFC 5952 form) into out. */
void api_addr_text(const api_addr *a, char out[API_ADDR_TEXT_MAX]);

/*
 * Reads "ADDR" or "ADDR/PREFIX" (len bytes). Host bits set past the prefix
 * (10.1.0.0/8) are refused: the writer meant another block.
 */
USHER_MUSTCHECK bool api_cidr_parse(const char *text, size_t len, api_cidr *out);

/* True when a lies inside c. */
bool api_cidr_contains(const api_cidr *c, const api_addr *a);

/*
 * Reads a list of blocks separated by commas and/or spaces into *out
 * (NULL or empty text: an empty list). On a bad item returns
 * USHER_ERR_CONFIG with the item quoted in why, and *out is empty.
 * Free with api_cidr_list_release.
 */
USHER_MUSTCHECK usher_err api_cidr_list_parse(const char *text, api_cidr_list *out, char *why,
                                              size_t whylen);

/* True when some block of the list holds a. */
bool api_cidr_list_contains(const api_cidr_list *list, const api_addr *a);

void api_cidr_list_release(api_cidr_list *list);

#endif
