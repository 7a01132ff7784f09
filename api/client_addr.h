/*
 * Who the client is: the address that rate limits, the auth-failure
 * bucket and logs see (api_req.client). Behind a load balancer the peer
 * of every connection is the balancer, so usher-api reads X-Forwarded-For,
 * but only when the peer is one of api.trusted_proxies: the header is
 * then read from the right, each trusted proxy's entry skipped, and the
 * first address that is not a trusted proxy is the client (nginx's
 * real_ip_recursive, Rails' remote_ip). Everything left of it was written
 * by the client and is never believed. When every entry is a trusted
 * proxy the left-most one is the client. A header whose entries up to the
 * client are not all addresses ("unknown", a name, garbage) is ignored:
 * the client is the peer. So is the header from any other peer, and with
 * no trusted proxies (the default) it is never read.
 */
#ifndef USHER_API_CLIENT_ADDR_H
#define USHER_API_CLIENT_ADDR_H

#include <event2/http.h>

#include "cidr.h"

/*
 * The client of a request from peer (as text; "?" if unknown) carrying
 * the X-Forwarded-For value xff (its fields joined with commas, in order;
 * NULL: none), as text into out: the canonical spelling of the address,
 * IPv4-mapped IPv6 as IPv4, or peer as given when it is not an address.
 */
void api_client_addr(const api_cidr_list *trusted, const char *peer, const char *xff,
                     char out[API_ADDR_TEXT_MAX]);

/* The same with the request's headers, every X-Forwarded-For field of them. */
void api_client_addr_of(const api_cidr_list *trusted, const char *peer,
                        const struct evkeyvalq *headers, char out[API_ADDR_TEXT_MAX]);

#endif
