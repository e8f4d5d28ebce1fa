/* Per-worker resolver cache for the upstream servers' host names (upstream.c): a name is
 * resolved once and its addresses reused until its DNS TTL runs out (dns_table.h bounds it).
 * A and AAAA are asked in parallel with evdns; names in the hosts file are answered from it
 * (see dns_cache.c for how). Logins wanting the same name while it is being resolved wait for
 * that one resolution instead of asking again. */
#ifndef MG_DNS_CACHE_H
#define MG_DNS_CACHE_H

#include "dns_table.h"

struct event_base;
struct evdns_base;

#define DNS_CACHE_ENTRIES 256
/* A name that does not exist (NXDOMAIN, or no address of either family) is remembered this
 * long, so a misspelt server name costs one query per 10 s, not one per login. Other failures
 * (timeout, SERVFAIL) are not remembered: they are often transient, and since concurrent logins
 * share one resolution a dead server sees one query at a time per name anyway. */
#define DNS_NEGATIVE_TTL_MS 10000
/* Names from the hosts file have no TTL; the file is read once at start, so this only keeps
 * their path as short as a cached answer's. */
#define DNS_HOSTS_TTL_MS 60000

struct dns_cache;
struct dns_wait;

/* addrs->error is 0 with at least one address, else an EVUTIL_EAI_* code. */
typedef void (*dns_cache_cb)(void *arg, const struct dns_addrs *addrs);

/* dns: the worker's resolver (it stays the caller's); hosts_file: read now, NULL: none. */
struct dns_cache *dns_cache_new(struct event_base *base, struct evdns_base *dns,
                                const char *hosts_file);
/* Resolutions in flight finish without storing anything; their waiters are still answered. */
void dns_cache_free(struct dns_cache **c);

/* 1: answered now (cache or hosts file), *out filled (maybe with an error). 0: cb runs later
 * from the loop, exactly once unless dns_cache_cancel(wait) is called first. */
int dns_cache_resolve(struct dns_cache *c, const char *name, struct dns_addrs *out, dns_cache_cb cb,
                      void *arg, struct dns_wait **wait);
/* Stops waiting (the connection is gone); the resolution goes on for the next login. NULL is
 * fine. Sets *wait to NULL. */
void dns_cache_cancel(struct dns_wait **wait);

#endif
