/* The resolver cache's table (dns_cache.c's memory): host name -> addresses (or the error a
 * lookup ended with) until an expiry time. Pure: no I/O, no clock of its own (the caller passes
 * the time), so it is unit-tested on its own. Bounded: at most max_entries names, at most
 * DNS_ADDRS_MAX addresses per name; a full table drops its least recently used entry. */
#ifndef MG_DNS_TABLE_H
#define MG_DNS_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>

/* More addresses than this are dropped: a login tries them one after the other within its
 * timeout, so a longer list could never be used up anyway. */
#define DNS_ADDRS_MAX 8
/* A TTL is clamped to this range: 0 (or 1 s) must not make every login ask again, and a day's
 * TTL must not pin a moved server for a day. */
#define DNS_TTL_MIN_S 5
#define DNS_TTL_MAX_S 3600

struct dns_addr {
    int family; /* AF_INET or AF_INET6 */
    union {
        struct in_addr v4;
        struct in6_addr v6;
    } u;
};

struct dns_addrs {
    int error; /* 0, or an EVUTIL_EAI_* code (then n is 0) */
    size_t n;
    struct dns_addr a[DNS_ADDRS_MAX];
};

/* Appends one address (family AF_INET: a struct in_addr, AF_INET6: a struct in6_addr); beyond
 * DNS_ADDRS_MAX it is dropped. */
void dns_addrs_add(struct dns_addrs *a, int family, const void *addr);

/* An IPv4 or IPv6 address written as such (no resolver needed): 1 with *out holding it as its
 * only address, else 0 (a host name) with *out empty. */
int dns_addrs_parse_literal(const char *host, struct dns_addrs *out);

/* A DNS TTL in seconds (negative: none) as a lifetime in ms within [DNS_TTL_MIN_S,
 * DNS_TTL_MAX_S]. */
uint64_t dns_ttl_clamp_ms(int64_t ttl_s);

struct dns_table;

struct dns_table *dns_table_new(size_t max_entries);
void dns_table_free(struct dns_table **t);
/* The entry for name (compared without case, as DNS does) if it has not expired at now_ms,
 * else NULL (an expired entry is dropped). A hit makes it the most recently used. */
const struct dns_addrs *dns_table_find(struct dns_table *t, const char *name, uint64_t now_ms);
/* Stores (or replaces) name's entry until expires_ms. */
void dns_table_put(struct dns_table *t, const char *name, const struct dns_addrs *a,
                   uint64_t expires_ms);
size_t dns_table_size(const struct dns_table *t);

#endif
